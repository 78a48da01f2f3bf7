"""ActivityNet feature export throughput: batched snippets from one open container vs one snippet per open and forward.

Writes a synthetic untrimmed video like a raw download (default 30 s, 30 fps, 256x340, x264's default keyframes; the
generator of ``benchmarks/decode.py``) and its ``hico-bench prepare`` copy (short side 128, a keyframe every second),
then extracts snippet features (16 frames every 16, centre crop, resized to ``--size``, normalised) with:

* ``export``: :func:`hico_bench.evaluate.export.video_snippet_features`, as ``hico-bench export`` runs it: one
  :class:`~hico_bench.data.video.VideoReader` per video, ``--batch-size`` snippets per read and per forward;
* ``naive``: the baseline: for every snippet open the file, read its frames, transform them and run one forward.

Each runs with the tiny backbone (``--backbone``) and with no network at all (the data path alone). Features of the
two methods are compared (they differ only by batch-size-dependent float rounding of the convolutions). Every
configuration is measured in each of ``--rounds`` interleaved rounds; the table gives median snippets/s and the
median over rounds of the ratio to the naive baseline measured in the same round.

A second table (once, after the rounds) is the export's loader: ``--loader-videos`` copies of the video through
:class:`~hico_bench.evaluate.export.SnippetBatches` and a ``DataLoader`` with each of ``--workers`` worker counts,
the network in the main process as ``hico-bench export-features`` runs it: snippets/s, the fraction of the time the
main process waited for a batch (worker start-up included), and whether the features equal those of 0 workers bit for
bit. Run: ``python benchmarks/export.py`` (about a minute on one core), ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hico_bench.data.prepare import prepare_videos
from hico_bench.data.transforms import FINETUNE, eval_views
from hico_bench.data.video import VideoReader, write_video
from hico_bench.evaluate.export import SnippetBatches, num_snippets, video_snippet_features
from hico_bench.models.backbones import build_backbone


class PoolOnly(torch.nn.Module):
    """No network: the per-channel mean of each clip (B, 3), so that only the data path is timed."""

    out_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))


def export_rate(path: Path, backbone, model: dict, stride: int, snippet_frames: int, batch_size: int):
    """(snippets/s, features) of ``video_snippet_features`` on one video, opening it once."""
    start = time.perf_counter()
    with VideoReader(path, size=model["decode_size"]) as reader:
        feats = video_snippet_features(backbone, reader, model, stride, snippet_frames, batch_size,
                                       torch.device("cpu"))
    return len(feats) / (time.perf_counter() - start), feats


@torch.no_grad()
def naive_rate(path: Path, backbone, model: dict, stride: int, snippet_frames: int):
    """(snippets/s, features) opening the file, reading one snippet and running one forward per snippet."""
    spec = dataclasses.replace(FINETUNE, size=model["size"])
    start = time.perf_counter()
    with VideoReader(path, size=model["decode_size"]) as reader:
        total = num_snippets(reader.info.num_frames, snippet_frames, stride)
    feats = []
    for k in range(total):
        with VideoReader(path, size=model["decode_size"]) as reader:
            frames = reader.read_frames(np.arange(k * stride, k * stride + snippet_frames))
        clip = eval_views(frames, spec, crops=1)
        feats.append(backbone(clip).float().numpy())
    return total / (time.perf_counter() - start), np.concatenate(feats)


@torch.no_grad()
def loader_rate(paths: list[Path], backbone, model: dict, stride: int, snippet_frames: int, batch_size: int,
                workers: int):
    """(snippets/s, fraction of the time spent waiting for batches, features per video) of the export's loader."""
    from torch.utils.data import DataLoader

    dataset = SnippetBatches([str(p) for p in paths], model, stride, snippet_frames, batch_size)
    batches = iter(DataLoader(dataset, batch_size=None, num_workers=workers))
    feats: dict[int, list[np.ndarray]] = {}
    waited = 0.0
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        item = next(batches, None)
        waited += time.perf_counter() - t
        if item is None:
            break
        assert "error" not in item, item
        feats.setdefault(item["video"], []).append(backbone(item["clips"]).float().numpy())
    seconds = time.perf_counter() - start
    out = {v: np.concatenate(f) for v, f in feats.items()}
    return sum(len(f) for f in out.values()) / seconds, waited / seconds, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the video (default 30)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=340)
    parser.add_argument("--files", default="prepared,raw", help="file sets: prepared, raw or both (default both)")
    parser.add_argument("--backbone", default="tiny", help="backbone name (default tiny)")
    parser.add_argument("--size", type=int, default=112, help="network input side (default 112)")
    parser.add_argument("--decode-size", type=int, default=128, help="short side frames are decoded at (default 128)")
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--snippet-frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64, help="snippets per read and forward (default 64, the "
                        "paper config's localization.export.batch_size)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--workers", default="0,2", help="DataLoader workers of the loader table (default 0,2; "
                        "empty: no loader table)")
    parser.add_argument("--loader-videos", type=int, default=4, help="copies of the video read by the loader "
                        "(default 4)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write the video (kept and reused between runs); default a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hico_export_")
        args.workdir = Path(tmp.name)
    spec = importlib.util.spec_from_file_location("hico_decode_benchmark", Path(__file__).with_name("decode.py"))
    decode_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(decode_bench)
    raw = args.workdir / "raw" / f"anet_{args.seconds:g}s_{args.fps:g}fps_{args.height}x{args.width}.mp4"
    if not raw.exists():
        write_video(raw, decode_bench.synthetic_frames(args.seconds, args.fps, args.height, args.width, args.seed),
                    args.fps, keyframe_interval_s=None, crf=23)
    prepared_dir = args.workdir / "prepared_128_1s"
    prepare_videos([(raw, raw.name)], prepared_dir, short_side=128, keyframe_interval_s=1.0, workers=1,
                   progress=False)
    paths = {"raw": raw, "prepared": prepared_dir / raw.name}

    model = {"size": args.size, "decode_size": args.decode_size}
    networks = {args.backbone: build_backbone(args.backbone).eval(), "none (data path only)": PoolOnly()}
    file_sets = [f.strip() for f in args.files.split(",") if f.strip()]
    with VideoReader(paths["prepared"]) as reader:
        total = num_snippets(reader.info.num_frames, args.snippet_frames, args.stride)
    print(f"video: {args.seconds:g} s at {args.fps:g} fps, {args.height}x{args.width} raw (x264 default keyframes) "
          f"and prepared (short side 128, keyframe every 1 s); {total} snippets of {args.snippet_frames} frames "
          f"every {args.stride}, decoded at short side {args.decode_size}, centre crop resized to {args.size}; "
          f"export batch {args.batch_size}; torch threads {args.threads}; {args.rounds} rounds")

    rates: dict[tuple[str, str, str], list[float]] = {}
    worst: dict[tuple[str, str], float] = {}
    for r in range(args.rounds):
        for files in file_sets:
            for net_name, net in networks.items():
                for method in (("export", "naive") if r % 2 == 0 else ("naive", "export")):
                    if method == "export":
                        rate, feats = export_rate(paths[files], net, model, args.stride, args.snippet_frames,
                                                  args.batch_size)
                    else:
                        rate, feats = naive_rate(paths[files], net, model, args.stride, args.snippet_frames)
                    rates.setdefault((files, net_name, method), []).append(rate)
                    if method == "export":
                        exported = feats
                    else:
                        naive_feats = feats
                diff = float(np.abs(exported - naive_feats).max())
                worst[(files, net_name)] = max(worst.get((files, net_name), 0.0), diff)

    print()
    print("| files | network | method | snippets/s (median) | min-max | vs naive, same round | max abs feature diff |")
    print("|---|---|---|---|---|---|---|")
    for (files, net_name, method), values in rates.items():
        base = rates[(files, net_name, "naive")]
        ratio = statistics.median(v / b for v, b in zip(values, base))
        print(f"| {files} | {net_name} | {method} | {statistics.median(values):.1f} | "
              f"{min(values):.1f}-{max(values):.1f} | {ratio:.2f}x | {worst[(files, net_name)]:.2e} |")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if worker_counts:
        print()
        print(f"Export loader: {args.loader_videos} copies of the video, network in the main process")
        print()
        print("| files | network | workers | snippets/s | waiting for data | features equal to the first row's |")
        print("|---|---|---|---|---|---|")
        for files in file_sets:
            copies = []
            for k in range(args.loader_videos):
                copy = args.workdir / "copies" / files / f"copy{k}{paths[files].suffix}"
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(paths[files], copy)
                copies.append(copy)
            for net_name, net in networks.items():
                first = None
                for workers in worker_counts:
                    rate, wait, feats = loader_rate(copies, net, model, args.stride, args.snippet_frames,
                                                    args.batch_size, workers)
                    first = feats if first is None else first
                    same = sorted(first) == sorted(feats) and all(np.array_equal(first[v], feats[v]) for v in first)
                    print(f"| {files} | {net_name} | {workers} | {rate:.1f} | {wait:.0%} | {'yes' if same else 'NO'} |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
