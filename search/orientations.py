"""Hash search that also finds flipped and 90°-rotated copies (``any_orientation=True``).

A perceptual hash changes completely when the picture is mirrored or turned on its side,
so such copies are normally missed. Instead of changing what is stored, the query is hashed
in all 8 orientations (the symmetries of a rectangle) and each collection image scores the
smallest of its 8 Hamming distances: nothing to re-extract, and 8 hash computations plus 8
matrix passes per query. The price is a few more false matches, measured in bench/quality.py.
"""
import numpy as np
from PIL import Image

HASH_MODES = ("ahash", "dhash", "phash")

# Identity first, so that among equal distances the upright match is the one reported.
ORIENTATIONS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180,
                Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
                Image.Transpose.TRANSVERSE)


def oriented(image):
    """The 8 orientations of a PIL image (mirrored and/or turned by multiples of 90°)."""
    return [image if t is None else image.transpose(t) for t in ORIENTATIONS]


def oriented_hashes(image, kind, hash_size):
    """(8, hash_size**2 / 8) packed hashes of ``image`` in every orientation, made as main.py makes them."""
    from features.hashes import packed_hashes

    return packed_hashes([im.convert("L") for im in oriented(image)], kind, hash_size)


def query_hashes(paths, settings, kind):
    """Packed hashes of the combined query in all 8 orientations: (8, nbytes).

    Several query images are combined per orientation by a majority vote of bits, as the
    upright search combines them.
    """
    from features.decode import decode, read_file
    from features.hashes import majority_bits

    per_image = [oriented_hashes(decode(read_file(p)[0], settings.decode_side, settings.max_pixels), kind,
                                 settings.hash_size) for p in paths]
    if len(per_image) == 1:
        return per_image[0]
    stacked = np.stack(per_image)  # (images, 8, nbytes)
    return np.concatenate([majority_bits(stacked[:, k]) for k in range(len(ORIENTATIONS))])


def min_hamming_distance(packed_matrix, packed_queries):
    """Per row, the smallest Hamming distance to any of the query's orientations."""
    from search.metrics import hamming_distance

    return np.min([hamming_distance(packed_matrix, q) for q in packed_queries], axis=0)
