"""EXIF facts for the images extracted before the DB had EXIF columns: read from the files'
headers only (no decode, no new features), on the next main.py run, with a progress bar.

Why in main.py's run: it is the one program that already goes over the collection's files
and holds the writer lock; new extractions read the facts in the decode workers instead
(features.extract), so this finds work only once per older DB (and for files a drive hid).
"""
from __future__ import annotations

import logging
import os
import sqlite3

from tqdm import tqdm

from db.exif import count_unread, store_exif, unread_rows
from features.exif import exif_of

log = logging.getLogger(__name__)

BATCH = 500  # rows per transaction


def backfill_exif(conn: sqlite3.Connection, root: str | None, progress: bool = True) -> int:
    """Read and store the EXIF facts of every usable row that has none yet; the rows done. A file
    that is missing now is left for a later run (its drive may be away)."""
    todo = count_unread(conn)
    if not todo or not root:
        return 0
    done, after = 0, 0
    with tqdm(total=todo, desc="EXIF dates and cameras", unit="img", disable=not progress) as bar:
        while True:
            rows = unread_rows(conn, after, BATCH)
            if not rows:
                break
            after = rows[-1][0]
            found = [(image_id, exif_of(path)) for image_id, path in
                     ((image_id, os.path.join(root, rel)) for image_id, rel in rows) if os.path.isfile(path)]
            done += store_exif(conn, found)
            bar.update(len(rows))
    log.info("read the EXIF facts of %d images", done)
    return done
