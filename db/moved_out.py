"""Files that find_duplicates.py --move-to took out of the collection, and back.

Why a table: a moved file's images row must leave at once (a search must not return a file
that is not there), yet the row is not a deletion. Kept here, the next generator.py run says
"moved out" instead of counting it against the deletion guard, main.py --prune keeps the
features (keyed by content hash) and --undo puts the row back as ok, without extraction.
"""
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from db.images import OK
from db.meta import bump_generation
from db.versions import FEATURES, bump, note_leaving_ok


class MovedFile(NamedTuple):
    """An images row whose file was moved out (as the scan and the extraction left it)."""

    id: int
    path: str  # relative to the dataset root
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    content_hash: bytes


class BackInPlace(NamedTuple):
    """A file --undo put back: its path, and its size and mtime now."""

    path: str
    size: int
    mtime_ns: int


def record_moved_out(conn: sqlite3.Connection, files: Sequence[MovedFile], manifest: str) -> None:
    """The rows of ``files`` leave images for moved_out, in one transaction."""
    if not files:
        return
    with conn:
        note_leaving_ok(conn, [f.id for f in files])
        conn.executemany(
            "INSERT OR REPLACE INTO moved_out(path, size, mtime_ns, width, height, content_hash, manifest)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f.path, f.size, f.mtime_ns, f.width, f.height, f.content_hash, manifest) for f in files])
        conn.executemany("DELETE FROM images WHERE id = ?", [(f.id,) for f in files])
        bump_generation(conn)


def restore_moved_in(conn: sqlite3.Connection, files: Sequence[BackInPlace]) -> tuple[int, int]:
    """Rows back for files --undo put back: ok with their content hash when the file has the
    size and mtime it was moved with and its features are still stored; otherwise (or when
    the path has a row again) the next generator.py run treats it as it treats any file.
    Returns (rows put back as ok, files left to the next scan)."""
    restored = left = 0
    with conn:
        for back in files:
            row = conn.execute("SELECT size, mtime_ns, width, height, content_hash FROM moved_out WHERE path = ?",
                               (back.path,)).fetchone()
            if row is None:
                left += 1
                continue
            conn.execute("DELETE FROM moved_out WHERE path = ?", (back.path,))
            size, mtime_ns, width, height, digest = row
            if (back.size, back.mtime_ns) != (size, mtime_ns) or conn.execute(
                    "SELECT 1 FROM images WHERE path = ?", (back.path,)).fetchone() or not conn.execute(
                    "SELECT 1 FROM features WHERE content_hash = ?", (digest,)).fetchone():
                left += 1
                continue
            conn.execute("INSERT INTO images(path, size, mtime_ns, width, height, status, reason, content_hash)"
                         " VALUES (?, ?, ?, ?, ?, ?, NULL, ?)", (back.path, size, mtime_ns, width, height, OK, digest))
            restored += 1
        bump_generation(conn)
        if restored:  # the search sees these rows again
            bump(conn, FEATURES)
    return restored, left


def report_moved_out(conn: sqlite3.Connection) -> int:
    """For a scan's summary: how many files were moved out since the last scan said so. Rows
    whose path has an images row again (the file came back another way) are forgotten."""
    with conn:
        gone = conn.execute("DELETE FROM moved_out WHERE path IN (SELECT path FROM images)").rowcount
        count = conn.execute("SELECT COUNT(*) FROM moved_out WHERE reported = 0").fetchone()[0]
        if count:
            conn.execute("UPDATE moved_out SET reported = 1 WHERE reported = 0")
        if gone or count:
            bump_generation(conn)
    return count


# Feature rows a moved-out file needs: main.py --prune leaves them (db.features).
KEEP_FOR_MOVED_OUT = "NOT EXISTS (SELECT 1 FROM moved_out AS m WHERE m.content_hash = f.content_hash)"
