"""Test data made on the fly, importable from any test (``from samples import random_photo``)."""
import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project folder


def random_photo(seed, size=(320, 240)):
    """A smooth random RGB image (blurred noise looks more like a photo than white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)
