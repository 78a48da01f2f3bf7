import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_distances

from hico_bench.evaluate.retrieval import first_hit_rank, recall_at_k


def brute_recall(q, q_lab, g, g_lab, ks, center=False):
    """The VCOP loop: cosine distances, each query's gallery sorted (stable), hit if a top-k label matches."""
    if center:
        q = q - q.mean(axis=0)
        g = g - g.mean(axis=0)
    dist = cosine_distances(q, g)
    hits = {k: 0 for k in ks}
    for i in range(len(q)):
        order = np.argsort(dist[i], kind="stable")
        for k in ks:
            if q_lab[i] in [g_lab[j] for j in order[:k]]:
                hits[k] += 1
    return {f"R@{k}": pytest.approx(100 * hits[k] / len(q), rel=1e-12) for k in ks}


@pytest.mark.parametrize("seed,center", [(0, False), (1, False), (2, True), (3, True)])
def test_recall_matches_brute_force(seed, center):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(37, 8)) + 0.5
    g = rng.normal(size=(61, 8)) + 0.5
    q_lab = rng.integers(0, 6, size=37)
    g_lab = rng.integers(0, 6, size=61)
    ks = (1, 5, 10, 20, 50, 100)  # 100 > gallery size: clipped
    got = recall_at_k(q, q_lab, g, g_lab, ks=ks, center=center)
    assert got == brute_recall(q, q_lab, g, g_lab, ks, center=center)
    # chunking over queries gives the same ranks
    np.testing.assert_array_equal(
        first_hit_rank(q, q_lab, g, g_lab, center=center, chunk=5), first_hit_rank(q, q_lab, g, g_lab, center=center)
    )


def test_centering_changes_the_result_on_offset_data():
    rng = np.random.default_rng(4)
    g_lab = np.repeat(np.arange(4), 10)
    g = np.eye(4)[g_lab] * 0.3 + rng.normal(scale=0.1, size=(40, 4)) + 5.0  # a large common offset
    q = g[::2] + rng.normal(scale=0.05, size=(20, 4))
    plain = recall_at_k(q, g_lab[::2], g, g_lab, ks=(1,))
    centred = recall_at_k(q, g_lab[::2], g, g_lab, ks=(1,), center=True)
    assert centred == brute_recall(q, g_lab[::2], g, g_lab, (1,), center=True)
    assert centred["R@1"] == 100.0 and plain == brute_recall(q, g_lab[::2], g, g_lab, (1,))


def test_hand_case():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    g_lab = ["A", "B", "B"]
    queries = np.array([[1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])
    q_lab = ["B", "A", "C"]
    # query 0: g0 (A), g2 (B) -> first hit at rank 1; query 1: g1, g2, g0 (A) -> rank 2; query 2: class C absent
    np.testing.assert_array_equal(first_hit_rank(queries, q_lab, gallery, g_lab), [1, 2, 3])
    got = recall_at_k(queries, q_lab, gallery, g_lab, ks=(1, 2, 3, 50))
    assert got == pytest.approx({"R@1": 0.0, "R@2": 100 / 3, "R@3": 200 / 3, "R@50": 200 / 3})


def test_ties_go_to_the_earlier_gallery_item():
    gallery = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # g0 and g1 have the same direction
    assert recall_at_k([[3.0, 0.0]], ["B"], gallery, ["A", "B", "B"], ks=(1, 2)) == {"R@1": 0.0, "R@2": 100.0}
    assert recall_at_k([[3.0, 0.0]], ["A"], gallery, ["A", "B", "B"], ks=(1, 2)) == {"R@1": 100.0, "R@2": 100.0}


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be at least 1"):
        recall_at_k(np.ones((2, 3)), [0, 1], np.ones((2, 3)), [0, 1], ks=(0,))
    with pytest.raises(ValueError, match="equal width"):
        recall_at_k(np.ones((2, 3)), [0, 1], np.ones((2, 4)), [0, 1])
