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
from fileio import atomic_write, remove_dead_temporaries, write_with

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
    remove_dead_temporaries(os.path.dirname(ann_path), os.path.basename(ann_path))
    identity = []
    write_with(ann_path, lambda tmp: identity.extend(_save(index, tmp)))
    with atomic_write(stamp_path, "w") as fh:
        json.dump({"index": wanted, "file": identity}, fh)
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


def search(loaded, query_row, top_k, exclude=()):
    """(rows, cosine distances) of the approximate ``top_k`` nearest rows to ``query_row``,
    leaving out the rows in ``exclude``; None when the index cannot give min(top_k, rows
    left) of them (then the caller answers with exact cosine)."""
    exclude = np.unique(np.asarray(exclude, dtype=np.int64))
    wanted = min(top_k, len(loaded.matrix) - len(exclude))
    if wanted <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    index = get_index(loaded)
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
