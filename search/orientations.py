"""Hash search that also finds flipped and 90°-rotated copies (``any_orientation=True``).

A perceptual hash changes completely when the picture is mirrored or turned on its side,
so such copies are normally missed. Instead of changing what is stored, the query is hashed
in all 8 orientations (the symmetries of a rectangle) and each collection image scores the
smallest of its 8 Hamming distances (search.query): nothing to re-extract, and 8 hash
computations plus 8 matrix passes per query. The price is a few more false matches,
measured in bench/quality.py.
"""
from PIL import Image

# Identity first, so that among equal distances the upright match is the one reported.
ORIENTATIONS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180,
                Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
                Image.Transpose.TRANSVERSE)


def oriented(image: Image.Image) -> list[Image.Image]:
    """The 8 orientations of a PIL image (mirrored and/or turned by multiples of 90°)."""
    return [image if t is None else image.transpose(t) for t in ORIENTATIONS]
