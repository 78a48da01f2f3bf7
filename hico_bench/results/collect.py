"""Read the given evaluation metrics files and pretraining logs, with the identity of each run, into long rows.

An evaluation metrics file (written by the task verbs, ``localize`` and ``merge-splits``) is
``{"run": <RunIdentity.as_dict()>, "task", "dataset", "split", "downstream_input", "checkpoint", "metrics", ...}``;
a pretraining log is a ``metrics.jsonl`` with the run's identity in ``run.json`` beside it. Only the files given are
read: nothing is found by scanning folders, and nothing is parsed out of folder names.

A malformed file is a :class:`~hico_bench.errors.UserError` whose one sentence names the file (and the line or key).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from hico_bench.errors import UserError
from hico_bench.evaluate.tasks import TASKS
from hico_bench.identity import RunIdentity
from hico_bench.settings import DOWNSTREAM_DATASETS

#: The task the ``localize`` verb writes (not in the task registry: it reads exported features of ActivityNet).
LOCALIZATION = "localization"
LOCALIZATION_DATASET = "activitynet"
LOCALIZATION_HEADLINE = "average_mAP"
#: The ``task`` of the rows a pretraining log gives (its ``dataset`` is the pretraining set).
PRETRAIN = "pretrain"

#: Metrics that are percentages (checked to lie in [0, 100]).
_PERCENT = re.compile(r"^(top\d+(_\w+)?|R@\d+|average_mAP|mAP@[0-9.]+)$")

#: The columns of :func:`collect`'s rows: the run identity's fields, what was evaluated, the metric and its file.
COLLECT_COLUMNS = ["run", "method", "backbone", "set", "pretrain_input", "seed", "external", "task", "dataset",
                   "split", "downstream_input", "checkpoint", "metric", "value", "source"]
_IDENTITY_FIELDS = ("method", "backbone", "set", "pretrain_input", "seed", "external")


def known_tasks() -> tuple[str, ...]:
    """The tasks a metrics file may name: every task of the registry, then ``localization``."""
    return (*TASKS, LOCALIZATION)


def headline(task: str) -> str:
    """The metric every result of ``task`` reports (a metrics file without it is malformed)."""
    return LOCALIZATION_HEADLINE if task == LOCALIZATION else TASKS[task].headline


def _datasets(task: str) -> tuple[str, ...]:
    return (LOCALIZATION_DATASET,) if task == LOCALIZATION else DOWNSTREAM_DATASETS


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def metric_name(key: str) -> str:
    """``mAP@0.5`` and ``mAP@0.50`` both become ``mAP@0.50``; other keys are kept."""
    m = re.match(r"^mAP@([0-9.]+)$", key)
    if m:
        try:
            return f"mAP@{float(m[1]):.2f}"
        except ValueError:
            return key
    return key


def split_label(data: dict) -> str:
    """``""`` for the standard protocol (split 1, or no split at all: ActivityNet's validation subset), else the
    splits joined by commas (``"1,2,3"`` for a file merged over the three official splits)."""
    split = data.get("split")
    if split is None and isinstance(data.get("metrics", {}).get("splits"), dict):
        split = sorted(data["metrics"]["splits"], key=str)
    if split is None:
        return ""
    if isinstance(split, (list, tuple)):
        return ",".join(str(s) for s in split)
    return "" if str(split) == "1" else str(split)


def identity_fields(identity: RunIdentity) -> dict[str, Any]:
    """The row fields of a run identity: its name and every field."""
    return {"run": identity.name, **{key: getattr(identity, key) for key in _IDENTITY_FIELDS}}


def row_identity(row: dict[str, Any]) -> RunIdentity:
    """The run identity of one of :func:`collect`'s rows."""
    return RunIdentity(**{key: (int(row[key]) if key == "seed" else row[key]) for key in _IDENTITY_FIELDS})


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist.") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a folder, not a file.") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a UTF-8 text file.") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror}).") from None


