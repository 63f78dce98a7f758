"""Distance kernels over a whole feature matrix, vectorised, and exact top-k selection.

Every metric is a distance (smaller is more similar) so results read the same way in
every mode. Inputs are prepared once per loaded matrix (see search.matrix_cache), so a query
costs one pass over the matrix. Which metric fits which mode is search.modes' business.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MANHATTAN_CHUNK = 512  # rows per step: each thread's (chunk, d) float32 scratch, 2.6 MB at d = 1280, is reused
_POOL = []  # one thread pool per process, made on first use (numpy releases the GIL)


def unit_rows(matrix):
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, np.finfo(np.float32).tiny)


def cosine_distance(unit_matrix, unit_query):
    return 1.0 - unit_matrix @ unit_query


def euclidean_distance(matrix, query, squared_norms):
    """sqrt(|x|^2 - 2 x.q + |q|^2): one matrix-vector product instead of a difference matrix."""
    squared = squared_norms - 2.0 * (matrix @ query) + float(query @ query)
    return np.sqrt(np.maximum(squared, 0.0))


def manhattan_distance(matrix, query):
    """Sum of |x - q| per row, in fixed-size chunks spread over one thread per core.

    No BLAS call does this, so the chunks are shared out by hand: each thread owns an
    interleaved set of chunks and one scratch buffer, so nothing is allocated per chunk.
    """
    out = np.empty(len(matrix), dtype=np.float32)
    threads = min(os.cpu_count() or 1, -(-len(matrix) // MANHATTAN_CHUNK))
    step = threads * MANHATTAN_CHUNK

    def work(first):
        scratch = np.empty((MANHATTAN_CHUNK, matrix.shape[1]), dtype=np.float32)
        for start in range(first, len(matrix), step):
            block = matrix[start:start + MANHATTAN_CHUNK]
            diff = scratch[:len(block)]
            np.subtract(block, query, out=diff)
            np.abs(diff, out=diff)
            diff.sum(axis=1, out=out[start:start + len(block)])

    if threads <= 1:
        work(0)
    else:
        list(_pool().map(work, range(0, step, MANHATTAN_CHUNK)))
    return out


def _pool():
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="metrics"))
    return _POOL[0]


def bhattacharyya_distance(sqrt_matrix, query):
    """sqrt(1 - sum_i sqrt(p_i q_i)) for L1-normalised histograms (OpenCV's HISTCMP_BHATTACHARYYA)."""
    coefficient = sqrt_matrix @ np.sqrt(np.maximum(query, 0.0))
    return np.sqrt(np.maximum(1.0 - coefficient, 0.0))


def hamming_distance(packed_matrix, packed_query):
    """Differing bits between packed hashes; 8 bytes at a time when the width allows."""
    if packed_matrix.shape[1] % 8 == 0:
        words, query = packed_matrix.view(np.uint64), packed_query.view(np.uint64)
    else:
        words, query = packed_matrix, packed_query
    if words.shape[1] == 1:  # one 64-bit word per hash (hash_size 8): no row sums needed
        return np.bitwise_count(words[:, 0] ^ query[0]).astype(np.int64)
    return np.bitwise_count(words ^ query).sum(axis=1, dtype=np.int64)


def smallest_k(distances, k, exclude=()):
    """Indices of the k smallest distances, ascending; ties go to the lower index.

    ``exclude`` holds row indices never to return. Exact: everything tied with the k-th
    value is considered before the tie-break.
    """
    distances = np.asarray(distances)
    n = len(distances)
    exclude = np.asarray(exclude, dtype=np.int64).ravel()
    if len(exclude) and (exclude.min() < -n or exclude.max() >= n):
        raise IndexError(f"exclude holds a row outside 0..{n - 1}")
    excluded = np.unique(np.where(exclude < 0, exclude + n, exclude))
    k = min(k, n - len(excluded))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    # Find the k-th smallest value in one pass, then sort exactly only the few rows tied
    # with or better than it.
    kth = _kth_smallest(distances, k, excluded)
    candidates = np.flatnonzero(distances <= kth)
    if len(excluded):
        candidates = candidates[~np.isin(candidates, excluded)]
    order = np.lexsort((candidates, distances[candidates]))[:k]
    return candidates[order]


def _kth_smallest(distances, k, excluded):
    """The k-th smallest value of ``distances`` without the ``excluded`` rows."""
    if distances.dtype.kind in "iu":
        low, high = int(distances.min()), int(distances.max())
        if high - low <= 1 << 16:  # small integers (Hamming): counting beats a partial sort
            shift = min(low, 0)  # bincount wants non-negative values; usually there is nothing to shift
            values = (distances - shift if shift else distances).astype(np.intp, copy=False)
            counts = np.bincount(values, minlength=high - shift + 1)
            if len(excluded):
                counts -= np.bincount(values[excluded], minlength=high - shift + 1)
            return shift + int(np.searchsorted(np.cumsum(counts), k))
    work = distances.astype(np.result_type(distances.dtype, np.float32), copy=True)
    work[excluded] = np.inf  # pushed past every real distance
    work.partition(k - 1)
    return work[k - 1]
