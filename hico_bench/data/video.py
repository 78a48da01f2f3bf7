"""Video IO: probe a file, read clips by time window, write small H.264 files.

Frame selection follows the official HiCo code (``datasets/base/base_dataset.py``, ``_get_time_stamp_frames_list``):
a window ``[s, e)`` seconds of a file with ``fps`` frames
per second and ``num_frames`` frames covers the frame indices ``start = int(s * fps)`` to
``end = min(int(e * fps), num_frames)``; ``n`` indices are ``linspace(start, end, n)`` clamped to ``[start, end - 1]``
and truncated to integers. The reader always returns exactly ``n`` frames: when a file holds fewer frames than its
header promises, the last decoded frame is repeated.

Frame ``i`` is the frame shown at ``i / fps`` seconds after the first frame (the first frame is index 0 whatever its
timestamp; AVI files with B-frames, for example, start at one frame duration).

A :class:`VideoReader` keeps one file open, so that several windows of one video (the HiCo sampler reads three) cost one
seek each and no re-open. Frames are resized inside FFmpeg's scaler while converting to RGB (one scaler context per open
file, one thread), and only the frames that are returned are converted. The decoder is PyAV (FFmpeg comes with its
wheel).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from hico_bench.io import atomic_path

Size = int | tuple[int, int] | None
"""Target frame size: ``None`` keeps the file's size, an int is the short side (aspect kept), a pair is (H, W)."""

TRUNCATION_SLACK_S = 0.5
"""A file may end this many seconds of frames before its header's frame count (container rounding); more is
truncation."""


class VideoError(Exception):
    """A video that cannot be used: missing, empty, truncated or undecodable. The message is the reason."""


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds, num_frames / fps
    fps: float
    num_frames: int  # as the header promises (estimated from the duration when the container has no count)
    width: int
    height: int


