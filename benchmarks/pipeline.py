"""Pretraining data pipeline throughput: the decoder's limit, hico-bench's loader and pytorchvideo, same videos.

Writes synthetic videos like raw downloads (default: 2 x 60 s, 30 fps, 256x340, x264's default keyframe interval of
up to 250 frames; the generator of ``benchmarks/decode.py``), prepares copies with ``hico_bench.data.prepare`` (short
side 128, a keyframe every second), and measures on each set of files:

* ``decode limit``: the HiCo triplets' windows (3 x 16 frames over 2.133 s per video, drawn by the dataset's own
  sampler, so exactly the windows the loader reads) read one window at a time with PyAV from a kept-open
  :class:`~hico_bench.data.video.VideoReader` at the decode size, nothing else: one process, no augmentation;
* ``dataset, no augmentation``: :class:`~hico_bench.data.datasets.PretrainDataset` items without a transform, in
  this process (the loader's read path: it may decode overlapping windows in one pass);
* ``hico-bench loader``: delivered triplets (decode + augmentation + collate) through a ``DataLoader`` built as the
  trainer builds it (``DistributedSampler`` + ``ProgressBatchSampler``, persistent workers), with 1 and 2 workers;
  ``uint8 out``: the same without augmentation, as a run that augments on the GPU (``augment_batch``) would use it;
* ``pytorchvideo``: ``pytorchvideo.data.LabeledVideoDataset`` with ``RandomMultiClipSampler`` (3 random clips of
  2.133 s per video, one container per video) and the equivalent augmentation from pytorchvideo/torchvision
  (temporal subsample to 16, RandomResizedCrop to the crop side with the same scale, ratio 1, colour jitter 0.8 /
  0.8 / 0.8 / 0.2 applied with p 0.8, grayscale p 0.2, flip p 0.5, normalise), the same batch size and workers.

Gradual sampling runs over the whole measurement: round ``r`` of ``R`` is epoch ``r`` of an ``R``-epoch run, so
delta_max grows from 0 to 1 s as in a training run (v_i and v_j overlap, as they do in training).

Every configuration is measured in each of ``--rounds`` interleaved rounds, in alternating order (load from other
processes hits all of them alike); the table gives the median clips/s over rounds, the rate per worker, and medians
over rounds of in-round ratios: per worker against the decode limit of the same files, and the loader against
pytorchvideo with the same workers. ``--profile`` adds a cProfile of the in-process dataset (top functions by own
time). Run: ``python benchmarks/pipeline.py`` (about 1.5 minutes on 2 cores, 75 s when ``--workdir`` keeps the
videos), ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch.utils.data import DataLoader, DistributedSampler

from hico_bench.data.datasets import PretrainDataset, ProgressBatchSampler, item_rng
from hico_bench.data.prepare import prepare_videos
from hico_bench.data.sampling import DeltaSchedule, clip_time
from hico_bench.data.transforms import PRETRAIN, PretrainAugment
from hico_bench.data.video import VideoReader, probe, write_video

FRAMES, SAMPLING_RATE, TARGET_FPS, NUM_CLIPS = 16, 4, 30.0, 3  # HiCo: 16 frames x 4 / 30 fps = 2.133 s, 3 clips


def _decode_benchmark():
    """``benchmarks/decode.py`` as a module (for its synthetic video generator and keyframe probe)."""
    spec = importlib.util.spec_from_file_location("hico_decode_benchmark", Path(__file__).with_name("decode.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_dataset(paths: list[Path], repeats: int, decode_size: int, size: int, augment: bool,
                 seed: int) -> PretrainDataset:
    """HiCo's pretraining dataset (gradual sampling to delta 1 s, topical clip) over ``repeats`` rows per file."""
    rows = pd.DataFrame({"path": [str(p) for _ in range(repeats) for p in paths]})
    return PretrainDataset(
        rows, frames=FRAMES, sampling_rate=SAMPLING_RATE, target_fps=TARGET_FPS, num_clips=NUM_CLIPS,
        schedule=DeltaSchedule("gradual", 1.0), topical=True, transform=PretrainAugment(size) if augment else None,
        decode_size=decode_size, seed=seed,
    )


