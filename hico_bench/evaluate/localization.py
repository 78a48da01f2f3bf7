"""Temporal action localization on ActivityNet v1.3: the official detection metric and a light linear probe.

**Metric** (formats.md section 3.4; written from the protocol of activitynet/ActivityNet ``Evaluation/``): for each
class of the evaluated subset and each tIoU threshold, predictions of that class are taken in descending score order
and each is matched greedily to the not-yet-matched ground-truth segment of the same class and video with the
highest tIoU, if that tIoU is at least the threshold; otherwise it is a false positive (so a duplicate of an already
matched detection is a false positive). AP is the VOC-style interpolated area under the precision/recall curve;
``mAP`` per threshold is the mean over the classes that have ground truth in the subset, and ``average_mAP`` the mean
over thresholds (default 0.50:0.05:0.95). :func:`evaluate_detection` reports them in percent.

Choices where the official code is silent or crashes, kept so that its numbers are reproduced on valid inputs:

* Like the official evaluator, a prediction for a video that has no ground truth of that class counts as a false
  positive, including a video outside the evaluated subset; ``drop_outside_subset=True`` ignores predictions for
  videos outside the subset instead.
* Equal scores keep the order of the prediction file (stable sort); equal tIoUs prefer the earlier ground truth.
* A label that is a class of the file but has no ground truth in the subset is ignored (the official code raises a
  ``KeyError``; such predictions cannot change any class's AP). A label unknown to the file is a :class:`UserError`.
* No blocked-video list is fetched (the official ``check_status`` needs a dead server).

**Probe**: a linear classifier on frozen snippet features labels each snippet with its action class or background;
runs of snippets whose actionness (1 - P(background)) exceeds a few thresholds become segments, each labelled with
its most probable classes and de-duplicated by Gaussian soft-NMS (see :func:`predict_segments`). Class-agnostic
segments labelled by class scores are what ActivityNet localizers do (BMN, G-TAD and ActionFormer score class-agnostic
proposals with video-level classes).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from tqdm import tqdm

from hico_bench.errors import UserError, choice_error
from hico_bench.evaluate.feature_formats import PREFIX, read_npy_features, snippet_centres
from hico_bench.io import write_json

TIOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
PREDICTION_KEYS = ("results", "version", "external_data")
RESULT_KEYS = ("label", "score", "segment")


# --------------------------------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class SegmentTable:
    """A flat table of labelled segments (one row per segment); ``score`` is 1 for ground truth."""

    video: np.ndarray  # object array of bare video ids
    start: np.ndarray  # float64 seconds
    end: np.ndarray
    label: np.ndarray  # object array of class names
    score: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, float, float, str, float]]) -> "SegmentTable":
        cols = list(zip(*rows)) if rows else [(), (), (), (), ()]
        return cls(
            video=np.array(cols[0], dtype=object),
            start=np.array(cols[1], dtype=np.float64),
            end=np.array(cols[2], dtype=np.float64),
            label=np.array(cols[3], dtype=object),
            score=np.array(cols[4], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.video)

    def select(self, mask: np.ndarray) -> "SegmentTable":
        return SegmentTable(self.video[mask], self.start[mask], self.end[mask], self.label[mask], self.score[mask])


@dataclass(frozen=True)
class GroundTruth:
    """One subset of an ActivityNet-layout annotation file."""

    path: str
    subset: str
    durations: dict[str, float]  # every video of the subset (NaN when the file gives no duration)
    segments: SegmentTable  # the subset's annotated segments
    classes: list[str]  # sorted names of the classes with at least one segment in the subset
    known_labels: frozenset[str]  # taxonomy leaves and every annotation label of the file (any subset)
    all_videos: frozenset[str] = field(default_factory=frozenset)  # ids of every subset


@dataclass(frozen=True)
class Predictions:
    source: str  # file name (or a description) for error messages
    segments: SegmentTable


def _read_json_file(path: str | os.PathLike, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file {path} does not exist.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} file {path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None


def _float(value: Any, where: str) -> float:
    try:
        out = float(value)  # HACS writes durations as strings
    except (TypeError, ValueError):
        raise UserError(f"{where} is {value!r}, not a number.") from None
    return out


def _segment(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserError(f"{where} must be a [start, end] pair in seconds, got {value!r}.")
    return _float(value[0], where), _float(value[1], where)


def _taxonomy_leaves(taxonomy: Any) -> set[str]:
    if not isinstance(taxonomy, list):
        return set()
    nodes = [n for n in taxonomy if isinstance(n, dict) and "nodeName" in n]
    parents = {n.get("parentName") for n in nodes}
    return {n["nodeName"] for n in nodes if n["nodeName"] not in parents}


def load_ground_truth(path: str | os.PathLike, subset: str = "validation") -> GroundTruth:
    """Read an ActivityNet v1.3-layout annotation file (``database``, ``taxonomy``, ``version``) for one subset.

    Video ids are the bare YouTube ids (no ``v_``). Durations may be strings (HACS). The official evaluator also
    requires ``taxonomy`` and ``version``; here only ``database`` is required, so that HACS files load as well.
    """
    data = _read_json_file(path, "ground-truth")
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise UserError(f"ground-truth file {path} lacks the key 'database' (the ActivityNet layout).")
    database = data["database"]
    known = _taxonomy_leaves(data.get("taxonomy"))
    subsets: set[str] = set()
    durations: dict[str, float] = {}
    rows: list[tuple[str, float, float, str, float]] = []
    for vid, info in database.items():
        where = f"ground-truth file {path}, video {vid!r}"
        if not isinstance(info, dict) or "subset" not in info:
            raise UserError(f"{where} lacks the key 'subset'.")
        anns = info.get("annotations") or []
        for i, ann in enumerate(anns):
            for key in ("segment", "label"):
                if not isinstance(ann, dict) or key not in ann:
                    raise UserError(f"{where}, annotation {i} lacks the key {key!r}.")
            known.add(ann["label"])
        subsets.add(info["subset"])
        if info["subset"] != subset:
            continue
        dur = info.get("duration")
        durations[vid] = math.nan if dur is None else _float(dur, f"{where}, 'duration'")
        for i, ann in enumerate(anns):
            t0, t1 = _segment(ann["segment"], f"{where}, annotation {i}, 'segment'")
            rows.append((vid, t0, t1, ann["label"], 1.0))
    if subset not in subsets:
        raise choice_error(f"subset (in {path})", subset, subsets)
    segments = SegmentTable.from_rows(rows)
    return GroundTruth(
        path=str(path),
        subset=subset,
        durations=durations,
        segments=segments,
        classes=sorted(set(segments.label)),
        known_labels=frozenset(known),
        all_videos=frozenset(database),
    )


def parse_predictions(data: Any, source: str = "predictions") -> Predictions:
    """Check and flatten a prediction object in the official layout (``version``, ``results``, ``external_data``)."""
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
    for vid, dets in results.items():
        if not isinstance(dets, list):
            raise UserError(f"prediction file {source}: results of video {vid!r} must be a list of detections.")
        for i, det in enumerate(dets):
            where = f"prediction file {source}, video {vid!r}, detection {i}"
            for key in RESULT_KEYS:
                if not isinstance(det, dict) or key not in det:
                    raise UserError(f"{where} lacks the key {key!r}.")
            t0, t1 = _segment(det["segment"], f"{where}, 'segment'")
            if t1 < t0:
                raise UserError(f"{where} has a segment that ends before it starts ({t0}, {t1}).")
            rows.append((str(vid), t0, t1, det["label"], _float(det["score"], f"{where}, 'score'")))
    return Predictions(source=source, segments=SegmentTable.from_rows(rows))


def load_predictions(path: str | os.PathLike) -> Predictions:
    """Read a prediction file in the official layout ``{"version", "results": {id: [{label, score, segment}]},
    "external_data"}``."""
    return parse_predictions(_read_json_file(path, "prediction"), source=str(path))


# --------------------------------------------------------------------------------------------------------------------
# Metric


def segment_iou(target: Sequence[float], candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of one ``[start, end]`` segment with each row of an N x 2 array of segments."""
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
    """AP of one class at each tIoU threshold (see the module docstring for the matching rule).

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
    """Score detections with the ActivityNet protocol.

    Returns ``{"average_mAP", "mAP@0.50", ..., "mAP@0.95", "mAP_per_tiou": {"0.50": ...}, "per_class": {class: AP
    averaged over thresholds}, "subset", "num_classes", "num_ground_truth", "num_predictions"}``. Unlike
    :func:`average_precision` (fractions), these values are in percent, like the project's other metrics; the flat
    ``mAP@t`` keys repeat ``mAP_per_tiou`` for the results tables.
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
    gt_path: str | os.PathLike,
    pred_path: str | os.PathLike,
    subset: str = "validation",
    out_path: str | os.PathLike | None = None,
    tiou_thresholds: Sequence[float] = TIOU_THRESHOLDS,
) -> dict[str, Any]:
    """Evaluate a prediction file against a ground-truth file, print a table, and write the metrics JSON if asked."""
    gt = load_ground_truth(gt_path, subset=subset)
    metrics = evaluate_detection(gt, load_predictions(pred_path), tiou_thresholds=tiou_thresholds)
    metrics = {**metrics, "ground_truth": str(gt_path), "predictions": str(pred_path)}
    print(format_table(metrics))
    if out_path is not None:
        write_json(out_path, metrics)
    return metrics


# --------------------------------------------------------------------------------------------------------------------
# Linear localization probe


class VideoFeatures(NamedTuple):
    feats: np.ndarray  # T x C float32
    times: np.ndarray  # T snippet centre times (s)
    duration: float  # seconds


def load_feature_dir(feat_dir: str | os.PathLike, video_ids: Iterable[str] | None = None) -> dict[str, VideoFeatures]:
    """Read ``v_<id>.npy`` + sidecar files of ``feat_dir`` (all of them, or those of ``video_ids`` that exist)."""
    feat_dir = Path(feat_dir)
    if not feat_dir.is_dir():
        raise UserError(f"feature folder {feat_dir} does not exist.")
    present = {p.stem[len(PREFIX):] for p in feat_dir.glob(f"{PREFIX}*.json")}
    ids = sorted(present if video_ids is None else present.intersection(video_ids))
    out: dict[str, VideoFeatures] = {}
    for vid in tqdm(ids, desc=f"read features {feat_dir.name}", unit="video", file=sys.stderr, leave=False):
        feats, meta = read_npy_features(feat_dir, vid)
        out[vid] = VideoFeatures(feats, snippet_centres(meta, len(feats)), float(meta["duration"]))
    return out


def snippet_labels(times: np.ndarray, segments: Sequence[tuple[float, float, int]]) -> np.ndarray:
    """Label of each snippet centre: the class of the first segment ``start <= t < end`` covering it, else 0."""
    labels = np.zeros(len(times), dtype=np.int64)
    for t0, t1, cls in reversed(list(segments)):  # the first segment in file order wins
        labels[(times >= t0) & (times < t1)] = cls
    return labels


