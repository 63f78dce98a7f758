"""What a scan in progress remembers, on disk rather than in memory: rows seen, folders it
could not list, moves found.

A scan walks the folder in batches and commits each one, so memory stays flat for any
collection and a kill keeps the finished batches. Which rows are gone is only known at the
end: rows the walk saw go to a temporary table of this connection (SQLite keeps it in a
file, not in RAM), and the rest, minus the rows under a folder that could not be listed,
are the deletion candidates. Moves are found the same way: the hashes of new files go to a
temporary table and are paired with gone rows in SQL. Rows inserted by a scan that did not
finish keep their chance to be recognised as moves through the meta key ``scan_new_after_id``.
"""
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from db.images import PENDING, ChangedRow, Identity, ImageRow, add_rows, change_rows, record_identities
from db.meta import bump_generation
from db.versions import note_moving

_NEW_AFTER_KEY = "scan_new_after_id"

# Rows this scan has not seen: known before it started, not listed by the walk, not under a
# folder it could not list (their files may well be there: "not checked", never deleted).
_UNSEEN = ("i.id <= :last AND i.id NOT IN (SELECT id FROM temp.scan_seen)"
           " AND NOT EXISTS (SELECT 1 FROM temp.scan_unchecked AS u"
           "                 WHERE substr(i.path, 1, length(u.prefix)) = u.prefix)")
_UNCHECKED = ("i.id <= :last AND i.id NOT IN (SELECT id FROM temp.scan_seen)"
              " AND EXISTS (SELECT 1 FROM temp.scan_unchecked AS u"
              "             WHERE substr(i.path, 1, length(u.prefix)) = u.prefix)")
_NOT_MOVED = "i.id NOT IN (SELECT old_id FROM temp.scan_moves)"


class ScanRange(NamedTuple):
    """Row ids that tell a scan's rows apart: ``last`` was the highest id when it started
    (every id above it is a row it inserted); rows above ``new_after`` were inserted by this
    scan or by an unfinished one before it, and may still be moves."""

    last: int
    new_after: int


class FreshRow(NamedTuple):
    id: int
    path: str
    size: int
    mtime_ns: int


class Move(NamedTuple):
    """The row ``old_id`` (with its features) takes the path of the file first seen as ``new_id``."""

    old_id: int
    new_id: int
    path: str
    mtime_ns: int
    ctime_ns: int | None
    inode: int | None


def begin_scan(conn: sqlite3.Connection) -> ScanRange:
    """Start the bookkeeping of one scan on ``conn`` (fresh temporary tables); writes nothing."""
    conn.execute("PRAGMA temp_store = FILE")  # the default of most builds, said explicitly: RAM stays flat
    conn.executescript("""
        CREATE TEMP TABLE IF NOT EXISTS scan_seen (id INTEGER PRIMARY KEY);
        CREATE TEMP TABLE IF NOT EXISTS scan_unchecked (prefix TEXT PRIMARY KEY);
        CREATE TEMP TABLE IF NOT EXISTS scan_moves (
            old_id INTEGER PRIMARY KEY, new_id INTEGER NOT NULL, path TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER, inode INTEGER);
        CREATE TEMP TABLE IF NOT EXISTS scan_gone_sizes (size INTEGER PRIMARY KEY);
        CREATE TEMP TABLE IF NOT EXISTS scan_digests (id INTEGER PRIMARY KEY, digest BLOB NOT NULL);
        DELETE FROM temp.scan_seen;
        DELETE FROM temp.scan_unchecked;
        DELETE FROM temp.scan_moves;
        DELETE FROM temp.scan_gone_sizes;
        DELETE FROM temp.scan_digests;
    """)
    last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM images").fetchone()[0]
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_NEW_AFTER_KEY,)).fetchone()
    return ScanRange(last=last, new_after=min(int(row[0]), last) if row else last)


def commit_batch(conn: sqlite3.Connection, scan: ScanRange, inserts: list[ImageRow], changes: list[ChangedRow],
                 seen_ids: list[int], identities: list[Identity] = ()) -> None:
    """One walked batch in one transaction; the generation moves only if a row did.
    ``identities``: ctime and inode of the inserted and changed files and of those whose only
    change was those two (a rename, chmod or restore of the same bytes: nothing to extract).

    With the first insert the DB remembers that a scan is unfinished: if it is killed, the
    next scan still treats the rows it inserted as possible moves.
    """
    by_path = {identity.path: identity for identity in identities}
    with conn:
        if inserts:
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                         (_NEW_AFTER_KEY, str(scan.new_after)))
            add_rows(conn, inserts, by_path)
        if changes:
            change_rows(conn, changes)
        inserted = {row.path for row in inserts}
        record_identities(conn, [identity for identity in identities if identity.path not in inserted])
        conn.executemany("INSERT OR IGNORE INTO temp.scan_seen(id) VALUES (?)", [(i,) for i in seen_ids])
        if inserts or changes:
            bump_generation(conn)


def mark_unchecked(conn: sqlite3.Connection, folder: str) -> None:
    """Rows under ``folder`` (relative, '/' separated; '' for the root) are kept as they are."""
    prefix = folder.rstrip("/") + "/" if folder else ""
    with conn:
        conn.execute("INSERT OR IGNORE INTO temp.scan_unchecked(prefix) VALUES (?)", (prefix,))


