"""2-D maps of a collection (UMAP, PCA, t-SNE), and the sampling and labels they share.

Every mode becomes float rows whose Euclidean distance means what the mode's search
metric means: unit embeddings (cosine), square-rooted histograms (Bhattacharyya/Hellinger)
and hash bits as 0/1 (Hamming). Large collections are sampled, with a fixed seed, and the
picture says how many points it shows.
"""
import logging
import os
import re
import sqlite3
from dataclasses import dataclass

import numpy as np

from config import InvalidInputError
from db import connect
from db.errors import NoFeaturesError
from search import matrix_cache
from search.modes import get_mode
from viz.grid import save_figure
from viz.map_figure import map_figure

log = logging.getLogger(__name__)

METHODS = ("umap", "pca", "tsne")
# Points drawn by default: a scatter is saturated long before this, and UMAP (about two
# minutes at 20k on 2 cores) and t-SNE (slower still) finish while you wait.
DEFAULT_LIMITS = {"umap": 20_000, "pca": 50_000, "tsne": 5_000}
SAMPLINGS = ("random", "first")
LABELS = ("folder", "top")


def map_features(loaded, rows=None):
    """Float32 rows (all, or just ``rows``) of a ``search.matrix_cache.Loaded``, in a geometry that fits its mode.

    Only the chosen rows are copied: at 500k images the full matrix can be gigabytes.
    """
    return get_mode(loaded.mode).as_points(loaded.matrix if rows is None else loaded.matrix[rows])


def sample_rows(n_rows, limit, how="random", seed=0):
    """Sorted row numbers: all of them, or ``limit`` of them (seeded random, or the first)."""
    if how not in SAMPLINGS:
        raise InvalidInputError(f"unknown sampling {how!r}; valid: {', '.join(SAMPLINGS)}")
    if limit is None or limit >= n_rows:
        return np.arange(n_rows)
    if limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    if how == "first":
        return np.arange(limit)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=limit, replace=False))


def folder_labels(paths, label="folder"):
    """A group name per relative path: its parent folder, or its top-level folder ("top")."""
    if label not in LABELS:
        raise InvalidInputError(f"unknown label {label!r}; valid: {', '.join(LABELS)}")
    parts = [p.split("/") for p in paths]
    if label == "top":
        return [p[0] if len(p) > 1 else "." for p in parts]
    return [p[-2] if len(p) > 1 else "." for p in parts]


def pca_2d(matrix):
    """The first two principal components (numpy only).

    With more rows than dimensions (the usual case) from the d x d covariance: O(n d^2)
    and d x d memory, where an SVD of the rows would also build an n x d factor. With
    fewer rows, the SVD of the rows is the cheaper one.
    """
    centred = np.asarray(matrix, dtype=np.float64)
    centred = centred - centred.mean(axis=0, keepdims=True)
    if len(centred) >= centred.shape[1]:
        _, vectors = np.linalg.eigh(centred.T @ centred)  # eigenvalues in ascending order
        top = vectors[:, ::-1][:, :2]
    else:
        top = np.linalg.svd(centred, full_matrices=False)[2][:2].T
    coords = centred @ top
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(coords), 2 - coords.shape[1]))])
    return coords.astype(np.float32)


class _Percent:
    """A file for tqdm that hands each percentage it draws to ``report`` (UMAP's epochs bar)."""

    def __init__(self, report):
        self.report = report

    def write(self, text):
        found = re.findall(r"(\d+)%", text)
        if found:
            self.report(int(found[-1]))

    def flush(self):
        pass


def project(matrix, method="umap", seed=0, progress=None):
    """(n, 2) coordinates of the rows of ``matrix``; ``progress(percent)`` is called as UMAP
    optimises the layout (its last and longest step), when given."""
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    n = len(matrix)
    if method == "pca" or n < 4:
        return pca_2d(matrix)
    if method == "umap":
        import umap  # heavy (numba): only for UMAP maps

        bar = {} if progress is None else {
            "tqdm_kwds": {"disable": False, "file": _Percent(progress), "mininterval": 0.5}}
        reducer = umap.UMAP(n_neighbors=min(15, n - 1), min_dist=0.1, random_state=seed, n_jobs=1, **bar)
        return reducer.fit_transform(matrix).astype(np.float32)
    from sklearn.decomposition import PCA  # heavy: only for t-SNE maps
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=min(50, n, matrix.shape[1]), random_state=seed).fit_transform(matrix)
    tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(reduced).astype(np.float32)


@dataclass
class CollectionMap:
    """What a map shows: 2-D coordinates of the drawn rows, and how many there were in all."""

    coords: np.ndarray
    rows: np.ndarray
    paths: list  # absolute paths of the drawn rows
    labels: list
    total: int
    method: str
    mode: str
    seed: int

    @property
    def drawn(self):
        return len(self.rows)


def collection_map(conn, method="umap", mode="embeddings", limit=None, seed=0, label="folder"):
    """Project (a seeded random sample of) the collection in ``conn`` to 2-D."""
    get_mode(mode)  # ValueError listing the modes
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return map_of_loaded(matrix_cache.load(conn, mode), method, limit, seed, label)


def map_of_loaded(loaded, method="umap", limit=None, seed=0, label="folder", progress=None):
    """Project (a seeded random sample of) one loaded matrix to 2-D (``progress``: see project)."""
    total = len(loaded.ids)
    if total == 0:
        raise NoFeaturesError("the DB has no extracted images: run `python main.py` first")
    limit = DEFAULT_LIMITS[method] if limit is None else limit
    rows = sample_rows(total, limit, "random", seed)
    if len(rows) < total:
        log.warning("drawing %d of %d images (random sample, seed %d); pass --limit to change", len(rows), total, seed)
    coords = project(map_features(loaded, rows), method, seed, progress)
    paths = [loaded.paths[r] for r in rows]
    return CollectionMap(coords, rows, [os.path.join(loaded.root, p) for p in paths],
                         folder_labels(paths, label), total, method, loaded.mode, seed)


def plot_map(db, out_path, method="umap", mode="embeddings", thumbnails=False, limit=None, seed=0,
             label="folder", n_thumbnails=60):
    """Write a PNG map of the collection; ``db`` is a DB path or an open connection.

    Returns the CollectionMap (``.drawn`` and ``.total`` say how many points were drawn).
    """
    conn = db if isinstance(db, sqlite3.Connection) else connect(db)
    try:
        cmap = collection_map(conn, method, mode, limit, seed, label)
    finally:
        if conn is not db:
            conn.close()
    save_figure(map_figure(cmap, thumbnails, n_thumbnails), out_path)
    return cmap
