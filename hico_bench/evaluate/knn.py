"""Weighted k-nearest-neighbour classification on frozen video features (Wu et al. 2018; DINO's ``eval_knn.py``).

The memory bank is the train split's features, the queries are the test split's. Features are L2-normalised and
compared by cosine similarity; each query's ``k`` most similar train videos vote for their class with the weight
``exp(similarity / temperature)``, and the classes are ranked by their summed votes. top-1 / top-5 are the
percentages of queries whose class is ranked first / among the first five.

Ties are broken deterministically:

* neighbours: among train videos of equal similarity, the earlier train row ranks first (a stable sort of the
  similarities in descending order), so the ``k`` neighbours are always the same rows;
* classes: among classes of equal summed vote, the smaller class index ranks first. Classes that no neighbour
  voted for score 0 and rank after every voted class, by class index (with fewer than five voted classes, top-5 may
  thus count a class no neighbour had; DINO's ranking does the same, in an unspecified order);
* a ``k`` larger than the memory bank uses the whole bank; a feature vector of norm zero has similarity 0 to all.

Votes are summed in float64, in the neighbours' rank order.
"""

from __future__ import annotations

import numpy as np

from hico_bench.evaluate.probe import check_test_classes, topk_accuracy


def _normalise(feats: np.ndarray) -> np.ndarray:
    x = np.asarray(feats, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def knn_scores(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """(num_test, num_classes) float64: each class's summed vote ``exp(sim / temperature)`` over the query's ``k``
    nearest train rows (see the module's notes for ties). ``num_classes`` defaults to ``train_y.max() + 1``."""
    g = _normalise(train_x)
    q = _normalise(test_x)
    labels = np.asarray(train_y, dtype=np.int64)
    if g.ndim != 2 or q.ndim != 2 or g.shape[1] != q.shape[1]:
        raise ValueError(f"train features {g.shape} and test features {q.shape} must be 2-D with equal width")
    if len(labels) != len(g) or len(g) == 0:
        raise ValueError("kNN needs a non-empty memory bank with one label per row")
    if k < 1 or temperature <= 0:
        raise ValueError(f"k must be at least 1 and the temperature positive, got k={k}, T={temperature}")
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    k = min(int(k), len(g))
    scores = np.zeros((len(q), num_classes), dtype=np.float64)
    for lo in range(0, len(q), chunk):
        sim = q[lo : lo + chunk] @ g.T  # (n, G)
        nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # equal similarity: the earlier train row first
        weights = np.exp(np.take_along_axis(sim, nearest, axis=1) / temperature)
        rows = np.repeat(np.arange(lo, lo + len(sim)), k)
        np.add.at(scores, (rows, labels[nearest].ravel()), weights.ravel())  # summed in rank order per query
    return scores


def knn_classify(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k: int = 20,
    temperature: float = 0.07,
    where: str = "kNN",
) -> dict[str, float]:
    """``{"top1": percent, "top5": percent}`` of the weighted kNN classifier (train = memory bank, test = queries)."""
    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    check_test_classes(train_y, test_y, where)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    scores = knn_scores(train_x, train_y, test_x, k=k, temperature=temperature, num_classes=num_classes)
    return {"top1": topk_accuracy(scores, test_y, 1), "top5": topk_accuracy(scores, test_y, 5)}


def run_knn(features, settings: dict, where: str) -> dict:
    """The ``knn`` task on cached features (:func:`hico_bench.evaluate.features.load_features`)."""
    from hico_bench.evaluate.tasks import TASKS

    settings = TASKS["knn"].settings.resolve(settings)
    metrics = knn_classify(features["train_x"], features["train_y"], features["test_x"], features["test_y"],
                           k=settings["k"], temperature=settings["temperature"], where=where)
    return {"metrics": metrics,
            "protocol": {"k": settings["k"], "neighbours_used": min(settings["k"], len(features["train_x"])),
                         "temperature": settings["temperature"], "weights": "exp(cosine similarity / temperature)",
                         "similarity": "cosine (L2-normalised features)", "memory_bank": "train split",
                         "queries": "test split", "views": int(features["views"]), "backbone": "frozen, eval mode"}}