def files_to_hash(conn: sqlite3.Connection, scan: ScanRange) -> Iterator[FreshRow]:
    """Files seen for the first time, not extracted yet, with the size of a gone row that has
    a content hash: the only files worth hashing to find moves. By id."""
    with conn:
        conn.execute("DELETE FROM temp.scan_gone_sizes")
        conn.execute(f"INSERT OR IGNORE INTO temp.scan_gone_sizes(size) SELECT i.size FROM images AS i"
                     f" WHERE {_UNSEEN} AND i.content_hash IS NOT NULL", scan._asdict())
    cursor = conn.execute(
        "SELECT id, path, size, mtime_ns FROM images WHERE id > :new_after"
        " AND (id > :last OR id IN (SELECT id FROM temp.scan_seen)) AND status = :pending AND content_hash IS NULL"
        " AND size IN (SELECT size FROM temp.scan_gone_sizes) ORDER BY id", {**scan._asdict(), "pending": PENDING})
    return map(FreshRow._make, cursor)


def record_digests(conn: sqlite3.Connection, digests: list[tuple[int, bytes]]) -> None:
    """(row id, content hash) of files_to_hash rows."""
    with conn:
        conn.executemany("INSERT OR REPLACE INTO temp.scan_digests(id, digest) VALUES (?, ?)", digests)


def pair_moves(conn: sqlite3.Connection, scan: ScanRange) -> tuple[int, int]:
    """Pair gone rows with hashed new files of the same content, one to one (the k-th gone
    copy of some bytes with the k-th new one, by id), all in SQL: memory stays flat however
    many files moved. Returns (moves, of which rows this scan inserted)."""
    with conn:
        conn.execute(
            "WITH gone AS (SELECT i.id, i.content_hash AS digest,"
            "              ROW_NUMBER() OVER (PARTITION BY i.content_hash ORDER BY i.id) AS n"
            f"             FROM images AS i WHERE {_UNSEEN} AND i.content_hash IS NOT NULL),"
            " fresh AS (SELECT d.id, d.digest, ROW_NUMBER() OVER (PARTITION BY d.digest ORDER BY d.id) AS n"
            "           FROM temp.scan_digests AS d)"
            " INSERT INTO temp.scan_moves(old_id, new_id, path, mtime_ns, ctime_ns, inode)"
            " SELECT g.id, f.id, i.path, i.mtime_ns, i.ctime_ns, i.inode FROM gone AS g"
            " JOIN fresh AS f ON f.digest = g.digest AND f.n = g.n JOIN images AS i ON i.id = f.id",
            scan._asdict())
    return conn.execute("SELECT COUNT(*), COALESCE(SUM(new_id > ?), 0) FROM temp.scan_moves", (scan.last,)).fetchone()


def count_rows(conn: sqlite3.Connection, scan: ScanRange) -> int:
    """Rows the DB held when the scan started."""
    return conn.execute("SELECT COUNT(*) FROM images WHERE id <= ?", (scan.last,)).fetchone()[0]


def count_gone(conn: sqlite3.Connection, scan: ScanRange) -> int:
    """Rows to delete: unseen, not moved, not under a folder that could not be listed."""
    return conn.execute(f"SELECT COUNT(*) FROM images AS i WHERE {_UNSEEN} AND {_NOT_MOVED}",
                        scan._asdict()).fetchone()[0]


def count_not_checked(conn: sqlite3.Connection, scan: ScanRange) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM images AS i WHERE {_UNCHECKED}", scan._asdict()).fetchone()[0]


def move_page(conn: sqlite3.Connection, after_old_id: int, limit: int) -> list[Move]:
    return [Move._make(row) for row in conn.execute(
        "SELECT old_id, new_id, path, mtime_ns, ctime_ns, inode FROM temp.scan_moves WHERE old_id > ?"
        " ORDER BY old_id LIMIT ?",
        (after_old_id, limit))]


def gone_page(conn: sqlite3.Connection, scan: ScanRange, after_id: int, limit: int) -> list[int]:
    """The next ``limit`` ids to delete, by id."""
    return [row[0] for row in conn.execute(
        f"SELECT i.id FROM images AS i WHERE {_UNSEEN} AND {_NOT_MOVED} AND i.id > :after ORDER BY i.id"
        f" LIMIT :limit", {**scan._asdict(), "after": after_id, "limit": limit})]


def apply_moves(conn: sqlite3.Connection, moves: list[Move]) -> None:
    """Each old row takes its new path; the row made for the new path goes (it has no features)."""
    with conn:
        note_moving(conn, [m.old_id for m in moves])  # paths the search shows change; its matrices do not
        conn.executemany("DELETE FROM images WHERE id = ?", [(m.new_id,) for m in moves])
        conn.executemany("UPDATE images SET path = ?, mtime_ns = ?, ctime_ns = ?, inode = ? WHERE id = ?",
                         [(m.path, m.mtime_ns, m.ctime_ns, m.inode, m.old_id) for m in moves])
        bump_generation(conn)


def forget_new_rows(conn: sqlite3.Connection, scan: ScanRange) -> int:
    """A refused scan takes back the rows it inserted (they are found again by the next one),
    so that a refusal changes nothing the search or main.py would see. Returns how many."""
    with conn:
        removed = conn.execute("DELETE FROM images WHERE id > ?", (scan.last,)).rowcount
        conn.execute("DELETE FROM meta WHERE key = ?", (_NEW_AFTER_KEY,))
        if removed:
            bump_generation(conn)
    return removed


def end_scan(conn: sqlite3.Connection) -> None:
    """The scan finished: its new rows are ordinary rows from now on."""
    if conn.execute("SELECT 1 FROM meta WHERE key = ?", (_NEW_AFTER_KEY,)).fetchone():
        with conn:
            conn.execute("DELETE FROM meta WHERE key = ?", (_NEW_AFTER_KEY,))
