"""Perceptual hashes: images in, an (n, hash_size**2 / 8) packed uint8 array out.

Computed by imagehash itself, so they are bit-for-bit imagehash's; only the storage is
ours: bits packed most significant first (8 bytes for a 64-bit hash), the order of
imagehash's hex string.
"""
import imagehash
import numpy as np

HASH_FUNCTIONS = {
    "ahash": imagehash.average_hash,
    "dhash": imagehash.dhash,
    "phash": imagehash.phash,
}


def packed_hashes(images, kind, hash_size=8):
    """Hash every image with imagehash's ``kind`` and pack the bits."""
    function = HASH_FUNCTIONS[kind]
    bits = np.array([function(image, hash_size=hash_size).hash.ravel() for image in images], dtype=bool)
    return np.packbits(bits.reshape(len(images), hash_size * hash_size), axis=1)


def all_hashes(images, hash_size=8):
    """{kind: packed array} for the three hashes, greyscale conversion done once."""
    grey = [image.convert("L") for image in images]
    return {kind: packed_hashes(grey, kind, hash_size) for kind in HASH_FUNCTIONS}


def majority_bits(packed):
    """Combine several packed hashes into one: each bit set where more than half are set."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1)
    return np.packbits(bits.sum(axis=0) * 2 > len(bits))[None, :]
