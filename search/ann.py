"""Annoy index for ``ann_cosine``: built once, saved next to the DB, never used stale.

The index file and its stamp (DB version, rows, dimension, trees, seed, and the index
file's inode, size and mtime) are written under temporary names and renamed into place,
stamp last. Before use the stamp must match the DB and the file, and sampled vectors of the
index must equal the DB's rows; anything else (a crash between the two renames, a damaged
or foreign file, two builders racing) is rebuilt rather than trusted.
"""
import json
import logging
import os

import numpy as np

import config

log = logging.getLogger(__name__)

_OPEN = {}  # index path -> (stamp, AnnoyIndex)


def index_dir(db_file):
    return os.fspath(db_file) + ".annoy"


def _paths(db_file, mode):
    folder = index_dir(db_file)
    return os.path.join(folder, f"{mode}.ann"), os.path.join(folder, f"{mode}.json")


def _wanted_stamp(loaded, trees, seed):
    return {"generation": loaded.generation, "token": getattr(loaded, "token", None), "rows": int(len(loaded.matrix)),
            "dim": int(loaded.matrix.shape[1]), "trees": trees, "seed": seed}


def build(matrix, trees=config.ANNOY_TREES, seed=config.ANNOY_SEED):
    """An angular Annoy index over the rows of ``matrix`` (item i = row i)."""
    from annoy import AnnoyIndex

    index = AnnoyIndex(matrix.shape[1], "angular")
    index.set_seed(seed)
    for i, row in enumerate(matrix):
        index.add_item(i, row)
    index.build(trees, n_jobs=-1)
    return index


def get_index(loaded, trees=config.ANNOY_TREES, seed=config.ANNOY_SEED):
    """The index for ``loaded`` (a search.store.Loaded), loading or (re)building it as needed."""
    ann_path, stamp_path = _paths(loaded.db_file, loaded.mode)
    wanted = _wanted_stamp(loaded, trees, seed)
    cached = _OPEN.get(ann_path)
    if cached is not None and cached[0] == wanted:
        return cached[1]
    index = _load_trusted(ann_path, stamp_path, wanted, loaded.matrix)
    if index is not None:
        _OPEN[ann_path] = (wanted, index)
        return index
    log.info("building the Annoy index for %s (%d rows, %d trees)", loaded.mode, wanted["rows"], trees)
    index = build(loaded.matrix, trees, seed)
    os.makedirs(os.path.dirname(ann_path), exist_ok=True)
    _remove_dead_tmp(ann_path)
    identity = _atomic_write(ann_path, index.save)
    _atomic_write(stamp_path, lambda tmp: _write_json(tmp, {"index": wanted, "file": identity}))
    _OPEN[ann_path] = (wanted, index)
    return index


def _load_trusted(ann_path, stamp_path, wanted, matrix, samples=8):
    """The saved index if its stamp, its file and a sample of its vectors match, else None."""
    from annoy import AnnoyIndex

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


def _remove_dead_tmp(path):
    """Delete temporary files a killed build left behind (their writer's pid is gone)."""
    folder, prefix = os.path.dirname(path), os.path.basename(path) + ".tmp"
    for name in os.listdir(folder):
        pid = name[len(prefix):]
        if name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            os.remove(os.path.join(folder, name))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def _write_json(path, data):
    with open(path, "w") as fh:
        json.dump(data, fh)


def _atomic_write(path, write):
    """Write through a temporary name; returns the identity the file has once in place."""
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    identity = _identity(tmp)
    os.replace(tmp, path)
    return identity