def frame_indices(start_s: float, end_s: float, fps: float, num_frames: int, n: int) -> np.ndarray:
    """The ``n`` frame indices of the window ``[start_s, end_s)`` (the rule of the module docstring), as int64.

    ``linspace`` is evaluated exactly (integer arithmetic), so no index is off by one from float rounding. A window
    that starts at or past the last frame gives the last frame ``n`` times.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    start = max(int(start_s * fps), 0)
    end = min(int(end_s * fps), num_frames)
    start = min(start, num_frames - 1)
    end = max(end, start + 1)
    if n == 1:
        return np.array([start], dtype=np.int64)
    k = np.arange(n, dtype=np.int64)
    idx = start + (k * (end - start)) // (n - 1)  # floor of the exact linspace value (all terms are >= 0)
    return np.minimum(idx, end - 1)


def output_size(height: int, width: int, size: Size) -> tuple[int, int]:
    """(H, W) after resizing a ``height`` x ``width`` frame to ``size`` (see :data:`Size`)."""
    if size is None:
        return height, width
    if isinstance(size, int):
        if height <= width:
            return size, max(1, round(width * size / height))
        return max(1, round(height * size / width)), size
    return int(size[0]), int(size[1])


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError("file is missing")
    if path.is_dir():
        raise VideoError("is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoError("file is empty (0 bytes)")


def _open(path: str | os.PathLike):
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"cannot be opened ({exc.__class__.__name__}: {exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("has no video stream")
    return container


def _stream_info(container) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoError("has no frame rate")
    fps = float(rate)
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        raise VideoError("has no duration")
    num_frames = stream.frames or int(round(duration * fps))
    if num_frames <= 0 or duration <= 0:
        raise VideoError("holds no frames")
    cc = stream.codec_context
    if not cc.width or not cc.height:
        raise VideoError("has no frame size")
    return VideoInfo(duration=num_frames / fps, fps=fps, num_frames=int(num_frames), width=cc.width, height=cc.height)


class _DisorderedTimestamps(Exception):
    """Decoded frames came out with presentation timestamps going backwards."""


class _PyAVSource:
    """A kept-open PyAV container that decodes sorted frame indices with one seek.

    Frame ``i`` is found by its presentation timestamp. Some files carry wrong ones (H.264 with B-frames in AVI: the
    container stores decode-order times); the decoder still outputs their frames in display order, so for such files
    (found from the first packets at open, or when output timestamps go backwards) frames are indexed by their decode
    timestamps, which then count output frames.
    """

    def __init__(self, path: Path):
        self._container = _open(path)
        try:
            self.info = _stream_info(self._container)
            self._stream = self._container.streams.video[0]
            self._stream.codec_context.thread_count = 1  # parallelism comes from data-loader workers
            # One scaler for all frames: a frame's own to_ndarray() builds a new FFmpeg scaler context (and, with
            # its default of automatic threads, a thread pool) for every frame, which cost more than decoding.
            self._reformatter = VideoReformatter()
            self._tb = float(self._stream.time_base)
            self._use_dts = False
            self._t0 = self._first_timestamp()
        except VideoError:
            self._container.close()
            raise
        except av.error.FFmpegError as exc:
            self._container.close()
            raise VideoError(f"cannot be read ({exc})") from None

    def _first_timestamp(self) -> float:
        """Seconds of the first shown frame: the smallest pts of the first packets, not before the stream start.

        When the codec reorders frames (B-frames) but the first packets' pts rise in decode order, the container
        stored decode-order times: index frames by decode timestamps instead.
        """
        start = self._stream.start_time
        start_s = float(start * self._stream.time_base) if start is not None else None
        pts = []
        packets = self._container.demux(self._stream)
        try:
            for count, packet in enumerate(packets):
                if packet.pts is not None:
                    pts.append(packet.pts)
                if count >= 16:
                    break
        finally:
            packets.close()
        if self._stream.codec_context.has_b_frames and len(pts) >= 8 and all(a < b for a, b in zip(pts, pts[1:])):
            return self._switch_to_dts()
        if not pts:
            return start_s or 0.0
        smallest = float(min(pts) * self._stream.time_base)
        return smallest if start_s is None else max(smallest, start_s)

    def close(self) -> None:
        self._container.close()

    def _switch_to_dts(self) -> float:
        """Index frames by decode timestamps from now on, counted from the first output frame's; returns that time."""
        self._container.seek(0, backward=True, any_frame=False, stream=self._stream)
        for frame in self._container.decode(self._stream):
            if frame.dts is None:
                raise VideoError("has frame timestamps out of order and no decode timestamps")
            self._t0 = float(frame.dts * self._tb)
            self._use_dts = True
            return self._t0
        raise VideoError("holds no decodable frame")

    def _frames(self, seek_s: float):
        """(index, frame) for the frames decoded after seeking to the keyframe at or before ``seek_s`` seconds."""
        target = int(math.floor((max(seek_s, 0.0) + self._t0) / self._tb))
        self._container.seek(target, backward=True, any_frame=False, stream=self._stream)
        previous = None
        index = None
        for frame in self._container.decode(self._stream):
            ts = frame.dts if self._use_dts else frame.pts
            if ts is not None:
                if not self._use_dts:
                    if previous is not None and ts < previous:
                        raise _DisorderedTimestamps
                    previous = ts
                index = int(round((ts * self._tb - self._t0) * self.info.fps))
            elif self._use_dts and index is not None:
                index += 1  # frames flushed at the end of the file have no decode timestamp
            else:
                continue
            yield index, frame

    def _rgb(self, frame, height: int, width: int) -> np.ndarray:
        """One decoded frame as uint8 (height, width, 3) RGB, converted and resized by FFmpeg's scaler (bilinear)."""
        return self._reformatter.reformat(frame, format="rgb24", width=width, height=height, threads=1).to_ndarray()

    def decode(self, wanted: list[int], height: int, width: int):
        """Frames ``wanted`` (sorted, unique) -> ({index: RGB array}, the last frame before ``wanted[0]`` or None).

        One seek to the keyframe before ``wanted[0]``; if that lands after it (a demuxer that seeks on decode
        timestamps), seek again further back.
        """
        first, last, want = wanted[0], wanted[-1], set(wanted)
        back = 0.0
        while True:
            seek_s = first / self.info.fps - back
            got: dict[int, np.ndarray] = {}
            before = None
            first_seen = None
            latest = None  # (index, frame) of the last frame decoded at or after ``first``
            ended = False  # decoding went past ``last`` or found every wanted frame (not the end of the file)
            error = None
            try:
                for i, frame in self._frames(seek_s):
                    if first_seen is None:
                        first_seen = i
                    if i < first:
                        before = frame
                        continue
                    if i > last:
                        ended = True
                        break
                    latest = (i, frame)
                    if i in want and i not in got:
                        got[i] = self._rgb(frame, height, width)
                        if len(got) == len(want):
                            ended = True
                            break
            except _DisorderedTimestamps:
                self._switch_to_dts()
                continue
            except av.error.FFmpegError as exc:
                error = exc
            landed_late = first_seen is None or first_seen > first
            if landed_late and error is None and seek_s > 0:
                back = max(2 * back, 1.0)
                continue
            if error is not None and not got and before is None:
                raise VideoError(f"cannot be decoded near frame {first} ({error})")
            if not ended and latest is not None and latest[0] not in got:
                # The file ended before ``last``: its last frame stands in for the wanted ones after it.
                got[latest[0]] = self._rgb(latest[1], height, width)
            if before is not None:
                before = self._rgb(before, height, width) if not got else None
            return got, before

    def last_decodable_index(self) -> int:
        """Index of the last frame that decodes (seeking two seconds before the promised end)."""
        seek_s = (self.info.num_frames - 1) / self.info.fps - 2.0
        while True:
            found = -1
            try:
                for i, _ in self._frames(seek_s):
                    found = max(found, i)
            except _DisorderedTimestamps:
                self._switch_to_dts()
                continue
            except av.error.FFmpegError:
                pass
            return found


