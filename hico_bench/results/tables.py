"""Result tables: this project's measurements beside the paper's published numbers.

Inputs: exactly the evaluation metrics files and pretraining logs given (:mod:`hico_bench.results.collect`), and the
paper's numbers (:data:`REFERENCE_CSV`). :func:`build_tables` writes, for each table ``<name>`` of
:data:`TABLE_NAMES`: ``<name>.csv`` (numbers), ``<name>.md`` (formatted) and ``<name>.sources.csv`` (one line per
number: its row, column, value, origin and the files it was read from).

* ``recognition``: every row of the paper's state-of-the-art table, with the measured ``lft`` / ``ft`` / ``probe``
  rows beside it.
* ``retrieval``: every row of the paper's Table 6, with the measured retrieval R@k rows.
* ``ablation``: every run configuration against every downstream metric (one column per task of
  :data:`hico_bench.evaluate.tasks.TASKS` and dataset that some file reports, in that order; the localization average
  mAP; the pretraining loss), with the differences to HiCo larger than their Welch interval marked.
* ``trimmed_vs_untrimmed``: SimCLR and HiCo pretrained on Kinetics-400 against untrimmed Kinetics-400.
* ``localization``: ActivityNet temporal action localization.

Every table has the columns ``pretraining input`` and ``downstream input``. Runs are known by their identity records
(:mod:`hico_bench.results.groups`): the seeds of one configuration are one row; an external checkpoint is a row of
its own (``HiCo (external: official_hico)``). Cells and their statistics: :mod:`hico_bench.results.cells`; the
matching of a measurement to the paper's numbers: :func:`hico_bench.results.reference.paper_rows`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable

import pandas as pd

from hico_bench.evaluate.tasks import TASKS
from hico_bench.identity import RANDOM_INIT
from hico_bench.results import TABLE_NAMES
from hico_bench.results.cells import MISSING_MD, NA, Column, Diff, PaperValue, Table, compare, write_table
from hico_bench.results.collect import LOCALIZATION, LOCALIZATION_DATASET, PRETRAIN, collect, headline
from hico_bench.results.groups import (Group, dataset_name, group_measurements, join_notes, order_key, runs_text,
                                       set_name)
from hico_bench.results.reference import (PAPER_ROW, RECOGNITION, REFERENCE_CSV, RETRIEVAL, load_reference,
                                          paper_row_key, paper_rows)
from hico_bench.settings import DOWNSTREAM_DATASETS, RECALL_KS

__all__ = ["TABLE_NAMES", "REFERENCE_CSV", "build_tables", "assemble_tables", "recognition_table",
           "retrieval_table", "ablation_table", "trimmed_table", "localization_table"]

#: The protocol column of the recognition table, per task.
PROTOCOL_NAMES = {"lft": "LFT", "ft": "FT", "probe": "probe"}
FROZEN = {"LFT": "✓", "FT": "✗", "probe": "✓ (strict probe)"}
PROBE_NOTE = "strict linear probe (frozen backbone); no paper counterpart: the paper's frozen numbers are LFT"
PROBE_SENTENCE = "probe = " + PROBE_NOTE + "."
LOCALIZATION_COLUMN = "localization average mAP"
LOSS_COLUMN = "pretraining loss (last epoch)"
#: The run the ablation table compares every other row with.
BASELINE = "hico"
FLAG_SUFFIX = "differs from HiCo"


def _dataset_rank(dataset: str) -> tuple:
    order = (*DOWNSTREAM_DATASETS, LOCALIZATION_DATASET)
    return (order.index(dataset) if dataset in order else len(order), dataset)


def metric_label(task: str) -> str:
    """A task's headline metric as the tables name it: the task's ``column`` (``FT top-1``, ``retrieval R@1``)."""
    return LOCALIZATION_COLUMN if task == LOCALIZATION else TASKS[task].column


def measured_note(group: Group, probe_note: bool = True) -> str:
    """What a reader must know about a measured group: the strict probe, random init, external, other splits."""
    notes = []
    if group.task == "probe" and probe_note:
        notes.append(PROBE_NOTE)
    if group.method == RANDOM_INIT:
        notes.append("random initialisation, no pretraining")
    if group.external:
        notes.append(f"external checkpoint {group.external} (not pretrained by this project)")
    if group.split not in ("", "1"):
        notes.append(f"measured on splits {group.split} (the paper: split 1)")
    return join_notes(*notes)


def _paper_cell(prow: dict[str, pd.Series] | None, key: str) -> PaperValue | str | None:
    """The paper's number ``key`` of a paper row; None when the row exists but lacks it; n/a without a row."""
    if prow is None:
        return NA
    p = prow.get(key)
    return PaperValue(p["value"], p["source"]) if p is not None else None


