"""Annoy index for ``ann_cosine``: built once, by one process, saved next to the DB, never used stale.

The index file and its stamp (features version, rows, dimension, trees, seed, and the index
file's inode, size and mtime) are written under temporary names and renamed into place,
stamp last. Before use the stamp must match the loaded matrix and the file, and sampled
vectors of the index must equal the matrix's rows; anything else (a crash between the two
renames, a damaged or foreign file) is rebuilt rather than trusted. The index follows the
features version (db.versions), so a rescan that adds pending rows or moves files keeps it.

One builder at a time: a process that finds the index stale builds it while holding
``<mode>.build.lock`` beside it; other query processes meanwhile, and every query process
while main.py is extracting (it builds the index when it ends), answer ``ann_cosine`` with
exact cosine and say so once in the log. A disk that refuses the index file costs a warning,
and the process keeps the index it built in memory.
"""
import fcntl
import json
import logging
import os

import numpy as np

import config
from db.versions import extraction_running
from fileio import atomic_write, remove_dead_temporaries, write_with

log = logging.getLogger(__name__)

_OPEN = {}  # index path -> (stamp, AnnoyIndex)
_SAID = set()  # (index path, features version, why): what the log was told already


def index_dir(db_file):
    return os.fspath(db_file) + ".annoy"


def _paths(db_file, mode):
    folder = index_dir(db_file)
    return os.path.join(folder, f"{mode}.ann"), os.path.join(folder, f"{mode}.json")


def _wanted_stamp(loaded, trees, seed):
    return {"features_version": loaded.features_version, "rows": int(len(loaded.matrix)),
            "dim": int(loaded.matrix.shape[1]), "trees": trees, "seed": seed}


def build(matrix, trees=config.ANNOY_TREES, seed=config.ANNOY_SEED):
    """An angular Annoy index over the rows of ``matrix`` (item i = row i)."""
    from annoy import AnnoyIndex  # only ann_cosine needs it

    index = AnnoyIndex(matrix.shape[1], "angular")
    index.set_seed(seed)
    for i, row in enumerate(matrix):
        index.add_item(i, row)
    index.build(trees, n_jobs=-1)
    return index


def get_index(loaded, trees=config.ANNOY_TREES, seed=config.ANNOY_SEED, wait=True):
    """The index for ``loaded`` (a search.store.Loaded), loaded or (re)built as needed.

    With ``wait`` False (queries) None instead of building while another process builds it
    or main.py extracts into the DB; with ``wait`` True (main.py) it waits for another builder.
    """
    ann_path, stamp_path = _paths(loaded.db_file, loaded.mode)
    wanted = _wanted_stamp(loaded, trees, seed)
    cached = _OPEN.get(ann_path)
    if cached is not None and cached[0] == wanted:
        return cached[1]
    index = _load_trusted(ann_path, stamp_path, wanted, loaded.matrix)
    if index is not None:
        _OPEN[ann_path] = (wanted, index)
        return index
    if not wait and extraction_running(loaded.db_file):
        _say_once(ann_path, wanted, "main.py is extracting into this DB; it builds the index when it ends")
        return None
    lock = _build_lock(ann_path, wait)
    if lock is None:
        _say_once(ann_path, wanted, "another process is building the index")
        return None
    try:
        index = _load_trusted(ann_path, stamp_path, wanted, loaded.matrix)  # built meanwhile by the other one?
        if index is None:
            index = _build_and_save(loaded, ann_path, stamp_path, wanted, trees, seed)
    finally:
        if lock is not True:
            lock.close()  # releases the flock
    _OPEN[ann_path] = (wanted, index)
    return index


