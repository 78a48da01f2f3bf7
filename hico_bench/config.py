"""The experiment grid and every job's settings, derived from the validated config.

``workflow/rules/common.smk`` calls :func:`build_grid` once; the rules look their jobs up in the result. Keeping the
grid in Python makes it testable and keeps the rules thin. Every job receives only the settings it depends on, so that
changing one key reruns exactly the jobs that depend on it (Snakemake's params rerun trigger).

The grid: the base configuration and each of its ``groups`` (a group overrides ``model``, ``pretrain``,
``downstream``, ``localization``, ``variants`` or ``seeds`` of the base, so that one DAG holds, say, the paper's S3D-G
grid and its R3D-18 rows). Each gives pretraining runs (variants x sets x seeds), the checkpoints evaluated downstream
(those runs, random init and the external checkpoints) and their evaluations (downstream input x task x dataset x
split). A job that two groups ask for with the same settings is one job; with different settings it is an error.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hico_bench.errors import UserError, choice_error
from hico_bench.identity import NO_PRETRAINING, RANDOM_INIT, RunIdentity, check_name_part, input_label

DATASETS = ("k400", "uk400", "hacs", "ucf101", "hmdb51", "activitynet")

#: Where ``hico-bench synthesize`` writes each dataset, relative to ``synthetic.root``, in the real on-disk layouts.
SYNTHETIC_LAYOUT: dict[str, dict[str, Any]] = {
    "k400": {"csv": "kinetics400/annotations/train.csv", "videos": "kinetics400/videos"},
    "uk400": {"csv": "kinetics400/annotations/train.csv", "videos": "kinetics400_untrimmed/videos", "layout": "full",
              "segments_list": "kinetics400_untrimmed/training.txt"},
    "ucf101": {"root": "ucf101/UCF-101", "splits_dir": "ucf101/ucfTrainTestlist"},
    "hmdb51": {"root": "hmdb51/videos", "splits_dir": "hmdb51/testTrainMulti_7030_splits"},
    "activitynet": {"json": "activitynet/activity_net.v1-3.min.json", "videos": "activitynet/videos"},
    "hacs": {"json": "hacs/HACS_v1.1.1/HACS_segments_v1.1.1.json", "videos": "hacs/videos", "layout": "full"},
}

#: Keys of each dataset entry that are paths (the others, like ``layout``, are options).
PATH_KEYS = {"csv", "videos", "segments_list", "root", "splits_dir", "json"}

#: Pretraining sets of trimmed clips (the SimCLR baseline samples them as the official code samples trimmed clips).
TRIMMED_SETS = ("k400",)

#: What a group may override.
GROUP_KEYS = ("seeds", "model", "pretrain", "variants", "downstream", "localization")


def dataset_paths(config: dict, name: str) -> dict[str, Any]:
    """The paths (and layout options) of dataset ``name``: the synthetic ones, or the user's from ``datasets:``.

    An unset or non-existent path of a real dataset is a :class:`UserError` naming the config key; HACS in the segment
    layout may leave ``json`` unset (it only attaches labels).
    """
    if name not in DATASETS:
        raise choice_error("dataset", name, DATASETS)
    if config["synthetic"]["enabled"]:
        root = Path(config["synthetic"]["root"])
        return {k: (str(root / v) if k in PATH_KEYS else v) for k, v in SYNTHETIC_LAYOUT[name].items()}
    entry = dict(config["datasets"][name])
    optional = {"json"} if (name, entry.get("layout", "full")) == ("hacs", "segments") else set()
    for key, value in entry.items():
        if key not in PATH_KEYS:
            continue
        if key == "segments_list" and entry.get("layout", "full") != "segments":
            continue
        if not value and key in optional:
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


def settings_json(settings: Any) -> str:
    """Settings as compact, key-sorted JSON: the same settings always give the same string."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def parse_settings(text: str | None, what: str = "--settings") -> dict:
    """Read a JSON object argument, or ``@path`` of a JSON/YAML file; ``None`` gives ``{}``."""
    if not text:
        return {}
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise UserError(f"{what} file {path} does not exist.")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            value = yaml.safe_load(text) or {}
            if not isinstance(value, dict):
                raise UserError(f"{what} file {path} must hold a mapping.")
            return value
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} is not valid JSON ({exc.msg} at character {exc.pos}).") from None
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a JSON object.")
    return value


# ------------------------------------------------------------------------------------------------ experiment grid
@dataclass
class PretrainJob:
    identity: RunIdentity
    gpus: int
    settings: dict[str, Any]  # the job's --settings: the config's keys only (the verb fills in the defaults)


