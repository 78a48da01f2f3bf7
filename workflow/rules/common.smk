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
SYNTHETIC = config["synthetic"]["enabled"]
SYNTHETIC_DONE = f"{RESULTS}/data/synthetic.json"


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
