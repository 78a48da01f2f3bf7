"""hico_bench/results/cells.py: the statistics of a cell (mean, sd, Student-t interval, Welch) and the rendering."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hico_bench.results import cells as K


def measured(*values: float) -> K.Measured:
    return K.Measured(tuple(values), tuple(f"f{i}" for i in range(len(values))), ("r",), tuple(range(len(values))))


def test_mean_std_and_interval_against_hand_computed_values():
    m = measured(40.0, 42.5, 47.25)
    # By hand: mean 43.25, squared deviations 10.5625 + 0.5625 + 16 = 27.125, variance 13.5625 (ddof 1).
    assert m.value == 43.25 and m.n == 3
    assert m.std == pytest.approx(math.sqrt(13.5625), abs=1e-12) == pytest.approx(statistics.stdev(m.values))
    # t(0.975, 2) = 4.3027 (any t table); the half-width is t * sd / sqrt(n).
    assert K.t_quantile(2) == pytest.approx(4.3027, abs=1e-4)
    assert K.t_quantile(2) == stats.t.ppf(0.975, 2)
    half = stats.t.ppf(0.975, 2) * math.sqrt(13.5625) / math.sqrt(3)
    assert m.ci95 == pytest.approx(half, rel=1e-12)
    assert (m.ci_low, m.ci_high) == pytest.approx((43.25 - half, 43.25 + half), rel=1e-12)
    # scipy's own interval of the mean agrees.
    low, high = stats.t.interval(0.95, 2, loc=43.25, scale=stats.sem(m.values))
    assert (m.ci_low, m.ci_high) == pytest.approx((low, high), rel=1e-12)


def test_two_seeds_against_one():
    two = measured(70.0, 74.0)
    # mean 72, sd = sqrt(8), t(0.975, 1) = 12.706.
    assert two.std == pytest.approx(math.sqrt(8.0))
    assert two.ci95 == pytest.approx(stats.t.ppf(0.975, 1) * math.sqrt(8.0) / math.sqrt(2))
    assert K.t_quantile(1) == pytest.approx(12.7062, abs=1e-4)
    one = measured(5.0)
    assert one.value == 5.0 and math.isnan(one.std) and math.isnan(one.ci95)
    assert K.format_measured(one) == "5.00"
    assert K.format_measured(two) == f"72.00 ± {math.sqrt(8):.2f} [{two.ci_low:.2f}, {two.ci_high:.2f}]"


def test_welch_comparison_against_hand_computed_values():
    a, b = measured(10.0, 12.0, 14.0), measured(20.0, 21.0, 25.0)
    c = K.compare(a, b)
    # By hand: variances 4 and 7, v = 4/3 and 7/3, se^2 = 11/3, df = (11/3)^2 / ((4/3)^2/2 + (7/3)^2/2) = 242/65.
    assert c.diff == -10.0
    assert c.se == pytest.approx(math.sqrt(11 / 3))
    assert c.df == pytest.approx(242 / 65)
    assert c.half_width == pytest.approx(stats.t.ppf(0.975, 242 / 65) * math.sqrt(11 / 3))
    assert c.differs
    # The same interval as scipy's Welch test.
    ci = stats.ttest_ind(a.values, b.values, equal_var=False).confidence_interval(0.95)
    assert (c.diff - c.half_width, c.diff + c.half_width) == pytest.approx((ci.low, ci.high))
    # Means 12 and 13, both variances 4: df = 4, half-width t(0.975, 4) * sqrt(8/3) = 4.53 > 1: not different.
    near = K.compare(a, measured(11.0, 15.0, 13.0))
    assert near.df == pytest.approx(4.0) and near.half_width == pytest.approx(2.7764451 * math.sqrt(8 / 3))
    assert not near.differs


def test_welch_mark_is_scipys_welch_test_at_5_percent():
    rng = np.random.default_rng(0)
    decided = set()
    for _ in range(300):
        na, nb = rng.integers(2, 6, size=2)
        a = rng.normal(0, rng.uniform(0.1, 3), na).round(3)
        b = rng.normal(rng.uniform(-3, 3), rng.uniform(0.1, 3), nb).round(3)
        c = K.compare(measured(*a), measured(*b))
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
        if abs(p - 0.05) > 1e-9:
            assert c.differs == (p < 0.05)
            decided.add(c.differs)
    assert decided == {True, False}


def test_comparison_needs_two_seeds_on_each_side_and_handles_zero_spread():
    assert K.compare(measured(1.0), measured(1.0, 2.0)) is None
    assert K.compare(measured(1.0, 2.0), measured(3.0)) is None
    assert K.compare(None, measured(1.0, 2.0)) is None
    assert K.compare(measured(1.0, 2.0), "n/a") is None
    same = K.compare(measured(5.0, 5.0), measured(5.0, 5.0))
    assert same.half_width == 0.0 and not same.differs
    assert K.compare(measured(5.0, 5.0), measured(6.0, 6.0)).differs


def test_cell_formatting():
    m = measured(1.0, 2.0, 4.0)
    col = K.Column("x", "measured")
    assert K.cell_markdown(col, m) == (f"{7 / 3:.2f} ± {statistics.stdev([1.0, 2.0, 4.0]):.2f} "
                                       f"[{m.ci_low:.2f}, {m.ci_high:.2f}]")
    assert K.cell_markdown(col, measured(5.0)) == "5.00"
    assert K.cell_markdown(col, None) == "–" and K.cell_markdown(col, "") == "–"
    assert K.cell_markdown(K.Column("p", "paper"), K.PaperValue(77.6, "f:2")) == "77.6"
    assert K.cell_markdown(K.Column("d", "diff"), K.Diff(m, K.PaperValue(1.0, "f:2"))) == "+1.33"
    assert K.cell_markdown(K.Column("d", "diff"), K.Diff(m, K.NA)) == "–"
    flag = K.compare(measured(1.0, 2.0), measured(10.0, 11.0))
    assert K.cell_markdown(col, measured(1.0, 2.0), flag).endswith(" *")
    assert not K.cell_markdown(col, measured(1.0, 2.0), K.compare(measured(1.0, 2.0), measured(1.0, 2.5))).endswith("*")


def test_markdown_table_escapes_and_aligns():
    text = K.markdown_table(["a", "b|c"], [["1", "x|y"], ["–", "n/a"]])
    assert text.splitlines() == ["| a | b\\|c |", "|---|---|", "| 1 | x\\|y |", "| – | n/a |"]


def _table() -> K.Table:
    cols = [K.Column("run", "key"), K.Column("top1", "measured"), K.Column("top1 vs", "flag", of="top1"),
            K.Column("paper", "paper"), K.Column("diff", "diff", "Δ")]
    rows = [
        {"run": "a", "top1": measured(1.0, 2.0), "top1 vs": K.compare(measured(1.0, 2.0), measured(10.0, 11.0)),
         "paper": K.PaperValue(3.0, "ref:2"), "diff": K.Diff(measured(1.0, 2.0), K.PaperValue(3.0, "ref:2"))},
        {"run": "b", "top1": measured(4.0), "top1 vs": None, "paper": K.NA, "diff": K.Diff(measured(4.0), K.NA)},
        {"run": "c", "top1": None, "paper": None},
    ]
    return K.Table("t", "T", cols, rows, notes=["a note"])


def test_csv_form_has_mean_std_ci95_n_and_boolean_flags():
    frame = K.table_frame(_table())
    assert list(frame.columns) == ["run", "top1 mean", "top1 std", "top1 ci95", "top1 n", "top1 vs", "paper",
                                   "diff", "source"]
    a, b, c = frame.to_dict("records")
    assert a["top1 mean"] == 1.5 and a["top1 ci95"] == measured(1.0, 2.0).ci95 and a["top1 n"] == 2
    flags = frame["top1 vs"].tolist()
    assert flags[0] is True and pd.isna(flags[1]) and pd.isna(flags[2])
    assert a["paper"] == 3.0 and a["diff"] == -1.5 and a["source"] == "f0;f1;ref:2"
    assert math.isnan(b["top1 std"]) and math.isnan(b["top1 ci95"]) and b["top1 n"] == 1
    assert pd.isna(b["top1 vs"]) and b["paper"] == "n/a" and math.isnan(b["diff"])
    assert math.isnan(c["top1 mean"]) and pd.isna(c["top1 n"]) and math.isnan(c["paper"])
    assert str(frame["top1 vs"].dtype) == "boolean" and str(frame["top1 n"].dtype) == "Int64"


def test_markdown_form_hides_flag_columns_and_marks_cells(tmp_path):
    text = K.table_markdown(_table())
    lines = text.splitlines()
    assert lines[0] == "# T"
    assert lines[2] == "| run | top1 | paper | Δ |"
    assert lines[4].startswith("| a | 1.50 ± 0.71 [") and lines[4].endswith("] * | 3.0 | -1.50 |")
    assert lines[5] == "| b | 4.00 | n/a | – |"
    assert lines[6] == "| c | – | – | – |"
    assert "- a note" in lines and "t.sources.csv" in text and "Student t" in text
    frame = K.write_table(_table(), tmp_path)
    assert (tmp_path / "t.md").read_text() == text
    back = pd.read_csv(tmp_path / "t.csv")
    assert back["top1 mean"].tolist()[:2] == frame["top1 mean"].tolist()[:2]
    src = pd.read_csv(tmp_path / "t.sources.csv")
    assert set(src["column"]) == {"top1", "paper", "diff"}
    assert not list(tmp_path.glob(".tmp-*"))
