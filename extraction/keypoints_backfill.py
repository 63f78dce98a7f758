"""Keypoints for the images extracted before the DB had the keypoints table (db.keypoints): each
file decoded once more (no network), on the next main.py run, with a progress bar.

Why in main.py's run: it holds the writer lock and already goes over the collection; new
extractions compute keypoints from the decode they do anyway (features.extract), so this finds
work only once per older DB (and for files a drive hid). Until it has run, the duplicate finder
reads those files itself (duplicates.alignment).
"""
from __future__ import annotations

import logging
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

import config
from db.keypoints import count_without_keypoints, rows_without_keypoints, store_keypoints
from features.decode import ImageDecodeError, decode, read_file
from features.keypoints import FORMAT, SHORTER_SIDE, of_image, to_bytes

log = logging.getLogger(__name__)

BATCH = 200  # rows per transaction


def backfill_keypoints(conn: sqlite3.Connection, root: str | None, progress: bool = True) -> int:
    """Compute and store the keypoints of every usable row whose content has none yet; the count
    stored. A file that is missing or unreadable now is left for a later run."""
    todo = count_without_keypoints(conn, FORMAT)
    if not todo or not root or not os.path.isdir(root):  # a drive away: its files are not gone, try next time
        return 0
    done, after = 0, 0
    # Decoding and ORB release the GIL: one thread per core.
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool, \
            tqdm(total=todo, desc="keypoints for the duplicate finder", unit="img", disable=not progress) as bar:
        while True:
            rows = rows_without_keypoints(conn, after, BATCH, FORMAT)
            if not rows:
                break
            after = rows[-1][0]
            # Byte-identical files share one record: one read each.
            files = {bytes(digest): os.path.join(root, rel) for _, rel, digest in rows}
            jobs = [(path, digest) for digest, path in files.items()]
            found = [(digest, data) for digest, data in pool.map(_keypoints, jobs) if data]
            done += store_keypoints(conn, found)
            bar.update(len(rows))
    log.info("computed the keypoints of %d images", done)
    return done


def _keypoints(job: tuple[str, bytes]) -> tuple[bytes, bytes | None]:
    """(content hash, stored keypoints), or None when the file is unreadable or changed since its
    extraction (its next scan and run see to it)."""
    path, digest = job
    try:
        data, actual = read_file(path)
        if actual != bytes(digest):
            return digest, None
        return digest, to_bytes(of_image(decode(data, SHORTER_SIDE, config.MAX_IMAGE_PIXELS)))
    except ImageDecodeError:
        return digest, None
