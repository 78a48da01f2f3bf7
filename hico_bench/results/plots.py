"""Figures of the measured results (PNG, matplotlib's Agg canvas; nothing here is read from the paper).

:func:`make_plots` always writes the four files of :data:`PLOT_NAMES`, so that a workflow can name them as outputs;
a figure whose inputs are not given says "no data yet":

* ``loss_curves.png``: pretraining loss against epoch, one line per run configuration, one panel per pretraining
  set.
* ``delta_max.png``: the clip-distance bound delta_max (s) against epoch, same layout (configurations logging -1,
  i.e. unconstrained sampling, are named in a note instead of drawn).
* ``ablation_bars.png``: probe top-1 and retrieval R@1 (UCF101, HMDB51) per configuration, one bar per pretraining
  set (the seed mean); random init as a dashed line.
* ``retrieval_recall.png``: R@k against k per run configuration (the seed mean), one panel per dataset.

Uncertainty is drawn only where there are several seeds, and each figure says what it draws: a curve over n >= 2
seeds is their step-wise mean (over the steps all of them logged) with a band of ± one sample std; a bar or an R@k
point over n >= 2 seeds has an error bar of the 95% confidence interval of the mean (Student t, n - 1 degrees of
freedom, as in the tables). With one seed there is no band and no error bar. Loss curves are smoothed by a centred
running mean over ~1/50 of the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hico_bench.identity import RANDOM_INIT
from hico_bench.io import atomic_path
from hico_bench.method import VARIANTS, method_order
from hico_bench.results import PLOT_NAMES
from hico_bench.results.collect import as_paths, collect, load_pretrain_metrics, read_identity
from hico_bench.results.groups import (Group, backbone_name, dataset_name, group_measurements, method_cell, order_key,
                                       set_name, set_rank)
from hico_bench.settings import RECALL_KS

__all__ = ["PLOT_NAMES", "make_plots"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]
_SET_COLORS = {"k400": "#4c72b0", "uk400": "#dd8452", "hacs": "#55a868"}
CI_CAPTION = "error bars: 95% confidence interval of the seed mean (Student t), where n ≥ 2 seeds"
NO_CI_CAPTION = "one seed each: no error bars"


def variant_color(method: str) -> str:
    """One colour per method, the same in every figure (the built-in variants in :data:`VARIANTS` order)."""
    i = method_order(method) if method in VARIANTS else len(VARIANTS) + sum(map(ord, method))
    return _PALETTE[i % len(_PALETTE)]


@dataclass
class Curve:
    """One run configuration's training curve averaged over its seeds."""

    method: str
    backbone: str
    set: str
    pretrain_input: str
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


def pretrain_curves(pretrain_logs: Iterable[str | os.PathLike] | None, column: str,
                    negative_is_missing: bool = False) -> list[Curve]:
    """Every run configuration's seed-averaged ``column`` of the given ``metrics.jsonl`` (each with ``run.json``
    beside it; the seeds of a configuration are the runs whose identities share :attr:`RunIdentity.config`).

    ``negative_is_missing``: negative values count as not logged (delta_max = -1 means unconstrained). A
    configuration without any logged value gives a curve with empty arrays.
    """
    by_config: dict[tuple, list[tuple[str, pd.DataFrame]]] = {}
    for path in as_paths(pretrain_logs):
        identity = read_identity(path)
        df = load_pretrain_metrics(path)
        if negative_is_missing:
            df[column] = df[column].where(~(df[column] < 0))
        by_config.setdefault(identity.config, []).append((identity.name, df))
    curves = []
    for (method, backbone, pset, pinput, _external), runs in by_config.items():
        epoch, mean, std = seed_average([df for _, df in runs], column)
        curves.append(Curve(method, backbone, pset, pinput, epoch=epoch, mean=mean, std=std,
                            runs=[r for r, _ in runs]))
    return curves


def _label(method: str, backbone: str, pretrain_input: str, several_configs: bool, external: str = "") -> str:
    name = method_cell(method, external)
    return f"{name} ({backbone_name(backbone)} {pretrain_input})" if several_configs else name


