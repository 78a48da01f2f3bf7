import json

import numpy as np
import pytest

from hico_bench.errors import UserError
from hico_bench.evaluate.detection import (
    TIOU_THRESHOLDS,
    anet_eval,
    average_precision,
    evaluate_detection,
    interpolated_ap,
    load_predictions,
    parse_predictions,
    segment_iou,
)
from hico_bench.evaluate.ground_truth import load_ground_truth
from tests.evaluate.test_ground_truth import gt_file, video


def preds(results):
    return {"version": "VERSION 1.3", "external_data": {}, "results": {
        vid: [{"label": lab, "score": score, "segment": list(seg)} for seg, lab, score in dets]
        for vid, dets in results.items()}}


# ---- brute-force reference of the metric ----------------------------------------------------------------------------

def brute_ap(gts, dets, thr):
    """gts: [(video, t0, t1)], dets: [(video, t0, t1, score)]. Greedy matching and AP as a sum over true positives of
    1/npos times the best precision at or after that rank."""
    order = sorted(range(len(dets)), key=lambda i: (-dets[i][3], i))
    used, flags = set(), []
    for i in order:
        v, a, b, _ = dets[i]
        best, best_iou = None, None
        for j, (gv, ga, gb) in enumerate(gts):
            if gv != v or j in used:
                continue
            inter = max(0.0, min(b, gb) - max(a, ga))
            iou = inter / ((b - a) + (gb - ga) - inter)
            if iou >= thr and (best is None or iou > best_iou):
                best, best_iou = j, iou
        if best is not None:
            used.add(best)
        flags.append(best is not None)
    precision = [sum(flags[: r + 1]) / (r + 1) for r in range(len(flags))]
    return sum(max(precision[r:]) / len(gts) for r in range(len(flags)) if flags[r])


def random_case(rng, num_videos=6, num_gt=9, num_pred=25):
    vids = [f"vid{i}" for i in range(num_videos)]
    gts = []
    for _ in range(num_gt):
        a = rng.uniform(0, 80)
        gts.append((vids[rng.integers(num_videos)], a, a + rng.uniform(2, 20)))
    dets = []
    for _ in range(num_pred):
        if rng.random() < 0.6:  # a jittered copy of a ground truth (some duplicates), else random
            v, a, b = gts[rng.integers(num_gt)]
            a, b = a + rng.normal(0, 1.5), b + rng.normal(0, 1.5)
        else:
            v, a = vids[rng.integers(num_videos)], rng.uniform(0, 80)
            b = a + rng.uniform(1, 20)
        dets.append((v, min(a, b), max(a, b), float(rng.random())))
    return gts, dets


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_matches_brute_force(seed):
    gts, dets = random_case(np.random.default_rng(seed))
    got = average_precision(
        [g[0] for g in gts], [g[1:] for g in gts], [d[0] for d in dets], [d[1:3] for d in dets],
        [d[3] for d in dets], TIOU_THRESHOLDS,
    )
    want = [brute_ap(gts, dets, t) for t in TIOU_THRESHOLDS]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert 0 < np.mean(want) < 1  # the case is neither trivial nor hopeless


def test_evaluate_detection_matches_brute_force_per_class(tmp_path):
    rng = np.random.default_rng(7)
    database, results, per_class = {}, {}, []
    cases = {name: random_case(rng) for name in ("Abc", "Def", "Ghi")}
    for name, (gts, dets) in cases.items():
        for v, a, b in gts:
            database.setdefault(v, video("validation", []))["annotations"].append({"segment": [a, b], "label": name})
        for v, a, b, s in dets:
            results.setdefault(v, []).append(((a, b), name, s))
        per_class.append([brute_ap(gts, dets, t) for t in TIOU_THRESHOLDS])
    for v in results:
        database.setdefault(v, video("validation", []))
    gt = load_ground_truth(gt_file(tmp_path, database))
    metrics = evaluate_detection(gt, preds(results))
    want = 100 * np.mean(per_class, axis=0)  # percent
    np.testing.assert_allclose(list(metrics["mAP_per_tiou"].values()), want, rtol=1e-12)
    assert metrics["average_mAP"] == pytest.approx(want.mean(), rel=1e-12)
    assert list(metrics["mAP_per_tiou"]) == ["0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "0.85",
                                             "0.90", "0.95"]
    assert metrics["per_class"]["Def"] == pytest.approx(100 * np.mean(per_class[1]), rel=1e-12)
    assert metrics["mAP@0.75"] == metrics["mAP_per_tiou"]["0.75"]


