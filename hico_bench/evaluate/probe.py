"""Strict linear probe: a logistic-regression classifier on frozen, pre-extracted video features.

The regularisation strength is chosen on a held-out part of the train split only (the test split is never looked at
before the final score); the chosen classifier is then refit on the whole train split. The held-out part is
class-stratified, or, when the videos come in groups of clips cut from one source (UCF101's ``gXX``), made of whole
groups: sibling clips on both sides would make the held-out score reward memorising a source video.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from hico_bench.errors import UserError


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percent of rows whose true label is among the ``k`` highest scores (ties broken by column order)."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(100.0 * np.mean(np.any(top == labels[:, None], axis=1)))


def check_test_classes(train_labels: np.ndarray, test_labels: np.ndarray, where: str) -> None:
    """A test class that the train split never shows cannot be learned: say so instead of scoring it."""
    missing = sorted(set(np.unique(test_labels).tolist()) - set(np.unique(train_labels).tolist()))
    if missing:
        raise UserError(f"{where}: test-split classes {missing[:5]} never occur in the train split.")


def labelled_splits(manifest, where: str):
    """(train videos, test videos, train labels, test labels) of a downstream manifest; a manifest without one of the
    splits, or with a test class the train split never shows, is one sentence naming ``where``."""
    train = manifest[manifest["split"] == "train"].reset_index(drop=True)
    test = manifest[manifest["split"] == "test"].reset_index(drop=True)
    if train.empty or test.empty:
        raise UserError(f"{where}: the manifest needs both train- and test-split videos.")
    train_y, test_y = train["label_index"].to_numpy(np.int64), test["label_index"].to_numpy(np.int64)
    check_test_classes(train_y, test_y, where)
    return train, test, train_y, test_y


UCF_GROUP = re.compile(r"^(v_.+_g\d+)_c\d+$")


def source_groups(video_ids: Sequence[str]) -> np.ndarray | None:
    """UCF101-style source groups (``v_<Class>_gXX``) of the ids, or None when the ids are not of that form."""
    matches = [UCF_GROUP.match(str(v)) for v in video_ids]
    if not matches or not all(matches):
        return None
    return np.array([m.group(1) for m in matches])


def holdout_split(labels: np.ndarray, holdout: float, seed: int,
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) row indices of the train split: whole ``groups`` when there are at least two (sibling clips of
    one source on both sides would reward memorising it), else class-stratified (unstratified when a class has a
    single video). Used by every probe that chooses a hyper-parameter on held-out train videos."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    labels = np.asarray(labels)
    if groups is not None and len(np.unique(groups)) >= 2:
        return next(GroupShuffleSplit(1, test_size=holdout, random_state=seed).split(labels, labels, groups))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    return train_test_split(np.arange(len(labels)), test_size=holdout, random_state=seed, stratify=stratify)


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0),
    holdout: float = 0.2,
    seed: int = 0,
    where: str = "linear probe",
    groups: np.ndarray | None = None,
) -> dict:
    """Fit the probe and score the test split; returns metrics in percent and the chosen ``C``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_test_classes(train_y, test_y, where)

    def fit(x, y, c):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        return clf.fit(x, y)

    fit_idx, val_idx = holdout_split(train_y, holdout, seed, groups)
    fit_x, val_x, fit_y, val_y = train_x[fit_idx], train_x[val_idx], train_y[fit_idx], train_y[val_idx]
    val_scores = {}
    for c in cs:
        val_scores[c] = fit(fit_x, fit_y, c).score(val_x, val_y)
    best_c = max(cs, key=lambda c: (val_scores[c], -abs(np.log10(c))))  # ties: the C closest to 1
    clf = fit(train_x, train_y, best_c)
    scores = np.full((len(test_x), int(max(train_y.max(), test_y.max())) + 1), -np.inf)
    scores[:, clf.classes_] = clf.predict_log_proba(test_x)
    return {
        "top1": topk_accuracy(scores, test_y, 1),
        "top5": topk_accuracy(scores, test_y, 5),
        "C": best_c,
        "holdout_accuracy": {str(c): round(100 * v, 2) for c, v in val_scores.items()},
    }


def run_probe(features, settings: dict, where: str) -> dict:
    """The ``probe`` task on cached features (:func:`hico_bench.evaluate.features.load_features`)."""
    from hico_bench.evaluate.tasks import TASKS

    settings = TASKS["probe"].settings.resolve(settings)
    groups = source_groups(features["train_ids"])
    result = linear_probe(features["train_x"], features["train_y"], features["test_x"], features["test_y"],
                          cs=settings["cs"], holdout=settings["holdout"], seed=settings["seed"], where=where,
                          groups=groups)
    chosen_c = result.pop("C")
    holdout = result.pop("holdout_accuracy")
    return {"metrics": result,
            "protocol": {"classifier": "logistic regression on standardised features", "views": int(features["views"]),
                         "C": chosen_c, "holdout_accuracy_by_C": holdout, "backbone": "frozen, eval mode",
                         "holdout": "whole source groups" if groups is not None else "class-stratified"}}

