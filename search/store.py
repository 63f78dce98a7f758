"""Feature matrices loaded once per process, and kept memory-mapped in a cache next to the DB.

Why a cache on disk: reading 500k blobs out of SQLite takes seconds and twice the matrix
in memory; a raw file memory-maps in a millisecond and is shared by every query process
through the page cache.

What invalidates what (db.versions): a matrix is named after the DB's *features version*
(the ok rows and their features), its settings stamp and the cache format; the paths are
kept apart, named after the features and the *paths version*. So a rescan that only adds
pending rows reloads nothing, and a move reloads the paths only. Everything of one load is
read in one SQLite snapshot, and a cache folder is written under a temporary name and
renamed into place only when complete, so its name always tells its content.

During an extraction by another process (it holds ``<db>.lock``) the features version
moves with every batch. Queries then keep what they have, or take the newest cache folder
the extraction published (``publish``, every config.PUBLISH_SECONDS and at the end):
consistent, possibly that far behind, and no SQLite read per query.

The cache is a convenience: if it cannot be written (a full disk, a read-only folder) the
query is answered from SQLite with one warning, and no temporary file is left behind.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

import config
from db import database_file
from db.codec import blobs_to_bits, blobs_to_matrix
from db.features import column_chunks
from db.meta import dataset_root, features_stamp
from db.versions import SearchVersions, extraction_running, ok_path_chunks, search_versions
from fileio import write_with
from search.metrics import unit_rows
from search.modes import MODES, get_mode

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when the layout or the content of a cached array changes
STALE_TMP_SECONDS = 3600  # unfinished temporary folders older than this are removed
RECHECK_SECONDS = 1.0  # during an extraction, look for a newer published cache at most this often
PATHS_PREFIX = "paths-v"  # cache folders of paths; every other folder is a mode's matrix

_LOADED: dict = {}  # (db file, mode) -> Loaded
_PATHS: dict = {}  # db file -> (features version, paths version, PathList): shared by the modes
_WARNED: set = set()  # warnings given once per process
_PUBLISHED: dict = {}  # db file -> monotonic time of this process's last publish (publish_when_due)


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
    features_version: str
    ids: np.ndarray
    paths: Sequence
    root: str
    matrix: np.ndarray
    stamp: dict
    db_file: str
    prepared: dict = field(default_factory=dict)
    paths_version: str = None
    counter: int = 0  # orders features versions (db.versions)
    cache_dir: str = None  # the published cache folder this came from, if any
    checked: float = 0.0  # during an extraction: when we last looked for a newer published cache

    def row_of_id(self, image_id):
        row = int(np.searchsorted(self.ids, image_id))
        return row if row < len(self.ids) and self.ids[row] == image_id else None

    def absolute_path(self, row):
        return os.path.join(self.root, self.paths[row])

    def prepare(self, key, make):
        """A derived array (unit rows, norms, square roots) computed once per features version.

        With a disk cache it is saved there too, so the next process maps it instead.
        """
        if key not in self.prepared:
            self.prepared[key] = _cached_array(self.cache_dir, key, lambda: make(self.matrix))
        return self.prepared[key]


def load(conn, mode: str) -> Loaded:
    """``mode``'s matrix as queries should use it now.

    From memory while the DB's features version is unchanged (after a move only the paths
    are reloaded); during an extraction by another process, what this process has or the
    newest published cache; else the disk cache of the current version, or SQLite (and
    that cache written).
    """
    get_mode(mode)  # ValueError listing the modes
    db_file = database_file(conn)
    versions = search_versions(conn)
    key = (db_file, mode)
    cached = _LOADED.get(key)
    if cached is not None and cached.features_version == versions.features:
        if cached.paths_version != versions.paths:
            cached = _with_current_paths(conn, cached)
            if cached is None:  # the features moved meanwhile
                return _remember(_load_current(conn, db_file, mode))
            _LOADED[key] = cached
        return cached
    if _caching(db_file, versions) and extraction_running(db_file):
        behind = _during_extraction(conn, db_file, mode, cached, versions)
        if behind is not None:
            return behind
    return _remember(_load_current(conn, db_file, mode))


def publish(conn) -> list[str]:
    """Bring every mode's disk cache up to the DB's current state, for the query processes.

    The extraction calls this every config.PUBLISH_SECONDS and when it ends; queries during
    an extraction use what was published last. Returns the cache folders now current (none
    when the cache is off or cannot be written); the matrices are not kept in this process.
    """
    db_file = database_file(conn)
    if not _caching(db_file, search_versions(conn)):
        return []
    folders = []
    for mode in MODES:
        loaded = _load_current(conn, db_file, mode, need_matrix=False)
        if loaded is None or loaded.cache_dir is None:
            break  # the cache cannot be written now: said once, tried again next time
        folders.append(loaded.cache_dir)
    log.debug("published %d matrix caches of %s", len(folders), db_file)
    return folders


def publish_when_due(conn) -> bool:
    """``publish(conn)`` when config.PUBLISH_SECONDS have passed since this process first
    asked, or last published, for this DB: the extraction loop calls it after every batch."""
    db_file = database_file(conn)
    now = time.monotonic()
    last = _PUBLISHED.setdefault(db_file, now)
    if now - last < config.PUBLISH_SECONDS:
        return False
    publish(conn)
    _PUBLISHED[db_file] = time.monotonic()
    return True


def forget():
    """Drop every loaded matrix (tests, or to free memory)."""
    _LOADED.clear()
    _PATHS.clear()


def cache_root(db_file):
    return os.fspath(db_file) + ".cache"


def matrix_folder(db_file, mode, features_version, stamp):
    """Where ``mode``'s matrix for this features version and settings stamp lives."""
    digest = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(cache_root(db_file), f"{mode}-v{features_version}-s{digest}-f{CACHE_FORMAT}")


