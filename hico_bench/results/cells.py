"""The cells of the result tables, their statistics, and a table's CSV and Markdown forms.

Cells:

* :class:`Measured`: one metric of one run configuration over its pretraining seeds: the mean, the sample standard
  deviation (ddof 1) and the 95% confidence interval of the mean (Student t with n - 1 degrees of freedom,
  half-width ``t_{0.975, n-1} * std / sqrt(n)``); with one seed only the mean (std and interval are NaN).
* :class:`PaperValue`: a number read from the paper's published tables, with the file and line it came from.
* :class:`Diff`: ``a - b`` of two value cells (missing when either side is).
* :class:`Comparison`: Welch's comparison of two measured cells with at least two seeds each (the ablation table's
  "differs from HiCo" mark): the two means differ when Welch's 95% interval of their difference excludes 0.
* The strings :data:`NA` (the paper has no counterpart) and ``None`` (not measured / not reported).

A :class:`Table` is columns + rows of cells; :func:`table_frame` is its CSV form, :func:`table_markdown` its Markdown
form and :func:`sources_frame` the files behind each of its numbers; :func:`write_table` writes the three.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from hico_bench.io import atomic_path, write_text

#: The confidence level of every interval of the tables.
LEVEL = 0.95
MISSING_MD = "–"
NA = "n/a"
#: Appended to a measured Markdown cell whose mean differs from HiCo's (see :class:`Comparison`).
MARK = "*"


def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (``t_{(1+level)/2, df}``)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


# ----------------------------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Measured:
    """One measured cell: a metric over the seeds of one run configuration (values in seed order)."""

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
        """The mean over seeds (exactly rounded sum / n)."""
        return math.fsum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        """The sample standard deviation (ddof 1); NaN with one seed."""
        if len(self.values) < 2:
            return math.nan
        m = self.value
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (len(self.values) - 1))

    @property
    def ci95(self) -> float:
        """The half-width of the 95% confidence interval of the mean, ``t_{0.975, n-1} * std / sqrt(n)``; NaN with
        one seed."""
        if self.n < 2:
            return math.nan
        return t_quantile(self.n - 1) * self.std / math.sqrt(self.n)

    @property
    def ci_low(self) -> float:
        return self.value - self.ci95

    @property
    def ci_high(self) -> float:
        return self.value + self.ci95


@dataclass(frozen=True)
class PaperValue:
    """A number of the paper's tables; ``source`` = ``<reference file>:<line>``."""

    value: float
    source: str
    origin = "paper"

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,)


@dataclass(frozen=True)
class Diff:
    """``a - b`` of two value cells (either may be missing: then the difference is too)."""

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


@dataclass(frozen=True)
class Comparison:
    """Welch's comparison of the means of two measured cells ``a`` and ``b``, each over n >= 2 seeds.

    With ``v = std^2 / n`` of each side: the difference ``a.value - b.value`` has the standard error
    ``se = sqrt(v_a + v_b)`` and the Welch-Satterthwaite degrees of freedom
    ``df = se^4 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1))``; its 95% interval is ``diff ± t_{0.975, df} * se``.
    :attr:`differs` says that this interval excludes 0, i.e. ``|diff| > half_width``. When both sides have zero
    spread (``se == 0``) the interval is the single point ``diff``, and the means differ when ``diff != 0``.
    Build one with :func:`compare`, which gives None when either side has fewer than two seeds.
    """

    a: Measured
    b: Measured

    @property
    def diff(self) -> float:
        return self.a.value - self.b.value

    @property
    def se(self) -> float:
        return math.sqrt(self.a.std ** 2 / self.a.n + self.b.std ** 2 / self.b.n)

    @property
    def df(self) -> float:
        """Welch-Satterthwaite degrees of freedom (NaN when ``se == 0``)."""
        va, vb = self.a.std ** 2 / self.a.n, self.b.std ** 2 / self.b.n
        denominator = va ** 2 / (self.a.n - 1) + vb ** 2 / (self.b.n - 1)
        return (va + vb) ** 2 / denominator if denominator > 0 else math.nan

    @property
    def half_width(self) -> float:
        se = self.se
        return 0.0 if se == 0 else t_quantile(self.df) * se

    @property
    def differs(self) -> bool:
        return abs(self.diff) > self.half_width

    @property
    def sources(self) -> tuple[str, ...]:
        return self.a.sources + self.b.sources


def compare(a: Any, b: Any) -> Comparison | None:
    """Welch's comparison of two measured cells, or None unless both are measured over at least two seeds."""
    if isinstance(a, Measured) and isinstance(b, Measured) and a.n >= 2 and b.n >= 2:
        return Comparison(a, b)
    return None


# ----------------------------------------------------------------------------------------------------- tables
@dataclass
class Column:
    """A table column. ``kind``: ``key`` / ``text`` (strings), ``measured``, ``paper``, ``diff``, or ``flag`` (a
    :class:`Comparison` marking the measured column labelled ``of``: a boolean CSV column, and :data:`MARK` after
    that column's Markdown cell instead of a Markdown column of its own)."""

    label: str
    kind: str
    md_label: str | None = None
    of: str | None = None


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


