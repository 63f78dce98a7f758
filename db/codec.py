"""Blob layout: little-endian float32 vectors and packed-bit hashes, one blob per row."""
import numpy as np

VECTOR_DTYPE = "<f4"


def vector_to_blob(vector):
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def blobs_to_matrix(blobs, dim):
    """Stack float32 blobs into an (n, dim) native float32 matrix in one copy."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE)
    return flat.reshape(len(blobs), dim).astype(np.float32, copy=False)


def blobs_to_bits(blobs, n_bytes):
    """Stack packed-hash blobs into an (n, n_bytes) uint8 matrix."""
    if not blobs:
        return np.zeros((0, n_bytes), dtype=np.uint8)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), n_bytes)
