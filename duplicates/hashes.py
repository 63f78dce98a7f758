"""Pairs of packed bit hashes within a Hamming radius, by multi-index hashing; and the
stored hashes of mirrored and turned copies, computed from the bits alone.

Multi-index hashing (Norouzi et al.): split the bits into m blocks. If two hashes differ in
at most r bits, some block differs in at most floor(r / m) bits (pigeonhole), so looking
up every row's block values, and their neighbours within floor(r / m) flipped bits, in a
sorted table finds every pair within r, and only a few others, which the exact Hamming
distance then drops. m is chosen from a cost model: few probes, small buckets.

Orientations without the images: the hash grids transform with the picture.
- aHash (pixel > mean on an s x s thumbnail): every mirror and quarter turn permutes the grid.
- pHash (DCT coefficient > median): a mirror flips the sign of the odd-frequency coefficients,
  a transpose transposes the grid; with the median near 0 that inverts those bits (approximate).
- dHash (left pixel brighter than its right neighbour, on an (s+1) x s thumbnail): a left-right
  mirror reverses and inverts each row, an up-down mirror reverses the rows; a quarter turn
  compares other pixels, which the bits do not hold, so dHash covers 4 of the 8 orientations.
"""
from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from duplicates.candidates import MAX_BLOCK_PAIRS, Pairs, spanning_pairs

MAX_BLOCK_BITS = 62
MAX_CANDIDATES = 4_000_000  # candidate pairs verified at once: about 100 MB of temporaries
DENSE_BITS = 22  # blocks this narrow get direct lookup arrays (2 x 32 MB at most)
CANDIDATE_COST = 0.08  # one candidate's cost relative to one row's share of a probe pass


# Each list follows search.orientations.ORIENTATIONS: identity, mirror left-right, mirror
# up-down, 180, 90 (counter-clockwise), 270, transpose, transverse.
def _ahash_variants(grid):
    return [grid, grid[:, :, ::-1], grid[:, ::-1, :], grid[:, ::-1, ::-1], np.rot90(grid, 1, axes=(1, 2)),
            np.rot90(grid, 3, axes=(1, 2)), grid.transpose(0, 2, 1), grid[:, ::-1, ::-1].transpose(0, 2, 1)]


def _phash_variants(grid):
    s = grid.shape[1]
    odd = (np.arange(s) % 2 == 1)
    col_flip = grid ^ odd[None, None, :]  # mirror left-right: odd column frequencies change sign
    row_flip = grid ^ odd[None, :, None]
    both = col_flip ^ odd[None, :, None]
    turn = [g.transpose(0, 2, 1) for g in (col_flip, row_flip, grid, both)]  # 90, 270, transpose, transverse
    return [grid, col_flip, row_flip, both, *turn]


def _dhash_variants(grid):
    lr = ~grid[:, :, ::-1]
    return [grid, lr, grid[:, ::-1, :], lr[:, ::-1, :]]


ORIENTATION_RULES: dict[str, Callable] = {"ahash": _ahash_variants, "phash": _phash_variants,
                                          "dhash": _dhash_variants}


def oriented_rows(packed: np.ndarray, kind: str) -> list[np.ndarray]:
    """Packed hashes of every row as the mirrored / turned picture would hash (identity first)."""
    n, nbytes = packed.shape
    side = math.isqrt(nbytes * 8)
    bits = np.unpackbits(np.asarray(packed), axis=1)
    side = next(s for s in range(side, 0, -1) if s * s <= bits.shape[1] and (s * s + 7) // 8 == nbytes)
    grid = bits[:, :side * side].reshape(n, side, side).astype(bool)
    return [np.packbits(np.ascontiguousarray(g).reshape(n, -1), axis=1) for g in ORIENTATION_RULES[kind](grid)]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differing bits of packed hashes along the last axis (broadcasting like ^)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int64)


