"""The straightforward ("seed-style") way to do each job, timed beside the project's way.

Extraction: every feature opens and decodes the file again at full resolution; torchvision
transforms and the network (the same one as the project's, in eager PyTorch, float32) at
batch size 1; the 8x8x8 histogram over every full-resolution
pixel (numpy stands in for OpenCV's calcHist, which is not a dependency); aHash/dHash/pHash
from imagehash at hash_size=32 on the full image; one INSERT of pickled arrays and one
commit per image. Search: the whole column read row by row into one matrix, each query
normalising or subtracting over the whole matrix and sorting every distance; hashes in
the seed layout of one byte per bit at hash_size=32 (1024 bytes per hash).
"""
import pickle
import sqlite3
import time
from collections import defaultdict

import imagehash
import numpy as np
from PIL import Image

from db.features import load_column

SEED_HASH_SIZE = 32


class Stopwatch:
    """Accumulated seconds per stage name."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def __call__(self, stage, function, *args):
        start = time.perf_counter()
        result = function(*args)
        self.seconds[stage] += time.perf_counter() - start
        return result


def _open_full(path):
    with Image.open(path) as image:
        return image.convert("RGB")


def _full_histogram(image, bins=8):
    pixels = np.asarray(image)
    shift = 8 - int(np.log2(bins))
    red, green, blue = (pixels[..., c] >> shift for c in range(3))
    index = (red.astype(np.uint16) * bins + green) * bins + blue
    counts = np.bincount(index.ravel(), minlength=bins ** 3)
    return (counts / counts.sum()).astype(np.float32)


def _hashes(image):
    return [function(image, hash_size=SEED_HASH_SIZE).hash for function in
            (imagehash.average_hash, imagehash.dhash, imagehash.phash)]


def extract_all(paths, network, spec, db_file):
    """Every feature of every path, the seed's way, with the torch ``network`` whose input
    normalisation ``spec`` gives; returns (seconds per stage, total seconds)."""
    import torch  # heavy: only the reference's extraction needs it
    from torchvision import transforms

    preprocess = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std),
    ])
    conn = sqlite3.connect(db_file)
    conn.execute("CREATE TABLE IF NOT EXISTS features (path TEXT PRIMARY KEY, embedding BLOB, rgb BLOB, hashes BLOB)")
    watch = Stopwatch()
    with torch.no_grad():
        network(torch.zeros(1, 3, 224, 224))  # one-off kernel set-up, untimed (as on the project's side)
    start = time.perf_counter()
    for path in paths:
        image = watch("decode", _open_full, path)
        tensor = watch("preprocess", preprocess, image)
        with torch.no_grad():
            embedding = watch("network", lambda tensor=tensor: network(tensor[None])[0].numpy())
        rgb = watch("histogram", _full_histogram, watch("decode", _open_full, path))
        hashes = watch("hashes", _hashes, watch("decode", _open_full, path))

        def write(path=path, embedding=embedding, rgb=rgb, hashes=hashes):
            conn.execute("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?)",
                         (path, pickle.dumps(embedding), pickle.dumps(rgb), pickle.dumps(hashes)))
            conn.commit()

        watch("db_write", write)
    conn.close()
    return dict(watch.seconds), time.perf_counter() - start


def load_matrix(conn, column, dtype="<f4"):
    """The column as one matrix, converted row by row."""
    _, paths, blobs = load_column(conn, column)
    return np.vstack([np.frombuffer(blob, dtype=dtype) for blob in blobs]), paths


def seed_hash_layout(packed):
    """Packed 64-bit hashes -> the seed's (n, 1024) one-byte-per-bit matrix (same cost per row
    as a real hash_size=32 hash; the bits are repeated)."""
    bits = np.unpackbits(packed, axis=1)
    return np.tile(bits, (1, SEED_HASH_SIZE ** 2 // bits.shape[1]))


def top_k(matrix, query, metric, k, exclude_row=None):
    """Distances over the whole matrix, fully sorted, the query's own row dropped."""
    if metric == "cosine":
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        distances = 1.0 - unit @ (query / np.linalg.norm(query))
    elif metric == "euclidean":
        distances = np.linalg.norm(matrix - query, axis=1)
    elif metric == "manhattan":
        distances = np.abs(matrix - query).sum(axis=1)
    elif metric == "bhattacharyya":
        distances = np.sqrt(np.maximum(1.0 - np.sqrt(matrix * query).sum(axis=1), 0.0))
    elif metric == "hamming":
        distances = (matrix != query).sum(axis=1)
    else:
        raise ValueError(f"no reference for metric {metric!r}")
    order = np.argsort(distances, kind="stable")
    return [int(row) for row in order[:k + 1] if row != exclude_row][:k]
