"""Feature rows: written per batch by extraction, read as whole columns by the search.

Features are keyed by the file's content hash, so identical files share one row and a
moved file keeps its features. Features no image points at any more (a file deleted,
edited or moved out of the collection) are kept, so that a file that comes back costs no
extraction, until ``main.py --prune`` or the bound of config.MAX_UNUSED_FEATURES.
"""
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from db.codec import bit_rows_to_blobs, matrix_to_blobs
from db.images import ERROR, OK, PENDING
from db.meta import bump_generation, clear_stamp
from db.moved_out import KEEP_FOR_MOVED_OUT
from db.versions import FEATURES, bump

# The blob column of each feature: a fixed whitelist, never user text in SQL.
VECTOR_COLUMNS = ("embedding", "rgb")  # little-endian float32
BIT_COLUMNS = ("ahash", "dhash", "phash")  # packed bits
FEATURE_COLUMNS = VECTOR_COLUMNS + BIT_COLUMNS


class ExtractedRow(NamedTuple):
    """An image whose features are stored under ``content_hash`` (in this batch or before)."""

    id: int
    size: int
    mtime_ns: int
    content_hash: bytes


class FailedRow(NamedTuple):
    """An image that cannot be used, and the one-line reason."""

    id: int
    size: int
    mtime_ns: int
    reason: str


def encode_features(hashes: Sequence[bytes], features: Mapping[str, np.ndarray]) -> list[tuple]:
    """(content_hash, embedding, rgb, ahash, dhash, phash) rows from (n, d) arrays whose row i
    belongs to ``hashes[i]``."""
    missing = [c for c in FEATURE_COLUMNS if c not in features]
    if missing:
        raise ValueError(f"features lack {', '.join(missing)}; expected: {', '.join(FEATURE_COLUMNS)}")
    if any(len(features[c]) != len(hashes) for c in FEATURE_COLUMNS):
        raise ValueError(f"{len(hashes)} content hashes but feature arrays of "
                         f"{', '.join(f'{c} {len(features[c])}' for c in FEATURE_COLUMNS)} rows")
    columns = [matrix_to_blobs(features[c]) for c in VECTOR_COLUMNS]
    columns += [bit_rows_to_blobs(features[c]) for c in BIT_COLUMNS]
    return list(zip(hashes, *columns))


def write_batch(conn: sqlite3.Connection, extracted: Sequence[ExtractedRow], failed: Sequence[FailedRow],
                hashes: Sequence[bytes] = (), features: Mapping[str, np.ndarray] | None = None) -> None:
    """Store one batch in one transaction.

    ``features[column]`` is an (n, d) array whose row i holds the features of ``hashes[i]``
    (float32 vectors, packed uint8 hashes). An extracted image is marked ok only if its
    content hash has features (stored now or before). A row whose file changed since the
    scan (size or mtime differ) is left pending for the next rescan.
    """
    rows = encode_features(hashes, features) if len(hashes) else []
    with conn:
        conn.executemany(
            f"INSERT OR IGNORE INTO features(content_hash, {', '.join(FEATURE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        marked_ok = conn.executemany(
            "UPDATE images SET status = ?, reason = NULL, content_hash = ?"
            " WHERE id = ? AND size = ? AND mtime_ns = ? AND status = ?"
            " AND EXISTS (SELECT 1 FROM features WHERE content_hash = ?)",
            [(OK, r.content_hash, r.id, r.size, r.mtime_ns, PENDING, r.content_hash) for r in extracted],
        ).rowcount
        conn.executemany(
            "UPDATE images SET status = ?, reason = ?, content_hash = NULL"
            " WHERE id = ? AND size = ? AND mtime_ns = ? AND status = ?",
            [(ERROR, r.reason, r.id, r.size, r.mtime_ns, PENDING) for r in failed],
        )
        bump_generation(conn)
        if marked_ok:  # only then does the search see something new (db.versions)
            bump(conn, FEATURES)


def open_reader(db_path: str) -> sqlite3.Connection:
    """A read-only connection for processes that only look features up (decode workers):
    WAL lets it read beside the writer, and it can never write."""
    return sqlite3.connect(Path(db_path).resolve().as_uri() + "?mode=ro", uri=True, timeout=30)


def has_features(conn: sqlite3.Connection, content_hash: bytes) -> bool:
    """True when the DB holds features for these file contents (seen before, maybe unused now)."""
    return conn.execute("SELECT 1 FROM features WHERE content_hash = ?", (content_hash,)).fetchone() is not None


_UNUSED = "NOT EXISTS (SELECT 1 FROM images AS i WHERE i.content_hash = f.content_hash)"


def count_unused(conn: sqlite3.Connection) -> int:
    """Feature rows no image points at (kept for files that may come back)."""
    return conn.execute(f"SELECT COUNT(*) FROM features AS f WHERE {_UNUSED}").fetchone()[0]


def unused_hashes(conn: sqlite3.Connection) -> list[bytes]:
    """Content hashes of the unused feature rows (at most config.MAX_UNUSED_FEATURES after a
    run): what a file that comes back may match."""
    return [h for (h,) in conn.execute(f"SELECT f.content_hash FROM features AS f WHERE {_UNUSED}")]


def prune_unused(conn: sqlite3.Connection, keep: int = 0) -> int:
    """Delete unused feature rows but the ``keep`` most recently stored; returns the count.
    The features of files find_duplicates.py moved out stay (their --undo needs them)."""
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, got {keep}")
    with conn:
        cur = conn.execute(
            f"DELETE FROM features WHERE rowid IN (SELECT f.rowid FROM features AS f WHERE {_UNUSED}"
            f" AND {KEEP_FOR_MOVED_OUT}"
            " ORDER BY f.rowid DESC LIMIT -1 OFFSET ?)",
            (keep,),
        )
        if cur.rowcount:
            # The keypoints of content with no features left go with them (db.keypoints).
            conn.execute("DELETE FROM keypoints WHERE content_hash NOT IN (SELECT content_hash FROM features)")
            bump_generation(conn)
    return cur.rowcount


def reset_features(conn: sqlite3.Connection) -> None:
    """Forget every feature and the stamp, in one transaction: all images go back to pending
    (``main.py --reset-features``)."""
    with conn:
        clear_stamp(conn)
        conn.execute("DELETE FROM features")
        conn.execute("UPDATE images SET status = ?, reason = NULL, content_hash = NULL", (PENDING,))
        bump_generation(conn)
        bump(conn, FEATURES)


def load_column(conn: sqlite3.Connection, column: str) -> tuple[list[int], list[str], list[bytes]]:
    """(ids, paths, blobs) of every usable image for one feature column, ordered by id."""
    rows = [row for chunk in column_chunks(conn, column) for row in chunk]
    if not rows:
        return [], [], []
    ids, paths, blobs = zip(*rows)
    return list(ids), list(paths), list(blobs)


def column_chunks(conn: sqlite3.Connection, column: str, size: int = 16384) -> Iterator[list[tuple[int, str, bytes]]]:
    """Like load_column, streamed: lists of (id, path, blob) of at most ``size`` rows.

    One statement, so one consistent snapshot, with memory bounded by ``size`` rows.
    """
    if column not in FEATURE_COLUMNS:
        raise ValueError(f"unknown feature column {column!r}; valid: {', '.join(FEATURE_COLUMNS)}")
    cursor = conn.execute(
        f"SELECT i.id, i.path, f.{column} FROM images AS i JOIN features AS f"
        " ON f.content_hash = i.content_hash WHERE i.status = ? ORDER BY i.id",
        (OK,),
    )
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows
