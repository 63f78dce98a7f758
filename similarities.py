"""Find the images most like one or more query images.

    python similarities.py photo.jpg --mode embeddings --metric cosine --top-k 5 --out grid.png

Modes and the metrics that fit them (every score is a distance: smaller is more similar):

    embeddings  cosine, ann_cosine, euclidean, manhattan   (CNN content; unit-length vectors)
    rgb         bhattacharyya, cosine, ann_cosine, euclidean, manhattan   (colour histogram)
    ahash/dhash/phash   hamming   (perceptual hashes; bits that differ)
"""
import argparse
import logging
import os
import time
from contextlib import contextmanager

import numpy as np

import config
from db.errors import NoFeaturesError
from db.images import find_by_path
from search import metrics, store
from search.metrics import METRICS, MODES, VALID_METRICS

log = logging.getLogger("similarities")


class QueryImageError(ValueError):
    """A query image that cannot be read or decoded."""


def calculate_similarities(input_images, cursor, mode, metric, top_k=5, verbose=False, *, exclude_query=True,
                           any_orientation=False):
    """Return the ``top_k`` images most similar to ``input_images`` as [(path, distance)], best first.

    input_images: one path or a list of paths (inside the collection or not). Several
    queries are combined into one: the mean of their unit-length embeddings (renormalised)
    or of their histograms, and a majority vote of bits for hashes (a tie gives 0).
    cursor: an sqlite3 cursor (or connection) on the project DB.
    The score is a distance for every metric (cosine and ann_cosine: 1 - cosine similarity;
    bhattacharyya: sqrt(1 - BC); hamming: number of differing bits). A query image that is
    in the collection is left out of its own results unless ``exclude_query=False``; a
    ``top_k`` larger than the collection returns the whole collection. ``any_orientation``
    (hash modes only) also finds mirrored and 90°-rotated copies (search.orientations).
    """
    paths = _validate(input_images, mode, metric, top_k)
    if any_orientation and mode not in ("ahash", "dhash", "phash"):
        raise ValueError(f"any_orientation works with the hash modes only (ahash, dhash, phash), not {mode!r}")
    conn = getattr(cursor, "connection", cursor)
    with _step(verbose, "load matrix"):
        loaded = store.load(conn, mode)
    if not loaded.stamp:
        raise NoFeaturesError(f"{loaded.db_file} has no extracted features yet: run `python main.py --db {loaded.db_file}` first")
    if len(loaded.ids) == 0:
        return []  # extracted, but no image was usable
    with _step(verbose, "query features"):
        if any_orientation:
            query = _oriented_query(paths, loaded)
            query_rows = [row for row in (_collection_row(conn, loaded, p) for p in paths) if row is not None]
        else:
            query, query_rows = _query_vector(conn, loaded, paths)
    exclude = query_rows if exclude_query else []
    with _step(verbose, f"{metric} search over {len(loaded.ids)} rows"):
        rows, scores = _search(loaded, metric, query, top_k, exclude)
    return [(loaded.absolute_path(r), float(s)) for r, s in zip(rows, scores)]


