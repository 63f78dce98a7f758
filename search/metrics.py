"""Distance kernels over a whole feature matrix, vectorised, and exact top-k selection.

Every metric is a distance (smaller is more similar) so results read the same way in
every mode. Inputs are prepared once per loaded matrix (see search.store), so a query
costs one pass over the matrix.
"""
import numpy as np

MODES = ("embeddings", "rgb", "ahash", "dhash", "phash")
METRICS = ("cosine", "ann_cosine", "euclidean", "manhattan", "hamming", "bhattacharyya")

# Which metric fits which mode. Hashes are bit strings: only Hamming makes sense.
# Histograms are probability distributions: Bhattacharyya is the natural one.
VALID_METRICS = {
    "embeddings": ("cosine", "ann_cosine", "euclidean", "manhattan"),
    "rgb": ("bhattacharyya", "cosine", "ann_cosine", "euclidean", "manhattan"),
    "ahash": ("hamming",),
    "dhash": ("hamming",),
    "phash": ("hamming",),
}

MANHATTAN_CHUNK = 8192  # rows per step: keeps the temporary (chunk, d) array in cache


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
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), MANHATTAN_CHUNK):
        block = matrix[start:start + MANHATTAN_CHUNK]
        out[start:start + len(block)] = np.abs(block - query).sum(axis=1)
    return out


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
    return np.bitwise_count(words ^ query).sum(axis=1, dtype=np.int64)


def smallest_k(distances, k, exclude=()):
    """Indices of the k smallest distances, ascending; ties go to the lower index.

    ``exclude`` holds row indices never to return. Exact: everything tied with the k-th
    value is considered before the tie-break.
    """
    distances = np.asarray(distances)
    keep = np.ones(len(distances), dtype=bool)
    keep[np.asarray(exclude, dtype=np.int64)] = False
    candidates = np.flatnonzero(keep)
    k = min(k, len(candidates))
    if k == 0:
        return candidates[:0]
    values = distances[candidates]
    if k < len(candidates):
        kth = np.partition(values, k - 1)[k - 1]
        close = values <= kth
        candidates, values = candidates[close], values[close]
    order = np.lexsort((candidates, values))[:k]
    return candidates[order]
