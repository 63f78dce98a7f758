"""Rows of a matrix -> pairs within a Rule's radius -> groups without chains: the grouping itself,
on plain arrays (the finder hands it the loaded matrices; the benchmarks, synthetic rows).

    groups = group_rows(unit, Rule("cosine", 0.18), linkage="star")   # keeper first in each
"""
from __future__ import annotations

import numpy as np

from duplicates.candidates import DEFAULT_PROBES, Pairs, close_pairs, single_threaded_blas
from duplicates.groups import UnionFind, group_pairs, keeper_groups
from duplicates.hashes import hash_pairs
from duplicates.rule import HASH_GUARD, SUPPORT_HASH, Rule, guarded

DENSE_ROWS = 3000  # connected sets up to this size compare all their pairs at once (a 3000 x 3000 matrix: 36 MB)


def group_rows(matrix: np.ndarray, rule: Rule, hashes: np.ndarray | None = None, *, probes: int = DEFAULT_PROBES,
               exact_sets=(), seed: int = 0, linkage: str = "chain") -> list[np.ndarray]:
    """Groups of row indices on plain arrays: unit rows (cosine) or packed hashes (hamming);
    ``hashes`` (packed pHashes, row for row) add the pHash rule. Without DB rows to rank, the
    keeper of a connected set is its first row (star and complete linkage)."""
    groups = group_pairs(len(matrix), copy_pairs(matrix, rule, hashes, probes=probes, seed=seed), exact_sets)
    with single_threaded_blas():  # many small products: see split_group
        return [piece for g in groups for piece in split_group(g, rule, matrix, hashes, linkage)]


def split_group(rows: np.ndarray, rule: Rule, matrix: np.ndarray, hashes: np.ndarray | None,
                linkage: str, apart: np.ndarray | None = None) -> list[np.ndarray]:
    """One connected set of rows, given best keeper first, as groups of ``linkage`` (each
    keeper first): itself for "chain"; duplicates.groups.keeper_groups for "star"/"complete".
    Sets up to DENSE_ROWS compare all their pairs at once, larger ones one keeper at a time.
    Call it under candidates.single_threaded_blas: OpenBLAS's threads make these small
    products 3-4x slower on busy cores (the 500k synthetic set's cut: 74 s, one thread: 21 s).
    ``apart``: a boolean matrix of pairs a reviewer said are not duplicates (never linked;
    chain linkage honours it in sets up to DENSE_ROWS)."""
    if linkage == "chain":
        if apart is None or len(rows) > DENSE_ROWS:
            return [rows]
        linked = rule.linked(matrix, hashes, rows) & ~apart
        sets = UnionFind(len(rows))
        sets.union(*np.nonzero(np.triu(linked, 1)))
        return [rows[g] for g in sets.groups()]
    if len(rows) <= DENSE_ROWS:
        linked, within, dist = rule.measure(matrix, hashes, rows, rows)

        def compare(i, js):
            found = rule.confirm(rows[i], rows[js], linked[i, js], within[i, js])
            return (found if apart is None else found & ~apart[i, js]), dist[i, js]
    else:  # the set's rows read once, then one keeper against the rest at a time
        block = np.asarray(matrix[rows])
        block_hashes = None if hashes is None else np.asarray(hashes[rows])

        def compare(i, js):
            # Against the whole block (a view, no copy), then the rows asked for: gathering
            # js's rows for every keeper copied the block once per keeper (500k: minutes).
            found, within, far = rule.measure(block, block_hashes, np.array([i]), slice(None))
            found = rule.confirm(rows[i], rows[js], found[0][js], within[0][js])
            return (found if apart is None else found & ~apart[i, js]), far[0][js]
    return [rows[part] for part in keeper_groups(len(rows), compare, complete=linkage == "complete")]


def copy_pairs(matrix: np.ndarray, rule: Rule, hashes: np.ndarray | None = None, *, probes: int = DEFAULT_PROBES,
               seed: int = 0, subset: np.ndarray | None = None):
    """Every pair of rows that may count as a copy (within the rule's radius), block by block
    (pairs may repeat, and a flood of pairs among identical rows may come as a spanning forest).
    ``subset``: search only these rows (sorted), e.g. one per set of byte-identical files."""
    if rule.metric == "hamming":
        for block in hash_pairs(matrix if subset is None else np.asarray(matrix)[subset], rule.threshold,
                                kind=rule.kind, any_orientation=rule.any_orientation):
            yield _renumbered(block, subset)
        return
    yield from close_pairs(matrix, rule.radius, probes=probes, seed=seed, subset=subset)
    if hashes is not None and rule.hash_bits:
        for block in hash_pairs(hashes if subset is None else np.asarray(hashes)[subset], rule.hash_bits,
                                kind=SUPPORT_HASH, any_orientation=rule.any_orientation, summarise=False):
            yield guarded(matrix, _renumbered(block, subset), HASH_GUARD)


def _renumbered(block: Pairs, subset: np.ndarray | None) -> Pairs:
    return block if subset is None else Pairs(subset[block.left], subset[block.right], block.distance)


def representatives(n: int, exact_sets) -> np.ndarray | None:
    """Sorted rows with one row per set of byte-identical files (they share one feature row, so
    searching the others would only repeat its pairs); None when there are no such sets."""
    drop = [rows[1:] for rows in exact_sets if len(rows) > 1]
    if not drop:
        return None
    keep = np.ones(n, dtype=bool)
    keep[np.concatenate(drop)] = False
    return np.flatnonzero(keep)
