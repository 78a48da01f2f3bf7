"""Per-item cost of every stage that touches every video or run, at N and 4N items: is it linear?

ActivityNet has about 20k videos and Kinetics 240k, so a stage whose cost per item grows with the number of items
(a file rewritten per item, a list searched per item) turns hours into days. Each stage is run on N items and on 4N
items, in fresh folders, and its time per item at 4N is divided by its time per item at N: the ``per-item cost
ratio`` is 1 for a linear stage and 4 for a quadratic one (goal: at most 1.3). Stages:

* ``manifest``: ``build_dataset_manifest("activitynet", ...)``: read an ActivityNet JSON listing N videos, find
  their files, probe each one (two threads, as ``manifest.workers`` defaults), quarantine the broken ones (one in
  50 is an empty file), write the manifest. The videos are copies of a few tiny H.264 files (32x32, 10 fps, 2.4 s).
* ``export``: ``export_features`` on that manifest (training and validation videos, the default subsets; one in ten
  is a testing video and is left out) with a tiny backbone (16x16 input, 64-d features, 6 snippets a video), in the
  main process: per video one container, decode, forward, the .npy + sidecar + BMN CSV, and at the end the G-TAD
  file assembled from all of them. Items = exported videos.
* ``gtad``: ``assemble_gtad_hdf5`` alone on N per-video files of 200 x 1024 float32 (0.8 MB each, ActivityNet-sized
  features; 4N files written once, each measurement reads the first N or 4N). Reference: the same arrays read and
  appended to one plain file, a linear operation whose ratio is what the disk and page cache alone do to a stage
  writing this much (hundreds of MB). Baseline in the same run: the export as it was before (``write_gtad_hdf5``
  called once per video, copying the whole file each time) on ``--baseline-n`` (default 40) and 4x as many videos,
  whose ratio shows the quadratic cost it had.
* ``tables``: ``build_tables`` on N metrics files (9 per run: ft, lft, probe and retrieval on UCF101 and HMDB51, and
  ActivityNet localization; distinct configurations of method, set, backbone and input, then more seeds) and one
  pretraining log per run (``metrics.jsonl`` of 50 steps beside ``run.json``). Items = metrics files.

Each stage first runs once on a few items (imports and other first-call costs, not timed). Then, in each of
``--rounds`` rounds, it runs on N, on 4N and on N items again, each in a fresh folder whose inputs are written and
flushed to disk (``os.sync``) before the clock starts; the round's ratio is the time per item at 4N over the mean of
the two at N (load from other processes that drifts during a round hits both sides alike), and the line gives the
medians over rounds (the baseline runs one round). Run:
``python benchmarks/scale.py`` (about 4 minutes on 2 cores shared with other jobs), ``--quick`` for a smoke run
(seconds), ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    from hico_bench.tables import REFERENCE_CSV, build_tables
except ImportError:  # the tables module is moving under hico_bench.results
    from hico_bench.results.tables import REFERENCE_CSV, build_tables

MODEL = {"backbone": "tiny", "backbone_kwargs": {"widths": [8, 8, 16], "out_dim": 64}, "frames": 4, "size": 16,
         "decode_size": 32, "sampling_rate": 2, "target_fps": 10}
EXPORT = {"stride": 4, "snippet_frames": 4, "batch_size": 8, "max_bad_fraction": 0.05}
DISTINCT_VIDEOS = 4


@contextlib.contextmanager
def quiet():
    """Progress bars and notes of the library go to a buffer, not the terminal."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


# ------------------------------------------------------------------------------------------------------ inputs
def tiny_videos(folder: Path) -> list[Path]:
    from hico_bench.data.video import write_video

    rng = np.random.default_rng(0)
    paths = []
    for k in range(DISTINCT_VIDEOS):
        frames = rng.integers(0, 255, size=(24, 32, 32, 3), dtype=np.uint8)
        frames[:, 8:24, 8:24] = (np.arange(24) * 10)[:, None, None, None].astype(np.uint8)
        write_video(folder / f"tiny{k}.mp4", frames, 10)
        paths.append(folder / f"tiny{k}.mp4")
    return paths


