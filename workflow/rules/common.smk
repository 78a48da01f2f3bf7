# Config validation, the experiment grid and the target lists. The logic lives in hico_bench/config.py (tested).
import json
import os

from snakemake.utils import validate

from hico_bench.plots import PLOT_NAMES
from hico_bench.tables import TABLE_NAMES

from hico_bench.config import (
    dataset_paths,
    evaluated_runs,
    pretrain_runs,
    required_inputs,
    settings_json,
    task_settings,
)

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results"]
LOGS = f"{RESULTS}/logs"
EVAL_DIR = f"{RESULTS}/eval"
PRETRAIN_DIR = f"{RESULTS}/pretrain"
SYNTHETIC = config["synthetic"]["enabled"]
SYNTHETIC_DONE = os.path.join(config["synthetic"]["root"], "summary.json")


PRETRAIN_RUNS = pretrain_runs(config)
EVAL_RUNS = evaluated_runs(config)


def launcher(gpus):
    """`hico-bench`, or torchrun over N local GPUs when a job asks for more than one."""
    if gpus > 1:
        return f"torchrun --standalone --nproc-per-node {gpus} -m hico_bench.cli"
    return "hico-bench"


def manifest_path(name):
    """The manifest later stages read: the prepared copy's when `prepare.enabled`."""
    suffix = ".prepared.csv" if config["prepare"]["enabled"] else ".csv"
    return f"{RESULTS}/manifests/{name}{suffix}"


def eval_targets():
    down = config["downstream"]
    targets = [f"{RESULTS}/eval/{run}/{task}_{dataset}.json"
               for run in EVAL_RUNS for task in down["tasks"] for dataset in down["datasets"]]
    if config["localization"]["enabled"]:
        targets += [f"{RESULTS}/eval/{run}/localization_activitynet.json" for run in EVAL_RUNS]
    return targets


def all_targets():
    manifests = [manifest_path(name) for name in ("k400", "uk400", "activitynet")]
    checkpoints = [f"{RESULTS}/pretrain/{run}/checkpoint_last.pt" for run in PRETRAIN_RUNS]
    tables = [f"{RESULTS}/tables/{name}.csv" for name in TABLE_NAMES]
    plots = [f"{RESULTS}/plots/{name}.png" for name in PLOT_NAMES]
    return manifests + checkpoints + eval_targets() + tables + plots


# ---- input and parameter functions of the rules


def manifest_dataset(wildcards):
    """`ucf101_split2` -> ("ucf101", 2); `k400` -> ("k400", 1)."""
    name, _, split = wildcards.dataset.partition("_split")
    return name, int(split or 1)


def manifest_inputs(wildcards):
    if SYNTHETIC:
        return [SYNTHETIC_DONE]
    return required_inputs(config, manifest_dataset(wildcards)[0])


def pretrain_run(wildcards):
    return PRETRAIN_RUNS[wildcards.run]


def eval_checkpoint(wildcards):
    return EVAL_RUNS[wildcards.run]["checkpoint"] or "none"


def eval_inputs(wildcards):
    ckpt = EVAL_RUNS[wildcards.run]["checkpoint"]
    manifest = manifest_path(f"{wildcards.dataset}_split{wildcards.split}")
    return {"manifest": manifest, **({"checkpoint": ckpt} if ckpt else {})}


def eval_meta(wildcards, task=None):
    run = EVAL_RUNS[wildcards.run]
    meta = {"run": wildcards.run, "checkpoint": run["checkpoint"], "pretrain": run["pretrain"],
            "dataset": wildcards.dataset, "split": int(wildcards.split),
            "finetune_input": f"{config['model']['frames']}x{config['model']['size']}"}
    return settings_json(meta)
