"""Annoy on clustered data finds the exact cosine top-10 (overlap >= 0.9), reproducibly."""
import numpy as np

from search import ann, metrics


def clustered(n, dim, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    return metrics.unit_rows(centres[labels] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32))


def test_annoy_overlaps_exact_cosine_top10():
    data = clustered(5000, 64, 100, seed=11)
    index = ann.build(data, trees=20, seed=42)
    queries = clustered(50, 64, 100, seed=12)
    overlaps = []
    for q in queries:
        exact = set(metrics.smallest_k(metrics.cosine_distance(data, q), 10).tolist())
        rows, dist = ann.query(index, q, 10)  # the project's default search_k
        overlaps.append(len(exact & set(rows.tolist())) / 10)
        exact_dist = metrics.cosine_distance(data, q)[rows]
        np.testing.assert_allclose(dist, exact_dist, atol=1e-4)  # distances reported as 1 - cos
    assert np.mean(overlaps) >= 0.9


def test_build_is_reproducible_with_a_fixed_seed():
    data = clustered(500, 16, 10, seed=1)
    q = data[0]
    first = ann.query(ann.build(data, trees=5, seed=3), q, 10)[0].tolist()
    second = ann.query(ann.build(data, trees=5, seed=3), q, 10)[0].tolist()
    assert first == second
