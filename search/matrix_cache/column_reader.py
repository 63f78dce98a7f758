"""A mode's column read out of SQLite, chunk by chunk, as the rows the search uses.

Why chunks: at 500k images the blobs alone are gigabytes; reading them in chunks keeps
memory at one chunk plus the matrix (or only the chunk, when the rows go straight into a
cache file). Blobs are decoded by db.codec; embeddings become unit rows on the way.
"""
from __future__ import annotations

import os

import numpy as np

from db.codec import blobs_to_bits, blobs_to_matrix
from db.features import column_chunks
from search.metrics import unit_rows
from search.modes import get_mode


def append_paths(chunk_paths, lengths, blob):
    encoded = [path.encode("utf-8") for path in chunk_paths]
    lengths.extend(map(len, encoded))
    blob += b"".join(encoded)


def path_ends(lengths):
    return np.cumsum(np.asarray(lengths, dtype=np.int64))


def row_shape(mode, stamp):
    """(width,), dtype of one row of ``mode`` under the DB's stamp (width 0 before any extraction)."""
    spec = get_mode(mode)
    return ((spec.width(stamp) if stamp else 0),), np.dtype(spec.dtype).type


def to_rows(mode, blobs, width):
    """Blobs of one chunk -> rows as the search uses them (decoded by db.codec; unit rows where the mode wants them)."""
    spec = get_mode(mode)
    if spec.is_hash:
        return blobs_to_bits(list(blobs), width)
    rows = blobs_to_matrix(list(blobs), width)
    return unit_rows(rows) if spec.unit_rows else rows


def stream_column(conn, mode, stamp, tmp):
    """(ids, path ends, path bytes, matrix or its (rows, width, dtype) when written to ``tmp``)."""
    (width,), dtype = row_shape(mode, stamp)
    ids, lengths, path_blob, parts = [], [], bytearray(), []
    matrix_file = open(os.path.join(tmp, "matrix.bin"), "wb") if tmp else None
    try:
        for chunk in column_chunks(conn, get_mode(mode).column):
            chunk_ids, chunk_paths, blobs = zip(*chunk)
            ids.extend(chunk_ids)
            append_paths(chunk_paths, lengths, path_blob)
            rows = to_rows(mode, blobs, width)
            if matrix_file:
                matrix_file.write(memoryview(np.ascontiguousarray(rows)).cast("B"))
            else:
                parts.append(rows)
    finally:
        if matrix_file:
            matrix_file.close()
    ids = np.asarray(ids, dtype=np.int64)
    if matrix_file:
        matrix = (len(ids), width, dtype)
    else:
        matrix = np.concatenate(parts) if parts else np.zeros((0, width), dtype=dtype)
    return ids, path_ends(lengths), path_blob, matrix