def activitynet_inputs(folder: Path, n: int, sources: list[Path]) -> dict[str, str]:
    """An ActivityNet JSON of ``n`` videos and a folder of their files (1 in 50 empty, 1 in 10 testing)."""
    videos = folder / "videos"
    videos.mkdir(parents=True)
    database = {}
    for i in range(n):
        vid = f"vid{i:07d}"
        subset = "testing" if i % 10 == 9 else ("validation" if i % 10 >= 7 else "training")
        target = videos / f"v_{vid}.mp4"
        if i % 50 == 48:
            target.write_bytes(b"")
        else:
            shutil.copyfile(sources[i % len(sources)], target)
        annotations = [] if subset == "testing" else [{"segment": [0.2, 1.8], "label": f"class{i % 5}"}]
        database[vid] = {"duration": 2.4, "subset": subset, "resolution": "32x32",
                         "url": f"https://www.youtube.com/watch?v={vid}", "annotations": annotations}
    json_path = folder / "activity_net.v1-3.min.json"
    json_path.write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [], "database": database}))
    return {"json": str(json_path), "videos": str(videos)}


def feature_files(folder: Path, n: int, shape=(200, 1024)) -> list[str]:
    from hico_bench.evaluate.feature_formats import write_npy_features

    rng = np.random.default_rng(0)
    base = rng.standard_normal(shape).astype(np.float32)
    meta = {"stride": 16, "frames_per_snippet": 16, "fps": 30.0, "duration": shape[0] * 16 / 30}
    ids = [f"vid{i:07d}" for i in range(n)]
    for i, vid in enumerate(ids):
        write_npy_features(folder, vid, base + i, meta)
    return ids


def metrics_files(folder: Path, n: int) -> tuple[list[str], list[str]]:
    """``n`` evaluation metrics files (9 per run) and one pretraining log per run, in the layout the rules write."""
    from hico_bench.identity import RunIdentity

    tasks = [(t, d) for t in ("ft", "lft", "probe", "retrieval") for d in ("ucf101", "hmdb51")]
    tasks.append(("localization", "activitynet"))
    configs = [(m, s, b, i) for m in ("simclr", "vcl_fixed", "vcl_gradual", "hico_fixed", "hico", "hico_bce")
               for s in ("k400", "uk400") for b in ("tiny", "s3dg", "r3d18") for i in ("8x16", "16x112", "32x112")]
    rng = np.random.default_rng(0)
    evals, logs = [], []
    run = 0
    while len(evals) < n:
        method, pset, backbone, pin = configs[run % len(configs)]
        identity = RunIdentity(method, backbone, pset, pin, seed=run // len(configs))
        pre = folder / "pretrain" / identity.name
        pre.mkdir(parents=True)
        (pre / "run.json").write_text(json.dumps(identity.as_dict()))
        lines = [json.dumps({"step": k, "epoch": (k + 1) / 10, "loss": float(5 - k / 20), "loss_vcl": 2.0,
                             "loss_tcl": 0.5, "lr": 0.1, "delta_max": k / 50, "clips_per_s": 100.0,
                             "data_wait_frac": 0.1}) for k in range(50)]
        (pre / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        logs.append(str(pre / "metrics.jsonl"))
        for task, dataset in tasks:
            if len(evals) == n:
                break
            if task == "retrieval":
                metrics = {f"R@{k}": float(rng.uniform(10, 90)) for k in (1, 5, 10, 20, 50)}
            elif task == "localization":
                metrics = {"average_mAP": float(rng.uniform(1, 30)), "mAP@0.5": float(rng.uniform(1, 50))}
            else:
                metrics = {"top1": float(rng.uniform(10, 90)), "top5": float(rng.uniform(50, 99))}
            path = folder / "eval" / identity.name / "8x16" / f"{task}_{dataset}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"run": identity.as_dict(), "task": task, "dataset": dataset,
                                        "split": None if task == "localization" else 1,
                                        "downstream_input": "8x16", "checkpoint": str(pre / "checkpoint_last.pt"),
                                        "metrics": metrics, "protocol": {}, "seconds": 1.0}))
            evals.append(str(path))
        run += 1
    return evals, logs


