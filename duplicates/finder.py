"""Every group of near-duplicates in the collection, with a keeper each: nothing is deleted.

    from duplicates import find_duplicates
    report = find_duplicates(conn.cursor())            # embeddings, the measured default threshold
    for group in report.groups: print(group.kind, group.keep, group.paths)

A copy is the same picture after edits: a byte-identical file, or resized, re-compressed,
slightly cropped, brightened, slightly rotated, captioned (and, with ``any_orientation``,
mirrored or turned by 90 degrees). A different shot of the same scene is not a copy. Which
pairs are copies is duplicates.rule's: pairs within cosine ALIGN_REACH of each other, or
within 7 of 64 pHash bits while the embeddings stay within 0.5 (the pHash rule), are aligned
by their keypoints (duplicates.alignment: copy, apart, or too plain to tell, where the
threshold and the pHash rule decide); without alignment, the threshold and the pHash rule
alone; in a hash mode, the Hamming distance within the threshold.
Groups have no chains: every member is a copy of its group's keeper (``linkage="star"``, the
default), or of every other member (``"complete"``); ``"chain"`` keeps the connected sets of
pairs (union-find: A~B and B~C put A and C together, so look-alikes chain into one group).
Byte-identical files (the same stored content hash) always form a group, of kind "exact".

At scale: candidates come from cells of the embeddings (duplicates.candidates) and
from multi-index hashing of the pHashes (duplicates.hashes), never from all pairs;
memory is the memory-mapped matrices plus O(N) bookkeeping.

The keeper is the original, by the rule of duplicates.keeper (--prefer folders, pixels, date
taken, copy marks in the name, file size, path). Thresholds were chosen by
bench/quality_duplicates.py and bench/quality_kinds.py.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from itertools import combinations

import numpy as np

from config import InvalidInputError
from db.decisions import Decisions, load_decisions
from db.errors import NoFeaturesError
from db.lookup import StoredImage, exact_copy_sets, images_by_ids
from db.taken import stored_dates_taken
from duplicates.alignment import Aligner, KeypointStore
from duplicates.candidates import DEFAULT_PROBES, single_threaded_blas
from duplicates.groups import group_pairs
from duplicates.hashes import hamming, oriented_rows
from duplicates.keeper import KeeperFacts, keeper_order, keeper_reason
from duplicates.matrix_groups import copy_pairs, representatives, split_group
from duplicates.report import COPY, EXACT, SIMILAR, DuplicateGroup, DuplicateReport, Member
from duplicates.rows import RowReader
from duplicates.rule import (
    ALIGN_REACH,
    HASH_BITS,
    HASH_GUARD,
    SUPPORT_HASH,
    Rule,
    check_threshold,
    duplicate_metric,
)
from features.taken import date_taken_ns, parse_iso_date
from search import matrix_cache

log = logging.getLogger(__name__)

# --similar: a different shot of the same scene (burst frames, overlapping crops) lies beyond
# the copy threshold but within this cosine distance (bench/quality_kinds.py, docs/duplicates.md):
# at 0.30 the similar kind's pair precision is 0.41; 0.35 doubles the distinct look-alikes it
# joins (56 -> 112 pairs) and triples the pairs across scenes.
SIMILAR_THRESHOLD = 0.30
LINKAGES = ("star", "complete", "chain")  # the first is the default (measured: README)


def find_duplicates(cursor, mode: str = "embeddings", threshold: float | int | None = None, *,
                    any_orientation: bool = False, probes: int = DEFAULT_PROBES, use_hashes: bool = True,
                    linkage: str = LINKAGES[0], prefer=(), read_dates: bool = True,
                    similar: bool | float = False, align: bool = True) -> DuplicateReport:
    """Every group of copies in the DB (see the module docstring), largest groups first.

    ``use_hashes`` (embeddings mode): also join pairs by the pHash rule above. ``linkage``:
    "star" (the default: every member is a copy of its group's keeper), "complete" (every
    member a copy of every other) or "chain" (connected sets of pairs: A~B, B~C joins A and C).
    ``prefer``: folders whose files are keepers first (duplicates.keeper). ``read_dates``: read
    the EXIF date taken of the members of groups (headers only). ``similar`` (True, or a cosine
    distance; embeddings only): also groups of similar shots, of the copy groups' keepers and
    the images in no group, within SIMILAR_THRESHOLD (star groups, kind "similar"). ``align``
    (embeddings mode, star and complete linkage): pairs within ALIGN_REACH are confirmed by
    aligning the pictures' keypoints (duplicates.alignment: stored by main.py, or read from the
    files), so burst frames and a photo's quarters are not copies while turned and captioned
    copies are."""
    metric = duplicate_metric(mode)
    threshold = check_threshold(metric, threshold)
    if linkage not in LINKAGES:
        raise InvalidInputError(f"unknown linkage {linkage!r}; valid: {', '.join(LINKAGES)}")
    similar_threshold = _similar_threshold(similar, metric, threshold)
    conn = getattr(cursor, "connection", cursor)
    started = time.perf_counter()
    loaded = matrix_cache.load(conn, mode)
    if not loaded.stamp:
        raise NoFeaturesError(f"{loaded.db_file} has no extracted features yet: "
                              f"run `python main.py --db {loaded.db_file}` first")
    hashes = _aligned_hashes(conn, loaded) if metric == "cosine" and use_hashes and len(loaded.ids) else None
    bits = max(1, round(HASH_BITS * hashes.shape[1] * 8 / 64)) if hashes is not None else 0
    prefer = [os.path.abspath(folder) for folder in prefer]
    decisions = load_decisions(conn)
    # The stored embeddings' unit rows, not the centred search vectors (search.transform): a copy's
    # distance must not depend on the rest of the collection (in a DB of two copies, centring puts
    # them at distance 2).
    vectors = loaded.matrix if loaded.raw_matrix is None else loaded.raw_matrix
    exact = _exact_rows(conn, loaded.ids)
    searched = representatives(len(loaded.ids), exact)
    aligner = Aligner(loaded.absolute_path, any_orientation, stored=KeypointStore(conn, loaded.ids)) \
        if align and metric == "cosine" and linkage != "chain" else None
    with aligner or nullcontext():  # its thread pool ends with the copy groups
        rule = Rule(metric, threshold, mode if metric == "hamming" else None, any_orientation, bits,
                    ALIGN_REACH if aligner else 0.0, aligner)
        rows = group_pairs(len(loaded.ids), copy_pairs(vectors, rule, hashes, probes=probes, subset=searched), exact)
        groups = _groups(conn, loaded, vectors, rows, rule, hashes, linkage, prefer, read_dates, COPY, decisions)
    if similar_threshold is not None:
        shots = Rule("cosine", similar_threshold)
        copies = np.searchsorted(loaded.ids, [m.id for g in groups for m in g.members[1:]])
        left = np.setdiff1d(np.arange(len(loaded.ids)) if searched is None else searched, copies)
        rows = group_pairs(len(loaded.ids), copy_pairs(vectors, shots, probes=probes, subset=left))
        groups += _groups(conn, loaded, vectors, rows, shots, None, "star", prefer, read_dates, SIMILAR, decisions)
    groups.sort(key=lambda g: (-len(g.members), g.keep))
    settings = {"mode": mode, "metric": metric, "threshold": threshold, "any_orientation": any_orientation,
                "linkage": linkage, "probes": probes, "prefer": prefer, "similar_threshold": similar_threshold,
                "hash_rule": f"{SUPPORT_HASH} <= {bits} bits and cosine <= {HASH_GUARD}" if bits else None,
                "alignment": {"reach": ALIGN_REACH, **aligner.stats} if aligner else None,
                "images": len(loaded.ids), "root": loaded.root, "seconds": round(time.perf_counter() - started, 3)}
    log.info("%d groups of copies among %d images (%s <= %s)", len(groups), len(loaded.ids), metric, threshold)
    return DuplicateReport(groups, settings)


def _similar_threshold(similar, metric, threshold):
    """None (no similar shots), or the cosine distance of the similar band's far end."""
    if similar is False or similar is None:
        return None
    if metric != "cosine":
        raise InvalidInputError("similar shots need the embeddings: valid modes for --similar: embeddings")
    value = SIMILAR_THRESHOLD if similar is True else check_threshold("cosine", similar)
    if value <= threshold:
        raise InvalidInputError(f"the similar band ({value}) must reach beyond the copy threshold ({threshold})")
    return value