def paths_folder(db_file, versions: SearchVersions):
    return os.path.join(cache_root(db_file), f"{PATHS_PREFIX}{versions.features}-p{versions.paths}-f{CACHE_FORMAT}")


def _caching(db_file, versions: SearchVersions) -> bool:
    return bool(config.MATRIX_CACHE and db_file and versions.cacheable)


def _remember(loaded: Loaded) -> Loaded:
    _LOADED[(loaded.db_file, loaded.mode)] = loaded
    return loaded


@contextmanager
def _snapshot(conn):
    """One read transaction: the versions, the stamp and the rows read inside it belong together."""
    if conn.in_transaction:  # the caller's transaction pins the snapshot already
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")  # read only: ends the snapshot


def _during_extraction(conn, db_file, mode, cached, versions):
    """What this process has, or a newer published cache; None if there is neither."""
    now = time.monotonic()
    if cached is not None and now - cached.checked < RECHECK_SECONDS:
        return cached
    stamp = features_stamp(conn) or {}
    newest = _newest_published(db_file, mode, stamp, versions.counter)
    if newest is not None and (cached is None or newest[0] > cached.counter):
        opened = _open_published(db_file, mode, newest[1], stamp, dataset_root(conn) or "")
        if opened is not None:
            _warn_once(("behind", db_file), logging.INFO,
                       "main.py is extracting into %s: queries use the matrices it published last "
                       "(at most IR_PUBLISH_SECONDS=%d s behind)", db_file, config.PUBLISH_SECONDS)
            cached = _remember(opened)
    if cached is not None:
        cached.checked = now
    return cached


def _newest_published(db_file, mode, stamp, max_counter):
    """(counter, folder) of the newest complete matrix cache of ``mode`` that is not newer
    than the DB (a folder of another history, e.g. before a backup was restored, may be)."""
    suffix = os.path.basename(matrix_folder(db_file, mode, "", stamp)).split("-v", 1)[1]  # "-s<digest>-f<format>"
    best = None
    for name in _listdir(cache_root(db_file)):
        if name.startswith(f"{mode}-v") and name.endswith(suffix) and ".tmp" not in name:
            info = _read_json(os.path.join(cache_root(db_file), name, "stamp.json"))
            counter = info.get("counter") if isinstance(info, dict) else None
            if isinstance(counter, int) and counter <= max_counter and (best is None or counter > best[0]):
                best = (counter, os.path.join(cache_root(db_file), name))
    return best


