"""Every pair of unit vectors closer than a cosine distance, without comparing all pairs.

Why not all pairs: at 500,000 images of 512 floats that is 1.3e14 multiply-adds, over ten
minutes of BLAS on two cores, and an N x N matrix nobody can hold. Why not Annoy: one query
per image at 1-2 ms is still 15 minutes, and its recall is too low to find every copy.

How (an inverted file, as in faiss' IVF): a few rounds of faiss' spherical k-means on a sample give
about sqrt(probes * N) centroids; every row belongs to its nearest centroid's cell and also
"probes" its next nearest ones. Two rows are compared only when they share a cell or one
probes the other's cell, by exact matrix products, block by block, so memory stays at one
block plus O(N) bookkeeping. Near-duplicates lie far closer to each other than to any
centroid, so they almost always land in the same or a probed cell; the benchmark measures
how often against an exact all-pairs run (bench/bench_duplicates.py).

Also here: pairs of packed bit hashes within a Hamming radius, by multi-index hashing.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from duplicates.groups import UnionFind
from duplicates.rows import RowReader
from search.ann import import_faiss

BRUTE_FORCE_ROWS = 6000  # below this, plain blocked all pairs is as fast as building cells
BLOCK = 2048  # rows per matrix-product block: a 2048 x 2048 float32 block is 16 MB
DEFAULT_PROBES = 4  # cells each row is compared with (its own + 3 nearest)
# faiss defaults to 25 k-means rounds; 10 find the pairs the hand-written k-means found (50k: 0.9998), 500k in 38 s.
KMEANS_ROUNDS = 10
SAMPLE_PER_CELL = 16  # k-means trains on this many rows per centroid (at most)
ASSIGN_BLOCK = 4096  # rows per product with the centroids
MAX_BLOCK_PAIRS = 200_000  # pairs of one block above this are summarised (spanning_pairs)


class Pairs(NamedTuple):
    """Pairs of row indices (left < right) and their distances, one block at a time."""
    left: np.ndarray
    right: np.ndarray
    distance: np.ndarray


def close_pairs(unit: np.ndarray, threshold: float, *, probes: int = DEFAULT_PROBES, cells: int | None = None,
                seed: int = 0, brute_force_rows: int = BRUTE_FORCE_ROWS, workers: int | None = None,
                subset: np.ndarray | None = None) -> Iterator[Pairs]:
    """Yield every pair of rows with cosine distance <= ``threshold`` (with the IVF scheme above;
    all of them when N is small). Rows must be unit length; the matrix may be memory-mapped.
    ``subset``: only these rows (sorted row numbers), e.g. one per set of byte-identical files.

    The many small products run on ``workers`` threads (default: one per core) with one BLAS
    thread each: OpenBLAS's own threads lose 100x on small products when the cores are busy.
    """
    with RowReader(unit, subset) as reader:
        for block in _close_pairs(reader, threshold, probes, cells, seed, brute_force_rows, workers):
            yield block if subset is None else Pairs(reader.subset[block.left], reader.subset[block.right],
                                                     block.distance)


def _close_pairs(reader, threshold, probes, cells, seed, brute_force_rows, workers):
    n = len(reader)
    if n < 2:
        return
    cut = np.float32(1.0 - threshold)
    workers = workers or os.cpu_count() or 1
    cells_used = n > brute_force_rows and probes >= 1
    if cells_used:  # faiss spreads k-means and the assignment over the cores itself
        centroids = train_centroids(reader, cells or max(2, int(math.sqrt(probes * n))), seed)
        nearest = nearest_cells(reader, centroids, probes)
    with single_threaded_blas(), ThreadPoolExecutor(workers, thread_name_prefix="duplicates") as pool:
        if not cells_used:
            every = np.arange(n)
            for found in pool.map(lambda i: list(_within_block(reader.take, every, i, cut)), range(0, n, BLOCK)):
                yield from found
            return
        members = _grouped(nearest[:, 0], len(centroids))
        visitors = _grouped(nearest[:, 1:].ravel(), len(centroids), np.repeat(np.arange(n), nearest.shape[1] - 1))

        def cell_pairs(cell):
            own = members[cell]
            found = list(_within(reader.take, own, cut)) if len(own) else []
            if len(own) and len(visitors[cell]):
                found += _between(reader.take, visitors[cell], own, cut)
            return found

        for found in pool.map(cell_pairs, range(len(centroids))):
            yield from found


def all_pairs(unit: np.ndarray, threshold: float) -> Iterator[Pairs]:
    """The exact reference: every pair compared, block by block (BLAS as configured, plain
    indexing of the matrix)."""
    yield from _within(unit.__getitem__, np.arange(len(unit)), np.float32(1.0 - threshold))


@contextmanager
def single_threaded_blas():
    """One BLAS thread while inside (process-wide: OpenBLAS has one setting)."""
    with threadpool_limits(1, user_api="blas"):
        yield


def train_centroids(rows: RowReader | np.ndarray, cells: int, seed: int = 0, rounds: int = KMEANS_ROUNDS) -> np.ndarray:
    """Unit-length centroids: faiss' spherical k-means on a seeded sample of ``rows`` (a matrix
    or a RowReader)."""
    faiss = import_faiss()

    reader = rows if isinstance(rows, RowReader) else RowReader(rows)
    n = len(reader)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, cells * SAMPLE_PER_CELL), replace=False))
    data = np.ascontiguousarray(reader.take(sample), dtype=np.float32)
    kmeans = faiss.Kmeans(data.shape[1], min(cells, len(data)), niter=rounds, spherical=True, seed=seed,
                          min_points_per_centroid=1, max_points_per_centroid=SAMPLE_PER_CELL)
    kmeans.train(data)
    return kmeans.centroids


def nearest_cells(rows: RowReader | np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """(N, probes) int32: each row's nearest centroids, nearest first (faiss' exact inner-product
    search over the centroids, block by block so a memory-mapped matrix is read once)."""
    faiss = import_faiss()

    reader = rows if isinstance(rows, RowReader) else RowReader(rows)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    probes = min(probes, len(centroids))
    out = np.empty((len(reader), probes), dtype=np.int32)
    for start in range(0, len(reader), ASSIGN_BLOCK):
        block = np.ascontiguousarray(reader.slice(start, start + ASSIGN_BLOCK), dtype=np.float32)
        out[start:start + len(block)] = index.search(block, probes)[1]
    return out


def _grouped(keys, count, values=None):
    """[array of values (or positions) whose key is k for k in range(count)], by one sort."""
    values = np.arange(len(keys)) if values is None else values
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(count + 1))
    sorted_values = values[order]
    return [np.sort(sorted_values[bounds[k]:bounds[k + 1]]) for k in range(count)]


def _within(take, rows, cut):
    """Pairs among ``rows`` (upper triangle only), block by block; take(rows) reads rows."""
    for i in range(0, len(rows), BLOCK):
        yield from _within_block(take, rows, i, cut)


def _within_block(take, rows, i, cut):
    """Pairs of rows[i:i + BLOCK] with themselves and with every later row."""
    left_rows = rows[i:i + BLOCK]
    left = np.asarray(take(left_rows), dtype=np.float32)
    for j in range(i, len(rows), BLOCK):
        right_rows = rows[j:j + BLOCK]
        right = left if j == i else np.asarray(take(right_rows), dtype=np.float32)
        sims = left @ right.T
        if j == i:
            a, b = np.nonzero(np.triu(sims >= cut, k=1))
        else:
            a, b = np.nonzero(sims >= cut)
        if len(a):
            yield _ordered(left_rows[a], right_rows[b], sims[a, b])


def _between(take, rows_a, rows_b, cut):
    """Pairs of a row of ``rows_a`` and a row of ``rows_b`` (disjoint sets), block by block."""
    for i in range(0, len(rows_a), BLOCK):
        left_rows = rows_a[i:i + BLOCK]
        left = np.asarray(take(left_rows), dtype=np.float32)
        for j in range(0, len(rows_b), BLOCK):
            right_rows = rows_b[j:j + BLOCK]
            sims = left @ np.asarray(take(right_rows), dtype=np.float32).T
            a, b = np.nonzero(sims >= cut)
            if len(a):
                yield _ordered(left_rows[a], right_rows[b], sims[a, b])


def _ordered(a, b, sims):
    """Pairs with the smaller row first, and distances clipped at 0 (rounding of identical rows);
    a flood of pairs (thousands of identical pictures) is summarised as a spanning forest."""
    if len(a) > MAX_BLOCK_PAIRS:
        return spanning_pairs(a, b)
    return Pairs(np.minimum(a, b), np.maximum(a, b), np.maximum(1.0 - sims.astype(np.float64), 0.0))


def spanning_pairs(a: np.ndarray, b: np.ndarray) -> Pairs:
    """Pairs that connect exactly what the pairs (a[k], b[k]) connect: each row to the smallest
    row of its connected set (distances NaN: they are not measured). Grouping needs no more, and
    10,000 identical pictures give 10,000 pairs instead of 50 million."""
    nodes, index = np.unique(np.concatenate([a, b]), return_inverse=True)
    sets = UnionFind(len(nodes))
    sets.union(index[:len(a)], index[len(a):])
    roots = sets.find(np.arange(len(nodes)))
    others = np.flatnonzero(roots != np.arange(len(nodes)))
    return Pairs(nodes[roots[others]], nodes[others], np.full(len(others), np.nan))