@dataclass
class EvaluatedRun:
    """A checkpoint evaluated downstream: a pretraining run's, an external one, or random init (no file)."""

    identity: RunIdentity
    checkpoint: str | None
    backbone: dict[str, Any]  # backbone and backbone_kwargs
    checkpoint_format: str = "auto"


@dataclass
class Evaluations:
    """The downstream jobs of one (checkpoint, downstream input)."""

    run: EvaluatedRun
    input: dict[str, Any]                                 # the clip geometry
    datasets: tuple[str, ...] = ()
    splits: tuple[int, ...] = (1,)
    tasks: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # task -> dataset -> settings
    features: dict[str, Any] = field(default_factory=dict)
    localization: dict[str, Any] | None = None            # {"export": ..., "probe": ...} when enabled
    gpus: int = 0                                         # downstream.gpus

    @property
    def label(self) -> str:
        return input_label(self.input["frames"], self.input["size"])

    @property
    def model(self) -> dict[str, Any]:
        """The ``--model`` of its jobs: backbone and clip geometry."""
        return {**self.run.backbone, **self.input}


@dataclass
class Grid:
    pretrain: dict[str, PretrainJob]                       # run name -> job
    evaluations: dict[tuple[str, str], Evaluations]        # (run name, input label) -> its downstream jobs

    @property
    def runs(self) -> dict[str, EvaluatedRun]:
        return {key[0]: ev.run for key, ev in self.evaluations.items()}

    @property
    def datasets(self) -> list[str]:
        """Every dataset the grid reads, in :data:`DATASETS` order."""
        used = {job.identity.set for job in self.pretrain.values()}
        for ev in self.evaluations.values():
            used.update(d for per_dataset in ev.tasks.values() for d in per_dataset)
            if ev.localization is not None:
                used.add("activitynet")
        return [name for name in DATASETS if name in used]

    def eval_outputs(self, results: str) -> list[str]:
        """Every final evaluation file (what the tables read)."""
        out = []
        for (run, label), ev in self.evaluations.items():
            out += [f"{results}/eval/{run}/{label}/{task}_{dataset}.json"
                    for task, per_dataset in ev.tasks.items() for dataset in per_dataset]
            if ev.localization is not None:
                out.append(f"{results}/eval/{run}/{label}/localization_activitynet.json")
        return out


