"""Rows of the images table: what generator.py writes and main.py reads.

Paths are stored relative to the dataset root with '/' separators; the root is stored once
in meta. Every write runs in one transaction per batch and bumps the generation.
"""
import sqlite3
from typing import NamedTuple

from db.meta import bump_generation

PENDING, OK, ERROR = "pending", "ok", "error"


class PendingRow(NamedTuple):
    """A file awaiting extraction; size and mtime let main.py notice it changed since the scan."""

    id: int
    path: str
    size: int
    mtime_ns: int


def load_index(conn):
    """{path: (id, size, mtime_ns, content_hash)} for every row: what a rescan compares against."""
    return {
        path: (row_id, size, mtime_ns, content_hash)
        for row_id, path, size, mtime_ns, content_hash in conn.execute(
            "SELECT id, path, size, mtime_ns, content_hash FROM images"
        )
    }


def insert_images(conn, rows):
    """rows: (path, size, mtime_ns, width, height, status, reason)."""
    with conn:
        conn.executemany(
            "INSERT INTO images(path, size, mtime_ns, width, height, status, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        bump_generation(conn)


def update_changed(conn, rows):
    """A file whose size or mtime changed: new header data, features to be re-extracted.

    rows: (size, mtime_ns, width, height, status, reason, id).
    """
    with conn:
        conn.executemany(
            "UPDATE images SET size = ?, mtime_ns = ?, width = ?, height = ?, status = ?, reason = ?,"
            " content_hash = NULL WHERE id = ?",
            rows,
        )
        bump_generation(conn)


def move_images(conn, rows):
    """A file that moved keeps its row, and so its features. rows: (new_path, mtime_ns, id)."""
    with conn:
        conn.executemany("UPDATE images SET path = ?, mtime_ns = ? WHERE id = ?", rows)
        bump_generation(conn)


def delete_images(conn, ids):
    with conn:
        conn.executemany("DELETE FROM images WHERE id = ?", [(i,) for i in ids])
        bump_generation(conn)


def retry_errors(conn):
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


def count_by_status(conn):
    return dict(conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status"))


def error_reasons(conn):
    """[(reason, count)] most common first, for the end-of-run summary."""
    return conn.execute(
        "SELECT reason, COUNT(*) AS n FROM images WHERE status = ? GROUP BY reason ORDER BY n DESC, reason",
        (ERROR,),
    ).fetchall()


def find_by_path(conn, rel_path):
    """(id, status) of the row for ``rel_path``, or None."""
    return conn.execute("SELECT id, status FROM images WHERE path = ?", (rel_path,)).fetchone()
