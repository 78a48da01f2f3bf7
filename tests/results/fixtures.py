"""Writers of the files the results code reads, in the formats the evaluation and pretraining stages write."""

from __future__ import annotations

import json
from pathlib import Path

from hico_bench.identity import NO_PRETRAINING, RANDOM_INIT, RunIdentity


def run(method: str = "hico", backbone: str = "tiny", pset: str = "uk400", pretrain_input: str = "8x16",
        seed: int = 0, external: str = "") -> RunIdentity:
    """A run identity as the grid makes it (random init: set and pretraining input ``none``)."""
    if method == RANDOM_INIT:
        pset, pretrain_input = NO_PRETRAINING, NO_PRETRAINING
    return RunIdentity(method, backbone, pset, pretrain_input, seed, external)


def write_eval(eval_dir: Path, task: str, dataset: str, metrics: dict, identity: RunIdentity | None = None,
               downstream_input: str = "8x16", split=1, **run_fields) -> Path:
    """Write one metrics file the way the task verbs do (``results/eval/<run>/<input>/<task>_<dataset>.json``)."""
    identity = identity or run(**run_fields)
    path = eval_dir / identity.name / downstream_input / f"{task}_{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "run": identity.as_dict(), "task": task, "dataset": dataset, "split": split,
        "downstream_input": downstream_input,
        "checkpoint": None if identity.method == RANDOM_INIT else f"results/pretrain/{identity.name}/checkpoint_last.pt",
        "metrics": metrics, "protocol": {"views": "10x1"}, "seconds": 1.5,
    }
    path.write_text(json.dumps(data))
    return path


def write_log(pretrain_dir: Path, identity: RunIdentity, losses: list[float], iters: int = 2, tcl: bool = True,
              unconstrained: bool = False) -> Path:
    """A ``metrics.jsonl`` as the trainer writes it (``iters`` steps per epoch), with ``run.json`` beside it."""
    folder = pretrain_dir / identity.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(identity.as_dict()))
    lines = []
    for i, loss in enumerate(losses):
        step = i + 1
        lines.append(json.dumps({
            "step": step, "epoch": round(step / iters, 6), "loss": loss, "loss_vcl": loss * 0.75,
            "loss_tcl": loss * 0.25 if tcl else None, "lr": 0.001,
            "delta_max": -1.0 if unconstrained else 2.0 * step / len(losses),
            "clips_per_s": 100.0 + i, "data_wait_frac": 0.1,
        }))
    path = folder / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def edit(path: Path, fn) -> None:
    """Change a JSON file in place with ``fn(data)``."""
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
