"""Tests of hico_bench.data.prepare: re-encoding real tiny videos, resuming, quarantining, rewriting manifests."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import pandas as pd
import pytest

from hico_bench.data.prepare import (
    prepare_video,
    prepare_videos,
    prepared_manifest,
    prepared_path,
    prepared_size,
    source_root,
)
from hico_bench.data.video import VideoReader, probe, write_video
from hico_bench.errors import UserError
from tests.conftest import frame_index, index_frame

def make_video(path: Path, n: int, fps, h: int = 96, w: int = 128) -> Path:
    """A source with x264's default keyframe interval (keyframes far apart, as in raw downloads)."""
    write_video(path, (index_frame(i, h, w) for i in range(n)), fps, keyframe_interval_s=None)
    return path


def keyframe_indices(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        return sorted(round(float(p.pts * stream.time_base) * fps) for p in container.demux(stream) if p.is_keyframe)


def test_prepared_size():
    assert prepared_size(96, 128, 32) == (32, 42)  # 42.67 -> nearest even
    assert prepared_size(256, 340, 128) == (128, 170)
    assert prepared_size(1080, 1920, 128) == (128, 228)
    assert prepared_size(1920, 1080, 128) == (228, 128)  # portrait
    with pytest.raises(UserError, match="even"):
        prepared_size(96, 128, 31)


def test_prepare_video_size_fps_frames_and_keyframes(tmp_path):
    src = make_video(tmp_path / "src.mp4", 75, 25)
    assert keyframe_indices(src) == [0]  # the source has a single keyframe
    n = prepare_video(src, tmp_path / "out" / "dst.mp4", short_side=32, keyframe_interval_s=1.0)
    info = probe(tmp_path / "out" / "dst.mp4")
    assert n == 75 and info.num_frames == 75
    assert (info.height, info.width) == (32, 42)
    assert info.fps == 25.0
    assert keyframe_indices(tmp_path / "out" / "dst.mp4") == [0, 25, 50]
    with VideoReader(tmp_path / "out" / "dst.mp4") as reader:  # every frame kept, in order
        assert [frame_index(f) for f in reader.read_frames(range(75))] == list(range(75))


def test_non_integer_fps_is_kept(tmp_path):
    src = make_video(tmp_path / "ntsc.mp4", 70, Fraction(30000, 1001), h=128, w=96)  # portrait
    prepare_video(src, tmp_path / "ntsc_out.mp4", short_side=32, keyframe_interval_s=0.5)
    info = probe(tmp_path / "ntsc_out.mp4")
    assert info.fps == 30000 / 1001 and info.num_frames == 70
    assert (info.height, info.width) == (42, 32)
    assert keyframe_indices(tmp_path / "ntsc_out.mp4") == [0, 15, 30, 45, 60]


def test_prepare_videos_resumes_and_quarantines(tmp_path):
    data = tmp_path / "data"
    good = [make_video(data / "a" / f"v{i}.mp4", 30 + 10 * i, 25) for i in range(3)]
    broken = data / "b" / "cut.mp4"
    broken.parent.mkdir()
    broken.write_bytes(good[0].read_bytes()[: good[0].stat().st_size // 2])
    empty = data / "b" / "empty.mp4"
    empty.write_bytes(b"")
    missing = data / "b" / "missing.mp4"
    pairs = [(p, Path("x") / p.name) for p in good] + [(broken, "cut.mp4"), (empty, "e.mp4"), (missing, "m.mp4")]
    out = tmp_path / "prepared"
    quarantine = tmp_path / "q.csv"

    summary = prepare_videos(pairs, out, short_side=32, workers=2, quarantine_path=quarantine, progress=False)
    assert summary.as_dict() == {
        "total": 6, "encoded": 3, "skipped": 0, "failed": 3, "quarantine_path": str(quarantine),
    }
    rows = pd.read_csv(quarantine)
    assert list(rows.columns) == ["path", "reason"]
    reasons = dict(zip(rows["path"], rows["reason"]))
    assert set(reasons) == {str(broken), str(empty), str(missing)}
    assert "cannot be opened" in reasons[str(broken)]
    assert "empty" in reasons[str(empty)] and "missing" in reasons[str(missing)]
    outputs = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert outputs == [Path("x/v0.mp4"), Path("x/v1.mp4"), Path("x/v2.mp4")]  # no partial or temporary files
    assert [probe(out / "x" / f"v{i}.mp4").num_frames for i in range(3)] == [30, 40, 50]

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    again = prepare_videos(pairs, out, short_side=32, workers=1, quarantine_path=quarantine, progress=False)
    assert (again.encoded, again.skipped, again.failed) == (0, 3, 3)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == mtimes


def test_manifest_paths_mirror_the_source_layout(tmp_path):
    data = tmp_path / "ucf"
    a = make_video(data / "ClassA" / "v_a.mp4", 20, 25, 48, 64)
    b = make_video(data / "ClassB" / "v_b.mp4", 20, 25, 48, 64)
    seg0 = make_video(data / "long" / "v_c_0000000_0005000.mp4", 20, 25, 48, 64)
    seg1 = make_video(data / "long" / "v_c_0005000_0007000.mp4", 10, 25, 48, 64)
    broken = data / "ClassB" / "v_broken.mp4"
    broken.write_bytes(b"not a video")
    parts = json.dumps([[0.0, 5.0, str(seg0)], [5.0, 7.0, str(seg1)]])
    manifest = pd.DataFrame({
        "video_id": ["a", "b", "c", "broken"],
        "path": [str(a), str(b), str(seg0), str(broken)],
        "split": ["train"] * 4,
        "parts": ["", "", parts, ""],
    })
    out = tmp_path / "prepared"
    assert source_root(manifest["path"]) == data

    summary = prepare_videos(manifest, out, short_side=32, workers=1, progress=False)
    assert (summary.total, summary.encoded, summary.failed) == (5, 4, 1)
    assert Path(summary.quarantine_path) == out / "prepare_quarantine.csv"

    result = prepared_manifest(manifest, out)
    assert list(result["video_id"]) == ["a", "b", "c"]  # the quarantined video is left out
    assert list(result["path"]) == [
        str(out / "ClassA" / "v_a.mp4"), str(out / "ClassB" / "v_b.mp4"), str(out / "long" / "v_c_0000000_0005000.mp4"),
    ]
    assert json.loads(result["parts"][2]) == [
        [0.0, 5.0, str(out / "long" / "v_c_0000000_0005000.mp4")],
        [5.0, 7.0, str(out / "long" / "v_c_0005000_0007000.mp4")],
    ]
    assert result["parts"][0] == ""
    assert all(Path(p).exists() for p in result["path"])


def test_path_mistakes_are_user_errors(tmp_path):
    assert prepared_path(tmp_path / "a" / "x.avi", tmp_path, "/out") == Path("/out/a/x.mp4")
    with pytest.raises(UserError, match="not under the prepare root"):
        prepared_path("/elsewhere/x.avi", tmp_path, "/out")
    clash = pd.DataFrame({"path": [str(tmp_path / "x.avi"), str(tmp_path / "x.mkv")]})
    with pytest.raises(UserError, match="would both be prepared as"):
        prepare_videos(clash, tmp_path / "out", progress=False)
    with pytest.raises(UserError, match="no 'path' column"):
        prepare_videos(pd.DataFrame({"file": ["x"]}), tmp_path / "out", progress=False)
    with pytest.raises(UserError, match="'parts' is not valid JSON"):
        prepare_videos(pd.DataFrame({"path": ["/d/x.mp4"], "parts": ["[oops"]}), tmp_path / "out", progress=False)
