"""Stopping a training job at a step boundary and re-entering it there, bit for bit (pretraining and fine-tuning).

Preemption. :class:`StopMonitor` catches SIGTERM and SIGUSR1 (what SLURM sends at a time limit, at a preemption and,
with ``sbatch --signal``, ahead of a time limit): the current step finishes, the trainer writes a resume point at
that step boundary and raises :class:`Interrupted`, a :class:`SystemExit` whose status is 128 + the signal number
(143 for SIGTERM, 138 for SIGUSR1), so that the job fails and a retry resumes it. With ``checkpoint_minutes`` the
monitor also asks for a resume point once that many minutes have passed since the last one. Under torchrun every
process takes the same decision at the same step (one small all-reduce per step).

Re-entering an epoch mid-way. A DataLoader draws, when it creates an iterator, the base seed of its worker
processes from its ``generator`` (torch's global RNG without one); with persistent workers only the first iterator
does. A shuffling sampler then draws the epoch's permutation (fine-tuning's ``RandomSampler`` from the same
generator; ``DistributedSampler`` from ``(seed, epoch)`` alone). :class:`EpochLoader` records the RNG state the base
seed was drawn from and, through :class:`ResumableBatches`, the generator state the permutation was drawn from, and
skips the batches already trained on. Re-entering with those states recreates the same worker seeds, the same
permutation and so the same remaining batches, and every global RNG (Python, NumPy, torch, CUDA) continues from its
state at the step boundary (after the iterator's draw where the interrupted run had drawn it before that boundary,
before it at the end of an epoch whose next iterator that run would have created anew). Without an interruption
nothing is drawn or reordered: the data order is the plain DataLoader's.

Everything here is plain data and tensors, so that resume points load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from hico_bench.train import distributed as dist
from hico_bench.train.checkpoint import set_rng_state

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
"""The signals that stop a training job at the next step boundary, with a resume point."""


class Interrupted(SystemExit):
    """The job stopped on a signal after writing a resume point; the exit status is 128 + the signal number."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.message = message

    def __str__(self) -> str:
        return self.message or f"stopped by {signal.Signals(self.signum).name}"


