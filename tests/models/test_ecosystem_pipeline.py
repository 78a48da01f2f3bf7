"""Every ecosystem backbone, at a tiny width, pretrains a few steps with HiCo and goes through every downstream task
(the cached-feature tasks, ft, lft, the attentive probe) and the ActivityNet feature export, from its own checkpoint."""

import numpy as np
import pandas as pd
import pytest

from hico_bench.data.video import probe
from hico_bench.evaluate.classify import finetune
from hico_bench.evaluate.export import export_features
from hico_bench.evaluate.features import cache_video_features, load_features
from hico_bench.evaluate.tasks import TASKS
from hico_bench.models.backbones import ECOSYSTEM_BACKBONES
from hico_bench.train.loop import pretrain
from tests.conftest import write_test_video
from tests.models.test_ecosystem import TINY

CLIP = {"frames": 8, "size": 32, "decode_size": 32, "sampling_rate": 1, "target_fps": 10}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    rows = []
    for i in range(12):
        path = write_test_video(root / f"v{i}.mp4", num_frames=30, fps=10, size=(32, 32), seed=i)
        info = probe(path)
        rows.append({"video_id": f"v{i}", "path": str(path), "split": "test" if i % 3 == 0 else "train",
                     "label": f"c{i % 2}", "label_index": i % 2, "duration": info.duration, "fps": info.fps,
                     "num_frames": info.num_frames, "segments": "", "parts": ""})
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", ECOSYSTEM_BACKBONES)
def test_pretrains_and_passes_through_every_downstream_task(name, manifest, tmp_path):
    options = {k: v for k, v in TINY[name][0].items() if k not in ("frames", "size")}  # the clip gives those
    model = {"backbone": name, "backbone_kwargs": options, **CLIP}
    train = pd.read_csv(manifest)
    train.assign(split="train").to_csv(tmp_path / "pretrain.csv", index=False)
    checkpoint = pretrain(tmp_path / "pretrain.csv", tmp_path / "run", {
        **model, "epochs": 1, "batch_videos": 6, "optimizer": "adam", "base_lr": 1e-3, "scale_lr": False,
        "head_mid_dim": 16, "head_out_dim": 8, "threads": 1, "progress_bar": False})
    ckpt = str(checkpoint)

    cache_video_features(ckpt, str(manifest), model, str(tmp_path / "f.npz"), {"views": 2, "batch_size": 4})
    features = load_features(tmp_path / "f.npz")
    assert np.isfinite(features["train_x"]).all() and features["train_x"].shape[0] == 8
    results = {}
    for task in (t for t in TASKS.values() if t.reads == "features"):
        results[task.name] = task.runner()(features, {}, where="features")
    small = {"epochs": 1, "warmup_epochs": 0, "batch_size": 4, "test_views": 2, "threads": 1, "progress_bar": False}
    for mode in ("ft", "lft"):
        results[mode] = finetune(ckpt, train, model, small, where=name, mode=mode)
    results["attentive"] = TASKS["attentive"].runner()(
        ckpt, train, model, {"views": 2, "epochs": 1, "lrs": [0.001], "heads": 4, "threads": 1,
                             "progress_bar": False}, where=name)
    assert set(results) == set(TASKS)
    for task, result in results.items():
        headline = result["metrics"][TASKS[task].headline]
        assert 0 <= headline <= 100, (task, result)

    summary = export_features(ckpt, str(tmp_path / "pretrain.csv"), model, str(tmp_path / "anet"),
                              {"stride": 8, "snippet_frames": 8, "batch_size": 4})
    assert summary["exported"] == 12 and summary["feature_dim"] == TINY[name][2]