@dataclass
class SnippetClassifier:
    """A fitted per-snippet classifier: column 0 of :meth:`predict_proba` is background, column c ``classes[c-1]``."""

    model: Any  # sklearn Pipeline(StandardScaler, LogisticRegression)
    classes: list[str]

    def predict_proba(self, feats: np.ndarray) -> np.ndarray:
        proba = self.model.predict_proba(np.asarray(feats, dtype=np.float32))
        full = np.zeros((len(proba), len(self.classes) + 1))
        full[:, self.model.classes_] = proba  # classes never seen in training keep probability 0
        return full


def fit_snippet_classifier(
    features_by_video: Mapping[str, VideoFeatures],
    gt: GroundTruth,
    C: float = 1.0,
    max_snippets: int = 200_000,
    max_iter: int = 1000,
    seed: int = 0,
) -> SnippetClassifier:
    """Train standardisation + multinomial logistic regression on the snippets of the ground truth's videos.

    Each snippet is labelled with the class of the ground-truth segment covering its centre, or background. Videos of
    ``features_by_video`` outside ``gt``'s subset are skipped. At most ``max_snippets`` snippets (a random subset,
    fixed by ``seed``) are used.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    index = {name: i + 1 for i, name in enumerate(gt.classes)}
    by_video: dict[str, list[tuple[float, float, int]]] = {}
    for vid, t0, t1, label in zip(gt.segments.video, gt.segments.start, gt.segments.end, gt.segments.label):
        by_video.setdefault(vid, []).append((t0, t1, index[label]))
    xs, ys = [], []
    for vid in sorted(features_by_video):
        if vid not in gt.durations:
            continue
        vf = features_by_video[vid]
        xs.append(vf.feats)
        ys.append(snippet_labels(vf.times, by_video.get(vid, [])))
    if not xs:
        raise UserError(f"no feature file belongs to a video of subset {gt.subset!r} of {gt.path}.")
    x = np.concatenate(xs).astype(np.float32, copy=False)
    y = np.concatenate(ys)
    if len(x) > max_snippets:
        pick = np.sort(np.random.default_rng(seed).choice(len(x), size=max_snippets, replace=False))
        x, y = x[pick], y[pick]
    if len(np.unique(y)) < 2:
        raise UserError(f"the training snippets of subset {gt.subset!r} of {gt.path} all have one label.")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
    model.fit(x, y)
    return SnippetClassifier(model=model, classes=list(gt.classes))


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (first, last) index pairs."""
    padded = np.concatenate([[False], active, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[0::2], edges[1::2])]


