"""Our stored hashes are imagehash's, bit for bit, packed most significant bit first."""
import glob
import os

import imagehash
import numpy as np
import pytest
import skimage
from PIL import Image

from samples import random_photo
from features.hashes import HASH_FUNCTIONS, all_hashes, majority_bits, packed_hashes

SAMPLE_PHOTOS = sorted(glob.glob(os.path.join(os.path.dirname(skimage.__file__), "data", "*.png")))[:12]


def _images():
    generated = [random_photo(seed, size=(97 + seed * 13, 61 + seed * 7)) for seed in range(8)]
    real = []
    for path in SAMPLE_PHOTOS:
        with Image.open(path) as image:
            real.append(image.convert("RGB"))
    return generated + real


@pytest.mark.parametrize("hash_size", [8, 16])
@pytest.mark.parametrize("kind", sorted(HASH_FUNCTIONS))
def test_packed_hash_equals_imagehash(kind, hash_size):
    images = _images()
    assert len(images) >= 16
    packed = packed_hashes(images, kind, hash_size)
    assert packed.shape == (len(images), hash_size * hash_size // 8) and packed.dtype == np.uint8
    for row, image in zip(packed, images):
        expected = HASH_FUNCTIONS[kind](image, hash_size=hash_size)
        assert row.tobytes().hex() == str(expected)
        assert np.array_equal(np.unpackbits(row).astype(bool), expected.hash.ravel())


def test_all_hashes_matches_each_function():
    images = _images()[:5]
    together = all_hashes(images, 8)
    for kind in HASH_FUNCTIONS:
        assert np.array_equal(together[kind], packed_hashes(images, kind, 8))


def test_known_answer_average_hash_of_half_black_half_white():
    pixels = np.zeros((64, 64), dtype=np.uint8)
    pixels[:, 32:] = 255  # right half white: the right 4 columns of every row are above the mean
    packed = packed_hashes([Image.fromarray(pixels)], "ahash", 8)
    assert packed[0].tolist() == [0b00001111] * 8
    assert str(imagehash.average_hash(Image.fromarray(pixels))) == "0f" * 8


def test_majority_bits_known_answer():
    hashes = np.array([[0b11110000], [0b11001100], [0b10101010]], dtype=np.uint8)
    assert majority_bits(hashes).tolist() == [[0b11101000]]
    # a 1-1 tie gives 0
    assert majority_bits(hashes[:2]).tolist() == [[0b11000000]]
