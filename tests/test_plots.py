"""Tests of hico_bench/plots.py: the plotted numbers and the PNG files."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from hico_bench import plots, tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_eval(eval_dir: Path, task: str, dataset: str, metrics: dict, method: str = "hico", pset: str = "uk400",
               seed: int = 0) -> Path:
    run = f"{method}_tiny_{pset}_8x16" + (f"_seed{seed}" if seed else "")
    path = eval_dir / run / f"{task}_{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "run": run, "checkpoint": None,
        "pretrain": {"method": method, "backbone": "tiny", "set": pset, "frames": 8, "size": 16, "seed": seed},
        "task": task, "dataset": dataset, "split": 1, "finetune_input": "8x16", "protocol": {}, "metrics": metrics,
        "seconds": 1.0,
    }))
    return path


def write_log(pretrain_dir: Path, run: str, losses: list[float], unconstrained: bool = False) -> Path:
    steps = list(range(1, len(losses) + 1))
    path = pretrain_dir / run / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{"step": s, "epoch": s / 2, "loss": loss, "loss_vcl": loss, "loss_tcl": None, "lr": 0.1,
                "delta_max": -1.0 if unconstrained else 0.5 * s, "clips_per_s": 10.0, "data_wait_frac": 0.0}
               for s, loss in zip(steps, losses)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


SEEDS = {0: 40.0, 1: 44.0, 2: 51.0}


@pytest.fixture
def results(tmp_path):
    ev, pre = tmp_path / "eval", tmp_path / "pretrain"
    for seed, top1 in SEEDS.items():
        write_eval(ev, "probe", "ucf101", {"top1": top1}, seed=seed)
        write_eval(ev, "retrieval", "ucf101", {f"R@{k}": min(100.0, top1 + k) for k in tables.RECALL_KS}, seed=seed)
        write_log(pre, "hico_tiny_uk400_8x16" + (f"_seed{seed}" if seed else ""), [3.0, 2.0 + seed, 1.0, 0.5])
    write_eval(ev, "probe", "ucf101", {"top1": 30.0}, pset="k400")
    write_eval(ev, "probe", "hmdb51", {"top1": 20.0}, method="simclr")
    write_eval(ev, "probe", "ucf101", {"top1": 10.0}, method="random_init", pset="none")
    write_log(pre, "simclr_tiny_k400_8x16", [4.0, 3.0, 2.5, 2.0], unconstrained=True)
    return ev, pre


def test_seed_average_matches_a_loop():
    a = pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [0.5, 1.0, 1.5, 2.0], "loss": [4.0, 3.0, 2.0, 1.0]})
    b = pd.DataFrame({"step": [1, 2, 4], "epoch": [0.5, 1.0, 2.0], "loss": [5.0, 2.0, 0.0]})
    c = pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [0.5, 1.0, 1.5, 2.0], "loss": [6.0, np.nan, 2.5, 3.0]})
    epoch, mean, std = plots.seed_average([a, b, c], "loss")
    assert epoch.tolist() == [0.5, 2.0]  # step 3 is missing from b, step 2 has a NaN in c
    assert mean.tolist() == pytest.approx([statistics.mean([4, 5, 6]), statistics.mean([1, 0, 3])])
    assert std.tolist() == pytest.approx([statistics.stdev([4, 5, 6]), statistics.stdev([1, 0, 3])])
    _, _, std1 = plots.seed_average([a], "loss")
    assert np.isnan(std1).all()


def test_smooth_is_a_centred_running_mean():
    x = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    got = plots.smooth(x, 3)
    want = [np.mean(x[max(0, i - 1):i + 2]) for i in range(len(x))]
    assert got.tolist() == pytest.approx(want)
    assert plots.smooth(x, 1).tolist() == x.tolist()


def test_loss_curve_is_the_seed_mean(results):
    ev, pre = results
    curves = plots.pretrain_curves(pre, "loss")
    hico = next(c for c in curves if c.method == "hico")
    assert len(hico.runs) == 3
    assert hico.mean.tolist() == pytest.approx([3.0, statistics.mean([2.0, 3.0, 4.0]), 1.0, 0.5])
    fig = plots.curves_figure(curves, "loss", "t")
    assert len(fig.axes) == 2  # one panel per pretraining set
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    assert lines["HiCo (n=3)"].get_ydata().tolist() == pytest.approx(hico.mean.tolist())
    assert lines["HiCo (n=3)"].get_xdata().tolist() == [0.5, 1.0, 1.5, 2.0]


def test_unconstrained_delta_is_named_not_drawn(results):
    ev, pre = results
    fig = plots.curves_figure(plots.pretrain_curves(pre, "delta_max", negative_is_missing=True), "d", "t",
                              empty_note="unconstrained")
    k400, uk400 = fig.axes
    assert k400.get_lines() == [] and any("unconstrained: SimCLR" in t.get_text() for t in k400.texts)
    (line,) = uk400.get_lines()
    assert line.get_ydata().tolist() == [0.5, 1.0, 1.5, 2.0]


def test_ablation_bars_show_seed_means_and_stds(results):
    ev, pre = results
    groups = tables.group_measurements(tables.collect(ev, None))
    fig = plots.ablation_figure(groups)
    ucf_probe = fig.axes[0]
    heights = sorted(round(p.get_height(), 9) for p in ucf_probe.patches)
    assert heights == sorted([30.0, round(statistics.mean(SEEDS.values()), 9)])
    # The error bar of the uk400 bar spans mean ± sample std.
    segs = [seg for coll in ucf_probe.collections for seg in coll.get_segments()]
    spans = sorted(round(abs(s[1][1] - s[0][1]), 9) for s in segs)
    assert round(2 * statistics.stdev(SEEDS.values()), 9) in spans
    assert [line.get_ydata()[0] for line in ucf_probe.get_lines() if line.get_label() == "random init"] == [10.0]
    assert [round(p.get_height(), 9) for p in fig.axes[1].patches] == [20.0]  # SimCLR on HMDB51


def test_retrieval_curve_per_run(results):
    ev, pre = results
    fig = plots.retrieval_figure(tables.group_measurements(tables.collect(ev, None)))
    (ax,) = fig.axes
    (container,) = ax.containers  # one errorbar series
    line = container.lines[0]
    assert line.get_xdata().tolist() == list(tables.RECALL_KS)
    want = [statistics.mean(min(100.0, v + k) for v in SEEDS.values()) for k in tables.RECALL_KS]
    assert line.get_ydata().tolist() == pytest.approx(want)


def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0  # not a blank canvas


def test_make_plots_writes_non_empty_pngs(tmp_path, results):
    ev, pre = results
    paths = plots.make_plots(ev, pre, tmp_path / "plots")
    assert [p.name for p in paths] == [f"{n}.png" for n in plots.PLOT_NAMES]
    for path in paths:
        _check_png(path)
    assert not list((tmp_path / "plots").glob(".tmp-*"))


def test_make_plots_without_inputs_still_writes_every_figure(tmp_path):
    paths = plots.make_plots(tmp_path / "no_eval", None, tmp_path / "plots")
    assert len(paths) == len(plots.PLOT_NAMES)
    for path in paths:
        _check_png(path)
