"""Result tables: this project's measurements beside the paper's published numbers.

Inputs: the evaluation metrics files ``<eval_dir>/<run>/<task>_<dataset>.json`` (other JSON files in a run folder,
and names starting with ``.``, are ignored), the pretraining logs ``<pretrain_dir>/<run>/metrics.jsonl`` and the
paper's numbers (``hico_bench/reference/hico_paper_results.csv``, a copy of the shared reference file).

:func:`build_tables` writes, for each table ``<name>``: ``<name>.csv`` (numbers), ``<name>.md`` (formatted) and
``<name>.sources.csv`` (one line per number: its row, column, value, origin and the files it was read from).
Tables: ``recognition``, ``retrieval``, ``ablation``, ``trimmed_vs_untrimmed``, ``localization``.

Cells:

* **measured** (this project): the mean over pretraining seeds (runs named ``..._seedN`` with the same pretraining
  fields but the seed). CSV: ``<column> mean``, ``<column> std`` (sample standard deviation, ddof=1; empty with one
  seed) and ``<column> n``. Markdown: ``mean ± std`` (``mean`` alone with one seed), two decimals.
* **paper**: read from the reference file, never computed. ``n/a`` (CSV and Markdown) when the paper has no
  counterpart for the row (all of the ablation and localization tables: those numbers are not public);
  empty (CSV) / ``–`` (Markdown) when the paper's row exists but does not report that cell.
* **diff**: measured mean − paper (``trimmed_vs_untrimmed``: untrimmed − trimmed); empty / ``–`` when a side is
  missing.
* Not measured yet: empty (CSV) / ``–`` (Markdown). pandas reads both empty cells and ``n/a`` as NaN.

Matching a measurement to a paper row uses the paper's vocabulary (:data:`METHOD_NAMES`, :data:`BACKBONE_NAMES`,
:data:`SET_NAMES`): recognition rows match on method, backbone, pretraining set, pretraining input, fine-tuning
input and protocol (``lft`` = the paper's LFT, ``ft`` = FT; the strict ``probe`` has no paper counterpart); retrieval
rows (the paper gives its input as ``?x112``) match on method, backbone, pretraining set and input size.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from hico_bench.errors import UserError
from hico_bench.identity import RunIdentity
from hico_bench.io import atomic_path, write_text

#: The committed copy of the paper's numbers (byte-identical to ``shared/reference/hico_paper_results.csv``).
REFERENCE_CSV = Path(__file__).parent / "reference" / "hico_paper_results.csv"

TASKS = ("ft", "lft", "probe", "retrieval", "localization")
DATASETS = ("ucf101", "hmdb51", "activitynet")
METHOD_NAMES = {
    "hico": "HiCo", "simclr": "SimCLR", "vcl_fixed": "VCL (fixed δ)", "vcl_gradual": "VCL + GS",
    "hico_fixed": "HiCo (fixed δ)", "hico_bce": "HiCo (BCE TCL)", "random_init": "random init",
}
BACKBONE_NAMES = {"s3dg": "S3D-G-23", "r3d18": "R3D-18", "r2plus1d10": "R(2+1)D-10", "r2plus1d18": "R(2+1)D-18",
                  "tiny": "tiny"}
SET_NAMES = {"k400": "Kinetics-400", "uk400": "untrimmed Kinetics-400", "none": "none"}
DATASET_NAMES = {"ucf101": "UCF101", "hmdb51": "HMDB51", "activitynet": "ActivityNet"}
PROTOCOLS = {"lft": "LFT", "ft": "FT", "probe": "probe"}
FROZEN = {"LFT": "✓", "FT": "✗", "probe": "✓ (strict probe)"}
#: Row order of the variants (config/config.yaml ``variants:``); unknown methods come after, random init last.
VARIANT_ORDER = ("simclr", "vcl_fixed", "vcl_gradual", "hico_fixed", "hico", "hico_bce")
SET_ORDER = ("k400", "uk400", "none")
RECALL_KS = (1, 5, 10, 20, 50)
TABLE_NAMES = ("recognition", "retrieval", "ablation", "trimmed_vs_untrimmed", "localization")

#: The metric each task must report (a metrics file without it is malformed).
HEADLINE = {"ft": "top1", "lft": "top1", "probe": "top1", "retrieval": "R@1", "localization": "average_mAP"}
_PERCENT = re.compile(r"^(top\d+(_\w+)?|R@\d+|average_mAP|mAP@[0-9.]+)$")
_EVAL_FILE = re.compile(rf"^({'|'.join(TASKS)})_({'|'.join(DATASETS)})$")
_RUN_NAME = re.compile(r"^(?P<method>.+)_(?P<backbone>[^_]+)_(?P<set>[^_]+)_(?P<frames>\d+)x(?P<size>\d+)"
                       r"(?:_seed(?P<seed>\d+))?$")
_PRETRAIN_FIELDS = ("method", "backbone", "set", "frames", "size", "seed")
PROBE_NOTE = "strict linear probe (frozen backbone); no paper counterpart: the paper's frozen numbers are LFT"
PROBE_SENTENCE = "probe = " + PROBE_NOTE + "."

MISSING_MD = "–"
NA = "n/a"


# ----------------------------------------------------------------------------------------------------- reading
def parse_run_name(name: str) -> dict[str, Any]:
    """Split ``{method}_{backbone}_{set}_{frames}x{size}[_seedN]`` (``hico_bench.config.run_name``) into its fields."""
    m = _RUN_NAME.match(name)
    if not m:
        raise UserError(f"run folder name {name!r} is not of the form method_backbone_set_FRAMESxSIZE[_seedN].")
    return {"method": m["method"], "backbone": m["backbone"], "set": m["set"], "frames": int(m["frames"]),
            "size": int(m["size"]), "seed": int(m["seed"] or 0)}


def base_run(name: str) -> str:
    """The run name without its ``_seedN`` suffix."""
    return re.sub(r"_seed\d+$", "", name)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _metric_name(key: str) -> str:
    """``mAP@0.5`` and ``mAP@0.50`` both become ``mAP@0.50``; other keys are kept."""
    m = re.match(r"^mAP@([0-9.]+)$", key)
    if m:
        try:
            return f"mAP@{float(m[1]):.2f}"
        except ValueError:
            return key
    return key


def _split_label(data: dict) -> str:
    """"" for the standard protocol (split 1, or no split at all: ActivityNet's validation subset), else the splits."""
    split = data.get("split")
    if split is None and isinstance(data.get("metrics", {}).get("splits"), dict):
        split = sorted(data["metrics"]["splits"], key=str)
    if split is None:
        return ""
    if isinstance(split, (list, tuple)):
        return ",".join(str(s) for s in split)
    return "" if str(split) == "1" else str(split)


def _input_fields(pretrain_input: str) -> tuple[int, int]:
    """(frames, size) of a clip geometry label such as ``16x112``; (0, 0) for ``none`` or an unknown one."""
    m = re.match(r"^(\d+)x(\d+)$", pretrain_input)
    return (int(m[1]), int(m[2])) if m else (0, 0)


def _identity_fields(identity) -> dict[str, Any]:
    frames, size = _input_fields(identity.pretrain_input)
    return {"run": identity.name, "base_run": RunIdentity(**{**identity.__dict__, "seed": 0}).name,
            "method": identity.method, "backbone": identity.backbone, "set": identity.set, "frames": frames,
            "size": size, "seed": identity.seed}


def run_fields(log_path: str | os.PathLike) -> dict[str, Any]:
    """The identity fields of the pretraining run whose log is ``log_path`` (from ``run.json`` beside it)."""
    identity_path = Path(log_path).parent / "run.json"
    try:
        identity = RunIdentity.from_dict(json.loads(identity_path.read_text()), str(identity_path))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"run identity {identity_path} cannot be read ({exc}).") from None
    return _identity_fields(identity)


