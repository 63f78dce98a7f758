"""Feature matrices loaded once per process, and kept memory-mapped in a cache next to the DB.

Why a cache on disk: reading 500k blobs out of SQLite takes seconds and twice the matrix
in memory; a raw file memory-maps in a millisecond and is shared by every query process
through the page cache. Why it can never be stale: its folder is named after the DB's
version (generation + the random token every write sets, see db.meta.version), it is
written under a temporary name and renamed into place only when complete and only when
the DB did not change while it was read. A DB without a token is loaded from SQLite only.
"""
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

import config
from db import database_file
from db.codec import blobs_to_bits, blobs_to_matrix
from db.features import column_chunks
from db.meta import dataset_root, features_stamp, version
from fileio import write_with
from search.metrics import unit_rows
from search.modes import get_mode

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout or the content of a cached array changes
STALE_TMP_SECONDS = 3600  # unfinished temporary folders older than this are removed

_LOADED = {}  # (db file, mode) -> Loaded


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


@dataclass
class Loaded:
    """One mode's matrix, the ids and paths of its rows, and per-metric prepared copies."""

    mode: str
    generation: int
    ids: np.ndarray
    paths: Sequence
    root: str
    matrix: np.ndarray
    stamp: dict
    db_file: str
    prepared: dict = field(default_factory=dict)
    token: str = None
    cache_dir: str = None  # the published cache folder this came from, if any

    def row_of_id(self, image_id):
        row = int(np.searchsorted(self.ids, image_id))
        return row if row < len(self.ids) and self.ids[row] == image_id else None

    def absolute_path(self, row):
        return os.path.join(self.root, self.paths[row])

    def prepare(self, key, make):
        """A derived array (unit rows, norms, square roots) computed once per DB version.

        With a disk cache it is saved there too, so the next process maps it instead.
        """
        if key not in self.prepared:
            self.prepared[key] = _cached_array(self.cache_dir, key, lambda: make(self.matrix))
        return self.prepared[key]


def load(conn, mode):
    """The current matrix for ``mode``: from memory or the disk cache if the DB has not
    changed, else read from SQLite (and the disk cache written)."""
    db_file = database_file(conn)
    current, token = version(conn)
    cached = _LOADED.get((db_file, mode))
    if cached is not None and (cached.generation, cached.token) == (current, token):
        return cached
    stamp = features_stamp(conn) or {}
    root = dataset_root(conn) or ""
    folder = cache_folder(db_file, mode, current, token)
    loaded = _open_cached(folder, mode, stamp) if folder else None
    if loaded is None:
        loaded = _read_sqlite(conn, mode, stamp, folder, (current, token))
    loaded.root, loaded.db_file = root, db_file
    if get_mode(mode).unit_rows:
        loaded.prepared["unit"] = loaded.matrix  # loaded as unit rows already
    log.debug("loaded %s: %s rows at generation %d (%s)", mode, loaded.matrix.shape, current,
              "cache" if loaded.cache_dir else "SQLite")
    _LOADED[(db_file, mode)] = loaded
    return loaded


def forget():
    """Drop every loaded matrix (tests, or to free memory)."""
    _LOADED.clear()


def cache_root(db_file):
    return os.fspath(db_file) + ".cache"


def cache_folder(db_file, mode, generation, token):
    """Where ``mode``'s cache for this exact DB version lives, or None if it may not have one."""
    if not config.MATRIX_CACHE or not db_file or token is None:
        return None
    return os.path.join(cache_root(db_file), f"{mode}-g{generation}-{token}-f{CACHE_FORMAT}")


def _row_shape(mode, stamp):
    """(width,), dtype of one row of ``mode`` under the DB's stamp (width 0 before any extraction)."""
    spec = get_mode(mode)
    return ((spec.width(stamp) if stamp else 0),), np.dtype(spec.dtype).type


def _to_rows(mode, blobs, width):
    """Blobs of one chunk -> rows as the search uses them (decoded by db.codec; unit rows where the mode wants them)."""
    spec = get_mode(mode)
    if spec.is_hash:
        return blobs_to_bits(list(blobs), width)
    rows = blobs_to_matrix(list(blobs), width)
    return unit_rows(rows) if spec.unit_rows else rows


