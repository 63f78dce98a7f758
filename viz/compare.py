"""One query, several modes side by side: the picture that helps a user choose a mode.

Each row is one mode's top results for the same query, so it shows at a glance what each
feature family calls "similar" (content, colour, near-duplicate pixels).
"""
import os
import sqlite3

from config import InvalidInputError
from db import connect
from search.modes import MODES, check_metric, get_mode
from search.query import calculate_similarities
from viz.grid import save_result_grid

# Each mode with the metric that fits it best.
DEFAULT_MODES = (("embeddings", "cosine"), ("rgb", "bhattacharyya"), ("phash", "hamming"))


def mode_metric_pairs(modes):
    """Accept "rgb" or ("rgb", "cosine"); a bare mode gets its natural metric."""
    pairs = []
    for item in modes:
        mode, metric = (item, None) if isinstance(item, str) else tuple(item)
        pairs.append((mode, check_metric(mode, metric)))
    if not pairs:
        raise InvalidInputError(f"modes is empty; give some of: {', '.join(MODES)}")
    return pairs


def mode_comparison(query, conn, modes=DEFAULT_MODES, top_k=6):
    """[(mode, metric, [(path, distance), ...]), ...]: each mode's best ``top_k`` for ``query``."""
    return [(mode, metric, calculate_similarities(query, conn, mode, metric, top_k))
            for mode, metric in mode_metric_pairs(modes)]


def save_mode_comparison(query, db, out_path, modes=DEFAULT_MODES, top_k=6, thumb=150):
    """Write the comparison PNG for one query image; ``db`` is a DB path or an open connection.

    Results in the query's own folder get a green frame (in the demo collection, a folder
    holds one photo and its edited copies). Returns ``out_path``.
    """
    conn = db if isinstance(db, sqlite3.Connection) else connect(db)
    try:
        compared = mode_comparison(query, conn, modes, top_k)
    finally:
        if conn is not db:
            conn.close()
    rows = [([query], results) for _, _, results in compared]
    labels = [f"{mode}\n{get_mode(mode).blurb}\n{metric}" for mode, metric, _ in compared]
    name = f"{os.path.basename(os.path.dirname(query))}/{os.path.basename(query)}"
    return save_result_grid(
        rows, out_path, title=f"Same query, {len(rows)} modes: what each one calls similar ({name})",
        subtitle="score = distance, smaller is closer (hamming: bits that differ)   ·   "
                 "green frame: result from the query's own folder",
        thumb=thumb, row_labels=labels, mark_same_folder=True)
