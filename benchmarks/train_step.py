"""HiCo pretraining step throughput: fp32 eager vs bf16 autocast + channels_last_3d (+ torch.compile), per backbone.

One step is what ``hico_bench/train/loop.py`` does per batch on one process: the :class:`~hico_bench.method.HiCoModel` (backbone +
g + h + phi) on ``batch_videos x 3`` clips of ``frames x size x size``, VCL + TCL losses, backward, a LARS step.
Inputs are random (the data pipeline has its own benchmark, ``benchmarks/pipeline.py``). Modes:

* ``fp32``: eager, float32, contiguous (NCDHW) tensors: the baseline every other mode is compared with (on CUDA
  with PyTorch's default TF32 setting for convolutions, printed);
* ``fp32+cl3d``: float32 with weights and inputs in ``torch.channels_last_3d`` (splits the layout's gain from bf16's);
* ``bf16+cl3d``: ``torch.autocast(bfloat16)``, weights and inputs in ``torch.channels_last_3d``;
* ``bf16+cl3d+compile``: the same with the model wrapped in ``torch.compile`` (default mode; compile time is
  reported apart, not in the rate).

For each backbone and mode: clips/s (median over timed steps, then over ``--rounds`` interleaved rounds), the median
over rounds of the ratio to fp32 measured in the same round, peak
memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak resident memory of a fresh process per
configuration), FLOPs per step counted with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (forward
and backward of the model; the losses, well under 0.01 %, are left out; see :func:`flop_counter` for the one formula
replaced) and the model FLOP utilisation = counted
FLOPs x steps/s / peak FLOP/s. The peak is ``--peak-tflops``; on CUDA it defaults to the dense bf16 tensor-core
peak of the card when the name is known (H100 SXM and H200: 989.4 TFLOP/s, H100 PCIe: 756; an assumption from the
vendor's data sheets, printed), and MFU is always given against that bf16 peak, also for fp32.

Defaults: on CUDA the full matrix (s3dg, r3d18, r2plus1d10 at 16x112, 32 videos x 3 clips, 3 warm-up + 10 timed
steps, all four modes) within ``--time-budget`` seconds (configurations that would start after it are reported
as skipped); on CPU the tiny backbone, 4 videos x 3 clips, 1 + 3 steps, 3 rounds, without compile (``--compile``
adds it; a larger backbone at a reduced batch, e.g. ``--backbones r3d18 --batch-videos 2``, is labelled by its batch).
``--backbones`` also takes the groups ``paper`` (the CUDA default), ``ecosystem`` (x3d_s, x3d_m, slow_r50, csn_r101,
r2plus1d_r50, mvit_b, vit_s16, vit_b16) and ``all``; backbones whose builder takes the clip size (mvit_b, the ViTs)
are built for ``--frames`` x ``--size``.
Run on a GPU machine with only torch and torchvision installed: ``PYTHONPATH=. python benchmarks/train_step.py``
(timm too for the ViTs; the pytorchvideo backbones need pytorchvideo and are skipped, with a line saying so,
where it is missing).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from hico_bench.errors import UserError
from hico_bench.losses import tcl_loss, vcl_loss
from hico_bench.models.backbones import BACKBONES, ECOSYSTEM_BACKBONES, build_backbone
from hico_bench.method import HiCoModel
from hico_bench.train.optim import build_optimizer

NUM_CLIPS = 3
MODES = ("fp32", "fp32+cl3d", "bf16+cl3d", "bf16+cl3d+compile")

#: Names ``--backbones`` accepts for groups of backbones.
BACKBONE_GROUPS = {
    "paper": ("s3dg", "r3d18", "r2plus1d10"),
    "ecosystem": ECOSYSTEM_BACKBONES,
    "all": tuple(BACKBONES),
}

#: Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets; sparsity figures are twice these.
KNOWN_PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100", 989.4), ("A100", 312.0))


def assumed_peak_tflops(device: torch.device) -> tuple[float | None, str]:
    """(peak TFLOP/s, where it comes from) for ``device``: the data-sheet bf16 dense peak of a known GPU."""
    if device.type != "cuda":
        return None, "no peak for a CPU unless --peak-tflops is given"
    name = torch.cuda.get_device_name(device)
    for key, tflops in KNOWN_PEAK_TFLOPS:
        if key.lower() in name.lower():
            return tflops, f"assumed: {key} dense bf16 tensor-core peak from the data sheet ({name})"
    return None, f"unknown GPU {name!r}: give --peak-tflops for MFU"


def backbone_names(spec: str) -> list[str]:
    """The backbones of a comma separated ``--backbones`` value; group names expand (``paper``, ``ecosystem``,
    ``all``). Unknown names pass through: building them reports the valid choices."""
    names: list[str] = []
    for item in (x.strip() for x in spec.split(",")):
        for name in BACKBONE_GROUPS.get(item, (item,) if item else ()):
            if name not in names:
                names.append(name)
    return names


def build_net(backbone: str, frames: int, size: int):
    """The backbone, built for clips of ``frames`` x ``size`` x ``size`` where its builder takes the clip size."""
    return build_backbone(backbone, (frames, size))


def build_model(backbone: str, device: torch.device | str, frames: int = 16, size: int = 112) -> HiCoModel:
    return HiCoModel(build_net(backbone, frames, size), num_clips=NUM_CLIPS, topical=True).to(device)


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                       _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of a convolution's backward: each gradient asked for (input, weight) costs what the forward costs.

    Every multiply-add of the forward (input element x weight element -> output element) appears once in the input
    gradient and once in the weight gradient, whatever the groups. torch's own formula (2.14) counts the weight
    gradient of a grouped convolution as if it were dense, ``groups`` times too much (65x the forward for a
    depthwise conv with 64 channels instead of 2x), which inflated X3D, CSN and MViT; for ``groups == 1`` both agree.
    """
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter() -> FlopCounterMode:
    """``FlopCounterMode`` (no display) with :func:`conv_backward_flop` for ``aten.convolution_backward``."""
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop})