def hash_pairs(packed: np.ndarray, radius: int, *, kind: str | None = None, any_orientation: bool = False,
               summarise: bool = True) -> Iterator[Pairs]:
    """Every pair of rows within ``radius`` bits (also after mirroring / turning one of them
    when ``any_orientation``; ``kind`` names the hash for that). With ``summarise``, a flood of
    pairs in one lookup is cut to a spanning forest (spanning_pairs): the same groups."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n = len(packed)
    if n < 2:
        return
    queries = oriented_rows(packed, kind) if any_orientation else [packed]
    nbits = packed.shape[1] * 8
    blocks, sub = plan(nbits, radius, n)
    bounds = np.linspace(0, nbits, blocks + 1).astype(int)
    table_bits = np.unpackbits(packed, axis=1)
    with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="duplicates") as pool:
        for start, stop in zip(bounds[:-1], bounds[1:]):
            keys = _keys(table_bits[:, start:stop])
            order = np.argsort(keys, kind="stable")
            table = _table(keys, order, stop - start)
            masks = _masks(stop - start, sub)
            for variant, query in enumerate(queries):
                query_keys = keys if variant == 0 else _keys(np.unpackbits(query, axis=1)[:, start:stop])

                def probe(mask, query=query, query_keys=query_keys, table=table, upright=variant == 0):
                    return list(_probe(packed, query, query_keys ^ mask, table, radius, upright, summarise))

                for found in pool.map(probe, masks):
                    yield from found


def plan(nbits: int, radius: int, n: int) -> tuple[int, int]:
    """(blocks, flipped bits probed per block) with the least expected work for ``n`` rows:
    each probe is a pass over all rows, each candidate a gather and a popcount (about 1/12 of
    a row's share of a pass, measured), with block values taken as uniform."""
    best = None
    fewest = max(1, math.ceil(nbits / MAX_BLOCK_BITS))  # keys must fit in 64 bits
    for blocks in range(fewest, max(fewest, min(nbits, radius + 1)) + 1):
        sub = radius // blocks
        width = nbits // blocks
        probes = sum(math.comb(width, k) for k in range(sub + 1))
        cost = blocks * probes * (1 + CANDIDATE_COST * n / 2.0 ** width)
        if best is None or cost < best[0]:
            best = (cost, blocks, sub)
    return best[1], best[2]


def _keys(bits):
    keys = np.zeros(len(bits), dtype=np.uint64)
    for j in range(bits.shape[1]):
        keys |= bits[:, j].astype(np.uint64) << np.uint64(j)
    return keys


def _masks(width, sub):
    return [np.uint64(sum(1 << j for j in combo)) for k in range(sub + 1)
            for combo in itertools.combinations(range(width), k)]


def _pair_hamming(query, packed, left, right):
    """Hamming distance of query[left[k]] and packed[right[k]]; one 64-bit word when it fits."""
    if packed.shape[1] == 8 and query.flags.c_contiguous and packed.flags.c_contiguous:
        return np.bitwise_count(query.view(np.uint64)[left, 0] ^ packed.view(np.uint64)[right, 0]).astype(np.int64)
    return hamming(query[left], packed[right])


class _Table(NamedTuple):
    """One block's keys: distinct values, where each starts in ``order`` and how many there are;
    for narrow blocks also dense arrays indexed by the key itself (a gather beats a search)."""
    keys: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    order: np.ndarray
    dense_starts: np.ndarray | None
    dense_counts: np.ndarray | None


def _table(keys, order, width):
    distinct, starts, counts = np.unique(keys[order], return_index=True, return_counts=True)
    dense_starts = dense_counts = None
    if width <= DENSE_BITS:
        dense_starts = np.zeros(1 << width, dtype=np.int64)
        dense_counts = np.zeros(1 << width, dtype=np.int64)
        dense_starts[distinct.astype(np.int64)] = starts
        dense_counts[distinct.astype(np.int64)] = counts
    return _Table(distinct, starts, counts, order, dense_starts, dense_counts)


def _probe(packed, query, probe_keys, table, radius, upright, summarise):
    """Verified pairs (query row, table row) whose block keys match, in bounded chunks."""
    if table.dense_counts is not None:
        index = probe_keys.astype(np.int64)
        hit = np.flatnonzero(table.dense_counts[index])
        low, counts = table.dense_starts[index[hit]], table.dense_counts[index[hit]]
    else:
        at = np.minimum(np.searchsorted(table.keys, probe_keys), len(table.keys) - 1)
        hit = np.flatnonzero(table.keys[at] == probe_keys)
        low, counts = table.starts[at[hit]], table.counts[at[hit]]
    if not len(hit):
        return
    ends = np.cumsum(counts)
    chunk_starts = np.searchsorted(ends, np.arange(0, ends[-1], MAX_CANDIDATES), "right")
    for a, b in zip(chunk_starts, list(chunk_starts[1:]) + [len(hit)]):
        rows, c = hit[a:b], counts[a:b]
        left = np.repeat(rows, c)
        offsets = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
        right = table.order[np.repeat(low[a:b], c) + offsets]
        keep = left < right if upright else left != right
        left, right = left[keep], right[keep]
        if not len(left):
            continue
        dist = _pair_hamming(query, packed, left, right)
        close = dist <= radius
        if summarise and close.sum() > MAX_BLOCK_PAIRS:
            yield spanning_pairs(left[close], right[close])
        elif close.any():
            lo, hi = left[close], right[close]
            yield Pairs(np.minimum(lo, hi), np.maximum(lo, hi), dist[close].astype(np.float64))