def soft_nms(segments: np.ndarray, scores: np.ndarray, sigma: float | None = 0.5) -> np.ndarray:
    """Gaussian soft-NMS: taking segments in descending (decayed) score order, multiply the scores of the remaining
    ones by ``exp(-tIoU^2 / sigma)`` with the one taken. Returns the decayed scores in input order (``sigma=None``
    returns them unchanged)."""
    out = np.asarray(scores, dtype=np.float64).copy()
    if sigma is None:
        return out
    segs = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    remaining = list(range(len(out)))
    while remaining:
        best = max(remaining, key=lambda i: out[i])
        remaining.remove(best)
        if remaining:
            rest = np.array(remaining)
            out[rest] *= np.exp(-segment_iou(segs[best], segs[rest]) ** 2 / sigma)
    return out


def predict_segments(
    feats: np.ndarray,
    times: np.ndarray,
    classifier: SnippetClassifier,
    duration: float | None = None,
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    smooth: Sequence[int] = (1, 5),
    top_classes: int = 2,
    use_video_scores: bool = True,
    nms_sigma: float | None = 0.5,
) -> list[dict[str, Any]]:
    """Detections of one video in the official layout: ``[{"label", "score", "segment": [t0, t1]}, ...]``.

    Actionness ``a(t) = 1 - P(background)`` is optionally smoothed (a moving average over each window size of
    ``smooth`` snippets); each run of consecutive snippets with ``a > threshold`` (for each threshold) is a candidate
    segment from half a snippet spacing before its first centre to half a spacing after its last (clipped to
    ``[0, duration]``). Identical candidates are merged. Each candidate is labelled with its ``top_classes`` most
    probable classes, ``q_c = sum_t P(c|t) / sum_t (1 - P(bg|t))`` over its snippets, and scored
    ``mean a(t) * q_c``, times (if ``use_video_scores``) the same class share computed over the whole video. Last,
    the scores of each class's segments go through :func:`soft_nms` (``nms_sigma=None`` skips it).
    """
    from scipy.ndimage import uniform_filter1d

    times = np.asarray(times, dtype=np.float64)
    proba = classifier.predict_proba(feats)
    if len(proba) != len(times):
        raise ValueError(f"{len(proba)} feature rows but {len(times)} snippet times")
    if len(proba) == 0:
        return []
    spacing = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    end_limit = math.inf if duration is None or not np.isfinite(duration) else float(duration)
    action = proba[:, 1:]
    video_share = action.sum(axis=0) / max(action.sum(), 1e-12)
    candidates: dict[tuple[float, float], float] = {}
    spans: dict[tuple[float, float], tuple[int, int]] = {}
    for window in smooth:
        actionness = 1.0 - proba[:, 0]
        if window > 1:
            actionness = uniform_filter1d(actionness, size=int(window), mode="nearest")
        for thr in thresholds:
            for a, b in _runs(actionness > thr):
                t0 = max(0.0, times[a] - spacing / 2)
                t1 = min(end_limit, times[b] + spacing / 2)
                key = (round(t0, 6), round(t1, 6))
                score = float(actionness[a : b + 1].mean())
                if score > candidates.get(key, -1.0):
                    candidates[key] = score
                    spans[key] = (a, b)
    by_class: dict[int, list[tuple[float, float, float]]] = {}
    for key, act_score in candidates.items():
        a, b = spans[key]
        inside = action[a : b + 1].sum(axis=0)
        share = inside / max(inside.sum(), 1e-12)
        for c in np.argsort(-share, kind="stable")[:top_classes]:
            score = act_score * share[c] * (video_share[c] if use_video_scores else 1.0)
            by_class.setdefault(int(c), []).append((key[0], key[1], float(score)))
    detections = []
    for c, cands in by_class.items():
        segs = np.array([(t0, t1) for t0, t1, _ in cands])
        scores = soft_nms(segs, np.array([sc for _, _, sc in cands]), sigma=nms_sigma)
        for (t0, t1), score in zip(segs, scores):
            detections.append(
                {"label": classifier.classes[c], "score": float(score), "segment": [float(t0), float(t1)]}
            )
    detections.sort(key=lambda d: -d["score"])
    return detections


