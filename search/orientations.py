"""Hash search that also finds flipped and 90°-rotated copies (``any_orientation=True``).

A perceptual hash changes completely when the picture is mirrored or turned on its side,
so such copies are normally missed. Instead of changing what is stored, the query is hashed
in all 8 orientations (the symmetries of a rectangle) and each collection image scores the
smallest of its 8 Hamming distances (search.query): nothing to re-extract, and 8 hash
computations plus 8 matrix passes per query. The price is a few more false matches,
measured in bench/quality.py.
"""
import numpy as np
from PIL import Image

from features.hashes import packed_hashes
from search.metrics import hamming_distance

# Identity first, so that among equal distances the upright match is the one reported.
ORIENTATIONS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180,
                Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
                Image.Transpose.TRANSVERSE)


def oriented(image: Image.Image) -> list[Image.Image]:
    """The 8 orientations of a PIL image (mirrored and/or turned by multiples of 90°)."""
    return [image if t is None else image.transpose(t) for t in ORIENTATIONS]


def oriented_hashes(image: Image.Image, kind: str, hash_size: int) -> np.ndarray:
    """(8, hash_size**2 / 8) packed hashes of ``image`` in every orientation, made as the extraction makes them."""
    return packed_hashes([im.convert("L") for im in oriented(image)], kind, hash_size)


def min_hamming_distance(packed_matrix: np.ndarray, packed_queries: np.ndarray) -> np.ndarray:
    """Per row, the smallest Hamming distance to any of the query's orientations."""
    return np.min([hamming_distance(packed_matrix, q) for q in packed_queries], axis=0)
