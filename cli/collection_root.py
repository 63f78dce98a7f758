"""Checks on the folder a scan is given: a system folder is refused, a moved collection is
re-pointed only once its files are found there unchanged.

Why refuse system folders: ``generator.py --data /`` would walk /proc, /sys and every mounted
drive without a word, and a folder under /proc or /dev is never a photo collection.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable

from cli.runner import UsageError
from db.meta import dataset_root
from db.relocation import relocate_root, relocation_sample

log = logging.getLogger(__name__)

SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
RELOCATION_SAMPLE = 50  # files read and hashed under the new folder before it is trusted
RELOCATION_MATCH = 0.9  # share of them that must be there with the same bytes (some may be deleted since)


def refuse_system_folder(data_dir: str | os.PathLike, root: str) -> None:
    """UsageError for / or a folder under /proc, /sys or /dev (``root`` is its realpath)."""
    inside = next((f for f in SYSTEM_FOLDERS if root == f or root.startswith(f + os.sep)), None)
    if root == os.sep or inside:
        what = "the whole disk" if root == os.sep else f"a system folder ({inside})"
        raise UsageError(f"--data {data_dir} is {what}, not a photo collection: pass your photo folder "
                         f"(or add --force to scan it anyway)")


def relocate_collection(conn: sqlite3.Connection, root: str, digest: Callable[[str], bytes | None]) -> None:
    """Re-point the DB from its old folder to ``root`` if a sample of its extracted files have
    the stored bytes there (``digest(path)`` hashes a file, None if unreadable); UsageError,
    nothing changed, if not."""
    old = dataset_root(conn)
    if old is None or old == root:
        log.info("--relocate: the DB already indexes %s; scanning as usual", root)
        return
    sample = relocation_sample(conn, RELOCATION_SAMPLE)
    if not sample:
        raise UsageError(f"--relocate: the DB has no extracted files to recognise the collection by; "
                         f"run main.py on it first, or start a new DB for {root}")
    found = sum(digest(os.path.join(root, *f.path.split("/"))) == f.content_hash for f in sample)
    if found < RELOCATION_MATCH * len(sample):
        raise UsageError(f"--relocate: only {found} of {len(sample)} sampled files of the collection are in {root} "
                         f"with the same content: is this the folder that moved from {old}? Nothing was changed")
    relocate_root(conn, root)
    log.info("re-pointed the DB from %s to %s (%d of %d sampled files matched)", old, root, found, len(sample))
