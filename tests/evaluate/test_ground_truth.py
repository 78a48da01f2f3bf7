import json
import math

import pytest

from hico_bench.errors import UserError
from hico_bench.evaluate.ground_truth import GroundTruthFile, load_ground_truth, read_ground_truth


def gt_file(tmp_path, database, name="gt.json", **extra):
    """Write an annotation file in the official ActivityNet layout."""
    path = tmp_path / name
    data = {"version": "VERSION 1.3", "taxonomy": [], "database": database, **extra}
    path.write_text(json.dumps(data))
    return path


def video(subset, anns, duration=100.0):
    return {"subset": subset, "duration": duration, "resolution": "1920x1080",
            "url": "https://www.youtube.com/watch?v=x",
            "annotations": [{"segment": list(seg), "label": lab} for seg, lab in anns]}


@pytest.fixture
def four_subsets(tmp_path):
    return gt_file(tmp_path, {
        "x1": {**video("validation", [((1, 2), "B"), ((3, 4), "A")]), "duration": "92.166667"},  # HACS: a string
        "x2": video("validation", []),
        "x3": video("testing", []),
        "x4": video("training", [((0, 1), "C")]),
    }, taxonomy=[{"nodeName": "Root", "parentName": None}, {"nodeName": "D", "parentName": "Root"}])


def test_ground_truth_reading(tmp_path, four_subsets):
    gt = load_ground_truth(four_subsets)
    assert gt.durations == {"x1": 92.166667, "x2": 100.0}
    assert gt.classes == ["A", "B"] and len(gt.segments) == 2
    assert gt.known_labels == {"A", "B", "C", "D"}
    with pytest.raises(UserError, match="unknown subset.*'valid'.*testing, training, validation"):
        load_ground_truth(four_subsets, subset="valid")
    bad = gt_file(tmp_path, {"x": {"duration": 3.0, "annotations": []}}, name="bad.json")
    with pytest.raises(UserError, match="video 'x' lacks the key 'subset'"):
        load_ground_truth(bad)


def test_one_parse_holds_every_subset(four_subsets):
    gt_file_ = read_ground_truth(four_subsets)
    assert isinstance(gt_file_, GroundTruthFile) and gt_file_.version == "VERSION 1.3"
    assert set(gt_file_.subsets) == {"training", "validation", "testing"}
    train, val, test = (gt_file_.subset(s) for s in ("training", "validation", "testing"))
    assert train.durations == {"x4": 100.0} and train.classes == ["C"]
    assert list(train.segments.video) == ["x4"] and (train.segments.start[0], train.segments.end[0]) == (0.0, 1.0)
    assert val.durations == {"x1": 92.166667, "x2": 100.0} and val.classes == ["A", "B"]
    assert list(val.segments.label) == ["B", "A"]  # file order
    assert test.durations == {"x3": 100.0} and test.classes == [] and len(test.segments) == 0
    assert gt_file_.classes == ["A", "B", "C"]
    assert gt_file_.taxonomy_leaves == {"D"} and gt_file_.known_labels == {"A", "B", "C", "D"}
    assert gt_file_.all_videos == {"x1", "x2", "x3", "x4"} == val.all_videos
    # the same subset as the one-subset shortcut reads
    one = load_ground_truth(four_subsets, "validation")
    assert one.durations == val.durations and list(one.segments.video) == list(val.segments.video)
    assert one.known_labels == val.known_labels and one.path == val.path == str(four_subsets)


def test_missing_duration_reads_as_nan(tmp_path):
    info = video("validation", [((0, 1), "A")])
    del info["duration"]
    gt = load_ground_truth(gt_file(tmp_path, {"x": info}))
    assert math.isnan(gt.durations["x"])


@pytest.mark.parametrize("segment, message", [
    (["a", 2], r"annotation 0, 'segment' is 'a', not a number"),
    ([1, 2, 3], r"annotation 0, 'segment' must be a \[start, end\] pair in seconds, got \[1, 2, 3\]"),
    ([1, float("nan")], r"annotation 0, 'segment' must hold two finite numbers of seconds"),
])
def test_malformed_segment_is_a_user_error(tmp_path, segment, message):
    path = gt_file(tmp_path, {"x": {"subset": "training", "duration": 5.0,
                                    "annotations": [{"segment": segment, "label": "A"}]}})
    with pytest.raises(UserError, match=f"ground-truth file {path}, video 'x', {message}"):
        read_ground_truth(path)


def test_malformed_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="ground-truth file .*missing.json does not exist"):
        read_ground_truth(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="broken.json is not valid JSON"):
        read_ground_truth(tmp_path / "broken.json")
    (tmp_path / "flat.json").write_text("{}")
    with pytest.raises(UserError, match="flat.json lacks the key 'database'"):
        read_ground_truth(tmp_path / "flat.json")
    no_label = gt_file(tmp_path, {"x": {"subset": "training", "annotations": [{"segment": [0, 1]}]}}, "nolabel.json")
    with pytest.raises(UserError, match="video 'x', annotation 0 lacks the key 'label'"):
        read_ground_truth(no_label)
    odd_subset = gt_file(tmp_path, {"x": {"subset": ["training"], "annotations": []}}, "odd.json")
    with pytest.raises(UserError, match=r"video 'x' has the subset \['training'\], not a name"):
        read_ground_truth(odd_subset)
