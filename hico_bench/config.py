"""The experiment grid and per-job settings, derived from the validated config dict.

Snakemake validates the YAML against ``workflow/schemas/config.schema.yaml`` (which also fills defaults) and then
calls the functions here from ``workflow/rules/common.smk``. Keeping the grid in Python makes it testable and keeps
the rules thin. Every job receives only the settings it depends on, so that changing one key reruns exactly the jobs
that depend on it (Snakemake's params rerun trigger).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hico_bench.errors import UserError, choice_error

DATASETS = ("k400", "uk400", "ucf101", "hmdb51", "activitynet")

#: Where ``hico-bench synthesize`` writes each dataset, relative to ``synthetic.root``, in the real on-disk layouts.
SYNTHETIC_LAYOUT: dict[str, dict[str, Any]] = {
    "k400": {"csv": "kinetics400/annotations/train.csv", "videos": "kinetics400/videos"},
    "uk400": {"csv": "kinetics400/annotations/train.csv", "videos": "kinetics400_untrimmed/videos", "layout": "full",
              "segments_list": "kinetics400_untrimmed/training.txt"},
    "ucf101": {"root": "ucf101/UCF-101", "splits_dir": "ucf101/ucfTrainTestlist"},
    "hmdb51": {"root": "hmdb51/videos", "splits_dir": "hmdb51/testTrainMulti_7030_splits"},
    "activitynet": {"json": "activitynet/activity_net.v1-3.min.json", "videos": "activitynet/videos"},
}

#: Keys of each dataset entry that are paths (the others, like ``layout``, are options).
PATH_KEYS = {"csv", "videos", "segments_list", "root", "splits_dir", "json"}


def dataset_paths(config: dict, name: str) -> dict[str, Any]:
    """The paths (and layout options) of dataset ``name``: the synthetic ones, or the user's from ``datasets:``.

    An unset or non-existent path of a real dataset is a :class:`UserError` naming the config key.
    """
    if name not in DATASETS:
        raise choice_error("dataset", name, DATASETS)
    if config["synthetic"]["enabled"]:
        root = Path(config["synthetic"]["root"])
        return {k: (str(root / v) if k in PATH_KEYS else v) for k, v in SYNTHETIC_LAYOUT[name].items()}
    entry = dict(config["datasets"][name])
    for key, value in entry.items():
        if key not in PATH_KEYS:
            continue
        if key == "segments_list" and entry.get("layout", "full") != "segments":
            continue
        if not value:
            raise UserError(f"config key datasets.{name}.{key} is not set: point it at your copy of {name}.")
        for one in value if isinstance(value, list) else [value]:
            if not os.path.exists(one):
                raise UserError(f"config key datasets.{name}.{key} points at {one}, which does not exist.")
    return entry


def required_inputs(config: dict, name: str) -> list[str]:
    """Files a manifest job of ``name`` depends on (the annotation files; videos are probed, not tracked)."""
    paths = dataset_paths(config, name)
    files = []
    for key, value in paths.items():
        if key in ("csv", "json", "segments_list") and value and (key != "segments_list"
                                                                  or paths.get("layout") == "segments"):
            files += value if isinstance(value, list) else [value]
    return files


def settings_json(settings: dict) -> str:
    """A job's settings as compact, key-sorted JSON: the same settings always give the same string."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def parse_settings(text: str | None) -> dict:
    """Read ``--settings``: a JSON object, or ``@path`` of a JSON/YAML file; ``None`` gives ``{}``."""
    if not text:
        return {}
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise UserError(f"settings file {path} does not exist.")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--settings is not valid JSON ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(value, dict):
        raise UserError("--settings must be a JSON object.")
    return value


# ------------------------------------------------------------------------------------------------ experiment grid
def run_name(method: str, backbone: str, pretrain_set: str, frames: int, size: int, seed: int = 0) -> str:
    """``{method}_{backbone}_{pretrain-set}_{frames}x{size}`` (mmaction2's habit); seeds other than 0 add ``_seedN``."""
    name = f"{method}_{backbone}_{pretrain_set}_{frames}x{size}"
    return name if seed == 0 else f"{name}_seed{seed}"


def model_settings(config: dict) -> dict[str, Any]:
    """The ``model:`` keys every stage shares (backbone and clip geometry)."""
    return dict(config["model"])


def pretrain_runs(config: dict) -> dict[str, dict[str, Any]]:
    """Every pretraining run of the grid: name -> {method, set, seed, gpus, settings}.

    settings = ``model:`` + ``pretrain.settings`` + ``pretrain.per_set[set]`` + ``variants[method]`` + seed.
    Variants are configuration, never code: an unknown variant or set is an error listing the valid ones.
    """
    pre, variants = config["pretrain"], config["variants"]
    model = model_settings(config)
    runs: dict[str, dict[str, Any]] = {}
    for method in pre["variants"]:
        if method not in variants:
            raise choice_error("pretraining variant", method, variants)
    for pretrain_set in pre["sets"]:
        if pretrain_set not in ("k400", "uk400"):
            raise choice_error("pretraining set", pretrain_set, ("k400", "uk400"))
    for seed in config["seeds"]:
        for pretrain_set in pre["sets"]:
            for method in pre["variants"]:
                settings = {**model, **pre["settings"], **pre.get("per_set", {}).get(pretrain_set, {}),
                            **variants[method], "method": method, "seed": seed}
                name = run_name(method, model["backbone"], pretrain_set, model["frames"], model["size"], seed)
                runs[name] = {"method": method, "set": pretrain_set, "seed": seed, "gpus": pre["gpus"],
                              "settings": settings}
    return runs


def random_init_name(config: dict) -> str:
    """The floor every table shows: the backbone at random init, no pretraining."""
    model = model_settings(config)
    return run_name("random_init", model["backbone"], "none", model["frames"], model["size"])


def evaluated_runs(config: dict) -> dict[str, dict[str, Any]]:
    """Every checkpoint the downstream stage evaluates: the pretraining grid plus random init.

    name -> {"checkpoint": path or None, "pretrain": the fields the tables group by}.
    """
    model = model_settings(config)
    results = config["results"]
    runs = {
        random_init_name(config): {
            "checkpoint": None,
            "pretrain": {"method": "random_init", "backbone": model["backbone"], "set": "none",
                         "frames": model["frames"], "size": model["size"], "seed": 0},
        }
    }
    for name, run in pretrain_runs(config).items():
        runs[name] = {
            "checkpoint": f"{results}/pretrain/{name}/checkpoint_last.pt",
            "pretrain": {"method": run["method"], "backbone": model["backbone"], "set": run["set"],
                         "frames": model["frames"], "size": model["size"], "seed": run["seed"]},
        }
    return runs


def task_settings(config: dict, task: str, dataset: str) -> dict[str, Any]:
    """``downstream.<task>`` updated with ``downstream.per_dataset.<dataset>.<task>``."""
    down = config["downstream"]
    return {**down.get(task, {}), **down.get("per_dataset", {}).get(dataset, {}).get(task, {})}
