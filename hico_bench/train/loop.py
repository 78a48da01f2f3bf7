"""HiCo pretraining (`hico-bench pretrain`): one run of one variant, on CPU or CUDA, one process or many (torchrun).

One run = one settings dict (declared in :data:`hico_bench.settings.PRETRAIN`; the variants of the paper's grid are
configurations of it, see :data:`hico_bench.method.VARIANTS`) and one manifest. Outputs in ``out_dir``:
``checkpoint_last.pt`` (at the end), ``metrics.jsonl`` (one JSON line per step, at the end), resume points
(:mod:`hico_bench.train.checkpoint`) and ``metrics.partial.jsonl`` while running, ``quarantine.csv`` for videos that
failed to decode during training (gathered from every process).

Determinism: the data order comes from ``(seed, epoch)``, each item's clips and augmentations from
``(seed, epoch, index)``, and the training progress that drives gradual sampling from the position of the batch in
the run. The batch sampler hands ``(index, epoch, progress)`` to the dataset, so the loader's worker processes see the
exact progress of the iteration that will consume the item, in-process and without files or races. A run resumed
from a checkpoint therefore repeats the interrupted epoch exactly.

Interruptions (:mod:`hico_bench.train.resume`): a run rerun in the same ``out_dir`` continues from its newest resume
point. Resume points are written every ``checkpoint_every`` epochs, every ``checkpoint_minutes`` (mid-epoch too), and
when SIGTERM or SIGUSR1 arrives: the current step finishes, the resume point is written at that step boundary and the
process exits with status 128 + the signal number (143 for SIGTERM). A mid-epoch resume point holds the batch
position in the epoch and the loader's RNG states, so the resumed run trains on exactly the batches the
uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from hico_bench.errors import UserError
from hico_bench.io import atomic_path, write_quarantine
from hico_bench.train import checkpoint as ckpt
from hico_bench.train import distributed as dist
from hico_bench.train.resume import EpochLoader, Interrupted, StopMonitor, gather_failures, report

class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


def resolve_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The declared defaults (:data:`hico_bench.settings.PRETRAIN`) updated with ``settings``, checked."""
    from hico_bench.method import check_variant
    from hico_bench.settings import PRETRAIN

    s = PRETRAIN.resolve(settings)
    check_variant(s)
    return s


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pretrain(manifest_path: str | os.PathLike, out_dir: str | os.PathLike, settings: dict[str, Any]) -> Path:
    """Run (or resume) one pretraining run; returns the path of ``checkpoint_last.pt``."""
    # Imports here keep `hico-bench --help` fast.
    from hico_bench.data.transforms import PRETRAIN as PRETRAIN_AUGMENT, augment_batch, sample_params
    from hico_bench.method import build_model, hico_loss
    from hico_bench.models.backbones import build_backbone
    from hico_bench.train.optim import WarmupCosine, build_optimizer, scaled_lr, set_lr

    s = resolve_settings(settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = out_dir / ckpt.LAST

    dist.setup_from_env()
    world, rank = dist.world_size(), dist.rank()
    device = _device(s["device"])
    if s["sync_bn"] and world > 1 and device.type != "cuda":
        raise UserError("pretrain.sync_bn needs CUDA (torch's SyncBatchNorm); set it to false for CPU processes.")
    if s["threads"]:
        torch.set_num_threads(s["threads"])
    if s["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    _seed_everything(s["seed"] + rank)

    # ---- data
    dataset, schedule, batches, loader = _pretrain_data(manifest_path, s, world, rank, device)
    device_spec = dataclasses.replace(PRETRAIN_AUGMENT, size=s["size"])
    on_device = s["augment_on"] == "device"

    # ---- model and optimiser
    backbone = build_backbone(s["backbone"], (s["frames"], s["size"]), **s["backbone_kwargs"])
    model = build_model(backbone, s)
    if s["sync_bn"] and world > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    global_clips = s["batch_videos"] * world * s["num_clips"]
    base_lr = scaled_lr(s["base_lr"], global_clips) if s["scale_lr"] else s["base_lr"]
    optimizer = build_optimizer(model, s["optimizer"], lr=base_lr, weight_decay=s["weight_decay"],
                                momentum=s["momentum"], bn_lars_exclude=s["bn_lars_exclude"])
    lr_schedule = WarmupCosine(base_lr, s["epochs"], s["warmup_epochs"], s["warmup_start_lr"])
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    # ---- resume
    start_epoch, start_batch, step = 0, 0, 0
    failures: list[tuple[str, str]] = []
    metrics_partial = out_dir / "metrics.partial.jsonl"
    resume = ckpt.newest_resume_point(out_dir)
    if resume is not None:
        state = ckpt.load_checkpoint(resume)
        _check_resumable(resume, state, s, world, out_dir)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_batch, step = state["epoch"], state.get("batch", 0), state["step"]
        failures = [tuple(f) for f in state.get("failures", [])]
        if "loader" in state and start_epoch < s["epochs"]:
            loader.resume(state["loader"][rank], state["rng"][rank])
        else:  # nothing left to train, or written before resume points recorded the loader (epoch boundaries)
            ckpt.set_rng_state(state["rng"][rank])
        ckpt.truncate_log(metrics_partial, step)
        if dist.is_main():
            where = f"epoch {start_epoch}" + (f", batch {start_batch}" if start_batch else "")
            print(f"hico-bench pretrain: resuming {out_dir.name} from {where} (step {step}).",
                  file=sys.stderr, flush=True)
    elif dist.is_main():
        metrics_partial.unlink(missing_ok=True)

    # ---- train
    iters = len(loader)
    total_steps = iters * s["epochs"]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (
        s["precision"] == "bf16" and device.type == "cuda") else contextlib.nullcontext()
    bar = None
    if dist.is_main() and s["progress_bar"]:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"pretrain {out_dir.name}", unit="step", dynamic_ncols=True)

    def save_resume_point(epoch_done: int, batch: int) -> Path:
        """A resume point after ``epoch_done`` epochs and ``batch`` batches (every rank: gathers RNG states)."""
        state = _state(model, optimizer, epoch_done, step, s, world)
        state.update(batch=batch, loader=dist.all_gather_object(loader.state(epoch_done=batch == 0)),
                     failures=[list(f) for f in gather_failures(failures)])
        path = ckpt.write_resume_point(out_dir, epoch_done, batch, state, main=dist.is_main(), log=log)
        monitor.wrote_resume_point()
        return path

    def stop(signum: int, path: Path) -> None:
        if bar is not None:
            bar.close()
        if dist.is_main():
            report(f"hico-bench pretrain: stopped by {signal.Signals(signum).name} after step {step}; resume point "
                   f"{path}; run the same command again to continue.")
        dist.cleanup()
        raise Interrupted(signum)

    model.train()
    monitor = StopMonitor(s["checkpoint_minutes"], device=device)
    log_file = open(metrics_partial, "a", buffering=1) if dist.is_main() else contextlib.nullcontext()
    with monitor, loader, log_file as log:
        for epoch in range(start_epoch, s["epochs"]):
            batches.set_epoch(epoch)
            first = start_batch if epoch == start_epoch else 0
            request = None
            t_ready = time.perf_counter()
            for it, (clips, _index) in enumerate(loader.epoch(first), start=first):
                t_data = time.perf_counter()
                epoch_f = epoch + it / iters
                lr = lr_schedule.lr_at(epoch_f)
                set_lr(optimizer, lr)
                clips = clips.to(device, non_blocking=True)
                if on_device:  # uint8 (B, N, T, H, W, 3) -> float (B, N, 3, T, S, S); parameters from (seed, step)
                    b, n = clips.shape[:2]
                    rng = np.random.default_rng([s["seed"], rank, step])
                    params = sample_params(device_spec, b * n, clips.shape[3], clips.shape[4], rng)
                    clips = augment_batch(clips.flatten(0, 1), params, device_spec).unflatten(0, (b, n))
                with autocast:
                    loss, loss_vcl, loss_tcl = hico_loss(train_model(clips), s, world)
                if not torch.isfinite(loss):
                    kept = ckpt.newest_resume_point(out_dir)
                    raise TrainingDiverged(
                        f"the loss became {loss.item()} at epoch {epoch_f:.3f} (step {step}); "
                        + (f"the last good checkpoint is {kept}" if kept else "no checkpoint was written yet")
                        + "; lower base_lr or check the data."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                t_done = time.perf_counter()
                failures.extend(dataset.drain_failures())
                if dist.is_main():
                    clips_per_s = clips.shape[0] * clips.shape[1] * world / max(t_done - t_ready, 1e-9)
                    record = {
                        "step": step, "epoch": round(epoch_f + 1 / iters, 6), "loss": loss.item(),
                        "loss_vcl": loss_vcl.item(), "loss_tcl": None if loss_tcl is None else loss_tcl.item(),
                        "lr": lr, "delta_max": schedule.max_dis((epoch + it / iters) / s["epochs"]),
                        "clips_per_s": round(clips_per_s, 2),
                        "data_wait_frac": round((t_data - t_ready) / max(t_done - t_ready, 1e-9), 4),
                    }
                    log.write(json.dumps(record) + "\n")
                    if bar is not None:
                        bar.set_postfix(loss=f"{record['loss']:.3f}", clips_s=f"{clips_per_s:.0f}")
                        bar.update(1)
                request = monitor.check()
                if request is not None and it + 1 < iters:  # mid-epoch; the epoch's last batch is handled below
                    path = save_resume_point(epoch, it + 1)
                    if request != "time":
                        stop(request, path)
                t_ready = time.perf_counter()
            if (epoch + 1) % s["checkpoint_every"] == 0 or epoch + 1 == s["epochs"] or request is not None:
                path = save_resume_point(epoch + 1, 0)
                if request not in (None, "time"):
                    stop(request, path)
    if bar is not None:
        bar.close()
    state = _state(model, optimizer, s["epochs"], step, s, world)
    failures = gather_failures(failures)
    if dist.is_main():
        _report_failures(out_dir / "quarantine.csv", failures)
        ckpt.save_checkpoint(last_path, state)
        with atomic_path(out_dir / "metrics.jsonl") as tmp:
            tmp.write_text(metrics_partial.read_text())
    dist.cleanup()
    return last_path


def _pretrain_data(manifest_path, s: dict[str, Any], world: int, rank: int, device: torch.device):
    """The training videos of the manifest, checked, and the dataset, delta schedule, batch sampler and loader."""
    from hico_bench.data.datasets import PretrainDataset, ProgressBatchSampler
    from hico_bench.data.manifest import read_manifest
    from hico_bench.data.sampling import DeltaSchedule, clip_time
    from hico_bench.data.transforms import PretrainAugment

    manifest = read_manifest(manifest_path)
    manifest = manifest[manifest["split"] == "train"].reset_index(drop=True)
    if manifest.empty:
        raise UserError(f"manifest {manifest_path} has no training videos.")
    clip_t = clip_time(s["frames"], s["sampling_rate"], s["target_fps"])
    if float(manifest["duration"].max()) < clip_t:
        raise UserError(
            f"no video in {manifest_path} is long enough for one clip of {clip_t:.2f} s "
            f"(frames x sampling_rate / target_fps = {s['frames']} x {s['sampling_rate']} / {s['target_fps']}); "
            f"the longest is {manifest['duration'].max():.2f} s."
        )
    if len(manifest) < s["batch_videos"] * world:
        raise UserError(
            f"manifest {manifest_path} has {len(manifest)} training videos, fewer than one global batch "
            f"({s['batch_videos']} videos x {world} processes)."
        )
    schedule = DeltaSchedule(s["schedule"], s["delta_s"])
    on_device = s["augment_on"] == "device"
    if on_device and not s["decode_size"]:
        raise UserError("augment_on: device needs decode_size, so that every clip of a batch has one frame size.")
    dataset = PretrainDataset(
        manifest, frames=s["frames"], sampling_rate=s["sampling_rate"], target_fps=s["target_fps"],
        num_clips=s["num_clips"], schedule=schedule, topical=s["topical"],
        transform=None if on_device else PretrainAugment(s["size"]),
        decode_size=(s["decode_size"], s["decode_size"]) if on_device else s["decode_size"], seed=s["seed"],
        cache_frames=s["cache_frames"], trimmed=s["trimmed"],
    )
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=s["seed"], drop_last=True)
    batches = ProgressBatchSampler(sampler, s["batch_videos"], s["epochs"])
    if len(batches) == 0:
        raise UserError(f"batch_videos {s['batch_videos']} leaves no full batch in {manifest_path}.")
    loader = EpochLoader(dataset, batches, num_workers=s["num_workers"], pin_memory=device.type == "cuda")
    return dataset, schedule, batches, loader


def _state(model, optimizer, epoch: int, step: int, s: dict, world: int) -> dict[str, Any]:
    rngs = [ckpt.rng_state()]
    if world > 1:
        rngs = dist.all_gather_object(rngs[0])
    return {
        "format": "hico-bench-pretrain-v1",
        "model": model.state_dict(),
        "backbone_name": s["backbone"],
        "backbone_kwargs": s["backbone_kwargs"],
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
        "settings": _comparable(s),
        "rng": rngs,
    }


#: Settings that may change between a run and its resumption without changing the result.
RUNTIME_ONLY = ("num_workers", "progress_bar", "device", "threads", "checkpoint_every", "checkpoint_minutes")


def _comparable(s: dict) -> dict:
    return {k: v for k, v in s.items() if k not in RUNTIME_ONLY}


def _check_resumable(path: Path, state: dict, s: dict, world: int, out_dir: Path) -> None:
    """A resume point written with other settings, or by another number of processes, is refused."""
    theirs, ours = _comparable(state["settings"]), _comparable(s)
    changed = ckpt.changed_keys(theirs, ours)
    if changed:
        raise UserError(f"{path} was written with other settings than this run's ({', '.join(changed)}); "
                        f"delete {out_dir} to start afresh.")
    if len(state["rng"]) != world:
        raise UserError(f"{path} was written by {len(state['rng'])} processes and this run has {world}; resume it "
                        f"with {len(state['rng'])}, or delete {out_dir} to start afresh.")


def _report_failures(path: Path, failures: list[tuple[str, str]]) -> None:
    write_quarantine(path, failures)
    if failures:
        print(f"hico-bench pretrain: {len(failures)} videos failed to decode and were skipped; see {path}.",
              file=sys.stderr, flush=True)


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device: cuda was asked for, but no CUDA GPU is visible.")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


