"""The one exception type for mistakes a user can make.

Anything a user can cause (a missing dataset path, a malformed annotation line, an unknown backbone, too many broken
videos) raises :class:`UserError` with one clear sentence naming the file, line or key. The command line prints that
sentence alone, without a traceback, and exits with status 2.
"""


class UserError(Exception):
    """A mistake in the user's input, described in one sentence."""


def choice_error(kind: str, name: object, choices) -> UserError:
    """The error for an unknown name: says what was asked for and lists the valid choices."""
    valid = ", ".join(sorted(str(c) for c in choices))
    return UserError(f"unknown {kind} {name!r}; valid choices are: {valid}.")