MERGE_GAP_S = 0.5
""":meth:`VideoReader.read_windows` decodes two windows in one pass when the second starts at most this many seconds
after the first ends: decoding on through a short gap costs less than a seek (which decodes from the keyframe before
the window, on average half a keyframe interval: 0.5 s for prepared files, seconds for raw downloads)."""


def merge_groups(spans: Sequence[tuple[int, int]], gap: int) -> list[list[int]]:
    """Group the positions of ``(first, last)`` frame spans: sorted by ``first``, a span joins the current group when
    it starts at most ``gap`` frames after the group's last frame. Each group lists positions in ``first`` order."""
    groups: list[list[int]] = []
    end = None
    for k in sorted(range(len(spans)), key=lambda k: spans[k][0]):
        first, last = spans[k]
        if end is None or first > end + gap:
            groups.append([k])
            end = last
        else:
            groups[-1].append(k)
            end = max(end, last)
    return groups


class VideoReader:
    """One open video file; read any number of windows or frame sets from it, one seek each.

    ``size`` is the output frame size (see :data:`Size`). Use as a context manager or call :meth:`close`. Raises
    :class:`VideoError` for a broken file.
    """

    def __init__(self, path: str | os.PathLike, size: Size = None):
        self.path = Path(path)
        self._source = _PyAVSource(self.path)
        self.height, self.width = output_size(self._source.info.height, self._source.info.width, size)
        self.info: VideoInfo = self._source.info

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at the given indices (any order, repeats allowed) as uint8 (len, H, W, 3) RGB.

        An index past the file's last decodable frame gives that last frame.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(indices), self.height, self.width, 3), dtype=np.uint8)
        if len(indices) == 0:
            return out
        if indices.min() < 0:
            raise ValueError(f"frame indices must be >= 0, got {int(indices.min())}")
        wanted = sorted(set(indices.tolist()))
        got, before = self._source.decode(wanted, self.height, self.width)
        if not got:
            if before is None:
                raise VideoError(f"holds no decodable frame at or after index {wanted[0]}")
            got = {wanted[0]: before}
        have = sorted(got)
        for k, i in enumerate(indices.tolist()):
            frame = got.get(i)
            if frame is None:
                # Not delivered (past the file's true end, or a gap in timestamps): the nearest earlier frame.
                pos = int(np.searchsorted(have, i, side="right")) - 1
                frame = got[have[pos]] if pos >= 0 else (before if before is not None else got[have[0]])
            out[k] = frame
        return out

    def read_window(self, start_s: float, end_s: float, n: int) -> np.ndarray:
        """``n`` frames spread uniformly over ``[start_s, end_s)`` seconds, uint8 (n, H, W, 3)."""
        return self.read_frames(frame_indices(start_s, end_s, self.info.fps, self.info.num_frames, n))

    def read_windows(self, windows: Sequence[tuple[float, float]], n: int) -> list[np.ndarray]:
        """:meth:`read_window` for each ``(start_s, end_s)``, in order; windows that overlap (or lie less than
        :data:`MERGE_GAP_S` apart) are decoded in one pass, so their shared frames are decoded once.

        For files whose frame timestamps have no gaps the frames equal those of separate :meth:`read_window` calls.
        """
        fps, count = self.info.fps, self.info.num_frames
        indices = [frame_indices(s, e, fps, count, n) for s, e in windows]
        out: list[np.ndarray | None] = [None] * len(indices)
        gap = int(MERGE_GAP_S * fps)
        for group in merge_groups([(int(i[0]), int(i[-1])) for i in indices], gap):
            frames = self.read_frames(np.concatenate([indices[k] for k in group]))
            for pos, k in enumerate(group):
                out[k] = frames[pos * n:(pos + 1) * n]
        return out


