"""The EXIF date taken the DB already holds (db.exif stores it when main.py reads the header),
for the duplicate finder's keeper rule: a row whose header was read needs no second read."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from db.batched import select_in


def stored_dates_taken(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str | None]:
    """{id: ISO 8601 date taken or None} for the rows whose EXIF header was read; rows not read
    yet are left out (the caller reads their header)."""
    return dict(select_in(conn, "SELECT id, taken FROM images WHERE exif_read = 1 AND id IN ({marks})",
                          sorted({int(i) for i in ids})))
