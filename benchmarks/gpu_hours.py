"""Estimated GPU-hours for every job of ``config/paper.yaml``, per backbone: counted FLOPs, assumed throughput.

Nothing here runs on a GPU (none was lent to the session that wrote it). Every number printed is one of:

* ``counted``: FLOPs per clip, counted here with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device
  (matrix products and convolutions, 2 per multiply-add; the backward of grouped convolutions counted as
  ``benchmarks/train_step.py``'s ``conv_backward_flop`` says): the backbone's forward, and the forward + backward of the
  pretraining model (backbone + heads; about 3x the forward) or of the classifier;
* ``config``: epochs, clips per video, test views, GPUs, loader workers, the grid of runs (``hico_bench.config``);
* ``assumed``: dataset sizes (below), and the sustained GPU throughput = ``--peak-tflops`` x ``--mfu`` (model FLOP
  utilisation; ``benchmarks/train_step.py`` measures it on a GPU: pass its value back with ``--mfu`` or
  ``--mfu-per-backbone``);
* ``measured on CPU``: the data loader's clips/s per worker process (``benchmarks/pipeline.py``, prepared 128-px
  files, with augmentation) and the export's snippets/s per process (``benchmarks/export.py``), on this
  project's development CPU; a GPU host's cores are assumed to deliver the same per process.

GPU-seconds of a job = clips / min(GPU clips/s, loader clips/s per GPU): a GPU waits for data when its loader
workers cannot keep up. Scaling losses (all-gather, synchronised BatchNorm, stragglers) are not modelled.

Assumed dataset sizes: Kinetics-400 train 240k clips; UK400 the same 240k ids as full-length videos (one item per
video and epoch, so the same number of clips per epoch; decoding longer files costs the loader, not the GPU);
UCF101 split 1: 9,537 train / 3,783 test videos; HMDB51 split 1: 3,570 / 1,530; ActivityNet v1.3: 19,994 videos,
about 648 hours in all, taken at 30 fps. Run: ``python benchmarks/gpu_hours.py`` (seconds), ``--help`` for options.
``--backbones`` takes names and the groups of ``benchmarks/train_step.py`` (``paper``, the default; ``ecosystem``;
``all``, about a minute); after the per-backbone tables a summary gives, per backbone, its parameters, the counted
GFLOPs per clip and the GPU-hours of the whole grid (the README's backbone table:
``python benchmarks/gpu_hours.py --backbones all``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
from pathlib import Path

import torch
import yaml

from hico_bench.config import evaluated_runs, pretrain_runs, task_settings
from hico_bench.errors import UserError
from hico_bench.models.backbones import build_backbone
from hico_bench.models.heads import ClassifierModel

#: Assumed dataset sizes (videos) and ActivityNet's total length.
DATASET_VIDEOS = {"k400": 240_000, "uk400": 240_000, "ucf101": (9_537, 3_783), "hmdb51": (3_570, 1_530)}
NUM_CLASSES = {"ucf101": 101, "hmdb51": 51}
ACTIVITYNET_VIDEOS = 19_994
ACTIVITYNET_HOURS = 648.0
ACTIVITYNET_FPS = 30.0

# Measured with benchmarks/pipeline.py and benchmarks/export.py on the development CPU (see results/benchmarks.md).
MEASURED_LOADER_CLIPS_PER_WORKER = 95.0
MEASURED_EXPORT_SNIPPETS_PER_PROCESS = 300.0


@functools.cache
def _train_step_module():
    spec = importlib.util.spec_from_file_location("hico_train_step_benchmark",
                                                  Path(__file__).with_name("train_step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def classifier_flops(backbone: str, num_classes: int, frames: int, size: int) -> int:
    """Forward + backward FLOPs per clip of the fine-tuning classifier (backbone + linear head)."""
    with torch.device("meta"):
        net = ClassifierModel(build_backbone(backbone, (frames, size)), num_classes)
        clip = torch.empty(1, 3, frames, size, size)
    with _train_step_module().flop_counter() as counter:
        net(clip).sum().backward()
    return counter.get_total_flops()


def gpu_seconds(clips: float, flop_per_clip: float, sustained_flops: float, loader_rate: float | None) -> tuple:
    """(compute-bound, loader-bound or None, estimate) GPU-seconds for ``clips`` on one GPU's worth of work."""
    compute = clips * flop_per_clip / sustained_flops
    loader = clips / loader_rate if loader_rate else None
    return compute, loader, max(compute, loader or 0.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("config/paper.yaml"))
    parser.add_argument("--backbones", default="paper",
                        help="comma separated names or groups: paper (s3dg,r3d18,r2plus1d10; default), ecosystem, all")
    parser.add_argument("--peak-tflops", type=float, default=989.4,
                        help="assumed peak per GPU (default 989.4: H100 SXM / H200 dense bf16, data sheet)")
    parser.add_argument("--mfu", type=float, default=0.25,
                        help="assumed model FLOP utilisation of training and inference (default 0.25)")
    parser.add_argument("--mfu-per-backbone", default="",
                        help="assumed or measured MFU per backbone, e.g. s3dg=0.12,r3d18=0.35 (overrides --mfu)")
    parser.add_argument("--loader-clips-per-worker", type=float, default=MEASURED_LOADER_CLIPS_PER_WORKER,
                        help=f"loader clips/s per worker process with augmentation (default "
                             f"{MEASURED_LOADER_CLIPS_PER_WORKER:g}, measured on the development CPU); 0 ignores "
                             f"the loader")
    parser.add_argument("--export-snippets-per-process", type=float, default=MEASURED_EXPORT_SNIPPETS_PER_PROCESS,
                        help=f"decode + transform snippets/s of one process for the ActivityNet export and the "
                             f"in-process feature jobs (default {MEASURED_EXPORT_SNIPPETS_PER_PROCESS:g}, measured)")
    args = parser.parse_args(argv)

    config = yaml.safe_load(args.config.read_text())
    model = config["model"]
    frames, size = int(model["frames"]), int(model["size"])
    train_step = _train_step_module()
    backbones = train_step.backbone_names(args.backbones)
    mfu = {b: args.mfu for b in backbones}
    for item in filter(None, (x.strip() for x in args.mfu_per_backbone.split(","))):
        name, value = item.split("=")
        mfu[name.strip()] = float(value)
    runs = pretrain_runs(config)
    evals = evaluated_runs(config)
    pretrain_workers = int(config["pretrain"]["settings"].get("num_workers", 0)) or 1
    down = config["downstream"]
    datasets = list(down["datasets"])
    features_workers = int(down.get("features", {}).get("num_workers", 0)) or 1
    anet_snippets = ACTIVITYNET_HOURS * 3600 * ACTIVITYNET_FPS / int(config["localization"]["export"]["stride"])

    print(f"config: {args.config}; model {frames}x{size}; {len(runs)} pretraining runs, {len(evals)} evaluated "
          f"checkpoints (the runs + random init), downstream on {', '.join(datasets)} split 1")
    print(f"assumed: sustained = {args.peak_tflops:g} TFLOP/s peak x MFU per backbone "
          f"({', '.join(f'{b} {mfu[b]:g}' for b in backbones)}); NOT measured: no GPU was lent to this session")
    print(f"measured on the development CPU (1 process): loader {args.loader_clips_per_worker:g} clips/s per worker "
          f"with augmentation, export {args.export_snippets_per_process:g} snippets/s per process; "
          f"assumed the same per process on a GPU host")
    sizes = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v[0]:,} train / {v[1]:,} test"
                      for k, v in DATASET_VIDEOS.items())
    print(f"assumed dataset sizes (videos): {sizes}; ActivityNet {ACTIVITYNET_VIDEOS:,} videos, "
          f"{ACTIVITYNET_HOURS:g} h at {ACTIVITYNET_FPS:g} fps = {anet_snippets / 1e6:.2f} M snippets per export")

    summary = []
    for backbone in backbones:
        sustained = args.peak_tflops * 1e12 * mfu[backbone]
        try:
            fwd_clip = train_step.clip_flops(backbone, frames, size)
        except UserError as exc:  # e.g. pytorchvideo missing on this host
            print(f"\nskipped {backbone}: {exc}")
            continue
        with torch.device("meta"):
            params = sum(p.numel() for p in train_step.build_net(backbone, frames, size).parameters())
        step_fwd, step_both = train_step.count_step_flops(backbone, 1, frames, size)
        pre_clip = step_both / train_step.NUM_CLIPS  # pretraining model, forward + backward, per clip
        rows = []
        # Pretraining: every run of the grid (runs alike in set, epochs and clips per video grouped), from the config.
        groups: dict[tuple, list[str]] = {}
        for run in runs.values():
            s = run["settings"]
            groups.setdefault((run["set"], int(s["epochs"]), int(s["num_clips"]), run["gpus"]), []).append(s["method"])
        for (pretrain_set, epochs, num_clips, gpus), methods in groups.items():
            clips = DATASET_VIDEOS[pretrain_set] * epochs * num_clips
            loader = args.loader_clips_per_worker * pretrain_workers if args.loader_clips_per_worker else None
            per = gpu_seconds(clips, pre_clip, sustained, loader)
            rows.append(("pretrain", f"{pretrain_set}, {epochs} ep, {num_clips} clips/video, {gpus} GPUs: "
                                     f"{len(methods)} runs ({', '.join(methods)})", len(methods) * clips, pre_clip,
                         tuple(len(methods) * x if x is not None else None for x in per)))
        # Fine-tuning and linear evaluation: per evaluated checkpoint and dataset.
        for task in ("ft", "lft"):
            if task not in down["tasks"]:
                continue
            for ds in datasets:
                s = task_settings(config, task, ds)
                train, test = DATASET_VIDEOS[ds]
                flop_train = classifier_flops(backbone, NUM_CLASSES[ds], frames, size)
                train_clips = train * int(s["epochs"])
                test_clips = test * int(s.get("test_views", 10)) * int(s.get("test_crops", 1))
                workers = int(s.get("num_workers", 0)) or 1
                loader = args.loader_clips_per_worker * workers if args.loader_clips_per_worker else None
                a = gpu_seconds(train_clips, flop_train, sustained, loader)
                b = gpu_seconds(test_clips, fwd_clip, sustained, args.export_snippets_per_process * workers)
                total = tuple((x or 0.0) + (y or 0.0) for x, y in zip(a, b))
                rows.append((task, f"{ds} x {len(evals)} checkpoints ({s['epochs']} ep + {s.get('test_views', 10)}"
                                   f"-view test)", len(evals) * (train_clips + test_clips),
                             flop_train, tuple(len(evals) * x for x in total)))
        # Frozen features for the probe and retrieval: train + test, `views` clips each, in-process.
        if {"probe", "retrieval"} & set(down["tasks"]):
            views = int(down.get("features", {}).get("views", 10))
            clips = sum(sum(DATASET_VIDEOS[ds]) * views for ds in datasets)
            per = gpu_seconds(clips, fwd_clip, sustained, args.export_snippets_per_process * features_workers)
            rows.append(("features", f"{'+'.join(datasets)} x {len(evals)} checkpoints ({views} views, "
                                     f"{features_workers} process)", len(evals) * clips, fwd_clip,
                         tuple(len(evals) * x for x in per)))
        # ActivityNet snippet export: one process per checkpoint (decoding in the main process).
        if config.get("localization", {}).get("enabled"):
            per = gpu_seconds(anet_snippets, fwd_clip, sustained, args.export_snippets_per_process)
            rows.append(("export", f"ActivityNet x {len(evals)} checkpoints (in-process decoding)",
                         len(evals) * anet_snippets, fwd_clip, tuple(len(evals) * x for x in per)))

        print(f"\n### {backbone}: {fwd_clip / 1e9:.2f} GFLOP forward per clip, {pre_clip / 1e9:.2f} GFLOP forward + "
              f"backward per pretraining clip (counted); sustained {sustained / 1e12:.0f} TFLOP/s (assumed)\n")
        print(f"GPU clips/s if compute-bound: {sustained / pre_clip:.0f} pretraining, {sustained / fwd_clip:.0f} "
              f"forward-only; loader workers to keep one GPU fed in pretraining: "
              f"{sustained / pre_clip / args.loader_clips_per_worker:.0f} at "
              f"{args.loader_clips_per_worker:g} clips/s each (the config gives {pretrain_workers})\n"
              if args.loader_clips_per_worker else "")
        print("| job | runs | clips (M) | GFLOP / clip (counted) | GPU-h if compute-bound | GPU-h if loader-bound | "
              "estimate GPU-h |")
        print("|---|---|---|---|---|---|---|")
        total = compute_total = pretrain_total = 0.0
        for job, what, clips, flop, (compute, loader, estimate) in rows:
            loader_text = f"{loader / 3600:.0f}" if loader else "-"
            print(f"| {job} | {what} | {clips / 1e6:.1f} | {flop / 1e9:.2f} | {compute / 3600:.0f} | {loader_text} | "
                  f"{estimate / 3600:.0f} |")
            total += estimate
            compute_total += compute
            pretrain_total += estimate if job == "pretrain" else 0.0
        print(f"| **all** | | | | | | **{total / 3600:.0f}** |")
        summary.append((backbone, params, fwd_clip, pre_clip, compute_total, pretrain_total, total))

    print("\nloader-bound: clips / (clips/s per worker x workers per GPU from the config); forward-only jobs without "
          "loader workers (features, export) decode in one process per GPU.")
    print(f"\n### Summary: {frames}x{size} clips, the whole grid of {args.config}\n")
    print("| backbone | parameters (M) | GFLOP fwd / clip | GFLOP fwd+bwd / pretraining clip | GPU-h if compute-bound "
          "(all jobs) | estimate GPU-h: pretraining | estimate GPU-h: all |")
    print("|---|---|---|---|---|---|---|")
    for backbone, params, fwd_clip, pre_clip, compute_total, pretrain_total, total in summary:
        print(f"| {backbone} | {params / 1e6:.2f} | {fwd_clip / 1e9:.2f} | {pre_clip / 1e9:.2f} | "
              f"{compute_total / 3600:,.0f} | {pretrain_total / 3600:,.0f} | {total / 3600:,.0f} |")


if __name__ == "__main__":
    main()