def _no_data(fig: Figure, what: str) -> Figure:
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, f"no data yet: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def curves_figure(curves: list[Curve], ylabel: str, title: str, smooth_frac: float = 0.0,
                  empty_note: str = "nothing logged") -> Figure:
    """One panel per pretraining set, one line per configuration; with n >= 2 seeds a band of ± one sample std
    (and ``(n=N)`` in the legend), with one seed no band.

    Configurations with an empty curve are named in a note under the panel (``empty_note`` says why).
    """
    fig = Figure(figsize=(6.0 * max(1, len({c.set for c in curves})), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    if not curves:
        return _no_data(fig, f"no pretraining log ({title})")
    sets = sorted({c.set for c in curves}, key=set_rank)
    several = len({(c.backbone, c.pretrain_input) for c in curves}) > 1
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    banded = False
    for ax, pset in zip(axes, sets):
        empty = []
        for c in sorted((c for c in curves if c.set == pset), key=lambda c: (method_order(c.method), c.method,
                                                                                c.backbone, c.pretrain_input)):
            label = _label(c.method, c.backbone, c.pretrain_input, several)
            if not len(c.epoch):
                empty.append(label)
                continue
            window = max(1, round(len(c.mean) * smooth_frac))
            mean = smooth(c.mean, window)
            if len(c.runs) > 1:
                label += f" (n={len(c.runs)})"
            color = variant_color(c.method)
            ax.plot(c.epoch, mean, color=color, label=label, linewidth=1.5)
            if len(c.runs) > 1:
                std = smooth(c.std, window)
                ax.fill_between(c.epoch, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
                banded = True
        ax.set_title(set_name(pset))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        if empty:
            ax.text(0.01, 0.01, f"{empty_note}: {', '.join(empty)}", transform=ax.transAxes, fontsize="small",
                    color="gray", va="bottom")
    fig.suptitle(f"{title}; band: ± 1 sample std over seeds" if banded else title)
    return fig


def _groups(eval_files) -> list[Group]:
    return group_measurements(collect(eval_files))


def ablation_figure(groups: list[Group]) -> Figure:
    """Probe top-1 and retrieval R@1 per configuration: rows = metric, columns = dataset, bars = pretraining set
    (the seed mean), error bars = the 95% interval of the mean where n >= 2 seeds."""
    panels = [("probe", "top1", "probe top-1 (%)"), ("retrieval", "R@1", "retrieval R@1 (%)")]
    datasets = ("ucf101", "hmdb51")
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    wanted = [g for g in groups if any(g.task == t and m in g.metrics for t, m, _ in panels) and g.dataset in datasets]
    if not wanted:
        return _no_data(fig, "no probe or retrieval result")
    pretrained = [g for g in wanted if g.method != RANDOM_INIT]
    several = len({(g.backbone, g.pretrain_input) for g in pretrained}) > 1
    configs = sorted({(g.method, g.backbone, g.pretrain_input, g.external) for g in pretrained},
                     key=lambda k: (method_order(k[0]), k[0], k[1], k[2], k[3]))
    sets = sorted({g.set for g in pretrained}, key=set_rank)
    width = 0.8 / max(1, len(sets))
    axes = fig.subplots(len(panels), len(datasets), squeeze=False)
    any_error_bar = False
    for r, (task, metric, ylabel) in enumerate(panels):
        for c, ds in enumerate(datasets):
            ax = axes[r][c]
            cells = {(g.method, g.backbone, g.pretrain_input, g.external, g.set): g.metrics[metric] for g in wanted
                     if g.task == task and g.dataset == ds and metric in g.metrics}
            for j, pset in enumerate(sets):
                xs, heights, ex, ey, errs = [], [], [], [], []
                for i, cfg in enumerate(configs):
                    cell = cells.get((*cfg, pset))
                    if cell is not None:
                        x = i + (j - (len(sets) - 1) / 2) * width
                        xs.append(x)
                        heights.append(cell.value)
                        if cell.n >= 2:
                            ex.append(x), ey.append(cell.value), errs.append(cell.ci95)
                if xs:
                    ax.bar(xs, heights, width=width, label=set_name(pset), color=_SET_COLORS.get(pset, "#999999"))
                if ex:
                    ax.errorbar(ex, ey, yerr=errs, fmt="none", ecolor="black", capsize=3, linewidth=1)
                    any_error_bar = True
            for (method, *_rest), cell in cells.items():
                if method == RANDOM_INIT:
                    ax.axhline(cell.value, color="black", linestyle="--", linewidth=1, label="random init")
            if not cells:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_xlim(-0.5, len(configs) - 0.5)
            ax.set_xticks(range(len(configs)))
            ax.set_xticklabels([_label(m, b, p, several, e) for m, b, p, e in configs], rotation=30, ha="right",
                               fontsize="small")
            ax.set_ylabel(ylabel)
            ax.set_title(dataset_name(ds))
            ax.grid(axis="y", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
    fig.suptitle(f"Ablation (measured; bars: seed means; {CI_CAPTION if any_error_bar else NO_CI_CAPTION})")
    return fig


def retrieval_figure(groups: list[Group]) -> Figure:
    """R@k against k per configuration (the seed mean; error bars = the 95% interval of the mean where n >= 2),
    one panel per dataset."""
    datasets = [d for d in ("ucf101", "hmdb51") if any(g.task == "retrieval" and g.dataset == d for g in groups)]
    fig = Figure(figsize=(6.0 * max(1, len(datasets)), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    if not datasets:
        return _no_data(fig, "no retrieval result")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    any_error_bar = False
    for ax, ds in zip(axes, datasets):
        runs = sorted((g for g in groups if g.task == "retrieval" and g.dataset == ds), key=order_key)
        for i, g in enumerate(runs):
            ks = [k for k in RECALL_KS if f"R@{k}" in g.metrics]
            cells = [g.metrics[f"R@{k}"] for k in ks]
            n = min((c.n for c in cells), default=1)
            label = "; ".join(g.runs) + (f" (n={n})" if n > 1 else "")
            style = {"marker": "o", "label": label, "color": _PALETTE[i % len(_PALETTE)],
                     "linestyle": "--" if g.set == "k400" else "-"}
            if n >= 2:
                ax.errorbar(ks, [c.value for c in cells], yerr=[c.ci95 for c in cells], capsize=3, **style)
                any_error_bar = True
            else:
                ax.plot(ks, [c.value for c in cells], **style)
        ax.set_xscale("log")
        ax.set_xticks(list(RECALL_KS))
        ax.set_xticklabels([str(k) for k in RECALL_KS])
        ax.set_xlabel("k")
        ax.set_ylabel("R@k (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{dataset_name(ds)} (dashed: pretrained on Kinetics-400, solid: other sets)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle(f"Retrieval R@k (measured; seed means; {CI_CAPTION if any_error_bar else NO_CI_CAPTION})")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def make_plots(eval_files: Iterable[str | os.PathLike], pretrain_logs: Iterable[str | os.PathLike],
               out_dir: str | os.PathLike = "results/plots") -> list[Path]:
    """Read exactly the given metrics files and pretraining logs; write the four figures of :data:`PLOT_NAMES` as
    ``<out_dir>/<name>.png`` and return their paths in that order."""
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
