# Config validation, the experiment grid and the target lists. The logic lives in hico_bench/ (tested):
# hico_bench/settings.py declares every key, hico_bench/config.py builds the grid.
import os

from snakemake.exceptions import WorkflowError

from hico_bench.config import build_grid, dataset_paths, required_inputs, settings_json
from hico_bench.errors import UserError
from hico_bench.evaluate.tasks import TASKS, tasks_reading
from hico_bench.results import PLOT_NAMES, TABLE_NAMES
from hico_bench.settings import validate_config

# Values given with --config arrive as strings; validation converts them to the declared types and fills defaults.
# A mistake is one sentence naming the key (a WorkflowError prints without a traceback).
try:
    config.update(validate_config(config))
    GRID = build_grid(config)
    for name in GRID.datasets:  # every path the grid needs is set and exists, before any job is planned
        dataset_paths(config, name)
except UserError as exc:
    raise WorkflowError(f"config: {exc}") from None

RESULTS = config["results"]
LOGS = f"{RESULTS}/logs"
SYNTHETIC = config["synthetic"]["enabled"]
SYNTHETIC_DONE = os.path.join(config["synthetic"]["root"], "summary.json")

PRETRAIN_RUNS = GRID.pretrain
EVALUATIONS = GRID.evaluations


def launcher(gpus):
    """`hico-bench`, or torchrun over N local GPUs when a job asks for more than one."""
    if gpus > 1:
        return f"torchrun --standalone --nproc-per-node {gpus} -m hico_bench.cli"
    return "hico-bench"


def manifest_path(name):
    """The manifest later stages read: the prepared copy's when `prepare.enabled`."""
    suffix = ".prepared.csv" if config["prepare"]["enabled"] else ".csv"
    return f"{RESULTS}/manifests/{name}{suffix}"


def pretrain_outputs():
    """Every pretraining run's files the tables read (metrics and the run identity beside them)."""
    return [f"{RESULTS}/pretrain/{run}/{name}" for run in PRETRAIN_RUNS for name in ("metrics.jsonl", "run.json")]


def all_targets():
    pretrain_sets = sorted({job.identity.set for job in PRETRAIN_RUNS.values()})
    manifests = [manifest_path(name) for name in pretrain_sets]
    checkpoints = [f"{RESULTS}/pretrain/{run}/checkpoint_last.pt" for run in PRETRAIN_RUNS]
    tables = [f"{RESULTS}/tables/{name}.csv" for name in TABLE_NAMES]
    plots = [f"{RESULTS}/plots/{name}.png" for name in PLOT_NAMES]
    return manifests + checkpoints + GRID.eval_outputs(RESULTS) + tables + plots


# ---- input and parameter functions of the rules


def manifest_dataset(wildcards):
    """`ucf101_split2` -> ("ucf101", 2); `k400` -> ("k400", 1)."""
    name, _, split = wildcards.dataset.partition("_split")
    return name, int(split or 1)


def manifest_inputs(wildcards):
    if SYNTHETIC:
        return [SYNTHETIC_DONE]
    return required_inputs(config, manifest_dataset(wildcards)[0])


def pretrain_job(wildcards):
    return PRETRAIN_RUNS[wildcards.run]


def evaluations(wildcards):
    return EVALUATIONS[(wildcards.run, wildcards.input)]


def checkpoint_inputs(wildcards):
    path = evaluations(wildcards).run.checkpoint
    return {"checkpoint": path} if path else {}


def checkpoint_args(wildcards):
    """--checkpoint and --checkpoint-format of a job that loads the evaluated checkpoint."""
    run = evaluations(wildcards).run
    return f"--checkpoint {run.checkpoint or 'none'} --checkpoint-format {run.checkpoint_format}"


def identity_json(wildcards):
    return settings_json(evaluations(wildcards).run.identity.as_dict())


def model_json(wildcards):
    return settings_json(evaluations(wildcards).model)


def task_settings_json(wildcards):
    return settings_json(evaluations(wildcards).tasks[wildcards.task][wildcards.dataset])


def task_gpus(wildcards):
    """GPUs of a task on videos: downstream.gpus for the long training ones (ft, lft: torchrun + DDP), one for the
    others when downstream.gpus is at least 1."""
    gpus = evaluations(wildcards).gpus
    return gpus if TASKS[wildcards.task].long_training else min(gpus, 1)


def export_threads(wildcards):
    """The export's decoding workers and its main process (which runs the backbone)."""
    from hico_bench.settings import EXPORT

    return EXPORT.resolve(evaluations(wildcards).localization["export"])["num_workers"] + 1


def one_gpu(wildcards):
    """Feature extraction and export use one GPU when downstream.gpus is at least 1."""
    return min(evaluations(wildcards).gpus, 1)
