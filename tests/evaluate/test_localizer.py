import json

import numpy as np
import pytest

from hico_bench.errors import UserError
from hico_bench.evaluate.detection import evaluate_detection, load_predictions
from hico_bench.evaluate.feature_formats import write_npy_features
from hico_bench.evaluate.ground_truth import GroundTruthFile, load_ground_truth
from hico_bench.evaluate.localizer import (
    localization_probe,
    run_localization,
    snippet_labels,
    soft_nms,
)
from hico_bench.settings import LOCALIZE
from tests.evaluate.test_ground_truth import gt_file, video


# ---- the probe ------------------------------------------------------------------------------------------------------

def test_snippet_labels():
    times = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(snippet_labels(times, [(1.0, 3.0, 2), (2.0, 4.0, 1)]), [0, 2, 2, 1, 0])


def test_soft_nms_hand_case():
    segs = np.array([[0, 10], [0, 10], [20, 30], [0, 5]])
    got = soft_nms(segs, np.array([0.9, 0.8, 0.5, 0.7]), sigma=0.5)
    # [0, 10] (0.9) is taken first: its duplicate decays by exp(-1 / 0.5), [0, 5] (tIoU 0.5) by exp(-0.25 / 0.5);
    # then [20, 30] (0.5, no overlap), then [0, 5] (0.42), which decays the duplicate once more by exp(-0.5)
    np.testing.assert_allclose(got, [0.9, 0.8 * np.exp(-2.5), 0.5, 0.7 * np.exp(-0.5)])
    np.testing.assert_array_equal(soft_nms(segs, np.array([0.9, 0.8, 0.5, 0.7]), sigma=None), [0.9, 0.8, 0.5, 0.7])


def write_synthetic(tmp_path, rng, num_train=30, num_eval=15, dim=12):
    classes = ["Archery", "Bathing dog", "Cleaning shoes"]
    means = rng.normal(scale=2.0, size=(len(classes) + 1, dim))  # row 0: background
    feat_dir = tmp_path / "features"
    database = {}
    for i in range(num_train + num_eval):
        vid = f"vid{i:03d}_X"
        num_snippets = int(rng.integers(30, 60))  # stride 16 at 16 fps: one snippet per second
        duration = float(num_snippets)
        anns, labels = [], np.zeros(num_snippets, dtype=int)
        start = rng.uniform(0, 5)
        while start < duration - 8:
            length = rng.uniform(6, 15)
            end = min(start + length, duration)
            c = int(rng.integers(len(classes)))
            anns.append(((start, end), classes[c]))
            centres = np.arange(num_snippets) + 0.5
            labels[(centres >= start) & (centres < end)] = c + 1
            start = end + rng.uniform(4, 12)
        feats = means[labels] + rng.normal(scale=0.7, size=(num_snippets, dim))
        write_npy_features(feat_dir, vid, feats, {"stride": 16, "frames_per_snippet": 16, "fps": 16.0,
                                                   "duration": duration})
        database[vid] = video("training" if i < num_train else "validation", anns, duration=duration)
    return feat_dir, gt_file(tmp_path, database)


def test_probe_localizes_separable_actions(tmp_path):
    feat_dir, gt_path = write_synthetic(tmp_path, np.random.default_rng(0))
    out = tmp_path / "pred.json"
    predictions = localization_probe(feat_dir, feat_dir, gt_path, out)
    assert json.loads(out.read_text()) == predictions
    assert sorted(predictions["results"]) == [f"vid{i:03d}_X" for i in range(30, 45)]  # validation videos only
    det = predictions["results"]["vid030_X"][0]
    assert set(det) == {"label", "score", "segment"} and det["label"] in {"Archery", "Bathing dog", "Cleaning shoes"}
    metrics = evaluate_detection(load_ground_truth(gt_path), load_predictions(out))
    assert metrics["average_mAP"] > 50
    assert metrics["mAP@0.50"] > 80


def test_run_localization_reads_the_ground_truth_once_and_scores_the_probe(tmp_path, monkeypatch):
    feat_dir, gt_path = write_synthetic(tmp_path, np.random.default_rng(0))
    parses = []
    parse = GroundTruthFile.parse.__func__

    def counting_parse(cls, data, path):
        parses.append(str(path))
        return parse(cls, data, path)

    monkeypatch.setattr(GroundTruthFile, "parse", classmethod(counting_parse))
    out = tmp_path / "run" / "pred.json"
    result = run_localization(feat_dir, gt_path, out, {})
    assert parses == [str(gt_path)]
    monkeypatch.undo()
    # the same detections and numbers as the probe followed by the evaluator, each reading the file itself
    predictions = localization_probe(feat_dir, feat_dir, gt_path)
    assert json.loads(out.read_text()) == predictions
    metrics = evaluate_detection(load_ground_truth(gt_path, "validation"), load_predictions(out))
    assert set(result) == {"metrics", "mAP_per_tiou", "protocol"}
    assert result["metrics"] == {k: v for k, v in metrics.items() if k == "average_mAP" or k.startswith("mAP@")}
    assert list(result["metrics"])[:2] == ["average_mAP", "mAP@0.50"] and len(result["metrics"]) == 11
    assert result["mAP_per_tiou"] == metrics["mAP_per_tiou"]
    assert result["protocol"] == {"localizer": "linear snippet probe (actionness runs + soft-NMS)",
                                  "subset": "validation", "tiou_thresholds": "0.5:0.05:0.95",
                                  "predictions": str(out)}
    assert result["metrics"]["average_mAP"] > 50


def test_probe_settings_are_applied_and_checked(tmp_path):
    feat_dir, gt_path = write_synthetic(tmp_path, np.random.default_rng(1), num_train=12, num_eval=4)
    one = localization_probe(feat_dir, feat_dir, gt_path, settings={"top_classes": 1, "nms_sigma": None})
    two = localization_probe(feat_dir, feat_dir, gt_path, settings={"top_classes": 2, "nms_sigma": None})
    for vid, dets in one["results"].items():
        segments = [tuple(d["segment"]) for d in dets]
        assert len(segments) == len(set(segments))  # one label per candidate segment
        assert len(two["results"][vid]) == 2 * len(dets)  # two labels per candidate (three classes)
    swapped = localization_probe(feat_dir, feat_dir, gt_path,
                                 settings={"train_subset": "validation", "eval_subset": "training"})
    assert len(swapped["results"]) == 12
    with pytest.raises(UserError, match="unknown setting 'probe.sigma'; the valid keys of probe are: C, eval_s"):
        run_localization(feat_dir, gt_path, tmp_path / "p.json", {"sigma": 0.3})
    with pytest.raises(UserError, match="unknown subset.*'test'.*training, validation"):
        run_localization(feat_dir, gt_path, tmp_path / "p.json", {"eval_subset": "test"})
    assert not (tmp_path / "p.json").exists()
    assert set(LOCALIZE.keys) == {"train_subset", "eval_subset", "C", "max_snippets", "max_iter", "seed",
                                  "thresholds", "smooth", "top_classes", "use_video_scores", "nms_sigma"}
