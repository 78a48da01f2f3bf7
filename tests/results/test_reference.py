"""hico_bench/results/reference.py: the paper's numbers and the one rule matching a measurement to them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hico_bench.errors import UserError
from hico_bench.method import DISPLAY_NAMES
from hico_bench.results.groups import BACKBONE_NAMES, SET_NAMES, Group
from hico_bench.results.reference import REFERENCE_CSV, input_size, load_reference, paper_rows

SHARED_REFERENCE = Path("/work/shared/reference/hico_paper_results.csv")


@pytest.fixture(scope="module")
def ref():
    return load_reference()


def reference_lines() -> list[tuple[int, dict]]:
    """Brute-force read of the reference file: (1-based line, row) pairs (header = line 1)."""
    with open(REFERENCE_CSV, newline="") as fh:
        return list(enumerate(csv.DictReader(fh), 2))


def find(**where) -> list[int]:
    """The lines whose columns equal ``where`` (brute force)."""
    return [n for n, r in reference_lines() if all(r[k] == v for k, v in where.items())]


def group(method="hico", backbone="r3d18", pset="uk400", pretrain_input="8x112", external="", task="lft",
          dataset="ucf101", downstream_input="16x112", split="") -> Group:
    return Group(method, backbone, pset, pretrain_input, external, task, dataset, downstream_input, split)


def lines(rows) -> list[int]:
    return sorted(rows["line"].tolist())


def test_reference_copy_is_byte_identical_to_shared():
    if not SHARED_REFERENCE.exists():
        pytest.skip("the shared reference file is not on this machine")
    assert REFERENCE_CSV.read_bytes() == SHARED_REFERENCE.read_bytes()


def test_load_reference_keeps_lines_values_and_sources(ref):
    brute = reference_lines()
    assert len(ref) == len(brute)
    for (line, row), (_, got) in zip(brute, ref.iterrows()):
        assert got["line"] == line and got["value"] == float(row["value"])
        assert got["source"] == f"{REFERENCE_CSV}:{line}"
        assert got["measured_metric"] == {"top-1 acc": "top1"}.get(row["metric"], row["metric"])


def test_recognition_rule_matches_method_backbone_set_inputs_and_protocol(ref):
    hico_r3d = dict(table="sota_recognition", method="HiCo", backbone="R3D-18", pretrain="untrimmed Kinetics-400",
                    dataset="UCF101")
    (line,) = find(protocol="LFT", **hico_r3d)
    assert lines(paper_rows(ref, group())) == [line]
    assert lines(paper_rows(ref, group(split="1,2,3"))) == [line]  # splits are said in the note, not matched
    assert len(paper_rows(ref, group(), any_dataset=True)) == 2  # UCF101 and HMDB51
    assert lines(paper_rows(ref, group(task="ft"))) == find(protocol="FT", **hico_r3d)
    # An external checkpoint counts as its method.
    assert lines(paper_rows(ref, group(external="official_hico"))) == [line]
    # Every field matters.
    for changed in (dict(method="simclr"), dict(backbone="r2plus1d10"), dict(pset="k400"),
                    dict(pretrain_input="16x112"), dict(downstream_input="8x112"), dict(task="probe"),
                    dict(task="localization"), dict(dataset="activitynet")):
        assert paper_rows(ref, group(**changed)).empty, changed


def test_every_recognition_line_is_found_by_exactly_its_own_fields(ref):
    method = {v: k for k, v in DISPLAY_NAMES.items()}
    backbone = {v: k for k, v in BACKBONE_NAMES.items()}
    pset = {v: k for k, v in SET_NAMES.items()}
    n = 0
    for line, r in reference_lines():
        if r["table"] != "sota_recognition":
            continue
        g = group(method.get(r["method"], r["method"]), backbone.get(r["backbone"], r["backbone"]),
                  pset.get(r["pretrain"], r["pretrain"]), r["pretrain_input"], task=r["protocol"].lower(),
                  dataset=r["dataset"].lower(), downstream_input=r["finetune_input"])
        assert lines(paper_rows(ref, g)) == [line], r
        n += 1
    assert n == len(find(table="sota_recognition")) == 61


def test_retrieval_rule_matches_method_backbone_set_and_input_size(ref):
    want = find(table="retrieval_table6", method="HiCo", backbone="R3D-18", dataset="UCF101")
    assert len(want) == 4  # R@1/5/10/20
    for pinput in ("8x112", "16x112", "32x112"):  # the paper gives ?x112
        assert lines(paper_rows(ref, group(task="retrieval", pretrain_input=pinput))) == want
    assert lines(paper_rows(ref, group(task="retrieval", downstream_input="8x16"))) == want  # input not matched
    assert len(paper_rows(ref, group(task="retrieval"), any_dataset=True)) == 8
    assert lines(paper_rows(ref, group(task="retrieval", external="x"))) == want
    for changed in (dict(pretrain_input="8x224"), dict(pretrain_input="none"), dict(pset="k400"),
                    dict(method="simclr"), dict(backbone="r2plus1d18"), dict(dataset="activitynet")):
        assert paper_rows(ref, group(task="retrieval", **changed)).empty, changed
    # Random init (no pretraining input) never matches.
    assert paper_rows(ref, group("random_init", pset="none", pretrain_input="none", task="retrieval")).empty


def test_input_size():
    assert input_size("16x112") == "112" and input_size("?x112") == "112"
    assert input_size("none") is None and input_size("unknown") is None and input_size("x112") is None


@pytest.mark.parametrize("text, pattern", [
    ("table,method\nx,y\n", "lacks the column"),
    ("table,method,backbone,pretrain,pretrain_input,finetune_input,protocol,dataset,metric,value\n"
     "a,b,c,d,e,f,g,h,i,high\n", "line 2: value 'high'"),
])
def test_malformed_reference_is_named(tmp_path, text, pattern):
    path = tmp_path / "ref.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=pattern) as info:
        load_reference(path)
    assert str(path) in str(info.value)
    with pytest.raises(UserError, match="does not exist"):
        load_reference(tmp_path / "none.csv")
