"""Figures of the measured results (PNG, matplotlib's Agg canvas; nothing here is read from the paper).

:func:`make_plots` always writes the same four files, so that a workflow can name them as outputs; a figure whose
inputs do not exist yet says "no data yet":

* ``loss_curves.png``: pretraining loss against epoch, one line per variant, one panel per pretraining set.
* ``delta_max.png``: the clip-distance bound delta_max (s) against epoch, same layout (variants logging -1,
  i.e. unconstrained sampling, are named in a note instead of drawn).
* ``ablation_bars.png``: probe top-1 and retrieval R@1 (UCF101, HMDB51) per variant, one bar per pretraining set,
  error bars = sample std over seeds; random init as a dashed line.
* ``retrieval_recall.png``: R@k against k per run (seeds averaged, error bars = std), one panel per dataset.

Several seeds of a variant (runs ``..._seedN``) are averaged step by step over the steps all of them logged; the
band around a curve is ± one sample std. Loss curves are smoothed by a centred running mean over ~1/50 of the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hico_bench import tables
from hico_bench.io import atomic_path

PLOT_NAMES = ("loss_curves", "delta_max", "ablation_bars", "retrieval_recall")
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]
_SET_COLORS = {"k400": "#4c72b0", "uk400": "#dd8452"}


def variant_color(method: str) -> str:
    """One colour per variant, the same in every figure."""
    order = list(tables.VARIANT_ORDER)
    i = order.index(method) if method in order else len(order) + sum(map(ord, method))
    return _PALETTE[i % len(_PALETTE)]


@dataclass
class Curve:
    """One variant's training curve averaged over seeds."""

    method: str
    backbone: str
    set: str
    frames: int
    size: int
    epoch: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # NaN with a single seed
    runs: list[str]


def seed_average(logs: Sequence[pd.DataFrame], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epoch, mean, std)`` of ``column`` over the steps every log has (std: sample std, NaN with one log).

    The epoch of a step is the first log's. Steps where any log has a missing value are dropped.
    """
    common = None
    for df in logs:
        steps = set(df.loc[df[column].notna(), "step"].astype(int))
        common = steps if common is None else common & steps
    steps = sorted(common or ())
    if not steps:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    stacked = np.stack([df.drop_duplicates("step", keep="last").set_index("step").loc[steps, column].to_numpy(float)
                        for df in logs])
    epoch = logs[0].drop_duplicates("step", keep="last").set_index("step").loc[steps, "epoch"].to_numpy(float)
    std = stacked.std(axis=0, ddof=1) if len(logs) > 1 else np.full(len(steps), np.nan)
    return epoch, stacked.mean(axis=0), std


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean over ``window`` points (fewer at the ends)."""
    if window <= 1 or len(values) == 0:
        return np.asarray(values, dtype=float)
    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()


def pretrain_curves(pretrain_logs, column: str, negative_is_missing: bool = False) -> list[Curve]:
    """Every variant's seed-averaged ``column`` of the given ``metrics.jsonl`` (each with ``run.json`` beside it).

    ``negative_is_missing``: negative values count as not logged (delta_max = -1 means unconstrained). A variant
    without any logged value gives a curve with empty arrays.
    """
    by_config: dict[tuple, list[tuple[str, pd.DataFrame]]] = {}
    for path in sorted(Path(p) for p in pretrain_logs):
        f = tables.run_fields(path)
        key = (f["method"], f["backbone"], f["set"], f["frames"], f["size"])
        df = tables.load_pretrain_metrics(path)
        if negative_is_missing:
            df[column] = df[column].where(~(df[column] < 0))
        by_config.setdefault(key, []).append((path.parent.name, df))
    curves = []
    for key, runs in by_config.items():
        epoch, mean, std = seed_average([df for _, df in runs], column)
        curves.append(Curve(*key, epoch=epoch, mean=mean, std=std, runs=[r for r, _ in runs]))
    return curves


def _label(method: str, backbone: str, frames: int, size: int, several_configs: bool) -> str:
    name = tables.METHOD_NAMES.get(method, method)
    return f"{name} ({tables.BACKBONE_NAMES.get(backbone, backbone)} {frames}x{size})" if several_configs else name


def _sort_key(method: str) -> tuple:
    order = tables.VARIANT_ORDER
    return (order.index(method) if method in order else len(order) + (method == "random_init"), method)


