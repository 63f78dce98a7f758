"""Blob layout: little-endian float32 vectors and packed-bit hashes, one blob per row.

The only place arrays become blobs and blobs become arrays: extraction hands the DB
(n, d) arrays, search reads (n, d) matrices back.
"""
import numpy as np

VECTOR_DTYPE = "<f4"


def vector_to_blob(vector: np.ndarray) -> bytes:
    """One float vector as little-endian float32 bytes."""
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def bits_to_blob(packed: np.ndarray) -> bytes:
    """One packed hash (uint8 bytes, most significant bit first) as it is stored."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise ValueError(f"packed hashes must be uint8, got {packed.dtype}")
    return packed.tobytes()


def matrix_to_blobs(matrix: np.ndarray) -> list[bytes]:
    """Each row of an (n, d) float matrix as one vector blob (one conversion for all rows)."""
    rows = np.ascontiguousarray(matrix, dtype=VECTOR_DTYPE)
    return [vector_to_blob(row) for row in rows]


def bit_rows_to_blobs(packed: np.ndarray) -> list[bytes]:
    """Each row of an (n, n_bytes) packed-hash matrix as one blob."""
    return [bits_to_blob(row) for row in np.asarray(packed)]


def blobs_to_matrix(blobs: list[bytes], dim: int) -> np.ndarray:
    """Stack float32 blobs into an (n, dim) native float32 matrix in one copy."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE)
    return flat.reshape(len(blobs), dim).astype(np.float32, copy=False)


def blobs_to_bits(blobs: list[bytes], n_bytes: int) -> np.ndarray:
    """Stack packed-hash blobs into an (n, n_bytes) uint8 matrix."""
    if not blobs:
        return np.zeros((0, n_bytes), dtype=np.uint8)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), n_bytes)