def _groups(conn, loaded, vectors, rows, rule, hashes, linkage, prefer, read_dates, kind, decisions: Decisions):
    """DuplicateGroups of the connected sets ``rows``, cut by ``linkage`` around their keepers;
    a reviewer's decisions (db.decisions) choose keepers and keep "not duplicates" apart."""
    details = images_by_ids(conn, [int(loaded.ids[r]) for g in rows for r in g])
    # A row deleted by a rescan since the matrix was loaded has no details: leave it out.
    rows = [kept for g in rows for kept in [g[[int(loaded.ids[r]) in details for r in g]]] if len(kept) >= 2]
    by_row = {int(r): details[int(loaded.ids[r])] for g in rows for r in g}
    stored = stored_dates_taken(conn, [d.id for d in by_row.values()]) if read_dates else {}
    facts = {r: _keeper_facts(d, loaded.root, read_dates, decisions, stored) for r, d in by_row.items()}
    ordered = [g[keeper_order([facts[int(r)] for r in g], prefer)] for g in rows]
    with single_threaded_blas():  # many small products: see split_group
        rows = [piece for g in ordered
                for piece in split_group(g, rule, vectors, hashes, linkage,
                                         _apart([by_row[int(r)].content_hash for r in g], decisions))]
    with RowReader(vectors) as reader:  # pread, not the map: see duplicates.rows
        return [_group(reader.take(g), [by_row[int(r)] for r in g], [facts[int(r)] for r in g], rule, prefer, kind)
                for g in rows]


