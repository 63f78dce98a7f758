"""The one way this project writes a file: a unique temporary name, fsync, rename.

Why: every file we write (PNG grids, JSON reports, the matrix cache, the ann_cosine index,
thumbnails, projector exports) is either complete or absent. A reader never sees half a
file, two writers never share a temporary name, and on any error (a full disk, a read-only
folder, Ctrl-C) the temporary file is removed and the error re-raised.

Temporary names are ``<name>.tmp<pid>-<random>``: the pid lets a later run remove what a
killed writer left behind (``remove_dead_temporaries``).
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

TMP_MARK = ".tmp"


def temporary_name(path: str | os.PathLike) -> str:
    """A unique temporary name in the folder of ``path`` (so the rename stays atomic)."""
    return f"{os.fspath(path)}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[str]:
    """Yield a temporary path to write to (for libraries that take a file name, such as
    an index's ``save`` or ``np.save``); it is renamed to ``path`` when the block ends without
    an error, and removed otherwise."""
    tmp = temporary_name(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = True, **open_kwargs) -> Iterator[IO]:
    """``with atomic_write(path, "w") as fh: ...``: an open file that replaces ``path`` only
    once it is complete."""
    if not any(flag in mode for flag in "wx"):
        raise ValueError(f"atomic_write opens files for writing; mode must contain 'w' or 'x', got {mode!r}")
    with atomic_path(path, fsync=False) as tmp:
        with open(tmp, mode, **open_kwargs) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())


def write_with(path: str | os.PathLike, write: Callable[[str], object], *, fsync: bool = True) -> None:
    """Call ``write(tmp_path)`` and move the result into place atomically."""
    with atomic_path(path, fsync=fsync) as tmp:
        write(tmp)


def remove_dead_temporaries(folder: str | os.PathLike, name: str) -> int:
    """Delete temporary files of ``name`` in ``folder`` whose writer process is gone; returns the count."""
    prefix = name + TMP_MARK
    removed = 0
    try:
        entries = os.listdir(folder)
    except OSError:
        return 0
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _remove_quietly(os.path.join(folder, entry))
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_file(path: str) -> None:
    if os.path.isdir(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except OSError:
        pass
