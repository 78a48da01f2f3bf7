import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from hico_bench.errors import UserError
from hico_bench.losses import vcl_loss
from hico_bench.train import distributed as D

WORLD = 2
VIDEOS, CLIPS, IN_DIM, OUT_DIM = 4, 3, 5, 8


def global_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(VIDEOS * CLIPS, IN_DIM, generator=g, dtype=torch.float64)
    layer = nn.Linear(IN_DIM, OUT_DIM).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(OUT_DIM, IN_DIM, generator=g))
        layer.bias.copy_(torch.randn(OUT_DIM, generator=g))
    return x, layer


def torchrun_env(rank, port):
    """The environment torchrun gives process ``rank`` of WORLD."""
    import os

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def worker(rank, port, out_dir):
    from hico_bench.train.loop import pretrain

    torchrun_env(rank, port)
    info = D.setup_from_env()
    try:
        x, layer = global_batch()
        rows = slice(rank * len(x) // WORLD, (rank + 1) * len(x) // WORLD)
        z_local = F.normalize(layer(x[rows]), dim=1)
        z_local.retain_grad()
        z = D.gather_with_grad(z_local)
        loss = vcl_loss(z, CLIPS)
        (loss * D.world_size()).backward()  # the trainer's scaling (spec section 6)
        grads = [p.grad.clone() for p in layer.parameters()]
        for g in grads:  # what DDP does: average over processes
            torch.distributed.all_reduce(g)
            g /= D.world_size()
        try:
            D.gather_with_grad(torch.zeros(rank + 1, 2))
            uneven = "no error"
        except ValueError as err:
            uneven = str(err)
        torch.save(dict(uneven=uneven, info=(info.rank, info.world_size, info.local_rank, str(info.device)),
                        me=(D.rank(), D.world_size(), D.is_main()), z=z.detach(), loss=loss.detach(),
                        z_grad=z_local.grad / D.world_size(), grads=grads,
                        objects=D.all_gather_object({"rank": rank})), f"{out_dir}/rank{rank}.pt")
        pretrain(f"{out_dir}/manifest.csv", f"{out_dir}/run", PRETRAIN)  # in the same process group
    finally:
        D.cleanup()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PRETRAIN = {"epochs": 1, "batch_videos": 2, "optimizer": "adam", "base_lr": 0.001, "scale_lr": False,
            "head_mid_dim": 16, "head_out_dim": 8, "backbone_kwargs": {"widths": [4, 4, 8], "out_dim": 8},
            "frames": 4, "size": 16, "decode_size": 32, "sampling_rate": 2, "target_fps": 10, "threads": 1,
            "progress_bar": False}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Two gloo processes: the VCL gather checks, then a pretraining run in which only rank 1 loads a broken video.

    Returns the folder of their outputs and the broken video's path.
    """
    import pandas as pd
    from torch.utils.data import DistributedSampler

    from hico_bench.data.video import probe
    from tests.conftest import write_test_video

    out_dir = tmp_path_factory.mktemp("two_processes")
    rows = []
    for i in range(8):
        path = write_test_video(out_dir / f"v{i}.mp4", num_frames=30, fps=10, size=(32, 32), seed=i)
        info = probe(path)
        rows.append({"video_id": f"v{i}", "path": str(path), "split": "train", "label": "", "label_index": -1,
                     "duration": info.duration, "fps": info.fps, "num_frames": info.num_frames, "segments": "",
                     "parts": ""})
    # a video that only the second process loads (the trainer's sampler: shuffled by seed 0, epoch 0)
    order = [list(DistributedSampler(range(8), num_replicas=WORLD, rank=r, shuffle=True, seed=0, drop_last=True))
             for r in range(WORLD)]
    broken = order[1][0]
    assert broken not in order[0]
    (out_dir / "broken.mp4").write_bytes(b"not a video")
    rows[broken]["path"] = str(out_dir / "broken.mp4")
    pd.DataFrame(rows).to_csv(out_dir / "manifest.csv", index=False)
    mp.spawn(worker, args=(free_port(), str(out_dir)), nprocs=WORLD, join=True)
    return out_dir, str(out_dir / "broken.mp4")


def test_two_processes_give_the_single_process_loss_and_gradient(two_processes):
    tmp_path = two_processes[0]
    x, layer = global_batch()
    z_full = F.normalize(layer(x), dim=1)
    z_full.retain_grad()
    loss = vcl_loss(z_full, CLIPS)
    loss.backward()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["info"] == (rank, WORLD, rank, "cpu")
        assert got["me"] == (rank, WORLD, rank == 0)
        rows = slice(rank * len(x) // WORLD, (rank + 1) * len(x) // WORLD)
        torch.testing.assert_close(got["z"], z_full.detach())
        torch.testing.assert_close(got["loss"], loss.detach())
        torch.testing.assert_close(got["z_grad"], z_full.grad[rows])
        for g, p in zip(got["grads"], layer.parameters()):
            torch.testing.assert_close(g, p.grad)
        assert got["objects"] == [{"rank": 0}, {"rank": 1}]
        assert got["uneven"] == "gather_with_grad needs the same shape on every rank, got [[1, 2], [2, 2]]"


def test_single_process_helpers_are_identities(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = D.setup_from_env()
    assert (info.rank, info.world_size, info.local_rank) == (0, 1, 0)
    assert not D.is_initialized()
    x = torch.randn(3, 2, requires_grad=True)
    assert D.gather_with_grad(x) is x
    assert D.all_gather_object("a") == ["a"]
    assert (D.world_size(), D.rank(), D.is_main(), D.is_main_process()) == (1, 0, True, True)
    monkeypatch.setenv("RANK", "1")  # torchrun's second process, before its process group exists
    assert D.is_main() and not D.is_main_process()
    D.cleanup()


def test_setup_needs_torchrun_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UserError, match="MASTER_ADDR is not set"):
        D.setup_from_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(UserError, match="WORLD_SIZE='two' is not an integer"):
        D.setup_from_env()


def test_the_quarantine_gathers_the_failures_of_every_process(two_processes):
    import pandas as pd

    out_dir, broken = two_processes
    assert pd.read_csv(out_dir / "run" / "quarantine.csv")["path"].tolist() == [broken]
    assert (out_dir / "run" / "checkpoint_last.pt").exists()
