"""The matrix cache on disk: folders written completely under a temporary name and renamed
into place, memory-mapped when opened.

Layout, one room per kind of folder, so that nothing reads meaning back out of a name::

    <db>.cache/matrices/<mode>/<name>   a mode's matrix: ids.bin, matrix.bin, stamp.json
    <db>.cache/paths/<name>             the rows' paths: ids.bin, path_ends.bin, paths.bin, info.json
    <db>.cache/tmp/<name>               folders being written (renamed into place when complete)

A folder's name is built from what it holds (features version, settings stamp, cache format)
so that the loader can go straight to it; every other question (which mode, which counter,
which features version, which settings) is answered by its stamp.json or info.json.

search.matrix_cache.loader decides what to load; this module only writes, finds, opens and
tidies the folders. A folder that does not open is ignored. A disk that refuses a write costs
one warning per process (``cache_failed``), never an answer.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence

import numpy as np

from db.versions import SearchVersions
from fileio import read_json, write_with

log = logging.getLogger(__name__)

CACHE_FORMAT = 3  # bump when the layout or the content of a cached array changes (3: one folder per kind)
STALE_TMP_SECONDS = 3600  # unfinished temporary folders older than this are removed
MATRICES, PATHS, TMP = "matrices", "paths", "tmp"  # the rooms of <db>.cache/

_WARNED: set = set()  # warnings given once per process


class PathList(Sequence):
    """The rows' relative paths, decoded one at a time from one UTF-8 blob (no 500k str objects)."""

    def __init__(self, blob, ends):
        self._blob, self._ends = blob, ends

    def __len__(self):
        return len(self._ends)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = range(len(self))[row]  # negative indices, IndexError
        start = int(self._ends[row - 1]) if row else 0
        return bytes(self._blob[start:int(self._ends[row])]).decode("utf-8")


def cache_root(db_file):
    return os.fspath(db_file) + ".cache"


def matrix_folder(db_file, mode, features_version, stamp):
    """Where ``mode``'s matrix for this features version and settings stamp lives."""
    digest = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(cache_root(db_file), MATRICES, mode, f"v{features_version}-s{digest}-f{CACHE_FORMAT}")


def paths_folder(db_file, versions: SearchVersions):
    return os.path.join(cache_root(db_file), PATHS, f"v{versions.features}-p{versions.paths}-f{CACHE_FORMAT}")


def matrix_folders(db_file, mode):
    """{folder: its stamp.json} of every complete matrix folder of ``mode`` (None: unreadable stamp)."""
    parent = os.path.join(cache_root(db_file), MATRICES, mode)
    return {os.path.join(parent, name): _info(os.path.join(parent, name, "stamp.json")) for name in listdir(parent)}


def paths_folders(db_file):
    """{folder: its info.json} of every complete paths folder (None: unreadable info)."""
    parent = os.path.join(cache_root(db_file), PATHS)
    return {os.path.join(parent, name): _info(os.path.join(parent, name, "info.json")) for name in listdir(parent)}


def newest_published(db_file, mode, stamp, max_counter):
    """(counter, folder) of the newest complete matrix cache of ``mode`` made under ``stamp``
    that is not newer than the DB (a folder of another history, e.g. before a backup was
    restored, may be)."""
    best = None
    for folder, info in matrix_folders(db_file, mode).items():
        if info is None or info.get("format") != CACHE_FORMAT or info.get("features_stamp") != stamp:
            continue
        counter = info.get("counter")
        if isinstance(counter, int) and counter <= max_counter and (best is None or counter > best[0]):
            best = (counter, folder)
    return best


def published_paths(db_file, features_version):
    """(folder, info) of the complete paths folders of ``features_version``, the newest paths version first."""
    found = [(folder, info) for folder, info in paths_folders(db_file).items()
             if info is not None and info.get("features_version") == features_version]
    return sorted(found, key=lambda found: -int(found[1].get("paths_counter", -1)))


def _info(path):
    info = read_json(path)
    return info if isinstance(info, dict) else None


