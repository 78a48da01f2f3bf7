"""The manifest builder on real tiny videos: probing, quarantine, the bad-fraction limit, reading and writing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from hico_bench.data import formats, manifest
from hico_bench.errors import UserError


def listing(rows: list[dict], extra=()) -> pd.DataFrame:
    full = [{"split": "train", "label": "", "label_index": -1, "segments": "", "parts": "", **r} for r in rows]
    return pd.DataFrame(full, columns=[*formats.LISTING_COLUMNS, *extra])


def read_quarantine(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture
def mixed(tmp_path, make_video):
    """Two good videos, a missing one, a zero-byte one and one cut to half its bytes."""
    good1 = make_video(tmp_path / "good1.mp4", num_frames=20, fps=10)
    good2 = make_video(tmp_path / "sub" / "good2.mp4", num_frames=15, fps=25, size=(32, 48))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = make_video(tmp_path / "cut.mp4", num_frames=40, fps=10)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    rows = [
        {"video_id": "g1", "path": str(good1), "label": "a b (c)", "label_index": 0, "time_start": 3},
        {"video_id": "missing", "path": str(tmp_path / "missing.mp4"), "time_start": 4},
        {"video_id": "0123", "path": str(good2), "split": "val", "label": "x", "label_index": 1, "time_start": 5},
        {"video_id": "empty", "path": str(empty), "time_start": 6},
        {"video_id": "cut", "path": str(cut), "time_start": 7},
    ]
    return listing(rows, extra=("time_start",))


@pytest.mark.parametrize("workers", [1, 2])
def test_build_manifest_probes_and_quarantines(mixed, tmp_path, workers):
    quarantine = tmp_path / "out" / "quarantine.csv"
    df = manifest.build_manifest(mixed, quarantine, max_bad_fraction=0.6, workers=workers, desc="test")
    assert list(df.columns) == [*manifest.MANIFEST_COLUMNS, "time_start"]
    assert list(df["video_id"]) == ["g1", "0123"]  # listing order kept
    assert list(df["duration"]) == [2.0, 0.6]
    assert list(df["fps"]) == [10.0, 25.0]
    assert list(df["num_frames"]) == [20, 15]
    assert list(df["time_start"]) == [3, 5]
    assert list(df["label"]) == ["a b (c)", "x"] and list(df["label_index"]) == [0, 1]
    assert str(df["num_frames"].dtype) == "int64" and str(df["duration"].dtype) == "float64"

    rows = read_quarantine(quarantine)
    assert rows[0] == ["path", "reason"]
    reasons = {Path(p).name: r for p, r in rows[1:]}
    assert set(reasons) == {"missing.mp4", "empty.mp4", "cut.mp4"}
    assert reasons["missing.mp4"] == "file is missing"
    assert "empty" in reasons["empty.mp4"]
    assert reasons["cut.mp4"]


def test_bad_fraction_limit_raises_and_still_writes_quarantine(mixed, tmp_path):
    quarantine = tmp_path / "q.csv"
    with pytest.raises(UserError) as excinfo:
        manifest.build_manifest(mixed, quarantine, max_bad_fraction=0.5, workers=1, desc="ucf101")
    message = str(excinfo.value)
    assert "3 of 5 videos of ucf101 are missing or broken" in message and str(quarantine) in message
    assert len(read_quarantine(quarantine)) == 4


def test_quarantine_written_when_nothing_is_broken(tmp_path, make_video):
    video = make_video(tmp_path / "v.mp4")
    quarantine = tmp_path / "q.csv"
    df = manifest.build_manifest(listing([{"video_id": "v", "path": str(video)}]), quarantine, workers=1)
    assert len(df) == 1 and read_quarantine(quarantine) == [["path", "reason"]]


def test_empty_listing_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="No videos are listed for hmdb51"):
        manifest.build_manifest(listing([]), tmp_path / "q.csv", desc="hmdb51")


def test_segment_layout_probes_every_piece(tmp_path, make_video):
    clips = tmp_path / "clip_5s"
    make_video(clips / "v_AAAAAAAAAAA_0000000_0005000.mp4", num_frames=50, fps=10)
    make_video(clips / "v_AAAAAAAAAAA_0005000_0007100.mp4", num_frames=21, fps=10)
    make_video(clips / "v_BBBBBBBBBBB_0000000_0005000.mp4", num_frames=50, fps=10)
    (clips / "v_BBBBBBBBBBB_0005000_0006000.mp4").write_bytes(b"")  # one broken piece loses the whole video
    lst = tmp_path / "training.txt"
    lst.write_text("AAAAAAAAAAA,0000000,0005000\nAAAAAAAAAAA,0005000,0007100\n"
                   "BBBBBBBBBBB,0000000,0005000\nBBBBBBBBBBB,0005000,0006000\n")
    quarantine = tmp_path / "q.csv"
    df = manifest.build_manifest(formats.read_kinetics_segments(lst, clips), quarantine, max_bad_fraction=0.5)
    assert list(df["video_id"]) == ["AAAAAAAAAAA"]
    assert df["duration"][0] == 7.1 and df["fps"][0] == 10.0 and df["num_frames"][0] == 71
    assert df["path"][0] == str(clips / "v_AAAAAAAAAAA_0000000_0005000.mp4")
    assert [p[2] for p in json.loads(df["parts"][0])][1] == str(clips / "v_AAAAAAAAAAA_0005000_0007100.mp4")
    assert [row[0] for row in read_quarantine(quarantine)[1:]] == [str(clips / "v_BBBBBBBBBBB_0005000_0006000.mp4")]


def test_write_read_roundtrip_keeps_types_and_strings(mixed, tmp_path):
    df = manifest.build_manifest(mixed, tmp_path / "q.csv", max_bad_fraction=0.6, workers=1)
    df.loc[0, "segments"] = json.dumps([{"segment": [1.5, 2.0], "label": 'say "hi", wave'}])
    out = tmp_path / "m" / "manifest.csv"
    manifest.write_manifest(df, out)
    back = manifest.read_manifest(out)
    pd.testing.assert_frame_equal(back, df)
    assert back["video_id"][1] == "0123"  # an id that looks like a number stays a string
    assert back["segments"][1] == "" and back["parts"][0] == ""
    assert [str(back[c].dtype) for c in ("label_index", "num_frames", "duration", "fps")] == [
        "int64", "int64", "float64", "float64"]
    assert not any(p.name.startswith(".tmp-") for p in out.parent.iterdir())


def test_parquet_without_pyarrow_is_a_user_error(mixed, tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "_parquet_available", lambda: False)
    df = manifest.build_manifest(mixed, tmp_path / "q.csv", max_bad_fraction=0.6, workers=1)
    with pytest.raises(UserError, match=r"manifest\.parquet as Parquet because pyarrow is not installed"):
        manifest.write_manifest(df, tmp_path / "manifest.parquet")
    assert not (tmp_path / "manifest.parquet").exists()


def test_read_manifest_errors(tmp_path):
    with pytest.raises(UserError, match=r"nothing\.csv does not exist"):
        manifest.read_manifest(tmp_path / "nothing.csv")
    (tmp_path / "short.csv").write_text("video_id,path,split\na,/x.mp4,train\n")
    with pytest.raises(UserError, match="lacks the column"):
        manifest.read_manifest(tmp_path / "short.csv")
    header = ",".join(manifest.MANIFEST_COLUMNS)
    (tmp_path / "bad.csv").write_text(f"{header}\na,/a.mp4,train,x,0,1.0,10,10,,\nb,/b.mp4,train,x,0,1.0,10,ten,,\n")
    with pytest.raises(UserError, match=r"bad\.csv, line 3: column num_frames holds 'ten'"):
        manifest.read_manifest(tmp_path / "bad.csv")


def test_build_dataset_manifest_hmdb51(tmp_path, make_video):
    root, splits = tmp_path / "hmdb51", tmp_path / "testTrainMulti_7030_splits"
    make_video(root / "kiss" / "a.avi", num_frames=12, fps=12)
    make_video(root / "kiss" / "b.avi", num_frames=24, fps=12)
    splits.mkdir()
    (splits / "kiss_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \n")
    out, quarantine = tmp_path / "manifests" / "hmdb51.csv", tmp_path / "manifests" / "hmdb51_quarantine.csv"
    df = manifest.build_dataset_manifest(
        "hmdb51", {"root": str(root), "splits_dir": str(splits)}, out, quarantine, workers=1
    )
    assert list(df["split"]) == ["train", "test"] and list(df["duration"]) == [1.0, 2.0]
    pd.testing.assert_frame_equal(manifest.read_manifest(out), df)
    assert read_quarantine(quarantine) == [["path", "reason"]]


def test_build_dataset_manifest_config_mistakes(tmp_path):
    args = (tmp_path / "m.csv", tmp_path / "q.csv")
    with pytest.raises(UserError, match="activitynet, hacs, hmdb51, k400, ucf101, uk400"):
        manifest.build_dataset_manifest("kinetics", {}, *args)
    with pytest.raises(UserError, match="lack the key 'splits_dir'"):
        manifest.build_dataset_manifest("ucf101", {"root": str(tmp_path)}, *args)
    with pytest.raises(UserError, match="unknown path key for k400 'video'"):
        manifest.build_dataset_manifest("k400", {"csv": "a.csv", "video": "v"}, *args)
    with pytest.raises(UserError, match="full, segments"):
        manifest.build_dataset_manifest("uk400", {"layout": "pieces"}, *args)
    with pytest.raises(UserError, match="full, segments"):
        manifest.build_dataset_manifest("hacs", {"layout": "pieces"}, *args)
    with pytest.raises(UserError, match="lack the key 'json'"):
        manifest.build_dataset_manifest("hacs", {"videos": str(tmp_path), "layout": "full"}, *args)
    with pytest.raises(UserError, match="does not exist"):
        manifest.build_dataset_manifest("uk400", {"layout": "segments", "segments_list": str(tmp_path / "t.txt"),
                                                  "videos": str(tmp_path), "csv": None}, *args)


def test_build_dataset_manifest_uk400_layouts(tmp_path, make_video):
    """The config keeps every uk400 key (unused ones null or set); each layout reads only its own."""
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("label,youtube_id,time_start,time_end,split\nyoga,AAAAAAAAAAA,10,20,train\n")
    make_video(tmp_path / "full" / "AAAAAAAAAAA.mp4", num_frames=30, fps=10)
    make_video(tmp_path / "clip_5s" / "v_AAAAAAAAAAA_0000000_0003000.mp4", num_frames=30, fps=10)
    (tmp_path / "training.txt").write_text("AAAAAAAAAAA,0000000,0003000\n")
    paths = {"csv": str(csv_path), "videos": str(tmp_path / "full"), "layout": "full",
             "segments_list": str(tmp_path / "training.txt")}
    full = manifest.build_dataset_manifest("uk400", paths, tmp_path / "a.csv", tmp_path / "qa.csv", workers=1)
    assert list(full["path"]) == [str(tmp_path / "full" / "AAAAAAAAAAA.mp4")] and list(full["parts"]) == [""]
    paths.update(layout="segments", videos=str(tmp_path / "clip_5s"))
    pieces = manifest.build_dataset_manifest("uk400", paths, tmp_path / "b.csv", tmp_path / "qb.csv", workers=1)
    assert json.loads(pieces["parts"][0])[0][:2] == [0.0, 3.0]
    assert (pieces["label"][0], pieces["duration"][0], pieces["num_frames"][0]) == ("yoga", 3.0, 30)


def test_build_dataset_manifest_hacs_layouts(tmp_path, make_video):
    """`hico-bench manifest hacs`: the download's class folders (training subset), or HiCo's 5-s pieces."""
    database = {
        "AAAAAAAAAAA": {"annotations": [{"label": "Rock climbing", "segment": [0.5, 2.0]}], "subset": "training",
                        "duration": "3.000000", "url": "u"},
        "BBBBBBBBBBB": {"annotations": [{"label": "Archery", "segment": [0, 1]}], "subset": "validation",
                        "duration": "2.0", "url": "u"},
        "CCCCCCCCCCC": {"annotations": [], "subset": "testing", "duration": "9.0", "url": "u"},
    }
    json_path = tmp_path / "HACS_segments_v1.1.1.json"
    json_path.write_text(json.dumps({"database": database}))
    make_video(tmp_path / "videos" / "Rock_climbing" / "v_AAAAAAAAAAA.mp4", num_frames=30, fps=10)
    make_video(tmp_path / "videos" / "Archery" / "v_BBBBBBBBBBB.mp4", num_frames=20, fps=10)
    paths = {"json": str(json_path), "videos": str(tmp_path / "videos"), "layout": "full", "segments_list": None}
    full = manifest.build_dataset_manifest("hacs", paths, tmp_path / "a.csv", tmp_path / "qa.csv", workers=1)
    assert list(full["video_id"]) == ["AAAAAAAAAAA"] and list(full["split"]) == ["train"]
    assert list(full["path"]) == [str(tmp_path / "videos" / "Rock_climbing" / "v_AAAAAAAAAAA.mp4")]
    assert (full["label"][0], full["label_index"][0], full["duration"][0]) == ("Rock climbing", 1, 3.0)
    assert read_quarantine(tmp_path / "qa.csv") == [["path", "reason"]]

    root = tmp_path / "hacs-clips"
    make_video(root / "training" / "v_AAAAAAAAAAA_0000000_0003000.mp4", num_frames=30, fps=10)
    (root / "training.txt").write_text("AAAAAAAAAAA,0000000,0003000\n")
    paths = {"json": None, "videos": str(root), "layout": "segments", "segments_list": str(root / "training.txt")}
    pieces = manifest.build_dataset_manifest("hacs", paths, tmp_path / "b.csv", tmp_path / "qb.csv", workers=1)
    assert json.loads(pieces["parts"][0]) == [[0.0, 3.0, str(root / "training" / "v_AAAAAAAAAAA_0000000_0003000.mp4")]]
    assert (pieces["label"][0], pieces["duration"][0], pieces["num_frames"][0]) == ("", 3.0, 30)
    paths["json"] = str(json_path)
    labelled = manifest.build_dataset_manifest("hacs", paths, tmp_path / "c.csv", tmp_path / "qc.csv", workers=1)
    assert (labelled["label"][0], labelled["label_index"][0]) == ("Rock climbing", 1)
