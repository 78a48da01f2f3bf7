"""hico_bench/results/tables.py on fixture metrics files (the formats written by the evaluation stages)."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from hico_bench.cli import main as cli_main
from hico_bench.errors import UserError
from hico_bench.evaluate.tasks import TASKS, Task
from hico_bench.results import TABLE_NAMES
from hico_bench.results import tables as T
from hico_bench.results.cells import compare
from hico_bench.results.collect import collect, metric_name
from hico_bench.results.reference import load_reference
from hico_bench.settings import Section
from tests.results.fixtures import run, write_eval, write_log

SEED_TOP1 = [40.0, 42.5, 47.25]


def paper_value(**where) -> tuple[float, int]:
    """Brute-force read of the reference file: the value and its 1-based line (header = line 1)."""
    with open(T.REFERENCE_CSV, newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), 2):
            if all(row[k] == v for k, v in where.items()):
                return float(row["value"]), lineno
    raise KeyError(where)


def paper_groups(table: str) -> dict[tuple, dict[str, float]]:
    keys = ("method", "backbone", "pretrain", "pretrain_input", "finetune_input", "protocol")
    out: dict[tuple, dict[str, float]] = {}
    with open(T.REFERENCE_CSV, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["table"] == table:
                out.setdefault(tuple(row[k] for k in keys), {})[f"{row['dataset']} {row['metric']}"] = \
                    float(row["value"])
    return out


@pytest.fixture
def results(tmp_path):
    """A small but complete set of results: ``(eval files, pretraining logs, {name: file})``."""
    ev, pre = tmp_path / "eval", tmp_path / "pretrain"
    files: dict[str, Path] = {}
    # A run matching a paper row exactly (HiCo, R3D-18, UK400, 8x112 -> 16x112).
    r3d = run(backbone="r3d18", pretrain_input="8x112")
    files["r3d_lft_ucf"] = write_eval(ev, "lft", "ucf101", {"top1": 70.0, "top5": 90.0}, r3d,
                                      downstream_input="16x112")
    files["r3d_ret_ucf"] = write_eval(ev, "retrieval", "ucf101",
                                      {"R@1": 60.5, "R@5": 70.0, "R@10": 75.0, "R@20": 80.0, "R@50": 90.0}, r3d,
                                      downstream_input="16x112")
    # The tiny backbone, three seeds, every task.
    logs = []
    for seed, top1 in enumerate(SEED_TOP1):
        tiny = run(seed=seed)
        files[f"probe_ucf_{seed}"] = write_eval(ev, "probe", "ucf101", {"top1": top1, "top5": 80.0}, tiny)
        files[f"lft_ucf_{seed}"] = write_eval(ev, "lft", "ucf101", {"top1": top1 + 1}, tiny)
        files[f"ret_ucf_{seed}"] = write_eval(ev, "retrieval", "ucf101",
                                              {"R@1": top1 - 10, "R@5": 50.0, "R@10": 60.0, "R@20": 70.0,
                                               "R@50": 80.0}, tiny)
        files[f"loc_{seed}"] = write_eval(ev, "localization", "activitynet",
                                          {"average_mAP": 10.0 + seed, "mAP@0.5": 20.0, "mAP@0.75": 8.0,
                                           "mAP@0.95": 1.0 + seed, "mAP_per_tiou": {"0.50": 20.0}}, tiny,
                                          split=None)
        logs.append(write_log(pre, tiny, [3.0, 2.0, 1.0, 0.5 + seed], iters=2))
    files["hico_k400_probe"] = write_eval(ev, "probe", "ucf101", {"top1": 30.0}, pset="k400")
    files["simclr_uk_probe"] = write_eval(ev, "probe", "ucf101", {"top1": 35.0}, method="simclr")
    files["simclr_k_probe"] = write_eval(ev, "probe", "ucf101", {"top1": 33.0}, method="simclr", pset="k400")
    files["rand_ft"] = write_eval(ev, "ft", "ucf101", {"top1": 20.0}, method="random_init")
    logs.append(write_log(pre, run("simclr"), [4.0, 3.0], iters=1, tcl=False))
    return list(files.values()), logs, files


def build(tmp_path, eval_files, logs=(), name="tables"):
    out = tmp_path / name
    return out, T.build_tables(eval_files, logs, T.REFERENCE_CSV, out)


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    for key, value in where.items():
        mask &= df[key.replace("_", " ")] == value
    return df[mask]


# ----------------------------------------------------------------------------------------------------- general
def test_builders_cover_the_table_names():
    assert tuple(T.BUILDERS) == TABLE_NAMES == T.TABLE_NAMES


def test_missing_inputs_still_write_every_table(tmp_path):
    out, frames = build(tmp_path, [], None)
    for name in TABLE_NAMES:
        for suffix in (".csv", ".md", ".sources.csv"):
            assert (out / f"{name}{suffix}").is_file()
    assert frames["ablation"].empty and frames["localization"].empty
    assert "–" in (out / "recognition.md").read_text()
    assert not list(out.glob(".tmp-*"))


def test_every_table_has_the_input_columns(tmp_path, results):
    _out, frames = build(tmp_path, *results[:2])
    for name, frame in frames.items():
        assert {"pretraining input", "downstream input"} <= set(frame.columns), name
    rand = select(frames["recognition"], method="random init").iloc[0]
    assert rand["pretraining input"] == "none" and rand["pretraining set"] == "none"
    assert rand["downstream input"] == "8x16"


def test_only_the_given_files_appear(tmp_path, results):
    eval_files, logs, _files = results
    leftover = write_eval(tmp_path / "eval", "probe", "hmdb51", {"top1": 12.0}, method="vcl_fixed")
    out, _frames = build(tmp_path, eval_files, logs)
    for name in TABLE_NAMES:
        text = (out / f"{name}.csv").read_text() + (out / f"{name}.md").read_text()
        assert "VCL (fixed δ)" not in text and str(leftover) not in text
    _out2, frames2 = build(tmp_path, [*eval_files, leftover], logs, name="with_leftover")
    assert "VCL (fixed δ)" in set(frames2["ablation"]["method"])


def test_two_files_for_one_seed_are_a_user_error(tmp_path):
    first = write_eval(tmp_path / "eval", "ft", "ucf101", {"top1": 50.0})
    second = tmp_path / "copy" / "ft_ucf101.json"
    second.parent.mkdir()
    second.write_text(first.read_text())
    with pytest.raises(UserError, match="keep one of them") as info:
        build(tmp_path, [first, second])
    assert str(first) in str(info.value) and str(second) in str(info.value)


def test_the_cli_verb_writes_the_tables(tmp_path, results):
    eval_files, logs, _ = results
    out = tmp_path / "cli"
    assert cli_main(["tables", "--eval", *map(str, eval_files), "--pretrain", *map(str, logs),
                     "--out-dir", str(out)]) == 0
    assert pd.read_csv(out / "ablation.csv").equals(pd.read_csv(build(tmp_path, eval_files, logs)[0] / "ablation.csv"))


# ----------------------------------------------------------------------------------------------------- recognition
def test_recognition_lists_every_paper_row_with_exact_values(tmp_path):
    out, frames = build(tmp_path, [])
    rec = frames["recognition"]
    groups = paper_groups("sota_recognition")
    assert len(rec) == len(groups)
    key_cols = ["method", "backbone", "pretraining set", "pretraining input", "downstream input", "protocol"]
    for key, values in groups.items():
        row = rec[(rec[key_cols] == list(key)).all(axis=1)]
        assert len(row) == 1
        for ds in ("UCF101", "HMDB51"):
            want = values.get(f"{ds} top-1 acc")
            got = row.iloc[0][f"{ds} paper"]
            assert (math.isnan(got) if want is None else got == want)
            assert math.isnan(row.iloc[0][f"{ds} measured mean"])
    # Written files: the CSV reads back to the same numbers, the Markdown has one line per row.
    back = pd.read_csv(out / "recognition.csv")
    assert back["UCF101 paper"].tolist() == pytest.approx(rec["UCF101 paper"].astype(float).tolist(), nan_ok=True)
    md = (out / "recognition.md").read_text()
    assert sum(line.startswith("| ") for line in md.splitlines()) == len(rec) + 1
    assert "77.6" in md and "n/a" not in md.split("\n\n")[1]


def test_matching_run_sits_in_its_paper_row_with_the_exact_difference(tmp_path, results):
    eval_files, logs, files = results
    out, frames = build(tmp_path, eval_files, logs)
    rec = frames["recognition"]
    row = select(rec, method="HiCo", backbone="R3D-18", pretraining_set="untrimmed Kinetics-400", protocol="LFT")
    assert len(row) == 1
    row = row.iloc[0]
    paper, line = paper_value(table="sota_recognition", method="HiCo", backbone="R3D-18",
                              pretrain="untrimmed Kinetics-400", protocol="LFT", dataset="UCF101")
    assert row["UCF101 paper"] == paper == 77.6
    assert row["UCF101 measured mean"] == 70.0 and row["UCF101 measured n"] == 1
    assert math.isnan(row["UCF101 measured std"]) and math.isnan(row["UCF101 measured ci95"])
    assert row["UCF101 diff"] == 70.0 - 77.6
    assert math.isnan(row["HMDB51 measured mean"]) and math.isnan(row["HMDB51 diff"])
    assert str(files["r3d_lft_ucf"]) in row["source"].split(";")
    assert f"{T.REFERENCE_CSV}:{line}" in row["source"].split(";")
    # Every paper row is still there, and only once.
    assert len(rec[rec["UCF101 paper"].map(lambda v: v != "n/a")]) == len(paper_groups("sota_recognition"))
    md = (out / "recognition.md").read_text()
    assert "| 77.6 | 70.00 | -7.60 |" in md


def test_unmatched_runs_show_na_in_the_paper_column(tmp_path, results):
    out, frames = build(tmp_path, *results[:2])
    rec = frames["recognition"]
    tiny = rec[rec["backbone"] == "tiny"]
    assert set(tiny["protocol"]) == {"LFT", "probe", "FT"}
    assert (tiny["UCF101 paper"] == "n/a").all() and (tiny["HMDB51 paper"] == "n/a").all()
    assert tiny["UCF101 diff"].isna().all()
    probe = tiny[tiny["protocol"] == "probe"]
    assert (probe["frozen"] == "✓ (strict probe)").all()
    assert probe["note"].str.contains("the paper's frozen numbers are LFT").all()
    rand = rec[rec["method"] == "random init"]
    assert len(rand) == 1 and rand.iloc[0]["UCF101 measured mean"] == 20.0
    back = pd.read_csv(out / "recognition.csv")
    assert back.loc[back["backbone"] == "tiny", "UCF101 paper"].isna().all()
    md_rows = [line for line in (out / "recognition.md").read_text().splitlines() if "| tiny |" in line]
    assert md_rows and all("| n/a |" in line for line in md_rows)


def test_mean_std_and_interval_over_three_seeds(tmp_path, results):
    eval_files, logs, files = results
    out, frames = build(tmp_path, eval_files, logs)
    rec = frames["recognition"]
    where = dict(backbone="tiny", protocol="probe", method="HiCo", pretraining_set="untrimmed Kinetics-400")
    row = select(rec, **where).iloc[0]
    mean, std = statistics.mean(SEED_TOP1), statistics.stdev(SEED_TOP1)
    half = stats.t.ppf(0.975, 2) * std / math.sqrt(3)
    assert row["UCF101 measured mean"] == pytest.approx(mean, abs=1e-12)
    assert row["UCF101 measured std"] == pytest.approx(std, abs=1e-12)
    assert row["UCF101 measured ci95"] == pytest.approx(half, rel=1e-12)
    assert row["UCF101 measured n"] == 3
    assert "hico_tiny_uk400_8x16 (seeds 0,1,2)" in row["runs"]
    md = (out / "recognition.md").read_text()
    assert f"{mean:.2f} ± {std:.2f} [{mean - half:.2f}, {mean + half:.2f}]" in md
    back = pd.read_csv(out / "recognition.csv")
    assert back.loc[select(rec, **where).index[0], "UCF101 measured ci95"] == pytest.approx(half, rel=1e-12)
    # The sources file names exactly the three seeds' files for that cell.
    src = pd.read_csv(out / "recognition.sources.csv")
    i = int(select(rec, **where).index[0])
    cell = src[(src["row"] == i) & (src["column"] == "UCF101 measured")].iloc[0]
    assert cell["origin"] == "measured" and cell["value"] == pytest.approx(mean)
    assert cell["sources"].split(";") == [str(files[f"probe_ucf_{s}"]) for s in range(3)]


def test_two_seeds_against_one(tmp_path):
    ev = tmp_path / "eval"
    files = [write_eval(ev, "probe", "hmdb51", {"top1": v}, seed=s) for s, v in ((0, 30.0), (4, 36.0))]
    files.append(write_eval(ev, "probe", "hmdb51", {"top1": 50.0}, method="simclr", seed=2))
    out, frames = build(tmp_path, files)
    rec = frames["recognition"]
    two = select(rec, method="HiCo", protocol="probe").iloc[0]
    assert two["HMDB51 measured mean"] == 33.0 and two["HMDB51 measured n"] == 2
    assert two["HMDB51 measured std"] == pytest.approx(math.sqrt(18.0))
    assert two["HMDB51 measured ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * 3.0)  # sd / sqrt(2) = 3
    assert two["runs"] == "hico_tiny_uk400_8x16 (seeds 0,4)"
    one = select(rec, method="SimCLR", protocol="probe").iloc[0]
    assert one["HMDB51 measured mean"] == 50.0 and one["HMDB51 measured n"] == 1
    assert math.isnan(one["HMDB51 measured std"]) and math.isnan(one["HMDB51 measured ci95"])
    assert one["runs"] == "simclr_tiny_uk400_8x16 (seed 2)"
    md = (out / "recognition.md").read_text()
    half = stats.t.ppf(0.975, 1) * 3.0
    assert f"| 33.00 ± {math.sqrt(18):.2f} [{33 - half:.2f}, {33 + half:.2f}] |" in md
    assert "| 50.00 |" in md


def test_backbone_with_underscores_is_grouped_by_identity(tmp_path):
    ev = tmp_path / "eval"
    files = [write_eval(ev, "lft", "ucf101", {"top1": v}, backbone="r2plus1d_r50", pretrain_input="16x112",
                        downstream_input="16x112", seed=s) for s, v in ((0, 60.0), (1, 62.0))]
    # Another identity with the very same run name (hico_r2plus1d_r50_uk400_16x112): names are not parsed back.
    files.append(write_eval(tmp_path / "elsewhere", "lft", "ucf101", {"top1": 50.0}, backbone="r2plus1d",
                            pretrain_input="16x112", pset="r50_uk400", downstream_input="16x112"))
    _out, frames = build(tmp_path, files)
    rec = frames["recognition"]
    row = select(rec, backbone="r2plus1d_r50").iloc[0]  # new backbones display as their key
    assert (row["pretraining set"], row["pretraining input"], row["downstream input"]) == (
        "untrimmed Kinetics-400", "16x112", "16x112")
    assert row["UCF101 measured mean"] == 61.0 and row["UCF101 measured n"] == 2
    other = select(rec, backbone="r2plus1d").iloc[0]  # same run-name prefix, another identity
    assert other["pretraining set"] == "r50_uk400" and other["UCF101 measured n"] == 1


def test_external_checkpoints_are_rows_of_their_own(tmp_path, results):
    eval_files, logs, _files = results
    ext = run(backbone="r3d18", pretrain_input="8x112", external="official_hico")
    extra = [write_eval(tmp_path / "eval", "lft", "ucf101", {"top1": 77.0}, ext, downstream_input="16x112"),
             write_eval(tmp_path / "eval", "retrieval", "ucf101", {f"R@{k}": 71.0 for k in (1, 5, 10, 20, 50)}, ext,
                        downstream_input="16x112")]
    unknown = run(method="external", backbone="s3dg", pset="unknown", pretrain_input="unknown", external="theirs")
    extra.append(write_eval(tmp_path / "eval", "probe", "ucf101", {"top1": 5.0}, unknown, downstream_input="16x112"))
    _out, frames = build(tmp_path, [*eval_files, *extra], logs)
    rec = frames["recognition"]
    paper_row = select(rec, backbone="R3D-18", pretraining_set="untrimmed Kinetics-400", protocol="LFT")
    # The paper row is repeated for each measured row it matches: this project's run and the external one.
    assert sorted(paper_row["method"]) == ["HiCo", "HiCo (external: official_hico)"]
    assert (paper_row["UCF101 paper"] == 77.6).all()
    external = select(paper_row, method="HiCo (external: official_hico)").iloc[0]
    assert external["UCF101 measured mean"] == 77.0 and external["UCF101 diff"] == pytest.approx(77.0 - 77.6)
    assert external["runs"] == "official_hico" and "not pretrained by this project" in external["note"]
    assert select(rec, method="external: theirs").iloc[0]["UCF101 paper"] == "n/a"
    ret = frames["retrieval"]
    rows = select(ret, backbone="R3D-18", method="HiCo (external: official_hico)")
    assert len(rows) == 1 and rows.iloc[0]["R@1 paper"] == 71.8 and rows.iloc[0]["R@1 measured mean"] == 71.0
    abl = frames["ablation"]
    assert {"HiCo", "HiCo (external: official_hico)"} <= set(select(abl, backbone="R3D-18")["method"])
    assert len(select(abl, backbone="R3D-18")) == 2


def test_every_number_of_every_table_is_traceable(tmp_path, results):
    eval_files, logs, _files = results
    out, _frames = build(tmp_path, eval_files, logs)
    ref_lines = T.REFERENCE_CSV.read_text().splitlines()
    checked = 0
    for name in TABLE_NAMES:
        src = pd.read_csv(out / f"{name}.sources.csv")
        for rec in src.to_dict("records"):
            paths = rec["sources"].split(";")
            if rec["origin"] == "paper":
                (ref, line), = [p.rsplit(":", 1) for p in paths]
                assert ref == str(T.REFERENCE_CSV)
                assert float(next(csv.reader([ref_lines[int(line) - 1]]))[9]) == rec["value"]
            elif rec["origin"] == "measured":
                values = []
                for p in paths:
                    assert Path(p).exists()
                    if p.endswith(".json"):
                        metrics = json.loads(Path(p).read_text())["metrics"]
                        values += [v for k, v in metrics.items() if isinstance(v, (int, float))
                                   and metric_name(k) in _column_metric(rec["column"])]
                    else:
                        values.append(None)
                if all(v is not None for v in values):
                    assert rec["value"] == pytest.approx(sum(values) / len(values))
                    checked += 1
            else:
                assert " − " in rec["origin"]
    assert checked > 20


def _column_metric(column: str) -> set[str]:
    """The metric names a table column can come from."""
    for task in TASKS.values():
        if column.startswith(task.column + " "):
            return {task.headline}
    if column.startswith(T.LOCALIZATION_COLUMN) or column == "average mAP":
        return {"average_mAP"}
    if column.startswith("R@"):
        return {column.split()[0]}
    if column.startswith("mAP@"):
        return {column}
    if "loss" in column:
        return set()
    return {"top1", "R@1", "average_mAP"}


# ----------------------------------------------------------------------------------------------------- retrieval
def test_retrieval_lists_table6_and_matches_on_size_only(tmp_path, results):
    _out, frames = build(tmp_path, *results[:2])
    ret = frames["retrieval"]
    paper = ret[ret["R@1 paper"].map(lambda v: v != "n/a")]
    n_paper = sum(len({k.split()[0] for k in v}) for v in paper_groups("retrieval_table6").values())
    assert len(paper) == n_paper
    row = select(ret, backbone="R3D-18", method="HiCo", dataset="UCF101")
    assert len(row) == 1
    row = row.iloc[0]
    assert row["pretraining input"] == "8x112" and "?x112" in row["note"] and row["downstream input"] == "16x112"
    for k, measured in zip((1, 5, 10, 20), (60.5, 70.0, 75.0, 80.0)):
        p, _ = paper_value(table="retrieval_table6", method="HiCo", backbone="R3D-18", dataset="UCF101",
                           metric=f"R@{k}")
        assert row[f"R@{k} paper"] == p
        assert row[f"R@{k} diff"] == measured - p
    assert math.isnan(row["R@50 paper"]) and row["R@50 measured mean"] == 90.0  # the paper has no R@50
    tiny = ret[ret["backbone"] == "tiny"]
    assert len(tiny) == 1 and (tiny["R@1 paper"] == "n/a").all()
    assert tiny.iloc[0]["R@1 measured mean"] == pytest.approx(statistics.mean(v - 10 for v in SEED_TOP1))


# ----------------------------------------------------------------------------------------------------- ablation
def test_ablation_has_every_variant_and_an_na_paper_column(tmp_path, results):
    out, frames = build(tmp_path, *results[:2])
    abl = frames["ablation"]
    assert (abl["paper"] == "n/a").all()
    assert sorted(zip(abl["method"], abl["backbone"], abl["pretraining set"])) == sorted([
        ("HiCo", "tiny", "untrimmed Kinetics-400"), ("HiCo", "tiny", "Kinetics-400"),
        ("SimCLR", "tiny", "untrimmed Kinetics-400"), ("SimCLR", "tiny", "Kinetics-400"),
        ("HiCo", "R3D-18", "untrimmed Kinetics-400"), ("random init", "tiny", "none")])
    hico = select(abl, method="HiCo", backbone="tiny", pretraining_set="untrimmed Kinetics-400").iloc[0]
    assert hico["probe top-1 UCF101 mean"] == pytest.approx(statistics.mean(SEED_TOP1))
    assert hico["LFT top-1 UCF101 mean"] == pytest.approx(statistics.mean(v + 1 for v in SEED_TOP1))
    assert hico["localization average mAP ActivityNet mean"] == 11.0
    assert hico["localization average mAP ActivityNet std"] == pytest.approx(1.0)
    # Last epoch = steps 3 and 4 of each seed's log (2 steps per epoch): mean over seeds of mean(1.0, 0.5 + seed).
    per_seed = [(1.0 + 0.5 + s) / 2 for s in range(3)]
    assert hico["pretraining loss (last epoch) mean"] == pytest.approx(statistics.mean(per_seed))
    assert pd.isna(hico["FT top-1 UCF101 mean"])
    simclr = select(abl, method="SimCLR", pretraining_set="untrimmed Kinetics-400").iloc[0]
    assert simclr["pretraining loss (last epoch) mean"] == 3.0
    md = (out / "ablation.md").read_text()
    assert "not public" in md and "| n/a |" in md


def test_ablation_columns_follow_the_task_registry_and_skip_tasks_nobody_reports(tmp_path, results):
    out, frames = build(tmp_path, *results[:2])
    measured = [c[:-len(" mean")] for c in frames["ablation"].columns if c.endswith(" mean")]
    # TASKS order (ft, lft, probe, retrieval), only the reported (task, dataset) pairs: no HMDB51 at all here.
    assert measured == ["FT top-1 UCF101", "LFT top-1 UCF101", "probe top-1 UCF101", "retrieval R@1 UCF101",
                        "localization average mAP ActivityNet", "pretraining loss (last epoch)"]
    notes = (out / "ablation.md").read_text()
    for name in ("ft", "lft", "probe", "retrieval"):
        assert f"- {TASKS[name].column} (UCF101): {TASKS[name].protocol}." in notes


def test_a_new_task_in_the_registry_becomes_a_column(tmp_path, results, monkeypatch):
    eval_files, logs, _ = results
    knn = Task("knn", "k-nearest-neighbour classification on frozen features", "features",
               Section("knn", "kNN", ()), "hico_bench.evaluate.probe:run_probe", "top1", "kNN top-1",
               protocol="majority vote of the 20 nearest train videos")
    monkeypatch.setitem(TASKS, "knn", knn)
    attentive = Task("attentive", "attentive probe", "features", Section("attentive", "attentive probe", ()),
                     "hico_bench.evaluate.probe:run_probe", "top1", "attentive probe top-1")
    monkeypatch.setitem(TASKS, "attentive", attentive)
    extra = [write_eval(tmp_path / "eval", "knn", dataset, {"top1": v}, seed=s)
             for s, v in enumerate((20.0, 22.0, 27.0)) for dataset in ("hmdb51", "ucf101")]
    out, frames = build(tmp_path, [*eval_files, *extra], logs)
    measured = [c[:-len(" mean")] for c in frames["ablation"].columns if c.endswith(" mean")]
    assert measured[3:7] == ["retrieval R@1 UCF101", "kNN top-1 UCF101", "kNN top-1 HMDB51",
                             "localization average mAP ActivityNet"]
    assert not any(c.startswith("attentive") for c in frames["ablation"].columns)  # nothing reports it
    hico = select(frames["ablation"], method="HiCo", backbone="tiny", pretraining_set="untrimmed Kinetics-400")
    assert hico.iloc[0]["kNN top-1 HMDB51 mean"] == pytest.approx(23.0)
    assert "- kNN top-1 (UCF101, HMDB51): majority vote of the 20 nearest train videos." in (
        out / "ablation.md").read_text()
    # A task without a protocol sentence is described by its help.
    extra.append(write_eval(tmp_path / "eval", "attentive", "ucf101", {"top1": 1.0}))
    out, frames = build(tmp_path, [*eval_files, *extra], logs, name="with_attentive")
    assert "attentive probe top-1 UCF101 mean" in frames["ablation"].columns
    assert "- attentive probe top-1 (UCF101): attentive probe." in (out / "ablation.md").read_text()


def test_ablation_marks_differences_to_hico_beyond_welchs_interval(tmp_path):
    ev = tmp_path / "eval"
    values = {"hico": (40.0, 41.0, 42.5), "simclr": (30.0, 31.5, 32.0), "vcl_fixed": (38.0, 42.0, 44.0),
              "hico_bce": (10.0,)}
    files = [write_eval(ev, "probe", "ucf101", {"top1": v}, method=m, seed=s)
             for m, vs in values.items() for s, v in enumerate(vs)]
    # A second metric where SimCLR is within the interval.
    files += [write_eval(ev, "retrieval", "ucf101", {"R@1": v}, method=m, seed=s)
              for m, vs in (("hico", (10.0, 20.0)), ("simclr", (12.0, 19.0))) for s, v in enumerate(vs)]
    # Same method and seeds on another set: compared with its own HiCo row, which has one seed (no test).
    files += [write_eval(ev, "probe", "ucf101", {"top1": 5.0}, pset="k400"),
              *[write_eval(ev, "probe", "ucf101", {"top1": v}, method="simclr", pset="k400", seed=s)
                for s, v in enumerate((1.0, 2.0))]]
    out, frames = build(tmp_path, files)
    abl = frames["ablation"]
    flag = "probe top-1 UCF101 differs from HiCo"

    def welch(a, b) -> bool:
        return bool(stats.ttest_ind(a, b, equal_var=False).pvalue < 0.05)

    assert welch(values["simclr"], values["hico"]) and not welch(values["vcl_fixed"], values["hico"])
    uk = abl[abl["pretraining set"] == "untrimmed Kinetics-400"].set_index("method")
    assert uk.loc["SimCLR", flag] == True
    assert uk.loc["VCL (fixed δ)", flag] == False
    assert pd.isna(uk.loc["HiCo", flag]) and pd.isna(uk.loc["HiCo (BCE TCL)", flag])
    assert uk.loc["SimCLR", "retrieval R@1 UCF101 differs from HiCo"] == welch((12.0, 19.0), (10.0, 20.0)) == False
    k400 = abl[abl["pretraining set"] == "Kinetics-400"].set_index("method")
    assert pd.isna(k400.loc["SimCLR", flag])
    md = (out / "ablation.md").read_text()
    simclr_line = next(line for line in md.splitlines() if line.startswith("| SimCLR | tiny | untrimmed"))
    vcl_line = next(line for line in md.splitlines() if line.startswith("| VCL (fixed δ) |"))
    assert " * |" in simclr_line and simclr_line.count("*") == 1 and "*" not in vcl_line
    assert "Welch" in md and "differs from HiCo" not in md.split("\n\n")[1]  # flags are marks, not columns
    # The CSV reads back with the flags.
    back = pd.read_csv(out / "ablation.csv")
    assert back[flag].dropna().tolist() == [c for c in abl[flag].dropna().tolist()]
    # The mark is the cells' comparison, computed in one place.
    hico_cell = next(r for r in T.assemble_tables(collect(files), load_reference())["ablation"].rows
                     if r["method"] == "HiCo" and r["pretraining set"] == "untrimmed Kinetics-400")
    assert compare(hico_cell["probe top-1 UCF101"], hico_cell["probe top-1 UCF101"]).differs is False


# ----------------------------------------------------------------------------------------------------- others
def test_trimmed_vs_untrimmed_differences(tmp_path, results):
    _out, frames = build(tmp_path, *results[:2])
    tvu = frames["trimmed_vs_untrimmed"]
    probe = tvu[(tvu["backbone"] == "tiny") & (tvu["metric"] == "probe top-1")]
    hico = probe[probe["method"] == "HiCo"].iloc[0]
    assert hico["Kinetics-400 measured mean"] == 30.0
    assert hico["untrimmed Kinetics-400 measured n"] == 3
    assert hico["diff measured"] == statistics.fmean(SEED_TOP1) - 30.0
    assert hico["Kinetics-400 paper"] == "n/a" and pd.isna(hico["diff paper"])
    simclr = probe[probe["method"] == "SimCLR"].iloc[0]
    assert simclr["diff measured"] == 35.0 - 33.0
    # The paper's HiCo rows published for both sets are always listed, with their published difference.
    s3d = tvu[(tvu["backbone"] == "S3D-G-23") & (tvu["metric"] == "LFT top-1") & (tvu["dataset"] == "UCF101")]
    assert len(s3d) == 1
    assert s3d.iloc[0]["Kinetics-400 paper"] == 75.7 and s3d.iloc[0]["untrimmed Kinetics-400 paper"] == 77.9
    assert s3d.iloc[0]["diff paper"] == 77.9 - 75.7
    assert len(tvu[tvu["Kinetics-400 paper"].map(lambda v: v != "n/a")]) == 8  # S3D-G and R(2+1)D-10, LFT/FT, 2 sets
    # A measured row that half-matches the paper (R3D-18 UK400 LFT): paper uk400 filled, k400 n/a.
    r3d = tvu[(tvu["backbone"] == "R3D-18") & (tvu["metric"] == "LFT top-1")].iloc[0]
    assert r3d["untrimmed Kinetics-400 paper"] == 77.6 and r3d["Kinetics-400 paper"] == "n/a"
    assert r3d["untrimmed Kinetics-400 measured mean"] == 70.0


def test_trimmed_vs_untrimmed_fills_the_papers_pair_row(tmp_path):
    ev = tmp_path / "eval"
    files = [write_eval(ev, "lft", "ucf101", {"top1": v}, backbone="s3dg", pset=s, pretrain_input="16x112",
                        downstream_input="16x112") for s, v in (("k400", 70.0), ("uk400", 74.5))]
    _out, frames = build(tmp_path, files)
    tvu = frames["trimmed_vs_untrimmed"]
    row = select(tvu, backbone="S3D-G-23", metric="LFT top-1", dataset="UCF101")
    assert len(row) == 1  # the measured pair sits in the paper's pair row
    row = row.iloc[0]
    assert (row["Kinetics-400 measured mean"], row["untrimmed Kinetics-400 measured mean"]) == (70.0, 74.5)
    assert row["diff measured"] == 4.5 and row["diff paper"] == 77.9 - 75.7
    assert len(tvu[tvu["Kinetics-400 paper"].map(lambda v: v != "n/a")]) == 8


def test_localization_table(tmp_path, results):
    _out, frames = build(tmp_path, *results[:2])
    loc = frames["localization"]
    assert len(loc) == 1 and (loc["paper"] == "n/a").all()
    row = loc.iloc[0]
    assert row["average mAP mean"] == 11.0 and row["mAP@0.50 mean"] == 20.0 and row["mAP@0.95 mean"] == 2.0
    assert row["mAP@0.95 n"] == 3 and row["downstream input"] == "8x16"
    assert row["average mAP ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
