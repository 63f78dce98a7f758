"""Re-pointing a DB at its collection's new folder (a drive mounted elsewhere, a renamed folder).

Why a sample and not a full check: proving that NEW holds the same collection takes a few
dozen files read and hashed; reading all of them would cost what re-extraction saves. The
sample is spread over the sorted paths, so every part of the tree has its say.
"""
import sqlite3
from typing import NamedTuple

from db.meta import set_meta
from db.versions import PATHS, bump


class SampledFile(NamedTuple):
    """An extracted file the relocation checks under the new folder."""

    path: str
    content_hash: bytes


def relocation_sample(conn: sqlite3.Connection, count: int) -> list[SampledFile]:
    """About ``count`` extracted files, evenly spaced in path order."""
    total = conn.execute("SELECT COUNT(*) FROM images WHERE content_hash IS NOT NULL").fetchone()[0]
    step = max(1, total // max(count, 1))
    return [SampledFile(*row) for row in conn.execute(
        "SELECT path, content_hash FROM (SELECT path, content_hash,"
        " ROW_NUMBER() OVER (ORDER BY path) - 1 AS n FROM images WHERE content_hash IS NOT NULL)"
        " WHERE n % ? = 0 LIMIT ?", (step, count))]


def relocate_root(conn: sqlite3.Connection, root: str) -> None:
    """Make ``root`` the indexed folder. The files' ctime and inode are forgotten (a copy or
    another mount gives new ones), so the next scan records them from size and mtime, as for a
    DB of schema 1, instead of reading every file again; the search reloads its paths."""
    with conn:
        set_meta(conn, {"dataset_root": root})
        conn.execute("UPDATE images SET ctime_ns = NULL, inode = NULL")
        bump(conn, PATHS)