MEASURED_SUFFIXES = ("mean", "std", "ci95", "n")


def format_measured(cell: Measured) -> str:
    """``mean`` with one seed, ``mean ± std [low, high]`` (95% interval of the mean) with several; two decimals."""
    if cell.n < 2:
        return f"{cell.value:.2f}"
    return f"{cell.value:.2f} ± {cell.std:.2f} [{cell.ci_low:.2f}, {cell.ci_high:.2f}]"


def cell_markdown(col: Column, cell: Any, flag: Any = None) -> str:
    """The Markdown text of one cell (``flag``: the :class:`Comparison` of a flag column marking it, if any)."""
    if cell is None or cell == "":
        return MISSING_MD
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Measured):
        text = format_measured(cell)
        return f"{text} {MARK}" if isinstance(flag, Comparison) and flag.differs else text
    if isinstance(cell, PaperValue):
        return f"{cell.value:.1f}"
    if isinstance(cell, Diff):
        return MISSING_MD if cell.value is None else f"{cell.value:+.2f}"
    raise TypeError(f"unexpected cell {cell!r} in column {col.label!r}")


def _row_sources(table: Table, row: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for col in table.columns:
        cell = row.get(col.label)
        if isinstance(cell, (Measured, PaperValue)):
            out.extend(s for s in cell.sources if s not in out)
    return out


def csv_columns(col: Column) -> list[str]:
    """The CSV columns of one table column: ``<label> mean/std/ci95/n`` for a measured one, else ``<label>``."""
    if col.kind == "measured":
        return [f"{col.label} {suffix}" for suffix in MEASURED_SUFFIXES]
    return [col.label]


def table_frame(table: Table) -> pd.DataFrame:
    """The CSV form: measured cells as ``mean`` / ``std`` / ``ci95`` (half-width) / ``n`` columns, paper cells as the
    number or ``n/a``, differences as numbers, flags as booleans (empty when not compared), then ``source`` (the
    row's files, ``;``-separated)."""
    records = []
    for row in table.rows:
        rec: dict[str, Any] = {}
        for col in table.columns:
            cell = row.get(col.label)
            if col.kind == "measured":
                m = cell if isinstance(cell, Measured) else None
                rec[f"{col.label} mean"] = m.value if m else math.nan
                rec[f"{col.label} std"] = m.std if m else math.nan
                rec[f"{col.label} ci95"] = m.ci95 if m else math.nan
                rec[f"{col.label} n"] = m.n if m else pd.NA
            elif col.kind == "paper":
                rec[col.label] = cell.value if isinstance(cell, PaperValue) else (NA if cell == NA else math.nan)
            elif col.kind == "diff":
                v = cell.value if isinstance(cell, Diff) else None
                rec[col.label] = math.nan if v is None else v
            elif col.kind == "flag":
                rec[col.label] = cell.differs if isinstance(cell, Comparison) else pd.NA
            else:
                rec[col.label] = "" if cell is None else str(cell)
        rec["source"] = ";".join(_row_sources(table, row))
        records.append(rec)
    cols = [name for col in table.columns for name in csv_columns(col)]
    df = pd.DataFrame.from_records(records, columns=cols + ["source"])
    for col in table.columns:
        if col.kind == "measured":
            df[f"{col.label} n"] = df[f"{col.label} n"].astype("Int64")
            for suffix in ("mean", "std", "ci95"):
                df[f"{col.label} {suffix}"] = df[f"{col.label} {suffix}"].astype("float64")
        elif col.kind == "diff":
            df[col.label] = df[col.label].astype("float64")
        elif col.kind == "flag":
            df[col.label] = df[col.label].astype("boolean")
    return df


def sources_frame(table: Table) -> pd.DataFrame:
    """One line per number of the table: ``row`` (0-based), ``column``, ``value`` (a measured cell's mean),
    ``origin``, ``sources`` (``;``)."""
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
    "Cells: *measured* = this project's number: with one pretraining seed the number alone; with n ≥ 2 seeds "
    "`mean ± sd [low, high]`: the mean over seeds, the sample standard deviation (ddof 1) and the 95% confidence "
    "interval of the mean (Student t with n − 1 degrees of freedom: mean ± t(0.975, n − 1) · sd / √n); the CSV "
    "has `<column> mean`, `std`, `ci95` (the interval's half-width) and `n`. *paper* = read from the paper's "
    "published tables (hico_paper_results.csv), never computed. *diff* / Δ = the difference of the two means the "
    "column names (measured − paper unless it says otherwise). `–` = not measured (or not reported by the paper's "
    "row); `n/a` = the paper has no counterpart. The files behind every number: `{name}.sources.csv`."
)


def table_markdown(table: Table) -> str:
    """The Markdown form: a title, the table (flag columns shown as marks), the notes and the legend."""
    shown = [c for c in table.columns if c.kind != "flag"]
    flags = {c.of: c.label for c in table.columns if c.kind == "flag"}
    header = [c.md_label or c.label for c in shown]
    body = [[cell_markdown(c, row.get(c.label), row.get(flags[c.label]) if c.label in flags else None)
             for c in shown] for row in table.rows]
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
