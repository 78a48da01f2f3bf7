"""Clip decoding throughput: open-per-clip vs kept-open, raw vs prepared files.

Writes synthetic videos like raw downloads (default: 60 s, 30 fps, 256x340, x264's default keyframe interval of up to
250 frames), prepares copies with ``hico_bench.data.prepare`` (short side 128, a keyframe every second), then reads the
same random HiCo-style windows (16 frames over 2.133 s, three windows per video as the HiCo sampler draws them:
v_i, v_j within +-1 s of v_i, v_k anywhere) from every configuration, resized to ``--size`` inside FFmpeg.

Every configuration is measured in each of ``--rounds`` interleaved rounds (so that load from other processes hits
all of them alike); the table gives the median clips/s over rounds and the ratio to the baseline (open per clip, raw
files). Run: ``python benchmarks/decode.py`` (about 1.5 minutes on one core), ``--help`` for the options.

``--short-sides 128,170,224,256`` compares the decode geometry instead: copies prepared at each short side (even
sizes only, H.264), read kept open at their own size (no rescaling), alone and followed by the CPU pretraining
augmentation to ``--size`` (RandomResizedCrop with area [0.3243, 0.5765] of the frame: at short side 256 the paper's
crops of 168-224 px, resized down). The baseline is the first short side given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hico_bench.data.prepare import prepare_videos
from hico_bench.data.transforms import PRETRAIN, PretrainAugment
from hico_bench.data.video import VideoReader, probe, write_video

CLIP_S = 16 * 4 / 30  # HiCo: NUM_INPUT_FRAMES * SAMPLING_RATE / TARGET_FPS
CLIP_FRAMES = 16
MAX_DIS_S = 1.0  # HiCo's delta_max


def synthetic_frames(seconds: float, fps: float, height: int, width: int, seed: int):
    """A panning textured scene with a moving square: P-frames cost something to decode, as in real footage."""
    rng = np.random.default_rng(seed)
    th, tw = 2 * height, 2 * width
    noise = rng.normal(size=(th // 8, tw // 8, 3))
    texture = np.kron(noise, np.ones((8, 8, 1)))  # blocky texture ...
    texture = (texture + np.roll(texture, 4, 0) + np.roll(texture, 4, 1) + np.roll(texture, (4, 4), (0, 1))) / 4
    texture = np.clip(128 + 40 * texture + rng.normal(scale=6, size=(th, tw, 3)), 0, 255).astype(np.uint8)
    ys, xs = np.arange(height), np.arange(width)
    for i in range(int(round(seconds * fps))):
        oy, ox = int(1.3 * i) % th, int(2.1 * i) % tw
        frame = texture[np.ix_((ys + oy) % th, (xs + ox) % tw)]
        cy = int((height - 40) * (0.5 + 0.5 * np.sin(i / 20)))
        cx = int((width - 40) * (0.5 + 0.5 * np.cos(i / 27)))
        frame[cy:cy + 40, cx:cx + 40] = (240, 60, 60)
        yield frame


def hico_windows(duration: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Three windows as HiCo's sampler draws them with delta_max = 1 s and TCL on: [v_i, v_j, v_k]."""

    def random_center(a: float, b: float) -> float:
        return a if b < a else float(rng.uniform(a, b))

    lo, hi = CLIP_S, duration - CLIP_S
    c_i = random_center(lo, hi)
    c_j = random_center(max(c_i - MAX_DIS_S, lo), min(c_i + MAX_DIS_S, hi))
    c_k = random_center(lo, hi)
    return [(max(c - CLIP_S / 2, 0.0), min(c + CLIP_S / 2, duration)) for c in (c_i, c_j, c_k)]


def make_jobs(paths: list[Path], groups: int, seed: int) -> list[tuple[int, list[tuple[float, float]]]]:
    """``groups`` x (video number, its three windows), the same for every configuration."""
    rng = np.random.default_rng(seed)
    durations = [probe(p, verify=False).duration for p in paths]
    jobs = []
    for _ in range(groups):
        v = int(rng.integers(len(paths)))
        jobs.append((v, hico_windows(durations[v], rng)))
    return jobs


def run_config(paths: list[Path], jobs, kept_open: bool, size: int, augment=None) -> float:
    """Read every window of ``jobs`` (and augment each clip when ``augment`` is given); returns clips per second."""
    clips = 0
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for v, windows in jobs:
        if kept_open:
            with VideoReader(paths[v], size) as reader:
                for s, e in windows:
                    clip = reader.read_window(s, e, CLIP_FRAMES)
                    if augment is not None:
                        augment(torch.from_numpy(clip), rng)
                    clips += 1
        else:
            for s, e in windows:
                with VideoReader(paths[v], size) as reader:
                    clip = reader.read_window(s, e, CLIP_FRAMES)
                clips += 1
        assert clip.shape[0] == CLIP_FRAMES and min(clip.shape[1:3]) == size
    return clips / (time.perf_counter() - start)


