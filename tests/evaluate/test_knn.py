"""Weighted kNN (DINO's eval_knn protocol) against a brute-force loop, and the ``knn`` verb on tiny real videos."""

import json
import math

import numpy as np
import pytest

from hico_bench.cli import main
from hico_bench.errors import UserError
from hico_bench.evaluate.knn import knn_classify, knn_scores, run_knn
from tests.evaluate.test_downstream import MODEL, manifest  # noqa: F401  (the module-scoped fixture)


def brute_force(train_x, train_y, test_x, test_y, k, temperature):
    """One query at a time: rank the train rows by (-cosine, row), let the first k vote exp(cos / T), rank the
    classes by (-vote, class)."""
    num_classes = int(max(max(train_y), max(test_y))) + 1
    top1, top5 = [], []
    for q, label in zip(test_x, test_y):
        q = q / np.linalg.norm(q)
        sims = [(float(np.dot(q, g / np.linalg.norm(g))), j) for j, g in enumerate(train_x)]
        votes = [0.0] * num_classes
        for sim, j in sorted(sims, key=lambda s: (-s[0], s[1]))[:k]:
            votes[int(train_y[j])] += math.exp(sim / temperature)
        order = sorted(range(num_classes), key=lambda c: (-votes[c], c))
        top1.append(order[0] == label)
        top5.append(label in order[:5])
    return {"top1": float(100.0 * np.mean(top1)), "top5": float(100.0 * np.mean(top5))}  # percent as the project


def exact_features(rng, n, dim=16):
    """Unit vectors with entries +-1/4: every cosine is a multiple of 1/8, exact in any summation order, so equal
    similarities (ties) are frequent and compare equal."""
    return rng.choice([-0.25, 0.25], size=(n, dim))


@pytest.mark.parametrize("k, temperature", [(1, 0.07), (5, 0.07), (20, 0.07), (7, 1.0), (500, 0.5)])
def test_knn_equals_the_brute_force_loop_with_ties(k, temperature):
    rng = np.random.default_rng(k)
    train_x, test_x = exact_features(rng, 120), exact_features(rng, 40)
    train_x[60:90] = train_x[:30]  # duplicated rows of other classes: tied neighbours
    train_y, test_y = rng.integers(0, 9, 120), rng.integers(0, 9, 40)
    train_y[:9] = np.arange(9)  # every test class occurs in train
    assert knn_classify(train_x, train_y, test_x, test_y, k, temperature) == brute_force(
        train_x, train_y, test_x, test_y, k, temperature)


def test_knn_equals_the_brute_force_loop_on_continuous_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 12))
    train_y, test_y = np.repeat(np.arange(6), 10), np.tile(np.arange(6), 5)
    train_x = centres[train_y] + rng.normal(scale=1.5, size=(60, 12))
    test_x = centres[test_y] + rng.normal(scale=1.5, size=(30, 12))
    result = knn_classify(train_x, train_y, test_x, test_y, 20, 0.07)
    assert result == brute_force(train_x, train_y, test_x, test_y, 20, 0.07)
    assert 0 < result["top1"] < 100  # neither trivial nor hopeless: the comparison means something


def test_the_vote_weight_is_exp_similarity_over_temperature():
    # one very similar train video of class 1, two less similar of class 0
    train_x = np.array([[1.0, 0.1], [1.0, 0.8], [1.0, -0.8]])
    train_y = np.array([1, 0, 0])
    query = np.array([[1.0, 0.0]])
    scores = knn_scores(train_x, train_y, query, k=3, temperature=0.07)
    sims = train_x @ query[0] / np.linalg.norm(train_x, axis=1)
    assert np.allclose(scores[0], [np.exp(sims[1:] / 0.07).sum(), np.exp(sims[0] / 0.07)])
    assert scores[0].argmax() == 1  # a sharp temperature trusts the nearest neighbour
    assert knn_scores(train_x, train_y, query, k=3, temperature=100.0)[0].argmax() == 0  # ~ a majority vote
    assert knn_scores(train_x, train_y, query, k=1, temperature=100.0)[0].argmax() == 1


