"""Estimated GPU-hours of every job of a configuration's grid (default ``config/paper.yaml``): counted FLOPs,
assumed throughput.

Nothing here runs on a GPU (none has been lent to this project's sessions yet). Every number printed is one of:

* ``counted``: FLOPs per clip, counted with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (matrix
  products and convolutions, 2 per multiply-add; the backward of grouped convolutions as
  ``benchmarks/train_step.py``'s ``conv_backward_flop`` says): the backbone's forward, the forward + backward of the
  pretraining model (backbone + heads) or of the fine-tuning classifier;
* ``config``: every job of the grid (``hico_bench.config.build_grid``: the base grid and every group, each job
  with its own backbone, clip geometry, epochs, views, workers);
* ``assumed``: dataset sizes (below), and the sustained GPU throughput = ``--peak-tflops`` x ``--mfu`` (model FLOP
  utilisation; ``benchmarks/train_step.py`` measures it on a GPU: pass its value back with ``--mfu`` or
  ``--mfu-per-backbone``);
* ``measured on CPU``: the data loader's clips/s per worker process (``benchmarks/pipeline.py``, prepared 128-px
  files, with augmentation) and the frozen-feature passes' clips/s per process (``benchmarks/export.py``), on this
  project's development CPU; a GPU host's cores are assumed to deliver the same per process.

GPU-seconds of a job = clips / min(GPU clips/s, data clips/s per GPU), summed over its GPUs alike: a GPU waits for
data when its loader workers cannot keep up. Scaling losses (all-gather, synchronised BatchNorm, stragglers) are not modelled. A job shared by several
groups (a checkpoint another group fine-tunes at another input) is counted once, in the first group that asks for it.

Assumed dataset sizes (videos): Kinetics-400 train 240k clips; UK400 the same 240k ids as full-length videos (one
item per video and epoch); HACS Segments v1.1.1 training 37,618 videos; UCF101 split 1: 9,537 train / 3,783 test;
HMDB51 split 1: 3,570 / 1,530; ActivityNet v1.3 19,994 videos, about 648 hours, at 30 fps (the export reads the
subsets it is given: training + validation by default, about three quarters).

Run: ``python benchmarks/gpu_hours.py`` (per group of the paper's grid, then a summary), ``--backbones all`` adds
the README's backbone table (the base grid with its backbone swapped), ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from hico_bench.config import build_grid, configurations
from hico_bench.errors import UserError
from hico_bench.evaluate.tasks import TASKS
from hico_bench.models.backbones import build_backbone
from hico_bench.models.heads import ClassifierModel
from hico_bench.settings import EXPORT, FEATURES, PRETRAIN, validate_config

#: Assumed dataset sizes: pretraining sets (videos per epoch), downstream (train, test) videos.
PRETRAIN_VIDEOS = {"k400": 240_000, "uk400": 240_000, "hacs": 37_618}
DOWNSTREAM_VIDEOS = {"ucf101": (9_537, 3_783), "hmdb51": (3_570, 1_530)}
NUM_CLASSES = {"ucf101": 101, "hmdb51": 51}
ACTIVITYNET_HOURS = 648.0
ACTIVITYNET_FPS = 30.0
ACTIVITYNET_SUBSET_SHARE = {"training": 0.50, "validation": 0.25, "testing": 0.25}  # 10,024 / 4,926 / 5,044 videos

# Measured with benchmarks/pipeline.py and benchmarks/export.py on the development CPU (see results/benchmarks.md).
MEASURED_LOADER_CLIPS_PER_WORKER = 95.0
MEASURED_FROZEN_CLIPS_PER_PROCESS = 300.0


@functools.cache
def _train_step_module():
    spec = importlib.util.spec_from_file_location("hico_train_step_benchmark",
                                                  Path(__file__).with_name("train_step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def forward_flops(backbone: str, frames: int, size: int) -> int:
    return _train_step_module().clip_flops(backbone, frames, size)


@functools.cache
def pretrain_flops(backbone: str, frames: int, size: int) -> float:
    """Forward + backward FLOPs per clip of the pretraining model (the HiCo heads; the backbone dominates)."""
    step = _train_step_module()
    return step.count_step_flops(backbone, 1, frames, size)[1] / step.NUM_CLIPS


@functools.cache
def classifier_flops(backbone: str, num_classes: int, frames: int, size: int) -> int:
    """Forward + backward FLOPs per clip of the fine-tuning classifier (backbone + linear head)."""
    with torch.device("meta"):
        net = ClassifierModel(build_backbone(backbone, (frames, size)), num_classes)
        clip = torch.empty(1, 3, frames, size, size)
    with _train_step_module().flop_counter() as counter:
        net(clip).sum().backward()
    return counter.get_total_flops()


@dataclass
class Job:
    group: str
    kind: str
    what: str
    clips: float
    flop_per_clip: float
    data_rate: float | None  # clips/s the data path delivers to each of the job's GPUs (its workers per GPU)
    backbone: str

    def seconds(self, sustained: dict[str, float]) -> tuple[float, float | None, float]:
        """(compute-bound, data-bound or None, estimate) GPU-seconds."""
        compute = self.clips * self.flop_per_clip / sustained[self.backbone]
        data = self.clips / self.data_rate if self.data_rate else None
        return compute, data, max(compute, data or 0.0)


def grid_jobs(config: dict, loader_rate: float, frozen_rate: float) -> list[Job]:
    """Every GPU job of the config's grid, each in the first group that asks for it."""
    jobs: list[Job] = []
    seen: set = set()
    for group, cfg in configurations(config).items():
        label = group or "base grid"
        grid = build_grid({**cfg, "groups": {}})
        for name, job in grid.pretrain.items():
            if ("pretrain", name) in seen:
                continue
            seen.add(("pretrain", name))
            s = PRETRAIN.resolve(job.settings)
            clips = PRETRAIN_VIDEOS[job.identity.set] * s["epochs"] * s["num_clips"]
            jobs.append(Job(label, "pretrain", f"{name} ({s['epochs']} ep, {max(job.gpus, 1)} GPUs)", clips,
                            pretrain_flops(s["backbone"], s["frames"], s["size"]),
                            loader_rate * max(s["num_workers"], 1), s["backbone"]))
        for (run, input_label), ev in grid.evaluations.items():
            model = ev.model
            backbone, frames, size = model["backbone"], model["frames"], model["size"]
            fwd = forward_flops(backbone, frames, size)
            for task, per_dataset in ev.tasks.items():
                for dataset, given in per_dataset.items():
                    key = (task, run, input_label, dataset)
                    if key in seen:
                        continue
                    seen.add(key)
                    s = TASKS[task].settings.resolve(given)
                    train, test = DOWNSTREAM_VIDEOS[dataset]
                    if task in ("ft", "lft"):
                        flop = (classifier_flops(backbone, NUM_CLASSES[dataset], frames, size) if task == "ft"
                                else fwd)  # lft: no gradient through the backbone
                        train_clips = train * s["epochs"]
                        test_clips = test * s["test_views"] * s["test_crops"]
                        jobs.append(Job(label, task, f"{run} {input_label} {dataset} ({s['epochs']} ep)",
                                        train_clips, flop, loader_rate * max(s["num_workers"], 1), backbone))
                        jobs.append(Job(label, f"{task} test", f"{run} {input_label} {dataset}", test_clips, fwd,
                                        frozen_rate * max(s["num_workers"], 1), backbone))
                    elif task == "attentive":
                        clips = (train + test) * s["views"]
                        jobs.append(Job(label, task, f"{run} {input_label} {dataset} (frozen pass)", clips, fwd,
                                        frozen_rate * max(s["num_workers"], 1), backbone))
            feature_tasks = [t for t in ev.tasks if TASKS[t].reads == "features"]
            for dataset in ev.datasets if feature_tasks else ():
                key = ("features", run, input_label, dataset)
                if key in seen:
                    continue
                seen.add(key)
                f = FEATURES.resolve(ev.features)
                clips = sum(DOWNSTREAM_VIDEOS[dataset]) * f["views"]
                jobs.append(Job(label, "features", f"{run} {input_label} {dataset} ({f['views']} views)", clips, fwd,
                                frozen_rate * max(f["num_workers"], 1), backbone))
            if ev.localization is not None and ("export", run, input_label) not in seen:
                seen.add(("export", run, input_label))
                e = EXPORT.resolve(ev.localization["export"])
                subsets = ("training", "validation", "testing") if "all" in e["subsets"] else e["subsets"]
                share = sum(ACTIVITYNET_SUBSET_SHARE[x] for x in subsets)
                snippets = ACTIVITYNET_HOURS * 3600 * ACTIVITYNET_FPS / e["stride"] * share
                jobs.append(Job(label, "export", f"{run} {input_label} ActivityNet ({', '.join(subsets)})",
                                snippets, forward_flops(backbone, e["snippet_frames"], size),
                                frozen_rate * max(e["num_workers"], 1), backbone))
    return jobs