def _open_published(db_file, mode, folder, stamp, root):
    """A published matrix with the paths published beside it; None if either is unusable."""
    opened = _open_matrix(folder, mode, stamp)
    if opened is None:
        return None
    ids, matrix, info = opened
    prefix = f"{PATHS_PREFIX}{info['features_version']}-p"
    candidates = [(_read_json(os.path.join(cache_root(db_file), name, "info.json")) or {}, name)
                  for name in _listdir(cache_root(db_file)) if name.startswith(prefix) and ".tmp" not in name]
    for info_paths, name in sorted(candidates, key=lambda c: -int(c[0].get("paths_counter", -1))):
        paths = _open_paths(os.path.join(cache_root(db_file), name), ids)
        if paths is not None:
            loaded = _loaded(mode, info["features_version"], ids, paths, root, matrix, stamp, db_file,
                             info.get("counter", 0), folder)
            loaded.paths_version = info_paths.get("paths_version")
            return loaded
    return None


def _load_current(conn, db_file, mode, need_matrix=True):
    """The DB's current state of ``mode``, all of it from one snapshot; the disk cache is used
    or written when it can be. With ``need_matrix`` False (publishing) None instead of a
    matrix in memory when the cache cannot be written."""
    with _snapshot(conn):
        versions = search_versions(conn)
        stamp = features_stamp(conn) or {}
        root = dataset_root(conn) or ""
        folder = matrix_folder(db_file, mode, versions.features, stamp) if _caching(db_file, versions) else None
        opened = _open_matrix(folder, mode, stamp) if folder else None
        if opened is not None:
            ids, matrix, _ = opened
            paths = _paths(conn, db_file, versions, ids)
            if paths is not None:
                loaded = _loaded(mode, versions.features, ids, paths, root, matrix, stamp, db_file,
                                 versions.counter, folder)
                loaded.paths_version = versions.paths
                return loaded
        loaded = _read_sqlite(conn, db_file, mode, stamp, folder, versions, need_matrix)
        if loaded is not None:
            loaded.root, loaded.db_file = root, db_file
        return loaded


def _loaded(mode, features_version, ids, paths, root, matrix, stamp, db_file, counter, cache_dir):
    loaded = Loaded(mode, features_version, ids, paths, root, matrix, stamp, db_file, counter=counter,
                    cache_dir=cache_dir)
    if get_mode(mode).unit_rows:
        loaded.prepared["unit"] = loaded.matrix  # loaded as unit rows already
    log.debug("loaded %s: %s rows at features version %s (%s)", mode, matrix.shape, features_version,
              "cache" if cache_dir else "SQLite")
    return loaded


def _with_current_paths(conn, cached: Loaded):
    """``cached`` with the paths of the DB's current paths version (same matrix object), or
    None if its features version moved meanwhile."""
    with _snapshot(conn):
        versions = search_versions(conn)
        if versions.features != cached.features_version:
            return None
        paths = _paths(conn, cached.db_file, versions, cached.ids)
    if paths is None:
        return None
    log.debug("reloaded the paths of %s after a move", cached.mode)
    return replace(cached, paths=paths, paths_version=versions.paths)


def _paths(conn, db_file, versions: SearchVersions, ids):
    """The paths of the rows ``ids`` at ``versions``: from memory, the disk cache or SQLite
    (inside the caller's snapshot); None if SQLite's rows are not ``ids`` (a foreign cache)."""
    held = _PATHS.get(db_file)
    if held is not None and held[:2] == (versions.features, versions.paths) and len(held[2]) == len(ids):
        return held[2]
    folder = paths_folder(db_file, versions) if _caching(db_file, versions) else None
    paths = _open_paths(folder, ids) if folder else None
    if paths is None:
        read_ids, ends, blob = [], [], bytearray()
        for chunk in ok_path_chunks(conn):
            chunk_ids, chunk_paths = zip(*chunk)
            read_ids.extend(chunk_ids)
            _append_paths(chunk_paths, ends, blob)
        read_ids = np.asarray(read_ids, dtype=np.int64)
        if not np.array_equal(read_ids, ids):
            log.warning("the matrix cache of %s does not match the DB; reading it again", db_file)
            return None
        ends = _ends(ends)
        paths = PathList(bytes(blob), ends)
        if folder:
            paths = _publish_paths(folder, versions, read_ids, ends, blob) or paths
    _PATHS[db_file] = (versions.features, versions.paths, paths)
    return paths


