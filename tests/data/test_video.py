"""Tests of hico_bench.data.video on tiny real videos whose frames carry their own index in the pixels."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from hico_bench.data.video import (
    VideoError,
    VideoReader,
    frame_indices,
    output_size,
    probe,
    read_clip,
    write_video,
)
from tests import conftest
from tests.conftest import frame_index

H, W = 48, 64


def index_frame(i: int, h: int = H, w: int = W) -> np.ndarray:
    return conftest.index_frame(i, h, w)


def indices_of(frames: np.ndarray) -> list[int]:
    return [frame_index(f) for f in frames]


def write_with_pyav(path: Path, n: int, fps: int, codec: str, options: dict, gop: int, max_b_frames: int = 0) -> None:
    """Containers and codecs that write_video does not make (AVI, MKV), with B-frames when asked."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = options
        stream.codec_context.gop_size = gop
        if max_b_frames:
            stream.codec_context.max_b_frames = max_b_frames
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def remux_faststart(src: Path, dst: Path) -> None:
    """Copy an mp4 with its index (moov) first, so that a cut file still opens and promises all frames."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = inp.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)


# name: (fps, frames); the files are written once per module.
VIDEOS = {
    "mp4_30fps_x264_default_keyint": (30, 150),
    "mp4_29.97fps_keyint_1s": (Fraction(30000, 1001), 100),
    "mp4_25fps_keyint_2s": (25, 90),
    "mp4_short_10_frames": (30, 10),
    "avi_h264_bframes": (25, 60),  # decode-order timestamps in the container
    "avi_mpeg4_bframes": (25, 60),  # the UCF101/HMDB51 codec family
    "mkv_h264": (25, 60),  # no frame count in the header
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    paths = {name: root / (name + "." + name.split("_")[0]) for name in VIDEOS}
    frames = lambda n: (index_frame(i) for i in range(n))  # noqa: E731
    write_video(paths["mp4_30fps_x264_default_keyint"], frames(150), 30, keyframe_interval_s=None)
    write_video(paths["mp4_29.97fps_keyint_1s"], frames(100), 30000 / 1001, keyframe_interval_s=1.0)
    write_video(paths["mp4_25fps_keyint_2s"], frames(90), 25, keyframe_interval_s=2.0)
    write_video(paths["mp4_short_10_frames"], frames(10), 30)
    write_with_pyav(paths["avi_h264_bframes"], 60, 25, "libx264", {"crf": "18", "preset": "veryfast"}, gop=25)
    write_with_pyav(paths["avi_mpeg4_bframes"], 60, 25, "mpeg4", {"qscale": "2"}, gop=25, max_b_frames=2)
    write_with_pyav(paths["mkv_h264"], 60, 25, "libx264", {"crf": "18", "preset": "veryfast"}, gop=25)
    return paths


# ---------------------------------------------------------------------------------------------------------------------
# Pure functions


def frame_indices_reference(start_s, end_s, fps, num_frames, n):
    """The official frame rule (datasets/base/base_dataset.py, _get_time_stamp_frames_list) with exact fractions."""
    start = max(int(start_s * fps), 0)
    end = min(int(end_s * fps), num_frames)
    start = min(start, num_frames - 1)  # a window past the end shows the last frame
    end = max(end, start + 1)
    out = []
    for k in range(n):
        value = Fraction(start) if n == 1 else start + Fraction(k * (end - start), n - 1)
        value = min(max(value, start), end - 1)
        out.append(int(value))  # truncation, as torch's .long()
    return out


def test_frame_indices_match_the_exact_definition():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        fps = float(rng.choice([25, 30, 30000 / 1001, 24000 / 1001, 12.5, 60]))
        num_frames = int(rng.integers(1, 400))
        start = float(rng.uniform(-1, num_frames / fps + 1))
        end = start + float(rng.uniform(0, 4))
        n = int(rng.choice([1, 2, 8, 16, 32]))
        got = frame_indices(start, end, fps, num_frames, n)
        assert got.dtype == np.int64 and got.shape == (n,)
        assert got.tolist() == frame_indices_reference(start, end, fps, num_frames, n), (start, end, fps, num_frames, n)


def test_frame_indices_known_values():
    # HiCo's clip: 16 frames over 2.133 s at 30 fps = frames 0..63, stride about 4.
    assert frame_indices(0.0, 64 / 30, 30, 300, 16).tolist() == [
        0, 4, 8, 12, 17, 21, 25, 29, 34, 38, 42, 46, 51, 55, 59, 63,
    ]
    assert frame_indices(9.0, 12.0, 30, 300, 4).tolist() == [270, 280, 290, 299]  # cut at the last frame
    assert frame_indices(20.0, 22.0, 30, 300, 3).tolist() == [299, 299, 299]  # entirely past the end
    assert frame_indices(0.0, 0.1, 30, 300, 5).tolist() == [0, 0, 1, 2, 2]  # denser than the file: repeats
    with pytest.raises(ValueError):
        frame_indices(0, 1, 30, 300, 0)


def test_output_size():
    assert output_size(240, 320, None) == (240, 320)
    assert output_size(240, 320, 112) == (112, 149)
    assert output_size(320, 240, 112) == (149, 112)
    assert output_size(256, 340, 128) == (128, 170)
    assert output_size(240, 320, (100, 50)) == (100, 50)


# ---------------------------------------------------------------------------------------------------------------------
# Probing


def test_probe_values(videos):
    for name, (fps, n) in VIDEOS.items():
        info = probe(videos[name])
        assert info.num_frames == n, name
        assert info.fps == pytest.approx(float(fps), abs=1e-9), name
        assert info.duration == pytest.approx(n / float(fps)), name
        assert (info.height, info.width) == (H, W), name
    assert probe(videos["mp4_29.97fps_keyint_1s"]).fps == 30000 / 1001


def test_broken_files_raise_video_error_with_a_reason(videos, tmp_path):
    src = videos["mp4_30fps_x264_default_keyint"]
    data = src.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end: lost
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    remux_faststart(videos["mp4_25fps_keyint_2s"], tmp_path / "faststart.mp4")
    fast = (tmp_path / "faststart.mp4").read_bytes()
    (tmp_path / "faststart_cut.mp4").write_bytes(fast[: len(fast) * 2 // 3])  # index first: opens, ends early
    expected = {
        "half.mp4": "cannot be opened",
        "empty.mp4": "empty (0 bytes)",
        "missing.mp4": "missing",
        "garbage.mp4": "cannot be opened",
        "faststart_cut.mp4": "is truncated: its header promises 90 frames",
    }
    for name, reason in expected.items():
        with pytest.raises(VideoError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            probe(tmp_path / name)
    assert probe(tmp_path / "faststart.mp4").num_frames == 90  # the untouched copy is fine
    for name in ("half.mp4", "empty.mp4", "missing.mp4"):
        with pytest.raises(VideoError):
            VideoReader(tmp_path / name)


def test_truncated_file_still_gives_n_frames_without_verification(videos, tmp_path):
    remux_faststart(videos["mp4_25fps_keyint_2s"], tmp_path / "faststart.mp4")
    fast = (tmp_path / "faststart.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(fast[: len(fast) * 2 // 3])
    with VideoReader(tmp_path / "cut.mp4") as reader:
        assert reader.info.num_frames == 90  # the header's promise
        last = max(indices_of(reader.read_frames(range(90))))
        assert 0 < last < 89
        clip = reader.read_window(3.0, 3.6, 16)  # frames 75..89, none of which is in the file
        assert clip.shape == (16, H, W, 3)
        assert indices_of(clip) == [last] * 16


# ---------------------------------------------------------------------------------------------------------------------
# Reading windows


def _windows(duration: float, rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    clip = 64 / 30  # HiCo's 2.133 s
    fixed = [
        (0.0, clip),
        (duration / 2 - clip / 2, duration / 2 + clip / 2),
        (duration - clip, duration),  # the last window inside the file
        (duration - 0.5, duration - 0.5 + clip),  # runs past the end
        (duration + 1.0, duration + 1.0 + clip),  # entirely past the end
        (0.0, duration),  # the whole file
    ]
    randoms = []
    for _ in range(count):
        s = float(rng.uniform(-0.2, duration))
        randoms.append((s, s + float(rng.uniform(0.05, 3.0))))
    return fixed + randoms


def test_windows_give_exactly_the_defined_frames(videos):
    rng = np.random.default_rng(1)
    for name, path in videos.items():
        with VideoReader(path, size=32) as reader:
            info = reader.info
            assert (reader.height, reader.width) == (32, 43)
            for s, e in _windows(info.duration, rng, 10):
                for n in (16, 5):
                    clip = reader.read_window(s, e, n)
                    assert clip.shape == (n, 32, 43, 3) and clip.dtype == np.uint8
                    expected = frame_indices(s, e, info.fps, info.num_frames, n).tolist()
                    assert indices_of(clip) == expected, (name, s, e, n)


def test_every_single_frame_and_any_order(videos):
    for name in ("avi_h264_bframes", "mp4_29.97fps_keyint_1s"):
        _, n = VIDEOS[name]
        with VideoReader(videos[name]) as reader:
            assert [frame_index(reader.read_frames([i])[0]) for i in range(n)] == list(range(n)), name
            order = [7, 3, 7, 0, n - 1, 3, n + 5]  # repeats, unsorted, one past the end
            assert indices_of(reader.read_frames(order)) == [7, 3, 7, 0, n - 1, 3, n - 1]
            assert reader.read_frames([]).shape == (0, H, W, 3)
            with pytest.raises(ValueError):
                reader.read_frames([-1])


def test_kept_open_equals_open_per_clip(videos):
    rng = np.random.default_rng(2)
    for name, path in videos.items():
        info = probe(path, verify=False)
        with VideoReader(path, size=(24, 40)) as reader:
            for s, e in _windows(info.duration, rng, 12):
                kept = reader.read_window(s, e, 16)
                fresh = read_clip(path, s, e, 16, size=(24, 40))
                assert kept.shape == (16, 24, 40, 3)
                np.testing.assert_array_equal(kept, fresh, err_msg=f"{name} {s} {e}")


def test_frames_match_the_source_pixels(videos):
    with VideoReader(videos["mp4_25fps_keyint_2s"]) as reader:
        clip = reader.read_frames([0, 45, 89])
    for got, i in zip(clip, [0, 45, 89]):
        assert np.abs(got.astype(int) - index_frame(i)).mean() < 3


# ---------------------------------------------------------------------------------------------------------------------
# Writing


def test_write_video_needs_a_frame_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError):
        write_video(tmp_path / "none.mp4", [], 30)
    assert list(tmp_path.iterdir()) == []


def test_write_video_keyframe_interval(videos):
    with av.open(str(videos["mp4_29.97fps_keyint_1s"])) as container:
        stream = container.streams.video[0]
        keys = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.is_keyframe)
    assert np.allclose(np.diff(keys), 30 * 1001 / 30000)  # every 30 frames = 1.001 s
