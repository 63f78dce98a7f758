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

from db.batched import select_in
from db.images import OK
from db.meta import bump_generation

FACT_COLUMNS = ("taken", "camera_make", "camera_model", "gps_lat", "gps_lon", "orientation")


class RowFacts(NamedTuple):
    """What the filters need of every usable image, in id order."""

    ids: list[int]
    paths: list[str]
    taken: list[str | None]  # EXIF date taken, ISO 8601
    mtime_ns: list[int]
    cameras: list[str | None]  # camera_name(make, model)


def camera_name(make: str | None, model: str | None) -> str | None:
    """"Canon EOS 80D" from make "Canon" and model "Canon EOS 80D" (the model often repeats the make)."""
    make, model = (make or "").strip(), (model or "").strip()
    if not model:
        return make or None
    if make and not model.lower().startswith(make.split()[0].lower()):
        return f"{make} {model}"
    return model


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
    rows = conn.execute("SELECT id, path, taken, mtime_ns, camera_make, camera_model FROM images WHERE status = ?"
                        " ORDER BY id", (OK,)).fetchall()
    return RowFacts([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                    [camera_name(r[4], r[5]) for r in rows])


def dates_of(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[str | None, int]]:
    """{id: (EXIF date taken or None, file mtime_ns)} for the ids that exist."""
    rows = select_in(conn, "SELECT id, taken, mtime_ns FROM images WHERE id IN ({marks})", [int(i) for i in ids])
    return {image_id: (taken, mtime_ns) for image_id, taken, mtime_ns in rows}


def usable_ids(conn: sqlite3.Connection, folder: str | None = None, limit: int = -1) -> list[int]:
    """Ids of usable images by id, all or those under ``folder`` (for benchmarks and tests that date them)."""
    if folder is None:
        return [i for (i,) in conn.execute("SELECT id FROM images WHERE status = ? ORDER BY id LIMIT ?", (OK, limit))]
    return [i for (i,) in conn.execute("SELECT id FROM images WHERE status = ? AND path >= ? AND path < ?"
                                       " ORDER BY id LIMIT ?", (OK, folder + "/", folder + "0", limit))]
