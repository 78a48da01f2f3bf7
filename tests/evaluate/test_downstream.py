"""Downstream stages on tiny real videos: fine-tuning / linear evaluation, cached features, ActivityNet export."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from hico_bench.data.video import probe
from hico_bench.errors import UserError
from hico_bench.evaluate.classify import finetune
from hico_bench.evaluate.export import export_features, num_snippets
from hico_bench.evaluate.features import cache_video_features, load_backbone
from tests.conftest import write_test_video

MODEL = {"backbone": "tiny", "backbone_kwargs": {"widths": [8, 8, 16], "out_dim": 16}, "frames": 4, "size": 16,
         "decode_size": 32, "sampling_rate": 2, "target_fps": 10}
FT = {"epochs": 2, "warmup_epochs": 1, "batch_size": 4, "lr": 0.01, "warmup_start_lr": 0.001, "test_views": 3,
      "threads": 1, "progress_bar": False}


def row(path, video_id, split, label_index):
    info = probe(path)
    return {"video_id": video_id, "path": str(path), "split": split, "label": f"c{label_index}",
            "label_index": label_index, "duration": info.duration, "fps": info.fps, "num_frames": info.num_frames,
            "segments": "", "parts": ""}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    rows = []
    for i in range(12):
        split = "test" if i % 3 == 0 else "train"
        path = write_test_video(root / f"v{i}.mp4", num_frames=30, fps=10, size=(32, 32), seed=i)
        rows.append(row(path, f"v{i}", split, i % 2))
    return pd.DataFrame(rows)


def test_ft_and_lft_report_top1_top5_and_single_clip(manifest):
    for mode in ("ft", "lft"):
        result = finetune(None, manifest, MODEL, FT, where="tiny", mode=mode)
        metrics = result["metrics"]
        assert set(metrics) == {"top1", "top5", "top1_1clip"}
        assert all(0 <= v <= 100 for v in metrics.values())
        assert metrics["top5"] == 100.0  # 2 classes: the true class is always among the top 5
        assert result["protocol"]["mode"] == mode and result["protocol"]["test_views"] == 3


def test_lft_optimises_only_the_head_while_batchnorm_statistics_move(manifest, monkeypatch):
    import hico_bench.evaluate.features as features

    captured = {}
    real = features.load_backbone

    def spy(*args, **kwargs):
        captured["backbone"] = real(*args, **kwargs)
        captured["before"] = {k: v.clone() for k, v in captured["backbone"].state_dict().items()}
        return captured["backbone"]

    monkeypatch.setattr(features, "load_backbone", spy)
    finetune(None, manifest, MODEL, FT, where="tiny", mode="lft")
    after = captured["backbone"].state_dict()
    weights = [k for k in after if k.endswith("weight") and after[k].dim() > 1]
    stats = [k for k in after if k.endswith("running_mean")]
    assert weights and stats
    assert all(torch.equal(after[k], captured["before"][k]) for k in weights)  # frozen: not in the optimiser
    assert any(not torch.equal(after[k], captured["before"][k]) for k in stats)  # the official quirk


def test_a_test_class_missing_from_train_is_a_clear_error(manifest):
    bad = manifest.copy()
    bad.loc[bad.index[0], "label_index"] = 7
    bad.loc[bad.index[0], "split"] = "test"
    with pytest.raises(UserError, match=r"test-split classes \[7\] never occur in the train split"):
        finetune(None, bad, MODEL, FT, where="tiny", mode="ft")


def test_features_are_cached_once_per_checkpoint_and_deterministic(manifest, tmp_path):
    path = tmp_path / "m.csv"
    manifest.to_csv(path, index=False)
    a = cache_video_features(None, str(path), MODEL, str(tmp_path / "a.npz"), {"views": 3})
    b = np.load(tmp_path / "a.npz")
    assert b["train_x"].shape == (8, 16) and b["test_x"].shape == (4, 16)
    assert list(b["test_y"]) == list(manifest[manifest.split == "test"].label_index)
    cache_video_features(None, str(path), MODEL, str(tmp_path / "b.npz"), {"views": 3})
    assert np.array_equal(np.load(tmp_path / "b.npz")["train_x"], a["train_x"])


def test_a_checkpoint_of_another_backbone_is_refused_naming_both(tmp_path):
    from hico_bench.train.checkpoint import save_checkpoint

    backbone = load_backbone(None, MODEL)
    save_checkpoint(tmp_path / "c.pt", {"model": {f"backbone.{k}": v for k, v in backbone.state_dict().items()},
                                        "backbone_name": "tiny", "backbone_kwargs": MODEL["backbone_kwargs"]})
    assert load_backbone(str(tmp_path / "c.pt"), MODEL) is not None
    with pytest.raises(UserError, match=r"holds a 'tiny' backbone .* but a 's3dg' backbone was asked for"):
        load_backbone(str(tmp_path / "c.pt"), {**MODEL, "backbone": "s3dg", "backbone_kwargs": {}})
    with pytest.raises(UserError, match=r"c\.pt cannot be read in an official layout for the tiny backbone"):
        load_backbone(str(tmp_path / "c.pt"), MODEL, checkpoint_format="official")


def test_load_backbone_from_a_checkpoint_leaves_the_rng_as_random_init_does(tmp_path):
    """Downstream heads are initialised after load_backbone: the checkpoint path must draw exactly as before."""
    from hico_bench.models.backbones import build_backbone
    from hico_bench.train.checkpoint import save_checkpoint

    torch.manual_seed(9)
    source = build_backbone("tiny", **MODEL["backbone_kwargs"])
    save_checkpoint(tmp_path / "c.pt", {"model": {f"backbone.{k}": v for k, v in source.state_dict().items()},
                                        "backbone_name": "tiny", "backbone_kwargs": MODEL["backbone_kwargs"]})
    loaded = load_backbone(str(tmp_path / "c.pt"), MODEL, seed=3)
    after_checkpoint = torch.get_rng_state()
    torch.manual_seed(3)
    build_backbone("tiny", **MODEL["backbone_kwargs"])
    assert torch.equal(after_checkpoint, torch.get_rng_state())
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.state_dict().items())


def test_activitynet_export_writes_every_layout_resumes_and_quarantines(tmp_path):
    videos = tmp_path / "videos"
    rows = [row(write_test_video(videos / f"v_a{i}.mp4", num_frames=37, fps=10, seed=i), f"a{i}", "val", -1)
            for i in range(2)]
    broken = videos / "v_bad.mp4"
    broken.write_bytes(b"")
    rows.append({**rows[0], "video_id": "bad", "path": str(broken)})
    manifest = tmp_path / "anet.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    out = tmp_path / "features"
    settings = {"stride": 4, "snippet_frames": 4, "batch_size": 3, "max_bad_fraction": 0.5}
    summary = export_features(None, str(manifest), MODEL, str(out), settings)
    assert summary["exported"] == 2 and summary["quarantined"] == 1
    t = num_snippets(37, 4, 4)
    assert t == 9
    feats = np.load(out / "v_a0.npy")
    assert feats.shape == (t, 16) and feats.dtype == np.float32
    meta = json.loads((out / "v_a0.json").read_text())
    assert meta["stride"] == 4 and meta["frames_per_snippet"] == 4 and meta["num_snippets"] == t
    bmn = np.loadtxt(out / "csv_mean_100" / "v_a0.csv", delimiter=",", skiprows=1)
    assert bmn.shape == (100, 16)
    with h5py.File(out / "gtad.h5") as h5:
        assert sorted(h5) == ["v_a0", "v_a1"] and np.allclose(h5["v_a0"][:], feats)
    assert "file is empty" in (out / "quarantine.csv").read_text()
    # batching does not change the features: one snippet per forward gives the same numbers
    single = export_features(None, str(manifest), MODEL, str(tmp_path / "single"), {**settings, "batch_size": 1})
    assert single["exported"] == 2
    assert np.allclose(np.load(tmp_path / "single" / "v_a0.npy"), feats, atol=1e-5)
    # resumable: finished videos are skipped
    again = export_features(None, str(manifest), MODEL, str(out), settings)
    assert again["exported"] == 0 and again["resumed_skipped"] == 2
    with pytest.raises(UserError, match="1 of 3 ActivityNet videos could not be decoded"):
        export_features(None, str(manifest), MODEL, str(tmp_path / "strict"), {**settings, "max_bad_fraction": 0.1})
