"""What a run is, as data: the record written beside every run's and every evaluation's outputs.

A pretraining run (or random init, or an external checkpoint) is a :class:`RunIdentity`. Its folder name
(``{method}_{backbone}_{set}_{pretraining input}[_seedN]``, mmaction2's habit) is derived from it, never parsed back:
``results/pretrain/<name>/run.json`` holds the record, and every evaluation's metrics file holds it under ``"run"``
beside the ``downstream_input``, ``task``, ``dataset`` and ``split`` it was evaluated on. The tables group runs by
these fields.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from hico_bench.errors import UserError

RANDOM_INIT = "random_init"
NO_PRETRAINING = "none"
_NAME_PART = re.compile(r"^[A-Za-z0-9.+-]+(?:_[A-Za-z0-9.+-]+)*$")
_INPUT = re.compile(r"^\d+x\d+$")


def input_label(frames: int, size: int) -> str:
    """``16x112``: the way the paper names a clip geometry (frames x crop side)."""
    return f"{int(frames)}x{int(size)}"


@dataclass(frozen=True)
class RunIdentity:
    """One checkpoint evaluated downstream.

    ``method`` is a pretraining variant (``hico``, ``simclr``, ...) or ``random_init``; ``set`` the pretraining set
    (``none`` for random init); ``pretrain_input`` the pretraining clip geometry (``none`` for random init);
    ``external`` the config's name of a checkpoint this project did not train (``""`` for its own runs).
    """

    method: str
    backbone: str
    set: str
    pretrain_input: str
    seed: int = 0
    external: str = ""

    def __post_init__(self) -> None:
        for key in ("method", "backbone", "set", "pretrain_input", "external"):
            value = getattr(self, key)
            if not isinstance(value, str):
                raise UserError(f"run identity: {key} must be a string, not {value!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise UserError(f"run identity: seed must be a non-negative integer, not {self.seed!r}.")
        if self.pretrain_input != NO_PRETRAINING and not _INPUT.match(self.pretrain_input) and not self.external:
            raise UserError(f"run identity: pretrain_input must look like 16x112 (or be 'none'), not "
                            f"{self.pretrain_input!r}.")

    @property
    def name(self) -> str:
        """The folder name: ``hico_s3dg_uk400_16x112``, ``..._seed1`` for seeds other than 0, ``random_init_s3dg``,
        or the external checkpoint's own name."""
        if self.external:
            return self.external
        if self.method == RANDOM_INIT:
            parts = [self.method, self.backbone]
        else:
            parts = [self.method, self.backbone, self.set, self.pretrain_input]
        name = "_".join(parts)
        return name if self.seed == 0 else f"{name}_seed{self.seed}"

    @property
    def config(self) -> tuple:
        """Everything but the seed: runs that differ only in their seed are averaged in the tables."""
        return (self.method, self.backbone, self.set, self.pretrain_input, self.external)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "run identity") -> "RunIdentity":
        """Read a record written by :meth:`as_dict`; a malformed one is a UserError naming ``where``."""
        if not isinstance(data, Mapping):
            raise UserError(f"{where}: the run identity must be an object, not {data!r}.")
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("method", "backbone", "set", "pretrain_input") if k not in data]
        if missing:
            raise UserError(f"{where}: the run identity lacks {missing[0]!r}.")
        unknown = sorted(set(data) - known - {"name"})
        if unknown:
            raise UserError(f"{where}: unknown run identity field {unknown[0]!r}; valid fields are: "
                            f"{', '.join(sorted(known))}.")
        try:
            identity = cls(**{k: v for k, v in data.items() if k in known})
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        if "name" in data and data["name"] != identity.name:
            raise UserError(f"{where}: the run identity's name {data['name']!r} does not match its fields "
                            f"({identity.name!r}).")
        return identity


def check_name_part(kind: str, value: str) -> str:
    """Names that become parts of folder names (variants, sets, external checkpoints) are plain words."""
    if not isinstance(value, str) or not _NAME_PART.match(value):
        raise UserError(f"the {kind} name {value!r} may hold only letters, digits, '.', '+', '-' and single '_'.")
    return value
