"""The search API: images or ids in, the most similar images of the collection out.

Everything below the pictures and the scripts: ``calculate_similarities`` (the README's
signature, paths in, ``[(path, distance)]`` out), and the calls the web app and the
duplicate finder build on, ``search_images`` (decoded images in) and ``search_ids``
(collection ids in), both returning ``Hit`` rows. What a mode or metric means is read from
search.modes; nothing here tests mode names.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

import config
from config import InvalidInputError
from db.errors import NoFeaturesError
from db.images import find_by_path
from db.meta import features_stamp
from features.decode import ImageDecodeError, read_file
from search import ann, matrix_cache
from search.expansion import expanded_query
from search.feedback import steered
from search.filters import Filter, allowed_rows
from search.metrics import smallest_k
from search.modes import MODES, Metric, Mode, get_metric, get_mode
from search.orientations import oriented
from search.query_features import QueryImageError, QueryTooLargeError, decode_bytes
from search.transform import query_vectors

log = logging.getLogger(__name__)

__all__ = ["Filter", "Hit", "QueryImageError", "QueryTooLargeError", "UnknownImageError", "calculate_similarities",
           "decode_query_bytes", "search_ids", "search_images"]


class Hit(NamedTuple):
    """One result: the image's DB id, its path relative to the collection root, its distance."""

    id: int
    path: str
    distance: float


class UnknownImageError(LookupError):
    """An id that is not an extracted image of the DB."""


def calculate_similarities(input_images, cursor, mode, metric, top_k=5, verbose=False, *, exclude_query=True,
                           any_orientation=False, expand=None, unlike=(), where=None) -> list[tuple[str, float]]:
    """Return the ``top_k`` images most similar to ``input_images`` as [(path, distance)], best first.

    input_images: one path or a list of paths (inside the collection or not). Several
    queries are combined into one (search.modes: the mean of unit-length embeddings,
    renormalised; the mean of histograms; a majority vote of bits for hashes, a tie gives 0).
    cursor: an sqlite3 cursor (or connection) on the project DB.
    The score is a distance for every metric (cosine and ann_cosine: 1 - cosine similarity;
    bhattacharyya: sqrt(1 - BC); hamming: number of differing bits). A query image that is
    in the collection is left out of its own results unless ``exclude_query=False``; a
    ``top_k`` larger than the collection returns the whole collection. ``any_orientation``
    (hash modes only) also finds mirrored and 90°-rotated copies: each image scores the
    smallest distance over the query's 8 orientations. ``expand`` (embeddings only; None:
    config.QUERY_EXPANSION) searches a second time with the mean of the query and its first
    config.EXPANSION_K results (search.expansion). ``unlike``: paths of pictures to move away
    from ("less like this", search.feedback); those in the collection are left out of the results.
    ``where``: a search.filters.Filter (folder, dates, camera): only images that pass it are returned.
    """
    spec, chosen = get_mode(mode), get_metric(mode, metric)
    _check_top_k(top_k)
    expand = _expanding(spec, expand)
    paths = _as_paths(input_images)
    none = unlike is None or (not isinstance(unlike, (str, os.PathLike)) and not len(unlike))
    unlike = [] if none else _as_paths(unlike)
    if unlike and any_orientation:
        raise InvalidInputError("unlike and any_orientation cannot be combined")
    if any_orientation and not spec.orientable:
        valid = ", ".join(name for name, m in MODES.items() if m.orientable)
        raise InvalidInputError(f"any_orientation works with the hash modes only ({valid}), not {mode!r}")
    conn = getattr(cursor, "connection", cursor)
    with _step(verbose, "load matrix"):
        loaded = _load(conn, spec)
    if len(loaded.ids) == 0:
        return []  # extracted, but no image was usable
    with _step(verbose, "query features"):
        in_collection = [_collection_row(conn, loaded, p) for p in paths]
        if any_orientation:
            queries = _oriented_rows(spec, [_decode_file(p, loaded.stamp) for p in paths], loaded.stamp)
        else:
            positives = [loaded.matrix[row] if row is not None else _row_of_file(spec, p, loaded)
                         for p, row in zip(paths, in_collection)]
            queries = _combined(spec, positives)
        unliked = [_collection_row(conn, loaded, p) for p in unlike]
        if unlike:
            queries = steered(spec, positives, [loaded.matrix[row] if row is not None else _row_of_file(spec, p, loaded)
                                                for p, row in zip(unlike, unliked)])
    exclude = [row for row in in_collection if row is not None] if exclude_query else []
    exclude += [row for row in unliked if row is not None]
    with _step(verbose, f"{chosen.name} search over {len(loaded.ids)} rows"):
        rows, distances = _search(loaded, chosen, queries, top_k, exclude, expand, allowed_rows(conn, loaded, where))
    return [(loaded.absolute_path(r), float(d)) for r, d in zip(rows, distances)]


