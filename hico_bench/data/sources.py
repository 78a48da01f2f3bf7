"""One interface over the ways a manifest row's frames can be stored: ``.info``, ``.read_window(start_s, end_s, n)``
and ``.read_windows(windows, n)`` (several windows of one video; a file decodes overlapping ones in one pass).

* a normal file: :class:`hico_bench.data.video.VideoReader`;
* HiCo's 5-s segment layout (every untrimmed video pre-cut into consecutive pieces ``v_<id>_<startms>_<endms>.mp4``;
  the official code, ``datasets/base/long_video.py``): :class:`SegmentedVideo`, built from the row's ``parts`` (a
  JSON list of ``[start_s, end_s, path]``). A window is read from the segments it touches: the segment holding
  ``start_s`` up to the last one starting before ``end_s``. Their frames are treated as one concatenated array and
  indexed with the first touched segment's fps, relative to that segment's start, as the official ``_decode_clips``
  does (the same frames as the unsegmented file when every segment holds exactly ``5 * fps`` frames);
* :class:`InMemoryVideo`: every frame decoded once at the given size, windows sliced from memory with the same
  index rule (for tiny datasets; the datasets' ``cache_frames`` flag).

The video's duration for sampling is ``info.duration``: frames / fps for a file, the end of the last part for the
segment layout (the official code takes it from the index file).
"""

from __future__ import annotations

import bisect
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from hico_bench.data.video import Size, VideoError, VideoInfo, VideoReader, frame_indices
from hico_bench.errors import UserError


class FrameSource(Protocol):
    info: VideoInfo

    def read_window(self, start_s: float, end_s: float, n: int) -> np.ndarray: ...

    def read_windows(self, windows: Sequence[tuple[float, float]], n: int) -> list[np.ndarray]: ...

    def close(self) -> None: ...


def window_plan(
    starts: Sequence[float], counts: Sequence[int], fps: Sequence[float], start_s: float, end_s: float, n: int
) -> list[tuple[int, np.ndarray]]:
    """Which parts, and which local frame indices in each, make the ``n`` frames of ``[start_s, end_s)``.

    ``starts``: start time of each part (sorted), ``counts``: frames per part, ``fps``: per part. Returns
    ``[(part, local indices), ...]`` in order; the concatenation of those frames is the window.
    """
    first = max(bisect.bisect_right(starts, start_s) - 1, 0)
    last = max(bisect.bisect_left(starts, end_s) - 1, first)
    base = starts[first]
    total = int(sum(counts[first : last + 1]))
    idx = frame_indices(start_s - base, end_s - base, fps[first], total, n)
    plan = []
    offset = 0
    for k in range(first, last + 1):
        sel = idx[(idx >= offset) & (idx < offset + counts[k])]
        if len(sel):
            plan.append((k, sel - offset))
        offset += counts[k]
    return plan


def parse_parts(row: Mapping[str, Any]) -> list[tuple[float, float, str]] | None:
    """The row's 5-s segment list ``[(start_s, end_s, path), ...]``, or None for a plain file."""
    raw = row.get("parts", "")
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or (isinstance(raw, str) and not raw.strip()):
        return None
    name = row.get("video_id", row.get("path", "?"))
    try:
        parts = json.loads(raw) if isinstance(raw, str) else list(raw)
        out = [(float(p[0]), float(p[1]), str(p[2])) for p in parts]
    except (ValueError, TypeError, IndexError) as exc:
        raise UserError(f"manifest row {name!r}: column 'parts' is not a JSON list of [start_s, end_s, path] ({exc}).")
    if not out:
        raise UserError(f"manifest row {name!r}: column 'parts' is an empty list.")
    if any(b[0] < a[0] for a, b in zip(out, out[1:])) or any(e <= s for s, e, _ in out):
        raise UserError(f"manifest row {name!r}: column 'parts' must be ordered in time with end > start.")
    base = Path(str(row.get("path", ""))).parent
    return [(s, e, p if os.path.isabs(p) else str(base / p)) for s, e, p in out]