def read_eval_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The metrics of one evaluation file as long rows (one per numeric metric); a malformed file is a UserError.

    Only scalar numeric metrics are kept (the mean over splits when there are several; nested objects such as
    ``splits`` or ``per_class`` are skipped, and so are ``null`` metrics).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"metrics file {path} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"metrics file {path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    except UnicodeDecodeError:
        raise UserError(f"metrics file {path} is not a UTF-8 text file.") from None
    if not isinstance(data, dict):
        raise UserError(f"metrics file {path} must hold a JSON object.")
    for key in ("run", "task", "dataset", "metrics"):
        if key not in data:
            raise UserError(f"metrics file {path} has no key {key!r}.")
    identity = RunIdentity.from_dict(data["run"], f"metrics file {path}")
    metrics = data["metrics"]
    if data["task"] not in TASKS:
        raise UserError(f"metrics file {path}: unknown task {data['task']!r}; valid tasks are {', '.join(TASKS)}.")
    if data["dataset"] not in DATASETS:
        raise UserError(f"metrics file {path}: unknown dataset {data['dataset']!r}; valid datasets are "
                        f"{', '.join(DATASETS)}.")
    if not isinstance(metrics, dict):
        raise UserError(f"metrics file {path}: key 'metrics' must be an object.")
    finetune_input = data.get("downstream_input") or ""
    if not isinstance(finetune_input, str):
        raise UserError(f"metrics file {path}: 'downstream_input' must be a string such as '16x112'.")
    headline = HEADLINE[data["task"]]
    if not _is_number(metrics.get(headline)):
        raise UserError(f"metrics file {path}: 'metrics.{headline}' must be a number (a {data['task']} result "
                        f"always reports it), not {metrics.get(headline)!r}.")
    common = {
        **_identity_fields(identity), "task": data["task"], "dataset": data["dataset"],
        "split": _split_label(data), "finetune_input": finetune_input, "checkpoint": data.get("checkpoint") or "",
        "source": str(path),
    }
    rows = []
    for key, value in metrics.items():
        if value is None or isinstance(value, (dict, list, str)):
            continue
        if not _is_number(value):
            raise UserError(f"metrics file {path}: 'metrics.{key}' must be a number, not {value!r}.")
        if _PERCENT.match(key) and not 0 <= value <= 100:
            raise UserError(f"metrics file {path}: 'metrics.{key}' = {value} is not a percentage in [0, 100].")
        rows.append({**common, "metric": _metric_name(key), "value": float(value)})
    return rows


def load_pretrain_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """A pretraining ``metrics.jsonl`` as a DataFrame; a malformed line is a UserError naming the file and line."""
    path = Path(path)
    records = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
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
    columns = ["step", "epoch", "loss", "loss_vcl", "loss_tcl", "lr", "delta_max", "clips_per_s", "data_wait_frac"]
    df = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    return df.astype("float64")


def summarize_pretrain(df: pd.DataFrame) -> dict[str, float]:
    """Summary numbers of one pretraining log.

    ``loss_last_epoch`` (and ``loss_vcl_last_epoch`` / ``loss_tcl_last_epoch`` when logged) is the mean over the steps
    of the last epoch (the steps whose ``epoch`` lies in ``(E - 1, E]``, E = the last logged epoch); ``epochs`` = E,
    ``steps`` = the number of steps, ``delta_max_final`` = the last delta_max, ``clips_per_s_median`` and
    ``data_wait_frac_mean`` over all steps. An empty log gives ``{}``.
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


COLLECT_COLUMNS = ["run", "base_run", "method", "backbone", "set", "frames", "size", "seed", "task", "dataset",
                   "split", "finetune_input", "checkpoint", "metric", "value", "source"]


def collect(eval_files: Iterable[str | os.PathLike], pretrain_logs: Iterable[str | os.PathLike] = ()) -> pd.DataFrame:
    """Every metric of the given files, one row per (file, metric), with the file in ``source``.

    Columns: :data:`COLLECT_COLUMNS`. Evaluation files give ``task`` in :data:`TASKS`; each pretraining log
    (``metrics.jsonl``, its run's identity in ``run.json`` beside it) gives rows with ``task == "pretrain"`` and
    ``dataset`` = the pretraining set (metrics of :func:`summarize_pretrain`). Rows are sorted by source then metric.
    """
    rows: list[dict[str, Any]] = []
    for path in sorted(str(p) for p in eval_files):
        rows.extend(read_eval_json(path))
    for path in sorted(Path(p) for p in pretrain_logs):
        fields = run_fields(path)
        summary = summarize_pretrain(load_pretrain_metrics(path))
        common = {**fields, "task": "pretrain", "dataset": fields["set"], "split": "",
                  "finetune_input": "", "checkpoint": "", "source": str(path)}
        rows.extend({**common, "metric": k, "value": v} for k, v in summary.items())
    df = pd.DataFrame.from_records(rows, columns=COLLECT_COLUMNS)
    return df.sort_values(["source", "metric"], kind="stable").reset_index(drop=True)


def load_reference(path: str | os.PathLike = REFERENCE_CSV) -> pd.DataFrame:
    """The paper's numbers, with ``line`` (1-based line in the file, header = line 1) for traceability."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"paper reference file {path} does not exist.")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    need = ["table", "method", "backbone", "pretrain", "pretrain_input", "finetune_input", "protocol", "dataset",
            "metric", "value"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UserError(f"paper reference file {path} lacks the column(s) {', '.join(missing)}.")
    df["line"] = range(2, len(df) + 2)
    values = []
    for line, text in zip(df["line"], df["value"]):
        try:
            values.append(float(text))
        except ValueError:
            raise UserError(f"paper reference file {path} line {line}: value {text!r} is not a number.") from None
    df["value"] = values
    if "note" not in df.columns:
        df["note"] = ""
    df["source"] = [f"{path}:{line}" for line in df["line"]]
    return df


# ----------------------------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Measured:
    """One measured cell: a metric over the seeds of one pretraining configuration."""

    values: tuple[float, ...]
    sources: tuple[str, ...]
    runs: tuple[str, ...]
    seeds: tuple[int, ...]
    origin = "measured"

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def value(self) -> float:
        return math.fsum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        if len(self.values) < 2:
            return math.nan
        m = self.value
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (len(self.values) - 1))


@dataclass(frozen=True)
class PaperValue:
    value: float
    source: str
    origin = "paper"

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,)