def _match(ref: pd.DataFrame, group: Group) -> tuple | None:
    """The paper row (:func:`paper_row_key`) a measured row sits in, from any of its datasets; None without one."""
    rows = paper_rows(ref, group, any_dataset=True)
    return paper_row_key(rows.iloc[0]) if len(rows) else None


# ----------------------------------------------------------------------------------------------------- recognition
def recognition_table(groups: list[Group], ref: pd.DataFrame) -> Table:
    """The paper's state-of-the-art recognition table with the measured ft / lft / probe rows beside it."""
    datasets = ("ucf101", "hmdb51")
    keys = ["method", "backbone", "pretraining set", "pretraining input", "downstream input", "protocol", "frozen"]
    columns = [Column(k, "key") for k in keys]
    for ds in datasets:
        name = dataset_name(ds)
        columns += [Column(f"{name} paper", "paper"), Column(f"{name} measured", "measured"),
                    Column(f"{name} diff", "diff", f"{name} Δ")]
    columns += [Column("runs", "text"), Column("note", "text")]
    table = Table("recognition", "Action recognition top-1 (%): UCF101 and HMDB51", columns, notes=[
        "Paper rows: every row of the paper's state-of-the-art table (LFT = linear head trained, backbone frozen; "
        "FT = full fine-tuning), split 1; the downstream input of a paper row is its fine-tuning input.",
        "Measured rows: top-1 of `lft` (the official linear evaluation, BatchNorm statistics updating), `ft` and "
        "`probe`. A measured row sits in the paper row with the same method, backbone, pretraining set, pretraining "
        "input, downstream input and protocol (an external checkpoint counts as its method); otherwise its paper "
        "columns are n/a. " + PROBE_SENTENCE,
    ])

    measured: dict[tuple, dict[str, Group]] = {}
    for g in sorted(groups, key=order_key):
        if g.task in PROTOCOL_NAMES and g.dataset in datasets and "top1" in g.metrics:
            measured.setdefault((g.config, g.downstream_input, g.task, g.split), {})[g.dataset] = g
    paper_rows_by_key: dict[tuple, dict[str, pd.Series]] = {}
    for _, r in ref[ref["table"] == RECOGNITION].iterrows():
        paper_rows_by_key.setdefault(paper_row_key(r), {})[r["dataset"].lower()] = r

    def row(paper_key: tuple | None, per_ds: dict[str, Group] | None) -> dict[str, Any]:
        prow = paper_rows_by_key[paper_key] if paper_key is not None else None
        g0 = next(iter(per_ds.values())) if per_ds else None
        if g0 is not None:
            protocol = PROTOCOL_NAMES[g0.task]
            key_cells = (*g0.display, g0.pretrain_input, g0.downstream_input, protocol)
        else:
            key_cells = paper_key
            protocol = paper_key[5]
        out = dict(zip(keys, (*key_cells, FROZEN.get(protocol, MISSING_MD))))
        notes = []
        for ds in datasets:
            name = dataset_name(ds)
            pcell = _paper_cell(prow, ds)
            g = (per_ds or {}).get(ds)
            mcell = g.metrics["top1"] if g is not None else None
            out[f"{name} paper"], out[f"{name} measured"] = pcell, mcell
            out[f"{name} diff"] = Diff(mcell, pcell)
            if prow is not None and ds in prow:
                notes.append(prow[ds]["note"])
            if g is not None:
                notes.append(measured_note(g))
        out["runs"] = runs_text((per_ds or {}).values())
        out["note"] = join_notes(*notes)
        return out

    placed: dict[tuple, list[dict[str, Group]]] = {}
    rest = []
    for per_ds in measured.values():
        key = _match(ref, next(iter(per_ds.values())))
        if key is None:
            rest.append(per_ds)
        else:
            placed.setdefault(key, []).append(per_ds)
    for key in paper_rows_by_key:
        for per_ds in placed.get(key) or [None]:
            table.rows.append(row(key, per_ds))
    proto_rank = {"lft": 0, "ft": 1, "probe": 2}
    rest.sort(key=lambda per_ds: (proto_rank[next(iter(per_ds.values())).task],
                                  order_key(next(iter(per_ds.values())))))
    for per_ds in rest:
        table.rows.append(row(None, per_ds))
    return table


