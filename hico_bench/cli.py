"""`hico-bench <verb>`: argument parsing only; each verb calls one library function.

A :class:`~hico_bench.errors.UserError` is printed as one sentence (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from hico_bench.config import parse_settings
from hico_bench.errors import UserError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], None]]] = {}


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a verb: ``configure(parser)`` adds its arguments, the decorated ``run(args)`` does the work."""

    def wrap(fn):
        COMMANDS[name] = (help, configure, fn)
        return fn

    return wrap


def _settings_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--settings", default=None, help=f"{what}: a JSON object, or @FILE (JSON or YAML)")


# --------------------------------------------------------------------------------------------------- data stage
def _synthesize_args(p):
    p.add_argument("--root", required=True, help="folder to write the synthetic datasets into")
    p.add_argument("--seed", type=int, default=0)
    _settings_arg(p, "generator sizes (see hico_bench/data/synthetic.py)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--summary", default=None, help="write the paths and counts as JSON here (written last)")


@command("synthesize", "write the tiny synthetic benchmark in the real datasets' on-disk formats", _synthesize_args)
def synthesize(args):
    from hico_bench.data.synthetic import synthesize as run
    from hico_bench.io import write_json

    summary = run(args.root, parse_settings(args.settings), seed=args.seed, workers=args.workers)
    if args.summary:
        write_json(args.summary, summary)


