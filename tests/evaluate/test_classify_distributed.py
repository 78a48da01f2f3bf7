"""ft under torchrun: 2 gloo processes on CPU against one process on the same global batch, through the CLI verb."""

import json
import socket

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from hico_bench.data.video import probe
from tests.conftest import write_test_video

WORLD = 2
MODEL = {"backbone": "tiny", "backbone_kwargs": {"widths": [4, 4, 8], "out_dim": 8}, "frames": 4, "size": 16,
         "decode_size": 32, "sampling_rate": 2, "target_fps": 10}
# global batch 4 = 2 clips per process; 8 training videos: 4 per process, 2 steps
FT = {"epochs": 1, "warmup_epochs": 0, "batch_size": 4, "lr": 0.01, "test_views": 2, "threads": 1,
      "progress_bar": False}
CLIP_ARGS = dict(frames=4, sampling_rate=2, target_fps=10, size=16, decode_size=32, cache_frames=False)


def torchrun_env(rank, port):
    import os

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def fresh_net(num_classes=2):
    """The network finetune builds for seed 0 and random init."""
    from hico_bench.evaluate.features import load_backbone
    from hico_bench.models.heads import ClassifierModel

    backbone = load_backbone(None, MODEL, 0)
    torch.manual_seed(0)
    return ClassifierModel(backbone, num_classes)


def worker(rank, port, manifest_csv, out):
    import contextlib
    import io

    import hico_bench.io
    from hico_bench.cli import main
    from hico_bench.evaluate.classify import _test_scores
    from hico_bench.train import distributed as D

    torchrun_env(rank, port)
    D.setup_from_env()
    test = pd.read_csv(manifest_csv).query("split == 'test'").reset_index(drop=True)
    summed, single = _test_scores(fresh_net(), test, CLIP_ARGS, {**FT, "num_workers": 0, "test_crops": 1}, 2,
                                  torch.device("cpu"))

    args = ["ft", "--manifest", manifest_csv, "--out", out, "--dataset", "ucf101", "--checkpoint", "none",
            "--model", json.dumps(MODEL)]
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):  # torch's SyncBatchNorm runs on GPUs only
        sync_status = main([*args, "--settings", json.dumps({**FT, "sync_bn": True})])

    first_grads, real_step = [], torch.optim.Adam.step

    def capture(self, *args, **kwargs):  # the gradients of the first step, as the optimiser sees them
        if not first_grads:
            first_grads.extend(p.grad.clone() for g in self.param_groups for p in g["params"])
        return real_step(self, *args, **kwargs)

    torch.optim.Adam.step = capture
    writes, real_write = [], hico_bench.io.write_json
    hico_bench.io.write_json = lambda path, obj: (writes.append(str(path)), real_write(path, obj))
    status = main([*args, "--settings", json.dumps(FT)])
    torch.save({"status": status, "sync_status": sync_status, "errors": errors.getvalue(), "grads": first_grads,
                "writes": writes, "summed": torch.from_numpy(summed), "single": torch.from_numpy(single)},
               f"{out}.rank{rank}.pt")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_split_the_global_batch_and_write_the_metrics_once(tmp_path):
    from hico_bench.data.datasets import ClipDataset
    from hico_bench.evaluate.classify import _test_scores
    from hico_bench.train.optim import build_optimizer

    rows = []
    for i in range(12):
        path = write_test_video(tmp_path / f"v{i}.mp4", num_frames=30, fps=10, size=(32, 32), seed=i)
        info = probe(path)
        rows.append({"video_id": f"v{i}", "path": str(path), "split": "test" if i % 3 == 0 else "train",
                     "label": f"c{i % 2}", "label_index": i % 2, "duration": info.duration, "fps": info.fps,
                     "num_frames": info.num_frames, "segments": "", "parts": ""})
    manifest = pd.DataFrame(rows)
    train = manifest.query("split == 'train'").reset_index(drop=True)
    # each process's first batch: the DistributedSampler of seed 0, epoch 0; the second process's first video is
    # broken, so it is replaced by the next one (and quarantined)
    first = [list(DistributedSampler(range(8), num_replicas=WORLD, rank=r, shuffle=True, seed=0,
                                     drop_last=True))[:2] for r in range(WORLD)]
    broken = train.loc[first[1][0], "path"]
    manifest.loc[manifest["path"] == broken, "path"] = str(tmp_path / "broken.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"")
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    out = tmp_path / "ft_ucf101_split1.json"

    mp.spawn(worker, args=(free_port(), str(tmp_path / "manifest.csv"), str(out)), nprocs=WORLD, join=True)
    got = [torch.load(f"{out}.rank{r}.pt") for r in range(WORLD)]
    assert [g["status"] for g in got] == [0, 0]
    assert [g["sync_status"] for g in got] == [2, 2]
    assert got[0]["errors"] == ("hico-bench ft: error: ft.sync_bn needs CUDA (torch's SyncBatchNorm); set it to "
                                "false for CPU processes.\n")
    assert got[0]["writes"] == [str(out)] and got[1]["writes"] == []  # the metrics are written by rank 0 only
    metrics = json.loads(out.read_text())
    assert metrics["protocol"]["processes"] == 2 and not metrics["protocol"]["sync_bn"]
    assert metrics["quarantine"] == [[str(tmp_path / "broken.mp4"), metrics["quarantine"][0][1]]]
    assert not (tmp_path / "ft_ucf101_split1.resume").exists()  # removed after success

    # one process, the same global batch: BatchNorm over each process's 2 clips (BN.SYNC false, as the paper)
    data = ClipDataset(pd.read_csv(tmp_path / "manifest.csv").query("split == 'train'").reset_index(drop=True),
                       mode="train", seed=0, **CLIP_ARGS)
    data.set_epoch(0)
    halves = [[data[i] for i in first[r]] for r in range(WORLD)]
    clips = [torch.stack([item[0] for item in h]) for h in halves]
    labels = [torch.tensor([item[1] for item in h]) for h in halves]

    def gradients(loss_of):
        net = fresh_net()
        net.train()
        optimizer = build_optimizer(net, "adam", lr=FT["lr"], weight_decay=1e-3)
        loss_of(net).backward()
        return [p.grad for g in optimizer.param_groups for p in g["params"]]

    per_process = gradients(lambda net: sum(F.cross_entropy(net(x), y) for x, y in zip(clips, labels)) / WORLD)
    whole = gradients(lambda net: F.cross_entropy(net(torch.cat(clips)), torch.cat(labels)))
    for rank in range(WORLD):
        assert len(got[rank]["grads"]) == len(per_process)
        for a, b in zip(got[rank]["grads"], per_process):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(per_process, whole))

    # the test videos are split over the processes and gathered: the single process's scores
    test = pd.read_csv(tmp_path / "manifest.csv").query("split == 'test'").reset_index(drop=True)
    summed, single = _test_scores(fresh_net(), test, CLIP_ARGS, {**FT, "num_workers": 0, "test_crops": 1}, 2,
                                  torch.device("cpu"))
    for rank in range(WORLD):
        torch.testing.assert_close(got[rank]["summed"], torch.from_numpy(summed))
        torch.testing.assert_close(got[rank]["single"], torch.from_numpy(single))

