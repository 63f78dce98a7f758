"""What the disk says now about a file the DB describes: a move acts on the disk, not on the DB.

Why: between the scan and ``--move-to`` a file may have been edited, replaced, deleted or
turned into a symlink. Moving a copy whose keeper is no longer the picture the duplicate
finder compared, or a file whose bytes are not the ones it compared, would take away a
picture nobody looked at. So each file is checked against its row (size, mtime and the
content hash of its bytes) right before it is moved, and symlinks are never keepers and
never moved (moving one, or the file it points to, leaves a dangling link).
"""
from __future__ import annotations

import os
import stat

from features.decode import content_hash


def through_symlink(path: str) -> bool:
    """True if ``path`` is a symlink or lies under a symlinked folder."""
    return os.path.realpath(path) != os.path.abspath(path)


def inside(path: str, folder: str) -> bool:
    """True if the real ``path`` is ``folder`` or below it (both real paths)."""
    return os.path.commonpath([path, folder]) == folder


def changed_since_scan(path: str, row) -> str | None:
    """None when ``path`` is still the regular file ``row`` (db.lookup.StoredImage) describes;
    else why not, as words that follow the path in a sentence."""
    if row is None:
        return "has no row in the DB any more (a rescan since)"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "is gone since the scan"
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "is no longer a regular file"
    if (st.st_size, st.st_mtime_ns) != (row.size, row.mtime_ns):
        return "changed since the scan (its size or modification time differ)"
    if row.content_hash is None:
        return "has no content hash in the DB (not extracted)"
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if content_hash(data) != row.content_hash:
        return "changed since the scan (its bytes differ, with the same size and time)"
    return None
