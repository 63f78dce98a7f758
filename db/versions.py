"""What the search sees of the DB, and two versions that move only when it changes.

The generation (db.meta) moves with every write. Matrices keyed on it were reloaded after
every extraction batch and every rescan, even one that only added pending rows. The search
sees the ok rows: their ids, their features and their paths. So:

- the *features version* moves when the set of ok rows or their features change (rows
  marked ok by extraction; an ok row edited, deleted or reset);
- the *paths version* moves when the path of an ok row changes (a move or rename).

Each is a counter (it orders versions: a newer published cache has a larger one) plus a
random token, like db.meta's write token, so two histories that reach the same counter (a
restored backup written to again) never share a cache name. Write functions call
``bump``/``note_*`` inside their transaction. A DB that no current code has written to yet
has neither: it is named after its generation and write token, as before.

Also here, because it decides which matrices a query may use: whether another process is
extracting into the DB right now (holds ``<db>.lock``), found out without taking the lock.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from db.batched import select_in
from db.connection import WriterLock

FEATURES, PATHS = "features", "paths"
_KEYS = {FEATURES: ("features_version", "features_token"), PATHS: ("paths_version", "paths_token")}
_OK = "ok"  # db.images.OK (not imported: db.images imports this module)


class SearchVersions(NamedTuple):
    """``features``/``paths``: names of the current versions; ``counter``: orders features
    versions (0 for a DB without one); ``cacheable``: the names are unique enough to name
    files on disk (False for a DB written only by code older than write tokens)."""

    features: str
    paths: str
    counter: int
    cacheable: bool


def search_versions(conn: sqlite3.Connection) -> SearchVersions:
    """The versions of what the search sees (one small read of the meta table)."""
    keys = [key for pair in _KEYS.values() for key in pair] + ["generation", "write_token"]
    meta = dict(conn.execute(f"SELECT key, value FROM meta WHERE key IN ({', '.join('?' * len(keys))})", keys))
    legacy = f"g{meta.get('generation', 0)}-{meta.get('write_token')}"
    names = {}
    for kind, (counter, token) in _KEYS.items():
        names[kind] = f"{meta[counter]}-{meta.get(token)}" if counter in meta else legacy
    counter = int(meta.get(_KEYS[FEATURES][0], 0))
    cacheable = _KEYS[FEATURES][0] in meta or meta.get("write_token") is not None
    return SearchVersions(names[FEATURES], names[PATHS], counter, cacheable)


def bump(conn: sqlite3.Connection, *kinds: str) -> None:
    """Move the versions in ``kinds`` (FEATURES, PATHS), inside the caller's transaction.

    A version the DB does not hold yet is created at the same time, so that from the first
    bump on both exist and each moves only with its own kind of change.
    """
    unknown = set(kinds) - set(_KEYS)
    if unknown:
        raise ValueError(f"unknown version kind {sorted(unknown)}; valid: {', '.join(_KEYS)}")
    for kind, (counter, token) in _KEYS.items():
        if kind in kinds:
            conn.execute("INSERT INTO meta(key, value) VALUES (?, '1')"
                         " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1", (counter,))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, lower(hex(randomblob(8))))", (token,))
        else:
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, '1')", (counter,))
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, lower(hex(randomblob(8))))", (token,))


def count_ok(conn: sqlite3.Connection, ids: Sequence[int]) -> int:
    """How many of the rows ``ids`` are ok (visible to the search)."""
    return sum(n for (n,) in select_in(conn, "SELECT COUNT(*) FROM images WHERE status = ? AND id IN ({marks})", ids,
                                       before=[_OK]))


def note_leaving_ok(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Call before rows ``ids`` are deleted or sent back to the queue: the features version
    moves if any of them was ok."""
    if count_ok(conn, ids):
        bump(conn, FEATURES)


def note_moving(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Call when rows ``ids`` get new paths: the paths version moves if any of them is ok."""
    if count_ok(conn, ids):
        bump(conn, PATHS)


def ok_path_chunks(conn: sqlite3.Connection, size: int = 16384):
    """(id, path) of every row the search sees, by id, in lists of at most ``size``: exactly
    the rows of db.features.column_chunks, without their blobs (paths reloaded after a move)."""
    cursor = conn.execute(
        "SELECT i.id, i.path FROM images AS i JOIN features AS f ON f.content_hash = i.content_hash"
        " WHERE i.status = ? ORDER BY i.id", (_OK,))
    while rows := cursor.fetchmany(size):
        yield rows


def extraction_running(db_file: str | os.PathLike) -> bool:
    """True while another process holds the writer lock of ``db_file`` (main.py extracting).

    Never takes the lock: on Linux it reads /proc/locks; elsewhere it asks for a shared lock,
    which would only collide with a main.py starting in that same microsecond.
    """
    path = os.fspath(db_file) + WriterLock.SUFFIX
    try:
        st = os.stat(path)
    except OSError:
        return False
    try:
        with open("/proc/locks") as fh:
            return _held_in_proc_locks(fh, st)
    except OSError:
        pass
    try:
        with open(path, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _held_in_proc_locks(lines, st: os.stat_result) -> bool:
    """A write flock on the file ``st`` held by a process other than this one."""
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == wanted:
            if fields[4] != str(os.getpid()):
                return True
    return False
