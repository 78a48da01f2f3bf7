"""Frame sources: a plain file, HiCo's 5-s segment layout and the in-memory cache give the same frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hico_bench.data.sources import InMemoryVideo, SegmentedVideo, open_video, parse_parts, window_plan
from hico_bench.data.video import VideoError, VideoReader, frame_indices, write_video
from hico_bench.errors import UserError

FPS = 10
N = 120  # 12 s
H, W = 48, 64


def level_frames(indices) -> list[np.ndarray]:
    """Flat frames whose colour identifies the frame after lossy coding: red = index % 16, green = index // 16."""
    return [np.full((H, W, 3), (16 * (i % 16) + 8, 16 * (i // 16) + 8, 128), dtype=np.uint8) for i in indices]


def identify(frames: np.ndarray) -> list[int]:
    rg = np.rint((frames[..., :2].reshape(len(frames), -1, 2).mean(axis=1) - 8) / 16).astype(int)
    return [int(g * 16 + r) for r, g in rg]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    whole = root / "whole.mp4"
    write_video(whole, level_frames(range(N)), FPS)
    parts = []
    for start in (0, 5, 10):
        end = min(start + 5, N // FPS)
        path = root / f"v_vid_{start * 1000:07d}_{end * 1000:07d}.mp4"
        write_video(path, level_frames(range(start * FPS, end * FPS)), FPS)
        parts.append([start, end, str(path)])
    return {"whole": str(whole), "parts": parts}


def segmented_row(videos) -> dict:
    return {"video_id": "vid", "path": videos["parts"][0][2], "parts": json.dumps(videos["parts"])}


WINDOWS = [(0.0, 2.133), (4.0, 6.2), (3.9, 5.0), (8.9, 10.1), (9.5, 11.9), (10.5, 12.0), (11.5, 14.0)]


def test_open_video_picks_the_right_source(videos):
    for parts in ("", float("nan"), None):
        src = open_video({"path": videos["whole"], "parts": parts}, 24)
        assert isinstance(src, VideoReader)
        assert src.read_window(0, 1, 2).shape == (2, 24, 32, 3)
        src.close()
    with open_video(segmented_row(videos), 24) as seg:
        assert isinstance(seg, SegmentedVideo)
        assert seg.info.duration == 12.0 and seg.info.fps == FPS
    mem = open_video({"path": videos["whole"]}, 24, in_memory=True)
    assert isinstance(mem, InMemoryVideo) and mem.nbytes == N * 24 * 32 * 3


def test_segmented_gives_the_frames_of_the_unsegmented_file(videos):
    with VideoReader(videos["whole"]) as whole, open_video(segmented_row(videos)) as seg:
        for start, end in WINDOWS:
            want = frame_indices(start, end, FPS, N, 16).tolist()
            a = whole.read_window(start, end, 16)
            b = seg.read_window(start, end, 16)
            assert a.shape == b.shape == (16, H, W, 3)
            assert identify(a) == identify(b) == want
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 4


def test_window_across_a_boundary_decodes_both_segments(videos):
    with open_video(segmented_row(videos)) as seg:
        frames = seg.read_window(4.0, 6.2, 16)
        assert sorted(seg._readers) == [0, 1]
        got = identify(frames)
        assert got[0] < 50 <= got[-1]


def test_in_memory_equals_the_decoders(videos):
    for row in ({"path": videos["whole"]}, segmented_row(videos)):
        with open_video(row, 24) as src:
            mem = InMemoryVideo(src)
            assert mem.info == src.info
            for start, end in WINDOWS:
                for n in (1, 16):
                    assert np.array_equal(mem.read_window(start, end, n), src.read_window(start, end, n))


def test_exactly_n_frames_at_the_end(videos):
    for row in ({"path": videos["whole"]}, segmented_row(videos)):
        src = open_video(row, 24)
        for start, end, n in ((11.0, 12.0, 16), (11.9, 13.0, 16), (11.95, 14.0, 5)):
            frames = src.read_window(start, end, n)
            assert frames.shape == (n, 24, 32, 3)
            assert identify(frames)[-1] == N - 1
        src.close()


def test_window_plan_brute_force():
    """The plan's frames are those of ``frame_indices`` over the concatenated touched parts."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 5))
        starts = [5.0 * i for i in range(k)]
        counts = [int(c) for c in rng.integers(1, 60, size=k)]
        fps = [float(rng.choice([10.0, 12.0, 25.0]))] * k
        s = float(rng.uniform(0, 5 * k))
        e = s + float(rng.uniform(0.01, 4))
        n = int(rng.integers(1, 17))
        plan = window_plan(starts, counts, fps, s, e, n)
        first = int(s // 5) if s < 5 * k else k - 1
        last = max(min(int(np.ceil(e / 5)) - 1, k - 1), first)
        flat = [(p, i) for p in range(first, last + 1) for i in range(counts[p])]
        want = frame_indices(s - starts[first], e - starts[first], fps[first], len(flat), n)
        got = [(p, int(i)) for p, idx in plan for i in idx]
        assert got == [flat[i] for i in want]


def test_parts_errors_and_missing_segments(videos, tmp_path):
    with pytest.raises(UserError, match="'parts'"):
        parse_parts({"video_id": "x", "path": "/a.mp4", "parts": "[[0, 5"})
    with pytest.raises(UserError, match="ordered"):
        parse_parts({"video_id": "x", "path": "/a.mp4", "parts": json.dumps([[5, 10, "b"], [0, 5, "a"]])})
    assert parse_parts({"path": "/d/a.mp4", "parts": json.dumps([[0, 5, "a.mp4"]])}) == [(0.0, 5.0, "/d/a.mp4")]
    parts = [list(p) for p in videos["parts"]]
    parts[1][2] = str(tmp_path / "gone.mp4")
    seg = open_video({"path": parts[0][2], "parts": json.dumps(parts)})
    assert seg.read_window(0.0, 2.0, 4).shape[0] == 4  # the missing segment is not needed
    with pytest.raises(VideoError, match="gone.mp4"):
        seg.read_window(4.0, 6.0, 4)
    seg.close()
    with pytest.raises(VideoError):
        open_video({"path": str(tmp_path / "nothing.mp4"), "parts": ""})
