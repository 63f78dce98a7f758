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

import logging
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

import config
from db import database_file
from db.meta import dataset_root, features_stamp
from db.versions import SearchVersions, extraction_running, ok_path_chunks, search_versions
from search.matrix_cache import column_reader, folders
from search.modes import MODES, get_mode
from search.transform import transform_loaded

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0  # during an extraction, look for a newer published cache at most this often

_LOADED: dict = {}  # (db file, mode) -> Loaded
_PATHS: dict = {}  # db file -> (features version, paths version, PathList): shared by the modes
_PUBLISHED: dict = {}  # db file -> monotonic time of this process's last publish (publish_when_due)


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
    transform: str = "none"  # what ``matrix`` holds: search vectors made by search.transform, or unit rows
    mean: np.ndarray = None  # the collection's mean the transform took out (search.transform)
    raw_matrix: np.ndarray = None  # with a transform: the unit rows it was made from (the duplicate finder's)

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
            # Arrays derived from search vectors are named after their transform: one cache folder
            # serves processes with any IR_SEARCH_TRANSFORM.
            name = key if self.transform == "none" else f"{key}-{self.transform}"
            self.prepared[key] = folders.cached_array(self.cache_dir, name, lambda: make(self.matrix))
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
    current = []
    for mode in MODES:
        loaded = _load_current(conn, db_file, mode, need_matrix=False)
        if loaded is None or loaded.cache_dir is None:
            break  # the cache cannot be written now: said once, tried again next time
        current.append(loaded.cache_dir)
    log.debug("published %d matrix caches of %s", len(current), db_file)
    return current


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


def _caching(db_file, versions: SearchVersions) -> bool:
    return bool(config.MATRIX_CACHE and db_file and versions.cacheable)


def _remember(loaded: Loaded) -> Loaded:
    """Keep ``loaded`` for this process's queries, as search vectors (search.transform) where its
    mode has them: only the query path pays for the transform, never a publish."""
    if get_mode(loaded.mode).transformed:
        transform_loaded(loaded, config.SEARCH_TRANSFORM)
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
    newest = folders.newest_published(db_file, mode, stamp, versions.counter)
    if newest is not None and (cached is None or newest[0] > cached.counter):
        opened = _open_published(db_file, mode, newest[1], stamp, dataset_root(conn) or "")
        if opened is not None:
            folders.warn_once(("behind", db_file), logging.INFO,
                       "main.py is extracting into %s: queries use the matrices it published last "
                       "(at most IR_PUBLISH_SECONDS=%d s behind)", db_file, config.PUBLISH_SECONDS)
            cached = _remember(opened)
    if cached is not None:
        cached.checked = now
    return cached


def _open_published(db_file, mode, folder, stamp, root):
    """A published matrix with the paths published beside it; None if either is unusable."""
    opened = folders.open_matrix(folder, mode, stamp)
    if opened is None:
        return None
    ids, matrix, info = opened
    for paths_folder, paths_info in folders.published_paths(db_file, info["features_version"]):
        paths = folders.open_paths(paths_folder, ids)
        if paths is not None:
            loaded = _loaded(mode, info["features_version"], ids, paths, root, matrix, stamp, db_file,
                             info.get("counter", 0), folder)
            loaded.paths_version = paths_info.get("paths_version")
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
        folder = folders.matrix_folder(db_file, mode, versions.features, stamp) if _caching(db_file, versions) else None
        opened = folders.open_matrix(folder, mode, stamp) if folder else None
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
        root = dataset_root(conn) or ""  # moves with the paths version (generator.py --relocate)
    if paths is None:
        return None
    log.debug("reloaded the paths of %s after a move", cached.mode)
    return replace(cached, paths=paths, paths_version=versions.paths, root=root)


def _paths(conn, db_file, versions: SearchVersions, ids):
    """The paths of the rows ``ids`` at ``versions``: from memory, the disk cache or SQLite
    (inside the caller's snapshot); None if SQLite's rows are not ``ids`` (a foreign cache)."""
    held = _PATHS.get(db_file)
    if held is not None and held[:2] == (versions.features, versions.paths) and len(held[2]) == len(ids):
        return held[2]
    folder = folders.paths_folder(db_file, versions) if _caching(db_file, versions) else None
    paths = folders.open_paths(folder, ids) if folder else None
    if paths is None:
        read_ids, ends, blob = [], [], bytearray()
        for chunk in ok_path_chunks(conn):
            chunk_ids, chunk_paths = zip(*chunk)
            read_ids.extend(chunk_ids)
            column_reader.append_paths(chunk_paths, ends, blob)
        read_ids = np.asarray(read_ids, dtype=np.int64)
        if not np.array_equal(read_ids, ids):
            log.warning("the matrix cache of %s does not match the DB; reading it again", db_file)
            return None
        ends = column_reader.path_ends(ends)
        paths = folders.PathList(bytes(blob), ends)
        if folder:
            paths = folders.publish_paths(db_file, folder, versions, read_ids, ends, blob) or paths
    _PATHS[db_file] = (versions.features, versions.paths, paths)
    return paths


def _read_sqlite(conn, db_file, mode, stamp, folder, versions, need_matrix=True):
    """Stream the column out of SQLite (inside the caller's snapshot), into the cache folder
    when there is one: memory stays at one chunk, and the folder is published when complete.

    If the cache cannot be written, one warning, the temporary folder goes, and the matrix
    is read again into memory (same snapshot, same rows), unless ``need_matrix`` is False.
    """
    tmp = folders.start_tmp(db_file, folder) if folder else None
    if folder and tmp is None and not need_matrix:
        return None
    try:
        ids, ends, path_blob, matrix = column_reader.stream_column(conn, mode, stamp, tmp)
        if tmp:
            # The paths first: a query during an extraction takes a matrix only with its paths.
            paths_folder = folders.paths_folder(db_file, versions)
            paths = folders.publish_paths(db_file, paths_folder, versions, ids, ends, path_blob)
            published = (folders.publish_matrix(db_file, tmp, folder, ids, mode, stamp, matrix, versions)
                         if paths else None)
            if published is not None:
                _PATHS[db_file] = (versions.features, versions.paths, paths)
                loaded = _loaded(mode, versions.features, ids, paths, "", published, stamp, "", versions.counter,
                                 folder)
                loaded.paths_version = versions.paths
                return loaded
    except OSError as exc:  # a full disk or a read-only folder while writing the cache
        folders.cache_failed(folder, exc)
    if tmp:
        folders.remove(tmp)
        if not need_matrix:
            return None
        ids, ends, path_blob, matrix = column_reader.stream_column(conn, mode, stamp, None)
    loaded = _loaded(mode, versions.features, ids, folders.PathList(bytes(path_blob), ends), "", matrix, stamp, "",
                     versions.counter, None)
    loaded.paths_version = versions.paths
    return loaded