# ---- hand-computed cases --------------------------------------------------------------------------------------------

def test_segment_iou():
    np.testing.assert_allclose(segment_iou([0, 17], np.array([[3, 20], [0, 17], [20, 30], [5, 10]])),
                               [0.7, 1.0, 0.0, 5 / 17])


def test_interpolated_ap_hand_case():
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: envelope 1 then 2/3
    assert interpolated_ap(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(5 / 6)


@pytest.fixture
def two_class_gt(tmp_path):
    return load_ground_truth(gt_file(tmp_path, {
        "a": video("validation", [((0, 17), "Run"), ((40, 60), "Jump")]),
        "b": video("validation", [((10, 30), "Run")]),
        "t": video("training", [((0, 5), "Swim")]),
    }))


def test_perfect_predictions_score_one(two_class_gt):
    m = evaluate_detection(two_class_gt, preds({
        "a": [((0, 17), "Run", 0.9), ((40, 60), "Jump", 0.8)], "b": [((10, 30), "Run", 0.7)]}))
    assert m["average_mAP"] == 100.0 and set(m["mAP_per_tiou"].values()) == {100.0}
    assert m["num_classes"] == 2 and m["num_ground_truth"] == 3


def test_shifted_segment_passes_exactly_the_thresholds_up_to_its_tiou(two_class_gt):
    # Run in video a is predicted at [3, 20]: tIoU 14/20 = 0.7 exactly -> a hit at 0.50..0.70 only (5 of 10)
    m = evaluate_detection(two_class_gt, preds({
        "a": [((3, 20), "Run", 0.9), ((40, 60), "Jump", 0.8)], "b": [((10, 30), "Run", 0.95)]}))
    # Run: recall 1 (precision 1) at tIoU <= 0.7; above, ranks TP, FP -> AP 1/2. Jump: 1 everywhere. (percent)
    assert [m["mAP_per_tiou"][k] for k in ("0.50", "0.65", "0.70")] == [100.0, 100.0, 100.0]
    assert [m["mAP_per_tiou"][k] for k in ("0.75", "0.95")] == [75.0, 75.0]
    assert m["average_mAP"] == pytest.approx((5 * 100.0 + 5 * 75.0) / 10)
    assert m["per_class"] == {"Jump": 100.0, "Run": pytest.approx(75.0)}


def test_shifted_single_segment_gives_half(tmp_path):
    gt = load_ground_truth(gt_file(tmp_path, {"a": video("validation", [((0, 17), "Run")])}))
    m = evaluate_detection(gt, preds({"a": [((3, 20), "Run", 0.5)]}))
    assert m["average_mAP"] == 50.0  # 5 of the 10 thresholds are <= 0.7


def test_duplicates_are_false_positives(two_class_gt):
    # Run: a TP (0.9), its duplicate (0.8, FP), b TP (0.7): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 5/6
    m = evaluate_detection(two_class_gt, preds({
        "a": [((0, 17), "Run", 0.9), ((0, 17), "Run", 0.8), ((40, 60), "Jump", 0.5)],
        "b": [((10, 30), "Run", 0.7)]}))
    assert m["per_class"]["Run"] == pytest.approx(100 * 5 / 6)
    assert m["average_mAP"] == pytest.approx(100 * (5 / 6 + 1) / 2)


def test_low_scored_false_positive_does_not_lower_ap(two_class_gt):
    base = {"a": [((0, 17), "Run", 0.9), ((40, 60), "Jump", 0.8)], "b": [((10, 30), "Run", 0.7)]}
    after = {**base, "b": base["b"] + [((80, 90), "Run", 0.1), ((0, 5), "Jump", 0.05)]}
    assert evaluate_detection(two_class_gt, preds(after))["average_mAP"] == 100.0
    before = {**base, "b": base["b"] + [((80, 90), "Run", 0.99)]}  # the same FP ranked first costs precision
    # Run: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> envelope 2/3 -> AP 2/3
    assert evaluate_detection(two_class_gt, preds(before))["per_class"]["Run"] == pytest.approx(200 / 3)


def test_predictions_outside_the_subset_are_false_positives_like_the_official_code(two_class_gt):
    p = preds({"a": [((0, 17), "Run", 0.5), ((40, 60), "Jump", 0.5)], "b": [((10, 30), "Run", 0.4)],
               "t": [((0, 5), "Run", 0.9)]})
    assert evaluate_detection(two_class_gt, p)["per_class"]["Run"] == pytest.approx(200 / 3)
    assert evaluate_detection(two_class_gt, p, drop_outside_subset=True)["per_class"]["Run"] == 100.0


def test_label_of_another_subset_is_ignored(two_class_gt):
    p = preds({"a": [((0, 17), "Run", 0.9), ((40, 60), "Jump", 0.8), ((0, 17), "Swim", 1.0)],
               "b": [((10, 30), "Run", 0.7)]})
    m = evaluate_detection(two_class_gt, p)
    assert m["average_mAP"] == 100.0 and m["num_predictions"] == 3


def test_unknown_label_is_a_user_error(two_class_gt):
    p = preds({"a": [((0, 17), "Running fast", 0.9)]})
    with pytest.raises(UserError, match="unknown label 'Running fast'.*such as 'Jump', 'Run'"):
        evaluate_detection(two_class_gt, p)


def test_prefixed_ids_are_a_user_error(two_class_gt):
    with pytest.raises(UserError, match="'v_a' must be given without the 'v_' prefix"):
        evaluate_detection(two_class_gt, preds({"v_a": [((0, 17), "Run", 0.9)]}))


@pytest.mark.parametrize("key", ["results", "version", "external_data"])
def test_prediction_file_missing_key(tmp_path, key):
    data = preds({"a": [((0, 17), "Run", 0.9)]})
    del data[key]
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=f"{path}.*lacks the key '{key}'"):
        load_predictions(path)