def trainer_batches(dataset: PretrainDataset, batch_videos: int, epochs: int, seed: int) -> ProgressBatchSampler:
    """The trainer's batch sampler (hico_bench/train/loop.py), for one process."""
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True)
    return ProgressBatchSampler(sampler, batch_videos, epochs)


def trainer_loader(dataset: PretrainDataset, batches: ProgressBatchSampler, workers: int) -> DataLoader:
    """A DataLoader built as the trainer builds it (CPU: no pinned memory)."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=False,
                      persistent_workers=workers > 0)


def epoch_keys(batches: ProgressBatchSampler, epoch: int) -> list[tuple[int, int, float]]:
    batches.set_epoch(epoch)
    return [key for batch in batches for key in batch]


def decode_limit(dataset: PretrainDataset, keys) -> float:
    """Clips/s reading each key's windows one at a time from a kept-open VideoReader (no augmentation)."""
    clips = 0
    start = time.perf_counter()
    for i, epoch, progress in keys:
        rng = item_rng(dataset.seed, epoch, i)
        with VideoReader(dataset.rows[i]["path"], dataset.decode_size) as reader:
            for s, e in dataset.windows(reader.info.duration, rng, progress):
                clip = reader.read_window(s, e, FRAMES)
                clips += 1
    assert clip.shape[0] == FRAMES
    return clips / (time.perf_counter() - start)


def dataset_rate(dataset: PretrainDataset, keys) -> float:
    """Clips/s of the dataset's items in this process."""
    clips = 0
    start = time.perf_counter()
    for key in keys:
        item, _ = dataset[key]
        clips += item.shape[0]
    return clips / (time.perf_counter() - start)


def loader_rate(loader, batches: ProgressBatchSampler | None, epoch: int) -> float:
    """Clips/s delivered by one epoch of ``loader`` (workers already started)."""
    if batches is not None:
        batches.set_epoch(epoch)
    clips = 0
    start = time.perf_counter()
    for batch in loader:
        clips += batch[0].shape[0] * batch[0].shape[1]
    return clips / (time.perf_counter() - start)


def warm_up(loader, batches: ProgressBatchSampler | None, epoch: int) -> None:
    """Start the workers and take one batch (imports, page cache, first-use costs stay out of the timings)."""
    if batches is not None:
        batches.set_epoch(epoch)
    for _ in loader:
        break


# --- pytorchvideo's loader, the baseline a user would otherwise pick ---------------------------------------------


class _PytorchvideoTriplet:
    """pytorchvideo/torchvision transforms on each clip (C, T, H, W) float in [0, 255] of a sample -> (3, C, T, S, S).

    One set of random parameters per clip, shared by its frames (torchvision's image transforms treat the leading T
    axis as a batch of images with one draw), as in hico-bench's augmentation.
    """

    def __init__(self, size: int):
        import pytorchvideo.transforms as pvt
        import torchvision.transforms as tvt

        spec = PRETRAIN
        self.clip = tvt.Compose([
            pvt.UniformTemporalSubsample(FRAMES),
            pvt.Div255(),
            pvt.RandomResizedCrop(size, size, scale=spec.scale, aspect_ratio=spec.ratio),
            pvt.Permute((1, 0, 2, 3)),  # (T, C, S, S): torchvision image ops, one draw for all frames
            tvt.RandomApply([tvt.ColorJitter(spec.brightness, spec.contrast, spec.saturation, spec.hue)],
                            p=spec.colour_p),
            tvt.RandomGrayscale(p=spec.gray_p),
            tvt.RandomHorizontalFlip(p=spec.flip_p),
            pvt.Permute((1, 0, 2, 3)),
            pvt.Normalize(spec.mean, spec.std),
        ])

    def __call__(self, sample: dict) -> dict:
        return {"video": torch.stack([self.clip(v) for v in sample["video"]]), "video_index": sample["video_index"]}