def _manifest_args(p):
    p.add_argument("dataset", help="k400, uk400, ucf101, hmdb51 or activitynet")
    p.add_argument("--paths", required=True, help="the dataset's paths as JSON (keys per dataset: config/README.md, datasets:)")
    p.add_argument("--out", required=True, help="manifest to write (.csv)")
    p.add_argument("--quarantine", required=True, help="CSV of the videos left out (path, reason)")
    p.add_argument("--max-bad-fraction", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--split", type=int, default=1, help="UCF101/HMDB51 official split (1, 2 or 3)")


@command("manifest", "read a dataset's annotations, probe every video, write the manifest and a quarantine list",
         _manifest_args)
def manifest(args):
    from hico_bench.data.manifest import build_dataset_manifest

    build_dataset_manifest(
        args.dataset, parse_settings(args.paths), args.out, args.quarantine,
        max_bad_fraction=args.max_bad_fraction, workers=args.workers, split=args.split,
    )



def _prepare_args(p):
    p.add_argument("manifest", help="manifest whose videos to re-encode")
    p.add_argument("--out-dir", required=True, help="folder for the re-encoded copies (same relative layout)")
    p.add_argument("--manifest-out", required=True, help="the manifest pointing at the prepared copies")
    p.add_argument("--short-side", type=int, default=128)
    p.add_argument("--keyframe-interval", type=float, default=1.0, help="seconds between keyframes")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quarantine", default=None, help="CSV of the videos that failed (default: in --out-dir)")


@command("prepare", "re-encode a dataset to H.264 (short side N, a keyframe every second) for fast random access",
         _prepare_args)
def prepare(args):
    from hico_bench.data.manifest import read_manifest, write_manifest
    from hico_bench.data.prepare import prepare_videos, prepared_manifest

    manifest = read_manifest(args.manifest)
    summary = prepare_videos(manifest, args.out_dir, short_side=args.short_side,
                             keyframe_interval_s=args.keyframe_interval, workers=args.workers,
                             quarantine_path=args.quarantine)
    print(f"hico-bench prepare: {summary.as_dict()}", file=sys.stderr)
    write_manifest(prepared_manifest(manifest, args.out_dir), args.manifest_out)


# ---------------------------------------------------------------------------------------------------- pretrain
def _pretrain_args(p):
    p.add_argument("--manifest", required=True, help="manifest of the pretraining set (its train split is used)")
    p.add_argument("--out-dir", required=True, help="run folder: checkpoints, metrics.jsonl (resumed if present)")
    _settings_arg(p, "pretraining settings (keys of hico_bench.train.loop.DEFAULTS)")


@command("pretrain", "pretrain a backbone with HiCo or one of its ablations (resumes automatically)", _pretrain_args)
def pretrain(args):
    from hico_bench.train.loop import pretrain as run

    run(args.manifest, args.out_dir, parse_settings(args.settings))


# -------------------------------------------------------------------------------------------------- downstream
def _eval_common(p, checkpoint=True):
    if checkpoint:
        p.add_argument("--checkpoint", required=True, help="pretraining checkpoint, or 'none' for random init")
    p.add_argument("--model", required=True, help="the config's model: section as JSON (backbone, frames, size, ...)")
    p.add_argument("--meta", default="{}", help="what is evaluated (run, pretrain fields, dataset, split) as JSON;"
                   " copied into the metrics file")
    _settings_arg(p, "task settings")


def _checkpoint(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _write_metrics(out: str, meta: dict, task: str, result: dict) -> None:
    from hico_bench.io import write_json

    write_json(out, {**meta, "task": task, **result})


def _features_args(p):
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help=".npz with train/test features, labels and ids")
    _eval_common(p)


@command("features", "extract frozen video features (10 clips averaged) of a dataset's train and test splits",
         _features_args)
def features(args):
    from hico_bench.evaluate.features import cache_video_features

    s = parse_settings(args.settings)
    cache_video_features(_checkpoint(args.checkpoint), args.manifest, parse_settings(args.model), args.out, **s)


def _on_features_args(p):
    p.add_argument("--features", required=True, help=".npz written by `hico-bench features`")
    p.add_argument("--out", required=True, help="metrics JSON to write")
    _eval_common(p, checkpoint=False)


@command("probe", "strict linear probe (logistic regression) on cached frozen features", _on_features_args)
def probe(args):
    import time

    import numpy as np

    from hico_bench.evaluate.probe import linear_probe, source_groups

    t0 = time.perf_counter()
    f = np.load(args.features)
    groups = source_groups(f["train_ids"])
    result = linear_probe(f["train_x"], f["train_y"], f["test_x"], f["test_y"], where=args.features,
                          groups=groups, **parse_settings(args.settings))
    chosen_c = result.pop("C")
    holdout = result.pop("holdout_accuracy")
    _write_metrics(args.out, parse_settings(args.meta), "probe", {
        "metrics": result, "seconds": time.perf_counter() - t0 + float(f["seconds"]),
        "protocol": {"classifier": "logistic regression on standardised features", "views": int(f["views"]),
                     "C": chosen_c, "holdout_accuracy_by_C": holdout, "backbone": "frozen, eval mode",
                     "holdout": "whole source groups" if groups is not None else "class-stratified"}})


@command("retrieval", "nearest-neighbour retrieval R@k (test queries, train gallery, cosine)", _on_features_args)
def retrieval(args):
    import time

    import numpy as np

    from hico_bench.evaluate.retrieval import recall_at_k

    t0 = time.perf_counter()
    f = np.load(args.features)
    s = {"ks": [1, 5, 10, 20, 50], "center": False, **parse_settings(args.settings)}
    metrics = recall_at_k(f["test_x"], f["test_y"], f["train_x"], f["train_y"], ks=tuple(s["ks"]),
                          center=s["center"])
    _write_metrics(args.out, parse_settings(args.meta), "retrieval", {
        "metrics": metrics, "seconds": time.perf_counter() - t0 + float(f["seconds"]),
        "protocol": {"queries": "test split", "gallery": "train split", "views": int(f["views"]),
                     "similarity": "cosine", "center": s["center"]}})


def _finetune_args(p):
    p.add_argument("mode", choices=["ft", "lft"], help="ft: fine-tune everything; lft: only the final layer")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help="metrics JSON to write")
    _eval_common(p)


@command("finetune", "fine-tune (ft) or linearly evaluate (lft) a checkpoint on UCF101 / HMDB51", _finetune_args)
def finetune(args):
    from hico_bench.data.manifest import read_manifest
    from hico_bench.evaluate.classify import finetune as run

    result = run(args.mode, _checkpoint(args.checkpoint), read_manifest(args.manifest), parse_settings(args.model),
                 parse_settings(args.settings), where=args.manifest)
    _write_metrics(args.out, parse_settings(args.meta), args.mode, result)


def _export_args(p):
    p.add_argument("--manifest", required=True, help="ActivityNet manifest")
    p.add_argument("--out-dir", required=True, help="feature folder (resumed if it holds videos already)")
    _eval_common(p)


@command("export-features", "slide the backbone over ActivityNet videos; write .npy, BMN CSV and G-TAD HDF5 features",
         _export_args)
