"""`hico-bench <verb>`: argument parsing only; each verb calls one library function.

A :class:`~hico_bench.errors.UserError` is printed as one sentence (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--paths", required=True, help="the dataset's paths as JSON (keys: see `hico-bench manifest -h`)")
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



# ---------------------------------------------------------------------------------------------------- pretrain
def _pretrain_args(p):
    p.add_argument("--manifest", required=True, help="manifest of the pretraining set (its train split is used)")
    p.add_argument("--out-dir", required=True, help="run folder: checkpoints, metrics.jsonl (resumed if present)")
    _settings_arg(p, "pretraining settings (keys of hico_bench.train.loop.DEFAULTS)")


@command("pretrain", "pretrain a backbone with HiCo or one of its ablations (resumes automatically)", _pretrain_args)
def pretrain(args):
    from hico_bench.train.loop import pretrain as run

    run(args.manifest, args.out_dir, parse_settings(args.settings))


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