def load_config(path: Path) -> dict:
    config = validate_config(yaml.safe_load(path.read_text()))
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("config/paper.yaml"))
    parser.add_argument("--backbones", default="",
                        help="also the backbone table: the base grid with its backbone swapped, for these names or "
                             "groups (paper, ecosystem, all)")
    parser.add_argument("--peak-tflops", type=float, default=989.4,
                        help="assumed peak per GPU (default 989.4: H100 SXM / H200 dense bf16, data sheet)")
    parser.add_argument("--mfu", type=float, default=0.25,
                        help="assumed model FLOP utilisation of training and inference (default 0.25)")
    parser.add_argument("--mfu-per-backbone", default="",
                        help="assumed or measured MFU per backbone, e.g. s3dg=0.12,r3d18=0.35 (overrides --mfu)")
    parser.add_argument("--loader-clips-per-worker", type=float, default=MEASURED_LOADER_CLIPS_PER_WORKER,
                        help=f"loader clips/s per worker process with augmentation (default "
                             f"{MEASURED_LOADER_CLIPS_PER_WORKER:g}, measured on the development CPU); 0 ignores it")
    parser.add_argument("--frozen-clips-per-process", type=float, default=MEASURED_FROZEN_CLIPS_PER_PROCESS,
                        help=f"decode + transform clips/s of one process for the frozen passes (features, tests, "
                             f"export; default {MEASURED_FROZEN_CLIPS_PER_PROCESS:g}, measured); 0 ignores it")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    step = _train_step_module()
    mfu: dict[str, float] = {}
    for item in filter(None, (x.strip() for x in args.mfu_per_backbone.split(","))):
        name, value = item.split("=")
        mfu[name.strip()] = float(value)

    class Sustained(dict):
        def __missing__(self, backbone):
            return args.peak_tflops * 1e12 * mfu.get(backbone, args.mfu)

    sustained = Sustained()
    print(f"config: {args.config}")
    print(f"assumed: sustained = {args.peak_tflops:g} TFLOP/s peak x MFU {args.mfu:g} (per backbone: "
          f"{args.mfu_per_backbone or 'none'}); NOT measured: no GPU was lent to this project's sessions")
    print(f"measured on the development CPU (1 process): loader {args.loader_clips_per_worker:g} clips/s per worker "
          f"with augmentation, frozen passes {args.frozen_clips_per_process:g} clips/s per process; assumed the same "
          f"per process on a GPU host")

    jobs = grid_jobs(config, args.loader_clips_per_worker, args.frozen_clips_per_process)
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.group, []).append(job)
    summary = []
    for group, members in groups.items():
        print(f"\n### {group}\n")
        print("| job | count | clips (M) | GFLOP / clip (counted) | GPU-h if compute-bound | GPU-h if data-bound | "
              "estimate GPU-h |")
        print("|---|---|---|---|---|---|---|")
        by_kind: dict[tuple, list] = {}
        for job in members:
            by_kind.setdefault((job.kind, job.backbone), []).append(job)
        total = 0.0
        for (kind, backbone), same in by_kind.items():
            flop = sum(j.clips * j.flop_per_clip for j in same) / sum(j.clips for j in same)  # mean per clip
            secs = [j.seconds(sustained) for j in same]
            compute = sum(c for c, _, _ in secs)
            data = sum(d for _, d, _ in secs if d is not None) if all(d is not None for _, d, _ in secs) else None
            estimate = sum(e for _, _, e in secs)
            total += estimate
            print(f"| {kind} ({backbone}) | {len(same)} | {sum(j.clips for j in same) / 1e6:.1f} | {flop / 1e9:.2f} | "
                  f"{compute / 3600:,.0f} | {'-' if data is None else f'{data / 3600:,.0f}'} | "
                  f"{estimate / 3600:,.0f} |")
        print(f"| **all** | {len(members)} | | | | | **{total / 3600:,.0f}** |")
        summary.append((group, len(members), total))
    print(f"\n### Summary: GPU-hours per part of {args.config} (estimates; each job counted once)\n")
    print("| part | GPU jobs | estimate GPU-h |")
    print("|---|---|---|")
    for group, count, total in summary:
        print(f"| {group} | {count} | {total / 3600:,.0f} |")
    print(f"| **all** | {sum(c for _, c, _ in summary)} | **{sum(t for _, _, t in summary) / 3600:,.0f}** |")

    if args.backbones:
        base = {k: v for k, v in config.items() if k != "groups"}
        frames, size = base["pretrain"]["input"]["frames"], base["pretrain"]["input"]["size"]
        print(f"\n### Backbones: the base grid of {args.config} ({len(build_grid(base).pretrain)} pretraining runs "
              f"and their downstream jobs) with the backbone swapped, {frames}x{size} clips\n")
        print("| backbone | parameters (M) | GFLOP fwd / clip | GFLOP fwd+bwd / pretraining clip | "
              "GPU-h if compute-bound | estimate GPU-h: pretraining | estimate GPU-h: all |")
        print("|---|---|---|---|---|---|---|")
        for backbone in step.backbone_names(args.backbones):
            swapped = {**base, "model": {"backbone": backbone, "backbone_kwargs": {}}}
            try:
                jobs = grid_jobs(swapped, args.loader_clips_per_worker, args.frozen_clips_per_process)
            except UserError as exc:  # e.g. pytorchvideo missing on this host
                print(f"| {backbone} | skipped: {exc} | | | | | |")
                continue
            with torch.device("meta"):
                params = sum(p.numel() for p in step.build_net(backbone, frames, size).parameters())
            secs = [(j, j.seconds(sustained)) for j in jobs]
            compute = sum(s[0] for _, s in secs)
            pretraining = sum(s[2] for j, s in secs if j.kind == "pretrain")
            total = sum(s[2] for _, s in secs)
            print(f"| {backbone} | {params / 1e6:.2f} | {forward_flops(backbone, frames, size) / 1e9:.2f} | "
                  f"{pretrain_flops(backbone, frames, size) / 1e9:.2f} | {compute / 3600:,.0f} | "
                  f"{pretraining / 3600:,.0f} | {total / 3600:,.0f} |")


if __name__ == "__main__":
    main()