# ----------------------------------------------------------------------------------------------------- retrieval
def retrieval_table(groups: list[Group], ref: pd.DataFrame) -> Table:
    """The paper's Table 6 (nearest-neighbour retrieval R@k) with the measured retrieval rows beside it."""
    keys = ["method", "backbone", "pretraining set", "pretraining input", "downstream input", "dataset"]
    columns = [Column(k, "key") for k in keys]
    for k in RECALL_KS:
        columns += [Column(f"R@{k} paper", "paper"), Column(f"R@{k} measured", "measured"),
                    Column(f"R@{k} diff", "diff", f"R@{k} Δ")]
    columns += [Column("runs", "text"), Column("note", "text")]
    table = Table("retrieval", "Nearest-neighbour video retrieval R@k (%): UCF101 and HMDB51", columns, notes=[
        "Paper rows: every row of the paper's Table 6 (R@1/5/10/20; the paper reports no R@50). The paper gives the "
        "pretraining input as ?x112: measured rows match a paper row on method, backbone, pretraining set and input "
        "size (an external checkpoint counts as its method), and show their own pretraining input.",
        "Measured: " + TASKS["retrieval"].protocol + " (R@k likewise for the k nearest; the "
        "paper's protocol is not public: there is no retrieval code in the official repository).",
    ])
    paper_rows_by_key: dict[tuple, dict[str, pd.Series]] = {}
    for _, r in ref[ref["table"] == RETRIEVAL].iterrows():
        paper_rows_by_key.setdefault((*paper_row_key(r), r["dataset"].lower()), {})[r["metric"]] = r
    measured = sorted((g for g in groups if g.task == "retrieval" and g.dataset in ("ucf101", "hmdb51")),
                      key=order_key)

    def row(key: tuple | None, g: Group | None) -> dict[str, Any]:
        prow = paper_rows_by_key[key] if key is not None else None
        if g is not None:
            key_cells = (*g.display, g.pretrain_input, g.downstream_input or MISSING_MD, dataset_name(g.dataset))
        else:
            method, backbone, pset, pinput, ds = key
            key_cells = (method, backbone, pset, pinput, MISSING_MD, dataset_name(ds))
        out = dict(zip(keys, key_cells))
        notes = []
        for k in RECALL_KS:
            pcell = _paper_cell(prow, f"R@{k}")
            mcell = g.metrics.get(f"R@{k}") if g is not None else None
            out[f"R@{k} paper"], out[f"R@{k} measured"], out[f"R@{k} diff"] = pcell, mcell, Diff(mcell, pcell)
            if prow is not None and f"R@{k}" in prow:
                notes.append(prow[f"R@{k}"]["note"])
        if g is not None and prow is not None:
            notes.append(f"paper's pretraining input: {key[3]}")
        if g is not None:
            notes.append(measured_note(g))
        out["runs"] = runs_text([g] if g else [])
        out["note"] = join_notes(*notes)
        return out

    placed: dict[tuple, list[Group]] = {}
    rest = []
    for g in measured:
        rows = paper_rows(ref, g)
        if len(rows):
            placed.setdefault((*paper_row_key(rows.iloc[0]), g.dataset), []).append(g)
        else:
            rest.append(g)
    for key in paper_rows_by_key:
        for g in placed.get(key) or [None]:
            table.rows.append(row(key, g))
    for g in rest:
        table.rows.append(row(None, g))
    return table


