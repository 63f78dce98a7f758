"""Union-find over pairs of rows, and groups without chains: the storage-agnostic half of grouping.

Why vectorised: a folder of 10,000 identical pictures gives 50 million pairs; a Python loop
per pair would take minutes, while merging whole blocks of pairs with NumPy takes seconds.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np


class UnionFind:
    """Disjoint sets over rows 0..n-1; every root is the smallest row of its set."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, rows: np.ndarray) -> np.ndarray:
        """The root of each row (path compression on the rows asked for)."""
        rows = np.asarray(rows, dtype=np.int64)
        roots = self.parent[rows]
        while True:
            up = self.parent[roots]
            if np.array_equal(up, roots):
                break
            roots = up
        self.parent[rows] = roots
        return roots

    def union(self, left: np.ndarray, right: np.ndarray) -> None:
        """Merge the sets of left[k] and right[k] for every k."""
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        while len(left):
            a, b = self.find(left), self.find(right)
            differ = a != b
            if not differ.any():
                return
            a, b, left, right = a[differ], b[differ], left[differ], right[differ]
            # Hook every larger root under the smallest root it is paired with, all at once
            # (roots only ever point to smaller rows, so no cycle can form); then repeat.
            np.minimum.at(self.parent, np.maximum(a, b), np.minimum(a, b))

    def groups(self, min_size: int = 2) -> list[np.ndarray]:
        """Sets of at least ``min_size`` rows, each sorted, ordered by their smallest row."""
        roots = self.find(np.arange(len(self.parent)))
        order = np.argsort(roots, kind="stable")
        bounds = np.flatnonzero(np.diff(roots[order])) + 1
        return [g for g in np.split(order, bounds) if len(g) >= min_size]


def group_pairs(n: int, pair_blocks: Iterable, extra_sets: Iterable[Sequence[int]] = ()) -> list[np.ndarray]:
    """Groups (sorted row arrays, >= 2 rows) joined by every pair of every block; ``extra_sets``
    are rows known to belong together (e.g. byte-identical files)."""
    sets = UnionFind(n)
    for block in pair_blocks:
        sets.union(block.left, block.right)
    for rows in extra_sets:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > 1:
            sets.union(np.full(len(rows) - 1, rows[0]), rows[1:])
    return sets.groups()


def keeper_groups(count: int, compare: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]], *,
                  complete: bool = False) -> list[np.ndarray]:
    """Cut one connected set of ``count`` rows, given best keeper first, into groups without chains.

    Why: joining pairs chains (A~B, B~C, C~D...), so a run of similar but different pictures
    (bursts, coin faces, a texture's crops) ends up in one group far from its keeper. Real
    copies are edits of one picture, hence close to the original itself.

    Greedy, in keeper order: the best row not yet taken is a keeper, and takes every untaken
    row linked to it ("star": every member is a copy of its keeper, as czkawka's parents);
    with ``complete``, a row joins only if it is linked to every member taken so far, nearest
    to the keeper first (dupeGuru's rule). ``compare(i, js)`` gives (linked, distance) of
    position i against positions js. Returns position arrays (keeper first) of >= 2 rows.
    """
    if count == 2:
        return [np.arange(2)] if compare(0, np.array([1]))[0][0] else []
    free = np.ones(count, dtype=bool)
    out = []
    for k in range(count):
        if not free[k]:
            continue
        free[k] = False
        rest = np.flatnonzero(free)
        if not len(rest):
            break
        linked, distance = compare(k, rest)
        taken = rest[linked]
        if complete and len(taken) > 1:
            accepted: list[int] = []
            for j in taken[np.argsort(distance[linked], kind="stable")].tolist():
                if not accepted or compare(j, np.array(accepted))[0].all():
                    accepted.append(j)
            taken = np.array(accepted, dtype=np.int64)
        if len(taken):
            free[taken] = False
            out.append(np.concatenate([[k], np.sort(taken)]))
    return out
