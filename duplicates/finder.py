"""Every group of near-duplicates in the collection, with a keeper each: nothing is deleted.

    from duplicates import find_duplicates
    report = find_duplicates(conn.cursor())            # embeddings, the measured default threshold
    for group in report.groups: print(group.kind, group.keep, group.paths)

A copy is the same picture after edits: a byte-identical file, or resized, re-compressed,
slightly cropped, brightened, slightly rotated, captioned (and, with ``any_orientation``,
mirrored or turned by 90 degrees). A different shot of the same scene is not a copy. Two
images are joined when the cosine distance of their embeddings is within the threshold, or
when their pHashes differ in at most 7 of 64 bits (HASH_BITS, scaled to the hash size) while
the embeddings stay within 0.5 (HASH_GUARD: the pHash rule below); in a hash mode, when their
Hamming distance is within the threshold.
Groups have no chains: every member is a copy of its group's keeper (``linkage="star"``, the
default), or of every other member (``"complete"``); ``"chain"`` keeps the connected sets of
pairs (union-find: A~B and B~C put A and C together, so look-alikes chain into one group).
Byte-identical files (the same stored content hash) always form a group, of kind "exact".

At scale: candidates come from cells of the embeddings (duplicates.candidates) and
from multi-index hashing of the pHashes (duplicates.hashes), never from all pairs;
memory is the memory-mapped matrices plus O(N) bookkeeping.

The keeper is the original, by the rule of duplicates.keeper (--prefer folders, pixels, date
taken, copy marks in the name, file size, path). Thresholds were chosen by
bench/quality_duplicates.py.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from config import InvalidInputError
from db.decisions import Decisions, load_decisions
from db.errors import NoFeaturesError
from db.lookup import StoredImage, exact_copy_sets, images_by_ids
from db.taken import stored_dates_taken
from duplicates.candidates import DEFAULT_PROBES, Pairs, close_pairs, single_threaded_blas
from duplicates.groups import UnionFind, group_pairs, keeper_groups
from duplicates.hashes import hamming, hash_pairs, oriented_rows
from duplicates.keeper import KeeperFacts, keeper_order, keeper_reason
from duplicates.rows import RowReader
from features.taken import date_taken_ns, parse_iso_date
from search import matrix_cache
from search.modes import MODES, get_mode

log = logging.getLogger(__name__)

# Measured on the near-duplicate and look-alike sets (bench/quality_duplicates.py, docs/duplicates.md)
# with star groups, on the unit rows of the stored embeddings (whole-picture framing; not the
# centred search vectors, see find_duplicates): 0.18 is the largest threshold whose pair
# precision stays >= 0.98 (0.981; recall 0.849).
DEFAULT_THRESHOLDS = {"cosine": 0.18, "hamming": 4}
THRESHOLD_RANGES = {"cosine": (0.0, 1.0), "hamming": (0, 16)}
# Embeddings mode also joins two images whose pHashes are within HASH_BITS of 64 bits while
# their embeddings stay within HASH_GUARD: heavy resizing, JPEG at quality 20 and greyscale
# move an embedding by up to 0.3-0.5, but leave the pHash (computed on grey pixels) nearly
# unchanged; the guard keeps flat, blank pictures with equal hashes apart. 7 bits rather
# than 8: the same recall here (duplicates.hashes.plan then probes 68 keys per row at 500k rows).
SUPPORT_HASH = "phash"
HASH_BITS = 7
HASH_GUARD = 0.5
EXACT, COPY, SIMILAR = "exact", "copy", "similar"
KINDS = (EXACT, COPY, SIMILAR)
# --similar: a different shot of the same scene (burst frames, overlapping crops) lies beyond
# the copy threshold but within this cosine distance (bench/quality_kinds.py, docs/duplicates.md):
# at 0.30 the similar kind's pair precision is 0.41; 0.35 doubles the distinct look-alikes it
# joins (56 -> 112 pairs) and triples the pairs across scenes.
SIMILAR_THRESHOLD = 0.30
LINKAGES = ("star", "complete", "chain")  # the first is the default (measured: README)
GUARD_CHUNK = 1 << 16  # pairs checked at once
DENSE_ROWS = 3000  # connected sets up to this size compare all their pairs at once (a 3000 x 3000 matrix: 36 MB)


@dataclass
class Member:
    """One image of a group: its DB row (what the keeper rule and a reviewer look at), its
    absolute path and its distance to the keeper (0 for the keeper)."""
    image: StoredImage
    path: str  # absolute
    distance: float
    facts: KeeperFacts | None = None  # what the keeper rule looked at (path absolute)
    rank: int = 0  # place in the group's keeper order (0: the keeper)
    reason: str = "keeper"  # why it is the keeper, or why the keeper is kept rather than it
    kind: str = COPY  # to the keeper: "exact" (same bytes), "copy" or "similar"

    @property
    def id(self) -> int:
        return self.image.id

    @property
    def width(self) -> int | None:
        return self.image.width

    @property
    def height(self) -> int | None:
        return self.image.height

    @property
    def size(self) -> int:
        return self.image.size

    @property
    def mtime_ns(self) -> int:
        return self.image.mtime_ns

    @property
    def taken_ns(self) -> int | None:
        return self.facts.taken_ns if self.facts else None


@dataclass
class DuplicateGroup:
    """Copies of one picture; ``members[0]`` is the keeper, the others by distance to it."""
    kind: str  # "exact" (all byte-identical), "copy" (edits of one picture) or "similar" (other shots)
    members: list[Member]

    @property
    def keep(self) -> str:
        return self.members[0].path

    @property
    def paths(self) -> list[str]:
        return [m.path for m in self.members]

    @property
    def distances(self) -> list[float]:
        return [m.distance for m in self.members]

    @property
    def bytes_freed(self) -> int:
        """What removing every copy but the keeper would free (0 for similar shots: they are
        different pictures)."""
        return 0 if self.kind == SIMILAR else sum(m.size for m in self.members[1:])


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    settings: dict = field(default_factory=dict)

    @property
    def images_in_groups(self) -> int:
        return sum(len(g.members) for g in self.groups)

    @property
    def bytes_freed(self) -> int:
        return sum(g.bytes_freed for g in self.groups)


def duplicate_metric(mode: str) -> str:
    """'cosine' for unit-vector modes, 'hamming' for hashes; a ValueError listing the valid
    modes for anything else (a colour histogram ignores layout: it cannot tell a copy)."""
    usable = [name for name, m in MODES.items() if m.is_hash or m.unit_rows]
    if mode not in usable:
        why = "it ignores layout, so it cannot tell copies from look-alikes" if mode in MODES else "unknown mode"
        raise InvalidInputError(f"mode {mode!r}: {why}; valid modes for duplicates: {', '.join(usable)}")
    return "hamming" if get_mode(mode).is_hash else "cosine"


def check_threshold(metric: str, threshold) -> float | int:
    """The metric's default for None; else the value, if it lies in the metric's range."""
    if threshold is None:
        return DEFAULT_THRESHOLDS[metric]
    low, high = THRESHOLD_RANGES[metric]
    integral = metric == "hamming"
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or \
            not (low <= threshold <= high) or (integral and float(threshold) != int(threshold)):
        kind = "a whole number of bits" if integral else "a cosine distance"
        raise InvalidInputError(f"threshold for {metric} must be {kind} from {low} to {high}, got {threshold!r}")
    return int(threshold) if integral else float(threshold)


@dataclass(frozen=True)
class Rule:
    """What counts as a copy: the distance cut, and in embeddings mode the pHash rule."""
    metric: str  # "cosine" (unit rows) or "hamming" (packed hashes)
    threshold: float | int
    kind: str | None = None  # the hash mode, for "hamming"
    any_orientation: bool = False
    hash_bits: int = 0  # pHash bits for the pHash rule (0: off)

    def compare(self, matrix: np.ndarray, hashes: np.ndarray | None, left: np.ndarray,
                right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(linked, distance) matrices of the rule between rows ``left`` and rows ``right``
        (a group's rows: small; or one row against many)."""
        if self.metric == "hamming":
            dist = _hamming_matrix(np.asarray(matrix[left]), np.asarray(matrix[right]), self.kind,
                                   self.any_orientation)
            return dist <= self.threshold, dist.astype(float)
        a = np.asarray(matrix[left], dtype=np.float32)
        b = a if left is right else np.asarray(matrix[right], dtype=np.float32)
        dist = np.maximum(1.0 - a @ b.T, 0.0)
        out = dist <= self.threshold
        if hashes is not None and self.hash_bits:
            near = _hamming_matrix(np.asarray(hashes[left]), np.asarray(hashes[right]), SUPPORT_HASH,
                                   self.any_orientation) <= self.hash_bits
            out |= near & (dist <= HASH_GUARD)
        return out, dist

    def linked(self, matrix: np.ndarray, hashes: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
        """The boolean matrix of the rule among ``rows``."""
        return self.compare(matrix, hashes, rows, rows)[0]


def find_duplicates(cursor, mode: str = "embeddings", threshold: float | int | None = None, *,
                    any_orientation: bool = False, probes: int = DEFAULT_PROBES, use_hashes: bool = True,
                    linkage: str = LINKAGES[0], prefer=(), read_dates: bool = True,
                    similar: bool | float = False) -> DuplicateReport:
    """Every group of copies in the DB (see the module docstring), largest groups first.

    ``use_hashes`` (embeddings mode): also join pairs by the pHash rule above. ``linkage``:
    "star" (the default: every member is a copy of its group's keeper), "complete" (every
    member a copy of every other) or "chain" (connected sets of pairs: A~B, B~C joins A and C).
    ``prefer``: folders whose files are keepers first (duplicates.keeper). ``read_dates``: read
    the EXIF date taken of the members of groups (headers only). ``similar`` (True, or a cosine
    distance; embeddings only): also groups of similar shots, of the copy groups' keepers and
    the images in no group, within SIMILAR_THRESHOLD (star groups, kind "similar")."""
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
    rule = Rule(metric, threshold, mode if metric == "hamming" else None, any_orientation, bits)
    exact = _exact_rows(conn, loaded.ids)
    # The stored embeddings' unit rows, not the centred search vectors (search.transform): a copy's
    # distance must not depend on the rest of the collection (in a DB of two copies, centring puts
    # them at distance 2).
    vectors = loaded.matrix if loaded.raw_matrix is None else loaded.raw_matrix
    searched = representatives(len(loaded.ids), exact)
    rows = group_pairs(len(loaded.ids), copy_pairs(vectors, rule, hashes, probes=probes, subset=searched), exact)
    prefer = [os.path.abspath(folder) for folder in prefer]
    decisions = load_decisions(conn)
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
        linked, dist = rule.compare(matrix, hashes, rows, rows)
        if apart is not None:
            linked &= ~apart

        def compare(i, js):
            return linked[i, js], dist[i, js]
    else:  # the set's rows read once, then one keeper against the rest at a time
        block = np.asarray(matrix[rows])
        block_hashes = None if hashes is None else np.asarray(hashes[rows])

        def compare(i, js):
            # Against the whole block (a view, no copy), then the rows asked for: gathering
            # js's rows for every keeper copied the block once per keeper (500k: minutes).
            found, far = rule.compare(block, block_hashes, np.array([i]), slice(None))
            found, far = found[0][js], far[0][js]
            return (found if apart is None else found & ~apart[i, js]), far
    return [rows[part] for part in keeper_groups(len(rows), compare, complete=linkage == "complete")]


def copy_pairs(matrix: np.ndarray, rule: Rule, hashes: np.ndarray | None = None, *, probes: int = DEFAULT_PROBES,
               seed: int = 0, subset: np.ndarray | None = None):
    """Every pair of rows that counts as a copy, block by block (pairs may repeat, and a flood
    of pairs among identical rows may come as a spanning forest). ``subset``: search only these
    rows (sorted), e.g. one per set of byte-identical files."""
    if rule.metric == "hamming":
        for block in hash_pairs(matrix if subset is None else np.asarray(matrix)[subset], rule.threshold,
                                kind=rule.kind, any_orientation=rule.any_orientation):
            yield _renumbered(block, subset)
        return
    yield from close_pairs(matrix, rule.threshold, probes=probes, seed=seed, subset=subset)
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


def guarded(unit: np.ndarray, block: Pairs, guard: float) -> Pairs:
    """The pairs of ``block`` whose cosine distance is within ``guard``, with that distance."""
    dist = np.empty(len(block.left))
    with RowReader(unit) as reader:
        for start in range(0, len(dist), GUARD_CHUNK):
            a, b = block.left[start:start + GUARD_CHUNK], block.right[start:start + GUARD_CHUNK]
            sims = np.einsum("ij,ij->i", reader.take(a).astype(np.float32), reader.take(b).astype(np.float32))
            dist[start:start + len(a)] = 1.0 - sims
    keep = dist <= guard
    return Pairs(block.left[keep], block.right[keep], np.maximum(dist[keep], 0.0))


def _hamming_matrix(left, right, kind, any_orientation):
    variants = oriented_rows(left, kind) if any_orientation else [left]
    return np.min([hamming(v[:, None, :], right[None, :, :]) for v in variants], axis=0)


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
