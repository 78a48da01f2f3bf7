"""ft / lft resume points on tiny real videos: a signal mid-epoch, SIGKILL through the CLI, refusals, clean-up."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from hico_bench.data.video import probe
from hico_bench.errors import UserError
from hico_bench.evaluate.classify import finetune
from tests.conftest import write_test_video

MODEL = {"backbone": "tiny", "backbone_kwargs": {"widths": [8, 8, 16], "out_dim": 16}, "frames": 4, "size": 16,
         "decode_size": 32, "sampling_rate": 2, "target_fps": 10}
# 8 training videos, batch 2: 4 steps per epoch, 8 in all; dropout draws from torch's RNG at every step
FT = {"epochs": 2, "warmup_epochs": 1, "batch_size": 2, "lr": 0.01, "warmup_start_lr": 0.001, "test_views": 2,
      "dropout": 0.5, "num_workers": 1, "keep_resume_dir": True, "threads": 1, "progress_bar": False}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    rows = []
    for i in range(12):
        path = write_test_video(root / f"v{i}.mp4", num_frames=30, fps=10, size=(32, 32), seed=i)
        info = probe(path)
        rows.append({"video_id": f"v{i}", "path": str(path), "split": "test" if i % 3 == 0 else "train",
                     "label": f"c{i % 2}", "label_index": i % 2, "duration": info.duration, "fps": info.fps,
                     "num_frames": info.num_frames, "segments": "", "parts": ""})
    frame = pd.DataFrame(rows)
    frame.to_csv(root / "manifest.csv", index=False)
    return frame


@pytest.fixture(scope="module")
def reference(manifest, tmp_path_factory):
    """An uninterrupted run: its result, and its kept run folder (final weights, per-step log)."""
    run_dir = tmp_path_factory.mktemp("reference") / "ft.resume"
    result = finetune(None, manifest, MODEL, FT, where="tiny", mode="ft", resume_dir=run_dir)
    return result, run_dir


def weights(run_dir, epochs=FT["epochs"]):
    return torch.load(run_dir / f"checkpoint_epoch_{epochs:04d}.pt", weights_only=True)["model"]


def steps(run_dir):
    return [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]


def assert_same_run(run_dir, result, reference):
    ref_result, ref_dir = reference
    assert result["metrics"] == ref_result["metrics"]
    a, b = weights(ref_dir), weights(run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-exact
    assert steps(run_dir) == steps(ref_dir)  # every step's loss and lr
    assert [s["step"] for s in steps(run_dir)] == list(range(1, 9))


def test_sigterm_mid_epoch_writes_a_resume_point_there_and_the_rerun_matches(manifest, reference, tmp_path,
                                                                             monkeypatch):
    real, calls = torch.nn.functional.cross_entropy, {"n": 0}

    def loss_then_signal(*args, **kwargs):  # SIGTERM arrives during step 3 (epoch 0, batch 3 of 4)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    run_dir = tmp_path / "ft.resume"
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss_then_signal)
    with pytest.raises(SystemExit) as stopped:
        finetune(None, manifest, MODEL, FT, where="tiny", mode="ft", resume_dir=run_dir)
    monkeypatch.undo()
    assert stopped.value.code == 143
    assert [p.name for p in run_dir.glob("checkpoint_*")] == ["checkpoint_epoch_0000_batch_000003.pt"]
    assert len(steps(run_dir)) == 3

    with pytest.raises(UserError, match=r"ft\.resume/checkpoint_epoch_0000_batch_000003\.pt was written by a run "
                                        r"that differs from this one in lr; delete .*ft\.resume to start afresh"):
        finetune(None, manifest, MODEL, {**FT, "lr": 0.02}, where="tiny", mode="ft", resume_dir=run_dir)
    with pytest.raises(UserError, match="differs from this one in mode"):
        finetune(None, manifest, MODEL, FT, where="tiny", mode="lft", resume_dir=run_dir)
    # runtime-only settings may change: a resume point after every step from here on changes nothing
    result = finetune(None, manifest, MODEL, {**FT, "checkpoint_minutes": 1e-9}, where="tiny", mode="ft",
                      resume_dir=run_dir)
    assert_same_run(run_dir, result, reference)


def test_a_run_whose_training_finished_only_tests_and_its_folder_is_removed_after(manifest, reference, tmp_path,
                                                                                  capfd):
    ref_result, ref_dir = reference
    run_dir = tmp_path / "ft.resume"
    shutil.copytree(ref_dir, run_dir)
    for p in run_dir.glob("checkpoint_*"):
        if p.name != "checkpoint_epoch_0002.pt":
            p.unlink()
    result = finetune(None, manifest, MODEL, {**FT, "num_workers": 0, "keep_resume_dir": False}, where="tiny",
                      mode="ft", resume_dir=run_dir)
    assert "resuming tiny from epoch 2 (step 8)" in capfd.readouterr().err
    assert result["metrics"] == ref_result["metrics"] and result["quarantine"] == []
    assert result["protocol"]["processes"] == 1 and result["protocol"]["precision"] == "fp32"
    assert not run_dir.exists()


@pytest.mark.slow
def test_a_job_killed_mid_epoch_resumes_through_the_cli_to_the_same_weights_and_metrics(manifest, reference,
                                                                                      tmp_path):
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    out = tmp_path / "ft_ucf101_split1.json"
    cmd = [sys.executable, "-m", "hico_bench.cli", "ft", "--manifest", str(tmp_path / "manifest.csv"), "--out",
           str(out), "--dataset", "ucf101", "--checkpoint", "none", "--model", json.dumps(MODEL), "--settings",
           json.dumps(FT)]
    run_dir = tmp_path / "ft_ucf101_split1.resume"  # the folder the verb derives from --out

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = run_dir / "steps.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until the job is inside epoch 1 (steps 5..8), then kill it
        if log.exists() and len(log.read_text().splitlines()) >= 5:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the job finished before it could be killed"
    assert (run_dir / "checkpoint_epoch_0001.pt").exists()

    resumed = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert b"resuming" in resumed.stderr
    written = json.loads(out.read_text())
    assert written["task"] == "ft" and written["dataset"] == "ucf101"
    assert_same_run(run_dir, written, reference)


def test_vit_fine_tuning_uses_adamw_with_layer_wise_lr_decay():
    """timm's AdamW with layer decay: block i of L gets lr x decay^(L + 1 - i); the head the full lr (VideoMAE)."""
    from hico_bench.evaluate.classify import _optimizer
    from hico_bench.evaluate.tasks import TASKS
    from hico_bench.models.backbones import build_backbone
    from hico_bench.models.heads import ClassifierModel
    from hico_bench.train.optim import set_lr

    net = ClassifierModel(build_backbone("vit_s16", embed_dim=32, depth=3, num_heads=2, frames=4, size=32), 5)
    s = TASKS["ft"].settings.resolve({"optimizer": "adamw", "layer_decay": 0.5, "weight_decay": 0.05})
    opt = _optimizer(net, s)
    set_lr(opt, 1.0)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    depth = 3
    assert lr_of[id(net.head.weight)] == 1.0
    assert lr_of[id(net.backbone.patch_embed.proj.weight)] == 0.5 ** (depth + 1)
    for i, block in enumerate(net.backbone.blocks):
        assert lr_of[id(block.attn.qkv.weight)] == 0.5 ** (depth - i)
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay_of[id(net.head.weight)] == 0.05 and decay_of[id(net.head.bias)] == 0.0
    tiny = ClassifierModel(build_backbone("tiny", out_dim=16, widths=(4, 4, 8)), 3)
    with pytest.raises(UserError, match=r"layer-wise lr decay needs a backbone made of layers .* tiny is not"):
        _optimizer(tiny, s)
    with pytest.raises(UserError, match=r"layer_decay needs optimizer: adamw"):
        _optimizer(net, TASKS["ft"].settings.resolve({"layer_decay": 0.5}))
