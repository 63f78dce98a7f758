"""A synthetic project DB of N images with clustered features, for the search benchmark.

Why clustered: real embeddings lie near a low-dimensional structure with many groups of
similar pictures; uniform random vectors have no near neighbours at all, which makes an
approximate index look useless and exact search look typical. Here each feature family is
a Gaussian mixture of a few thousand clusters of Zipf-distributed sizes (subjects), and
within a cluster images come in bursts (mean 8 shots of one scene, like a phone's photo
series), so an image's true nearest neighbours are its burst and nearby bursts:

- embeddings (512-d, ResNet18's width): cluster centre + burst offset (rank 32, decaying
  spectrum) + per-shot variation (rank 16) + small isotropic noise, then ReLU like a
  pooled CNN feature;
- rgb (8x8x8 = 512 bins): a sparse per-cluster colour distribution times log-normal
  noise, L1-normalised;
- ahash/dhash/phash (64 bits): per-cluster bits with 8% of them flipped per image.

Rows are written by the project's own db/ code (insert_images, write_batch), so the DB is
exactly what generator.py + main.py would leave. Built once and kept in bench/cache/.
"""
import os
import time

import numpy as np

from db import connect
from db.features import ExtractedRow, write_batch
from db.images import insert_images, pending_page
from db.meta import check_or_write_stamp, claim_dataset_root

DIM = 512
HASH_BYTES = 8
CHUNK = 20_000
FORMAT = 3  # bump when the generator changes: cached DBs are named after it
STAMP = {"embedding_model": "resnet18", "embedding_weights_sha256": "synthetic-benchmark-features",
         "embedding_dim": DIM, "vector_dtype": "float32-le", "rgb_dim": 512, "hist_bins": 8,
         "hash_size": 8, "decode_side": 256, "embedding_precision": "float32"}


class Mixture:
    """The cluster parameters; rows are drawn chunk by chunk from it."""

    def __init__(self, clusters, seed=0, burst_rank=32, shot_rank=16):
        rng = np.random.default_rng(seed)
        self.clusters = clusters
        weights = 1.0 / np.arange(1, clusters + 1) ** 0.8  # Zipf-like cluster sizes
        self.weights = weights / weights.sum()
        self.centres = (rng.standard_normal((clusters, DIM)) * 0.6 + 0.3).astype(np.float32)
        self.burst_basis = _basis(rng, burst_rank, 0.35)
        self.shot_basis = _basis(rng, shot_rank, 0.12)
        colours = rng.random((clusters, 512)) ** 12  # a few dominant bins per cluster
        self.colours = (colours / colours.sum(axis=1, keepdims=True)).astype(np.float32)
        self.bits = rng.random((clusters, HASH_BYTES * 8)) < 0.5

    def draw(self, n, rng):
        """(cluster of each row, embeddings, rgb, {kind: packed hashes}) for ``n`` rows."""
        bursts = rng.geometric(1 / 8, size=n // 4 + 8)
        burst_of_row = np.repeat(np.arange(len(bursts)), bursts)[:n]
        burst_cluster = rng.choice(self.clusters, size=len(bursts), p=self.weights)
        burst_offset = (rng.standard_normal((len(bursts), self.burst_basis.shape[0]), dtype=np.float32)
                        @ self.burst_basis)
        cluster = burst_cluster[burst_of_row]
        shot = rng.standard_normal((n, self.shot_basis.shape[0]), dtype=np.float32) @ self.shot_basis
        noise = rng.standard_normal((n, DIM), dtype=np.float32) * 0.03
        embeddings = np.maximum(self.centres[cluster] + burst_offset[burst_of_row] + shot + noise, 0.0)
        rgb = self.colours[cluster] * np.exp(rng.standard_normal((n, 512), dtype=np.float32) * 0.5) + 1e-5
        rgb /= rgb.sum(axis=1, keepdims=True)
        hashes = {}
        for kind in ("ahash", "dhash", "phash"):
            flips = rng.random((n, HASH_BYTES * 8), dtype=np.float32) < 0.08
            hashes[kind] = np.packbits(self.bits[cluster] ^ flips, axis=1)
        return cluster, embeddings.astype(np.float32), rgb.astype(np.float32), hashes


def _basis(rng, rank, scale):
    """A random (rank, DIM) basis with a decaying spectrum: variation of low intrinsic dimension."""
    spectrum = (np.arange(1, rank + 1) ** -0.5).astype(np.float32)
    return (rng.standard_normal((rank, DIM)) * spectrum[:, None] * scale).astype(np.float32)


def clusters_for(n):
    """A few thousand clusters, fewer for small N so clusters keep ~100+ members."""
    return int(min(4000, max(200, n // 150)))


def db_path_for(cache_dir, n):
    return os.path.join(cache_dir, f"synthetic-f{FORMAT}-n{n}.db")


def build(cache_dir, n, seed=0, progress=None):
    """The DB of ``n`` synthetic images (built if missing); returns (path, seconds spent building)."""
    path = db_path_for(cache_dir, n)
    done = path + ".complete"
    if os.path.exists(done) and os.path.exists(path):
        return path, 0.0
    start = time.perf_counter()
    os.makedirs(cache_dir, exist_ok=True)
    for stale in (path, path + "-wal", path + "-shm"):
        if os.path.exists(stale):
            os.remove(stale)
    mixture = Mixture(clusters_for(n), seed)
    rng = np.random.default_rng(seed + 1)
    conn = connect(path, create=True)
    claim_dataset_root(conn, os.path.join(os.path.abspath(cache_dir), f"synthetic-images-{n}"))
    check_or_write_stamp(conn, STAMP)
    for first in range(0, n, CHUNK):
        count = min(CHUNK, n - first)
        names = [f"c{(first + i) // 1000:04d}/img{first + i:07d}.jpg" for i in range(count)]
        insert_images(conn, [(name, 250_000, 1, 1600, 1200, "pending", None) for name in names])
        rows = pending_page(conn, 0, count)
        _, embeddings, rgb, hashes = mixture.draw(count, rng)
        digests = [row.id.to_bytes(16, "big") for row in rows]
        extracted = [ExtractedRow(row.id, row.size, row.mtime_ns, digest) for row, digest in zip(rows, digests)]
        write_batch(conn, extracted, [], digests, {"embedding": embeddings, "rgb": rgb, **hashes})
        if progress:
            progress(first + count, n)
    conn.close()
    with open(done, "w") as fh:
        fh.write("complete\n")
    return path, time.perf_counter() - start