def _validate(input_images, mode, metric, top_k):
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    if metric not in VALID_METRICS[mode]:
        raise ValueError(f"metric {metric!r} does not fit mode {mode!r}; valid for {mode}: {', '.join(VALID_METRICS[mode])}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
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


def _query_vector(conn, loaded, paths):
    """One combined query vector, and the rows of query images that are in the collection."""
    vectors, rows = [], []
    for path in paths:
        row = _collection_row(conn, loaded, path)
        if row is not None:
            rows.append(row)
            vectors.append(loaded.matrix[row])
        else:
            vectors.append(_features_of_file(path, loaded))
    return _combine(loaded.mode, np.stack(vectors)), rows


def _collection_row(conn, loaded, path):
    """The matrix row of ``path`` if it is an indexed image of this DB, else None."""
    real = os.path.realpath(path)
    if not loaded.root or os.path.commonpath([real, loaded.root]) != loaded.root:
        return None
    found = find_by_path(conn, os.path.relpath(real, loaded.root).replace(os.sep, "/"))
    return None if found is None else loaded.row_of_id(found[0])


def _features_of_file(path, loaded):
    """The mode's feature of an image outside the collection, made exactly as main.py makes it
    (same decoded copy, same functions), and only that one."""
    from features.decode import ImageDecodeError, decode, read_file
    from query_model import embedder_for, settings_for

    settings = settings_for(loaded.stamp)
    try:
        image = decode(read_file(path)[0], settings.decode_side, settings.max_pixels)
    except ImageDecodeError as exc:
        raise QueryImageError(f"query image {path}: {exc}") from None
    if loaded.mode == "embeddings":
        return metrics.unit_rows(embedder_for(loaded.stamp)([image]))[0]
    if loaded.mode == "rgb":
        from features.histogram import rgb_histograms

        return rgb_histograms([image], settings.hist_bins)[0]
    from features.hashes import packed_hashes

    return packed_hashes([image.convert("L")], loaded.mode, settings.hash_size)[0]


def _oriented_query(paths, loaded):
    """(8, nbytes): the query's hash in every orientation; _search keeps each row's best."""
    from features.decode import ImageDecodeError
    from query_model import settings_for
    from search.orientations import query_hashes

    try:
        return query_hashes(paths, settings_for(loaded.stamp), loaded.mode)
    except ImageDecodeError as exc:
        raise QueryImageError(f"query image: {exc}") from None


def _combine(mode, vectors):
    if len(vectors) == 1:
        return vectors[0]
    if mode == "embeddings":
        return metrics.unit_rows(vectors.mean(axis=0, keepdims=True))[0]
    if mode == "rgb":
        return vectors.mean(axis=0)
    from features.hashes import majority_bits

    return majority_bits(vectors)[0]


def _search(loaded, metric, query, top_k, exclude):
    """(rows, distances) of the best ``top_k`` rows for one prepared query."""
    matrix = loaded.matrix
    if metric == "ann_cosine":
        from search import ann

        index = ann.get_index(loaded)
        unit = metrics.unit_rows(query[None, :].astype(np.float32))[0]
        rows, dist = ann.query(index, unit, min(top_k + len(exclude), len(matrix)))
        keep = ~np.isin(rows, exclude)
        return rows[keep][:top_k], dist[keep][:top_k]
    if metric == "cosine":
        unit = loaded.prepare("unit", metrics.unit_rows)
        dist = metrics.cosine_distance(unit, metrics.unit_rows(query[None, :])[0].astype(np.float32))
    elif metric == "euclidean":
        norms = loaded.prepare("squared_norms", lambda m: np.einsum("ij,ij->i", m, m))
        dist = metrics.euclidean_distance(matrix, query.astype(np.float32), norms)
    elif metric == "manhattan":
        dist = metrics.manhattan_distance(matrix, query.astype(np.float32))
    elif metric == "bhattacharyya":
        dist = metrics.bhattacharyya_distance(loaded.prepare("sqrt", np.sqrt), query.astype(np.float32))
    elif query.ndim == 2:  # any_orientation
        from search.orientations import min_hamming_distance

        dist = min_hamming_distance(matrix, query)
    else:
        dist = metrics.hamming_distance(matrix, query)
    rows = metrics.smallest_k(dist, top_k, exclude)
    return rows, dist[rows]


def main(argv=None):
    from cli import UsageError, setup_logging
    from db import connect

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("queries", nargs="+", help="query image file(s); several are combined")
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py + main.py (default: %(default)s)")
    parser.add_argument("--mode", default=config.DEFAULT_MODE, choices=MODES)
    parser.add_argument("--metric", default=None, choices=METRICS, help="default: the best metric for the mode")
    parser.add_argument("--top-k", type=int, default=config.TOP_K)
    parser.add_argument("--include-query", action="store_true", help="let a query in the collection match itself")
    parser.add_argument("--any-orientation", action="store_true", help="hash modes: also find flipped/rotated copies")
    parser.add_argument("--out", help="write a PNG: the query image(s), then the results with their scores")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the time of each step")
    args = parser.parse_args(argv)
    setup_logging()
    metric = args.metric or (config.DEFAULT_METRIC if args.mode == config.DEFAULT_MODE else VALID_METRICS[args.mode][0])
    for query in args.queries:
        if os.path.isdir(query):
            raise UsageError(f"query {query} is a folder: give image files")
        if not os.path.isfile(query):
            raise UsageError(f"query image {query} does not exist")
    conn = connect(args.db)
    results = calculate_similarities(args.queries, conn.cursor(), args.mode, metric, args.top_k, args.verbose,
                                     exclude_query=not args.include_query, any_orientation=args.any_orientation)
    if not results:
        raise UsageError(f"no other image in {args.db} has features to compare with (see `python main.py --db {args.db}`)")
    for rank, (path, score) in enumerate(results, 1):
        print(f"{rank:3d}  {score:.4f}  {path}")
    if args.out:
        from viz.grid import save_result_grid

        save_result_grid([(args.queries, results)], args.out, title=f"{args.mode} / {metric}")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    from cli import run

    run(main)
