"""HiCo's clip sampler and the delta schedules.

The sampler is the official code's (alibaba-mmai-research/HiCo, ``datasets/base/base_dataset.py``,
``_get_hico_clips_time_stamp``). Pre-training draws ``num_clips`` clip centres per video:

* ``c0`` uniform in ``[clip_t, duration - clip_t]`` (v_i);
* each further centre uniform within ``+-max_dis`` of the previous one, truncated to that same range (v_j);
* with the topical flag the last centre is drawn again, uniform over the whole range (v_k);
* ``max_dis < 0`` (no constraint) draws every centre independently like ``c0``.

``random_center(a, b)`` is uniform in ``[a, b]`` and returns ``a`` when ``b < a``; it always consumes exactly one
draw of the generator, as the official code does. A clip is the window
``[max(c - clip_t/2, 0), min(c + clip_t/2, duration)]``.

``max_dis`` comes from a :class:`DeltaSchedule`: HiCo's gradual sampling grows it linearly from ``delta_start_s`` to
``delta_s`` over the run (alpha / alpha_max); "fixed" keeps ``delta_s``; "none" is the unconstrained baseline.

On trimmed clips (Kinetics-400) the official code uses this sampler only when one of HiCo's switches is on (gradual
sampling, a fixed delta or TCL: ``datasets/base/kinetics400.py``); the baseline with all of them off draws its clips
by interval-based sampling instead (:func:`interval_windows`).

The progress alpha / alpha_max is not shared state: the trainer's
:class:`hico_bench.data.datasets.ProgressBatchSampler` computes it for every batch and carries it in each item's
key ``(index, epoch, progress)``, so that the sample of an item does not depend on worker timing (the official code
reads it from the name of a file that its training loop writes under ``./current_epoch/``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hico_bench.errors import UserError, choice_error

SCHEDULE_KINDS = ("gradual", "fixed", "none")


def clip_time(frames: int, sampling_rate: int, target_fps: float) -> float:
    """Seconds covered by one clip: ``frames * sampling_rate / target_fps`` (16 * 4 / 30 = 2.133 s for HiCo)."""
    if frames <= 0 or sampling_rate <= 0 or target_fps <= 0:
        raise UserError(
            f"clip settings must be positive, got frames={frames}, sampling_rate={sampling_rate}, "
            f"target_fps={target_fps}."
        )
    return frames * sampling_rate / target_fps


@dataclass(frozen=True)
class DeltaSchedule:
    """delta_max (seconds) as a function of the training progress alpha / alpha_max.

    ``kind``: ``"gradual"`` (HiCo's GS: ``delta_start_s + (delta_s - delta_start_s) * clamp(progress, 0, 1)``),
    ``"fixed"`` (``delta_s`` throughout) or ``"none"`` (``-1``: every clip independent).
    """

    kind: str
    delta_s: float = 1.0
    delta_start_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise choice_error("delta schedule", self.kind, SCHEDULE_KINDS)
        if self.kind != "none" and (self.delta_s < 0 or self.delta_start_s < 0):
            raise UserError(
                f"delta schedule {self.kind!r} needs delta_s >= 0 and delta_start_s >= 0 seconds, "
                f"got {self.delta_s} and {self.delta_start_s}."
            )

    def max_dis(self, progress: float) -> float:
        """delta_max in seconds at ``progress`` = alpha / alpha_max (clamped to [0, 1]); -1 means unconstrained."""
        if self.kind == "none":
            return -1.0
        if self.kind == "fixed":
            return float(self.delta_s)
        p = min(max(float(progress), 0.0), 1.0)
        return float(self.delta_start_s + (self.delta_s - self.delta_start_s) * p)


def random_center(a: float, b: float, rng: np.random.Generator) -> float:
    """Uniform in ``[a, b]``; ``a`` when ``b < a``. Always consumes one draw of ``rng``."""
    u = rng.random()
    if b < a:
        b = a
    return a + (b - a) * u


def sample_centres(
    duration: float,
    clip_t: float,
    num_clips: int,
    max_dis: float,
    topical: bool,
    rng: np.random.Generator,
) -> list[float]:
    """Clip centres in seconds, ``[v_i, v_j, ..., v_k]``, drawn by the rules of the module docstring in that order."""
    if num_clips < 1:
        raise UserError(f"num_clips must be at least 1, got {num_clips}.")
    lo, hi = clip_t, duration - clip_t
    centres = [random_center(lo, hi, rng)]
    for _ in range(num_clips - 1):
        if max_dis < 0:
            centres.append(random_center(lo, hi, rng))
        else:
            prev = centres[-1]
            centres.append(random_center(max(prev - max_dis, lo), min(prev + max_dis, hi), rng))
    if topical:
        centres[-1] = random_center(lo, hi, rng)
    return centres


def clip_windows(centres: list[float], clip_t: float, duration: float) -> list[tuple[float, float]]:
    """``[max(c - clip_t/2, 0), min(c + clip_t/2, duration)]`` for every centre (seconds)."""
    half = clip_t / 2
    return [(max(c - half, 0.0), min(c + half, duration)) for c in centres]


def interval_windows(
    duration: float, clip_t: float, num_clips: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """The windows of the official interval-based sampling of training clips (``_interval_based_sampling`` of
    ``datasets/base/base_dataset.py`` with a random start): each clip starts independently, uniform in
    ``[0, max(duration - clip_t, 0)]``, and is the window ``[start, start + clip_t]``. One draw of ``rng`` per clip.

    The official code spreads a clip's frames over ``clip_length - 1`` frames from the start instead of
    ``clip_length`` (at most one source frame of difference) and, in a video shorter than a clip, repeats its last
    frame; here the window is cut at the video's end by the frame rule of :func:`hico_bench.data.video.frame_indices`.
    """
    if num_clips < 1:
        raise UserError(f"num_clips must be at least 1, got {num_clips}.")
    valid = max(duration - clip_t, 0.0)
    starts = [float(rng.uniform(0.0, valid)) for _ in range(num_clips)]
    return [(s, s + clip_t) for s in starts]


def uniform_clip_starts(duration: float, clip_t: float, num_views: int) -> list[float]:
    """HiCo's multi-view test starts: ``i / num_views`` of the valid range ``[0, duration - clip_t]``.

    For ``num_views > 1`` the views are not centred (the last starts one step before the end of the range), as in
    the official ``_interval_based_sampling``; a single view is centred (``valid / 2``), as its 1-clip test is.
    A video shorter than one clip gives every view the start 0.
    """
    if num_views < 1:
        raise UserError(f"num_views must be at least 1, got {num_views}.")
    valid = max(duration - clip_t, 0.0)
    if num_views == 1:
        return [valid / 2]
    return [valid * i / num_views for i in range(num_views)]


def evenly_spaced_clip_starts(duration: float, clip_t: float, num_views: int) -> list[float]:
    """VCOP's retrieval clips: centres ``linspace(clip_t/2, duration - clip_t/2, num_views)``, returned as starts.

    Unlike :func:`uniform_clip_starts` the first view starts at 0 and the last ends at the end of the video.
    """
    if num_views < 1:
        raise UserError(f"num_views must be at least 1, got {num_views}.")
    valid = max(duration - clip_t, 0.0)
    return [float(s) for s in np.linspace(0.0, valid, num_views)]