def _pytorchvideo_collate(samples: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([s["video"] for s in samples]), torch.tensor([s["video_index"] for s in samples])


def pytorchvideo_loader(paths: list[Path], videos: int, size: int, batch_videos: int, workers: int) -> DataLoader:
    import hico_bench  # noqa: F401  (installs the torchvision alias pytorchvideo.transforms needs)
    from pytorchvideo.data import LabeledVideoDataset
    from pytorchvideo.data.clip_sampling import RandomMultiClipSampler

    labeled = [(str(paths[k % len(paths)]), {"label": 0}) for k in range(videos)]
    dataset = LabeledVideoDataset(labeled, RandomMultiClipSampler(clip_time(FRAMES, SAMPLING_RATE, TARGET_FPS),
                                                                  NUM_CLIPS),
                                  transform=_PytorchvideoTriplet(size), decode_audio=False, decoder="pyav")
    return DataLoader(dataset, batch_size=batch_videos, num_workers=workers, collate_fn=_pytorchvideo_collate,
                      persistent_workers=workers > 0)


# --- running it -------------------------------------------------------------------------------------------------


def prepare_files(args) -> tuple[list[Path], list[Path], str]:
    """Write (or reuse) the raw videos and their prepared copies; returns (raw, prepared, a description)."""
    decode_bench = _decode_benchmark()
    tag = f"{args.seconds:g}s_{args.fps:g}fps_{args.height}x{args.width}"
    raw = [args.workdir / "raw" / f"video{i}_{tag}.mp4" for i in range(args.videos)]
    t = time.perf_counter()
    for i, path in enumerate(raw):
        if not path.exists():
            frames = decode_bench.synthetic_frames(args.seconds, args.fps, args.height, args.width, seed=args.seed + i)
            write_video(path, frames, args.fps, keyframe_interval_s=None, crf=23)
    t_write = time.perf_counter() - t
    prepared_dir = args.workdir / f"prepared_{args.short_side}_{args.keyframe_s:g}s"
    t = time.perf_counter()
    summary = prepare_videos([(p, p.name) for p in raw], prepared_dir, short_side=args.short_side,
                             keyframe_interval_s=args.keyframe_s, workers=1, progress=False)
    t_prepare = time.perf_counter() - t
    if summary.failed:
        sys.exit(f"preparing failed, see {summary.quarantine_path}")
    prepared = [prepared_dir / p.name for p in raw]
    info_raw, info_prep = probe(raw[0]), probe(prepared[0])
    text = (f"videos: {args.videos} x {args.seconds:g} s at {args.fps:g} fps; raw {info_raw.height}x{info_raw.width}, "
            f"keyframe every {decode_bench.keyframe_spacing_s(raw[0]):.1f} s; prepared "
            f"{info_prep.height}x{info_prep.width}, keyframe every {decode_bench.keyframe_spacing_s(prepared[0]):.1f} s"
            f"\nwriting took {t_write:.1f} s, preparing {t_prepare:.1f} s (0 if reused)")
    return raw, prepared, text


@dataclass
class Config:
    """One measured configuration: ``run(round)`` returns clips/s."""

    files: str
    what: str
    workers: int
    run: Callable[[int], float]
    loader: DataLoader | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.files, self.what, self.workers


def paired_ratio(values: list[float], baseline: list[float]) -> float:
    """Median over rounds of ``values[r] / baseline[r]``."""
    return statistics.median(v / b for v, b in zip(values, baseline))


def profile_dataset(dataset: PretrainDataset, keys, top: int) -> str:
    """cProfile of the dataset's items in this process: the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for key in keys:
        dataset[key]
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _decode_benchmark().add_source_video_args(parser)
    parser.add_argument("--decode-size", type=int, default=128, help="short side clips are decoded at (default 128)")
    parser.add_argument("--size", type=int, default=112, help="crop side fed to the network (default 112)")
    parser.add_argument("--batch-videos", type=int, default=4, help="videos per batch (default 4)")
    parser.add_argument("--batches", type=int, default=4,
                        help="batches per configuration and round for the decoder and hico-bench (default 4)")
    parser.add_argument("--pv-videos", type=int, default=4,
                        help="videos per configuration and round for pytorchvideo, which is slower (default 4)")
    parser.add_argument("--workers", default="1,2", help="DataLoader worker counts, comma separated (default 1,2)")
    parser.add_argument("--files", default="raw,prepared", help="file sets to measure: raw, prepared or both")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-pytorchvideo", action="store_true", help="skip the pytorchvideo baseline")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N functions with the most own time in the in-process dataset")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write the videos (kept and reused between runs); default a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # DataLoader workers run with one thread too: every rate is per core
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hico_pipeline_")
        args.workdir = Path(tmp.name)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    file_sets = [f.strip() for f in args.files.split(",") if f.strip()]
    raw, prepared, text = prepare_files(args)
    files = {"raw": raw, "prepared": prepared}
    items = args.batches * args.batch_videos
    repeats = -(-items // args.videos)
    print(text)
    print(f"triplets: {NUM_CLIPS} clips x {FRAMES} frames over {clip_time(FRAMES, SAMPLING_RATE, TARGET_FPS):.3f} s "
          f"per video, decoded at short side {args.decode_size}, augmented to {args.size}; {items} videos "
          f"({items * NUM_CLIPS} clips) per configuration and round for the decoder and hico-bench, {args.pv_videos} "
          f"videos for pytorchvideo; batches of {args.batch_videos} videos; {args.rounds} rounds; "
          f"CPU cores {len(os.sched_getaffinity(0))}, torch threads 1 per process")

    epochs = args.rounds + 1  # epoch `rounds` is the warm-up
    configs: list[Config] = []
    for name in file_sets:
        plain = make_dataset(files[name], repeats, args.decode_size, args.size, augment=False, seed=args.seed)
        augmented = make_dataset(files[name], repeats, args.decode_size, args.size, augment=True, seed=args.seed)
        batches = trainer_batches(plain, args.batch_videos, epochs, args.seed)
        dataset_rate(plain, epoch_keys(batches, args.rounds)[:1])  # warm-up (imports, page cache)
        configs.append(Config(name, "decode limit", 1, lambda r, d=plain, b=batches: decode_limit(d, epoch_keys(b, r))))
        configs.append(Config(name, "dataset, no augmentation", 1,
                              lambda r, d=plain, b=batches: dataset_rate(d, epoch_keys(b, r))))
        for dataset, what in ((augmented, "hico-bench loader"), (plain, "hico-bench loader, uint8 out")):
            for w in workers:
                b = trainer_batches(dataset, args.batch_videos, epochs, args.seed)
                loader = trainer_loader(dataset, b, w)
                warm_up(loader, b, args.rounds)
                configs.append(Config(name, what, w, lambda r, ld=loader, b=b: loader_rate(ld, b, r), loader))
        if not args.no_pytorchvideo:
            for w in workers:
                loader = pytorchvideo_loader(files[name], args.pv_videos, args.size, args.batch_videos, w)
                warm_up(loader, None, 0)
                configs.append(Config(name, "pytorchvideo", w, lambda r, ld=loader: loader_rate(ld, None, r), loader))

    rates: dict[tuple[str, str, int], list[float]] = {c.key: [] for c in configs}
    for r in range(args.rounds):
        for config in configs if r % 2 == 0 else configs[::-1]:  # alternate the order against drifting load
            rates[config.key].append(config.run(r))

    print()
    print("| files | configuration | workers | clips/s (median) | min-max | per worker | per worker vs decode limit | "
          "vs pytorchvideo, same workers |")
    print("|---|---|---|---|---|---|---|---|")
    for name, what, w in rates:
        values = rates[(name, what, w)]
        per_worker = [v / w for v in values]
        limit = rates[(name, "decode limit", 1)]
        pv = rates.get((name, "pytorchvideo", w))
        versus_pv = f"{paired_ratio(values, pv):.2f}x" if what == "hico-bench loader" and pv else ""
        print(f"| {name} | {what} | {w if 'loader' in what or 'pytorch' in what else '-'} | "
              f"{statistics.median(values):.1f} | {min(values):.1f}-{max(values):.1f} | "
              f"{statistics.median(per_worker):.1f} | {paired_ratio(per_worker, limit):.2f} | {versus_pv} |")
    print("\nRatios are medians over rounds of ratios within a round (the configurations being compared ran minutes "
          "apart at most, under the same load). 'uint8 out' is the loader without augmentation, as a run that "
          "augments on the GPU (augment_batch) would use it; the decode-only rows run in this process.")

    if args.profile:
        for name in file_sets:
            augmented = make_dataset(files[name], repeats, args.decode_size, args.size, augment=True, seed=args.seed)
            keys = epoch_keys(trainer_batches(augmented, args.batch_videos, epochs, args.seed), 0)
            print(f"\ncProfile of the in-process dataset with augmentation, {name} files:")
            print(profile_dataset(augmented, keys, args.profile))
    for config in configs:
        if config.loader is not None and getattr(config.loader, "_iterator", None) is not None:
            config.loader._iterator._shutdown_workers()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
