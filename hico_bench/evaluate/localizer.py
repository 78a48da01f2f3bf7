"""A light temporal action localizer on frozen snippet features: a linear snippet classifier, actionness runs and
soft-NMS.

A linear classifier on frozen snippet features labels each snippet with its action class or background; runs of
snippets whose actionness (1 - P(background)) exceeds a few thresholds become segments, each labelled with its most
probable classes and de-duplicated by Gaussian soft-NMS (see :func:`predict_segments`). Class-agnostic segments
labelled by class scores are what ActivityNet localizers do (BMN, G-TAD and ActionFormer score class-agnostic
proposals with video-level classes).

:func:`run_localization` is the whole job: it reads the ground truth once, fits on the training subset's features,
writes the validation subset's detections in the official layout and scores them with
:func:`hico_bench.evaluate.detection.evaluate_detection`. Its settings are declared in :data:`hico_bench.settings.LOCALIZE`.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from tqdm import tqdm

from hico_bench.errors import UserError
from hico_bench.evaluate.detection import TIOU_THRESHOLDS, evaluate_detection, parse_predictions, segment_iou
from hico_bench.evaluate.feature_formats import PREFIX, read_npy_features, snippet_centres
from hico_bench.evaluate.ground_truth import GroundTruth, GroundTruthFile, read_ground_truth
from hico_bench.io import write_json

# The settings of the probe (:func:`localization_probe`, :func:`run_localization`), with their defaults.
PREDICT_KEYS = ("thresholds", "smooth", "top_classes", "use_video_scores", "nms_sigma")
LOCALIZER = "linear snippet probe (actionness runs + soft-NMS)"


def probe_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The declared defaults (:data:`hico_bench.settings.LOCALIZE`) updated by ``settings``, checked."""
    from hico_bench.settings import LOCALIZE

    return LOCALIZE.resolve(settings)


# --------------------------------------------------------------------------------------------------------------------
# Features and labels


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


# --------------------------------------------------------------------------------------------------------------------
# The snippet classifier


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


# --------------------------------------------------------------------------------------------------------------------
# Segments


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


# --------------------------------------------------------------------------------------------------------------------
# The job


def localization_probe(
    train_feature_dir: str | os.PathLike,
    eval_feature_dir: str | os.PathLike,
    ground_truth: GroundTruthFile | str | os.PathLike,
    out_pred_path: str | os.PathLike | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the snippet classifier on the ``train_subset`` videos' features, detect on the ``eval_subset`` videos'
    features, and return (and write, atomically, when ``out_pred_path`` is given) the predictions in the official
    layout.

    ``ground_truth`` is a parsed :class:`GroundTruthFile` or the path of one (then read once). ``settings`` are
    checked against :data:`hico_bench.settings.LOCALIZE`. Videos of the evaluated subset without features get no detections (a line on
    stderr says how many).
    """
    s = probe_settings(settings)
    gt_file = ground_truth if isinstance(ground_truth, GroundTruthFile) else read_ground_truth(ground_truth)
    gt_train, gt_eval = gt_file.subset(s["train_subset"]), gt_file.subset(s["eval_subset"])
    train = load_feature_dir(train_feature_dir, gt_train.durations)
    classifier = fit_snippet_classifier(train, gt_train, C=s["C"], max_snippets=s["max_snippets"],
                                        max_iter=s["max_iter"], seed=s["seed"])
    evaluation = load_feature_dir(eval_feature_dir, gt_eval.durations)
    if not evaluation:
        raise UserError(f"feature folder {eval_feature_dir} has no video of subset {gt_eval.subset!r} of "
                        f"{gt_file.path}.")
    missing = len(gt_eval.durations) - len(evaluation)
    if missing:
        print(f"localization probe: {missing} videos of subset {gt_eval.subset!r} have no features and get no "
              f"detections.", file=sys.stderr)
    predict_options = {key: s[key] for key in PREDICT_KEYS}
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


def run_localization(
    features_dir: str | os.PathLike,
    ground_truth_path: str | os.PathLike,
    predictions_path: str | os.PathLike,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The localization job: read the ground truth once, fit the probe on the ``train_subset`` videos of
    ``features_dir``, write the ``eval_subset`` detections to ``predictions_path`` (official layout, atomically) and
    score them against the ``eval_subset`` ground truth at tIoU 0.50:0.05:0.95.

    Returns ``{"metrics": {"average_mAP", "mAP@0.50", ..., "mAP@0.95"}, "mAP_per_tiou": {"0.50": ...},
    "protocol": {"localizer", "subset", "tiou_thresholds", "predictions"}}`` (mAP in percent).
    """
    s = probe_settings(settings)
    gt_file = read_ground_truth(ground_truth_path)
    gt_eval = gt_file.subset(s["eval_subset"])  # an unknown subset fails before any fitting
    predictions = localization_probe(features_dir, features_dir, gt_file, predictions_path, s)
    metrics = evaluate_detection(gt_eval, parse_predictions(predictions, str(predictions_path)),
                                 tiou_thresholds=TIOU_THRESHOLDS)
    return {
        "metrics": {k: v for k, v in metrics.items() if k == "average_mAP" or k.startswith("mAP@")},
        "mAP_per_tiou": metrics["mAP_per_tiou"],
        "protocol": {"localizer": LOCALIZER, "subset": gt_eval.subset, "tiou_thresholds": "0.5:0.05:0.95",
                     "predictions": str(predictions_path)},
    }
