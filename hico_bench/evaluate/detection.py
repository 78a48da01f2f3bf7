"""The ActivityNet temporal action detection metric: prediction files, tIoU, AP and mAP.

Written from the protocol of the official evaluator (activitynet/ActivityNet, ``Evaluation/eval_detection.py`` and
``Evaluation/utils.py``). For each class of the evaluated subset and each tIoU threshold, the predictions of that class
are taken in descending score order and each is matched greedily to the not-yet-matched ground-truth segment of the
same class and video with the highest tIoU, if that tIoU is at least the threshold; otherwise it is a false positive
(so a duplicate of an already matched detection is a false positive). AP is the VOC-style interpolated area under the
precision/recall curve; ``mAP`` per threshold is the mean over the classes that have ground truth in the subset, and
``average_mAP`` the mean over the thresholds (default 0.50:0.05:0.95).

A prediction file has the official layout ``{"version", "results": {video id: [{"label", "score", "segment": [t0,
t1]}, ...]}, "external_data"}``, video ids bare (no ``v_`` prefix), labels exact class names of the ground truth.

Choices where the official code is silent or crashes, kept so that its numbers are reproduced on valid inputs:

* Like the official evaluator, a prediction for a video that has no ground truth of that class counts as a false
  positive, including a video outside the evaluated subset; ``drop_outside_subset=True`` ignores predictions for
  videos outside the subset instead.
* Equal scores keep the order of the prediction file (stable sort); equal tIoUs prefer the earlier ground truth.
* A label that is a class of the file but has no ground truth in the subset is ignored (the official code raises a
  ``KeyError``; such predictions cannot change any class's AP). A label unknown to the file is a :class:`UserError`.
* No blocked-video list is fetched (the official ``check_status`` needs a server that no longer answers).
* A detection whose segment ends before it starts (a degenerate detection) is scored, not refused, as the official
  evaluator scores it: its intersection with every segment is 0, so its tIoU is 0 and it counts as a false positive
  at every threshold above 0. :func:`parse_predictions` prints one warning line with their count. The official code
  divides by the union without a guard: when a ground-truth segment's length equals the detection's reversed length
  the union is 0, its tIoU is NaN, and NaN passes its ``tiou < threshold`` test, so it would count that detection as
  a true positive; here :func:`segment_iou` gives 0 for any union that is not positive, so it never matches.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from hico_bench.errors import UserError
from hico_bench.evaluate.feature_formats import PREFIX
from hico_bench.evaluate.ground_truth import (
    GroundTruth,
    SegmentTable,
    load_ground_truth,
    read_json_file,
    to_float,
    to_segment,
)
from hico_bench.io import write_json

TIOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
PREDICTION_KEYS = ("results", "version", "external_data")
RESULT_KEYS = ("label", "score", "segment")


# --------------------------------------------------------------------------------------------------------------------
# Prediction files


@dataclass(frozen=True)
class Predictions:
    source: str  # file name (or a description) for error messages
    segments: SegmentTable
    num_degenerate: int = 0  # detections whose segment ends before it starts (kept; they never match)


def parse_predictions(data: Any, source: str = "predictions") -> Predictions:
    """Check and flatten a prediction object in the official layout (``version``, ``results``, ``external_data``).

    A missing key, a segment that is not two finite numbers, a non-numeric score or a label that is not a string is a
    :class:`UserError`. Detections whose segment ends before it starts are kept (they score as false positives, see
    the module docstring), with one warning line on stderr giving their count.
    """
    if not isinstance(data, dict):
        raise UserError(f"prediction file {source} must hold a JSON object with {', '.join(PREDICTION_KEYS)}.")
    for key in PREDICTION_KEYS:
        if key not in data:
            raise UserError(
                f"prediction file {source} lacks the key {key!r} "
                f"(the official layout needs {', '.join(PREDICTION_KEYS)})."
            )
    results = data["results"]
    if not isinstance(results, dict):
        raise UserError(f"prediction file {source}: 'results' must map video ids to lists of detections.")
    rows: list[tuple[str, float, float, str, float]] = []
    degenerate = 0
    for vid, dets in results.items():
        if not isinstance(dets, list):
            raise UserError(f"prediction file {source}: results of video {vid!r} must be a list of detections.")
        for i, det in enumerate(dets):
            where = f"prediction file {source}, video {vid!r}, detection {i}"
            for key in RESULT_KEYS:
                if not isinstance(det, dict) or key not in det:
                    raise UserError(f"{where} lacks the key {key!r}.")
            if not isinstance(det["label"], str):
                raise UserError(f"{where} has the label {det['label']!r}, not a class name.")
            t0, t1 = to_segment(det["segment"], f"{where}, 'segment'")
            degenerate += t1 < t0
            rows.append((str(vid), t0, t1, det["label"], to_float(det["score"], f"{where}, 'score'")))
    if degenerate:
        print(f"warning: prediction file {source}: {degenerate} of {len(rows)} detections end before they start; "
              f"they overlap nothing and count as false positives, as in the official ActivityNet evaluator.",
              file=sys.stderr)
    return Predictions(source=source, segments=SegmentTable.from_rows(rows), num_degenerate=degenerate)


def load_predictions(path: str | os.PathLike) -> Predictions:
    """Read a prediction file in the official layout ``{"version", "results": {id: [{label, score, segment}]},
    "external_data"}`` (see :func:`parse_predictions`)."""
    return parse_predictions(read_json_file(path, "prediction"), source=str(path))


# --------------------------------------------------------------------------------------------------------------------
# Metric


def segment_iou(target: Sequence[float], candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of one ``[start, end]`` segment with each row of an N x 2 array of segments.

    The intersection is clipped at 0; a pair whose union is not positive (possible only when a segment ends before
    it starts, or both have length 0) has tIoU 0.
    """
    cand = np.asarray(candidates, dtype=np.float64).reshape(-1, 2)
    t0, t1 = float(target[0]), float(target[1])
    inter = np.clip(np.minimum(t1, cand[:, 1]) - np.maximum(t0, cand[:, 0]), 0.0, None)
    union = (t1 - t0) + (cand[:, 1] - cand[:, 0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-style interpolated AP: the area under the precision envelope (the running max from the right)."""
    prec = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    rec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    envelope = np.maximum.accumulate(prec[::-1])[::-1]
    steps = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    return float(np.sum((rec[steps] - rec[steps - 1]) * envelope[steps]))


def average_precision(
    gt_videos: Sequence[str],
    gt_segments: np.ndarray,
    pred_videos: Sequence[str],
    pred_segments: np.ndarray,
    pred_scores: Sequence[float],
    tiou_thresholds: Sequence[float] = TIOU_THRESHOLDS,
) -> np.ndarray:
    """AP of one class at each tIoU threshold, as fractions (see the module docstring for the matching rule).

    ``gt_segments`` and ``pred_segments`` are N x 2 arrays of [start, end] seconds. Returns one AP per threshold.
    """
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    gt_seg = np.asarray(gt_segments, dtype=np.float64).reshape(-1, 2)
    pred_seg = np.asarray(pred_segments, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(pred_scores, dtype=np.float64)
    num_gt = len(gt_seg)
    if num_gt == 0:
        raise ValueError("average precision needs at least one ground-truth segment")
    num_pred = len(pred_seg)
    if num_pred == 0:
        return np.zeros(len(thresholds))
    gt_by_video: dict[str, list[int]] = {}
    for j, vid in enumerate(gt_videos):
        gt_by_video.setdefault(vid, []).append(j)
    gt_by_video_idx = {vid: np.array(idx) for vid, idx in gt_by_video.items()}
    order = np.argsort(-scores, kind="stable")
    matched = np.zeros((len(thresholds), num_gt), dtype=bool)
    tp = np.zeros((len(thresholds), num_pred), dtype=bool)
    for rank, p in enumerate(order):
        cand = gt_by_video_idx.get(pred_videos[p])
        if cand is None:
            continue
        tiou = segment_iou(pred_seg[p], gt_seg[cand])
        by_tiou = np.argsort(-tiou, kind="stable")
        cand, tiou = cand[by_tiou], tiou[by_tiou]
        free = (tiou[None, :] >= thresholds[:, None]) & ~matched[:, cand]  # (thresholds, candidates)
        hit = free.any(axis=1)
        first = free.argmax(axis=1)
        matched[np.flatnonzero(hit), cand[first[hit]]] = True
        tp[hit, rank] = True
    tp_cum = np.cumsum(tp, axis=1)
    precision = tp_cum / np.arange(1, num_pred + 1)[None, :]
    recall = tp_cum / num_gt
    return np.array([interpolated_ap(precision[t], recall[t]) for t in range(len(thresholds))])


def _tiou_key(t: float) -> str:
    return f"{t:.2f}"


def _rows_by_label(labels: np.ndarray) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        rows.setdefault(label, []).append(i)
    return {label: np.array(idx, dtype=np.int64) for label, idx in rows.items()}


def evaluate_detection(
    gt: GroundTruth,
    preds: Predictions | Mapping[str, Any],
    tiou_thresholds: Sequence[float] = TIOU_THRESHOLDS,
    drop_outside_subset: bool = False,
) -> dict[str, Any]:
    """Score detections of one ground-truth subset with the ActivityNet protocol (a mapping ``preds`` is first
    checked by :func:`parse_predictions`).

    Returns ``{"average_mAP", "mAP@0.50", ..., "mAP@0.95", "mAP_per_tiou": {"0.50": ...}, "per_class": {class: AP
    averaged over thresholds}, "subset", "num_classes", "num_ground_truth", "num_predictions"}``. Unlike
    :func:`average_precision` (fractions), these values are in percent, like the project's other metrics; the flat
    ``mAP@t`` keys repeat ``mAP_per_tiou`` for the results tables. ``num_predictions`` counts the predictions scored
    (those whose label has ground truth in the subset).
    """
    if not isinstance(preds, Predictions):
        preds = parse_predictions(preds)
    if not gt.classes:
        raise UserError(f"ground-truth file {gt.path} has no annotated segment in subset {gt.subset!r}.")
    table = preds.segments
    unknown = sorted(set(table.label) - gt.known_labels)
    if unknown:
        label = unknown[0]
        vid = table.video[np.flatnonzero(table.label == label)[0]]
        examples = ", ".join(repr(c) for c in gt.classes[:3])
        raise UserError(
            f"prediction file {preds.source}: video {vid!r} has the unknown label {label!r}; labels must be exact "
            f"class names of {gt.path} such as {examples} ({len(gt.known_labels)} in all)."
        )
    for vid in set(table.video) - gt.all_videos:
        if vid.startswith(PREFIX) and vid[len(PREFIX):] in gt.all_videos:
            raise UserError(
                f"prediction file {preds.source}: video id {vid!r} must be given without the {PREFIX!r} prefix."
            )
    keep = np.isin(table.label, gt.classes)
    if drop_outside_subset:
        keep &= np.isin(table.video, list(gt.durations))
    table = table.select(keep)
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    ap = np.zeros((len(gt.classes), len(thresholds)))
    gt_seg = np.stack([gt.segments.start, gt.segments.end], axis=1)
    pred_seg = np.stack([table.start, table.end], axis=1)
    gt_rows, pred_rows = _rows_by_label(gt.segments.label), _rows_by_label(table.label)
    empty = np.zeros(0, dtype=np.int64)
    for c, name in enumerate(gt.classes):
        g, p = gt_rows[name], pred_rows.get(name, empty)
        ap[c] = average_precision(
            gt.segments.video[g], gt_seg[g], table.video[p], pred_seg[p], table.score[p], thresholds
        )
    ap = 100.0 * ap
    mean_ap = ap.mean(axis=0)
    per_tiou = {_tiou_key(t): float(m) for t, m in zip(thresholds, mean_ap)}
    return {
        "average_mAP": float(mean_ap.mean()),
        **{f"mAP@{key}": value for key, value in per_tiou.items()},
        "mAP_per_tiou": per_tiou,
        "per_class": {name: float(ap[c].mean()) for c, name in enumerate(gt.classes)},
        "subset": gt.subset,
        "num_classes": len(gt.classes),
        "num_ground_truth": len(gt.segments),
        "num_predictions": len(table),
    }


def format_table(metrics: Mapping[str, Any]) -> str:
    """A small text table: mAP (%) at each tIoU threshold and the average."""
    keys = list(metrics["mAP_per_tiou"])
    head = "tIoU  " + " ".join(f"{k:>6}" for k in keys) + "   average"
    vals = "mAP % " + " ".join(f"{metrics['mAP_per_tiou'][k]:6.2f}" for k in keys)
    return f"{head}\n{vals}   {metrics['average_mAP']:7.2f}"


def anet_eval(
    ground_truth_path: str | os.PathLike,
    predictions_path: str | os.PathLike,
    subset: str = "validation",
    out_path: str | os.PathLike | None = None,
    tiou_thresholds: Sequence[float] = TIOU_THRESHOLDS,
) -> dict[str, Any]:
    """Score a prediction file against one subset of a ground-truth file (each read once), print the table to
    stdout, and write the metrics JSON (atomically) when ``out_path`` is given.

    Returns :func:`evaluate_detection`'s metrics plus ``ground_truth`` and ``predictions`` (the two paths).
    """
    gt = load_ground_truth(ground_truth_path, subset=subset)
    metrics = evaluate_detection(gt, load_predictions(predictions_path), tiou_thresholds=tiou_thresholds)
    metrics = {**metrics, "ground_truth": str(ground_truth_path), "predictions": str(predictions_path)}
    print(format_table(metrics))
    if out_path is not None:
        write_json(out_path, metrics)
    return metrics