def keyframe_spacing_s(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.is_keyframe)
    return float(np.mean(np.diff(keys))) if len(keys) > 1 else float("nan")


def crop_sides(height: int, width: int) -> tuple[int, int]:
    """Smallest and largest side of the pretraining RandomResizedCrop (ratio 1) on a ``height`` x ``width`` frame."""
    lo, hi = PRETRAIN.scale
    return round((lo * height * width) ** 0.5), min(round((hi * height * width) ** 0.5), height, width)


def compare_short_sides(args, raw: list[Path], workdir: Path, sides: list[int]) -> None:
    """Decode (and decode + CPU augmentation) throughput of copies prepared at each short side, same windows."""
    torch.set_num_threads(1)
    prepared = {}
    for side in sides:
        folder = workdir / f"prepared_{side}_{args.keyframe_s:g}s"
        t = time.perf_counter()
        summary = prepare_videos([(p, p.name) for p in raw], folder, short_side=side,
                                 keyframe_interval_s=args.keyframe_s, workers=1, progress=False)
        if summary.failed:
            sys.exit(f"preparing failed, see {summary.quarantine_path}")
        prepared[side] = [folder / p.name for p in raw]
        info = probe(prepared[side][0])
        print(f"prepared short side {side}: {info.height}x{info.width}, keyframe every "
              f"{keyframe_spacing_s(prepared[side][0]):.1f} s, "
              f"{prepared[side][0].stat().st_size * 8 / args.seconds / 1e3:.0f} kbit/s "
              f"({summary.encoded} encoded in {time.perf_counter() - t:.1f} s)")
    print(f"clips: {CLIP_FRAMES} frames over {CLIP_S:.3f} s, read kept open (3 windows per open) at the file's own "
          f"size; augmentation: PretrainAugment({args.size}), 1 torch thread; {args.groups} videos x 3 windows per "
          f"configuration and round, {args.rounds} rounds; CPU affinity {sorted(os.sched_getaffinity(0))}")

    augment = PretrainAugment(args.size)
    jobs = make_jobs(raw, args.groups * args.rounds, args.seed)
    rates: dict[tuple[int, bool], list[float]] = {(side, aug): [] for side in sides for aug in (False, True)}
    ratios: dict[tuple[int, bool], list[float]] = {key: [] for key in rates}
    for r in range(args.rounds):
        round_jobs = jobs[r * args.groups:(r + 1) * args.groups]
        for side, aug in rates:
            run_config(prepared[side], round_jobs[:1], True, side, augment if aug else None)  # warm-up
            rates[(side, aug)].append(run_config(prepared[side], round_jobs, True, side, augment if aug else None))
        for side, aug in rates:
            ratios[(side, aug)].append(rates[(side, aug)][-1] / rates[(sides[0], aug)][-1])

    print()
    print(f"| short side | frame | crop side (px) | decode clips/s (median, min-max) | decode vs {sides[0]} | "
          f"decode + augment clips/s | decode + augment vs {sides[0]} |")
    print("|---|---|---|---|---|---|---|")
    for side in sides:
        info = probe(prepared[side][0], verify=False)
        lo, hi = crop_sides(info.height, info.width)
        cells = []
        for aug in (False, True):
            values = rates[(side, aug)]
            cells.append(f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})")
            cells.append(f"{statistics.median(ratios[(side, aug)]):.2f}x")
        print(f"| {side} | {info.height}x{info.width} | {lo}-{hi} | {' | '.join(cells)} |")
    print(f"\nratios: median over rounds of the in-round ratio to short side {sides[0]}")