def start_tmp(db_file, folder):
    """A fresh temporary folder in the cache's tmp room (same file system as ``folder``, so
    the rename into place is atomic)."""
    root = cache_root(db_file)
    rooms = os.path.join(root, TMP)
    try:
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        os.makedirs(rooms, exist_ok=True)
        _remove_stale_tmp(rooms)
        _remove_old_layout(root)
        tmp = os.path.join(rooms, f"{os.path.basename(folder)}-{os.getpid()}-{time.monotonic_ns()}")
        os.mkdir(tmp)
        return tmp
    except OSError as exc:
        cache_failed(folder, exc)
        return None


def publish_matrix(db_file, tmp, folder, ids, mode, stamp, shape, versions):
    """Write the ids and the stamp, rename the folder into place and map the matrix; None if
    a folder of the same name turned out unusable. OSError if the disk refuses."""
    rows, width, dtype = shape
    write_with(os.path.join(tmp, "ids.bin"), ids.tofile, fsync=False)
    info = {"format": CACHE_FORMAT, "mode": mode, "features_version": versions.features, "counter": versions.counter,
            "rows": rows, "width": width, "dtype": np.dtype(dtype).str, "features_stamp": stamp}
    write_with(os.path.join(tmp, "stamp.json"), lambda path: _write_json(path, info), fsync=False)
    if not _rename_into_place(tmp, folder):
        return None
    _remove_older(db_file, folder, mode, versions.counter)
    opened = open_matrix(folder, mode, stamp)
    return None if opened is None else opened[1]


def publish_paths(db_file, folder, versions, ids, ends, blob):
    """The paths folder of ``versions``, written (if missing) and mapped; None if it cannot be."""
    opened = open_paths(folder, ids)
    if opened is not None:
        return opened
    tmp = start_tmp(db_file, folder)
    if tmp is None:
        return None
    try:
        write_with(os.path.join(tmp, "ids.bin"), ids.tofile, fsync=False)
        write_with(os.path.join(tmp, "path_ends.bin"), ends.tofile, fsync=False)
        write_with(os.path.join(tmp, "paths.bin"), lambda path: _write_bytes(path, blob), fsync=False)
        paths_counter = int(versions.paths.split("-", 1)[0]) if versions.paths[:1].isdigit() else 0
        info = {"format": CACHE_FORMAT, "features_version": versions.features, "paths_version": versions.paths,
                "paths_counter": paths_counter, "rows": len(ids)}
        write_with(os.path.join(tmp, "info.json"), lambda path: _write_json(path, info), fsync=False)
        if not _rename_into_place(tmp, folder):
            return None
    except OSError as exc:
        remove(tmp)
        cache_failed(folder, exc)
        return None
    _remove_unused_paths(db_file, folder)
    return open_paths(folder, ids)


def _rename_into_place(tmp, folder):
    """True if ``folder`` is there now (ours, or the same version published first by another process)."""
    try:
        os.rename(tmp, folder)
        return True
    except OSError:
        if not os.path.isdir(folder):
            raise
    remove(tmp)
    return True


def open_matrix(folder, mode, stamp):
    """(ids, matrix, info) memory-mapped from a published folder; None if absent or not matching."""
    info = read_json(os.path.join(folder, "stamp.json"))
    try:
        rows, width, dtype = info["rows"], info["width"], np.dtype(info["dtype"])
        if info["format"] != CACHE_FORMAT or info["mode"] != mode or info["features_stamp"] != stamp:
            return None
        matrix = _map(os.path.join(folder, "matrix.bin"), dtype, (rows, width))
        ids = _map(os.path.join(folder, "ids.bin"), np.int64, (rows,))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("matrix cache %s not usable: %s", folder, exc)
        return None
    return ids, matrix, info