def _keeper_facts(d: StoredImage, root: str, read_dates: bool, decisions: Decisions,
                  stored: dict[int, str | None]) -> KeeperFacts:
    """The rule's facts of one row; the date taken from the DB when main.py has read the header
    (db.taken), else from the file's header."""
    path = os.path.join(root, d.path)
    if not read_dates:
        taken = None
    elif d.id in stored:
        taken = parse_iso_date(stored[d.id])
    else:
        taken = date_taken_ns(path)
    return KeeperFacts(path, d.width, d.height, d.size, d.mtime_ns, taken,
                       d.content_hash is not None and bytes(d.content_hash) in decisions.keep)


def _apart(content_hashes, decisions: Decisions) -> np.ndarray | None:
    """The boolean matrix of "not duplicates" decisions among rows of these content hashes, or
    None when none applies."""
    if not decisions.apart:
        return None
    keys = [None if h is None else bytes(h) for h in content_hashes]
    out = None
    decided = [i for i, key in enumerate(keys) if key in decisions.apart_hashes]
    for i, j in combinations(decided, 2):
        a, b = keys[i], keys[j]
        if a is not None and b is not None and a != b and (min(a, b), max(a, b)) in decisions.apart:
            if out is None:
                out = np.zeros((len(keys), len(keys)), dtype=bool)
            out[i, j] = out[j, i] = True
    return out


def _aligned_hashes(conn, loaded):
    """The support hashes row for row with ``loaded`` (ids are sorted in both)."""
    hashes = matrix_cache.load(conn, SUPPORT_HASH)
    if np.array_equal(hashes.ids, loaded.ids):
        return hashes.matrix
    rows = np.minimum(np.searchsorted(hashes.ids, loaded.ids), len(hashes.ids) - 1)
    if not np.array_equal(hashes.ids[rows], loaded.ids):
        log.warning("the DB changed while loading; the pHash rule is left out of this run")
        return None
    return hashes.matrix[rows]


def _exact_rows(conn, ids):
    """Byte-identical files as sets of matrix rows (only rows the matrix has)."""
    sets = []
    for id_set in exact_copy_sets(conn):
        rows = np.searchsorted(ids, id_set)
        rows = rows[(rows < len(ids)) & (ids[np.minimum(rows, len(ids) - 1)] == id_set)]
        if len(rows) > 1:
            sets.append(rows)
    return sets


def _group(block, details, facts, rule, prefer, kind):
    """A DuplicateGroup from the matrix rows ``block``, their DB rows ``details`` and keeper
    facts ``facts`` (in keeper order): keeper first, then the others by distance to it."""
    keeper = 0
    if rule.metric == "hamming":
        variants = oriented_rows(block, rule.kind) if rule.any_orientation else [block]
        distances = np.min([hamming(v, block[keeper]) for v in variants], axis=0).astype(float)
    else:
        block = block.astype(np.float32, copy=False)
        distances = np.maximum(1.0 - block @ block[keeper], 0.0).astype(float)
    distances[keeper] = 0.0
    own = details[keeper].content_hash
    members = [Member(d, f.path, round(float(dist), 6), f, rank,
                      "keeper" if rank == keeper else keeper_reason(facts[keeper], f, prefer),
                      EXACT if own is not None and d.content_hash == own else kind)
               for rank, (d, f, dist) in enumerate(zip(details, facts, distances))]
    order = sorted(range(len(members)), key=lambda k: (k != keeper, members[k].distance, members[k].path))
    exact = all(m.kind == EXACT for m in members)
    group = DuplicateGroup(EXACT if exact and kind == COPY else kind, [members[k] for k in order])
    group.members[0].kind = group.kind  # the keeper's own kind: its group's
    return group