# ------------------------------------------------------------------------------------------------------ stages
def stage_manifest(work: Path, n: int, sources: list[Path]) -> tuple[float, int]:
    from hico_bench.data.manifest import build_dataset_manifest

    paths = activitynet_inputs(work, n, sources)
    os.sync()
    start = time.perf_counter()
    with quiet():
        build_dataset_manifest("activitynet", paths, work / "manifest.csv", work / "quarantine.csv",
                               max_bad_fraction=0.05, workers=2)
    return time.perf_counter() - start, n


def stage_export(work: Path, n: int, sources: list[Path]) -> tuple[float, int]:
    from hico_bench.data.manifest import build_dataset_manifest
    from hico_bench.evaluate.export import export_features

    paths = activitynet_inputs(work, n, sources)
    with quiet():
        build_dataset_manifest("activitynet", paths, work / "manifest.csv", work / "quarantine.csv", workers=2)
        os.sync()
        start = time.perf_counter()
        summary = export_features(None, str(work / "manifest.csv"), MODEL, str(work / "features"), EXPORT)
    seconds = time.perf_counter() - start
    assert summary["gtad_videos"] == summary["exported"] == summary["videos"]
    return seconds, summary["exported"]


class GtadInputs:
    """Per-video feature files of 200 x 1024 float32, written once (and flushed to disk) for every G-TAD
    measurement; a measurement on ``n`` videos reads the first ``n``, so both sizes read the same kind of files."""

    def __init__(self, folder: Path, n: int):
        self.folder, self.ids = folder, feature_files(folder, n)
        os.sync()

    def assemble(self, work: Path, n: int) -> tuple[float, int]:
        from hico_bench.evaluate.feature_formats import assemble_gtad_hdf5

        os.sync()
        start = time.perf_counter()
        assemble_gtad_hdf5(work / "gtad.h5", self.folder, self.ids[:n])
        return time.perf_counter() - start, n

    def per_video(self, work: Path, n: int) -> tuple[float, int]:
        """The export before: the arrays added to the G-TAD file one call (one whole-file copy) at a time."""
        from hico_bench.evaluate.feature_formats import read_npy_features, write_gtad_hdf5

        os.sync()
        start = time.perf_counter()
        for vid in self.ids[:n]:
            write_gtad_hdf5(work / "gtad.h5", {vid: read_npy_features(self.folder, vid)[0]})
        return time.perf_counter() - start, n

    def plain(self, work: Path, n: int) -> tuple[float, int]:
        """Reference: the same files read and their arrays appended to one plain file (no HDF5), linear by
        construction, so its ratio is what the machine's disk and page cache do to a linear stage of this size."""
        from hico_bench.evaluate.feature_formats import read_npy_features

        os.sync()
        start = time.perf_counter()
        with open(work / "plain.bin", "wb") as out:
            for vid in self.ids[:n]:
                out.write(read_npy_features(self.folder, vid)[0].tobytes())
        return time.perf_counter() - start, n


def stage_tables(work: Path, n: int) -> tuple[float, int]:
    evals, logs = metrics_files(work, n)
    os.sync()
    start = time.perf_counter()
    with quiet():
        build_tables(evals, logs, REFERENCE_CSV, work / "tables")
    return time.perf_counter() - start, n