def _no_data(fig: Figure, what: str) -> Figure:
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, f"no data yet: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def curves_figure(curves: list[Curve], ylabel: str, title: str, smooth_frac: float = 0.0,
                  empty_note: str = "nothing logged") -> Figure:
    """One panel per pretraining set, one line per variant (band = ± std over seeds).

    Variants with an empty curve are named in a note under the panel (``empty_note`` says why).
    """
    fig = Figure(figsize=(6.0 * max(1, len({c.set for c in curves})), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    if not curves:
        return _no_data(fig, f"no pretraining log ({title})")
    sets = sorted({c.set for c in curves}, key=lambda s: (tables.SET_ORDER.index(s) if s in tables.SET_ORDER else 9, s))
    several = len({(c.backbone, c.frames, c.size) for c in curves}) > 1
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    for ax, pset in zip(axes, sets):
        empty = []
        for c in sorted((c for c in curves if c.set == pset), key=lambda c: (_sort_key(c.method), c.backbone)):
            if not len(c.epoch):
                empty.append(_label(c.method, c.backbone, c.frames, c.size, several))
                continue
            window = max(1, int(round(len(c.mean) * smooth_frac)))
            mean = smooth(c.mean, window)
            label = _label(c.method, c.backbone, c.frames, c.size, several)
            if len(c.runs) > 1:
                label += f" (n={len(c.runs)})"
            color = variant_color(c.method)
            ax.plot(c.epoch, mean, color=color, label=label, linewidth=1.5)
            if len(c.runs) > 1:
                std = smooth(c.std, window)
                ax.fill_between(c.epoch, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        ax.set_title(tables.SET_NAMES.get(pset, pset))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        if empty:
            ax.text(0.01, 0.01, f"{empty_note}: {', '.join(empty)}", transform=ax.transAxes, fontsize="small",
                    color="gray", va="bottom")
    fig.suptitle(title)
    return fig


def _groups(eval_files) -> list[tables.Group]:
    return tables.group_measurements(tables.collect(eval_files))


def ablation_figure(groups: list[tables.Group]) -> Figure:
    """Probe top-1 and retrieval R@1 per variant: rows = metric, columns = dataset, bars = pretraining set."""
    panels = [("probe", "top1", "probe top-1 (%)"), ("retrieval", "R@1", "retrieval R@1 (%)")]
    datasets = ("ucf101", "hmdb51")
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    wanted = [g for g in groups if any(g.task == t and m in g.metrics for t, m, _ in panels) and g.dataset in datasets]
    if not wanted:
        return _no_data(fig, "no probe or retrieval result")
    several = len({(g.backbone, g.frames, g.size) for g in wanted if g.method != "random_init"}) > 1
    configs = sorted({(g.method, g.backbone, g.frames, g.size) for g in wanted if g.method != "random_init"},
                     key=lambda k: (_sort_key(k[0]), k[1:]))
    sets = [s for s in ("k400", "uk400") if any(g.set == s for g in wanted)]
    sets += sorted({g.set for g in wanted if g.set not in sets and g.method != "random_init"})
    width = 0.8 / max(1, len(sets))
    axes = fig.subplots(len(panels), len(datasets), squeeze=False)
    for r, (task, metric, ylabel) in enumerate(panels):
        for c, ds in enumerate(datasets):
            ax = axes[r][c]
            cells = {(g.method, g.backbone, g.frames, g.size, g.set): g.metrics[metric] for g in wanted
                     if g.task == task and g.dataset == ds and metric in g.metrics}
            for j, pset in enumerate(sets):
                xs, heights, errs = [], [], []
                for i, cfg in enumerate(configs):
                    cell = cells.get((*cfg, pset))
                    if cell is not None:
                        xs.append(i + (j - (len(sets) - 1) / 2) * width)
                        heights.append(cell.value)
                        errs.append(0.0 if cell.n < 2 else cell.std)
                if xs:
                    ax.bar(xs, heights, width=width, yerr=errs, capsize=3, label=tables.SET_NAMES.get(pset, pset),
                           color=_SET_COLORS.get(pset, "#999999"))
            for (method, *_rest), cell in cells.items():
                if method == "random_init":
                    ax.axhline(cell.value, color="black", linestyle="--", linewidth=1, label="random init")
            if not cells:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_xlim(-0.5, len(configs) - 0.5)
            ax.set_xticks(range(len(configs)))
            ax.set_xticklabels([_label(m, b, f, s, several) for m, b, f, s in configs], rotation=30, ha="right",
                               fontsize="small")
            ax.set_ylabel(ylabel)
            ax.set_title(tables.DATASET_NAMES[ds])
            ax.grid(axis="y", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
    fig.suptitle("Ablation (measured; error bars: sample std over seeds)")
    return fig


def retrieval_figure(groups: list[tables.Group]) -> Figure:
    """R@k against k per run (seed mean, error bars = std), one panel per dataset."""
    datasets = [d for d in ("ucf101", "hmdb51") if any(g.task == "retrieval" and g.dataset == d for g in groups)]
    fig = Figure(figsize=(6.0 * max(1, len(datasets)), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    if not datasets:
        return _no_data(fig, "no retrieval result")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets):
        runs = sorted((g for g in groups if g.task == "retrieval" and g.dataset == ds), key=tables._order)
        for i, g in enumerate(runs):
            ks = [k for k in tables.RECALL_KS if f"R@{k}" in g.metrics]
            cells = [g.metrics[f"R@{k}"] for k in ks]
            errs = [0.0 if c.n < 2 else c.std for c in cells]
            label = "; ".join(g.runs) + (f" (n={cells[0].n})" if cells and cells[0].n > 1 else "")
            ax.errorbar(ks, [c.value for c in cells], yerr=errs, marker="o", capsize=3, label=label,
                        color=_PALETTE[i % len(_PALETTE)], linestyle="--" if g.set == "k400" else "-")
        ax.set_xscale("log")
        ax.set_xticks(list(tables.RECALL_KS))
        ax.set_xticklabels([str(k) for k in tables.RECALL_KS])
        ax.set_xlabel("k")
        ax.set_ylabel("R@k (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{tables.DATASET_NAMES[ds]} (dashed: Kinetics-400, solid: untrimmed)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def make_plots(eval_files, pretrain_logs, out_dir: str | os.PathLike = "results/plots") -> list[Path]:
    """Write the four figures of :data:`PLOT_NAMES` as ``<out_dir>/<name>.png``; return their paths in that order."""
    out_dir = Path(out_dir)
    groups = _groups(eval_files)
    figures = {
        "loss_curves": curves_figure(pretrain_curves(pretrain_logs, "loss"), "loss", "Pretraining loss (measured)",
                                     smooth_frac=0.02),
        "delta_max": curves_figure(pretrain_curves(pretrain_logs, "delta_max", negative_is_missing=True),
                                   "delta_max (s)", "Clip distance bound delta_max during pretraining",
                                   empty_note="unconstrained (clips anywhere in the video)"),
        "ablation_bars": ablation_figure(groups),
        "retrieval_recall": retrieval_figure(groups),
    }
    return [save_figure(figures[name], out_dir / f"{name}.png") for name in PLOT_NAMES]