def export_features(args):
    from hico_bench.evaluate.export import export_features as run

    run(_checkpoint(args.checkpoint), args.manifest, parse_settings(args.model), args.out_dir,
        parse_settings(args.settings))


def _localize_args(p):
    p.add_argument("--features", required=True, help="feature folder written by `hico-bench export-features`")
    p.add_argument("--ground-truth", required=True, help="ActivityNet v1.3 JSON")
    p.add_argument("--predictions", required=True, help="detections to write (official layout)")
    p.add_argument("--out", required=True, help="metrics JSON to write")
    _eval_common(p, checkpoint=False)


@command("localize", "train the light localization probe on training-subset features, detect and score the "
         "validation subset", _localize_args)
def localize(args):
    import time

    from hico_bench.evaluate.localization import evaluate_detection, load_ground_truth, localization_probe, \
        parse_predictions
    from hico_bench.io import read_json

    t0 = time.perf_counter()
    predictions = localization_probe(args.features, args.features, args.ground_truth, args.predictions,
                                     **parse_settings(args.settings))
    metrics = evaluate_detection(load_ground_truth(args.ground_truth, "validation"),
                                 parse_predictions(predictions, args.predictions))
    export = read_json(f"{args.features}/export.json")
    _write_metrics(args.out, parse_settings(args.meta), "localization", {
        "metrics": {k: v for k, v in metrics.items() if k == "average_mAP" or k.startswith("mAP@")},
        "mAP_per_tiou": metrics["mAP_per_tiou"],
        "protocol": {"localizer": "linear snippet probe (actionness runs + soft-NMS)", "subset": "validation",
                     "tiou_thresholds": "0.5:0.05:0.95", "stride": export["stride"],
                     "snippet_frames": export["snippet_frames"], "predictions": args.predictions},
        "seconds": time.perf_counter() - t0 + export["seconds"]})


def _anet_eval_args(p):
    p.add_argument("ground_truth", help="ActivityNet v1.3 ground-truth JSON (official layout; HACS accepted)")
    p.add_argument("predictions", help='detections: {"version", "results": {id: [{label, score, segment}]}, ...}')
    p.add_argument("--subset", default="validation")
    p.add_argument("--out", default=None, help="write the metrics as JSON here")


@command("anet-eval", "score detections with the ActivityNet protocol (average mAP over tIoU 0.5:0.05:0.95)",
         _anet_eval_args)
def anet_eval(args):
    from hico_bench.evaluate.localization import anet_eval as run

    run(args.ground_truth, args.predictions, subset=args.subset, out_path=args.out)


# ------------------------------------------------------------------------------------------------------- tables
def _tables_args(p):
    p.add_argument("--eval-dir", default="results/eval", help="folder of <run>/<task>_<dataset>.json")
    p.add_argument("--pretrain-dir", default="results/pretrain", help="folder of <run>/metrics.jsonl")
    p.add_argument("--reference", default=None, help="the paper's numbers (default: the committed copy)")
    p.add_argument("--out-dir", default="results/tables")


@command("tables", "collect every metrics file into tables beside the paper's numbers (CSV + Markdown)",
         _tables_args)
def tables(args):
    from hico_bench.tables import REFERENCE_CSV, build_tables

    build_tables(args.eval_dir, args.pretrain_dir, args.reference or REFERENCE_CSV, args.out_dir)


def _plots_args(p):
    p.add_argument("--eval-dir", default="results/eval")
    p.add_argument("--pretrain-dir", default="results/pretrain")
    p.add_argument("--out-dir", default="results/plots")


@command("plots", "loss curves, delta_max over training, ablation bars and retrieval R@k curves (PNG)", _plots_args)
def plots(args):
    from hico_bench.plots import make_plots

    make_plots(args.eval_dir, args.pretrain_dir, args.out_dir)


def _merge_args(p):
    p.add_argument("inputs", nargs="+", help="metrics JSON of one task on splits 1..3")
    p.add_argument("--out", required=True)


@command("merge-splits", "average one task's metrics over the dataset's official splits", _merge_args)
def merge_splits(args):
    from hico_bench.evaluate.splits import merge_split_metrics
    from hico_bench.io import write_json

    write_json(args.out, merge_split_metrics(args.inputs))


# --------------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hico-bench", description="hico-bench: the HiCo benchmark and evaluation harness.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (help, configure, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        configure(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as exc:
        print(f"hico-bench {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