def open_paths(folder, ids):
    """The mapped paths of a published paths folder, if it holds exactly the rows ``ids``."""
    try:
        held = _map(os.path.join(folder, "ids.bin"), np.int64, (len(ids),))
        if os.path.getsize(os.path.join(folder, "ids.bin")) != 8 * len(ids) or not np.array_equal(held, ids):
            return None
        ends = _map(os.path.join(folder, "path_ends.bin"), np.int64, (len(ids),))
        blob = _map(os.path.join(folder, "paths.bin"), np.uint8, (int(ends[-1]) if len(ids) else 0,))
    except (OSError, ValueError) as exc:
        log.debug("paths cache %s not usable: %s", folder, exc)
        return None
    return PathList(blob, ends)


def _map(path, dtype, shape):
    """A read-only memory map as a plain ndarray (np.memmap's subclass leaks into results)."""
    if np.prod(shape) == 0 or os.path.getsize(path) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.asarray(np.memmap(path, dtype=dtype, mode="r", shape=shape))


def cached_array(folder, key, make):
    """``make()``, saved as ``<key>.npy`` in the cache folder (atomically) and mapped from there."""
    if folder is None:
        return make()
    path = os.path.join(folder, f"{key}.npy")
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        pass
    value = np.asarray(make())
    if not os.path.isdir(folder):  # a newer version replaced it (during an extraction): nothing to add to
        return value
    try:
        write_with(path, lambda tmp: _save_npy(tmp, value))
    except OSError as exc:
        cache_failed(path, exc)
    return value


def cache_failed(where, exc):
    """One warning per process and DB cache (``where``: a path inside it); the caller goes on
    from SQLite or memory."""
    root = os.path.dirname(where) if where else ""
    while root and not root.endswith(".cache") and os.path.dirname(root) != root:
        root = os.path.dirname(root)  # up to <db>.cache, whichever room ``where`` is in
    if not root.endswith(".cache"):
        root = os.path.dirname(where) if where else ""
    warn_once(("cache", root), logging.WARNING,
              "cannot write the matrix cache in %s (%s); queries read SQLite instead, which is slower "
              "(free disk space or make the folder writable)", root, exc)


def warn_once(key, level, message, *args):
    if key not in _WARNED:
        _WARNED.add(key)
        log.log(level, message, *args)


def _save_npy(path, value):
    with open(path, "wb") as fh:  # a file object: np.save would append .npy to a bare temporary name
        np.save(fh, value)


def _write_json(path, value):
    with open(path, "w") as fh:
        json.dump(value, fh)


def _write_bytes(path, blob):
    with open(path, "wb") as fh:
        fh.write(blob)


def listdir(folder):
    try:
        return os.listdir(folder)
    except OSError:
        return []


def remove(path):
    shutil.rmtree(path, ignore_errors=True)


def _remove_older(db_file, folder, mode, counter):
    """Older matrices of the same mode can never be used again: free their disk space. Newer
    ones (published meanwhile by an extraction) stay."""
    for other, info in matrix_folders(db_file, mode).items():
        if other == folder:
            continue
        other_counter = info.get("counter") if info is not None else None
        if not isinstance(other_counter, int) or other_counter <= counter:
            remove(other)
    _remove_unused_paths(db_file)


def _remove_unused_paths(db_file, kept=None):
    """Paths folders no matrix folder refers to any more, and older paths of ``kept``'s features version."""
    in_use = set()
    for mode in listdir(os.path.join(cache_root(db_file), MATRICES)):
        in_use.update(info.get("features_version") for info in matrix_folders(db_file, mode).values() if info)
    paths = paths_folders(db_file)
    kept_features = (paths.get(kept) or {}).get("features_version") if kept else None
    for folder, info in paths.items():
        if folder == kept:
            continue
        features = info.get("features_version") if info is not None else None
        if features is None or features not in in_use or features == kept_features:
            remove(folder)


def _remove_stale_tmp(rooms):
    for other in listdir(rooms):
        path = os.path.join(rooms, other)
        try:
            if time.time() - os.path.getmtime(path) > STALE_TMP_SECONDS:
                remove(path)
        except OSError:
            pass


def _remove_old_layout(root):
    """Folders of cache formats before 3 sat directly in <db>.cache/: never used again."""
    for other in listdir(root):
        if other not in (MATRICES, PATHS, TMP):
            remove(os.path.join(root, other))
