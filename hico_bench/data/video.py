"""Video IO with PyAV: probe a file, read clips by time window, write small H.264 files.

Frame selection follows the HiCo spec (method.md section 3): a window ``[s, e)`` seconds of a file with ``fps`` frames
per second and ``num_frames`` frames covers the frame indices ``start = int(s * fps)`` to
``end = min(int(e * fps), num_frames)``; ``n`` indices are ``linspace(start, end, n)`` clamped to ``[start, end - 1]``.
The reader always returns exactly ``n`` frames: when a file holds fewer frames than its header promises, the last
decoded frame is repeated.

A :class:`VideoReader` keeps one container open, so that several windows of one video (the HiCo sampler reads three)
cost one seek each and no re-open. Frames are resized inside FFmpeg's scaler while converting to RGB, and only the
frames that are needed are converted.
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

from hico_bench.io import atomic_path

Size = int | tuple[int, int] | None
"""Target frame size: ``None`` keeps the file's size, an int is the short side (aspect kept), a pair is (H, W)."""


class VideoError(Exception):
    """A video that cannot be used: missing, empty, truncated or undecodable. The message is the reason."""


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds
    fps: float
    num_frames: int
    width: int
    height: int


def frame_indices(start_s: float, end_s: float, fps: float, num_frames: int, n: int) -> np.ndarray:
    """The ``n`` frame indices of the window ``[start_s, end_s)`` (method.md section 3), as int64."""
    start = int(start_s * fps)
    end = min(int(end_s * fps), num_frames)
    start = min(max(start, 0), max(num_frames - 1, 0))
    end = max(end, start + 1)
    idx = np.linspace(start, end, n)
    return np.clip(idx, start, end - 1).astype(np.int64)


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
    return VideoInfo(duration=num_frames / fps, fps=fps, num_frames=int(num_frames), width=cc.width, height=cc.height)


class VideoReader:
    """One open video file; read any number of windows or frame sets from it, one seek each.

    ``size`` is the output frame size (see :data:`Size`). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, size: Size = None):
        self.path = Path(path)
        self._container = _open(self.path)
        try:
            self.info = _stream_info(self._container)
        except VideoError:
            self._container.close()
            raise
        self._stream = self._container.streams.video[0]
        self._tb = float(self._stream.time_base)
        self._t0 = float(self._stream.start_time * self._stream.time_base) if self._stream.start_time else 0.0
        self.height, self.width = output_size(self.info.height, self.info.width, size)

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def _index_of(self, frame) -> int:
        t = (frame.pts * self._tb if frame.pts is not None else frame.time) - self._t0
        return int(round(t * self.info.fps))

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at the given indices (any order, repeats allowed) as uint8 (len, H, W, 3) RGB."""
        indices = np.asarray(indices, dtype=np.int64)
        wanted = sorted(set(int(i) for i in indices))
        first, last = wanted[0], wanted[-1]
        target = int((first / self.info.fps + self._t0) / self._tb)
        got: dict[int, np.ndarray] = {}
        previous = None  # the last frame decoded before reaching ``first``: stands in if the file is short
        try:
            self._container.seek(max(target, 0), backward=True, any_frame=False, stream=self._stream)
            for frame in self._container.decode(self._stream):
                i = self._index_of(frame)
                if i > last:
                    break
                if i in wanted or i < first:
                    # Convert (and resize, inside FFmpeg) only frames that are needed.
                    if i >= first or previous is None or i == first - 1:
                        rgb = frame.to_ndarray(format="rgb24", width=self.width, height=self.height)
                        if i >= first:
                            got[i] = rgb
                        else:
                            previous = rgb
                if len(got) == len(wanted):
                    break
        except av.error.FFmpegError as exc:
            if not got and previous is None:
                raise VideoError(f"cannot be decoded near frame {first} ({exc})") from None
        if not got:
            if previous is None:
                raise VideoError(f"holds no decodable frame at or after index {first}")
            got[first] = previous
        # Fill frames the file did not deliver (past its true end) with the nearest earlier decoded frame.
        have = sorted(got)
        out = np.empty((len(indices), self.height, self.width, 3), dtype=np.uint8)
        for k, i in enumerate(indices):
            j = int(i)
            if j not in got:
                pos = np.searchsorted(have, j, side="right") - 1
                j = have[max(pos, 0)]
            out[k] = got[j]
        return out

    def read_window(self, start_s: float, end_s: float, n: int) -> np.ndarray:
        """``n`` frames spread uniformly over ``[start_s, end_s)`` seconds, uint8 (n, H, W, 3)."""
        return self.read_frames(frame_indices(start_s, end_s, self.info.fps, self.info.num_frames, n))


def probe(path: str | os.PathLike, verify: bool = True) -> VideoInfo:
    """Duration, fps, frame count and size of a video file.

    With ``verify`` the first frame and the frames near the promised end are decoded too, so that truncated or
    undecodable files are found here (raising :class:`VideoError` with the reason) rather than in a long run. A file
    may fall short of its header by up to half a second of frames (rounding in containers); more is truncation.
    """
    with VideoReader(path) as reader:
        if verify:
            reader.read_frames([0])
            last = reader.info.num_frames - 1
            reached = _last_decodable_index(reader, last)
            if reached < last - max(1, int(0.5 * reader.info.fps)):
                raise VideoError(
                    f"is truncated: its header promises {reader.info.num_frames} frames but decoding stops "
                    f"at frame {reached}"
                )
        return reader.info


def _last_decodable_index(reader: VideoReader, last: int) -> int:
    """Index of the last frame that actually decodes at or before ``last`` (seeking near the end)."""
    target = int(((max(last - 2 * reader.info.fps, 0)) / reader.info.fps + reader._t0) / reader._tb)
    found = -1
    try:
        reader._container.seek(max(target, 0), backward=True, any_frame=False, stream=reader._stream)
        for frame in reader._container.decode(reader._stream):
            found = reader._index_of(frame)
            if found >= last:
                break
    except av.error.FFmpegError:
        pass
    return found


def read_clip(path: str | os.PathLike, start_s: float, end_s: float, n: int, size: Size = None) -> np.ndarray:
    """Open, read one window, close: the simple path (a :class:`VideoReader` is faster for several windows)."""
    with VideoReader(path, size) as reader:
        return reader.read_window(start_s, end_s, n)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    keyframe_interval_s: float | None = 1.0,
    crf: int = 18,
) -> None:
    """Write uint8 RGB frames (each H x W x 3, even H and W) as an H.264 mp4, atomically.

    ``keyframe_interval_s`` puts a keyframe every so many seconds (fast random access); ``None`` leaves x264's default.
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
                        g = max(1, int(round(keyframe_interval_s * fps)))
                        opts["x264-params"] = f"keyint={g}:min-keyint={g}:scenecut=0"
                    stream.options = opts
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is None:
                raise ValueError("write_video needs at least one frame")
            for packet in stream.encode():
                container.mux(packet)
