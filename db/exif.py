"""The EXIF columns of the images table: written at extraction or by main.py's back-fill, read
whole for the search filters (date taken, camera, folder).

A row's facts are (taken, camera_make, camera_model, gps_lat, gps_lon, orientation), the fields
of features.exif.Exif in that order; ``exif_read`` = 1 marks a row whose header was read (even
if it had no EXIF), so the back-fill reads every file once.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from db.images import OK
from db.meta import bump_generation

FACT_COLUMNS = ("taken", "camera_make", "camera_model", "gps_lat", "gps_lon", "orientation")


class RowFacts(NamedTuple):
    """What the filters need of every usable image, in id order."""

    ids: list[int]
    paths: list[str]
    taken: list[str | None]  # EXIF date taken, ISO 8601
    mtime_ns: list[int]
    cameras: list[str | None]  # make and model as stored, joined by a space


def store_exif(conn: sqlite3.Connection, facts: Iterable[tuple[int, Sequence]]) -> int:
    """Write (id, facts) pairs in one transaction and mark the rows read; the rows written."""
    rows = [(*fact, int(image_id)) for image_id, fact in facts]
    if not rows:
        return 0
    sets = ", ".join(f"{c} = ?" for c in FACT_COLUMNS)
    with conn:
        written = conn.executemany(f"UPDATE images SET {sets}, exif_read = 1 WHERE id = ?", rows).rowcount
        bump_generation(conn)  # the filters' facts are named after the DB's version
    return written


def unread_rows(conn: sqlite3.Connection, after_id: int, limit: int) -> list[tuple[int, str]]:
    """(id, path) of usable rows whose header was not read yet, by id after ``after_id`` (pending rows
    get theirs from the extraction)."""
    return conn.execute("SELECT id, path FROM images WHERE id > ? AND exif_read IS NULL AND status = ?"
                        " ORDER BY id LIMIT ?", (int(after_id), OK, int(limit))).fetchall()


def count_unread(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM images WHERE exif_read IS NULL AND status = ?", (OK,)).fetchone()[0]


def row_facts(conn: sqlite3.Connection) -> RowFacts:
    """Every usable image's id, path, date taken, file date and camera, by id (one read of the table)."""
    rows = conn.execute("SELECT id, path, taken, mtime_ns, TRIM(COALESCE(camera_make, '') || ' ' ||"
                        " COALESCE(camera_model, '')) FROM images WHERE status = ? ORDER BY id", (OK,)).fetchall()
    ids, paths, taken, mtimes, cameras = (list(c) for c in zip(*rows)) if rows else ([], [], [], [], [])
    return RowFacts(ids, paths, taken, mtimes, [c or None for c in cameras])