# ----------------------------------------------------------------------------------------------------- ablation
def ablation_metrics(groups: Iterable[Group]) -> list[tuple[str, str, str, str]]:
    """The ablation table's downstream columns ``(label, task, dataset, metric)``: ``<task column> <dataset>`` for
    every task of :data:`TASKS` (in that order) and dataset that some group reports, then the localization average
    mAP when reported. A task nothing reports gives no column."""
    present = {(g.task, g.dataset) for g in groups if g.task != PRETRAIN}
    out = []
    for name, task in TASKS.items():
        for ds in sorted({d for t, d in present if t == name}, key=_dataset_rank):
            out.append((f"{task.column} {dataset_name(ds)}", name, ds, task.headline))
    for ds in sorted({d for t, d in present if t == LOCALIZATION}, key=_dataset_rank):
        out.append((f"{LOCALIZATION_COLUMN} {dataset_name(ds)}", LOCALIZATION, ds, headline(LOCALIZATION)))
    return out


def _protocol_notes(metrics: list[tuple[str, str, str, str]]) -> list[str]:
    notes = []
    for name in dict.fromkeys(task for _, task, _, _ in metrics):
        datasets = ", ".join(dataset_name(ds) for _, task, ds, _ in metrics if task == name)
        if name == LOCALIZATION:
            text = ("average of the mAP over tIoU 0.5:0.05:0.95 on the validation subset, from the light localizer "
                    "(a linear snippet classifier) on frozen snippet features; the paper's localizer is not public")
        else:
            text = TASKS[name].protocol or TASKS[name].help
        notes.append(f"{metric_label(name)} ({datasets}): {text}.")
    return notes


def ablation_table(groups: list[Group]) -> Table:
    """Every run configuration against the downstream metrics; differences to HiCo beyond their interval marked."""
    keys = ["method", "backbone", "pretraining set", "pretraining input", "downstream input"]
    metrics = ablation_metrics(groups)
    pre = {g.config: g for g in groups if g.task == PRETRAIN}
    has_loss = any("loss_last_epoch" in g.metrics for g in pre.values())
    columns = [Column(k, "key") for k in keys]
    for label, *_ in metrics:
        columns += [Column(label, "measured"), Column(f"{label} {FLAG_SUFFIX}", "flag", of=label)]
    if has_loss:
        columns.append(Column(LOSS_COLUMN, "measured"))
    columns += [Column("paper", "paper"), Column("runs", "text"), Column("note", "text")]
    title = "Ablation: pretraining variants against every downstream metric (%; the loss in nats)"
    notes = ["The paper's ablation tables are not public (they could not be read from any public source): the "
             "paper column is n/a, never filled in."]
    notes += _protocol_notes(metrics)
    if has_loss:
        notes.append(f"{LOSS_COLUMN} = mean loss over the steps of the last pretraining epoch (metrics.jsonl).")
    notes.append(
        f"`*` after a measured cell (CSV: `<column> {FLAG_SUFFIX}` = True): the row's mean differs from the mean of "
        "the HiCo row (method hico, not external) with the same backbone, pretraining set, pretraining input and "
        "downstream input by more than its interval: Welch's 95% interval of the difference of the two means, "
        "diff ± t(0.975, df) · √(sd₁²/n₁ + sd₂²/n₂) with the Welch–Satterthwaite df, excludes 0. Tested only where "
        "both rows have n ≥ 2 seeds (the CSV column is empty otherwise, and on the HiCo row itself); the pretraining "
        "loss, a different function for each variant, is not compared.")
    table = Table("ablation", title, columns, notes=notes)

    rows: dict[tuple, dict[tuple, Group]] = {}
    for g in sorted((g for g in groups if g.task != PRETRAIN), key=order_key):
        rows.setdefault((g.config, g.downstream), {})[(g.task, g.dataset)] = g
    with_rows = {config for config, _ in rows}
    for g in sorted(pre.values(), key=order_key):
        if g.config not in with_rows:
            rows[(g.config, MISSING_MD)] = {}
    order = sorted(rows, key=lambda k: order_key(next(iter(rows[k].values())) if rows[k] else pre[k[0]]))

    def first(key: tuple) -> Group:
        return next(iter(rows[key].values()), None) or pre[key[0]]

    baseline = {}
    for key in order:
        g = first(key)
        if g.method == BASELINE and not g.external:
            baseline[(g.backbone, g.set, g.pretrain_input, key[1])] = rows[key]
    for key in order:
        cells, any_g = rows[key], first(key)
        out = dict(zip(keys, (*any_g.display, any_g.pretrain_input, key[1])))
        hico = None
        if not (any_g.method == BASELINE and not any_g.external):
            hico = baseline.get((any_g.backbone, any_g.set, any_g.pretrain_input, key[1]))
        for label, task, ds, metric in metrics:
            g = cells.get((task, ds))
            out[label] = g.metrics.get(metric) if g else None
            h = (hico or {}).get((task, ds))
            out[f"{label} {FLAG_SUFFIX}"] = compare(out[label], h.metrics.get(metric) if h else None)
        p = pre.get(key[0])
        if has_loss:
            out[LOSS_COLUMN] = p.metrics.get("loss_last_epoch") if p else None
        out["paper"] = NA
        out["runs"] = runs_text(list(cells.values()) + ([p] if p else []))
        out["note"] = join_notes(*(measured_note(g, probe_note=False) for g in [*cells.values(), *([p] if p else [])]))
        table.rows.append(out)
    return table