def report(message: str) -> None:
    """Print ``message`` to stderr, also when stderr is gone (a log pipe whose reader was terminated)."""
    import sys

    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class StopMonitor:
    """A context that turns SIGTERM / SIGUSR1 into a request to stop at the next step boundary, and that asks for a
    resume point every ``minutes`` minutes (0 = never).

    ``enabled=False`` installs nothing and never asks (a job with nowhere to write resume points keeps the default
    signal behaviour). Handlers can only be installed from the main thread; elsewhere the monitor only keeps time.
    """

    def __init__(self, minutes: float = 0.0, *, enabled: bool = True, device: torch.device | None = None):
        self.minutes = float(minutes)
        self.enabled = enabled
        self.device = device or torch.device("cpu")
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._last = time.monotonic()

    def __enter__(self) -> StopMonitor:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        self._last = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def check(self) -> int | str | None:
        """After a step: the signal number to stop on, ``"time"`` for a timed resume point, or None.

        A collective under torchrun (every process calls it after every step): the processes agree on the largest
        signal number received by any of them, and on a timed resume point when any of them asks for one.
        """
        if not self.enabled:
            return None
        signum = self.signum or 0
        due = self.minutes > 0 and time.monotonic() - self._last >= self.minutes * 60
        if dist.world_size() > 1:
            flags = torch.tensor([signum, int(due)], dtype=torch.int64, device=self.device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            signum, due = int(flags[0]), bool(flags[1])
        if signum:
            return signum
        return "time" if due else None

    def wrote_resume_point(self) -> None:
        """Restart the clock of ``checkpoint_minutes``."""
        self._last = time.monotonic()


def gather_failures(failures: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every process's ``(path, reason)`` decoding failures, each pair once, sorted (a collective under torchrun)."""
    return sorted({(str(path), str(reason)) for part in dist.all_gather_object(list(failures))
                   for path, reason in part})


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: workers ignore SIGTERM / SIGUSR1 (SLURM signals every process of a job step),
    so that they keep serving the main process until it has written its resume point.

    Such workers must be shut down through their loader (:func:`shut_down_workers`, :meth:`EpochLoader.close`):
    ``multiprocessing`` ends leftover worker processes at interpreter exit with SIGTERM and then waits for them.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def shut_down_workers(iterator) -> None:
    """Ask the worker processes of a DataLoader iterator to exit, and wait for them (no-op without workers)."""
    shutdown = getattr(iterator, "_shutdown_workers", None)  # torch's own clean shutdown of its workers
    if shutdown is not None:
        shutdown()


@contextlib.contextmanager
def loader_iterator(loader: DataLoader) -> Iterator:
    """``iter(loader)``, whose worker processes are shut down on leaving the context, also on an exception."""
    iterator = iter(loader)
    try:
        yield iterator
    finally:
        shut_down_workers(iterator)


class ResumableBatches(Sampler):
    """A batch sampler that passes on ``batches``' batches, skipping the first :attr:`skip` of the next iteration.

    ``shuffle_generator`` is the generator the wrapped sampler draws its permutation from, if any: its state when an
    iteration starts is kept in :attr:`epoch_shuffle_state`, and :attr:`shuffle_state`, when set, is restored right
    then, before the permutation is drawn. The wrapped sampler draws exactly as it would unwrapped.
    """

    def __init__(self, batches, shuffle_generator: torch.Generator | None = None):
        self.batches = batches
        self.generator = shuffle_generator
        self.skip = 0
        self.shuffle_state: torch.Tensor | None = None
        self.epoch_shuffle_state: torch.Tensor | None = None

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def generator_state(self) -> torch.Tensor | None:
        return None if self.generator is None else self.generator.get_state()

    def __iter__(self) -> Iterator:
        # A generator function: nothing runs until the DataLoader asks for the first batch, exactly when the wrapped
        # sampler would start drawing.
        if self.generator is not None:
            if self.shuffle_state is not None:
                self.generator.set_state(self.shuffle_state)
                self.shuffle_state = None
            self.epoch_shuffle_state = self.generator.get_state()
        skip, self.skip = self.skip, 0
        yield from itertools.islice(iter(self.batches), skip, None)


class EpochLoader:
    """A DataLoader over ``batch_sampler`` (persistent workers when ``num_workers`` > 0) whose epochs can be entered
    at any batch, repeating the uninterrupted run exactly (see the module's docstring).

    ``generator`` is the DataLoader's (worker base seeds; torch's global RNG when None); ``shuffle_generator`` the
    one ``batch_sampler`` shuffles with, if any. Per epoch: position the samplers / dataset for the epoch, then
    iterate :meth:`epoch`. :meth:`state` after a step (or at the end of an epoch) is what :meth:`resume` needs.
    Use it as a context manager (or call :meth:`close`): leaving shuts its worker processes down.
    """

    def __init__(self, dataset, batch_sampler, *, num_workers: int = 0, generator: torch.Generator | None = None,
                 shuffle_generator: torch.Generator | None = None, pin_memory: bool = False):
        self.batches = ResumableBatches(batch_sampler, shuffle_generator)
        self.generator = generator
        self.loader = DataLoader(dataset, batch_sampler=self.batches, num_workers=num_workers, pin_memory=pin_memory,
                                 persistent_workers=num_workers > 0, generator=generator,
                                 worker_init_fn=ignore_stop_signals if num_workers > 0 else None)
        self._persistent = num_workers > 0
        self._created = False
        self._iter_state: torch.Tensor | None = None
        self._pending: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.batches)

    def __enter__(self) -> EpochLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Shut the worker processes down (a later :meth:`epoch` starts new ones)."""
        if self.loader._iterator is not None:  # the persistent iterator the DataLoader keeps between epochs
            shut_down_workers(self.loader._iterator)
            self.loader._iterator = None
        self._created = False

    def _base_state(self) -> torch.Tensor:
        return torch.get_rng_state() if self.generator is None else self.generator.get_state()

    def _set_base_state(self, state: torch.Tensor) -> None:
        if self.generator is None:
            torch.set_rng_state(state)
        else:
            self.generator.set_state(state)

    def epoch(self, start: int = 0) -> Iterator:
        """An iterator over the current epoch's batches from batch number ``start`` (counted from 0) on."""
        pending, self._pending = self._pending, None
        if pending is not None:
            if pending["fresh"]:  # the interrupted run created this iterator here too, from the RNG as it was
                set_rng_state(pending["rng"])
            self._set_base_state(pending["loader_rng"])
            self.batches.shuffle_state = pending["shuffle_rng"]
        if not (self._persistent and self._created):
            self._iter_state = self._base_state()
        self.batches.skip = start
        iterator = iter(self.loader)
        self._created = True
        if pending is not None and not pending["fresh"]:  # undo this iterator's draw, which that run did earlier
            set_rng_state(pending["rng"])
        return iterator

    def state(self, epoch_done: bool) -> dict[str, Any]:
        """What :meth:`resume` needs to continue after the last batch taken (``epoch_done``: it ended the epoch)."""
        reused = self._persistent and self._created  # the next epoch reuses this iterator: no new base seed
        if epoch_done and not reused:  # the next epoch's iterator draws from the base RNG as it is now
            return {"loader_rng": self._base_state(), "shuffle_rng": None, "fresh": True}
        return {"loader_rng": self._iter_state, "fresh": False,
                "shuffle_rng": self.batches.generator_state() if epoch_done else self.batches.epoch_shuffle_state}

    def resume(self, state: dict[str, Any], rng: dict[str, Any]) -> None:
        """Make the next :meth:`epoch` call continue as the run that wrote ``state`` (from :meth:`state`) did; every
        global RNG is set to ``rng`` (:func:`~hico_bench.train.checkpoint.rng_state` at that step boundary) once its
        iterator exists."""
        self._pending = {**state, "rng": rng}
