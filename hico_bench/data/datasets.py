"""torch Datasets for HiCo pre-training (:class:`PretrainDataset`) and downstream recognition (:class:`ClipDataset`).

Reproducibility: everything random about item ``i`` in epoch ``e`` (clip times, augmentation) comes from one numpy
generator seeded with ``(seed, e, i)``, so a resumed run, any number of workers and any worker order see the same
samples. :meth:`set_epoch` stores the epoch in shared memory, so persistent DataLoader workers see it too (call it
before iterating the epoch's loader). The pre-training ``max_dis`` depends on the training progress alpha /
alpha_max, which comes with the item's key: items accept ``index`` (no progress: the fixed and unconstrained
schedules only), ``(index, progress)`` or ``(index, epoch, progress)``; the trainer's :class:`ProgressBatchSampler`,
which knows the iteration, hands out the last form (the key's epoch then overrides :meth:`set_epoch`), so that no
sample depends on worker timing.

Broken videos during training: the item falls back to the next index (``i + 1``, ``i + 2``, ... wrapping around)
that decodes, drawing from the same generator, so the substitution is deterministic; every failure is recorded as
``(path, reason)`` in a :class:`FailureLog` shared by the main process and all workers, which the trainer reads with
``dataset.failures()`` (all) or ``dataset.drain_failures()`` (new since the last call) and writes to its quarantine
file. The returned index is the one actually used. Downstream
test items never substitute: they raise :class:`~hico_bench.data.video.VideoError` naming the file.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from hico_bench.data.sampling import (
    DeltaSchedule,
    clip_time,
    clip_windows,
    interval_windows,
    sample_centres,
    uniform_clip_starts,
)
from hico_bench.data.sources import FrameSource, InMemoryVideo, open_video
from hico_bench.data.transforms import FINETUNE, AugmentSpec, ClipAugment, eval_views
from hico_bench.data.video import Size, VideoError
from hico_bench.errors import UserError, choice_error

Transform = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of item ``index`` in ``epoch``: a function of ``(seed, epoch, index)`` only."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


class FailureLog:
    """``(index, reason)`` of failed decodes, written by any process (main or DataLoader worker), read by any.

    Shared-memory tensors with one row per writer (row 0: the main process, row ``1 + worker id``: workers), so
    writers never race. Each row keeps its first ``capacity`` failures (later ones are counted, not kept); reasons
    are cut to ``reason_bytes`` UTF-8 bytes. Worker ids beyond ``max_workers`` share rows (then an entry may be lost).
    """

    def __init__(self, max_workers: int = 64, capacity: int = 64, reason_bytes: int = 240):
        rows = max_workers + 1
        self._index = torch.full((rows, capacity), -1, dtype=torch.int64).share_memory_()
        self._text = torch.zeros((rows, capacity, reason_bytes), dtype=torch.uint8).share_memory_()
        self._count = torch.zeros(rows, dtype=torch.int64).share_memory_()

    def record(self, index: int, reason: str) -> None:
        info = get_worker_info()
        row = 0 if info is None else 1 + info.id % (self._count.shape[0] - 1)
        k = int(self._count[row])
        if k < self._index.shape[1]:
            raw = reason.encode("utf-8")[: self._text.shape[2]]
            self._text[row, k].zero_()
            if raw:
                self._text[row, k, : len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
            self._index[row, k] = int(index)
        self._count[row] = k + 1

    @property
    def total(self) -> int:
        """Number of failures recorded (including those beyond the capacity)."""
        return int(self._count.sum())

    def entries(self) -> list[tuple[int, str]]:
        """Kept ``(index, reason)`` pairs, by writer then time."""
        out = []
        for row in range(self._count.shape[0]):
            for k in range(min(int(self._count[row]), self._index.shape[1])):
                raw = bytes(self._text[row, k].tolist()).rstrip(b"\0")
                out.append((int(self._index[row, k]), raw.decode("utf-8", errors="replace")))
        return out


class ProgressBatchSampler(Sampler):
    """Batches of ``(index, epoch, progress)`` keys over a (distributed) index sampler, dropping the last partial batch.

    ``progress`` = (epoch + batch position / batches per epoch) / total epochs: exactly the fractional epoch at which
    the training loop consumes the batch (and sets its learning rate). Carrying it in the key makes gradual sampling
    independent of worker timing and prefetching, so a resumed run repeats an epoch bit for bit.
    """

    def __init__(self, sampler, batch_size: int, total_epochs: int):
        if batch_size < 1 or not total_epochs > 0:
            raise UserError(
                f"the batch sampler needs batch_size >= 1 and total_epochs > 0, got {batch_size} and {total_epochs}."
            )
        self.sampler, self.batch_size, self.total_epochs = sampler, batch_size, total_epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int, float]]]:
        n = len(self)
        indices = [int(i) for i in self.sampler]
        for it in range(n):
            progress = (self.epoch + it / n) / self.total_epochs
            yield [(i, self.epoch, progress) for i in indices[it * self.batch_size:(it + 1) * self.batch_size]]


def _split_key(key) -> tuple[int, int | None, float | None]:
    """An item key: ``index``, ``(index, progress)`` or ``(index, epoch, progress)``."""
    if isinstance(key, (tuple, list)):
        if len(key) == 3:
            return int(key[0]), int(key[1]), float(key[2])
        return int(key[0]), None, float(key[1])
    return int(key), None, None


class _VideoDataset(Dataset):
    """Rows of a manifest, shared epoch, failure log and the optional per-process frame cache."""

    def __init__(self, manifest_df: pd.DataFrame, decode_size: Size, seed: int, cache_frames: bool):
        if len(manifest_df) == 0:
            raise UserError("the manifest given to the dataset has no rows.")
        missing = {"path"} - set(manifest_df.columns)
        if missing:
            raise UserError(f"the manifest given to the dataset lacks the column(s) {sorted(missing)}.")
        self.rows: list[dict[str, Any]] = manifest_df.to_dict("records")
        self.decode_size = decode_size
        self.seed = int(seed)
        self.cache_frames = bool(cache_frames)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.failure_log = FailureLog()
        self._cache: dict[int, InMemoryVideo] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples the following items give (visible to persistent workers)."""
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def failures(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every video that failed to decode so far, in all processes, each path once."""
        seen: dict[str, str] = {}
        for index, reason in self.failure_log.entries():
            seen.setdefault(str(self.rows[index]["path"]), reason)
        return list(seen.items())

    def drain_failures(self) -> list[tuple[str, str]]:
        """The :meth:`failures` whose path this process has not drained before (for incremental quarantine files)."""
        drained = self.__dict__.setdefault("_drained", set())
        new = [(path, reason) for path, reason in self.failures() if path not in drained]
        drained.update(path for path, _ in new)
        return new

    def _open(self, j: int) -> tuple[FrameSource, bool]:
        """The frame source of row ``j`` and whether the caller must close it."""
        if not self.cache_frames:
            return open_video(self.rows[j], self.decode_size), True
        if j not in self._cache:
            self._cache[j] = open_video(self.rows[j], self.decode_size, in_memory=True)
        return self._cache[j], False

    def _with_fallback(self, i: int, load: Callable[[int], Any]) -> tuple[Any, int]:
        """``load(j)`` for ``j = i, i + 1, ...`` until one decodes; failures are recorded."""
        for attempt in range(len(self.rows)):
            j = (i + attempt) % len(self.rows)
            try:
                return load(j), j
            except VideoError as exc:
                self.failure_log.record(j, str(exc))
        raise UserError(f"none of the {len(self.rows)} videos of the dataset could be decoded; the first failures: "
                        f"{self.failures()[:3]}.")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}  # each process fills its own cache
        state.pop("_drained", None)
        return state


class PretrainDataset(_VideoDataset):
    """HiCo pre-training: item ``i`` -> (clips, index) with clips float (num_clips, 3, T, S, S) in the order
    ``[v_i, v_j, ..., v_k]`` (or uint8 (num_clips, T, H, W, 3) when ``transform`` is None, for augmentation on the
    GPU with :func:`hico_bench.data.transforms.augment_batch`; then give ``decode_size`` as (H, W) so that videos
    of different shapes batch together).

    One container is opened per item; its clips are read with one seek each, or one seek for clips that overlap
    (v_i and v_j, whose centres lie within delta_max of each other). Clip centres come from
    :func:`~hico_bench.data.sampling.sample_centres` with ``max_dis = schedule.max_dis(progress)``, the progress
    taken from the item's key; short videos keep the official sampler's behaviour (all centres at ``clip_t``,
    windows cut at the duration), nothing is skipped.

    ``trimmed`` says that the videos are trimmed clips (Kinetics-400). Then the baseline with every HiCo switch off
    (``schedule.kind == "none"`` and not ``topical``) draws its clips as the official code does on trimmed clips:
    :func:`~hico_bench.data.sampling.interval_windows` (each clip's start uniform over ``[0, duration - clip_t]``)
    instead of centres in ``[clip_t, duration - clip_t]``; every other variant, and every variant on untrimmed
    videos, uses the time-based sampler above.
    ``cache_frames`` keeps every decoded video in memory, per process (for tiny datasets only).
    """

    def __init__(
        self,
        manifest_df: pd.DataFrame,
        frames: int,
        sampling_rate: int,
        target_fps: float,
        num_clips: int,
        schedule: DeltaSchedule,
        topical: bool = True,
        transform: Transform | None = None,
        decode_size: Size = 128,
        seed: int = 0,
        cache_frames: bool = False,
        trimmed: bool = False,
    ):
        super().__init__(manifest_df, decode_size, seed, cache_frames)
        if num_clips < 1:
            raise UserError(f"num_clips must be at least 1, got {num_clips}.")
        self.frames = int(frames)
        self.clip_t = clip_time(frames, sampling_rate, target_fps)
        self.num_clips = int(num_clips)
        self.schedule = schedule
        self.topical = bool(topical)
        self.transform = transform
        self.trimmed = bool(trimmed)
        self.interval_sampling = self.trimmed and schedule.kind == "none" and not self.topical

    def windows(
        self, duration: float, rng: np.random.Generator, progress: float | None = None
    ) -> list[tuple[float, float]]:
        """The clip windows (seconds) of a video of ``duration`` at ``progress`` = alpha / alpha_max (needed by the
        gradual schedule only; the others ignore it)."""
        if self.interval_sampling:
            return interval_windows(duration, self.clip_t, self.num_clips, rng)
        if progress is None:
            if self.schedule.kind == "gradual":
                raise UserError(
                    "gradual sampling needs the training progress: pass (index, epoch, progress) keys, as the "
                    "trainer's ProgressBatchSampler does."
                )
            progress = 0.0
        max_dis = self.schedule.max_dis(progress)
        centres = sample_centres(duration, self.clip_t, self.num_clips, max_dis, self.topical, rng)
        return clip_windows(centres, self.clip_t, duration)

    def __getitem__(self, key) -> tuple[torch.Tensor, int]:
        """``key``: ``index``, ``(index, progress)`` or ``(index, epoch, progress)``; returns (clips, index used)."""
        i, epoch, progress = _split_key(key)
        rng = item_rng(self.seed, self.epoch if epoch is None else epoch, i)

        def load(j: int) -> torch.Tensor:
            source, owned = self._open(j)
            try:
                windows = self.windows(source.info.duration, rng, progress)
                raw = [torch.from_numpy(clip) for clip in source.read_windows(windows, self.frames)]
            finally:
                if owned:
                    source.close()
            if self.transform is None:
                return torch.stack(raw)
            if isinstance(self.transform, ClipAugment):  # written in place, no stacking copy
                size = self.transform.spec.size
                out = torch.empty((len(raw), 3, self.frames, size, size))
                for clip, slot in zip(raw, out):
                    self.transform(clip, rng, out=slot)
                return out
            return torch.stack([self.transform(clip, rng) for clip in raw])

        clips, j = self._with_fallback(i, load)
        return clips, j


StartsFunction = Callable[[float, float, int], list[float]]
"""``(duration, clip_t, num_views) -> view start times`` (seconds), e.g. the functions of
:mod:`hico_bench.data.sampling`."""


class ClipDataset(_VideoDataset):
    """Downstream recognition clips (fine-tuning, linear evaluation, retrieval features).

    ``mode="train"``: one clip with a random start uniform in ``[0, duration - clip_t]``, fine-tuning augmentation
    (``spec``), returns ``(clip (3, T, S, S), label_index, index)``; broken videos fall back as in pre-training.
    ``mode="test"``: ``num_views`` clips starting at ``view_starts(duration, clip_t, num_views)`` (default
    :func:`~hico_bench.data.sampling.uniform_clip_starts`, HiCo's multi-view test: i / num_views of the valid range,
    1 view centred; the frozen features pass :func:`~hico_bench.data.sampling.evenly_spaced_clip_starts`, VCOP's
    views from the start to the end) x ``crops`` spatial crops (1 centre, 3 along the long side), returns
    ``(views (num_views * crops, 3, T, S, S), label_index, index)``, views ordered clip-major. A clip is the window
    ``[start, start + clip_t]`` read with the frame rule of :func:`hico_bench.data.video.frame_indices`; the official
    code steps over ``clip_length - 1`` frames instead of ``clip_length``, at most one source frame of difference.
    """

    def __init__(
        self,
        manifest_df: pd.DataFrame,
        frames: int,
        sampling_rate: int,
        target_fps: float,
        size: int,
        mode: str = "train",
        num_views: int = 10,
        crops: int = 1,
        decode_size: Size = 128,
        seed: int = 0,
        view_starts: StartsFunction = uniform_clip_starts,
        spec: AugmentSpec | None = None,
        cache_frames: bool = False,
    ):
        super().__init__(manifest_df, decode_size, seed, cache_frames)
        if mode not in ("train", "test"):
            raise choice_error("dataset mode", mode, ("train", "test"))
        if crops not in (1, 3):
            raise UserError(f"crops must be 1 or 3, got {crops}.")
        if "label_index" not in manifest_df.columns:
            raise UserError("the manifest given to the downstream dataset lacks the column 'label_index'.")
        self.frames = int(frames)
        self.clip_t = clip_time(frames, sampling_rate, target_fps)
        self.mode = mode
        self.num_views = int(num_views)
        self.crops = int(crops)
        self.view_starts = view_starts
        self.spec = dataclasses.replace(FINETUNE, size=int(size)) if spec is None else spec
        self.augment = ClipAugment(self.spec)

    def starts(self, duration: float) -> list[float]:
        """Test-view start times (seconds) for a video of ``duration``."""
        return self.view_starts(duration, self.clip_t, self.num_views)

    def __getitem__(self, key) -> tuple[torch.Tensor, int, int]:
        """``key``: ``index`` or ``(index, epoch, progress)``; returns (clip or views, label_index, index used)."""
        i, epoch, _ = _split_key(key)
        if self.mode == "test":
            return self._test_item(i), int(self.rows[i]["label_index"]), i
        rng = item_rng(self.seed, self.epoch if epoch is None else epoch, i)

        def load(j: int) -> torch.Tensor:
            source, owned = self._open(j)
            try:
                start = rng.uniform(0.0, max(source.info.duration - self.clip_t, 0.0))
                clip = source.read_window(start, start + self.clip_t, self.frames)
            finally:
                if owned:
                    source.close()
            return self.augment(torch.from_numpy(clip), rng)

        clip, j = self._with_fallback(i, load)
        return clip, int(self.rows[j]["label_index"]), j

    def _test_item(self, i: int) -> torch.Tensor:
        try:
            source, owned = self._open(i)
            try:
                windows = [(s, s + self.clip_t) for s in self.starts(source.info.duration)]
                clips = source.read_windows(windows, self.frames)
            finally:
                if owned:
                    source.close()
        except VideoError as exc:
            raise VideoError(f"{self.rows[i]['path']}: {exc}") from None
        return torch.cat([eval_views(torch.from_numpy(c), self.spec, self.crops) for c in clips])
