"""The EXIF date taken the DB already holds (db.exif stores it when main.py reads the header),
for the duplicate finder's keeper rule: a row whose header was read needs no second read."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable

CHUNK = 500  # ids per statement


def stored_dates_taken(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str | None]:
    """{id: ISO 8601 date taken or None} for the rows whose EXIF header was read; rows not read
    yet are left out (the caller reads their header)."""
    found: dict[int, str | None] = {}
    ids = sorted({int(i) for i in ids})
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        marks = ",".join("?" * len(chunk))
        for image_id, taken in conn.execute(
                f"SELECT id, taken FROM images WHERE exif_read = 1 AND id IN ({marks})", chunk):
            found[image_id] = taken
    return found
