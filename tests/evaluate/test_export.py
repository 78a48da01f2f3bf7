"""ActivityNet export on tiny real videos: subsets, DataLoader workers, the G-TAD file assembled once, killed runs."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from hico_bench.data.video import probe
from hico_bench.errors import UserError
from hico_bench.evaluate.export import export_features, num_snippets
from hico_bench.evaluate.feature_formats import read_npy_features
from tests.conftest import write_test_video

ROOT = Path(__file__).resolve().parents[2]
MODEL = {"backbone": "tiny", "backbone_kwargs": {"widths": [8, 8, 16], "out_dim": 16}, "frames": 4, "size": 16,
         "decode_size": 32, "sampling_rate": 2, "target_fps": 10}
SETTINGS = {"stride": 4, "snippet_frames": 6, "batch_size": 3, "max_bad_fraction": 0.5}
# (frames, manifest split): 1 to 17 snippets of 6 frames every 4, so videos span one to six batches
VIDEOS = [(37, "train"), (12, "val"), (70, "test"), (50, "train"), (5, "val"), (23, "test")]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("anet")
    rows = []
    for i, (frames, split) in enumerate(VIDEOS):
        path = write_test_video(root / "videos" / f"v_a{i}.mp4", num_frames=frames, fps=10, size=(32, 48), seed=i)
        info = probe(path)
        rows.append({"video_id": f"a{i}", "path": str(path), "split": split, "label": "", "label_index": -1,
                     "duration": info.duration, "fps": info.fps, "num_frames": info.num_frames, "segments": "",
                     "parts": ""})
    path = root / "anet.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def ids_of(splits):
    return [f"a{i}" for i, (_, split) in enumerate(VIDEOS) if split in splits]


def contents(out: Path) -> dict[str, bytes]:
    """Every file of a feature folder (export.json and quarantine.csv aside) as bytes, G-TAD datasets included."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file() and p.name not in ("export.json", "quarantine.csv", "gtad.h5")}
    with h5py.File(out / "gtad.h5", "r") as f:
        for key in f:
            files[f"gtad.h5:{key}"] = f[key].dtype.str.encode() + str(f[key].shape).encode() + f[key][:].tobytes()
    return files


@pytest.fixture(scope="module")
def reference(manifest, tmp_path_factory):
    """Every video exported in one uninterrupted in-process run."""
    out = tmp_path_factory.mktemp("reference") / "features"
    summary = export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"]})
    assert summary["exported"] == len(VIDEOS) and summary["gtad_videos"] == len(VIDEOS)
    return out


def test_gtad_file_holds_exactly_the_per_video_arrays(reference):
    with h5py.File(reference / "gtad.h5", "r") as f:
        assert sorted(f) == sorted(f"v_{vid}" for vid in ids_of(("train", "val", "test")))
        for key in f:
            feats, meta = read_npy_features(reference, key[2:])
            assert f[key].dtype == np.float32 and f[key].shape == (meta["num_snippets"], 16)
            np.testing.assert_array_equal(f[key][:], feats)
    for i, (frames, _) in enumerate(VIDEOS):
        assert np.load(reference / f"v_a{i}.npy").shape == (num_snippets(frames, 6, 4), 16)
    assert not [p for p in reference.rglob(".tmp-*")]


def test_workers_give_the_same_files_as_the_main_process(manifest, reference, tmp_path):
    out = tmp_path / "features"
    summary = export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"],
                                                                      "num_workers": 2})
    assert summary["exported"] == len(VIDEOS) and summary["num_workers"] == 2
    assert contents(out) == contents(reference)


def test_default_subsets_leave_testing_out_and_all_takes_it(manifest, reference, tmp_path):
    out = tmp_path / "features"
    summary = export_features(None, str(manifest), MODEL, str(out), SETTINGS)
    assert summary["subsets"] == ["training", "validation"]
    wanted = ids_of(("train", "val"))
    assert summary["videos"] == summary["exported"] == len(wanted) < len(VIDEOS)
    assert sorted(p.stem for p in out.glob("v_*.npy")) == sorted(f"v_{vid}" for vid in wanted)
    with h5py.File(out / "gtad.h5", "r") as f:
        assert sorted(f) == sorted(f"v_{vid}" for vid in wanted)
    only_test = export_features(None, str(manifest), MODEL, str(tmp_path / "test"), {**SETTINGS,
                                                                                     "subsets": ["testing"]})
    assert only_test["exported"] == len(ids_of(("test",)))
    # asking for all afterwards resumes: only the testing videos are new, and the G-TAD file takes them in
    more = export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"]})
    assert more["exported"] == len(ids_of(("test",))) and more["resumed_skipped"] == len(wanted)
    assert contents(out) == contents(reference)


