"""Search vectors for embeddings: the collection's mean taken out, then unit length again.

Why: CNN features of one collection share a large common component (every photo "looks like a
photo" to the network), so raw cosines crowd together and that shared part, not what differs,
decides many rankings. Subtracting the collection's mean embedding leaves what sets each picture
apart. Measured on the quality sets (EfficientNet-Lite0, whole-picture framing): P@10 on the Tux
Paint class map 0.673 -> 0.689, near-duplicate R@1 0.997 -> 0.996; the signed square root after centring
(``centred_ssqrt``: power normalisation) scored lower there (0.682) and is kept as an option.

What is stored stays raw: the transform is made when a matrix is loaded (search.matrix_cache),
so an existing DB gains at once, without re-extraction. The mean is the mean of the unit rows
of the matrix being searched; it is saved with the matrix cache, under its features version,
so it changes exactly when the collection does. Every query vector gets the same transform with
the same mean, so a copy of a stored picture lands where that picture's row is.
"""
from __future__ import annotations

import numpy as np

from config import InvalidInputError
from search.metrics import unit_rows

NONE, CENTRED, CENTRED_SSQRT = "none", "centred", "centred_ssqrt"
TRANSFORMS = (CENTRED, CENTRED_SSQRT, NONE)
CHUNK = 65536  # rows transformed at a time: the temporary arrays stay small at any collection size


def check_transform(kind: str) -> str:
    """``kind``, or a ValueError listing the valid ones."""
    if kind not in TRANSFORMS:
        raise InvalidInputError(f"unknown search transform {kind!r}; valid: {', '.join(TRANSFORMS)}")
    return kind


def collection_mean(unit_matrix: np.ndarray) -> np.ndarray:
    """The mean of the (already unit) rows, float32 (d,); accumulated in float64 chunk by chunk."""
    total = np.zeros(unit_matrix.shape[1], dtype=np.float64)
    for start in range(0, len(unit_matrix), CHUNK):
        total += unit_matrix[start:start + CHUNK].sum(axis=0, dtype=np.float64)
    return (total / max(len(unit_matrix), 1)).astype(np.float32)


def search_vectors(rows: np.ndarray, mean: np.ndarray, kind: str) -> np.ndarray:
    """Rows (raw or unit) -> float32 search vectors: unit rows, minus ``mean``, the signed square
    root for ``centred_ssqrt``, unit length again. ``none``: unit rows."""
    check_transform(kind)
    rows = np.asarray(rows, dtype=np.float32)
    out = np.empty(rows.shape, dtype=np.float32)
    for start in range(0, len(rows), CHUNK):
        part = unit_rows(rows[start:start + CHUNK])
        if kind != NONE:
            part = part - mean
            if kind == CENTRED_SSQRT:
                part = np.sign(part) * np.sqrt(np.abs(part))
            part = unit_rows(part)
        out[start:start + len(part)] = part
    return out


def transform_loaded(loaded, kind: str) -> None:
    """Turn a loaded matrix of unit rows into search vectors in place (matrix, ``unit`` copy,
    ``mean``, ``transform``; the unit rows stay as ``raw_matrix``); the mean and the vectors are
    saved with the matrix cache."""
    check_transform(kind)
    if kind == NONE or loaded.transform != NONE:
        return
    mean = loaded.prepare("mean", collection_mean)
    vectors = loaded.prepare(f"search-{kind}", lambda unit: search_vectors(unit, mean, kind))
    loaded.raw_matrix = loaded.matrix
    loaded.mean, loaded.matrix, loaded.transform = np.asarray(mean), vectors, kind
    loaded.prepared["unit"] = vectors  # cosine and the ann_cosine index work on the search vectors


def query_vectors(loaded, rows: np.ndarray) -> np.ndarray:
    """Query rows made from pictures (raw features) -> what ``loaded``'s rows are: the same
    transform with the collection's mean; unchanged where the matrix has no transform."""
    if loaded.transform == NONE:
        return rows
    return search_vectors(np.atleast_2d(rows), loaded.mean, loaded.transform)
