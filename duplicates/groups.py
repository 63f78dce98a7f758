"""Union-find over pairs of rows, and the keeper rule: the storage-agnostic half of grouping.

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


def split_by_keeper(rows: np.ndarray, linked: Callable[[np.ndarray], np.ndarray],
                    keeper_of: Callable[[np.ndarray], int], max_rows: int = 20_000) -> list[np.ndarray]:
    """Cut a connected group into groups whose every member is a copy of its own keeper.

    Why: joining pairs chains (A~B, B~C, C~D...), so a run of similar but different pictures
    (hand signs, coin faces, a texture's crops) can end up in one group far from its keeper.
    Real copies are edits of one picture, hence close to it. ``linked(rows)`` is the boolean
    matrix of the pair rule among ``rows``; ``keeper_of(rows)`` the keeper's index in ``rows``.
    Rows left over after the keeper's copies are taken out are grouped again the same way.
    Groups above ``max_rows`` are returned whole (the matrix would be too large).
    """
    if len(rows) > max_rows:
        return [rows]
    out, pending = [], [np.asarray(rows)]
    while pending:
        part = pending.pop()
        if len(part) < 2:
            continue
        matrix = linked(part)
        np.fill_diagonal(matrix, True)
        mine = matrix[keeper_of(part)]
        if mine.sum() >= 2:
            out.append(part[mine])
        rest = ~mine
        if rest.sum() >= 2:
            sub = UnionFind(int(rest.sum()))
            sub.union(*np.nonzero(np.triu(matrix[np.ix_(rest, rest)], 1)))
            pending.extend(part[rest][g] for g in sub.groups())
    return sorted(out, key=lambda g: g[0])


def keeper_key(width: int | None, height: int | None, size: int, mtime_ns: int, path: str) -> tuple:
    """Sort key of the documented keeper rule: the largest pixel count, then the largest file,
    then the oldest modification time, then the path (alphabetically first)."""
    return -((width or 0) * (height or 0)), -size, mtime_ns, path


def choose_keeper(candidates: Sequence[tuple]) -> int:
    """Index of the keeper among (width, height, size, mtime_ns, path) tuples."""
    return min(range(len(candidates)), key=lambda k: keeper_key(*candidates[k]))
