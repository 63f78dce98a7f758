"""Per-image facts the duplicate finder needs beside the feature matrices.

Why a separate read: the matrices carry ids and paths only; choosing a keeper needs the
pixel count, the file size and the mtime, and exact copies are told apart by the content
hash. Read for the few ids that are in a group, in chunks (SQLite limits the number of
parameters of one statement), never for the whole collection at once.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from db.images import OK

CHUNK = 900  # ids per statement: below SQLite's default limit of 999 parameters


class ImageDetails(NamedTuple):
    id: int
    path: str  # relative to the dataset root
    width: int | None
    height: int | None
    size: int
    mtime_ns: int
    content_hash: bytes | None


def image_details(conn, ids: Iterable[int]) -> dict[int, ImageDetails]:
    """{id: ImageDetails} for every id that has a row (unknown ids are left out)."""
    wanted = sorted({int(i) for i in ids})
    found: dict[int, ImageDetails] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT id, path, width, height, size, mtime_ns, content_hash FROM images WHERE id IN ({marks})", chunk
        ):
            found[row[0]] = ImageDetails(*row)
    return found


def exact_copy_sets(conn) -> list[list[int]]:
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