def variants(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The built-in variants (:data:`hico_bench.method.VARIANTS`) updated with the config's ``variants:``."""
    from hico_bench.method import VARIANTS

    out = {name: dict(v.settings) for name, v in VARIANTS.items()}
    for name, settings in config.get("variants", {}).items():
        out[check_name_part("variant", name)] = {**out.get(name, {}), **settings}
    return out


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def configurations(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"": the base config, group name: the base updated with the group}``, each validated."""
    from hico_bench.settings import validate_config

    base = {k: v for k, v in config.items() if k != "groups"}
    out = {"": dict(base)}
    for name, overrides in config.get("groups", {}).items():
        check_name_part("group", name)
        bad = sorted(set(overrides) - set(GROUP_KEYS))
        if bad:
            raise UserError(f"group {name!r} sets {bad[0]!r}; a group may set only: {', '.join(GROUP_KEYS)}.")
        try:
            out[name] = validate_config({**_deep_merge(base, overrides), "groups": {}})
        except UserError as exc:
            raise UserError(f"in group {name!r}: {exc}") from None
    return out


def _pretrain_jobs(cfg: Mapping[str, Any]) -> dict[str, PretrainJob]:
    pre, model = cfg["pretrain"], cfg["model"]
    known = variants(cfg)
    for method in pre["variants"]:
        if method not in known:
            raise choice_error("pretraining variant", method, known)
    label = input_label(pre["input"]["frames"], pre["input"]["size"])
    jobs: dict[str, PretrainJob] = {}
    for seed in cfg["seeds"]:
        for pretrain_set in pre["sets"]:
            for method in pre["variants"]:
                settings = {**model, **pre["input"], **pre["settings"], **pre["per_set"].get(pretrain_set, {}),
                            **known[method], "method": method, "seed": seed}
                if pretrain_set in TRIMMED_SETS:
                    settings["trimmed"] = True
                identity = RunIdentity(method, model["backbone"], pretrain_set, label, seed)
                jobs[identity.name] = PretrainJob(identity, pre["gpus"], settings)
    return jobs


def task_settings(cfg: Mapping[str, Any], task: str, dataset: str) -> dict[str, Any]:
    """``downstream.<task>`` updated with ``downstream.per_dataset.<dataset>.<task>``."""
    down = cfg["downstream"]
    return {**down.get(task, {}), **down["per_dataset"].get(dataset, {}).get(task, {})}


def _evaluations(cfg: Mapping[str, Any], run: EvaluatedRun) -> Evaluations:
    down = cfg["downstream"]
    loc = cfg["localization"]
    return Evaluations(
        run=run, input=dict(down["input"]), datasets=tuple(down["datasets"]), splits=tuple(down["splits"]),
        tasks={t: {d: task_settings(cfg, t, d) for d in down["datasets"]} for t in down["tasks"]},
        features=dict(down["features"]),
        localization={"export": dict(loc["export"]), "probe": dict(loc["probe"])} if loc["enabled"] else None,
        gpus=down["gpus"],
    )


def _random_init(cfg: Mapping[str, Any]) -> EvaluatedRun:
    model = cfg["model"]
    identity = RunIdentity(RANDOM_INIT, model["backbone"], NO_PRETRAINING, NO_PRETRAINING, 0)
    return EvaluatedRun(identity, None, {"backbone": model["backbone"], "backbone_kwargs": model["backbone_kwargs"]})


def _external_runs(cfg: Mapping[str, Any]) -> list[EvaluatedRun]:
    runs = []
    for name, ext in cfg.get("external", {}).items():
        check_name_part("external checkpoint", name)
        identity = RunIdentity(ext["method"], ext["backbone"], ext["set"], ext["pretrain_input"], 0, external=name)
        runs.append(EvaluatedRun(identity, ext["path"], {"backbone": ext["backbone"],
                                                         "backbone_kwargs": ext["backbone_kwargs"]},
                                 ext["format"]))
    return runs


def _conflict(what: str, first: str, second: str) -> UserError:
    return UserError(f"{what} is asked for by {first} and by {second} with different settings; give one of them "
                     f"another name (e.g. another input or set).")


def _merge_evaluations(old: Evaluations, new: Evaluations, first: str, second: str) -> None:
    """Two groups evaluating one checkpoint at one input: their tasks are merged (the same task on the same dataset
    must have the same settings)."""
    name = f"the evaluation of {old.run.identity.name} at {old.label}"
    if old.run != new.run or old.input != new.input or old.splits != new.splits or old.gpus != new.gpus:
        raise _conflict(name, first, second)
    for task, per_dataset in new.tasks.items():
        mine = old.tasks.setdefault(task, {})
        for dataset, settings in per_dataset.items():
            if mine.setdefault(dataset, settings) != settings:
                raise _conflict(f"{name} ({task} on {dataset})", first, second)
    if old.features != new.features:
        raise _conflict(f"{name} (features)", first, second)
    if old.localization is None:
        old.localization = new.localization
    elif new.localization is not None and old.localization != new.localization:
        raise _conflict(f"{name} (localization)", first, second)
    old.datasets = tuple(dict.fromkeys(old.datasets + new.datasets))


def build_grid(config: Mapping[str, Any]) -> Grid:
    """Every pretraining run and every downstream evaluation of the (validated) config."""
    pretrain: dict[str, PretrainJob] = {}
    evaluations: dict[tuple[str, str], Evaluations] = {}
    owners: dict[Any, str] = {}
    results = config["results"]
    for group, cfg in configurations(config).items():
        owner = f"group {group!r}" if group else "the base config"
        jobs = _pretrain_jobs(cfg)
        backbone = {"backbone": cfg["model"]["backbone"], "backbone_kwargs": cfg["model"]["backbone_kwargs"]}
        runs = [EvaluatedRun(job.identity, f"{results}/pretrain/{name}/checkpoint_last.pt", backbone)
                for name, job in jobs.items()]
        if cfg["downstream"]["random_init"]:
            runs.insert(0, _random_init(cfg))
        if not group:
            runs += _external_runs(config)
        for name, job in jobs.items():
            if name in pretrain and pretrain[name] != job:
                raise _conflict(f"the pretraining run {name}", owners[name], owner)
            pretrain.setdefault(name, job)
            owners.setdefault(name, owner)
        for run in runs:
            ev = _evaluations(cfg, run)
            key = (run.identity.name, ev.label)
            if key in evaluations:
                _merge_evaluations(evaluations[key], ev, owners[key], owner)
            else:
                evaluations[key] = ev
                owners[key] = owner
    return Grid(pretrain, evaluations)
