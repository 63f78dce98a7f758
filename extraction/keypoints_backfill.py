"""Keypoints for the images extracted before the DB had the keypoints table (db.keypoints), or whose
record is of an older format (features.keypoints.FORMAT): each file decoded once more (no network),
on the next main.py run, with a progress bar.

Why in main.py's run: it holds the writer lock and already goes over the collection; new
extractions compute keypoints from the decode they do anyway (features.extract), so this finds
work once per older DB or format change (and for files a drive hid). Until it has run, the duplicate finder
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
            # Byte-identical files share one record: read one, another if it changed since.
            files: dict[bytes, list[str]] = {}
            for _, rel, digest in rows:
                files.setdefault(bytes(digest), []).append(os.path.join(root, rel))
            found = [(digest, data) for digest, data in pool.map(_keypoints, files.items()) if data]
            done += store_keypoints(conn, found)
            bar.update(len(rows))
    log.info("computed the keypoints of %d pictures (byte-identical files share one)", done)
    return done


def _keypoints(job: tuple[bytes, list[str]]) -> tuple[bytes, bytes | None]:
    """(content hash, stored keypoints) from the first of its files that still holds those bytes;
    None when none does (unreadable or changed since extraction: their next scan and run see to it)."""
    digest, paths = job
    for path in paths:
        try:
            data, actual = read_file(path)
            if actual == digest:
                return digest, to_bytes(of_image(decode(data, SHORTER_SIDE, config.MAX_IMAGE_PIXELS)))
        except ImageDecodeError:
            continue
    return digest, None