def search_images(conn, images: Sequence, mode: str, metric: str | None = None, top_k: int = 5,
                  expand: bool | None = None, like: Sequence[int] = (), unlike: Sequence[int] = (),
                  where: Filter | None = None) -> list[Hit]:
    """Hits for decoded images (``decode_query_bytes``) that are not in the collection, combined into one
    query; ``like`` / ``unlike``: collection ids marked + / − (search.feedback; the − ones are left out);
    ``where``: only images that pass this search.filters.Filter."""
    spec, chosen = get_mode(mode), get_metric(mode, metric)
    _check_top_k(top_k)
    expand = _expanding(spec, expand)
    if not images:
        raise ValueError("images is empty; give at least one decoded image")
    loaded = _load(conn, spec)
    if len(loaded.ids) == 0:
        return []
    rows = list(query_vectors(loaded, spec.compute(list(images), loaded.stamp)))
    liked, unliked = _rows_of_ids(loaded, like), _rows_of_ids(loaded, unlike)
    rows += [loaded.matrix[r] for r in liked]
    queries = steered(spec, rows, [loaded.matrix[r] for r in unliked]) if unliked else _combined(spec, rows)
    return _hits(loaded, *_search(loaded, chosen, queries, top_k, unliked, expand, allowed_rows(conn, loaded, where)))


def search_ids(conn, ids: Sequence[int], mode: str, metric: str | None = None, top_k: int = 5,
               exclude_query: bool = True, expand: bool | None = None, like: Sequence[int] = (),
               unlike: Sequence[int] = (), where: Filter | None = None) -> list[Hit]:
    """Hits for images of the collection, given by DB id (several are combined into one query).
    ``where``: only images that pass this search.filters.Filter.
    ``like`` / ``unlike``: ids marked + / − (search.feedback): the + ones join the query and stay
    among the results, the − ones push it away and are left out."""
    spec, chosen = get_mode(mode), get_metric(mode, metric)
    _check_top_k(top_k)
    expand = _expanding(spec, expand)
    if not len(ids):
        raise ValueError("ids is empty; give at least one image id")
    loaded = _load(conn, spec)
    rows, liked, unliked = _rows_of_ids(loaded, ids), _rows_of_ids(loaded, like), _rows_of_ids(loaded, unlike)
    positives = [loaded.matrix[row] for row in rows + [r for r in liked if r not in rows]]
    if unliked:
        queries = steered(spec, positives, [loaded.matrix[row] for row in unliked])
    else:
        queries = _combined(spec, positives)
    exclude = (rows if exclude_query else []) + unliked
    return _hits(loaded, *_search(loaded, chosen, queries, top_k, exclude, expand, allowed_rows(conn, loaded, where)))


def _rows_of_ids(loaded, ids) -> list[int]:
    """The matrix rows of collection ids, or UnknownImageError naming the ones that are not there."""
    rows = [loaded.row_of_id(int(i)) for i in ids]
    missing = [int(i) for i, row in zip(ids, rows) if row is None]
    if missing:
        raise UnknownImageError(f"no extracted image with id {', '.join(map(str, missing))} in this DB")
    return rows


def decode_query_bytes(conn, data: bytes, name: str = "query image"):
    """An uploaded file's bytes -> the shared decoded copy, with the DB's decode settings and pixel limit."""
    stamp = features_stamp(conn)
    if not stamp:
        raise NoFeaturesError("the DB has no extracted features yet: run `python main.py` first")
    return decode_bytes(data, stamp, name)


def _check_top_k(top_k):
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise InvalidInputError(f"top_k must be an integer >= 1, got {top_k!r}")


def _as_paths(input_images):
    paths = [input_images] if isinstance(input_images, (str, os.PathLike)) else list(input_images)
    if not paths:
        raise ValueError("input_images is empty; give at least one image path")
    return [os.fspath(p) for p in paths]


@contextmanager
def _step(verbose, what):
    start = time.perf_counter()
    yield
    if verbose:
        log.info("%s: %.1f ms", what, 1000 * (time.perf_counter() - start))


def _load(conn, spec: Mode):
    loaded = matrix_cache.load(conn, spec.name)
    if not loaded.stamp:
        raise NoFeaturesError(f"{loaded.db_file} has no extracted features yet: "
                              f"run `python main.py --db {loaded.db_file}` first")
    return loaded


def _collection_row(conn, loaded, path):
    """The matrix row of ``path`` if it is an extracted image of this DB, else None."""
    real = os.path.realpath(path)
    if not loaded.root or os.path.commonpath([real, loaded.root]) != loaded.root:
        return None
    found = find_by_path(conn, os.path.relpath(real, loaded.root).replace(os.sep, "/"))
    return None if found is None else loaded.row_of_id(found[0])