def count_step_flops(backbone: str, batch_videos: int, frames: int, size: int) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one step of the model, counted on the meta device (no memory, no time).

    The backward pass starts from the sum of the model's outputs: the losses' own FLOPs are left out.
    """
    with torch.device("meta"):
        model = build_model(backbone, "meta", frames, size)
        clips = torch.empty(batch_videos, NUM_CLIPS, 3, frames, size, size)
    with flop_counter() as forward:
        model(clips)
    with flop_counter() as both:
        out = model(clips)
        (out["z"].sum() + out["tcl_logits"].sum()).backward()
    return forward.get_total_flops(), both.get_total_flops()


def clip_flops(backbone: str, frames: int, size: int) -> int:
    """Forward FLOPs of the backbone alone on one clip (3 x frames x size x size)."""
    with torch.device("meta"):
        net = build_net(backbone, frames, size)
        clip = torch.empty(1, 3, frames, size, size)
    with flop_counter() as counter:
        net(clip)
    return counter.get_total_flops()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_config(backbone: str, mode: str, batch_videos: int, frames: int, size: int, warmup: int, steps: int,
               device_name: str, threads: int) -> dict:
    """Build, (compile,) warm up and time one configuration; returns its measurements."""
    device = torch.device(device_name)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    bf16 = mode.startswith("bf16")
    memory_format = torch.channels_last_3d if "cl3d" in mode else torch.contiguous_format
    model = build_model(backbone, device, frames, size).to(memory_format=memory_format)
    model.train()
    optimizer = build_optimizer(model, "lars", lr=0.1, weight_decay=1e-6, momentum=0.9)
    net = torch.compile(model) if mode.endswith("compile") else model
    n = batch_videos * NUM_CLIPS
    # The clips of one video stay contiguous; the model flattens (B, 3) back to these n clips (a view).
    flat = torch.randn(n, 3, frames, size, size, device=device).contiguous(memory_format=memory_format)
    clips = flat.view(batch_videos, NUM_CLIPS, 3, frames, size, size)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step() -> None:
        with autocast:
            out = net(clips)
            loss = vcl_loss(out["z"].float(), NUM_CLIPS, 0.1) + tcl_loss(out["tcl_logits"].float(), NUM_CLIPS, 0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    step()  # the first step compiles (compile mode) and picks kernels
    _sync(device)
    first_s = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
        memory = "GPU allocated"
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        memory = "process RSS"
    step_s = statistics.median(times)
    return {"backbone": backbone, "mode": mode, "clips_per_s": n / step_s, "step_s": step_s, "first_step_s": first_s,
            "peak_mib": peak_mib, "memory": memory}


def _child(args: tuple) -> dict:
    return run_config(*args)


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default="paper" if cuda else "tiny",
                        help="comma separated names or groups: paper (s3dg,r3d18,r2plus1d10), ecosystem, all "
                             "(default: paper on CUDA, tiny on CPU)")
    parser.add_argument("--modes", default=",".join(MODES) if cuda else "fp32,fp32+cl3d,bf16+cl3d",
                        help=f"comma separated from {', '.join(MODES)} (default: all on CUDA, no compile on CPU)")
    parser.add_argument("--compile", action="store_true", help="add bf16+cl3d+compile on CPU")
    parser.add_argument("--batch-videos", type=int, default=32 if cuda else 4,
                        help="videos per step, 3 clips each (default 32 on CUDA, 4 on CPU)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--warmup", type=int, default=3 if cuda else 1, help="untimed steps, the first included")
    parser.add_argument("--steps", type=int, default=10 if cuda else 3, help="timed steps")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak FLOP/s of the device in TFLOP/s for MFU (default: bf16 data-sheet peak of a "
                             "known GPU)")
    parser.add_argument("--threads", type=int, default=0, help="CPU: torch threads (default: torch's choice)")
    parser.add_argument("--time-budget", type=float, default=270.0,
                        help="seconds: configurations that would start later are skipped (default 270)")
    parser.add_argument("--rounds", type=int, default=1 if cuda else 3,
                        help="interleaved rounds, each configuration once per round (default 1 on CUDA, 3 on CPU)")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    device = torch.device(args.device)
    backbones = backbone_names(args.backbones)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.compile and "bf16+cl3d+compile" not in modes:
        modes.append("bf16+cl3d+compile")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        sys.exit(f"unknown mode {unknown[0]!r}; valid modes are: {', '.join(MODES)}.")
    peak, peak_source = (args.peak_tflops, "given with --peak-tflops") if args.peak_tflops else \
        assumed_peak_tflops(device)
    n = args.batch_videos * NUM_CLIPS
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({os.cpu_count()} cores, torch threads {args.threads or torch.get_num_threads()})"
    print(f"device: {where}; torch {torch.__version__}; batch {args.batch_videos} videos x {NUM_CLIPS} clips = {n} "
          f"clips of {args.frames}x{args.size}x{args.size}; {args.warmup} warm-up + {args.steps} timed steps")
    print(f"peak for MFU: {f'{peak:g} TFLOP/s' if peak else 'none'} ({peak_source})")
    if device.type == "cuda":
        print(f"TF32: convolutions {torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32} "
              f"(PyTorch defaults); cudnn.benchmark {torch.backends.cudnn.benchmark}")

    flops = {}
    for backbone in list(backbones):
        try:
            flops[backbone] = count_step_flops(backbone, args.batch_videos, args.frames, args.size)
        except UserError as exc:  # e.g. pytorchvideo missing on this host, or a clip size the backbone refuses
            print(f"skipped {backbone}: {exc}")
            backbones.remove(backbone)
    ctx = multiprocessing.get_context("spawn")
    # Eager modes of every backbone first: compiling takes minutes, so it is what the time budget cuts.
    configs = [(b, m) for compiled in (False, True) for b in backbones for m in modes
               if m.endswith("compile") == compiled]
    runs: dict[tuple[str, str], list[dict]] = {c: [] for c in configs}
    for r in range(args.rounds):
        for backbone, mode in configs if r % 2 == 0 else configs[::-1]:  # alternate against drifting load
            if time.perf_counter() - t0 > args.time_budget:
                continue
            config = (backbone, mode, args.batch_videos, args.frames, args.size, args.warmup, args.steps,
                      args.device, args.threads)
            try:
                if device.type == "cuda":
                    result = run_config(*config)
                else:  # a fresh process per configuration, so that its peak resident memory is its own
                    with ctx.Pool(1) as pool:
                        result = pool.apply(_child, (config,))
            except (RuntimeError, NotImplementedError) as exc:  # e.g. out of memory, an op without bf16 kernel
                result = {"error": str(exc).strip().splitlines()[0][:120]}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            result["round"] = r
            runs[(backbone, mode)].append(result)
            print(f"  round {r}: {backbone} {mode}: " + (f"{result['clips_per_s']:.1f} clips/s" if "clips_per_s"
                                                         in result else result["error"]), flush=True)

    print()
    print("| backbone | mode | clips/s (median) | vs fp32, same round | step (ms) | first step (s) | "
          "peak memory (MiB) | GFLOP fwd / clip | TFLOP fwd+bwd / step | achieved TFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backbone, mode in [(b, m) for b in backbones for m in modes]:
        fwd, both = flops[backbone]
        done = [x for x in runs[(backbone, mode)] if "clips_per_s" in x]
        if not done:
            why = runs[(backbone, mode)][0]["error"] if runs[(backbone, mode)] else "skipped (time budget)"
            print(f"| {backbone} | {mode} | {why} | | | | | {fwd / n / 1e9:.2f} | {both / 1e12:.3f} | | |")
            continue
        base = {x["round"]: x["clips_per_s"] for x in runs[(backbone, "fp32")] if "clips_per_s" in x} \
            if (backbone, "fp32") in runs else {}
        paired = [x["clips_per_s"] / base[x["round"]] for x in done if x["round"] in base]
        ratio = f"{statistics.median(paired):.2f}x" if paired else ""
        step_s = statistics.median(x["step_s"] for x in done)
        achieved = both / step_s / 1e12
        mfu = f"{100 * achieved / peak:.1f} %" if peak else "-"
        print(f"| {backbone} | {mode} | {statistics.median(x['clips_per_s'] for x in done):.1f} | {ratio} | "
              f"{1e3 * step_s:.1f} | {max(x['first_step_s'] for x in done):.1f} | "
              f"{max(x['peak_mib'] for x in done):.0f} ({done[0]['memory']}) | {fwd / n / 1e9:.2f} | "
              f"{both / 1e12:.3f} | {achieved:.2f} | {mfu} |")
    print(f"\nFLOPs: FlopCounterMode (matrix products and convolutions, 2 per multiply-add; grouped convolutions' "
          f"backward as in conv_backward_flop) of the model's forward and backward on the meta device; MFU = counted "
          f"FLOPs x steps/s / peak. Total time {time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()
