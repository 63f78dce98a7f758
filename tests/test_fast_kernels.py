"""The threaded Manhattan kernel and the one-partition smallest_k on sizes where their
fast paths run (the brute-force tests in test_metrics.py use small matrices)."""
import numpy as np
import pytest

from search import metrics


def plain_smallest_k(distances, k, exclude=()):
    """The definition: stable sort by (distance, index), excluded rows dropped."""
    excluded = set(exclude)
    rows = [i for i in np.lexsort((np.arange(len(distances)), distances)) if i not in excluded]
    return np.asarray(rows[:k], dtype=np.int64)


@pytest.mark.parametrize("n", [1, 511, 512, 513, 5000])
def test_manhattan_equals_numpy_on_every_chunk_layout(n):
    rng = np.random.default_rng(n)
    matrix = rng.standard_normal((n, 37)).astype(np.float32)
    query = rng.standard_normal(37).astype(np.float32)
    got = metrics.manhattan_distance(matrix, query)
    want = np.abs(matrix.astype(np.float64) - query).sum(axis=1)
    assert got.shape == (n,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_smallest_k_with_ties_and_exclusions_on_a_large_array(dtype):
    rng = np.random.default_rng(5)
    distances = rng.integers(0, 50, size=20_000).astype(dtype)  # thousands of ties per value
    exclude = rng.choice(20_000, size=300, replace=False).tolist() + [int(np.argmin(distances))]
    for k in (1, 10, 999):
        got = metrics.smallest_k(distances, k, exclude)
        assert got.dtype == np.int64
        assert got.tolist() == plain_smallest_k(distances, k, exclude).tolist()


def test_smallest_k_with_infinite_and_duplicate_exclusions():
    distances = np.array([np.inf, 1.0, np.inf, 0.5, 2.0])
    assert metrics.smallest_k(distances, 5, exclude=[1, 1, -1]).tolist() == [3, 0, 2]
    assert metrics.smallest_k(distances, 2, exclude=[3]).tolist() == [1, 4]
    assert metrics.smallest_k(distances[:0], 3).tolist() == []


def test_smallest_k_counting_path_for_small_integers_equals_the_definition():
    """Hamming distances take the histogram path; wide-range integers the partial sort."""
    rng = np.random.default_rng(11)
    for distances in (rng.integers(0, 65, size=30_000), rng.integers(0, 65, size=30_000).astype(np.uint8),
                      rng.integers(-5, 3, size=1000), rng.integers(0, 1 << 40, size=5000)):
        exclude = rng.choice(len(distances), size=50, replace=False).tolist()
        for k in (1, 10, 2000):
            fast, plain = metrics.smallest_k(distances, k, exclude), plain_smallest_k(distances, k, exclude)
            assert fast.tolist() == plain.tolist()


def test_smallest_k_rejects_rows_outside_the_array():
    with pytest.raises(IndexError):
        metrics.smallest_k(np.arange(5.0), 2, exclude=[5])