def test_ties_take_the_earlier_train_row_and_the_smaller_class():
    train_x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # rows 0 and 1: the same direction
    query = np.array([[1.0, 0.0]])
    assert np.array_equal(knn_scores(train_x, np.array([3, 1, 0]), query, k=1, temperature=1.0)[0] > 0,
                          [False, False, False, True])  # row 0 (class 3) wins the tie with row 1
    tied = knn_scores(train_x, np.array([2, 1, 0]), query, k=2, temperature=1.0)
    assert tied[0, 1] == tied[0, 2]
    assert knn_classify(train_x, [2, 1, 0], query, [1], k=2, temperature=1.0)["top1"] == 100.0  # class 1 < 2
    assert knn_classify(train_x, [2, 1, 0], query, [2], k=2, temperature=1.0)["top1"] == 0.0


def test_zero_features_and_a_test_only_class():
    scores = knn_scores(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0, 1]), np.array([[0.0, 0.0]]), k=1,
                        temperature=0.5)
    assert np.array_equal(scores, [[1.0, 0.0]])  # similarity 0 to all: the earlier row, weight exp(0)
    with pytest.raises(UserError, match=r"test-split classes \[4\] never occur in the train split"):
        knn_classify(np.eye(3), [0, 1, 2], np.eye(3)[:1], [4])


RUN = '{"method": "hico", "backbone": "tiny", "set": "uk400", "pretrain_input": "8x16"}'


def features_dict(rng):
    train_x, test_x = rng.normal(size=(30, 8)), rng.normal(size=(10, 8))
    return {"train_x": train_x, "train_y": np.arange(30) % 3, "test_x": test_x, "test_y": np.arange(10) % 3,
            "views": np.array(4)}


def test_run_knn_reports_the_protocol_and_clips_k_to_the_memory_bank():
    feats = features_dict(np.random.default_rng(1))
    result = run_knn(feats, {"k": 50, "temperature": 0.1}, where="f.npz")
    assert set(result["metrics"]) == {"top1", "top5"}
    assert result["metrics"]["top5"] == 100.0  # 3 classes
    assert result["protocol"]["k"] == 50 and result["protocol"]["neighbours_used"] == 30
    assert result["protocol"]["temperature"] == 0.1 and result["protocol"]["memory_bank"] == "train split"
    assert result["metrics"] == knn_classify(feats["train_x"], feats["train_y"], feats["test_x"], feats["test_y"],
                                             50, 0.1)
    assert run_knn(feats, {}, where="f.npz")["protocol"]["k"] == 20  # the defaults: k 20, T 0.07
    assert run_knn(feats, {}, where="f.npz")["protocol"]["temperature"] == 0.07


def test_the_knn_verb_on_tiny_real_videos(manifest, tmp_path, capsys):  # noqa: F811
    from hico_bench.evaluate.features import cache_video_features

    csv = tmp_path / "m.csv"
    manifest.to_csv(csv, index=False)
    cache_video_features(None, str(csv), MODEL, str(tmp_path / "f.npz"), {"views": 2})
    out = tmp_path / "knn_ucf101.json"
    args = ["knn", "--features", str(tmp_path / "f.npz"), "--out", str(out), "--dataset", "ucf101"]
    assert main([*args, "--run", RUN, "--settings", '{"k": 3, "temperature": 0.1}']) == 0
    record = json.loads(out.read_text())
    assert record["run"]["method"] == "hico"
    assert record["task"] == "knn" and record["dataset"] == "ucf101" and record["downstream_input"] == "4x16"
    assert set(record["metrics"]) == {"top1", "top5"} and 0 <= record["metrics"]["top1"] <= 100
    assert record["protocol"]["k"] == 3 and record["protocol"]["views"] == 2
    capsys.readouterr()
    assert main([*args, "--settings", '{"kk": 3}']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown setting 'knn.kk'" in err[0] and "temperature" in err[0], err