def _read_sqlite(conn, mode, stamp, folder, db_version):
    """Stream the column out of SQLite, into the cache folder when there is one.

    Memory stays at the matrix plus one chunk; the cache is published only if the DB's
    version is the same after the read as before it (no write slipped in between).
    """
    (width,), dtype = _row_shape(mode, stamp)
    column = get_mode(mode).column
    tmp = _start_tmp(folder) if folder else None
    ids, lengths, path_blob, parts = [], [], bytearray(), []
    matrix_file = open(os.path.join(tmp, "matrix.bin"), "wb") if tmp else None
    try:
        for chunk in column_chunks(conn, column):
            chunk_ids, chunk_paths, blobs = zip(*chunk)
            ids.extend(chunk_ids)
            encoded = [path.encode("utf-8") for path in chunk_paths]
            lengths.extend(map(len, encoded))
            path_blob += b"".join(encoded)
            rows = _to_rows(mode, blobs, width)
            if matrix_file:
                matrix_file.write(memoryview(np.ascontiguousarray(rows)).cast("B"))
            else:
                parts.append(rows)
    finally:
        if matrix_file:
            matrix_file.close()
    ids = np.asarray(ids, dtype=np.int64)
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    if tmp and version(conn) == db_version and _publish(tmp, folder, ids, ends, path_blob, mode, stamp, width,
                                                           dtype, db_version):
        opened = _open_cached(folder, mode, stamp)
        if opened is not None:
            return opened
        return _read_sqlite(conn, mode, stamp, None, db_version)  # a broken folder by someone else
    if tmp:
        matrix = np.fromfile(os.path.join(tmp, "matrix.bin"), dtype=dtype).reshape(len(ids), width)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        matrix = np.concatenate(parts) if parts else np.zeros((0, width), dtype=dtype)
    return Loaded(mode, db_version[0], ids, PathList(bytes(path_blob), ends), "", matrix, stamp, "",
                  token=db_version[1])


def _start_tmp(folder):
    """A fresh temporary folder beside ``folder`` (same file system, so rename is atomic)."""
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_stale_tmp(parent)
        tmp = f"{folder}.tmp{os.getpid()}-{time.monotonic_ns()}"
        os.mkdir(tmp)
        return tmp
    except OSError as exc:
        log.warning("no matrix cache (%s); loading from SQLite every time", exc)
        return None


def _publish(tmp, folder, ids, ends, path_blob, mode, stamp, width, dtype, db_version):
    """Write the small arrays and the stamp and rename the folder into place; True if the
    folder is there now (ours, or one another process published first)."""
    try:
        ids.tofile(os.path.join(tmp, "ids.bin"))
        ends.tofile(os.path.join(tmp, "path_ends.bin"))
        with open(os.path.join(tmp, "paths.bin"), "wb") as fh:
            fh.write(path_blob)
        info = {"format": CACHE_FORMAT, "mode": mode, "generation": db_version[0], "token": db_version[1],
                "rows": len(ids), "width": width, "dtype": np.dtype(dtype).str, "features_stamp": stamp}
        with open(os.path.join(tmp, "stamp.json"), "w") as fh:
            json.dump(info, fh)
        os.rename(tmp, folder)
    except OSError as exc:
        # Another process published the same version first (ENOTEMPTY), or the disk is full.
        log.debug("matrix cache %s not published: %s", folder, exc)
        if not os.path.isdir(folder):
            return False
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_older_versions(folder)
    return True


def _open_cached(folder, mode, stamp):
    """Memory-map a published cache folder; None if it is absent or does not match."""
    try:
        with open(os.path.join(folder, "stamp.json")) as fh:
            info = json.load(fh)
        rows, width, dtype = info["rows"], info["width"], np.dtype(info["dtype"])
        if info["format"] != CACHE_FORMAT or info["mode"] != mode or info["features_stamp"] != stamp:
            return None
        matrix = _map(os.path.join(folder, "matrix.bin"), dtype, (rows, width))
        ids = _map(os.path.join(folder, "ids.bin"), np.int64, (rows,))
        ends = _map(os.path.join(folder, "path_ends.bin"), np.int64, (rows,))
        paths = PathList(_map(os.path.join(folder, "paths.bin"), np.uint8, (int(ends[-1]) if rows else 0,)), ends)
    except (OSError, ValueError, KeyError) as exc:
        log.debug("matrix cache %s not usable: %s", folder, exc)
        return None
    return Loaded(mode, info["generation"], ids, paths, "", matrix, stamp, "", token=info["token"], cache_dir=folder)


def _map(path, dtype, shape):
    """A read-only memory map as a plain ndarray (np.memmap's subclass leaks into results)."""
    if np.prod(shape) == 0 or os.path.getsize(path) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.asarray(np.memmap(path, dtype=dtype, mode="r", shape=shape))


def _cached_array(folder, key, make):
    """``make()``, saved as ``<key>.npy`` in the cache folder (atomically) and mapped from there."""
    if folder is None:
        return make()
    path = os.path.join(folder, f"{key}.npy")
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        pass
    value = np.asarray(make())
    try:
        write_with(path, lambda tmp: _save_npy(tmp, value))
    except OSError as exc:
        log.warning("prepared array %s not cached (%s); it is recomputed in every process", path, exc)
    return value


def _save_npy(path, value):
    with open(path, "wb") as fh:  # a file object: np.save would append .npy to a bare temporary name
        np.save(fh, value)


def _remove_older_versions(folder):
    """Other versions of the same mode can never be used again: free their disk space."""
    parent, name = os.path.split(folder)
    mode = name.split("-g", 1)[0]
    for other in os.listdir(parent):
        if other != name and other.startswith(f"{mode}-g") and ".tmp" not in other:
            shutil.rmtree(os.path.join(parent, other), ignore_errors=True)


def _remove_stale_tmp(parent):
    for other in os.listdir(parent):
        path = os.path.join(parent, other)
        if ".tmp" in other and time.time() - os.path.getmtime(path) > STALE_TMP_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
