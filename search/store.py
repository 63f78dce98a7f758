"""Feature matrices loaded from SQLite once per process and reused while the DB is unchanged.

The DB's generation (bumped by every write) tells when a loaded matrix is stale; it is
checked on every call, which costs one tiny query.
"""
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from db import database_file
from db.codec import blobs_to_bits, blobs_to_matrix
from db.features import load_column
from db.meta import dataset_root, features_stamp, generation
from search.metrics import unit_rows

log = logging.getLogger(__name__)

_LOADED = {}  # (db file, mode) -> Loaded


@dataclass
class Loaded:
    """One mode's matrix, the ids and paths of its rows, and per-metric prepared copies."""

    mode: str
    generation: int
    ids: np.ndarray
    paths: list
    root: str
    matrix: np.ndarray
    stamp: dict
    db_file: str
    prepared: dict = field(default_factory=dict)

    def row_of_id(self, image_id):
        row = int(np.searchsorted(self.ids, image_id))
        return row if row < len(self.ids) and self.ids[row] == image_id else None

    def absolute_path(self, row):
        return os.path.join(self.root, self.paths[row])

    def prepare(self, key, make):
        """A derived array (unit rows, norms, square roots) computed once per load."""
        if key not in self.prepared:
            self.prepared[key] = make(self.matrix)
        return self.prepared[key]


def load(conn, mode):
    """The current matrix for ``mode``: from memory if the DB has not changed, else from SQLite."""
    db_file = database_file(conn)
    current = generation(conn)
    cached = _LOADED.get((db_file, mode))
    if cached is not None and cached.generation == current:
        return cached
    stamp = features_stamp(conn) or {}
    ids, paths, blobs = load_column(conn, "embedding" if mode == "embeddings" else mode)
    if mode == "embeddings":
        matrix = unit_rows(blobs_to_matrix(blobs, int(stamp.get("embedding_dim", 0))))
    elif mode == "rgb":
        matrix = blobs_to_matrix(blobs, int(stamp.get("rgb_dim", 0)))
    else:
        matrix = blobs_to_bits(blobs, int(stamp.get("hash_size", 8)) ** 2 // 8)
    loaded = Loaded(mode, current, np.asarray(ids, dtype=np.int64), paths, dataset_root(conn) or "",
                    matrix, stamp, db_file)
    log.debug("loaded %s: %s rows at generation %d", mode, matrix.shape, current)
    _LOADED[(db_file, mode)] = loaded
    return loaded


def forget():
    """Drop every loaded matrix (tests, or to free memory)."""
    _LOADED.clear()