class SegmentedVideo:
    """A video stored as consecutive segment files; readers are opened on first use and kept open."""

    def __init__(self, parts: Sequence[tuple[float, float, str]], size: Size = None):
        self.parts = [(float(s), float(e), str(p)) for s, e, p in parts]
        self.size = size
        self._readers: dict[int, VideoReader] = {}
        self._starts = [s for s, _, _ in self.parts]
        first = self._reader(0)
        duration = self.parts[-1][1]
        self.info = VideoInfo(
            duration=duration,
            fps=first.info.fps,
            num_frames=max(1, int(round(duration * first.info.fps))),
            width=first.info.width,
            height=first.info.height,
        )

    def _reader(self, k: int) -> VideoReader:
        if k not in self._readers:
            path = self.parts[k][2]
            try:
                self._readers[k] = VideoReader(path, self.size)
            except VideoError as exc:
                raise VideoError(f"segment {path}: {exc}") from None
        return self._readers[k]

    def read_window(self, start_s: float, end_s: float, n: int) -> np.ndarray:
        """``n`` frames of ``[start_s, end_s)`` seconds, uint8 (n, H, W, 3), decoded from the touched segments."""
        first = max(bisect.bisect_right(self._starts, start_s) - 1, 0)
        last = max(bisect.bisect_left(self._starts, end_s) - 1, first)
        ks = range(first, last + 1)
        counts = [self._reader(k).info.num_frames if k in ks else 0 for k in range(len(self.parts))]
        fps = [self._reader(k).info.fps if k in ks else 0.0 for k in range(len(self.parts))]
        plan = window_plan(self._starts, counts, fps, start_s, end_s, n)
        chunks = [self._reader(k).read_frames(local) for k, local in plan]
        return np.concatenate(chunks, axis=0)

    def read_windows(self, windows: Sequence[tuple[float, float]], n: int) -> list[np.ndarray]:
        """:meth:`read_window` for each ``(start_s, end_s)``, in order."""
        return [self.read_window(s, e, n) for s, e in windows]

    def read_all(self) -> list[np.ndarray]:
        """Every frame of every segment, one uint8 array per segment."""
        return [self._reader(k).read_frames(np.arange(self._reader(k).info.num_frames)) for k in range(len(self.parts))]

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __enter__(self) -> "SegmentedVideo":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InMemoryVideo:
    """All frames of a source decoded once (at the source's size); windows are sliced from memory.

    Gives the same frames as the source for every window (same index rule, same per-part fps).
    """

    def __init__(self, source: VideoReader | SegmentedVideo):
        self.info = source.info
        if isinstance(source, SegmentedVideo):
            self._frames = source.read_all()
            self._starts = [s for s, _, _ in source.parts]
            self._fps = [source._reader(k).info.fps for k in range(len(source.parts))]
        else:
            self._frames = [source.read_frames(np.arange(source.info.num_frames))]
            self._starts = [0.0]
            self._fps = [source.info.fps]
        self._counts = [len(f) for f in self._frames]

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self._frames)

    def read_window(self, start_s: float, end_s: float, n: int) -> np.ndarray:
        """``n`` frames of ``[start_s, end_s)`` seconds, uint8 (n, H, W, 3), from memory."""
        plan = window_plan(self._starts, self._counts, self._fps, start_s, end_s, n)
        return np.concatenate([self._frames[k][local] for k, local in plan], axis=0)

    def read_windows(self, windows: Sequence[tuple[float, float]], n: int) -> list[np.ndarray]:
        """:meth:`read_window` for each ``(start_s, end_s)``, in order."""
        return [self.read_window(s, e, n) for s, e in windows]

    def close(self) -> None:
        pass

    def __enter__(self) -> "InMemoryVideo":
        return self

    def __exit__(self, *exc) -> None:
        pass


def open_video(row: Mapping[str, Any], size: Size = None, in_memory: bool = False) -> FrameSource:
    """The frame source of a manifest row: a file, the 5-s segment layout, or (``in_memory``) all frames in RAM.

    Raises :class:`VideoError` when the file (or a segment) cannot be opened.
    """
    parts = parse_parts(row)
    if parts is not None:
        source = SegmentedVideo(parts, size)
    else:
        source = VideoReader(row["path"], size)
    if not in_memory:
        return source
    try:
        return InMemoryVideo(source)
    finally:
        source.close()