# ----------------------------------------------------------------------------------------------------- trimmed
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
        "Paper columns: the paper's HiCo rows published for both pretraining sets (state-of-the-art table, always "
        "listed) and, for other measured rows, the paper's number for each set where one matches (as in the "
        "recognition and retrieval tables); the paper's SimCLR trimmed-vs-untrimmed baseline is not public (n/a).",
        "Δ measured = difference of the two means (the interval of each mean is in its cell).",
        PROBE_SENTENCE,
    ])
    # Measured rows: one per configuration but the set, task, dataset, downstream input and splits.
    measured: dict[tuple, dict[str, Group]] = {}
    for g in sorted(groups, key=order_key):
        if g.method not in ("simclr", "hico") or g.set not in sets or g.task == PRETRAIN:
            continue
        key = (g.method, g.external, g.backbone, g.pretrain_input, g.downstream_input, g.split, g.task, g.dataset)
        measured.setdefault(key, {})[g.set] = g

    def paper_value(g: Group) -> PaperValue | str:
        hit = paper_rows(ref, g)
        hit = hit[hit["measured_metric"] == headline(g.task)]
        return PaperValue(float(hit.iloc[0]["value"]), hit.iloc[0]["source"]) if len(hit) else NA

    # The paper's HiCo rows published for both sets are always listed.
    pair_cols = [c for c in PAPER_ROW[RECOGNITION] if c != "pretrain"] + ["dataset"]
    pairs: dict[tuple, dict[str, pd.Series]] = {}
    sota = ref[(ref["table"] == RECOGNITION) & (ref["method"] == "HiCo")]
    for _, r in sota.iterrows():
        pairs.setdefault(tuple(r[c] for c in pair_cols), {})[r["pretrain"]] = r
    pairs = {k: v for k, v in pairs.items() if set(v) >= {set_name(s) for s in sets}}

    placed: dict[tuple, list[dict[str, Group]]] = {}
    rest = []
    for per_set in measured.values():
        paper = {}
        for s in sets:
            g = per_set.get(s) or dataclasses.replace(next(iter(per_set.values())), set=s, metrics={})
            paper[s] = paper_value(g)
        pair = None
        for g in per_set.values():
            hit = paper_rows(ref, g)
            hit = hit[hit["measured_metric"] == headline(g.task)]
            if len(hit):
                candidate = tuple(hit.iloc[0][c] for c in pair_cols)
                pair = candidate if candidate in pairs else pair
        if pair is None:
            rest.append((per_set, paper))
        else:
            placed.setdefault(pair, []).append(per_set)

    def row(per_set: dict[str, Group], paper: dict[str, Any], pair: tuple | None) -> dict[str, Any]:
        if per_set:
            g = next(iter(per_set.values()))
            key_cells = (g.display[0], g.display[1], g.pretrain_input, g.downstream, metric_label(g.task),
                         dataset_name(g.dataset))
        else:
            method, backbone, pinput, finput, protocol, ds = pair
            key_cells = (method, backbone, pinput, finput, f"{protocol} top-1", ds)
        out = dict(zip(keys, key_cells))
        mk, mu = ((per_set[s].metrics.get(headline(per_set[s].task)) if s in per_set else None) for s in sets)
        out["Kinetics-400 measured"], out["untrimmed Kinetics-400 measured"] = mk, mu
        out["diff measured"] = Diff(mu, mk)
        out["Kinetics-400 paper"], out["untrimmed Kinetics-400 paper"] = paper["k400"], paper["uk400"]
        out["diff paper"] = Diff(paper["uk400"], paper["k400"])
        out["runs"] = runs_text(per_set.values())
        out["note"] = join_notes(*(measured_note(g) for g in per_set.values()))
        return out

    for pair, per_set_by_name in pairs.items():
        paper = {s: PaperValue(per_set_by_name[set_name(s)]["value"], per_set_by_name[set_name(s)]["source"])
                 for s in sets}
        for per_set in placed.get(pair) or [{}]:
            table.rows.append(row(per_set, paper, pair))
    for per_set, paper in rest:
        table.rows.append(row(per_set, paper, None))
    return table