def _build_lock(ann_path, wait):
    """The open lock file, held; None if another process holds it and ``wait`` is False;
    True when there is no folder to lock in (then nothing can be saved either)."""
    try:
        os.makedirs(os.path.dirname(ann_path), exist_ok=True)
        fh = open(ann_path[:-len(".ann")] + ".build.lock", "a+")
    except OSError:
        return True
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _build_and_save(loaded, ann_path, stamp_path, wanted, trees, seed):
    log.info("building the Annoy index for %s (%d rows, %d trees)", loaded.mode, wanted["rows"], trees)
    index = build(loaded.matrix, trees, seed)
    folder = os.path.dirname(ann_path)
    remove_dead_temporaries(folder, os.path.basename(ann_path))
    identity = []
    try:
        write_with(ann_path, lambda tmp: identity.extend(_save(index, tmp)))
        with atomic_write(stamp_path, "w") as fh:
            json.dump({"index": wanted, "file": identity}, fh)
    except OSError as exc:  # a full disk or a read-only folder: the temporary files are gone already
        log.warning("cannot save the Annoy index in %s (%s); this process keeps it in memory, and the next "
                    "one builds it again (free disk space or make the folder writable)", folder, exc)
    return index


def _say_once(ann_path, wanted, why):
    key = (ann_path, wanted["features_version"], why)
    if key not in _SAID:
        _SAID.add(key)
        log.info("the Annoy index of %s is not ready (%s): ann_cosine answers with exact cosine meanwhile",
                 os.path.basename(ann_path)[:-len(".ann")], why)


def _load_trusted(ann_path, stamp_path, wanted, matrix, samples=8):
    """The saved index if its stamp, its file and a sample of its vectors match, else None."""
    from annoy import AnnoyIndex  # only ann_cosine needs it

    stamp = _read_stamp(stamp_path)
    if not isinstance(stamp, dict) or stamp.get("index") != wanted or stamp.get("file") != _identity(ann_path):
        return None
    index = AnnoyIndex(wanted["dim"], "angular")
    try:
        index.load(ann_path)
    except OSError:
        return None
    rows = np.unique(np.linspace(0, len(matrix) - 1, samples).astype(np.int64)) if len(matrix) else []
    if index.get_n_items() != wanted["rows"] or not all(
            np.array_equal(np.asarray(index.get_item_vector(int(r)), dtype=np.float32), matrix[r]) for r in rows):
        index.unload()
        return None
    return index


def _identity(path):
    """[inode, size, mtime_ns] of a file, or None: tells a file from any later replacement."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def search(loaded, query_row, top_k, exclude=()):
    """(rows, cosine distances) of the approximate ``top_k`` nearest rows to ``query_row``,
    leaving out the rows in ``exclude``; None when the index cannot give min(top_k, rows
    left) of them (then the caller answers with exact cosine)."""
    exclude = np.unique(np.asarray(exclude, dtype=np.int64))
    wanted = min(top_k, len(loaded.matrix) - len(exclude))
    if wanted <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    index = get_index(loaded, wait=False)
    if index is None:
        return None
    unit = query_row.astype(np.float32) / max(float(np.linalg.norm(query_row)), np.finfo(np.float32).tiny)
    rows, distances = query(index, unit, min(top_k + len(exclude), len(loaded.matrix)))
    keep = ~np.isin(rows, exclude)
    rows, distances = rows[keep][:top_k], distances[keep][:top_k]
    if len(rows) < wanted:
        log.info("the Annoy index found %d of the %d results asked for; answering with exact cosine", len(rows), wanted)
        return None
    return rows, distances


def query(index, unit_query, k, search_k=config.ANNOY_SEARCH_K):
    """(rows, cosine distances) of the approximate k nearest rows."""
    rows, angular = index.get_nns_by_vector(unit_query, k, search_k=search_k, include_distances=True)
    # Annoy's angular distance is sqrt(2 (1 - cos)); report 1 - cos like exact cosine.
    return np.asarray(rows, dtype=np.int64), np.square(np.asarray(angular, dtype=np.float64)) / 2.0


def _read_stamp(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _save(index, tmp):
    """Save the index to ``tmp``; returns the identity it keeps once renamed into place."""
    index.save(tmp)
    return _identity(tmp)
