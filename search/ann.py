"""Annoy index for ``ann_cosine``: built once, saved next to the DB, never used stale.

The index file and its stamp (generation, rows, dimension, trees, seed) are written under
temporary names and renamed into place, stamp last, so a crash leaves either the old
complete pair or one that fails the stamp check and is rebuilt.
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
    return {"generation": loaded.generation, "rows": int(len(loaded.matrix)),
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
    from annoy import AnnoyIndex

    ann_path, stamp_path = _paths(loaded.db_file, loaded.mode)
    wanted = _wanted_stamp(loaded, trees, seed)
    cached = _OPEN.get(ann_path)
    if cached is not None and cached[0] == wanted:
        return cached[1]
    if _read_stamp(stamp_path) == wanted and os.path.exists(ann_path):
        index = AnnoyIndex(wanted["dim"], "angular")
        index.load(ann_path)
        if index.get_n_items() == wanted["rows"]:
            _OPEN[ann_path] = (wanted, index)
            return index
    log.info("building the Annoy index for %s (%d rows, %d trees)", loaded.mode, wanted["rows"], trees)
    index = build(loaded.matrix, trees, seed)
    os.makedirs(os.path.dirname(ann_path), exist_ok=True)
    _atomic_write(ann_path, index.save)
    _atomic_write(stamp_path, lambda tmp: _write_json(tmp, wanted))
    _OPEN[ann_path] = (wanted, index)
    return index


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
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)
