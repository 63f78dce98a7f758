"""Every metric's top-k equals a brute-force loop over rows, ties and top_k >= N included."""
import math

import numpy as np
import pytest

from search import metrics


def brute_force(matrix, query, metric, k, exclude=()):
    """Plain Python loops: the definitions, nothing clever."""
    scored = []
    for i, row in enumerate(matrix):
        if i in exclude:
            continue
        if metric == "cosine":
            dot = sum(float(a) * float(b) for a, b in zip(row, query))
            norm = math.sqrt(sum(float(a) ** 2 for a in row)) * math.sqrt(sum(float(b) ** 2 for b in query))
            d = 1.0 - dot / norm
        elif metric == "euclidean":
            d = math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(row, query)))
        elif metric == "manhattan":
            d = sum(abs(float(a) - float(b)) for a, b in zip(row, query))
        elif metric == "bhattacharyya":
            d = math.sqrt(max(0.0, 1.0 - sum(math.sqrt(float(a) * float(b)) for a, b in zip(row, query))))
        elif metric == "hamming":
            d = sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(row, query))
        scored.append((d, i))
    scored.sort()
    return [i for _, i in scored[:k]], [d for d, _ in scored[:k]]


def fast(matrix, query, metric, k, exclude=()):
    if metric == "cosine":
        dist = metrics.cosine_distance(metrics.unit_rows(matrix), metrics.unit_rows(query[None])[0])
    elif metric == "euclidean":
        dist = metrics.euclidean_distance(matrix, query, np.einsum("ij,ij->i", matrix, matrix))
    elif metric == "manhattan":
        dist = metrics.manhattan_distance(matrix, query)
    elif metric == "bhattacharyya":
        dist = metrics.bhattacharyya_distance(np.sqrt(matrix), query)
    else:
        dist = metrics.hamming_distance(matrix, query)
    rows = metrics.smallest_k(dist, k, exclude)
    return rows.tolist(), dist[rows].tolist()


def _data(metric, n, rng):
    if metric == "hamming":
        return rng.integers(0, 256, size=(n, 8), dtype=np.uint8), rng.integers(0, 256, size=8, dtype=np.uint8)
    if metric == "bhattacharyya":
        m = rng.random((n, 64)).astype(np.float32)
        q = rng.random(64).astype(np.float32)
        return m / m.sum(1, keepdims=True), q / q.sum()
    return rng.standard_normal((n, 24)).astype(np.float32), rng.standard_normal(24).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan", "bhattacharyya", "hamming"])
@pytest.mark.parametrize("k", [1, 5, 60, 500])
def test_top_k_equals_brute_force(metric, k):
    rng = np.random.default_rng(7)
    matrix, query = _data(metric, 300, rng)
    rows, dists = fast(matrix, query, metric, k)
    ref_rows, ref_dists = brute_force(matrix, query, metric, k)
    assert len(rows) == min(k, 300)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-4, atol=1e-5)
    assert rows == ref_rows  # hamming has many exact ties: broken by the lower index


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan", "hamming"])
def test_ties_broken_by_lower_index_and_exclusion(metric):
    rng = np.random.default_rng(3)
    matrix, query = _data(metric, 40, rng)
    matrix = np.concatenate([matrix, matrix, matrix])  # every row appears three times
    rows, _ = fast(matrix, query, metric, 7, exclude=[5, 45])
    ref_rows, _ = brute_force(matrix, query, metric, 7, exclude=[5, 45])
    assert rows == ref_rows
    assert 5 not in rows and 45 not in rows


def test_hamming_on_widths_that_are_not_whole_words():
    rng = np.random.default_rng(1)
    matrix = rng.integers(0, 256, size=(50, 3), dtype=np.uint8)  # 3 bytes: not a whole uint64
    query = rng.integers(0, 256, size=3, dtype=np.uint8)
    assert fast(matrix, query, "hamming", 10) == brute_force(matrix, query, "hamming", 10)


def test_smallest_k_edge_cases():
    assert metrics.smallest_k(np.array([3.0, 1.0, 2.0]), 10).tolist() == [1, 2, 0]
    assert metrics.smallest_k(np.array([3.0, 1.0, 2.0]), 10, exclude=[0, 1, 2]).tolist() == []
    assert metrics.smallest_k(np.array([1.0, 1.0, 1.0, 0.5]), 2).tolist() == [3, 0]
