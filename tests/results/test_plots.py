"""hico_bench/results/plots.py: the plotted numbers, what uncertainty is drawn, and the PNG files."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from scipy import stats

from hico_bench.results import PLOT_NAMES
from hico_bench.results import plots as P
from hico_bench.results.collect import collect
from hico_bench.results.groups import group_measurements
from hico_bench.settings import RECALL_KS
from tests.results.fixtures import run, write_eval, write_log

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = {0: 40.0, 1: 44.0, 2: 51.0}


@pytest.fixture
def results(tmp_path):
    """Three seeds of HiCo (uk400) and single runs of the others: ``(eval files, pretraining logs)``."""
    ev, pre = tmp_path / "eval", tmp_path / "pretrain"
    files, logs = [], []
    for seed, top1 in SEEDS.items():
        files.append(write_eval(ev, "probe", "ucf101", {"top1": top1}, seed=seed))
        files.append(write_eval(ev, "retrieval", "ucf101", {f"R@{k}": min(100.0, top1 + k) for k in RECALL_KS},
                                seed=seed))
        logs.append(write_log(pre, run(seed=seed), [3.0, 2.0 + seed, 1.0, 0.5]))
    files.append(write_eval(ev, "probe", "ucf101", {"top1": 30.0}, pset="k400"))
    files.append(write_eval(ev, "retrieval", "ucf101", {f"R@{k}": 10.0 + k for k in RECALL_KS}, pset="k400"))
    files.append(write_eval(ev, "probe", "hmdb51", {"top1": 20.0}, method="simclr"))
    files.append(write_eval(ev, "probe", "ucf101", {"top1": 10.0}, method="random_init"))
    logs.append(write_log(pre, run("simclr", pset="k400"), [4.0, 3.0, 2.5, 2.0], unconstrained=True))
    return files, logs


def groups(files):
    return group_measurements(collect(files))


def error_bar_spans(ax) -> list[float]:
    """The heights of the vertical error-bar segments drawn on ``ax``."""
    segs = [seg for coll in ax.collections for seg in getattr(coll, "get_segments", lambda: [])()]
    return sorted(round(abs(s[1][1] - s[0][1]), 9) for s in segs if len(s) == 2)


def test_seed_average_matches_a_loop():
    a = pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [0.5, 1.0, 1.5, 2.0], "loss": [4.0, 3.0, 2.0, 1.0]})
    b = pd.DataFrame({"step": [1, 2, 4], "epoch": [0.5, 1.0, 2.0], "loss": [5.0, 2.0, 0.0]})
    c = pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [0.5, 1.0, 1.5, 2.0], "loss": [6.0, np.nan, 2.5, 3.0]})
    epoch, mean, std = P.seed_average([a, b, c], "loss")
    assert epoch.tolist() == [0.5, 2.0]  # step 3 is missing from b, step 2 has a NaN in c
    assert mean.tolist() == pytest.approx([statistics.mean([4, 5, 6]), statistics.mean([1, 0, 3])])
    assert std.tolist() == pytest.approx([statistics.stdev([4, 5, 6]), statistics.stdev([1, 0, 3])])
    _, _, std1 = P.seed_average([a], "loss")
    assert np.isnan(std1).all()


def test_smooth_is_a_centred_running_mean():
    x = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    got = P.smooth(x, 3)
    want = [np.mean(x[max(0, i - 1):i + 2]) for i in range(len(x))]
    assert got.tolist() == pytest.approx(want)
    assert P.smooth(x, 1).tolist() == x.tolist()


def test_loss_curve_is_the_seed_mean_with_a_band_only_for_several_seeds(results):
    _files, logs = results
    curves = P.pretrain_curves(logs, "loss")
    hico = next(c for c in curves if c.method == "hico")
    assert hico.runs == ["hico_tiny_uk400_8x16", "hico_tiny_uk400_8x16_seed1", "hico_tiny_uk400_8x16_seed2"]
    assert hico.mean.tolist() == pytest.approx([3.0, statistics.mean([2.0, 3.0, 4.0]), 1.0, 0.5])
    fig = P.curves_figure(curves, "loss", "t")
    k400, uk400 = fig.axes  # one panel per pretraining set
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    assert lines["HiCo (n=3)"].get_ydata().tolist() == pytest.approx(hico.mean.tolist())
    assert lines["HiCo (n=3)"].get_xdata().tolist() == [0.5, 1.0, 1.5, 2.0]
    (band,) = uk400.collections  # ± one sample std around the three seeds' mean
    ys = band.get_paths()[0].vertices[:, 1]
    assert max(ys) == pytest.approx(max(hico.mean + hico.std)) and min(ys) == pytest.approx(min(hico.mean - hico.std))
    assert len(k400.collections) == 0 and "SimCLR" in lines  # one seed: no band, no "(n=1)"
    assert "band: ± 1 sample std over seeds" in fig._suptitle.get_text()
    single = P.curves_figure([c for c in curves if c.method == "simclr"], "loss", "t")
    assert single._suptitle.get_text() == "t"


def test_unconstrained_delta_is_named_not_drawn(results):
    _files, logs = results
    fig = P.curves_figure(P.pretrain_curves(logs, "delta_max", negative_is_missing=True), "d", "t",
                          empty_note="unconstrained")
    k400, uk400 = fig.axes
    assert k400.get_lines() == [] and any("unconstrained: SimCLR" in t.get_text() for t in k400.texts)
    (line,) = uk400.get_lines()
    assert line.get_ydata().tolist() == [0.5, 1.0, 1.5, 2.0]


def test_ablation_bars_show_seed_means_and_intervals_only_for_several_seeds(results):
    files, _logs = results
    fig = P.ablation_figure(groups(files))
    ucf_probe, hmdb_probe = fig.axes[0], fig.axes[1]
    heights = sorted(round(p.get_height(), 9) for p in ucf_probe.patches)
    assert heights == sorted([30.0, round(statistics.mean(SEEDS.values()), 9)])
    # One error bar, on the three-seed bar: mean ± t(0.975, 2) * sd / sqrt(3); none on the one-seed bar.
    half = stats.t.ppf(0.975, 2) * statistics.stdev(SEEDS.values()) / math.sqrt(3)
    assert error_bar_spans(ucf_probe) == [round(2 * half, 9)]
    assert [line.get_ydata()[0] for line in ucf_probe.get_lines() if line.get_label() == "random init"] == [10.0]
    assert [round(p.get_height(), 9) for p in hmdb_probe.patches] == [20.0]  # SimCLR on HMDB51, one seed
    assert error_bar_spans(hmdb_probe) == []
    assert "95% confidence interval" in fig._suptitle.get_text()


def test_one_seed_each_draws_no_error_bars(tmp_path):
    files = [write_eval(tmp_path, "probe", "ucf101", {"top1": 40.0}),
             write_eval(tmp_path, "retrieval", "ucf101", {f"R@{k}": 10.0 + k for k in RECALL_KS})]
    fig = P.ablation_figure(groups(files))
    assert all(error_bar_spans(ax) == [] for ax in fig.axes)
    assert "one seed each: no error bars" in fig._suptitle.get_text()
    fig = P.retrieval_figure(groups(files))
    (ax,) = fig.axes
    assert len(ax.containers) == 0 and error_bar_spans(ax) == []
    (line,) = ax.get_lines()
    assert line.get_ydata().tolist() == [10.0 + k for k in RECALL_KS]
    assert "one seed each: no error bars" in fig._suptitle.get_text()


def test_retrieval_curve_per_configuration(results):
    files, _logs = results
    fig = P.retrieval_figure(groups(files))
    (ax,) = fig.axes
    (container,) = ax.containers  # the three-seed configuration has error bars, the one-seed one a plain line
    line = container.lines[0]
    assert line.get_xdata().tolist() == list(RECALL_KS)
    per_k = [[min(100.0, v + k) for v in SEEDS.values()] for k in RECALL_KS]
    assert line.get_ydata().tolist() == pytest.approx([statistics.mean(v) for v in per_k])
    halves = [stats.t.ppf(0.975, 2) * statistics.stdev(v) / math.sqrt(3) for v in per_k]
    (bars,) = container.lines[2]
    spans = [abs(s[1][1] - s[0][1]) for s in bars.get_segments()]
    assert spans == pytest.approx([2 * h for h in halves])
    assert container.get_label() == "hico_tiny_uk400_8x16 (n=3)"
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == [
        "hico_tiny_k400_8x16"]


def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0  # not a blank canvas


def test_make_plots_writes_non_empty_pngs(tmp_path, results):
    files, logs = results
    paths = P.make_plots(files, logs, tmp_path / "plots")
    assert [p.name for p in paths] == [f"{n}.png" for n in PLOT_NAMES] == [f"{n}.png" for n in P.PLOT_NAMES]
    for path in paths:
        _check_png(path)
    assert not list((tmp_path / "plots").glob(".tmp-*"))


def test_make_plots_without_inputs_still_writes_every_figure(tmp_path):
    paths = P.make_plots([], None, tmp_path / "plots")
    assert len(paths) == len(PLOT_NAMES)
    for path in paths:
        _check_png(path)
