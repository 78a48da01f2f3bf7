"""The pretraining loop end to end on tiny real videos: outputs, resume after SIGKILL, NaN handling, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from hico_bench.data.video import probe
from hico_bench.errors import UserError
from hico_bench.train.loop import TrainingDiverged, pretrain
from tests.conftest import write_test_video

SETTINGS = {"epochs": 2, "batch_videos": 4, "optimizer": "adam", "base_lr": 0.001, "scale_lr": False,
            "head_mid_dim": 32, "head_out_dim": 16, "backbone_kwargs": {"widths": [8, 8, 16], "out_dim": 16},
            "frames": 4, "size": 16, "decode_size": 32, "sampling_rate": 2, "target_fps": 10, "delta_s": 1.0,
            "threads": 1, "progress_bar": False}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    rows = []
    for i in range(8):
        path = write_test_video(root / f"v{i}.mp4", num_frames=50, fps=10, size=(32, 32), seed=i)
        info = probe(path)
        rows.append({"video_id": f"v{i}", "path": str(path), "split": "train", "label": "", "label_index": -1,
                     "duration": info.duration, "fps": info.fps, "num_frames": info.num_frames,
                     "segments": "", "parts": ""})
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_run_writes_loadable_checkpoints_and_per_step_metrics(manifest, tmp_path):
    last = pretrain(manifest, tmp_path / "run", SETTINGS)
    state = torch.load(last, weights_only=True)  # tensors and plain data only
    assert state["epoch"] == 2 and state["step"] == 4 and state["backbone_name"] == "tiny"
    metrics = read_metrics(tmp_path / "run")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    for key in ("loss_vcl", "loss_tcl", "lr", "delta_max", "clips_per_s", "data_wait_frac"):
        assert all(m[key] is not None for m in metrics), key
    # gradual: delta_max grows with the fractional epoch (alpha / alpha_max * Delta), 0 at the start
    assert [m["delta_max"] for m in metrics] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert all(m["loss"] == pytest.approx(m["loss_vcl"] + m["loss_tcl"]) for m in metrics)


def test_augmenting_batch_wise_on_the_device_trains_too(manifest, tmp_path):
    pretrain(manifest, tmp_path / "run", {**SETTINGS, "augment_on": "device", "epochs": 1})
    metrics = read_metrics(tmp_path / "run")
    assert len(metrics) == 2 and all(m["loss"] > 0 for m in metrics)


def test_simclr_variant_has_no_topical_loss_and_no_window(manifest, tmp_path):
    settings = {**SETTINGS, "num_clips": 2, "schedule": "none", "topical": False, "epochs": 1}
    pretrain(manifest, tmp_path / "run", settings)
    metrics = read_metrics(tmp_path / "run")
    assert all(m["loss_tcl"] is None and m["delta_max"] == -1 for m in metrics)


def _run_cli(manifest, out_dir, settings):
    cmd = [sys.executable, "-m", "hico_bench.cli", "pretrain", "--manifest", str(manifest), "--out-dir",
           str(out_dir), "--settings", json.dumps(settings)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(manifest, tmp_path):
    settings = {**SETTINGS, "epochs": 3, "batch_videos": 2, "num_workers": 1}  # 4 steps per epoch
    reference = pretrain(manifest, tmp_path / "uninterrupted", {**settings, "num_workers": 0})

    run_dir = tmp_path / "killed"
    proc = _run_cli(manifest, run_dir, settings)
    partial = run_dir / "metrics.partial.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the run is inside epoch 2 (steps 5..8), then kill it
        if partial.exists() and len(partial.read_text().splitlines()) >= 6:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "checkpoint_last.pt").exists(), "the run finished before it could be killed"
    assert (run_dir / "checkpoint_epoch_0001.pt").exists()

    resumed = _run_cli(manifest, run_dir, settings)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert b"resuming killed from epoch" in err

    a = torch.load(reference, weights_only=True)
    b = torch.load(run_dir / "checkpoint_last.pt", weights_only=True)
    assert a["step"] == b["step"] == 12
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key  # bit-exact
    assert [m["step"] for m in read_metrics(run_dir)] == list(range(1, 13))
    losses = [m["loss"] for m in read_metrics(run_dir)]
    assert losses == [m["loss"] for m in read_metrics(tmp_path / "uninterrupted")]


STOPPABLE = {**SETTINGS, "batch_videos": 2, "num_workers": 1}  # 4 steps per epoch, 8 in all


@pytest.fixture(scope="module")
def uninterrupted(manifest, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    return pretrain(manifest, run_dir, STOPPABLE), run_dir


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_a_signal_mid_epoch_stops_at_the_step_boundary_and_the_rerun_matches(manifest, uninterrupted, signum,
                                                                            tmp_path, monkeypatch):
    import hico_bench.method as method

    settings = STOPPABLE
    reference, reference_dir = uninterrupted
    real, calls = method.hico_loss, {"n": 0}

    def loss_then_signal(*args, **kwargs):  # the signal arrives during step 6 (epoch 1, batch 2)
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    run_dir = tmp_path / "stopped"
    monkeypatch.setattr(method, "hico_loss", loss_then_signal)
    with pytest.raises(SystemExit) as stopped:
        pretrain(manifest, run_dir, settings)
    monkeypatch.undo()
    assert stopped.value.code == 128 + signum  # 143 for SIGTERM, 138 for SIGUSR1
    assert not (run_dir / "checkpoint_last.pt").exists()
    point = run_dir / "checkpoint_epoch_0001_batch_000002.pt"  # step 6 finished, then the resume point
    assert point.exists() and torch.load(point, weights_only=True)["step"] == 6
    assert len((run_dir / "metrics.partial.jsonl").read_text().splitlines()) == 6

    with pytest.raises(UserError, match=r"was written with other settings than this run's \(base_lr\); delete"):
        pretrain(manifest, run_dir, {**settings, "base_lr": 0.002})
    # runtime-only settings may change; checkpoint_minutes ~0 writes a resume point after every step (changes nothing)
    pretrain(manifest, run_dir, {**settings, "checkpoint_minutes": 1e-9})
    a = torch.load(reference, weights_only=True)
    b = torch.load(run_dir / "checkpoint_last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key  # bit-exact
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])  # the RNG went on as in the uninterrupted run
    assert read_metrics(run_dir) == [{**m, "clips_per_s": n["clips_per_s"], "data_wait_frac": n["data_wait_frac"]}
                                     for m, n in zip(read_metrics(reference_dir), read_metrics(run_dir))]


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(manifest, tmp_path, monkeypatch):
    import hico_bench.losses as losses

    calls = {"n": 0}
    real = losses.vcl_loss

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out * float("nan") if calls["n"] == 3 else out

    monkeypatch.setattr(losses, "vcl_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1\.000 .*checkpoint_epoch_0001\.pt"):
        pretrain(manifest, tmp_path / "run", SETTINGS)
    assert (tmp_path / "run" / "checkpoint_epoch_0001.pt").exists()
    assert not (tmp_path / "run" / "checkpoint_last.pt").exists()


def test_bad_input_gives_one_clear_sentence(manifest, tmp_path):
    with pytest.raises(UserError, match=r"unknown setting 'pretrain.epoch'; the valid keys of pretrain are: .*epochs"):
        pretrain(manifest, tmp_path / "a", {**SETTINGS, "epoch": 3})
    with pytest.raises(UserError, match="setting pretrain.backbone must be one of .*; 'resnet9000' is not"):
        pretrain(manifest, tmp_path / "b", {**SETTINGS, "backbone": "resnet9000"})
    empty = tmp_path / "empty.csv"
    pd.read_csv(manifest).iloc[:0].to_csv(empty, index=False)
    with pytest.raises(UserError, match="has no training videos"):
        pretrain(empty, tmp_path / "c", SETTINGS)
    with pytest.raises(UserError, match="no video in .* is long enough for one clip of 40.00 s"):
        pretrain(manifest, tmp_path / "d", {**SETTINGS, "sampling_rate": 100})


def test_the_cli_prints_one_sentence_for_a_user_error(manifest, tmp_path):
    proc = _run_cli(manifest, tmp_path / "run", {**SETTINGS, "schedule": "sometimes"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == ["hico-bench pretrain: error: setting pretrain.schedule must be one of gradual, fixed, none; "
                     "'sometimes' is not."]