def test_an_unknown_subset_is_one_sentence(manifest, tmp_path):
    with pytest.raises(UserError) as err:
        export_features(None, str(manifest), MODEL, str(tmp_path / "f"), {**SETTINGS, "subsets": ["train"]})
    message = str(err.value)
    assert message == ("setting export.subsets must be one of training, validation, testing, all; 'train' is not.")
    assert not (tmp_path / "f").exists()


def test_subsets_without_videos_name_the_manifest(manifest, tmp_path):
    only_train = pd.read_csv(manifest)
    only_train = only_train[only_train["split"] == "train"]
    path = tmp_path / "train_only.csv"
    only_train.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"has no video of the subsets testing chosen by export.subsets "
                                        r"\(its splits: train\)"):
        export_features(None, str(path), MODEL, str(tmp_path / "f"), {**SETTINGS, "subsets": ["testing"]})


def test_an_interrupted_export_resumes_without_redoing_finished_videos(manifest, reference, tmp_path, monkeypatch):
    from hico_bench.evaluate import feature_formats

    out = tmp_path / "features"
    original, calls = feature_formats.write_npy_features, []

    def fail_on_the_fourth(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 4:
            raise KeyboardInterrupt  # as Ctrl-C would, between the video's BMN CSV and its .npy
        return original(*args, **kwargs)

    monkeypatch.setattr(feature_formats, "write_npy_features", fail_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"]})
    assert len(list(out.glob("v_*.json"))) == 3 and not (out / "gtad.h5").exists()
    monkeypatch.setattr(feature_formats, "write_npy_features", original)
    summary = export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"]})
    assert summary["resumed_skipped"] == 3 and summary["exported"] == len(VIDEOS) - 3
    assert contents(out) == contents(reference)


KILLER = """
import os, signal, sys, json
import hico_bench.evaluate.feature_formats as ff
from hico_bench.evaluate.export import export_features

where, after = sys.argv[1], int(sys.argv[2])
name = "write_npy_features" if where == "videos" else "read_npy_features"
original, calls = getattr(ff, name), []

def killed(*args, **kwargs):
    calls.append(1)
    if len(calls) > after:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)

setattr(ff, name, killed)
export_features(None, sys.argv[3], json.loads(sys.argv[4]), sys.argv[5], json.loads(sys.argv[6]))
"""


@pytest.mark.parametrize("where, after", [("videos", 2), ("gtad", 3)])
def test_a_killed_export_resumes_and_ends_with_identical_files(manifest, reference, tmp_path, where, after):
    """SIGKILL after ``after`` videos were written, or while the G-TAD file is being assembled (``after`` datasets
    in): the resumed export keeps the finished videos and ends with the same files as an uninterrupted one."""
    out = tmp_path / "features"
    settings = {**SETTINGS, "subsets": ["all"]}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", KILLER, where, str(after), str(manifest), json.dumps(MODEL),
                             str(out), json.dumps(settings)], env=env, capture_output=True, text=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    finished = len(list(out.glob("v_*.json")))
    assert finished == (after if where == "videos" else len(VIDEOS))
    if where == "gtad":
        assert not (out / "gtad.h5").exists() and len(list(out.glob(".tmp-gtad-*"))) == 1  # the half-built file
    summary = export_features(None, str(manifest), MODEL, str(out), settings)
    assert summary["resumed_skipped"] == finished and summary["exported"] == len(VIDEOS) - finished
    assert contents(out) == contents(reference)
    assert not list(out.rglob(".tmp-*"))


def test_a_complete_export_keeps_its_gtad_file_and_rebuilds_a_wrong_one(manifest, reference, tmp_path):
    import shutil

    out = tmp_path / "features"
    shutil.copytree(reference, out)
    before = (out / "gtad.h5").stat().st_mtime_ns
    again = export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"]})
    assert again["exported"] == 0 and again["resumed_skipped"] == len(VIDEOS)
    assert (out / "gtad.h5").stat().st_mtime_ns == before  # nothing new: not rewritten
    with h5py.File(out / "gtad.h5", "a") as f:
        del f["v_a0"]
    export_features(None, str(manifest), MODEL, str(out), {**SETTINGS, "subsets": ["all"]})
    assert contents(out) == contents(reference)


def test_default_subsets_are_the_localization_probes_subsets():
    from hico_bench.evaluate.export import SUBSETS
    from hico_bench.settings import EXPORT, LOCALIZE

    probe = LOCALIZE.defaults()
    assert EXPORT.defaults()["subsets"] == [probe["train_subset"], probe["eval_subset"]]
    assert set(SUBSETS) | {"all"} == set(EXPORT.entry("subsets").allowed())