def test_detection_missing_key():
    data = preds({"a": [((0, 17), "Run", 0.9)]})
    del data["results"]["a"][0]["score"]
    with pytest.raises(UserError, match="video 'a', detection 0 lacks the key 'score'"):
        parse_predictions(data, "p.json")


def test_anet_eval_prints_and_writes(tmp_path, two_class_gt, capsys):
    pred_path = tmp_path / "pred.json"
    pred_path.write_text(json.dumps(preds({"a": [((3, 20), "Run", 0.9), ((40, 60), "Jump", 0.8)],
                                           "b": [((10, 30), "Run", 0.95)]})))
    out = tmp_path / "out" / "metrics.json"
    m = anet_eval(two_class_gt.path, pred_path, out_path=out)
    assert m["average_mAP"] == pytest.approx(87.5)
    assert json.loads(out.read_text())["mAP_per_tiou"]["0.75"] == 75.0
    printed = capsys.readouterr().out
    assert "0.50" in printed and "87.50" in printed


# ---- degenerate detections (a segment that ends before it starts) ---------------------------------------------------

def official_tiou(a, b, ga, gb):
    """tIoU as the official evaluator computes it: the intersection clipped at 0 over the unguarded union."""
    inter = max(0.0, min(b, gb) - max(a, ga))
    union = (b - a) + (gb - ga) - inter
    assert union != 0, "the official code gives NaN here; the cases below avoid it"
    return inter / union