def add_source_video_args(parser: argparse.ArgumentParser) -> None:
    """The options of the generated source videos and their prepared copies (shared with pipeline.py)."""
    parser.add_argument("--videos", type=int, default=2, help="number of synthetic videos (default 2)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each video (default 60)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--short-side", type=int, default=128, help="short side of the prepared copies (default 128)")
    parser.add_argument("--keyframe-s", type=float, default=1.0, help="keyframe interval of the prepared copies")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_video_args(parser)
    parser.add_argument("--size", type=int, default=112, help="short side of the decoded clips (default 112)")
    parser.add_argument("--groups", type=int, default=20, help="videos opened per configuration and round "
                        "(3 windows each; default 20 = 60 clips)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write the videos (kept and reused between runs); default a temporary folder")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU core")
    parser.add_argument("--short-sides", default=None,
                        help="compare copies prepared at these short sides instead, e.g. 128,170,224,256 "
                        "(see the module docstring)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sides = None
    if args.short_sides:
        try:
            sides = [int(v) for v in args.short_sides.split(",")]
        except ValueError:
            parser.error(f"--short-sides must be comma-separated integers, not {args.short_sides!r}")
        if any(v <= 0 or v % 2 for v in sides):
            parser.error(f"--short-sides must be positive even numbers (H.264), not {args.short_sides!r}")
        if max(sides) > min(args.height, args.width):
            parser.error(f"--short-sides {max(sides)} would upscale the {args.height}x{args.width} source")

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hico_decode_")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
    tag = f"{args.seconds:g}s_{args.fps:g}fps_{args.height}x{args.width}"
    raw = [workdir / "raw" / f"video{i}_{tag}.mp4" for i in range(args.videos)]

    t = time.perf_counter()
    for i, path in enumerate(raw):
        if not path.exists():
            frames = synthetic_frames(args.seconds, args.fps, args.height, args.width, seed=args.seed + i)
            write_video(path, frames, args.fps, keyframe_interval_s=None, crf=23)
    t_write = time.perf_counter() - t
    if sides is not None:
        print(f"source: {args.videos} x {args.seconds:g} s at {args.fps:g} fps, {args.height}x{args.width} "
              f"(written in {t_write:.1f} s, 0 if reused)")
        compare_short_sides(args, raw, workdir, sides)
        if tmp is not None:
            tmp.cleanup()
        return

    prepared_dir = workdir / f"prepared_{args.short_side}_{args.keyframe_s:g}s"
    t = time.perf_counter()
    summary = prepare_videos(
        [(p, p.name) for p in raw], prepared_dir, short_side=args.short_side, keyframe_interval_s=args.keyframe_s,
        workers=1, progress=False,
    )
    t_prepare = time.perf_counter() - t
    if summary.failed:
        sys.exit(f"preparing failed, see {summary.quarantine_path}")
    prepared = [prepared_dir / p.name for p in raw]

    info_raw, info_prep = probe(raw[0]), probe(prepared[0])
    print(f"videos: {args.videos} x {args.seconds:g} s at {args.fps:g} fps; "
          f"raw {info_raw.height}x{info_raw.width}, keyframe every {keyframe_spacing_s(raw[0]):.1f} s, "
          f"{raw[0].stat().st_size * 8 / args.seconds / 1e3:.0f} kbit/s; "
          f"prepared {info_prep.height}x{info_prep.width}, keyframe every {keyframe_spacing_s(prepared[0]):.1f} s, "
          f"{prepared[0].stat().st_size * 8 / args.seconds / 1e3:.0f} kbit/s")
    print(f"writing took {t_write:.1f} s (0 if reused); preparing {summary.encoded} video(s) took {t_prepare:.1f} s "
          f"({summary.encoded * args.seconds / max(t_prepare, 1e-9):.0f} s of video per second, one process)")
    print(f"clips: {CLIP_FRAMES} frames over {CLIP_S:.3f} s, decoded at short side {args.size}; "
          f"{args.groups} videos x 3 windows per configuration and round, {args.rounds} rounds; "
          f"CPU affinity {sorted(os.sched_getaffinity(0))}")

    configs = []
    for files_name, files in (("raw", raw), ("prepared", prepared)):
        for kept_open in (False, True):
            configs.append((files_name, files, kept_open))

    jobs = make_jobs(raw, args.groups * args.rounds, args.seed)
    rates: dict[tuple, list[float]] = {(c[0], c[2]): [] for c in configs}
    for r in range(args.rounds):
        round_jobs = jobs[r * args.groups:(r + 1) * args.groups]
        for files_name, files, kept_open in configs:
            # a warm-up read, so that no configuration pays for first-use costs (imports, page cache)
            run_config(files, round_jobs[:1], kept_open, args.size)
            rates[(files_name, kept_open)].append(run_config(files, round_jobs, kept_open, args.size))

    base = statistics.median(rates[("raw", False)])
    print()
    print("| files | container | clips/s (median) | min-max over rounds | vs baseline |")
    print("|---|---|---|---|---|")
    for (files_name, kept_open), values in rates.items():
        med = statistics.median(values)
        how = "kept open, 3 windows per open" if kept_open else "open per clip"
        print(f"| {files_name} | {how} | {med:.0f} | {min(values):.0f}-{max(values):.0f} | {med / base:.2f}x |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
