"""Single-row look-ups by id, for the web app: it serves files and thumbnails by id only,
so the client never sends a path, and the path it opens always comes from the DB.
"""
from __future__ import annotations

import sqlite3
from typing import NamedTuple

from db.images import HEADER_FIELDS, OK


# One row of the images table, as the web app needs it (path relative to the dataset root).
StoredImage = NamedTuple("StoredImage", [("id", int), ("path", str), *HEADER_FIELDS,
                                         ("content_hash", bytes | None)])


_COLUMNS = "id, path, size, mtime_ns, width, height, status, reason, content_hash"


def image_by_id(conn: sqlite3.Connection, image_id: int) -> StoredImage | None:
    """The row with ``image_id``, or None."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?", (int(image_id),)).fetchone()
    return None if row is None else StoredImage(*row)


def images_by_ids(conn: sqlite3.Connection, ids: list[int]) -> dict[int, StoredImage]:
    """{id: row} for the ids that exist (one statement for a page of results)."""
    found: dict[int, StoredImage] = {}
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), 500):  # well under SQLite's bound-parameter limit
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {_COLUMNS} FROM images WHERE id IN ({marks})", chunk):
            found[row[0]] = StoredImage(*row)
    return found


def first_ok_id(conn: sqlite3.Connection) -> int | None:
    """The smallest id of an image with features (to warm the search up), or None."""
    row = conn.execute("SELECT MIN(id) FROM images WHERE status = ?", (OK,)).fetchone()
    return None if row is None else row[0]
