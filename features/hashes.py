"""Perceptual hashes: images in, an (n, ceil(hash_size**2 / 8)) packed uint8 array out.

Each hash is imagehash's own function applied to the image it is given, so for that image
it is bit for bit imagehash's; only the storage is ours: bits packed most significant first
(8 bytes for a 64-bit hash), the order of imagehash's hex string.

What we give it is the shared 256-pixel decoded copy (features/decode.py), not the original
file: decoding once is what makes extraction fast, and imagehash on the full-resolution file
costs tens of milliseconds more per photo. The stored hashes therefore differ slightly from
imagehash applied to the full-resolution file (upright, transparency on white): on 24 photos
(bench/hash_fidelity.py) 1 aHash, 5 dHashes and 3 pHashes of 24 differ, by at most 2 of 64
bits; on scikit-image's sample files (textures, text, greyscale) up to 7 dHash bits
(tests/test_hashes.py pins the bounds). A
query is hashed the same way, so copies of one picture still hash alike.
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