# ---------------------------------------------------------------------------------------------------- running
def measure(key: str, name: str, fn: Callable[[Path, int], tuple[float, int]], n: int, rounds: int,
            tmp: Path) -> str:
    """The line of one stage: per round, time per item at n, at 4n and at n again; the round's ratio is the time per
    item at 4n over the mean of the two at n; the line gives medians over rounds."""

    def run(size: int) -> tuple[float, int]:
        work = Path(tempfile.mkdtemp(prefix=f"{key}_{size}_", dir=tmp))
        seconds, count = fn(work, size)
        shutil.rmtree(work)
        return seconds / count, count

    run(min(n, 10))  # imports and first-call costs, not timed
    small, large, ratios = [], [], []
    for _ in range(rounds):
        (before, n_items), (per_item, large_items), (after, _) = run(n), run(4 * n), run(n)
        small.append((before + after) / 2)
        large.append(per_item)
        ratios.append(per_item / small[-1])
    ratio = statistics.median(ratios)
    rounds_text = f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    line = (f"{name}: {n_items} items {statistics.median(small) * 1e3:.2f} ms/item, {large_items} items "
            f"{statistics.median(large) * 1e3:.2f} ms/item{rounds_text}; per-item cost ratio = {ratio:.2f}")
    print(line, flush=True)
    return line


def machine() -> str:
    import h5py
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, load average {load:.1f}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), h5py {h5py.__version__} "
            f"(HDF5 {h5py.version.hdf5_version})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small N for every stage, one round")
    parser.add_argument("--manifest-n", type=int, default=200, help="listed videos of the manifest stage (N)")
    parser.add_argument("--export-n", type=int, default=100, help="listed videos of the export stage (N)")
    parser.add_argument("--gtad-n", type=int, default=200, help="videos of 200 x 1024 float32 in the G-TAD file (N)")
    parser.add_argument("--baseline-n", type=int, default=40,
                        help="videos of the per-video G-TAD baseline (N; 0 skips it)")
    parser.add_argument("--tables-n", type=int, default=200, help="metrics files of the tables stage (N)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per stage (the baseline: one); the fastest "
                        "is kept (default 3)")
    parser.add_argument("--stages", default="manifest,export,gtad,baseline,tables",
                        help="comma-separated stages to run (default all)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.manifest_n, args.export_n, args.gtad_n, args.baseline_n, args.tables_n = 10, 10, 10, 5, 20
        args.rounds = 1

    import torch

    torch.set_num_threads(1)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="hico_scale_", dir=args.workdir) as tmp_name:
        tmp = Path(tmp_name)
        sources = tiny_videos(tmp / "sources")
        print(f"machine: {machine()}")
        print(f"command: python benchmarks/scale.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip())
        start = time.perf_counter()
        if "manifest" in stages:
            measure("manifest", "manifest (list + probe + quarantine + write)",
                    lambda w, n: stage_manifest(w, n, sources), args.manifest_n, args.rounds, tmp)
        if "export" in stages:
            measure("export", "export (decode + tiny backbone + .npy/.json/BMN CSV per video + G-TAD file)",
                    lambda w, n: stage_export(w, n, sources), args.export_n, args.rounds, tmp)
        if "gtad" in stages or "baseline" in stages:
            gtad = GtadInputs(tmp / "gtad_inputs", 4 * max(args.gtad_n, args.baseline_n))
        if "gtad" in stages:
            measure("gtad", "G-TAD file assembled once (200x1024 float32 per video)", gtad.assemble, args.gtad_n,
                    args.rounds, tmp)
            measure("plain", "reference: the same arrays appended to one plain file (disk and page cache only)",
                    gtad.plain, args.gtad_n, args.rounds, tmp)
        if "baseline" in stages and args.baseline_n > 0:
            measure("baseline", "baseline: G-TAD file rewritten per video, as the export did before (200x1024 float32)",
                    gtad.per_video, args.baseline_n, 1, tmp)
        if "tables" in stages:
            measure("tables", "tables (build_tables over metrics files + pretraining logs)", stage_tables,
                    args.tables_n, args.rounds, tmp)
        print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
