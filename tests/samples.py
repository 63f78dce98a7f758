"""Test data made on the fly, importable from any test (``from samples import random_photo``)."""
import hashlib
import io
import os

import numpy as np
from PIL import Image

from db.features import ExtractedRow, write_batch
from db.images import insert_images, pending_page
from features.decode import decode
from features.network.base import centre_crop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project folder


def random_photo(seed, size=(320, 240)):
    """A smooth random RGB image (blurred noise looks more like a photo than white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)


def fake_stamp(dim):
    """A settings stamp for a DB of fake vectors of width ``dim`` (no network involved)."""
    return {"embedding_model": "resnet18", "embedding_weights_sha256": "test", "embedding_dim": dim,
            "vector_dtype": "float32-le", "rgb_dim": 8, "hist_bins": 2, "hash_size": 8, "decode_side": 256,
            "embedding_precision": "float32"}


def add_fake_images(conn, rng, names, dim, ok=True):
    """Rows for ``names`` written by the project's own db code; with ``ok`` extracted with random
    features of width ``dim`` (fast DB tests without a CNN), else left pending."""
    insert_images(conn, [(name, 100, 1, 10, 10, "pending", None) for name in names])
    if not ok:
        return
    wanted = set(names)
    rows = [row for row in pending_page(conn, 0, 1_000_000) if row.path in wanted]
    hashes = [row.path.encode() + rng.bytes(4) for row in rows]
    rgb = rng.random((len(rows), 8), dtype=np.float32)
    features = {"embedding": rng.standard_normal((len(rows), dim)).astype(np.float32),
                "rgb": rgb / rgb.sum(axis=1, keepdims=True)}
    features.update({kind: rng.integers(0, 256, (len(rows), 8), dtype=np.uint8)
                     for kind in ("ahash", "dhash", "phash")})
    write_batch(conn, [ExtractedRow(r.id, r.size, r.mtime_ns, h) for r, h in zip(rows, hashes)], [], hashes, features)


def jpeg_crops(photos):
    """Network crops of each PIL photo and of its top-left quarter, saved as JPEG and decoded as
    the extraction decodes (shorter side 256)."""
    crops = []
    for photo in photos:
        photo = photo.convert("RGB")
        for box in (None, (0, 0, photo.width // 2, photo.height // 2)):
            data = io.BytesIO()
            (photo if box is None else photo.crop(box)).save(data, "JPEG", quality=90)
            crops.append(centre_crop(decode(data.getvalue(), 256)))
    return np.stack(crops)


def cosines(a, b):
    """Row-wise cosine similarity of two equally shaped matrices."""
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def checksums(folder):
    """{path relative to ``folder``: SHA-256} of every file under it but undo manifests: what a
    move and its undo must keep byte for byte."""
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            if not f.startswith("undo-"):
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(d, f), folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out
