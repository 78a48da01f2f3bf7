"""`hico-bench <verb>`: each verb reads its arguments, checks its settings against their declaration
(:mod:`hico_bench.settings`, :data:`hico_bench.evaluate.tasks.TASKS`), calls one library function and writes its result.

There is one verb per downstream task, made from :data:`~hico_bench.evaluate.tasks.TASKS`. A
:class:`~hico_bench.errors.UserError` (a wrong path, an unknown setting, a malformed file) is printed as one sentence,
without a traceback, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

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
    p.add_argument("--settings", default=None, help=f"{what}: a JSON object, or @FILE (JSON or YAML); "
                   "config/README.md lists every key")


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="backbone and clip geometry as JSON: backbone, backbone_kwargs, "
                   "frames, size, decode_size, sampling_rate, target_fps")


def _run_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", dest="identity", default=None, help="what is evaluated, as JSON: the run identity (method, backbone, set, "
                   "pretrain_input, seed, external); copied into the metrics file")


def _checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint file, or 'none' for random init")
    p.add_argument("--checkpoint-format", default="auto", help="auto, hico-bench, official or state_dict")


def _settings(args, section) -> dict[str, Any]:
    """``--settings``, checked against its declaration before anything else runs (the library function that gets
    them fills in the defaults)."""
    settings = parse_settings(args.settings)
    section.resolve(settings)
    return settings


def _checkpoint(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _model(args) -> dict[str, Any]:
    from hico_bench.settings import MODEL

    return MODEL.resolve(parse_settings(args.model, "--model"))


def _identity(args) -> dict[str, Any] | None:
    from hico_bench.identity import RunIdentity

    if args.identity is None:
        return None
    return RunIdentity.from_dict(parse_settings(args.identity, "--run"), "--run").as_dict()


def _write_metrics(args, task: str, dataset: str, split: int | None, model: dict | None, result: dict,
                   seconds: float) -> None:
    """The metrics file: what was evaluated (run identity, downstream input, task, dataset, split), the result."""
    from hico_bench.identity import input_label
    from hico_bench.io import write_json

    record = {"run": _identity(args), "task": task, "dataset": dataset, "split": split,
              "downstream_input": input_label(model["frames"], model["size"]) if model else None,
              "checkpoint": getattr(args, "checkpoint", None), **result, "seconds": seconds}
    write_json(args.out, record)


# --------------------------------------------------------------------------------------------------- data stage
def _synthesize_args(p):
    p.add_argument("--root", required=True, help="folder to write the synthetic datasets into")
    p.add_argument("--seed", type=int, default=0)
    _settings_arg(p, "generator sizes")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--summary", default=None, help="write the paths and counts as JSON here (written last)")


@command("synthesize", "write the tiny synthetic benchmark in the real datasets' on-disk formats", _synthesize_args)
def synthesize(args):
    from hico_bench.data.synthetic import synthesize as run
    from hico_bench.io import write_json

    from hico_bench.settings import SYNTHETIC

    summary = run(args.root, _settings(args, SYNTHETIC), seed=args.seed, workers=args.workers)
    if args.summary:
        write_json(args.summary, summary)


def _manifest_args(p):
    p.add_argument("dataset", help="k400, uk400, hacs, ucf101, hmdb51 or activitynet")
    p.add_argument("--paths", required=True, help="the dataset's paths as JSON (keys: config/README.md, datasets:)")
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
        args.dataset, parse_settings(args.paths, "--paths"), args.out, args.quarantine,
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
    _settings_arg(p, "pretraining settings")
    _run_arg(p)


@command("pretrain", "pretrain a backbone with HiCo or one of its ablations (resumes automatically)", _pretrain_args)
def pretrain(args):
    from hico_bench.io import write_json
    from hico_bench.train.distributed import is_main_process
    from hico_bench.train.loop import pretrain as run
    from hico_bench.train.loop import resolve_settings

    settings = parse_settings(args.settings)
    resolve_settings(settings)  # every mistake is reported before anything is written (incl. impossible variants)
    identity = _identity(args)
    if identity is not None and is_main_process():
        write_json(f"{args.out_dir}/run.json", identity)
    run(args.manifest, args.out_dir, settings)


# -------------------------------------------------------------------------------------------------- downstream
def _features_args(p):
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True, help=".npz with train/test features, labels and ids")
    _checkpoint_arg(p)
    _model_arg(p)
    _settings_arg(p, "feature settings")


@command("features", "extract frozen video features (evenly spaced clips averaged) of a dataset's train and test "
         "splits, for the tasks that read features", _features_args)
def features(args):
    from hico_bench.evaluate.features import cache_video_features
    from hico_bench.settings import FEATURES

    settings = _settings(args, FEATURES)
    cache_video_features(_checkpoint(args.checkpoint), args.manifest, _model(args), args.out, settings,
                         checkpoint_format=args.checkpoint_format)


def _task_args(task):
    def configure(p):
        p.add_argument("--out", required=True, help="metrics JSON to write")
        p.add_argument("--dataset", required=True, help="the dataset evaluated (ucf101, hmdb51)")
        p.add_argument("--split", type=int, default=1, help="its official split")
        _run_arg(p)
        _settings_arg(p, f"{task.name} settings")
        if task.reads == "features":
            p.add_argument("--features", required=True, help=".npz written by `hico-bench features`")
        else:
            p.add_argument("--manifest", required=True, help="the dataset's manifest")
            _checkpoint_arg(p)
            _model_arg(p)

    return configure


def _task_command(task):
    def run(args):
        t0 = time.perf_counter()
        settings = _settings(args, task.settings)
        fn = task.runner()
        if task.reads == "features":
            from hico_bench.evaluate.features import load_features

            feats = load_features(args.features)
            model = feats["model"]
            result = fn(feats, settings, where=args.features)
            extra = float(feats["seconds"])
        else:
            from hico_bench.data.manifest import read_manifest
            from hico_bench.train.checkpoint import resume_dir_for

            model = _model(args)
            extra_args = {"resume_dir": resume_dir_for(args.out)} if task.long_training else {}
            result = fn(_checkpoint(args.checkpoint), read_manifest(args.manifest), model, settings,
                        where=args.manifest, checkpoint_format=args.checkpoint_format, **extra_args)
            extra = 0.0
        from hico_bench.train.distributed import is_main_process

        if is_main_process():  # under torchrun every process has the result; one writes it
            _write_metrics(args, task.name, args.dataset, args.split, model, result,
                           time.perf_counter() - t0 + extra)

    return run


def _register_tasks() -> None:
    from hico_bench.evaluate.tasks import TASKS

    for task in TASKS.values():
        command(task.name, task.help, _task_args(task))(_task_command(task))


_register_tasks()


def _export_args(p):
    p.add_argument("--manifest", required=True, help="ActivityNet manifest")
    p.add_argument("--out-dir", required=True, help="feature folder (resumed if it holds videos already)")
    _checkpoint_arg(p)
    _model_arg(p)
    _settings_arg(p, "export settings")


@command("export-features", "slide the backbone over ActivityNet videos; write .npy, BMN CSV and G-TAD HDF5 features",
         _export_args)
def export_features(args):
    from hico_bench.evaluate.export import export_features as run
    from hico_bench.settings import EXPORT

    settings = _settings(args, EXPORT)
    run(_checkpoint(args.checkpoint), args.manifest, _model(args), args.out_dir, settings,
        checkpoint_format=args.checkpoint_format)


def _localize_args(p):
    p.add_argument("--features", required=True, help="feature folder written by `hico-bench export-features`")
    p.add_argument("--ground-truth", required=True, help="ActivityNet v1.3 JSON")
    p.add_argument("--predictions", required=True, help="detections to write (official layout)")
    p.add_argument("--out", required=True, help="metrics JSON to write")
    _run_arg(p)
    _settings_arg(p, "localization probe settings")


@command("localize", "train the light localization probe on training-subset features, detect and score the "
         "validation subset", _localize_args)
def localize(args):
    from hico_bench.evaluate.localizer import run_localization
    from hico_bench.io import read_json

    from hico_bench.settings import LOCALIZE

    t0 = time.perf_counter()
    settings = _settings(args, LOCALIZE)
    result = run_localization(args.features, args.ground_truth, args.predictions, settings)
    export = read_json(f"{args.features}/export.json")
    result["protocol"].update(stride=export["stride"], snippet_frames=export["snippet_frames"])
    _write_metrics(args, "localization", "activitynet", None, export.get("model"), result,
                   time.perf_counter() - t0 + export["seconds"])


def _anet_eval_args(p):
    p.add_argument("ground_truth", help="ActivityNet v1.3 ground-truth JSON (official layout; HACS accepted)")
    p.add_argument("predictions", help='detections: {"version", "results": {id: [{label, score, segment}]}, ...}')
    p.add_argument("--subset", default="validation")
    p.add_argument("--out", default=None, help="write the metrics as JSON here")


@command("anet-eval", "score detections with the ActivityNet protocol (average mAP over tIoU 0.5:0.05:0.95)",
         _anet_eval_args)
def anet_eval(args):
    from hico_bench.evaluate.detection import anet_eval as run

    run(args.ground_truth, args.predictions, subset=args.subset, out_path=args.out)


def _merge_args(p):
    p.add_argument("inputs", nargs="+", help="metrics JSON of one task on splits 1..3")
    p.add_argument("--out", required=True)


@command("merge-splits", "average one task's metrics over the dataset's official splits", _merge_args)
def merge_splits(args):
    from hico_bench.evaluate.splits import merge_split_metrics
    from hico_bench.io import write_json

    write_json(args.out, merge_split_metrics(args.inputs))


# ------------------------------------------------------------------------------------------------------- tables
def _results_args(p):
    p.add_argument("--eval", nargs="*", default=[], help="evaluation metrics files (<task>_<dataset>.json)")
    p.add_argument("--pretrain", nargs="*", default=[], help="pretraining logs (metrics.jsonl, with run.json beside)")
    p.add_argument("--out-dir", required=True)


def _tables_args(p):
    _results_args(p)
    p.add_argument("--reference", default=None, help="the paper's numbers (default: the committed copy)")


@command("tables", "the given metrics files as tables beside the paper's numbers (CSV + Markdown)", _tables_args)
def tables(args):
    from hico_bench.results.tables import REFERENCE_CSV, build_tables

    build_tables(args.eval, args.pretrain, args.reference or REFERENCE_CSV, args.out_dir)


@command("plots", "loss curves, delta_max over training, ablation bars and retrieval R@k curves (PNG)", _results_args)
def plots(args):
    from hico_bench.results.plots import make_plots

    make_plots(args.eval, args.pretrain, args.out_dir)


# --------------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hico-bench", description="hico-bench: the HiCo benchmark and evaluation "
                                     "harness.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (help, configure, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help, description=help)
        configure(p)
        p.set_defaults(handler=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except UserError as exc:
        print(f"hico-bench {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
