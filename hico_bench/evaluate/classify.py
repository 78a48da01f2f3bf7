"""Supervised evaluation on UCF101 / HMDB51: full fine-tuning (``ft``) and HiCo's linear evaluation (``lft``).

Both put a new linear head on the backbone and train with cross-entropy, Adam, coupled weight
decay (0 for BatchNorm and biases) and a cosine schedule with linear warm-up, on clips with the fine-tuning
augmentations. ``lft`` is the official behaviour: only the final layer is optimised, and the backbone stays in train
mode so that its BatchNorm statistics keep updating (a quirk of the official code, kept on purpose to match the
paper's numbers; the strict alternative is the ``probe`` task). The paper's recipe: Adam, lr 0.002 (UCF101) or 0.001
(HMDB51), 300 epochs with 10 warm-up epochs, batch 128 (64), weight decay 1e-3, clips of 16 frames at stride 4.

Test: ``views`` clips uniformly spaced x ``crops`` crops per video, softmax scores summed (HiCo's 10 x 1 by default),
and the single centre clip (``top1_1clip``).

Several GPUs (torchrun, :func:`hico_bench.train.distributed.setup_from_env`): the network is wrapped in
DistributedDataParallel and ``batch_size`` is the global batch, split evenly over the processes, as in the paper
(batch 128 on 8 GPUs: every BatchNorm sees the 16 clips of its GPU; ``sync_bn`` makes it see all 128, CUDA only). A
DistributedSampler deals the training videos (order from ``(seed, epoch)``), the test videos are dealt round-robin
and their scores gathered, so every process returns the same result; only rank 0 writes files.

Interruptions: given ``resume_dir`` (the ``hico-bench ft`` / ``lft`` verbs pass
:func:`hico_bench.train.checkpoint.resume_dir_for` of the metrics file: ``<out without .json>.resume/``), the run
keeps resume points there (every ``checkpoint_every`` epochs, every ``checkpoint_minutes``, at the end of training,
and at the step boundary where SIGTERM or SIGUSR1 stopped it, the process then exiting with status 128 + the signal
number, see :mod:`hico_bench.train.resume`) and ``steps.jsonl`` (step, epoch, loss, lr of every step). A rerun with
the same arguments continues from the newest resume point and ends with the same weights and metrics, bit for bit on
CPU, as an uninterrupted run; a resume point of a run with other settings, model, checkpoint, videos or number of
processes is refused. The folder is removed once the test scores exist, unless ``keep_resume_dir``. Without
``resume_dir`` nothing is written and signals keep their default effect.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hico_bench.errors import UserError, choice_error
from hico_bench.evaluate.probe import labelled_splits, topk_accuracy
from hico_bench.train import checkpoint as ckpt
from hico_bench.train import distributed as dist
from hico_bench.train.resume import (EpochLoader, Interrupted, StopMonitor, gather_failures, ignore_stop_signals,
                                     loader_iterator, report)

FORMAT = "hico-bench-finetune-v1"
STEPS_LOG = "steps.jsonl"

#: Settings that may change between a run and its resumption without changing the result.
RUNTIME_ONLY = ("num_workers", "cache_frames", "threads", "progress_bar", "checkpoint_every", "checkpoint_minutes",
                "keep_resume_dir")


def finetune(checkpoint: str | None, manifest, model: dict[str, Any], settings: dict[str, Any], where: str = "",
             *, mode: str, checkpoint_format: str = "auto", resume_dir: str | os.PathLike | None = None
             ) -> dict[str, Any]:
    """Train a classifier (``mode`` ``ft`` or ``lft``) on the train split; return test metrics in percent.

    ``model`` is the backbone and the clip geometry (:data:`hico_bench.settings.MODEL`), ``settings`` the task's
    (:data:`hico_bench.evaluate.tasks.TASKS`); missing keys take their defaults. ``resume_dir``: the folder of
    resume points (see the module's docstring); None writes none.
    """
    from torch.utils.data import BatchSampler, DistributedSampler, RandomSampler
    from tqdm import tqdm

    from hico_bench.data.datasets import ClipDataset
    from hico_bench.evaluate.features import load_backbone
    from hico_bench.models.heads import ClassifierModel
    from hico_bench.train.optim import WarmupCosine, set_lr

    from hico_bench.evaluate.tasks import TASKS
    from hico_bench.settings import MODEL

    if mode not in ("ft", "lft"):
        raise choice_error("fine-tuning mode", mode, ("ft", "lft"))
    s = TASKS[mode].settings.resolve(settings)
    model = MODEL.resolve(model)
    if s["threads"]:
        torch.set_num_threads(s["threads"])
    t0 = time.perf_counter()
    train, test, train_y, test_y = labelled_splits(manifest, where)
    num_classes = int(max(train_y.max(), test_y.max())) + 1

    info = dist.setup_from_env()
    world, rank, main = info.world_size, info.rank, info.rank == 0
    device = info.device if world > 1 else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    global_batch = min(s["batch_size"], len(train))
    if global_batch % world:
        raise UserError(f"{where}: the {mode} batch of {global_batch} clips cannot be split evenly over {world} "
                        f"processes; set batch_size to a multiple of {world}.")
    if s["sync_bn"] and world > 1 and device.type != "cuda":
        raise UserError(f"{mode}.sync_bn needs CUDA (torch's SyncBatchNorm); set it to false for CPU processes.")
    backbone = load_backbone(checkpoint, model, s["seed"], checkpoint_format)
    torch.manual_seed(s["seed"])
    net = ClassifierModel(backbone, num_classes, dropout=s["dropout"])
    if s["sync_bn"] and world > 1:
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    net = net.to(device)
    trainable = net.head if mode == "lft" else net
    if mode == "lft":
        # Only the head is optimised; no gradient flows into the backbone (3x cheaper), whose BatchNorm statistics
        # still update because it stays in train mode below.
        net.backbone.requires_grad_(False)
    train_net = net
    if world > 1:
        train_net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = _optimizer(trainable, s)
    schedule = WarmupCosine(s["lr"], s["epochs"], s["warmup_epochs"], s["warmup_start_lr"])

    clip_args = dict(frames=model["frames"], sampling_rate=model["sampling_rate"], target_fps=model["target_fps"],
                     size=model["size"], decode_size=model.get("decode_size"), cache_frames=s["cache_frames"])
    train_set = ClipDataset(train, mode="train", seed=s["seed"], **clip_args)
    generator = torch.Generator().manual_seed(s["seed"])
    if world > 1:
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=s["seed"],
                                     drop_last=True)
        shuffle_generator = None
    else:  # what DataLoader(shuffle=True, generator=generator) builds
        sampler = RandomSampler(train_set, generator=generator)
        shuffle_generator = generator
    loader = EpochLoader(train_set, BatchSampler(sampler, global_batch // world, drop_last=True),
                         num_workers=s["num_workers"], generator=generator, shuffle_generator=shuffle_generator)
    iters = len(loader)
    if iters == 0:
        raise UserError(f"{where}: {len(train)} training videos leave no batch of {global_batch // world} clips for "
                        f"each of {world} processes.")

    # ---- resume
    run_dir = Path(resume_dir) if resume_dir is not None else None
    record = _run_record(mode, s, model, checkpoint, checkpoint_format, train, test, world)
    start_epoch = start_batch = step = 0
    failures: list[tuple[str, str]] = []
    point = ckpt.newest_resume_point(run_dir) if run_dir is not None else None
    if point is not None:
        state = ckpt.load_checkpoint(point)
        _check_resumable(point, state, record, run_dir)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        failures = [tuple(f) for f in state["failures"]]
        if start_epoch < s["epochs"]:
            loader.resume(state["loader"][rank], state["rng"][rank])
        else:  # training had finished: straight to the test
            ckpt.set_rng_state(state["rng"][rank])
        if main:
            ckpt.truncate_log(run_dir / STEPS_LOG, step)
            at = f"epoch {start_epoch}" + (f", batch {start_batch}" if start_batch else "")
            report(f"hico-bench {mode}: resuming {where} from {at} (step {step}) of {point}.")
    elif run_dir is not None and main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STEPS_LOG).unlink(missing_ok=True)

    # ---- train
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (
        s["precision"] == "bf16" and device.type == "cuda") else contextlib.nullcontext()
    bar = tqdm(total=iters * s["epochs"], initial=step, desc=f"{mode} {where}", unit="step", dynamic_ncols=True,
               disable=not (s["progress_bar"] and main))
    monitor = StopMonitor(s["checkpoint_minutes"], enabled=run_dir is not None, device=device)

    def save_resume_point(epoch_done: int, batch: int) -> Path:
        """A resume point after ``epoch_done`` epochs and ``batch`` batches (a collective under torchrun)."""
        state = {"format": FORMAT, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                 "epoch": epoch_done, "batch": batch, "step": step, "run": record,
                 "rng": dist.all_gather_object(ckpt.rng_state()),
                 "loader": dist.all_gather_object(loader.state(epoch_done=batch == 0)),
                 "failures": [list(f) for f in gather_failures(failures)]}
        path = ckpt.write_resume_point(run_dir, epoch_done, batch, state, main=main, log=log)
        monitor.wrote_resume_point()
        return path

    def stop(signum: int, path: Path) -> None:
        bar.close()
        if main:
            report(f"hico-bench {mode}: stopped by {signal.Signals(signum).name} after step {step}; resume point "
                   f"{path}; run the same command again to continue.")
        dist.cleanup()
        raise Interrupted(signum)

    net.train()  # lft too: the backbone's BatchNorm statistics keep updating (the official behaviour)
    steps_log = open(run_dir / STEPS_LOG, "a", buffering=1) if run_dir is not None and main else None
    with monitor, loader, steps_log or contextlib.nullcontext() as log:
        for epoch in range(start_epoch, s["epochs"]):
            train_set.set_epoch(epoch)
            if world > 1:
                sampler.set_epoch(epoch)
            first = start_batch if epoch == start_epoch else 0
            request = None
            for it, (clips, labels, _index) in enumerate(loader.epoch(first), start=first):
                lr = schedule.lr_at(epoch + it / iters)
                set_lr(optimizer, lr)
                with autocast:
                    logits = train_net(clips.to(device))
                    loss = F.cross_entropy(logits, labels.to(device))
                if not torch.isfinite(loss):
                    raise UserError(f"{where}: the {mode} loss became {loss.item()} at epoch {epoch}; lower lr.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                failures.extend(train_set.drain_failures())
                value = loss.item()
                if log is not None:
                    log.write(json.dumps({"step": step, "epoch": round(epoch + (it + 1) / iters, 6), "loss": value,
                                          "lr": lr}) + "\n")
                bar.set_postfix(loss=f"{value:.3f}")
                bar.update(1)
                request = monitor.check()
                if request is not None and it + 1 < iters:  # mid-epoch; the epoch's last batch is handled below
                    path = save_resume_point(epoch, it + 1)
                    if request != "time":
                        stop(request, path)
            if run_dir is not None and ((epoch + 1) % s["checkpoint_every"] == 0 or epoch + 1 == s["epochs"]
                                        or request is not None):
                path = save_resume_point(epoch + 1, 0)
                if request not in (None, "time"):
                    stop(request, path)
        bar.close()

        # ---- test (a signal here stops at once: the resume point at the end of training is kept)
        def stopped() -> None:
            if monitor.signum is not None:
                stop(monitor.signum, ckpt.newest_resume_point(run_dir))

        scores, single = _test_scores(net, test, clip_args, s, num_classes, device, autocast=autocast,
                                      after_batch=stopped)
    failures = gather_failures(failures)
    if main and failures:
        report(f"hico-bench {mode}: {len(failures)} training videos failed to decode and were replaced by the next "
               f"ones; they are listed under 'quarantine' in the metrics.")
    if run_dir is not None and main and not s["keep_resume_dir"]:
        shutil.rmtree(run_dir, ignore_errors=True)
    dist.cleanup()
    return {
        "metrics": {
            "top1": topk_accuracy(scores, test_y, 1),
            "top5": topk_accuracy(scores, test_y, 5),
            "top1_1clip": topk_accuracy(single, test_y, 1),
        },
        "protocol": {"mode": mode, "test_views": s["test_views"], "test_crops": s["test_crops"],
                     "ensemble": "sum of softmax", "epochs": s["epochs"], "lr": s["lr"],
                     "bn_statistics": "updating (train mode)" if mode == "lft" else "trained",
                     "processes": world, "sync_bn": bool(s["sync_bn"] and world > 1),
                     "precision": "bf16" if s["precision"] == "bf16" and device.type == "cuda" else "fp32"},
        "quarantine": [list(f) for f in failures],
        "seconds": time.perf_counter() - t0,
    }


def _digest(rows) -> str:
    """A fingerprint of a split's videos and labels."""
    text = "\n".join(f"{p}\t{y}" for p, y in zip(rows["path"], rows["label_index"]))
    return hashlib.sha256(text.encode()).hexdigest()


def _run_record(mode, s, model, checkpoint, checkpoint_format, train, test, world) -> dict[str, Any]:
    """What a resume point must have been written by: everything that changes the result."""
    return {"mode": mode, "settings": {k: v for k, v in s.items() if k not in RUNTIME_ONLY}, "model": dict(model),
            "checkpoint": os.path.abspath(checkpoint) if checkpoint else "none",
            "checkpoint_format": checkpoint_format, "train_videos": _digest(train), "test_videos": _digest(test),
            "processes": world}


def _check_resumable(point: Path, state: dict, record: dict, run_dir: Path) -> None:
    if state.get("format") != FORMAT:
        raise UserError(f"{point} is not a {FORMAT} resume point; delete {run_dir} to start afresh.")
    theirs = state["run"]
    changed = [k for k in record if k != "settings" and theirs.get(k) != record[k]]
    changed += ckpt.changed_keys(record["settings"], theirs.get("settings", {}))
    if changed:
        raise UserError(f"{point} was written by a run that differs from this one in {', '.join(changed)}; "
                        f"delete {run_dir} to start afresh.")


@torch.no_grad()
def _test_scores(net, test, clip_args, s, num_classes, device, *, autocast=None, after_batch=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Summed softmax over all views and crops, and the softmax of the single centre view, of every test video.

    Under torchrun each process scores every world-size-th video and the scores are gathered, so that every process
    returns all of them. ``after_batch`` is called after every batch.
    """
    from torch.utils.data import DataLoader, Subset

    from hico_bench.data.datasets import ClipDataset

    net.eval()
    views = s["test_views"]
    dataset = ClipDataset(test, mode="test", num_views=views, crops=s["test_crops"], **clip_args)
    world, rank = dist.world_size(), dist.rank()
    mine = np.arange(rank, len(dataset), world)
    part = dataset if world == 1 else Subset(dataset, mine.tolist())
    loader = DataLoader(part, batch_size=max(1, 32 // (views * s["test_crops"])), shuffle=False,
                        num_workers=s["num_workers"],
                        worker_init_fn=ignore_stop_signals if s["num_workers"] > 0 else None)
    summed = np.zeros((len(dataset), num_classes), dtype=np.float64)
    single = np.zeros_like(summed)
    centre = (views // 2) * s["test_crops"] + s["test_crops"] // 2  # middle clip, centre crop
    with loader_iterator(loader) as batches:
        for clips, _labels, index in batches:
            b, v = clips.shape[:2]
            with autocast or contextlib.nullcontext():
                logits = net(clips.flatten(0, 1).to(device))
            probs = F.softmax(logits.float(), dim=1).view(b, v, -1).cpu().numpy()
            summed[index.numpy()] = probs.sum(1)
            single[index.numpy()] = probs[:, centre]
            if after_batch is not None:
                after_batch()
    if world > 1:
        for idx, part_summed, part_single in dist.all_gather_object((mine, summed[mine], single[mine])):
            summed[idx] = part_summed
            single[idx] = part_single
    return summed, single


def _optimizer(trainable: torch.nn.Module, s: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam with coupled L2 decay (the official recipe), or timm's AdamW, with layer-wise lr decay when asked."""
    from hico_bench.train.optim import build_optimizer

    if s["layer_decay"] is not None and s["optimizer"] != "adamw":
        raise UserError("layer_decay needs optimizer: adamw (timm's layer-wise lr decay).")
    if s["optimizer"] == "adam":
        return build_optimizer(trainable, "adam", lr=s["lr"], weight_decay=s["weight_decay"])
    from timm.optim import create_optimizer_v2

    return create_optimizer_v2(trainable, "adamw", lr=s["lr"], weight_decay=s["weight_decay"],
                               layer_decay=s["layer_decay"])

