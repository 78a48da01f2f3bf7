"""hico_bench/results/collect.py: metrics files and pretraining logs, with their run identities, as long rows."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest

from hico_bench.errors import UserError
from hico_bench.results import collect as C
from tests.results.fixtures import edit, run, write_eval, write_log


def test_collect_keeps_every_metric_with_its_file(tmp_path):
    ev = tmp_path / "eval"
    files = [
        write_eval(ev, "probe", "ucf101", {"top1": 40.0, "top5": 80.0, "per_class": {"a": 1.0}, "note": "x",
                                           "top3": None}),
        write_eval(ev, "retrieval", "hmdb51", {f"R@{k}": 10.0 + k for k in (1, 5, 10, 20, 50)}, seed=2),
        write_eval(ev, "localization", "activitynet", {"average_mAP": 10.0, "mAP@0.5": 20.0, "mAP@0.75": 8.0,
                                                       "mAP_per_tiou": {"0.50": 20.0}}, split=None),
    ]
    log = write_log(tmp_path / "pretrain", run(seed=1), [3.0, 2.0, 1.0, 0.5], iters=2)
    df = C.collect(files, [log])
    assert list(df.columns) == C.COLLECT_COLUMNS
    evals = df[df["task"] != "pretrain"]
    n_expected = 0
    for path in files:
        metrics = json.loads(path.read_text())["metrics"]
        numeric = {C.metric_name(k): v for k, v in metrics.items() if isinstance(v, (int, float))}
        n_expected += len(numeric)
        got = evals[evals["source"] == str(path)]
        assert dict(zip(got["metric"], got["value"])) == numeric
    assert len(evals) == n_expected
    # mAP@0.5 is read as mAP@0.50; nested objects, strings and nulls are skipped.
    assert "mAP@0.50" in set(df["metric"]) and not {"mAP_per_tiou", "per_class", "note", "top3"} & set(df["metric"])
    retrieval = evals[evals["task"] == "retrieval"].iloc[0]
    assert (retrieval["run"], retrieval["seed"], retrieval["dataset"]) == ("hico_tiny_uk400_8x16_seed2", 2, "hmdb51")
    pre = df[df["task"] == "pretrain"]
    assert set(pre["run"]) == {"hico_tiny_uk400_8x16_seed1"} and set(pre["dataset"]) == {"uk400"}
    assert set(pre["source"]) == {str(log)}


def test_identity_comes_from_the_record_not_the_path(tmp_path):
    """A backbone with underscores, in a folder whose name says something else: the record is what counts."""
    identity = run("vcl_gradual", "r2plus1d_r50", "uk400", "16x112", seed=3)
    path = write_eval(tmp_path, "lft", "ucf101", {"top1": 50.0}, identity, downstream_input="16x112")
    moved = tmp_path / "hico_tiny_k400_8x16_seed9" / "lft_ucf101.json"
    moved.parent.mkdir()
    shutil.move(path, moved)
    (row,) = C.collect([moved]).to_dict("records")
    assert {k: row[k] for k in ("method", "backbone", "set", "pretrain_input", "seed", "external")} == {
        "method": "vcl_gradual", "backbone": "r2plus1d_r50", "set": "uk400", "pretrain_input": "16x112", "seed": 3,
        "external": ""}
    assert row["run"] == "vcl_gradual_r2plus1d_r50_uk400_16x112_seed3" and row["downstream_input"] == "16x112"
    assert C.row_identity(row) == identity


def test_split_labels(tmp_path):
    one = write_eval(tmp_path / "a", "probe", "ucf101", {"top1": 1.0}, split=1)
    two = write_eval(tmp_path / "b", "probe", "ucf101", {"top1": 1.0}, split=2)
    merged = write_eval(tmp_path / "c", "probe", "ucf101", {"top1": 1.0}, split=[1, 2, 3])
    none = write_eval(tmp_path / "d", "localization", "activitynet", {"average_mAP": 1.0}, split=None)
    got = dict(zip(C.collect([one, two, merged, none])["source"], C.collect([one, two, merged, none])["split"]))
    assert got == {str(one): "", str(two): "2", str(merged): "1,2,3", str(none): ""}


def test_only_the_given_files_are_read_each_once(tmp_path):
    first = write_eval(tmp_path, "probe", "ucf101", {"top1": 40.0})
    write_eval(tmp_path, "probe", "hmdb51", {"top1": 30.0})  # beside it, not given
    df = C.collect([first, str(first)], None)
    assert df["source"].tolist() == [str(first)] and df["value"].tolist() == [40.0]
    # One path alone is one file (not a list of characters).
    assert C.collect(str(first))["value"].tolist() == [40.0]


def test_summarize_pretrain_matches_a_loop(tmp_path):
    losses = [5.0, 4.0, 3.5, 3.0, 2.0, 1.5, 1.25, 1.0, 0.5]
    iters = 3
    path = write_log(tmp_path, run(pset="k400"), losses, iters)
    summary = C.summarize_pretrain(C.load_pretrain_metrics(path))
    last_epoch = [loss for i, loss in enumerate(losses) if i // iters == (len(losses) - 1) // iters]
    assert summary["loss_last_epoch"] == pytest.approx(sum(last_epoch) / len(last_epoch), abs=0)
    assert summary["loss_tcl_last_epoch"] == pytest.approx(sum(0.25 * x for x in last_epoch) / len(last_epoch))
    assert summary["epochs"] == 3 and summary["steps"] == len(losses)
    assert summary["delta_max_final"] == 2.0
    assert summary["clips_per_s_median"] == statistics.median(100.0 + i for i in range(len(losses)))
    assert C.summarize_pretrain(C.load_pretrain_metrics(write_log(tmp_path / "e", run(), []))) == {}


def test_malformed_pretraining_log_names_file_and_line(tmp_path):
    path = write_log(tmp_path, run(pset="k400"), [1.0, 2.0], 1)
    path.write_text(path.read_text() + '{"step": 3, "epoch": 3, "loss": "nan?"}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl line 3"):
        C.load_pretrain_metrics(path)
    with pytest.raises(UserError, match="does not exist"):
        C.collect([], [tmp_path / "nothing" / "metrics.jsonl"])


@pytest.mark.parametrize("mutate, pattern", [
    (lambda p: p.unlink(), "does not exist"),
    (lambda p: p.write_text("{not json"), "not valid JSON"),
    (lambda p: p.write_text('{"method": "hico"}'), "lacks 'backbone'"),
    (lambda p: edit(p, lambda d: d.update(seed="1")), "seed"),
    (lambda p: edit(p, lambda d: d.update(name="other")), "does not match"),
])
def test_malformed_run_identity_of_a_log_is_named(tmp_path, mutate, pattern):
    log = write_log(tmp_path, run(), [1.0], 1)
    mutate(log.parent / "run.json")
    with pytest.raises(UserError, match=pattern) as info:
        C.collect([], [log])
    assert str(log.parent / "run.json") in str(info.value)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda p: p.write_text("{not json"), "not valid JSON"),
    (lambda p: p.write_text("[1, 2]"), "JSON object"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "UTF-8"),
    (lambda p: edit(p, lambda d: d.pop("run")), "no key 'run'"),
    (lambda p: edit(p, lambda d: d.update(run=None)), "must be an object"),
    (lambda p: edit(p, lambda d: d["run"].pop("backbone")), "lacks 'backbone'"),
    (lambda p: edit(p, lambda d: d["run"].update(colour="red")), "unknown run identity field 'colour'"),
    (lambda p: edit(p, lambda d: d["run"].update(pretrain_input="eight")), "pretrain_input"),
    (lambda p: edit(p, lambda d: d["metrics"].update(top1="high")), "metrics.top1"),
    (lambda p: edit(p, lambda d: d["metrics"].pop("top1")), "metrics.top1"),
    (lambda p: edit(p, lambda d: d["metrics"].update(top5=True)), "metrics.top5"),
    (lambda p: edit(p, lambda d: d["metrics"].update(top1=0.7 * 200)), "percentage"),
    (lambda p: edit(p, lambda d: d.update(metrics=[1])), "'metrics' must be an object"),
    (lambda p: edit(p, lambda d: d.update(task="segmentation")), "unknown task 'segmentation'"),
    (lambda p: edit(p, lambda d: d.update(dataset="kinetics")), "unknown dataset 'kinetics'"),
    (lambda p: edit(p, lambda d: d.update(downstream_input=16)), "downstream_input"),
])
def test_malformed_metrics_file_is_a_user_error_naming_it(tmp_path, mutate, pattern):
    path = write_eval(tmp_path / "eval", "ft", "ucf101", {"top1": 50.0, "top5": 80.0})
    mutate(path)
    with pytest.raises(UserError, match=pattern) as info:
        C.collect([path])
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        C.collect([tmp_path])
    with pytest.raises(UserError, match="does not exist"):
        C.collect([tmp_path / "missing.json"])