@dataclass(frozen=True)
class Diff:
    """``a - b`` of two value cells (either may be missing)."""

    a: Any
    b: Any

    @property
    def value(self) -> float | None:
        if isinstance(self.a, (Measured, PaperValue)) and isinstance(self.b, (Measured, PaperValue)):
            return self.a.value - self.b.value
        return None

    @property
    def origin(self) -> str:
        return f"{self.a.origin} − {self.b.origin}"

    @property
    def sources(self) -> tuple[str, ...]:
        return self.a.sources + self.b.sources


@dataclass
class Column:
    label: str
    kind: str  # key | text | measured | paper | diff
    md_label: str | None = None


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fmt_measured(cell: Measured) -> str:
    return f"{cell.value:.2f}" if cell.n < 2 else f"{cell.value:.2f} ± {cell.std:.2f}"


def _cell_md(col: Column, cell: Any) -> str:
    if cell is None or cell == "":
        return MISSING_MD
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Measured):
        return _fmt_measured(cell)
    if isinstance(cell, PaperValue):
        return f"{cell.value:.1f}"
    if isinstance(cell, Diff):
        return MISSING_MD if cell.value is None else f"{cell.value:+.2f}"
    raise TypeError(f"unexpected cell {cell!r}")


def _row_sources(table: Table, row: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for col in table.columns:
        cell = row.get(col.label)
        if isinstance(cell, (Measured, PaperValue)):
            out.extend(s for s in cell.sources if s not in out)
    return out


def table_frame(table: Table) -> pd.DataFrame:
    """The CSV form: measured cells as ``mean``/``std``/``n`` columns, then ``source`` (the row's files, ``;``)."""
    records = []
    for row in table.rows:
        rec: dict[str, Any] = {}
        for col in table.columns:
            cell = row.get(col.label)
            if col.kind == "measured":
                m = cell if isinstance(cell, Measured) else None
                rec[f"{col.label} mean"] = m.value if m else math.nan
                rec[f"{col.label} std"] = m.std if m else math.nan
                rec[f"{col.label} n"] = m.n if m else pd.NA
            elif col.kind == "paper":
                rec[col.label] = cell.value if isinstance(cell, PaperValue) else (NA if cell == NA else math.nan)
            elif col.kind == "diff":
                v = cell.value if isinstance(cell, Diff) else None
                rec[col.label] = math.nan if v is None else v
            else:
                rec[col.label] = "" if cell is None else str(cell)
        rec["source"] = ";".join(_row_sources(table, row))
        records.append(rec)
    cols = []
    for col in table.columns:
        cols += [f"{col.label} mean", f"{col.label} std", f"{col.label} n"] if col.kind == "measured" else [col.label]
    df = pd.DataFrame.from_records(records, columns=cols + ["source"])
    for col in table.columns:
        if col.kind == "measured":
            df[f"{col.label} n"] = df[f"{col.label} n"].astype("Int64")
            df[f"{col.label} mean"] = df[f"{col.label} mean"].astype("float64")
            df[f"{col.label} std"] = df[f"{col.label} std"].astype("float64")
        elif col.kind == "diff":
            df[col.label] = df[col.label].astype("float64")
    return df


def sources_frame(table: Table) -> pd.DataFrame:
    """One line per number of the table: ``row`` (0-based), ``column``, ``value``, ``origin``, ``sources`` (``;``)."""
    records = []
    for i, row in enumerate(table.rows):
        for col in table.columns:
            cell = row.get(col.label)
            if isinstance(cell, (Measured, PaperValue)) or (isinstance(cell, Diff) and cell.value is not None):
                records.append({"row": i, "column": col.label, "value": cell.value, "origin": cell.origin,
                                "sources": ";".join(dict.fromkeys(cell.sources))})
    return pd.DataFrame.from_records(records, columns=["row", "column", "value", "origin", "sources"])


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub pipe table (``|`` inside cells escaped)."""
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


LEGEND = (
    "Cells: *measured* = this project (mean ± sample std over pretraining seeds; a single number with one seed); "
    "*paper* = read from the paper's published tables (hico_paper_results.csv), never computed; "
    "*diff* = measured − paper. `–` = not measured (or not reported by the paper's row); "
    "`n/a` = the paper has no counterpart. The files behind every number: `{name}.sources.csv`."
)


def table_markdown(table: Table) -> str:
    """The Markdown form: a title, the table, the notes and the legend."""
    header = [c.md_label or c.label for c in table.columns]
    body = [[_cell_md(c, row.get(c.label)) for c in table.columns] for row in table.rows]
    parts = [f"# {table.title}", "", markdown_table(header, body), ""]
    parts += [f"- {note}" for note in table.notes]
    parts += ["", LEGEND.format(name=table.name), ""]
    return "\n".join(parts)


def write_table(table: Table, out_dir: str | os.PathLike) -> pd.DataFrame:
    """Write ``<name>.csv``, ``<name>.md`` and ``<name>.sources.csv`` atomically; return the CSV frame."""
    out_dir = Path(out_dir)
    frame = table_frame(table)
    with atomic_path(out_dir / f"{table.name}.csv") as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(out_dir / f"{table.name}.sources.csv") as tmp:
        sources_frame(table).to_csv(tmp, index=False)
    write_text(out_dir / f"{table.name}.md", table_markdown(table))
    return frame


# ----------------------------------------------------------------------------------------------------- grouping
@dataclass
class Group:
    """The measurements of one pretraining configuration (all seeds) on one task and dataset."""

    method: str
    backbone: str
    set: str
    frames: int
    size: int
    task: str
    dataset: str
    finetune_input: str
    split: str
    metrics: dict[str, Measured] = field(default_factory=dict)

    @property
    def pretrain_input(self) -> str:
        return "none" if self.method == "random_init" else f"{self.frames}x{self.size}"

    @property
    def config(self) -> tuple:
        return (self.method, self.backbone, self.set, self.frames, self.size)

    @property
    def runs(self) -> list[str]:
        return sorted({r for m in self.metrics.values() for r in m.runs})

    @property
    def downstream(self) -> str:
        text = self.finetune_input or MISSING_MD
        return text if self.split in ("", "1") else f"{text} (splits {self.split})"


def group_measurements(df: pd.DataFrame) -> list[Group]:
    """Group the rows of :func:`collect` over seeds; two files of one configuration and seed are a UserError."""
    groups: dict[tuple, Group] = {}
    seen: dict[tuple, str] = {}
    cells: dict[tuple, dict[str, list]] = {}
    for rec in df.to_dict("records"):
        key = (rec["method"], rec["backbone"], rec["set"], int(rec["frames"]), int(rec["size"]), rec["task"],
               rec["dataset"], rec["finetune_input"], rec["split"])
        skey = key + (int(rec["seed"]), rec["metric"])
        if skey in seen and seen[skey] != rec["source"]:
            raise UserError(f"{seen[skey]} and {rec['source']} both hold {rec['metric']} of the same pretraining "
                            f"(method {rec['method']}, backbone {rec['backbone']}, set {rec['set']}, "
                            f"{rec['frames']}x{rec['size']}, seed {rec['seed']}); keep one of them.")
        seen[skey] = rec["source"]
        if key not in groups:
            groups[key] = Group(*key)
        acc = cells.setdefault(key, {}).setdefault(rec["metric"], [])
        acc.append((int(rec["seed"]), float(rec["value"]), rec["source"], rec["base_run"]))
    for key, metrics in cells.items():
        for metric, items in metrics.items():
            items.sort()
            groups[key].metrics[metric] = Measured(
                values=tuple(v for _, v, _, _ in items), sources=tuple(s for _, _, s, _ in items),
                runs=tuple(dict.fromkeys(r for _, _, _, r in items)), seeds=tuple(s for s, _, _, _ in items))
    return list(groups.values())


def _display(group: Group) -> tuple[str, str, str]:
    return (METHOD_NAMES.get(group.method, group.method), BACKBONE_NAMES.get(group.backbone, group.backbone),
            SET_NAMES.get(group.set, group.set))


def _order(group: Group) -> tuple:
    m = group.method
    rank = VARIANT_ORDER.index(m) if m in VARIANT_ORDER else (len(VARIANT_ORDER) + (m == "random_init"))
    s = SET_ORDER.index(group.set) if group.set in SET_ORDER else len(SET_ORDER)
    return (m == "random_init", group.backbone, group.size, group.frames, s, rank, m, group.finetune_input,
            group.split, group.dataset)


def _runs_text(groups: Iterable[Group]) -> str:
    seeds: dict[str, set[int]] = {}
    for g in groups:
        for m in g.metrics.values():
            for run in m.runs:
                seeds.setdefault(run, set()).update(m.seeds)
    return "; ".join(f"{run} (seeds {','.join(map(str, sorted(s)))})" if len(s) > 1 else run
                     for run, s in sorted(seeds.items()))


def _join_notes(*notes: str) -> str:
    return "; ".join(n for n in dict.fromkeys(notes) if n)


def _measured_note(group: Group, probe_note: bool = True) -> str:
    notes = []
    if group.task == "probe" and probe_note:
        notes.append(PROBE_NOTE)
    if group.method == "random_init":
        notes.append("random initialisation, no pretraining")
    if group.split not in ("", "1"):
        notes.append(f"measured on splits {group.split} (the paper: split 1)")
    return _join_notes(*notes)


# ----------------------------------------------------------------------------------------------------- tables
def recognition_table(groups: list[Group], ref: pd.DataFrame) -> Table:
    """The paper's state-of-the-art recognition table with the measured ft / lft / probe rows beside it."""
    datasets = ("ucf101", "hmdb51")
    keys = ["method", "backbone", "pretraining set", "pretraining input", "fine-tuning input", "protocol", "frozen"]
    columns = [Column(k, "key") for k in keys]
    for ds in datasets:
        name = DATASET_NAMES[ds]
        columns += [Column(f"{name} paper", "paper"), Column(f"{name} measured", "measured"),
                    Column(f"{name} diff", "diff", f"{name} Δ")]
    columns += [Column("runs", "text"), Column("note", "text")]
    table = Table("recognition", "Action recognition top-1 (%): UCF101 and HMDB51", columns, notes=[
        "Paper rows: every row of the paper's state-of-the-art table (LFT = linear head trained, backbone frozen; "
        "FT = full fine-tuning), split 1.",
        "Measured rows: top-1 of `lft` (the official linear evaluation, BatchNorm statistics updating), `ft` and "
        "`probe`. " + PROBE_SENTENCE,
    ])

    measured: dict[tuple, dict[str, Group]] = {}
    for g in groups:
        if g.task in PROTOCOLS and g.dataset in datasets and "top1" in g.metrics:
            key = (*_display(g), g.pretrain_input, g.finetune_input, PROTOCOLS[g.task], g.split)
            measured.setdefault(key, {})[g.dataset] = g
    paper = ref[ref["table"] == "sota_recognition"]
    paper_rows: dict[tuple, dict[str, pd.Series]] = {}
    for _, r in paper.iterrows():
        key = (r["method"], r["backbone"], r["pretrain"], r["pretrain_input"], r["finetune_input"], r["protocol"])
        paper_rows.setdefault(key, {})[r["dataset"].lower()] = r

    def row(key6: tuple, prow: dict | None, mrow: dict[str, Group] | None) -> dict[str, Any]:
        out = dict(zip(keys, (*key6, FROZEN.get(key6[5], MISSING_MD))))
        notes = []
        for ds in datasets:
            name = DATASET_NAMES[ds]
            p = prow.get(ds) if prow is not None else None
            pcell = PaperValue(p["value"], p["source"]) if p is not None else (NA if prow is None else None)
            g = (mrow or {}).get(ds)
            mcell = g.metrics["top1"] if g is not None else None
            out[f"{name} paper"], out[f"{name} measured"] = pcell, mcell
            out[f"{name} diff"] = Diff(mcell, pcell)
            if p is not None:
                notes.append(p["note"])
            if g is not None:
                notes.append(_measured_note(g))
        out["runs"] = _runs_text((mrow or {}).values())
        out["note"] = _join_notes(*notes)
        return out

    used = set()
    for key6, prow in paper_rows.items():
        matches = [k for k in measured if k[:6] == key6]
        for k in matches or [None]:
            table.rows.append(row(key6, prow, measured[k] if k else None))
            used.add(k)
    rest = [k for k in measured if k not in used]
    proto_rank = {"LFT": 0, "FT": 1, "probe": 2}
    rest.sort(key=lambda k: (proto_rank[k[5]], _order(next(iter(measured[k].values())))))
    for k in rest:
        table.rows.append(row(k[:6], None, measured[k]))
    return table


def _paper_size(pretrain_input: str) -> str:
    return pretrain_input.split("x")[-1]


def retrieval_table(groups: list[Group], ref: pd.DataFrame) -> Table:
    """The paper's Table 6 (nearest-neighbour retrieval R@k) with the measured retrieval rows beside it."""
    keys = ["method", "backbone", "pretraining set", "pretraining input", "retrieval input", "dataset"]
    columns = [Column(k, "key") for k in keys]
    for k in RECALL_KS:
        columns += [Column(f"R@{k} paper", "paper"), Column(f"R@{k} measured", "measured"),
                    Column(f"R@{k} diff", "diff", f"R@{k} Δ")]
    columns += [Column("runs", "text"), Column("note", "text")]
    table = Table("retrieval", "Nearest-neighbour video retrieval R@k (%): UCF101 and HMDB51", columns, notes=[
        "Paper rows: every row of the paper's Table 6 (R@1/5/10/20; the paper reports no R@50). The paper gives the "
        "pretraining input as ?x112: measured rows match a paper row on method, backbone, pretraining set and input "
        "size, and show their own pretraining input.",
        "Measured: test-split videos query the train-split gallery (method.md section 9; the paper's protocol is "
        "not public).",
    ])
    paper = ref[ref["table"] == "retrieval_table6"]
    paper_rows: dict[tuple, dict[str, pd.Series]] = {}
    for _, r in paper.iterrows():
        key = (r["method"], r["backbone"], r["pretrain"], r["pretrain_input"], r["dataset"].lower())
        paper_rows.setdefault(key, {})[r["metric"]] = r
    measured = [g for g in groups if g.task == "retrieval" and g.dataset in ("ucf101", "hmdb51")]

    def row(key: tuple, prow: dict | None, g: Group | None) -> dict[str, Any]:
        method, backbone, pset, pinput, ds = key
        out = dict(zip(keys, (method, backbone, pset, g.pretrain_input if g else pinput,
                              (g.finetune_input or MISSING_MD) if g else MISSING_MD, DATASET_NAMES[ds])))
        notes = []
        for k in RECALL_KS:
            p = prow.get(f"R@{k}") if prow is not None else None
            pcell = PaperValue(p["value"], p["source"]) if p is not None else (NA if prow is None else None)
            mcell = g.metrics.get(f"R@{k}") if g is not None else None
            out[f"R@{k} paper"], out[f"R@{k} measured"], out[f"R@{k} diff"] = pcell, mcell, Diff(mcell, pcell)
            if p is not None:
                notes.append(p["note"])
        if g is not None and prow is not None:
            notes.append(f"paper's pretraining input: {pinput}")
        if g is not None:
            notes.append(_measured_note(g))
        out["runs"] = _runs_text([g] if g else [])
        out["note"] = _join_notes(*notes)
        return out

    used = set()
    for key, prow in paper_rows.items():
        method, backbone, pset, pinput, ds = key
        matches = [g for g in measured if _display(g) == (method, backbone, pset) and g.dataset == ds
                   and str(g.size) == _paper_size(pinput)]
        for g in sorted(matches, key=_order) or [None]:
            table.rows.append(row(key, prow, g))
            used.add(id(g))
    for g in sorted((g for g in measured if id(g) not in used), key=_order):
        table.rows.append(row((*_display(g), g.pretrain_input, g.dataset), None, g))
    return table


#: The ablation / trimmed-vs-untrimmed columns: (label, task, dataset, metric).
ABLATION_METRICS = [
    *[(f"probe top-1 {DATASET_NAMES[d]}", "probe", d, "top1") for d in ("ucf101", "hmdb51")],
    *[(f"retrieval R@1 {DATASET_NAMES[d]}", "retrieval", d, "R@1") for d in ("ucf101", "hmdb51")],
    *[(f"LFT top-1 {DATASET_NAMES[d]}", "lft", d, "top1") for d in ("ucf101", "hmdb51")],
    *[(f"FT top-1 {DATASET_NAMES[d]}", "ft", d, "top1") for d in ("ucf101", "hmdb51")],
    ("localization average mAP ActivityNet", "localization", "activitynet", "average_mAP"),
]


def _config_rows(groups: list[Group]) -> dict[tuple, dict[tuple, Group]]:
    """(method, backbone, set, frames, size, downstream) -> {(task, dataset): group} for downstream groups."""
    rows: dict[tuple, dict[tuple, Group]] = {}
    for g in sorted((g for g in groups if g.task != "pretrain"), key=_order):
        rows.setdefault((*g.config, g.downstream), {})[(g.task, g.dataset)] = g
    return rows


def ablation_table(groups: list[Group]) -> Table:
    """Every pretraining variant (and random init) against the downstream metrics; the paper column is n/a."""
    keys = ["method", "backbone", "pretraining set", "pretraining input", "downstream input"]
    columns = [Column(k, "key") for k in keys]
    columns += [Column(label, "measured") for label, *_ in ABLATION_METRICS]
    columns += [Column("pretraining loss (last epoch)", "measured"), Column("paper", "paper"),
                Column("runs", "text"), Column("note", "text")]
    title = "Ablation: pretraining variants against every downstream metric (%; the loss in nats)"
    table = Table("ablation", title, columns, notes=[
        "The paper's ablation tables are not public (method.md section 11): the paper column is n/a, never filled in.",
        "LFT = the official linear evaluation (BatchNorm statistics updating); FT = full fine-tuning; "
        + PROBE_SENTENCE,
        "pretraining loss (last epoch) = mean loss over the steps of the last pretraining epoch (metrics.jsonl).",
    ])
    rows = _config_rows(groups)
    pre = {g.config: g for g in groups if g.task == "pretrain"}
    configs_with_rows = {k[:5] for k in rows}
    for g in sorted(pre.values(), key=_order):
        if g.config not in configs_with_rows:
            rows[(*g.config, MISSING_MD)] = {}
    order = sorted(rows, key=lambda k: _order(next(iter(rows[k].values()))) if rows[k] else _order(pre[k[:5]]))
    for key in order:
        cells = rows[key]
        any_g = next(iter(cells.values()), None) or pre[key[:5]]
        out = dict(zip(keys, (*_display(any_g), any_g.pretrain_input, key[5])))
        for label, task, ds, metric in ABLATION_METRICS:
            g = cells.get((task, ds))
            out[label] = g.metrics.get(metric) if g else None
        p = pre.get(key[:5])
        out["pretraining loss (last epoch)"] = p.metrics.get("loss_last_epoch") if p else None
        out["paper"] = NA
        out["runs"] = _runs_text(list(cells.values()) + ([p] if p else []))
        out["note"] = _join_notes(*(_measured_note(g, probe_note=False) for g in cells.values()))
        table.rows.append(out)
    return table


def paper_lookup(ref: pd.DataFrame, method: str, backbone: str, pretrain_set: str, frames: int, size: int,
                 finetune_input: str, task: str, dataset: str, metric: str) -> PaperValue | str:
    """The paper's number for one measured cell (project vocabulary), or ``"n/a"`` when the paper has none."""
    m, b, s = METHOD_NAMES.get(method, method), BACKBONE_NAMES.get(backbone, backbone), SET_NAMES.get(pretrain_set,
                                                                                                      pretrain_set)
    ds = DATASET_NAMES.get(dataset, dataset)
    if task in ("ft", "lft") and metric == "top1":
        hit = ref[(ref["table"] == "sota_recognition") & (ref["method"] == m) & (ref["backbone"] == b)
                  & (ref["pretrain"] == s) & (ref["pretrain_input"] == f"{frames}x{size}")
                  & (ref["finetune_input"] == finetune_input) & (ref["protocol"] == PROTOCOLS[task])
                  & (ref["dataset"] == ds)]
    elif task == "retrieval":
        hit = ref[(ref["table"] == "retrieval_table6") & (ref["method"] == m) & (ref["backbone"] == b)
                  & (ref["pretrain"] == s) & (ref["pretrain_input"].map(_paper_size) == str(size))
                  & (ref["dataset"] == ds) & (ref["metric"] == metric)]
    else:
        return NA
    if hit.empty:
        return NA
    return PaperValue(float(hit.iloc[0]["value"]), hit.iloc[0]["source"])


def trimmed_table(groups: list[Group], ref: pd.DataFrame) -> Table:
    """SimCLR and HiCo pretrained on trimmed (k400) vs untrimmed (uk400) Kinetics-400, and the difference."""
    keys = ["method", "backbone", "pretraining input", "downstream input", "metric", "dataset"]
    sets = ("k400", "uk400")
    columns = [Column(k, "key") for k in keys]
    columns += [Column("Kinetics-400 measured", "measured"), Column("untrimmed Kinetics-400 measured", "measured"),
                Column("diff measured", "diff", "Δ measured (untrimmed − trimmed)"),
                Column("Kinetics-400 paper", "paper"), Column("untrimmed Kinetics-400 paper", "paper"),
                Column("diff paper", "diff", "Δ paper (untrimmed − trimmed)"),
                Column("runs", "text"), Column("note", "text")]
    table = Table("trimmed_vs_untrimmed", "Trimmed vs untrimmed pretraining: Kinetics-400 against untrimmed "
                  "Kinetics-400 (%)", columns, notes=[
        "Paper columns: the paper's HiCo rows published for both pretraining sets (state-of-the-art table) and "
        "Table 6 where it matches; the paper's SimCLR trimmed-vs-untrimmed baseline is not public (n/a).",
        PROBE_SENTENCE,
    ])
    metric_label = {"probe": "probe top-1", "retrieval": "retrieval R@1", "lft": "LFT top-1", "ft": "FT top-1",
                    "localization": "localization average mAP"}
    cells: dict[tuple, dict[str, Group]] = {}
    meta: dict[tuple, tuple] = {}
    for g in sorted(groups, key=_order):
        if g.method not in ("simclr", "hico") or g.set not in sets or g.task == "pretrain":
            continue
        metric = HEADLINE[g.task]
        key = (METHOD_NAMES[g.method], BACKBONE_NAMES.get(g.backbone, g.backbone), f"{g.frames}x{g.size}",
               g.downstream, metric_label[g.task], DATASET_NAMES[g.dataset])
        cells.setdefault(key, {})[g.set] = g
        meta[key] = (g.method, g.backbone, g.frames, g.size, g.finetune_input, g.task, g.dataset, metric)
    # The paper's HiCo pairs (both sets published) are always listed.
    sota = ref[ref["table"] == "sota_recognition"]
    by_key: dict[tuple, dict[str, pd.Series]] = {}
    for _, r in sota.iterrows():
        if r["method"] == "HiCo":
            key = (r["method"], r["backbone"], r["pretrain_input"], r["finetune_input"],
                   f"{r['protocol']} top-1", r["dataset"])
            by_key.setdefault(key, {})[r["pretrain"]] = r
    rows: list[tuple[tuple, dict, dict[str, Any]]] = []
    for key, per_set in by_key.items():
        if set(per_set) >= {SET_NAMES["k400"], SET_NAMES["uk400"]}:
            paper = {s: PaperValue(per_set[SET_NAMES[s]]["value"], per_set[SET_NAMES[s]]["source"]) for s in sets}
            rows.append((key, cells.get(key, {}), paper))
    listed = {r[0] for r in rows}
    for key in cells:
        if key in listed:
            continue
        method, backbone, frames, size, ft_in, task, ds, metric = meta[key]
        paper = {s: paper_lookup(ref, method, backbone, s, frames, size, ft_in, task, ds, metric) for s in sets}
        rows.append((key, cells[key], paper))
    for key, per_set, paper in rows:
        out = dict(zip(keys, key))
        mk = per_set.get("k400").metrics.get(HEADLINE[per_set["k400"].task]) if "k400" in per_set else None
        mu = per_set.get("uk400").metrics.get(HEADLINE[per_set["uk400"].task]) if "uk400" in per_set else None
        out["Kinetics-400 measured"], out["untrimmed Kinetics-400 measured"] = mk, mu
        out["diff measured"] = Diff(mu, mk)
        out["Kinetics-400 paper"], out["untrimmed Kinetics-400 paper"] = paper["k400"], paper["uk400"]
        out["diff paper"] = Diff(paper["uk400"], paper["k400"])
        out["runs"] = _runs_text(per_set.values())
        out["note"] = _join_notes(*(_measured_note(g) for g in per_set.values()))
        table.rows.append(out)
    return table


def localization_table(groups: list[Group]) -> Table:
    """Temporal action localization (ActivityNet) per pretrained checkpoint; the paper column is n/a."""
    keys = ["method", "backbone", "pretraining set", "pretraining input", "feature input", "dataset"]
    metrics = [("average mAP", "average_mAP"), ("mAP@0.50", "mAP@0.50"), ("mAP@0.75", "mAP@0.75"),
               ("mAP@0.95", "mAP@0.95")]
    columns = [Column(k, "key") for k in keys] + [Column(label, "measured") for label, _ in metrics]
    columns += [Column("paper", "paper"), Column("runs", "text"), Column("note", "text")]
    table = Table("localization", "Temporal action localization mAP (%) at tIoU 0.5 / 0.75 / 0.95 and averaged "
                  "over 0.5:0.05:0.95", columns, notes=[
        "The paper's localization table, localizer and feature protocol are not public (method.md section 11): "
        "the paper column is n/a.",
    ])
    for g in sorted((g for g in groups if g.task == "localization"), key=_order):
        out = dict(zip(keys, (*_display(g), g.pretrain_input, g.downstream, DATASET_NAMES[g.dataset])))
        for label, metric in metrics:
            out[label] = g.metrics.get(metric)
        out["paper"], out["runs"], out["note"] = NA, _runs_text([g]), _measured_note(g)
        table.rows.append(out)
    return table


def assemble_tables(df: pd.DataFrame, ref: pd.DataFrame) -> dict[str, Table]:
    """All tables from the rows of :func:`collect` and the reference of :func:`load_reference` (no file written)."""
    groups = group_measurements(df)
    return {
        "recognition": recognition_table(groups, ref),
        "retrieval": retrieval_table(groups, ref),
        "ablation": ablation_table(groups),
        "trimmed_vs_untrimmed": trimmed_table(groups, ref),
        "localization": localization_table(groups),
    }


def build_tables(
    eval_files: Iterable[str | os.PathLike],
    pretrain_logs: Iterable[str | os.PathLike] = (),
    reference_csv: str | os.PathLike = REFERENCE_CSV,
    out_dir: str | os.PathLike = "results/tables",
) -> dict[str, pd.DataFrame]:
    """Collect the given metrics files, build the tables and write ``<out_dir>/<name>.{csv,md,sources.csv}``.

    Returns ``{name: the table as written to CSV}`` for the names in :data:`TABLE_NAMES`. Missing inputs give tables
    with what exists (the paper rows are always there).
    """
    tables = assemble_tables(collect(eval_files, pretrain_logs), load_reference(reference_csv))
    return {name: write_table(table, out_dir) for name, table in tables.items()}