def read_eval_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The metrics of one evaluation file as long rows (one per numeric metric); a malformed file is a UserError.

    Only scalar numeric metrics are kept (the mean over splits when there are several); nested objects such as
    ``splits`` or ``per_class``, strings and ``null`` metrics are skipped. ``mAP@0.5`` is read as ``mAP@0.50``.
    """
    path = Path(path)
    data = _read_json(path, "metrics file")
    if not isinstance(data, dict):
        raise UserError(f"metrics file {path} must hold a JSON object.")
    for key in ("run", "task", "dataset", "metrics"):
        if key not in data:
            raise UserError(f"metrics file {path} has no key {key!r}.")
    identity = RunIdentity.from_dict(data["run"], f"metrics file {path}")
    task, dataset, metrics = data["task"], data["dataset"], data["metrics"]
    if task not in known_tasks():
        raise UserError(f"metrics file {path}: unknown task {task!r}; valid tasks are {', '.join(known_tasks())}.")
    if dataset not in _datasets(task):
        raise UserError(f"metrics file {path}: unknown dataset {dataset!r} for task {task}; valid datasets are "
                        f"{', '.join(_datasets(task))}.")
    if not isinstance(metrics, dict):
        raise UserError(f"metrics file {path}: key 'metrics' must be an object.")
    downstream_input = data.get("downstream_input") or ""
    if not isinstance(downstream_input, str):
        raise UserError(f"metrics file {path}: 'downstream_input' must be a string such as '16x112'.")
    main = headline(task)
    if not _is_number(metrics.get(main)):
        raise UserError(f"metrics file {path}: 'metrics.{main}' must be a number (a {task} result always reports "
                        f"it), not {metrics.get(main)!r}.")
    common = {**identity_fields(identity), "task": task, "dataset": dataset, "split": split_label(data),
              "downstream_input": downstream_input, "checkpoint": data.get("checkpoint") or "", "source": str(path)}
    rows = []
    for key, value in metrics.items():
        if value is None or isinstance(value, (dict, list, str)):
            continue
        if not _is_number(value):
            raise UserError(f"metrics file {path}: 'metrics.{key}' must be a number, not {value!r}.")
        if _PERCENT.match(key) and not 0 <= value <= 100:
            raise UserError(f"metrics file {path}: 'metrics.{key}' = {value} is not a percentage in [0, 100].")
        rows.append({**common, "metric": metric_name(key), "value": float(value)})
    return rows


def read_identity(log_path: str | os.PathLike) -> RunIdentity:
    """The identity of the pretraining run whose log is ``log_path`` (``run.json`` beside it)."""
    identity_path = Path(log_path).parent / "run.json"
    return RunIdentity.from_dict(_read_json(identity_path, "run identity"), f"run identity {identity_path}")


PRETRAIN_LOG_COLUMNS = ["step", "epoch", "loss", "loss_vcl", "loss_tcl", "lr", "delta_max", "clips_per_s",
                        "data_wait_frac"]


def load_pretrain_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """A pretraining ``metrics.jsonl`` as a DataFrame of :data:`PRETRAIN_LOG_COLUMNS` (float64); a malformed line is
    a UserError naming the file and line."""
    path = Path(path)
    records = []
    try:
        with open(path) as fh:
            lines = list(fh)
    except FileNotFoundError:
        raise UserError(f"pretraining log {path} does not exist.") from None
    except UnicodeDecodeError:
        raise UserError(f"pretraining log {path} is not a UTF-8 text file.") from None
    except OSError as exc:
        raise UserError(f"pretraining log {path} cannot be read ({exc.strerror}).") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"pretraining log {path} line {lineno} is not valid JSON ({exc.msg}).") from None
        if not isinstance(rec, dict):
            raise UserError(f"pretraining log {path} line {lineno} must be a JSON object.")
        for key in ("step", "epoch", "loss"):
            if not _is_number(rec.get(key)):
                raise UserError(f"pretraining log {path} line {lineno}: {key!r} must be a finite number, "
                                f"not {rec.get(key)!r}.")
        records.append(rec)
    columns = PRETRAIN_LOG_COLUMNS
    df = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    return df.astype("float64")


def summarize_pretrain(df: pd.DataFrame) -> dict[str, float]:
    """Summary numbers of one pretraining log.

    ``loss_last_epoch`` (and ``loss_vcl_last_epoch`` / ``loss_tcl_last_epoch`` when logged) is the mean over the steps
    of the last epoch (the steps whose ``epoch`` lies in ``(E - 1, E]``, E = the last logged epoch rounded up);
    ``epochs`` = the last logged epoch, ``steps`` = the number of steps, ``delta_max_final`` = the last delta_max,
    ``clips_per_s_median`` and ``data_wait_frac_mean`` over all steps. An empty log gives ``{}``.
    """
    if df.empty:
        return {}
    last = float(df["epoch"].max())
    tail = df[df["epoch"] > math.ceil(last - 1e-9) - 1 + 1e-9]
    out = {"epochs": last, "steps": float(len(df))}
    for key in ("loss", "loss_vcl", "loss_tcl"):
        vals = tail[key].dropna()
        if len(vals):
            out[f"{key}_last_epoch"] = float(vals.mean())
    if df["delta_max"].notna().any():
        out["delta_max_final"] = float(df["delta_max"].dropna().iloc[-1])
    if df["clips_per_s"].notna().any():
        out["clips_per_s_median"] = float(df["clips_per_s"].median())
    if df["data_wait_frac"].notna().any():
        out["data_wait_frac_mean"] = float(df["data_wait_frac"].mean())
    return out


def as_paths(files: Iterable[str | os.PathLike] | str | os.PathLike | None) -> list[str]:
    """The given paths, each once, sorted (one path alone counts as a list of one; ``None`` as none)."""
    if files is None:
        return []
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    return sorted(dict.fromkeys(str(p) for p in files))


def collect(eval_files: Iterable[str | os.PathLike], pretrain_logs: Iterable[str | os.PathLike] = ()) -> pd.DataFrame:
    """Every metric of the given files, one row per (file, metric), with the file in ``source``.

    Columns: :data:`COLLECT_COLUMNS`. Evaluation files give ``task`` in :func:`known_tasks`; each pretraining log
    (``metrics.jsonl``, its run's identity in ``run.json`` beside it) gives rows with ``task == "pretrain"``,
    ``dataset`` = the pretraining set and the metrics of :func:`summarize_pretrain`. A path given twice is read once.
    Rows are sorted by source, then metric.
    """
    rows: list[dict[str, Any]] = []
    for path in as_paths(eval_files):
        rows.extend(read_eval_json(path))
    for path in as_paths(pretrain_logs):
        identity = read_identity(path)
        summary = summarize_pretrain(load_pretrain_metrics(path))
        common = {**identity_fields(identity), "task": PRETRAIN, "dataset": identity.set, "split": "",
                  "downstream_input": "", "checkpoint": "", "source": path}
        rows.extend({**common, "metric": k, "value": v} for k, v in summary.items())
    df = pd.DataFrame.from_records(rows, columns=COLLECT_COLUMNS)
    return df.sort_values(["source", "metric"], kind="stable").reset_index(drop=True)