def probe(path: str | os.PathLike, verify: bool = True) -> VideoInfo:
    """Duration, fps, frame count and size of a video file.

    With ``verify`` the first frame and the frames near the promised end are decoded too, so that truncated or
    undecodable files are found here (raising :class:`VideoError` with the reason) rather than in a long run. A file
    may fall short of its header by up to :data:`TRUNCATION_SLACK_S` seconds of frames; more is truncation.
    """
    source = _PyAVSource(Path(path))
    try:
        if verify:
            got, _ = source.decode([0], source.info.height, source.info.width)
            if 0 not in got:
                raise VideoError("its first frame does not decode")
            reached = source.last_decodable_index()
            check_truncation(source.info.num_frames, reached + 1, source.info.fps)
        return source.info
    finally:
        source.close()


def check_truncation(promised: int, decoded: int, fps: float) -> None:
    """Raise :class:`VideoError` when ``decoded`` frames fall short of the ``promised`` count by more than the slack."""
    if decoded < promised - max(1, int(TRUNCATION_SLACK_S * fps)):
        raise VideoError(
            f"is truncated: its header promises {promised} frames but only {max(decoded, 0)} decode"
        )


def read_clip(path: str | os.PathLike, start_s: float, end_s: float, n: int, size: Size = None) -> np.ndarray:
    """Open, read one window, close: the simple path (a :class:`VideoReader` is faster for several windows)."""
    with VideoReader(path, size) as reader:
        return reader.read_window(start_s, end_s, n)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    keyframe_interval_s: float | None = 1.0,
    crf: int = 18,
) -> None:
    """Write uint8 RGB frames (each H x W x 3, even H and W) as an H.264 mp4, atomically.

    ``fps`` may be a Fraction (``Fraction(30000, 1001)``); a float is matched to a fraction with denominator <= 1001.
    ``keyframe_interval_s`` puts a keyframe every so many seconds (fast random access); ``None`` leaves x264's default
    (at most 250 frames apart, plus scene cuts).
    """
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream = None
            for img in frames:
                if stream is None:
                    h, w = img.shape[:2]
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                    opts = {"crf": str(crf), "preset": "veryfast"}
                    if keyframe_interval_s is not None:
                        g = max(1, int(round(keyframe_interval_s * float(rate))))
                        opts["x264-params"] = f"keyint={g}:min-keyint={g}:scenecut=0"
                    stream.options = opts
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is None:
                raise ValueError("write_video needs at least one frame")
            for packet in stream.encode():
                container.mux(packet)