def _decode_file(path, stamp):
    try:
        data = read_file(path)[0]
    except ImageDecodeError as exc:
        raise QueryImageError(f"query image {path}: {exc}") from None
    return decode_bytes(data, stamp, f"query image {path}")


def _row_of_file(spec: Mode, path, loaded):
    """The search row of an image outside the collection: its feature made exactly as the
    extraction makes it, then transformed as the loaded rows were (search.transform)."""
    return query_vectors(loaded, spec.compute([_decode_file(path, loaded.stamp)], loaded.stamp))[0]


def _combined(spec: Mode, rows):
    """One query row (as a (1, d) array) from the rows of several query images."""
    rows = np.stack(rows)
    return (rows if len(rows) == 1 else spec.combine(rows)[None, :]).reshape(1, -1)


def _oriented_rows(spec: Mode, images, stamp):
    """(8, d): the combined query in each of the 8 orientations; ranking keeps each row's best."""
    per_image = np.stack([spec.compute(oriented(image), stamp) for image in images])  # (images, 8, d)
    return np.stack([_combined(spec, list(per_image[:, k]))[0] for k in range(per_image.shape[1])])


def _expanding(spec: Mode, expand: bool | None) -> bool:
    """Whether to expand the query: ``expand``, or config.QUERY_EXPANSION where the mode can."""
    if expand is None:
        return config.QUERY_EXPANSION and spec.expandable
    if expand and not spec.expandable:
        valid = ", ".join(name for name, m in MODES.items() if m.expandable)
        raise InvalidInputError(f"query expansion works with {valid} only, not {spec.name!r}")
    return bool(expand)


def _search(loaded, metric: Metric, queries: np.ndarray, top_k: int, exclude, expand: bool, allowed=None):
    """_rank, with query expansion: first the config.EXPANSION_K best rows, then the search
    again with the mean of the query and them (search.expansion). ``allowed``: the rows a
    filter keeps (None: all)."""
    if expand and len(queries) == 1:
        first, _ = _rank(loaded, metric, queries, config.EXPANSION_K, exclude, allowed)
        if len(first):
            queries = expanded_query(loaded, queries[0], first)
    return _rank(loaded, metric, queries, top_k, exclude, allowed)


def _rank(loaded, metric: Metric, queries: np.ndarray, top_k: int, exclude, allowed=None):
    """(rows, distances) of the best ``top_k`` rows; several query rows: each row's smallest distance."""
    if allowed is not None:
        return _rank_within(loaded, metric, queries, top_k, exclude, allowed)
    if metric.approximate and len(queries) == 1:
        found = ann.search(loaded, queries[0], top_k, exclude)
        if found is not None:
            return found
    distances = _distances(loaded, metric, queries)
    rows = smallest_k(distances, top_k, exclude)
    return rows, distances[rows]


def _distances(loaded, metric: Metric, queries: np.ndarray) -> np.ndarray:
    distances = metric.distances(loaded, queries[0])
    for query in queries[1:]:
        distances = np.minimum(distances, metric.distances(loaded, query))
    return distances


class _Rows:
    """Some rows of a loaded matrix, as the metrics read a Loaded (matrix, prepare): a filter that
    keeps few rows is ranked over those only (a folder of 200 in a collection of 500k)."""

    def __init__(self, loaded, rows):
        self.loaded, self.rows = loaded, rows
        self.matrix = loaded.matrix[rows]

    def prepare(self, key, make):
        return self.loaded.prepare(key, make)[self.rows]


SUBSET_SHARE = 0.05  # a filter keeping less than this share of the rows ranks them apart (exact either way)


def _rank_within(loaded, metric: Metric, queries: np.ndarray, top_k: int, exclude, allowed):
    """_rank over the ``allowed`` rows only (exact: an index cannot filter). Few rows: their
    distances alone; many: every distance, the others set to infinity (gathering a large share
    of the matrix costs more than one pass over all of it)."""
    mask = np.zeros(len(loaded.ids), dtype=bool)
    mask[np.asarray(allowed, dtype=np.int64)] = True
    mask[np.asarray(list(exclude), dtype=np.int64)] = False
    keep = np.flatnonzero(mask)
    top_k = min(top_k, len(keep))
    if top_k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if len(keep) < SUBSET_SHARE * len(loaded.ids):
        distances = _distances(_Rows(loaded, keep), metric, queries)
        order = smallest_k(distances, top_k)
        return keep[order], distances[order]
    distances = _distances(loaded, metric, queries)
    rows = smallest_k(np.where(mask, distances, np.inf), top_k)
    return rows, distances[rows]


def _hits(loaded, rows, distances) -> list[Hit]:
    return [Hit(int(loaded.ids[r]), loaded.paths[r], float(d)) for r, d in zip(rows, distances)]
