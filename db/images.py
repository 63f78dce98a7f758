"""Rows of the images table: what generator.py writes and main.py reads.

Paths are stored relative to the dataset root with '/' separators; the root is stored once
in meta. Every write runs in one transaction per batch and bumps the generation; the
scan's own bookkeeping (rows seen, moves) is in db/scan.py.
"""
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from db.batched import select_in
from db.meta import bump_generation
from db.versions import note_leaving_ok

PENDING, OK, ERROR = "pending", "ok", "error"


class PendingRow(NamedTuple):
    """A file awaiting extraction; size and mtime let main.py notice it changed since the scan."""

    id: int
    path: str
    size: int
    mtime_ns: int


class Header(NamedTuple):
    """What the scan learns about a file from stat and the image header."""

    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    status: str
    reason: str | None


HEADER_FIELDS = list(Header.__annotations__.items())  # the other row types are built on these

# A file as the scan describes it: what a new row holds before extraction.
ImageRow = NamedTuple("ImageRow", [("path", str), *HEADER_FIELDS])
# New header data for the row ``id`` whose file changed (features to be made again).
ChangedRow = NamedTuple("ChangedRow", [("id", int), *HEADER_FIELDS])


class KnownFile(NamedTuple):
    """What a rescan compares a file with. Unchanged size, mtime, ctime and inode mean nothing
    to do; the same size and mtime with another ctime or inode mean "read it again": tools that
    replace a file keep its size and mtime (``cp -p``, ``touch -r``), but no program can set the
    ctime, and a new file has a new inode."""

    id: int
    size: int
    mtime_ns: int
    status: str
    reason: str | None
    ctime_ns: int | None  # None: scanned by a version-1 DB, not recorded yet
    inode: int | None
    content_hash: bytes | None


class Identity(NamedTuple):
    """A file's ctime and inode, recorded for the row of ``path``."""

    ctime_ns: int
    inode: int
    path: str


def load_index(conn: sqlite3.Connection) -> dict[str, tuple[int, int, int, bytes | None]]:
    """{path: (id, size, mtime_ns, content_hash)} for every row (tests compare whole DBs with it;
    the scan itself looks rows up batch by batch with ``known_files``)."""
    return {
        path: (row_id, size, mtime_ns, content_hash)
        for row_id, path, size, mtime_ns, content_hash in conn.execute(
            "SELECT id, path, size, mtime_ns, content_hash FROM images"
        )
    }


def known_files(conn: sqlite3.Connection, paths: Sequence[str]) -> dict[str, KnownFile]:
    """{path: KnownFile} for those of ``paths`` that have a row."""
    rows = select_in(conn, "SELECT id, path, size, mtime_ns, status, reason, ctime_ns, inode, content_hash FROM images"
                           " WHERE path IN ({marks})", paths)
    return {row[1]: KnownFile(row[0], *row[2:]) for row in rows}


def add_rows(conn: sqlite3.Connection, rows: Iterable[ImageRow],
             identities: Mapping[str, Identity] | None = None) -> None:
    """Insert, inside the caller's transaction; with each file's ctime and inode where
    ``identities`` (by path) has them."""
    identities = identities or {}
    conn.executemany(
        "INSERT INTO images(path, size, mtime_ns, width, height, status, reason, ctime_ns, inode)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row, *(identities[row[0]][:2] if row[0] in identities else (None, None))) for row in rows],
    )


def change_rows(conn: sqlite3.Connection, rows: Iterable[ChangedRow]) -> None:
    """New header data and back to the queue, inside the caller's transaction."""
    rows = [ChangedRow._make(r) for r in rows]
    note_leaving_ok(conn, [r.id for r in rows])  # the search's version moves if an ok row leaves it
    conn.executemany(
        "UPDATE images SET size = ?, mtime_ns = ?, width = ?, height = ?, status = ?, reason = ?,"
        " content_hash = NULL WHERE id = ?",
        [(r.size, r.mtime_ns, r.width, r.height, r.status, r.reason, r.id) for r in rows],
    )


def record_identities(conn: sqlite3.Connection, rows: Iterable[Identity]) -> None:
    """ctime and inode of files by path, inside the caller's transaction (searches do not see them)."""
    conn.executemany("UPDATE images SET ctime_ns = ?, inode = ? WHERE path = ?", rows)


def insert_images(conn: sqlite3.Connection, rows: Iterable[ImageRow]) -> None:
    """rows: ImageRow (or plain tuples in its order), in one transaction."""
    with conn:
        add_rows(conn, rows)
        bump_generation(conn)


def update_changed(conn: sqlite3.Connection, rows: Iterable[ChangedRow]) -> None:
    """A file whose size or mtime changed: new header data, features to be re-extracted."""
    with conn:
        change_rows(conn, rows)
        bump_generation(conn)


def delete_images(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    ids = list(ids)
    with conn:
        note_leaving_ok(conn, ids)
        conn.executemany("DELETE FROM images WHERE id = ?", [(i,) for i in ids])
        bump_generation(conn)


def retry_errors(conn: sqlite3.Connection) -> int:
    """Put every unusable file back in the queue (``main.py --retry-errors``), e.g. after a
    permission fix or a raised pixel limit, which a rescan cannot see; returns the count."""
    with conn:
        count = conn.execute("UPDATE images SET status = ?, reason = NULL WHERE status = ?", (PENDING, ERROR)).rowcount
        if count:
            bump_generation(conn)
    return count


def pending_page(conn: sqlite3.Connection, after_id: int, limit: int) -> list[PendingRow]:
    """The next ``limit`` rows awaiting extraction, by id: main.py streams through these."""
    return [
        PendingRow(*row)
        for row in conn.execute(
            "SELECT id, path, size, mtime_ns FROM images WHERE status = ? AND id > ? ORDER BY id LIMIT ?",
            (PENDING, after_id, limit),
        )
    ]


def count_images(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]


def count_by_status(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status"))


def error_reasons(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """[(reason, count)] most common first, for the end-of-run summary."""
    return conn.execute(
        "SELECT reason, COUNT(*) AS n FROM images WHERE status = ? GROUP BY reason ORDER BY n DESC, reason",
        (ERROR,),
    ).fetchall()


def find_by_path(conn: sqlite3.Connection, rel_path: str) -> tuple[int, str] | None:
    """(id, status) of the row for ``rel_path``, or None."""
    return conn.execute("SELECT id, status FROM images WHERE path = ?", (rel_path,)).fetchone()
