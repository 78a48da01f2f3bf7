"""Nearest-neighbour video retrieval, the VCOP protocol (xudejing/video-clip-order-prediction, retrieve_clips.py).

Each query (a test-split video's feature) ranks the gallery (train-split features) by cosine similarity; the query
is a hit at k when any of its k nearest gallery videos has the query's class. R@k is the percentage of queries that
are hits (no query is dropped), in percent like the project's other metrics.

* Ranking ties (equal similarity) are broken by gallery order: the earlier gallery row ranks first. The result is
  thus deterministic, and identical to a stable sort of the similarities in descending order.
* A k larger than the gallery is clipped to the gallery size, so R@k then says whether the query's class occurs in
  the gallery at all. The key keeps the requested k (``"R@50"``).
* ``center=True`` is CoCLR's variant: each set (queries, gallery) has its own mean subtracted before normalising.
* A feature vector of norm zero has similarity 0 to everything.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hico_bench.settings import RECALL_KS


def _normalise(feats: np.ndarray, center: bool) -> np.ndarray:
    x = np.asarray(feats, dtype=np.float64)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def first_hit_rank(
    query_feats: np.ndarray,
    query_labels: Sequence,
    gallery_feats: np.ndarray,
    gallery_labels: Sequence,
    center: bool = False,
    chunk: int = 1024,
) -> np.ndarray:
    """For each query, the 0-based rank of the first gallery item of its class (``len(gallery)`` when there is none).

    The rank of the best same-class item is the number of gallery items ranked before it: those with a higher
    similarity, plus those with an equal similarity and a smaller gallery index.
    """
    q = _normalise(query_feats, center)
    g = _normalise(gallery_feats, center)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"query features {q.shape} and gallery features {g.shape} must be 2-D with equal width")
    q_lab = np.asarray(query_labels)
    g_lab = np.asarray(gallery_labels)
    if len(q_lab) != len(q) or len(g_lab) != len(g):
        raise ValueError("there must be one label per feature row")
    if len(q) == 0 or len(g) == 0:
        raise ValueError("retrieval needs at least one query and one gallery item")
    num_gallery = len(g)
    index = np.arange(num_gallery)
    ranks = np.full(len(q), num_gallery, dtype=np.int64)
    for lo in range(0, len(q), chunk):
        sim = q[lo : lo + chunk] @ g.T  # (n, G)
        same = q_lab[lo : lo + chunk, None] == g_lab[None, :]
        has = same.any(axis=1)
        masked = np.where(same, sim, -np.inf)
        best = masked.argmax(axis=1)  # first index among the maximal same-class similarities
        best_sim = masked[np.arange(len(best)), best]
        before = (sim > best_sim[:, None]) | ((sim == best_sim[:, None]) & (index[None, :] < best[:, None]))
        ranks[lo : lo + chunk] = np.where(has, before.sum(axis=1), num_gallery)
    return ranks


def recall_at_k(
    query_feats: np.ndarray,
    query_labels: Sequence,
    gallery_feats: np.ndarray,
    gallery_labels: Sequence,
    ks: Sequence[int] = RECALL_KS,
    center: bool = False,
) -> dict[str, float]:
    """Cosine-similarity retrieval recall: ``{"R@1": percent of queries with a same-class item in the top 1, ...}``."""
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"every k must be at least 1, got {list(ks)}")
    ranks = first_hit_rank(query_feats, query_labels, gallery_feats, gallery_labels, center=center)
    num_gallery = len(gallery_feats)
    return {f"R@{int(k)}": float(100.0 * np.mean(ranks < min(int(k), num_gallery))) for k in ks}


def run_retrieval(features, settings: dict, where: str) -> dict:
    """The ``retrieval`` task on cached features: test-split queries against the train-split gallery."""
    from hico_bench.evaluate.tasks import TASKS

    settings = TASKS["retrieval"].settings.resolve(settings)
    metrics = recall_at_k(features["test_x"], features["test_y"], features["train_x"], features["train_y"],
                          ks=tuple(settings["ks"]), center=settings["center"])
    return {"metrics": metrics,
            "protocol": {"queries": "test split", "gallery": "train split", "views": int(features["views"]),
                         "similarity": "cosine", "center": settings["center"]}}