def _append_paths(chunk_paths, lengths, blob):
    encoded = [path.encode("utf-8") for path in chunk_paths]
    lengths.extend(map(len, encoded))
    blob += b"".join(encoded)


def _ends(lengths):
    return np.cumsum(np.asarray(lengths, dtype=np.int64))


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


def _read_sqlite(conn, db_file, mode, stamp, folder, versions, need_matrix=True):
    """Stream the column out of SQLite (inside the caller's snapshot), into the cache folder
    when there is one: memory stays at one chunk, and the folder is published when complete.

    If the cache cannot be written, one warning, the temporary folder goes, and the matrix
    is read again into memory (same snapshot, same rows), unless ``need_matrix`` is False.
    """
    tmp = _start_tmp(folder) if folder else None
    if folder and tmp is None and not need_matrix:
        return None
    try:
        ids, ends, path_blob, matrix = _stream(conn, mode, stamp, tmp)
        if tmp:
            # The paths first: a query during an extraction takes a matrix only with its paths.
            paths = _publish_paths(paths_folder(db_file, versions), versions, ids, ends, path_blob)
            published = _publish_matrix(tmp, folder, ids, mode, stamp, matrix, versions) if paths else None
            if published is not None:
                _PATHS[db_file] = (versions.features, versions.paths, paths)
                loaded = _loaded(mode, versions.features, ids, paths, "", published, stamp, "", versions.counter,
                                 folder)
                loaded.paths_version = versions.paths
                return loaded
    except OSError as exc:  # a full disk or a read-only folder while writing the cache
        _cache_failed(folder, exc)
    if tmp:
        _remove(tmp)
        if not need_matrix:
            return None
        ids, ends, path_blob, matrix = _stream(conn, mode, stamp, None)
    loaded = _loaded(mode, versions.features, ids, PathList(bytes(path_blob), ends), "", matrix, stamp, "",
                     versions.counter, None)
    loaded.paths_version = versions.paths
    return loaded


def _stream(conn, mode, stamp, tmp):
    """(ids, path ends, path bytes, matrix or its (rows, width, dtype) when written to ``tmp``)."""
    (width,), dtype = _row_shape(mode, stamp)
    ids, lengths, path_blob, parts = [], [], bytearray(), []
    matrix_file = open(os.path.join(tmp, "matrix.bin"), "wb") if tmp else None
    try:
        for chunk in column_chunks(conn, get_mode(mode).column):
            chunk_ids, chunk_paths, blobs = zip(*chunk)
            ids.extend(chunk_ids)
            _append_paths(chunk_paths, lengths, path_blob)
            rows = _to_rows(mode, blobs, width)
            if matrix_file:
                matrix_file.write(memoryview(np.ascontiguousarray(rows)).cast("B"))
            else:
                parts.append(rows)
    finally:
        if matrix_file:
            matrix_file.close()
    ids = np.asarray(ids, dtype=np.int64)
    if matrix_file:
        matrix = (len(ids), width, dtype)
    else:
        matrix = np.concatenate(parts) if parts else np.zeros((0, width), dtype=dtype)
    return ids, _ends(lengths), path_blob, matrix


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
        _cache_failed(folder, exc)
        return None