def localization_probe(
    train_feature_dir: str | os.PathLike,
    eval_feature_dir: str | os.PathLike,
    gt_path: str | os.PathLike,
    out_pred_path: str | os.PathLike | None = None,
    train_subset: str = "training",
    eval_subset: str = "validation",
    C: float = 1.0,
    max_snippets: int = 200_000,
    seed: int = 0,
    **predict_options: Any,
) -> dict[str, Any]:
    """Fit the snippet classifier on ``train_subset`` features, detect on ``eval_subset`` features, and return (and
    write, atomically, when ``out_pred_path`` is given) the predictions in the official layout.

    Only videos of the respective subset are used; ``predict_options`` go to :func:`predict_segments`.
    """
    gt_train = load_ground_truth(gt_path, subset=train_subset)
    gt_eval = load_ground_truth(gt_path, subset=eval_subset)
    train = load_feature_dir(train_feature_dir, gt_train.durations)
    classifier = fit_snippet_classifier(train, gt_train, C=C, max_snippets=max_snippets, seed=seed)
    evaluation = load_feature_dir(eval_feature_dir, gt_eval.durations)
    if not evaluation:
        raise UserError(f"feature folder {eval_feature_dir} has no video of subset {eval_subset!r} of {gt_path}.")
    missing = len(gt_eval.durations) - len(evaluation)
    if missing:
        print(f"localization probe: {missing} videos of subset {eval_subset!r} have no features and get no "
              f"detections.", file=sys.stderr)
    results = {}
    for vid in tqdm(sorted(evaluation), desc="detect", unit="video", file=sys.stderr):
        vf = evaluation[vid]
        results[vid] = predict_segments(vf.feats, vf.times, classifier, duration=vf.duration, **predict_options)
    predictions = {
        "version": "VERSION 1.3",
        "results": results,
        "external_data": {"used": False, "details": "hico-bench linear snippet probe on frozen features"},
    }
    if out_pred_path is not None:
        write_json(out_pred_path, predictions)
    return predictions