# ----------------------------------------------------------------------------------------------------- localization
def localization_table(groups: list[Group]) -> Table:
    """Temporal action localization (ActivityNet) per evaluated checkpoint; the paper column is n/a."""
    keys = ["method", "backbone", "pretraining set", "pretraining input", "downstream input", "dataset"]
    metrics = [("average mAP", "average_mAP"), ("mAP@0.50", "mAP@0.50"), ("mAP@0.75", "mAP@0.75"),
               ("mAP@0.95", "mAP@0.95")]
    columns = [Column(k, "key") for k in keys] + [Column(label, "measured") for label, _ in metrics]
    columns += [Column("paper", "paper"), Column("runs", "text"), Column("note", "text")]
    table = Table("localization", "Temporal action localization mAP (%) at tIoU 0.5 / 0.75 / 0.95 and averaged "
                  "over 0.5:0.05:0.95", columns, notes=[
        "The paper's localization table, localizer and feature protocol are not public (the official code has "
        "no localization): the paper column is n/a.",
        "downstream input = the clip geometry of the snippet features the localizer reads.",
    ])
    for g in sorted((g for g in groups if g.task == LOCALIZATION), key=order_key):
        out = dict(zip(keys, (*g.display, g.pretrain_input, g.downstream, dataset_name(g.dataset))))
        for label, metric in metrics:
            out[label] = g.metrics.get(metric)
        out["paper"], out["runs"], out["note"] = NA, runs_text([g]), measured_note(g)
        table.rows.append(out)
    return table


# ----------------------------------------------------------------------------------------------------- all
BUILDERS: dict[str, Callable[[list[Group], pd.DataFrame], Table]] = {
    "recognition": recognition_table,
    "retrieval": retrieval_table,
    "ablation": lambda groups, ref: ablation_table(groups),
    "trimmed_vs_untrimmed": trimmed_table,
    "localization": lambda groups, ref: localization_table(groups),
}
"""The builder of each table of :data:`TABLE_NAMES`, in that order."""


def assemble_tables(df: pd.DataFrame, ref: pd.DataFrame) -> dict[str, Table]:
    """All tables from the rows of :func:`~hico_bench.results.collect.collect` and the reference of
    :func:`~hico_bench.results.reference.load_reference` (no file written)."""
    groups = group_measurements(df)
    return {name: build(groups, ref) for name, build in BUILDERS.items()}


def build_tables(
    eval_files: Iterable[str | os.PathLike],
    pretrain_logs: Iterable[str | os.PathLike] = (),
    reference_csv: str | os.PathLike = REFERENCE_CSV,
    out_dir: str | os.PathLike = "results/tables",
) -> dict[str, pd.DataFrame]:
    """Read exactly the given metrics files and pretraining logs, build the tables and write
    ``<out_dir>/<name>.{csv,md,sources.csv}`` for every name of :data:`TABLE_NAMES`.

    Returns ``{name: the table as written to CSV}``. Missing measurements give tables with what exists (the paper
    rows are always there).
    """
    tables = assemble_tables(collect(eval_files, pretrain_logs), load_reference(reference_csv))
    return {name: write_table(table, out_dir) for name, table in tables.items()}