def _publish_matrix(tmp, folder, ids, mode, stamp, shape, versions):
    """Write the ids and the stamp, rename the folder into place and map the matrix; None if
    a folder of the same name turned out unusable. OSError if the disk refuses."""
    rows, width, dtype = shape
    write_with(os.path.join(tmp, "ids.bin"), ids.tofile, fsync=False)
    info = {"format": CACHE_FORMAT, "mode": mode, "features_version": versions.features, "counter": versions.counter,
            "rows": rows, "width": width, "dtype": np.dtype(dtype).str, "features_stamp": stamp}
    write_with(os.path.join(tmp, "stamp.json"), lambda path: _write_json(path, info), fsync=False)
    if not _rename_into_place(tmp, folder):
        return None
    _remove_older(folder, mode, versions.counter)
    opened = _open_matrix(folder, mode, stamp)
    return None if opened is None else opened[1]


def _publish_paths(folder, versions, ids, ends, blob):
    """The paths folder of ``versions``, written (if missing) and mapped; None if it cannot be."""
    opened = _open_paths(folder, ids)
    if opened is not None:
        return opened
    tmp = _start_tmp(folder)
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
        _remove(tmp)
        _cache_failed(folder, exc)
        return None
    _remove_unused_paths(folder)
    return _open_paths(folder, ids)


def _rename_into_place(tmp, folder):
    """True if ``folder`` is there now (ours, or the same version published first by another process)."""
    try:
        os.rename(tmp, folder)
        return True
    except OSError:
        if not os.path.isdir(folder):
            raise
    _remove(tmp)
    return True


def _open_matrix(folder, mode, stamp):
    """(ids, matrix, info) memory-mapped from a published folder; None if absent or not matching."""
    info = _read_json(os.path.join(folder, "stamp.json"))
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


def _open_paths(folder, ids):
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
    if not os.path.isdir(folder):  # a newer version replaced it (during an extraction): nothing to add to
        return value
    try:
        write_with(path, lambda tmp: _save_npy(tmp, value))
    except OSError as exc:
        _cache_failed(path, exc)
    return value


def _cache_failed(where, exc):
    """One warning per process and DB cache; the caller goes on from SQLite or memory."""
    root = os.path.dirname(where) if where else ""
    _warn_once(("cache", root), logging.WARNING,
               "cannot write the matrix cache in %s (%s); queries read SQLite instead, which is slower "
               "(free disk space or make the folder writable)", root, exc)


def _warn_once(key, level, message, *args):
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


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _listdir(folder):
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _remove(path):
    shutil.rmtree(path, ignore_errors=True)


def _remove_older(folder, mode, counter):
    """Older matrices of the same mode can never be used again: free their disk space. Newer
    ones (published meanwhile by an extraction) stay."""
    parent, name = os.path.split(folder)
    for other in _listdir(parent):
        if other == name or not other.startswith(f"{mode}-") or ".tmp" in other:
            continue
        info = _read_json(os.path.join(parent, other, "stamp.json"))
        other_counter = info.get("counter") if isinstance(info, dict) else None
        if not isinstance(other_counter, int) or other_counter <= counter:
            _remove(os.path.join(parent, other))
    _remove_unused_paths(None, parent)


def _remove_unused_paths(kept, parent=None):
    """Paths folders no matrix folder refers to any more, and older paths of ``kept``'s features version."""
    parent = parent or os.path.dirname(kept)
    names = _listdir(parent)
    in_use = set()
    for name in names:
        if not name.startswith(PATHS_PREFIX) and ".tmp" not in name and "-v" in name:
            in_use.add(name.split("-v", 1)[1].rsplit("-s", 1)[0])
    kept_name = os.path.basename(kept) if kept else None
    kept_features = kept_name[len(PATHS_PREFIX):].rsplit("-p", 1)[0] if kept_name else None
    for name in names:
        if not name.startswith(PATHS_PREFIX) or ".tmp" in name or name == kept_name:
            continue
        features = name[len(PATHS_PREFIX):].rsplit("-p", 1)[0]
        if features not in in_use or features == kept_features:
            _remove(os.path.join(parent, name))


def _remove_stale_tmp(parent):
    for other in _listdir(parent):
        path = os.path.join(parent, other)
        try:
            if ".tmp" in other and time.time() - os.path.getmtime(path) > STALE_TMP_SECONDS:
                _remove(path)
        except OSError:
            pass
