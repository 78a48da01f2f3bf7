"""Re-entering an epoch at any batch (EpochLoader), stop signals, resume point names: against plain DataLoaders."""

import os
import signal

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler

from hico_bench.train import checkpoint as ckpt
from hico_bench.train.resume import STOP_SIGNALS, EpochLoader, Interrupted, StopMonitor

N, BATCH, EPOCHS = 10, 3, 3  # 3 batches per epoch, one video left over


class Items(Dataset):
    """Item i -> (i, the torch seed of the process that loads it: base seed + worker id inside a worker)."""

    def __len__(self):
        return N

    def __getitem__(self, i):
        return torch.tensor([i, torch.initial_seed()])


def shuffled_loader(workers):
    g = torch.Generator().manual_seed(7)
    return EpochLoader(Items(), BatchSampler(RandomSampler(Items(), generator=g), BATCH, drop_last=True),
                       num_workers=workers, generator=g, shuffle_generator=g)


def distributed_loader(workers):  # the pretraining layout: order from (seed, epoch), base seeds from torch's RNG
    sampler = DistributedSampler(Items(), num_replicas=1, rank=0, shuffle=True, seed=7, drop_last=True)
    return EpochLoader(Items(), BatchSampler(sampler, BATCH, drop_last=True), num_workers=workers), sampler


def run(loader, sampler=None, start=(0, 0), boundaries=None):
    """Batches and one global-RNG draw per step (a dropout's) from ``start`` on; records every boundary's state."""
    seen = []
    for epoch in range(start[0], EPOCHS):
        if sampler is not None:
            sampler.set_epoch(epoch)
        first = start[1] if epoch == start[0] else 0
        for it, batch in enumerate(loader.epoch(first), start=first):
            seen.append((epoch, it, batch[:, 0].tolist(), batch[:, 1].tolist(), torch.rand(1).item()))
            if boundaries is not None and it + 1 < len(loader):
                boundaries[(epoch, it + 1)] = {"loader": loader.state(epoch_done=False), "rng": ckpt.rng_state()}
        if boundaries is not None:  # as the trainers do: once the epoch's iterator is exhausted
            boundaries[(epoch + 1, 0)] = {"loader": loader.state(epoch_done=True), "rng": ckpt.rng_state()}
    return seen


@pytest.mark.parametrize("workers", [0, 1])
def test_the_epoch_loader_keeps_the_plain_dataloader_order_and_worker_seeds(workers):
    torch.manual_seed(0)
    ours = run(shuffled_loader(workers))
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    plain = DataLoader(Items(), batch_size=BATCH, shuffle=True, drop_last=True, generator=g, num_workers=workers,
                       persistent_workers=workers > 0)
    reference = [(e, it, b[:, 0].tolist(), b[:, 1].tolist(), torch.rand(1).item())
                 for e in range(EPOCHS) for it, b in enumerate(plain)]
    assert ours == reference
    assert len({tuple(r[2]) for r in ours}) == EPOCHS * 3  # the order changes with every batch and epoch


@pytest.mark.parametrize("layout", ["shuffled", "distributed"])
@pytest.mark.parametrize("workers", [0, 1])
def test_re_entering_at_any_boundary_repeats_the_rest_of_the_run(layout, workers, tmp_path):
    def make():
        return (shuffled_loader(workers), None) if layout == "shuffled" else distributed_loader(workers)

    torch.manual_seed(0)
    boundaries = {}
    loader, sampler = make()
    full = run(loader, sampler, boundaries=boundaries)
    for at in [(0, 1), (1, 2), (1, 0), (2, 0), (2, 1)]:
        # through a checkpoint file: the states are tensors and plain data (weights_only loading)
        ckpt.save_checkpoint(tmp_path / "state.pt", boundaries[at])
        state = ckpt.load_checkpoint(tmp_path / "state.pt")
        torch.manual_seed(123)  # a fresh process: other RNG states until the resume restores them
        loader, sampler = make()
        loader.resume(state["loader"], state["rng"])
        rest = run(loader, sampler, start=at)
        assert rest == [r for r in full if (r[0], r[1]) >= at], at  # batches, worker seeds and RNG draws


def test_resume_points_are_ordered_by_epoch_then_batch(tmp_path):
    assert ckpt.newest_resume_point(tmp_path / "missing") is None
    for epoch, batch in [(1, 0), (0, 7), (1, 12), (2, 0), (1, 3)]:
        ckpt.resume_point_path(tmp_path, epoch, batch).write_bytes(b"")
    (tmp_path / "checkpoint_last.pt").write_bytes(b"")
    assert ckpt.newest_resume_point(tmp_path).name == "checkpoint_epoch_0002.pt"
    ckpt.prune_resume_points(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_epoch_0001_batch_000012.pt", "checkpoint_epoch_0002.pt", "checkpoint_last.pt"]
    assert ckpt.resume_dir_for("results/eval/r/8x16/splits/ft_ucf101_split1.json").as_posix() == \
        "results/eval/r/8x16/splits/ft_ucf101_split1.resume"


def test_the_stop_monitor_catches_sigterm_and_sigusr1_and_keeps_time():
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with StopMonitor() as monitor:
        assert monitor.check() is None
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # the first signal is the one reported
        assert monitor.check() == signal.SIGUSR1
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before
    with StopMonitor(minutes=1e-9) as monitor:
        assert monitor.check() == "time"
    with StopMonitor(minutes=60) as monitor:
        assert monitor.check() is None
    with StopMonitor(minutes=1e-9, enabled=False) as monitor:  # nowhere to write: nothing installed, never asks
        assert signal.getsignal(signal.SIGTERM) == before[signal.SIGTERM]
        assert monitor.check() is None
    stopped = Interrupted(signal.SIGTERM)
    assert isinstance(stopped, SystemExit) and stopped.code == 143 and Interrupted(signal.SIGUSR1).code == 138