def official_ap(gts, dets, thr):
    """The official evaluator's loop for one class: detections by descending score; for each, its video's ground
    truths by descending tIoU: stop (false positive) at the first tIoU below the threshold, skip matched ones, match
    the first free one. AP: the VOC interpolated sum over the ranks where recall grows."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i][3])
    locked, flags = set(), []
    for i in order:
        v, a, b, _ = dets[i]
        cands = sorted(((official_tiou(a, b, ga, gb), j) for j, (gv, ga, gb) in enumerate(gts) if gv == v),
                       key=lambda c: -c[0])
        hit = False
        for tiou, j in cands:
            if tiou < thr:
                break
            if j in locked:
                continue
            locked.add(j)
            hit = True
            break
        flags.append(hit)
    precision = [sum(flags[: r + 1]) / (r + 1) for r in range(len(flags))]
    return sum(max(precision[r:]) / len(gts) for r in range(len(flags)) if flags[r])


def test_segment_iou_of_a_degenerate_segment_is_zero():
    # [20, 5] against [0, 17]: union 17 - 15 = 2; against [0, 15]: union 0 (NaN officially); against [0, 10]: -5
    np.testing.assert_array_equal(segment_iou([20, 5], np.array([[0, 17], [0, 15], [0, 10], [4, 30]])), [0, 0, 0, 0])


def test_degenerate_detection_is_a_false_positive_hand_case(two_class_gt, tmp_path, capsys):
    # Run: [0, 17] (0.9) TP, [20, 5] (0.8) degenerate FP, b [10, 30] (0.7) TP: precision 1, 1/2, 2/3 at recall
    # 1/2, 1/2, 1 -> AP 1/2 * 1 + 1/2 * 2/3 = 5/6 at every threshold. Jump: 1.
    data = preds({"a": [((0, 17), "Run", 0.9), ((20, 5), "Run", 0.8), ((40, 60), "Jump", 0.5)],
                  "b": [((10, 30), "Run", 0.7)]})
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(data))
    clean = preds({"a": [((0, 17), "Run", 0.9)]})
    assert parse_predictions(clean, "clean.json").num_degenerate == 0 and capsys.readouterr().err == ""
    m = anet_eval(two_class_gt.path, path)
    want_run = [official_ap([("a", 0, 17), ("b", 10, 30)],
                            [("a", 0, 17, 0.9), ("a", 20, 5, 0.8), ("b", 10, 30, 0.7)], t) for t in TIOU_THRESHOLDS]
    assert want_run == pytest.approx([5 / 6] * 10, rel=1e-12)
    assert m["per_class"]["Run"] == pytest.approx(100 * 5 / 6, rel=1e-12)
    assert m["average_mAP"] == pytest.approx(100 * (5 / 6 + 1) / 2, rel=1e-12)
    assert m["num_predictions"] == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: prediction file {path}: 1 of 4 detections end before they start; they overlap "
                   "nothing and count as false positives, as in the official ActivityNet evaluator."]


@pytest.mark.parametrize("seed", range(4))
def test_degenerate_detections_score_as_the_official_evaluator(seed, capsys):
    rng = np.random.default_rng(100 + seed)
    gts, dets = random_case(rng, num_pred=30)
    flip = rng.random(len(dets)) < 0.3  # reverse about a third of the detections: they end before they start
    dets = [(v, b, a, s) if f else (v, a, b, s) for (v, a, b, s), f in zip(dets, flip)]
    got = average_precision(
        [g[0] for g in gts], [g[1:] for g in gts], [d[0] for d in dets], [d[1:3] for d in dets],
        [d[3] for d in dets], TIOU_THRESHOLDS,
    )
    want = [official_ap(gts, dets, t) for t in TIOU_THRESHOLDS]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert 0 < np.mean(want) < 1
    # parse_predictions keeps them, counts them, and says so in one line
    results = {}
    for v, a, b, s in dets:
        results.setdefault(v, []).append(((a, b), "Run", s))
    p = parse_predictions(preds(results), "p.json")
    assert p.num_degenerate == int(flip.sum()) > 0
    assert f"p.json: {int(flip.sum())} of 30 detections end before they start" in capsys.readouterr().err


@pytest.mark.parametrize("segment, message", [
    (["x", 3], r"'segment' is 'x', not a number"),
    ([1, 2, 3], r"'segment' must be a \[start, end\] pair in seconds"),
    ([None, 3], r"'segment' is None, not a number"),
    ([0, float("inf")], r"'segment' must hold two finite numbers of seconds"),
])
def test_malformed_segment_is_still_refused(segment, message):
    data = preds({"a": [((0, 17), "Run", 0.9)]})
    data["results"]["a"][0]["segment"] = segment
    with pytest.raises(UserError, match=f"prediction file p.json, video 'a', detection 0, {message}"):
        parse_predictions(data, "p.json")


def test_non_string_label_and_score_are_refused():
    data = preds({"a": [((0, 17), "Run", 0.9)]})
    data["results"]["a"][0]["label"] = ["Run"]
    with pytest.raises(UserError, match=r"detection 0 has the label \['Run'\], not a class name"):
        parse_predictions(data, "p.json")
    data = preds({"a": [((0, 17), "Run", "high")]})
    with pytest.raises(UserError, match="detection 0, 'score' is 'high', not a number"):
        parse_predictions(data, "p.json")
