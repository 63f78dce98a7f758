"""The keypoints table: each picture's alignment data (features.keypoints.to_bytes), keyed by
content hash, written at extraction (or by main.py's back-fill for older DBs) and read by the
duplicate finder, so aligning a close pair reads no image file.

Why a table of its own and not a features column: the features are the network's and change
with the model (main.py --reset-features); keypoints depend only on the pixels.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from db.batched import select_in
from db.images import OK

# A record's first byte is its format (features.keypoints.FORMAT: its layout and the settings it
# was computed with); the queries below take the current one, so older records count as missing.
_CURRENT = "substr(k.data, 1, 1) = ?"


def store_keypoints(conn: sqlite3.Connection, rows: Iterable[tuple[bytes, bytes]]) -> int:
    """Write (content_hash, data) pairs in one transaction, replacing what a hash had; the count given."""
    rows = [(bytes(h), bytes(data)) for h, data in rows]
    if rows:
        with conn:
            conn.executemany("INSERT OR REPLACE INTO keypoints(content_hash, data) VALUES (?, ?)", rows)
    return len(rows)


def stored_keypoints(conn: sqlite3.Connection, content_hashes: Sequence[bytes]) -> dict[bytes, bytes]:
    """{content_hash: data} of the given hashes that have keypoints."""
    wanted = dict.fromkeys(bytes(h) for h in content_hashes)
    return dict(select_in(conn, "SELECT content_hash, data FROM keypoints WHERE content_hash IN ({marks})", wanted))


def rows_without_keypoints(conn: sqlite3.Connection, after_id: int, limit: int,
                           record_format: int) -> list[tuple[int, str, bytes]]:
    """(id, path, content_hash) of usable rows whose content has no keypoints of ``record_format``
    yet, by id after ``after_id``."""
    return conn.execute(
        "SELECT i.id, i.path, i.content_hash FROM images AS i WHERE i.id > ? AND i.status = ?"
        " AND i.content_hash IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM keypoints AS k WHERE k.content_hash = i.content_hash AND {_CURRENT})"
        " ORDER BY i.id LIMIT ?", (int(after_id), OK, bytes([record_format]), int(limit))).fetchall()


def count_without_keypoints(conn: sqlite3.Connection, record_format: int) -> int:
    return conn.execute(
        "SELECT COUNT(*) FROM images AS i WHERE i.status = ? AND i.content_hash IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM keypoints AS k WHERE k.content_hash = i.content_hash AND {_CURRENT})",
        (OK, bytes([record_format]))).fetchone()[0]


def hashes_with_keypoints(conn: sqlite3.Connection, image_ids: Sequence[int], record_format: int) -> dict[int, bytes]:
    """{image id: content hash} of the given images whose content has stored keypoints of ``record_format``."""
    ids = dict.fromkeys(int(i) for i in image_ids)
    return {i: bytes(h) for i, h in select_in(
        conn, "SELECT i.id, i.content_hash FROM images AS i JOIN keypoints AS k ON k.content_hash = i.content_hash"
              f" WHERE i.id IN ({{marks}}) AND {_CURRENT}", ids, after=[bytes([record_format])])}
