"""Tests of hico_bench/tables.py on fixture metrics files (the formats written by the evaluation stages)."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from hico_bench import tables
from hico_bench.errors import UserError

SHARED_REFERENCE = Path("/work/shared/reference/hico_paper_results.csv")


# ------------------------------------------------------------------------------------------------------ fixtures
def write_eval(eval_dir: Path, task: str, dataset: str, metrics: dict, method: str = "hico", backbone: str = "tiny",
               pset: str = "uk400", frames: int = 8, size: int = 16, seed: int = 0, finetune_input: str = "8x16",
               split=1) -> Path:
    """Write one metrics file the way the evaluation stages do; return its path."""
    run = f"{method}_{backbone}_{pset}_{frames}x{size}" + (f"_seed{seed}" if seed else "")
    path = eval_dir / run / f"{task}_{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "run": run,
        "checkpoint": None if method == "random_init" else f"results/pretrain/{run}/checkpoint_last.pt",
        "pretrain": {"method": method, "backbone": backbone, "set": pset, "frames": frames, "size": size,
                     "seed": seed},
        "task": task, "dataset": dataset, "split": split, "finetune_input": finetune_input,
        "protocol": {"views": "10x1"}, "metrics": metrics, "seconds": 1.5,
    }
    path.write_text(json.dumps(data))
    return path


def write_log(pretrain_dir: Path, run: str, losses: list[float], iters: int, tcl: bool = True) -> Path:
    """A metrics.jsonl as the trainer writes it: ``iters`` steps per epoch."""
    path = pretrain_dir / run / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, loss in enumerate(losses):
        step = i + 1
        lines.append(json.dumps({
            "step": step, "epoch": round(step / iters, 6), "loss": loss, "loss_vcl": loss * 0.75,
            "loss_tcl": loss * 0.25 if tcl else None, "lr": 0.001, "delta_max": 2.0 * step / len(losses),
            "clips_per_s": 100.0 + i, "data_wait_frac": 0.1,
        }))
    path.write_text("\n".join(lines) + "\n")
    return path


def paper_value(**where) -> tuple[float, int]:
    """Brute-force read of the reference file: the value and its 1-based line (header = line 1)."""
    with open(tables.REFERENCE_CSV, newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), 2):
            if all(row[k] == v for k, v in where.items()):
                return float(row["value"]), lineno
    raise KeyError(where)


SEED_TOP1 = [40.0, 42.5, 47.25]


@pytest.fixture
def results(tmp_path):
    """A small but complete results tree."""
    ev, pre = tmp_path / "eval", tmp_path / "pretrain"
    files = {}
    # A run matching a paper row exactly (HiCo, R3D-18, UK400, 8x112 -> 16x112).
    files["r3d_lft_ucf"] = write_eval(ev, "lft", "ucf101", {"top1": 70.0, "top5": 90.0}, backbone="r3d18",
                                      size=112, finetune_input="16x112")
    files["r3d_ret_ucf"] = write_eval(ev, "retrieval", "ucf101",
                                      {"R@1": 60.5, "R@5": 70.0, "R@10": 75.0, "R@20": 80.0, "R@50": 90.0},
                                      backbone="r3d18", size=112, finetune_input="16x112")
    # The tiny backbone, three seeds, every task.
    for seed, top1 in enumerate(SEED_TOP1):
        files[f"probe_ucf_{seed}"] = write_eval(ev, "probe", "ucf101", {"top1": top1, "top5": 80.0}, seed=seed)
        files[f"lft_ucf_{seed}"] = write_eval(ev, "lft", "ucf101", {"top1": top1 + 1}, seed=seed)
        files[f"ret_ucf_{seed}"] = write_eval(ev, "retrieval", "ucf101",
                                              {"R@1": top1 - 10, "R@5": 50.0, "R@10": 60.0, "R@20": 70.0,
                                               "R@50": 80.0}, seed=seed)
        files[f"loc_{seed}"] = write_eval(ev, "localization", "activitynet",
                                          {"average_mAP": 10.0 + seed, "mAP@0.5": 20.0, "mAP@0.75": 8.0,
                                           "mAP@0.95": 1.0 + seed, "mAP_per_tiou": {"0.50": 20.0}}, seed=seed)
        write_log(pre, "hico_tiny_uk400_8x16" + (f"_seed{seed}" if seed else ""), [3.0, 2.0, 1.0, 0.5 + seed],
                  iters=2)
    files["hico_k400_probe"] = write_eval(ev, "probe", "ucf101", {"top1": 30.0}, pset="k400")
    files["simclr_uk_probe"] = write_eval(ev, "probe", "ucf101", {"top1": 35.0}, method="simclr")
    files["simclr_k_probe"] = write_eval(ev, "probe", "ucf101", {"top1": 33.0}, method="simclr", pset="k400")
    files["rand_ft"] = write_eval(ev, "ft", "ucf101", {"top1": 20.0}, method="random_init", pset="none")
    write_log(pre, "simclr_tiny_uk400_8x16", [4.0, 3.0], iters=1, tcl=False)
    return ev, pre, files


def build(tmp_path, ev, pre):
    out = tmp_path / "tables"
    frames = tables.build_tables(ev, pre, tables.REFERENCE_CSV, out)
    return out, frames


# ------------------------------------------------------------------------------------------------------ reading
def test_reference_copy_is_byte_identical_to_shared():
    if not SHARED_REFERENCE.exists():
        pytest.skip("the shared reference file is not on this machine")
    assert tables.REFERENCE_CSV.read_bytes() == SHARED_REFERENCE.read_bytes()


def test_collect_keeps_every_metric_with_its_file(results):
    ev, pre, files = results
    df = tables.collect(ev, pre)
    evals = df[df["task"] != "pretrain"]
    n_expected = 0
    for path in files.values():
        metrics = json.loads(path.read_text())["metrics"]
        n_expected += sum(isinstance(v, (int, float)) for v in metrics.values())
        got = evals[evals["source"] == str(path)]
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                name = tables._metric_name(key)
                assert got.loc[got["metric"] == name, "value"].tolist() == [value]
    assert len(evals) == n_expected
    assert set(df.loc[df["task"] == "pretrain", "run"]) == {
        "hico_tiny_uk400_8x16", "hico_tiny_uk400_8x16_seed1", "hico_tiny_uk400_8x16_seed2", "simclr_tiny_uk400_8x16"}
    # mAP@0.5 is read as mAP@0.50; nested objects are skipped.
    assert "mAP@0.50" in set(df["metric"]) and "mAP_per_tiou" not in set(df["metric"])


def test_parse_run_name_inverts_config_run_name():
    from hico_bench.config import run_name

    for method in ("hico", "vcl_gradual", "random_init"):
        for seed in (0, 3):
            name = run_name(method, "r2plus1d10", "uk400", 16, 112, seed)
            assert tables.parse_run_name(name) == {"method": method, "backbone": "r2plus1d10", "set": "uk400",
                                                   "frames": 16, "size": 112, "seed": seed}
    with pytest.raises(UserError, match="notarun"):
        tables.parse_run_name("notarun")


def test_summarize_pretrain_matches_a_loop(tmp_path):
    losses = [5.0, 4.0, 3.5, 3.0, 2.0, 1.5, 1.25, 1.0, 0.5]
    iters = 3
    path = write_log(tmp_path, "hico_tiny_k400_8x16", losses, iters)
    summary = tables.summarize_pretrain(tables.load_pretrain_metrics(path))
    last_epoch = [loss for i, loss in enumerate(losses) if i // iters == (len(losses) - 1) // iters]
    assert summary["loss_last_epoch"] == pytest.approx(sum(last_epoch) / len(last_epoch), abs=0)
    assert summary["loss_tcl_last_epoch"] == pytest.approx(sum(0.25 * x for x in last_epoch) / len(last_epoch))
    assert summary["epochs"] == 3 and summary["steps"] == len(losses)
    assert summary["delta_max_final"] == 2.0
    assert summary["clips_per_s_median"] == statistics.median(100.0 + i for i in range(len(losses)))


def test_malformed_pretraining_log_names_file_and_line(tmp_path):
    path = write_log(tmp_path, "hico_tiny_k400_8x16", [1.0, 2.0], 1)
    path.write_text(path.read_text() + '{"step": 3, "epoch": 3, "loss": "nan?"}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl line 3"):
        tables.load_pretrain_metrics(path)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda p: p.write_text("{not json"), "not valid JSON"),
    (lambda p: p.write_text("[1, 2]"), "JSON object"),
    (lambda p: _edit(p, lambda d: d.pop("pretrain")), "no key 'pretrain'"),
    (lambda p: _edit(p, lambda d: d["pretrain"].pop("backbone")), "pretrain.backbone"),
    (lambda p: _edit(p, lambda d: d["pretrain"].update(size="16")), "pretrain.size"),
    (lambda p: _edit(p, lambda d: d["metrics"].update(top1="high")), "metrics.top1"),
    (lambda p: _edit(p, lambda d: d["metrics"].pop("top1")), "metrics.top1"),
    (lambda p: _edit(p, lambda d: d["metrics"].update(top5=True)), "metrics.top5"),
    (lambda p: _edit(p, lambda d: d["metrics"].update(top1=0.7 * 200)), "percentage"),
    (lambda p: _edit(p, lambda d: d.update(task="segmentation")), "unknown task"),
])
def test_malformed_metrics_file_is_a_user_error_naming_it(tmp_path, mutate, pattern):
    path = write_eval(tmp_path / "eval", "ft", "ucf101", {"top1": 50.0, "top5": 80.0})
    mutate(path)
    with pytest.raises(UserError, match=pattern) as info:
        tables.build_tables(tmp_path / "eval", None, tables.REFERENCE_CSV, tmp_path / "tables")
    assert str(path) in str(info.value)


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_two_files_for_one_seed_are_a_user_error(tmp_path):
    ev = tmp_path / "eval"
    first = write_eval(ev, "ft", "ucf101", {"top1": 50.0})
    second = ev / "copy_of_run" / "ft_ucf101.json"
    second.parent.mkdir()
    second.write_text(first.read_text())
    with pytest.raises(UserError, match="keep one of them") as info:
        tables.build_tables(ev, None, tables.REFERENCE_CSV, tmp_path / "tables")
    assert str(first) in str(info.value) and str(second) in str(info.value)


# ------------------------------------------------------------------------------------------------------ recognition
def _paper_groups(table: str) -> dict[tuple, dict[str, float]]:
    keys = ("method", "backbone", "pretrain", "pretrain_input", "finetune_input", "protocol")
    out: dict[tuple, dict[str, float]] = {}
    with open(tables.REFERENCE_CSV, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["table"] == table:
                out.setdefault(tuple(row[k] for k in keys), {})[f"{row['dataset']} {row['metric']}"] = \
                    float(row["value"])
    return out


def test_recognition_lists_every_paper_row_with_exact_values(tmp_path):
    out, frames = build(tmp_path, tmp_path / "no_eval", tmp_path / "no_pretrain")
    rec = frames["recognition"]
    groups = _paper_groups("sota_recognition")
    assert len(rec) == len(groups)
    key_cols = ["method", "backbone", "pretraining set", "pretraining input", "fine-tuning input", "protocol"]
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
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    rec = frames["recognition"]
    row = rec[(rec["method"] == "HiCo") & (rec["backbone"] == "R3D-18") & (rec["pretraining set"]
              == "untrimmed Kinetics-400") & (rec["protocol"] == "LFT")]
    assert len(row) == 1
    row = row.iloc[0]
    paper, line = paper_value(table="sota_recognition", method="HiCo", backbone="R3D-18",
                              pretrain="untrimmed Kinetics-400", protocol="LFT", dataset="UCF101")
    assert row["UCF101 paper"] == paper == 77.6
    assert row["UCF101 measured mean"] == 70.0 and row["UCF101 measured n"] == 1
    assert math.isnan(row["UCF101 measured std"])
    assert row["UCF101 diff"] == 70.0 - 77.6
    assert math.isnan(row["HMDB51 measured mean"]) and math.isnan(row["HMDB51 diff"])
    assert str(files["r3d_lft_ucf"]) in row["source"].split(";")
    assert f"{tables.REFERENCE_CSV}:{line}" in row["source"].split(";")
    # Every paper row is still there, and only once.
    assert len(rec[rec["UCF101 paper"].map(lambda v: v != "n/a")]) == len(_paper_groups("sota_recognition"))
    md = (out / "recognition.md").read_text()
    assert "| 77.6 | 70.00 | -7.60 |" in md


def test_unmatched_runs_show_na_in_the_paper_column(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
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
    assert rand.iloc[0]["pretraining set"] == "none"
    back = pd.read_csv(out / "recognition.csv")
    assert back.loc[back["backbone"] == "tiny", "UCF101 paper"].isna().all()
    md_rows = [line for line in (out / "recognition.md").read_text().splitlines() if "| tiny |" in line]
    assert md_rows and all("| n/a |" in line for line in md_rows)


def test_mean_and_std_over_three_seeds(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    rec = frames["recognition"]
    row = rec[(rec["backbone"] == "tiny") & (rec["protocol"] == "probe") & (rec["method"] == "HiCo")
              & (rec["pretraining set"] == "untrimmed Kinetics-400")].iloc[0]
    mean, std = statistics.mean(SEED_TOP1), statistics.stdev(SEED_TOP1)
    assert row["UCF101 measured mean"] == pytest.approx(mean, abs=1e-12)
    assert row["UCF101 measured std"] == pytest.approx(std, abs=1e-12)
    assert row["UCF101 measured n"] == 3
    assert "hico_tiny_uk400_8x16 (seeds 0,1,2)" in row["runs"]
    md = (out / "recognition.md").read_text()
    assert f"{mean:.2f} ± {std:.2f}" in md
    # The sources file names exactly the three seeds' files for that cell.
    src = pd.read_csv(out / "recognition.sources.csv")
    i = int(rec.index[(rec["backbone"] == "tiny") & (rec["protocol"] == "probe") & (rec["method"] == "HiCo")
                      & (rec["pretraining set"] == "untrimmed Kinetics-400")][0])
    cell = src[(src["row"] == i) & (src["column"] == "UCF101 measured")].iloc[0]
    assert cell["origin"] == "measured" and cell["value"] == pytest.approx(mean)
    assert cell["sources"].split(";") == [str(files[f"probe_ucf_{s}"]) for s in range(3)]


def test_every_number_of_every_table_is_traceable(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    ref_lines = tables.REFERENCE_CSV.read_text().splitlines()
    for name in tables.TABLE_NAMES:
        src = pd.read_csv(out / f"{name}.sources.csv")
        for rec in src.to_dict("records"):
            paths = rec["sources"].split(";")
            if rec["origin"] == "paper":
                (ref, line), = [p.rsplit(":", 1) for p in paths]
                assert ref == str(tables.REFERENCE_CSV)
                assert float(next(csv.reader([ref_lines[int(line) - 1]]))[9]) == rec["value"]
            elif rec["origin"] == "measured":
                values = []
                for p in paths:
                    assert Path(p).exists()
                    if p.endswith(".json"):
                        metrics = json.loads(Path(p).read_text())["metrics"]
                        values += [v for k, v in metrics.items() if isinstance(v, (int, float))
                                   and tables._metric_name(k) in _column_metric(rec["column"])]
                    else:
                        values.append(None)
                if all(v is not None for v in values):
                    assert rec["value"] == pytest.approx(sum(values) / len(values))
            else:
                assert " − " in rec["origin"]


def _column_metric(column: str) -> set[str]:
    """The metric names a table column can come from."""
    for label, _, _, metric in tables.ABLATION_METRICS:
        if column == label:
            return {metric}
    if column.startswith("R@"):
        return {column.split()[0]}
    if column.startswith("mAP@"):
        return {column}
    if column == "average mAP":
        return {"average_mAP"}
    if "loss" in column:
        return set()
    return {"top1", "R@1", "average_mAP"}


# ------------------------------------------------------------------------------------------------------ retrieval
def test_retrieval_lists_table6_and_matches_on_size_only(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    ret = frames["retrieval"]
    paper = ret[ret["R@1 paper"].map(lambda v: v != "n/a")]
    n_paper = sum(len({k.split()[0] for k in v}) for v in _paper_groups("retrieval_table6").values())
    assert len(paper) == n_paper
    row = ret[(ret["backbone"] == "R3D-18") & (ret["method"] == "HiCo") & (ret["dataset"] == "UCF101")]
    assert len(row) == 1
    row = row.iloc[0]
    assert row["pretraining input"] == "8x112" and "?x112" in row["note"]
    for k, measured in zip((1, 5, 10, 20), (60.5, 70.0, 75.0, 80.0)):
        p, _ = paper_value(table="retrieval_table6", method="HiCo", backbone="R3D-18", dataset="UCF101",
                           metric=f"R@{k}")
        assert row[f"R@{k} paper"] == p
        assert row[f"R@{k} diff"] == measured - p
    assert math.isnan(row["R@50 paper"]) and row["R@50 measured mean"] == 90.0  # the paper has no R@50
    tiny = ret[ret["backbone"] == "tiny"]
    assert len(tiny) == 1 and (tiny["R@1 paper"] == "n/a").all()
    assert tiny.iloc[0]["R@1 measured mean"] == pytest.approx(statistics.mean(v - 10 for v in SEED_TOP1))


# ------------------------------------------------------------------------------------------------------ others
def test_ablation_has_every_variant_and_an_na_paper_column(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    abl = frames["ablation"]
    assert (abl["paper"] == "n/a").all()
    assert set(zip(abl["method"], abl["pretraining set"])) == {
        ("HiCo", "untrimmed Kinetics-400"), ("HiCo", "Kinetics-400"), ("SimCLR", "untrimmed Kinetics-400"),
        ("SimCLR", "Kinetics-400"), ("HiCo", "untrimmed Kinetics-400"), ("random init", "none")}
    hico = abl[(abl["method"] == "HiCo") & (abl["backbone"] == "tiny") & (abl["pretraining set"]
               == "untrimmed Kinetics-400")].iloc[0]
    assert hico["probe top-1 UCF101 mean"] == pytest.approx(statistics.mean(SEED_TOP1))
    assert hico["LFT top-1 UCF101 mean"] == pytest.approx(statistics.mean(v + 1 for v in SEED_TOP1))
    assert hico["localization average mAP ActivityNet mean"] == 11.0
    assert hico["localization average mAP ActivityNet std"] == pytest.approx(1.0)
    # Last epoch = steps 3 and 4 of each seed's log (2 steps per epoch): mean over seeds of mean(1.0, 0.5 + seed).
    per_seed = [(1.0 + 0.5 + s) / 2 for s in range(3)]
    assert hico["pretraining loss (last epoch) mean"] == pytest.approx(statistics.mean(per_seed))
    assert pd.isna(hico["FT top-1 UCF101 mean"])
    simclr = abl[(abl["method"] == "SimCLR") & (abl["pretraining set"] == "untrimmed Kinetics-400")].iloc[0]
    assert simclr["pretraining loss (last epoch) mean"] == 3.0
    md = (out / "ablation.md").read_text()
    assert "not public" in md and "| n/a |" in md


def test_trimmed_vs_untrimmed_differences(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    tvu = frames["trimmed_vs_untrimmed"]
    probe = tvu[(tvu["backbone"] == "tiny") & (tvu["metric"] == "probe top-1")]
    hico = probe[probe["method"] == "HiCo"].iloc[0]
    assert hico["Kinetics-400 measured mean"] == 30.0
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


def test_localization_table(tmp_path, results):
    ev, pre, files = results
    out, frames = build(tmp_path, ev, pre)
    loc = frames["localization"]
    assert len(loc) == 1 and (loc["paper"] == "n/a").all()
    row = loc.iloc[0]
    assert row["average mAP mean"] == 11.0 and row["mAP@0.50 mean"] == 20.0 and row["mAP@0.95 mean"] == 2.0
    assert row["mAP@0.95 n"] == 3


def test_missing_inputs_still_write_every_table(tmp_path):
    out, frames = build(tmp_path, tmp_path / "nothing", None)
    for name in tables.TABLE_NAMES:
        for suffix in (".csv", ".md", ".sources.csv"):
            assert (out / f"{name}{suffix}").is_file()
    assert frames["ablation"].empty and frames["localization"].empty
    assert "–" in (out / "recognition.md").read_text()
    assert not list(out.glob(".tmp-*"))


def test_markdown_table_escapes_and_aligns():
    text = tables.markdown_table(["a", "b|c"], [["1", "x|y"], ["–", "n/a"]])
    lines = text.splitlines()
    assert lines[0] == "| a | b\\|c |"
    assert lines[1] == "|---|---|"
    assert lines[2] == "| 1 | x\\|y |"
    assert lines[3] == "| – | n/a |"


def test_cell_formatting():
    m = tables.Measured((1.0, 2.0, 4.0), ("a", "b", "c"), ("r",), (0, 1, 2))
    col = tables.Column("x", "measured")
    assert tables._cell_md(col, m) == f"{7 / 3:.2f} ± {statistics.stdev([1.0, 2.0, 4.0]):.2f}"
    assert tables._cell_md(col, tables.Measured((5.0,), ("a",), ("r",), (0,))) == "5.00"
    assert tables._cell_md(col, None) == "–"
    assert tables._cell_md(tables.Column("p", "paper"), tables.PaperValue(77.6, "f:2")) == "77.6"
    assert tables._cell_md(tables.Column("d", "diff"), tables.Diff(m, tables.PaperValue(1.0, "f:2"))) == "+1.33"
    assert tables._cell_md(tables.Column("d", "diff"), tables.Diff(m, tables.NA)) == "–"
