import numpy as np
import pytest

from hico_bench.errors import UserError
from hico_bench.evaluate.probe import linear_probe, source_groups, topk_accuracy


def test_topk_accuracy_against_a_loop():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 7))
    labels = rng.integers(0, 7, 50)
    for k in (1, 3, 7):
        expected = np.mean([labels[i] in np.argsort(-scores[i], kind="stable")[:k] for i in range(50)]) * 100
        assert topk_accuracy(scores, labels, k) == pytest.approx(expected)


def test_probe_separates_separable_classes_and_picks_c_on_train_only():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 8)) * 4
    train_y, test_y = np.repeat(np.arange(4), 20), np.repeat(np.arange(4), 5)
    train_x = centres[train_y] + rng.normal(size=(80, 8))
    test_x = centres[test_y] + rng.normal(size=(20, 8))
    result = linear_probe(train_x, train_y, test_x, test_y)
    assert result["top1"] == 100.0 and result["top5"] == 100.0
    assert result["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    # the test labels play no part in choosing C: shuffling them leaves the chosen C unchanged
    assert linear_probe(train_x, train_y, test_x, rng.permutation(test_y))["C"] == result["C"]


def test_ucf_source_groups_keep_siblings_on_one_side():
    ids = ["v_Run_g01_c01", "v_Run_g01_c02", "v_Jump_g02_c01"]
    assert list(source_groups(ids)) == ["v_Run_g01", "v_Run_g01", "v_Jump_g02"]
    assert source_groups(["brush_hair_0001", "v_Run_g01_c01"]) is None


def test_a_test_class_absent_from_train_is_a_clear_error():
    x = np.zeros((4, 2))
    with pytest.raises(UserError, match=r"probe: test-split classes \[5\] never occur in the train split"):
        linear_probe(x, np.array([0, 0, 1, 1]), x[:1], np.array([5]), where="probe")
