"""Image rows looked up by id, as one row type (StoredImage) for every reader.

The web app serves files and thumbnails by id only, so the client never sends a path, and
the path it opens always comes from the DB. The duplicate finder reads the rows of the few
ids that are in a group (pixels, size and mtime choose the keeper; the content hash tells
exact copies), never the whole collection at once.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from db.batched import select_in
from db.images import HEADER_FIELDS, OK

# One row of the images table (path relative to the dataset root): the one image-row type of the readers.
StoredImage = NamedTuple("StoredImage", [("id", int), ("path", str), *HEADER_FIELDS,
                                         ("content_hash", bytes | None)])


_COLUMNS = "id, path, size, mtime_ns, width, height, status, reason, content_hash"


def image_by_id(conn: sqlite3.Connection, image_id: int) -> StoredImage | None:
    """The row with ``image_id``, or None."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?", (int(image_id),)).fetchone()
    return None if row is None else StoredImage(*row)


def images_by_ids(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, StoredImage]:
    """{id: row} for the ids that exist (unknown ids are left out; db.batched: a statement per chunk)."""
    rows = select_in(conn, f"SELECT {_COLUMNS} FROM images WHERE id IN ({{marks}})", sorted({int(i) for i in ids}))
    return {row[0]: StoredImage(*row) for row in rows}


def first_ok_id(conn: sqlite3.Connection) -> int | None:
    """The smallest id of an image with features (to warm the search up), or None."""
    row = conn.execute("SELECT MIN(id) FROM images WHERE status = ?", (OK,)).fetchone()
    return None if row is None else row[0]


def exact_copy_sets(conn: sqlite3.Connection) -> list[list[int]]:
    """Ids of usable images that share their content hash with another one (byte-identical
    files), one sorted list per hash. Uses the content_hash index: no full read of the table."""
    sets: dict[bytes, list[int]] = {}
    for content_hash, image_id in conn.execute(
        "SELECT content_hash, id FROM images WHERE status = ? AND content_hash IN"
        " (SELECT content_hash FROM images WHERE status = ? AND content_hash IS NOT NULL"
        "  GROUP BY content_hash HAVING COUNT(*) > 1) ORDER BY content_hash, id",
        (OK, OK),
    ):
        sets.setdefault(content_hash, []).append(image_id)
    return list(sets.values())


def images_with_content_hash(conn: sqlite3.Connection, digest: bytes, limit: int = 10) -> list[StoredImage]:
    """Usable images whose file has the content hash ``digest`` (byte-identical files), by path;
    through the content_hash index."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM images WHERE content_hash = ? AND status = ? ORDER BY path LIMIT ?",
                        (bytes(digest), OK, int(limit)))
    return [StoredImage(*row) for row in rows]
