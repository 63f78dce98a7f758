"""The cut points of the score labels (search/labels.py), measured on the quality sets.

    python -m bench.score_labels             # the packaged sets of bench/quality_sets.py
    python -m bench.score_labels --tiny      # seconds: scikit-image samples (the smoke test)

Three kinds of pairs, with their distances as the search returns them (the search-vector
transform and query expansion as configured, i.e. as the web app shows them):
- edit pairs: each near-duplicate query (an edited copy, uploaded as a file) and its
  original in the collection; "same picture" edits (resize_25, jpeg_20, exact copies) apart;
- same-class pairs and different-class pairs: every image of the labelled set searched by id
  against the rest of it (leave-one-out).

The rule (per mode and metric; every cut at least the one before):
- same picture: the 95th percentile of the "same picture" edits' distances, at most the 0.1st
  percentile of different-class distances;
- edited copy: the 90th percentile of all edits, at most the 1st percentile of different-class;
- similar: the largest distance d at which same-class pairs are at least 4 times as likely as
  different-class pairs to lie within d (CDF_same(d) >= 4 CDF_diff(d)): a ratio of shares, so it
  does not depend on how many classes the set has;
- loosely related: the same with 2 times; beyond it: unrelated.
A cut of the odds rule holds at least 1% of the same-class pairs (fewer are noise); where no
distance qualifies, it falls back to the cut before. Prints a table; writes
bench/results/score_labels{,_tiny}.json, which search/labels.py's CUTS must equal (a test checks).
"""
import argparse
import logging
import os

import numpy as np

from bench.quality import build_db, near_duplicate_queries
from bench.quality_sets import CACHE_DIR, build_packaged_sets, build_tiny_sets
from bench.report import publish
from cli import run, setup_logging
from db import connect
from features.decode import read_file
from search import matrix_cache
from search.labels import LABELS
from search.modes import pairs
from search.query import decode_query_bytes, search_ids, search_images

log = logging.getLogger("score_labels")

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SAME_PICTURE_EDITS = ("resize_25", "jpeg_20", "exact_copy")
SIMILAR_ODDS, LOOSE_ODDS = 4.0, 2.0
# ann_cosine returns exact cosine distances (search.modes): it shares cosine's cuts.
MEASURED = [(mode, metric) for mode, metric in pairs() if metric != "ann_cosine"]


def edit_distances(conn, near_dir, per_edit=None):
    """{(mode, metric): {edit: [distance of the query to its original]}}; each query decoded once."""
    found = {pair: {} for pair in MEASURED}
    collection = os.path.join(near_dir, "collection")
    count = len(_collection_paths(conn))
    for edit, queries in near_duplicate_queries(near_dir).items():
        for query, original in queries[:per_edit]:
            image = decode_query_bytes(conn, read_file(query)[0], os.path.basename(query))
            target = os.path.relpath(original, collection).replace(os.sep, "/")
            for mode, metric in MEASURED:
                hits = search_images(conn, [image], mode, metric, top_k=count)
                distance = next((h.distance for h in hits if h.path == target), None)
                if distance is None:
                    raise LookupError(f"{target} is not in the near-duplicate collection's DB")
                found[(mode, metric)].setdefault(edit, []).append(distance)
    return found


def class_distances(conn):
    """{(mode, metric): (same-class distances, different-class distances)}, leave-one-out."""
    loaded = matrix_cache.load(conn, "ahash")
    ids, paths = [int(i) for i in loaded.ids], list(loaded.paths)
    label = {i: p.split("/", 1)[0] for i, p in zip(ids, paths)}
    found = {}
    for mode, metric in MEASURED:
        same, other = [], []
        for image_id in ids:
            for hit in search_ids(conn, [image_id], mode, metric, top_k=len(ids) - 1):
                (same if label[hit.id] == label[image_id] else other).append(hit.distance)
        found[(mode, metric)] = (np.array(same), np.array(other))
    return found


def cut_points(edits: dict, same: np.ndarray, other: np.ndarray) -> list[float]:
    """[same picture, edited copy, similar, loosely related] by the rule of the docstring."""
    kept = np.concatenate([np.asarray(v, dtype=float) for e, v in edits.items() if e in SAME_PICTURE_EDITS] or [[0.0]])
    every = np.concatenate([np.asarray(v, dtype=float) for v in edits.values()] or [[0.0]])
    same_picture = min(np.percentile(kept, 95), np.percentile(other, 0.1))
    edited = max(same_picture, min(np.percentile(every, 90), np.percentile(other, 1)))
    similar = max(edited, _odds_cut(same, other, SIMILAR_ODDS))
    loose = max(similar, _odds_cut(same, other, LOOSE_ODDS))
    return [round(float(c), 4) for c in (same_picture, edited, similar, loose)]


def _odds_cut(same, other, odds, min_share=0.01):
    """The largest distance d with CDF_same(d) >= odds * CDF_diff(d), among the distances that hold
    at least ``min_share`` of the same-class pairs (fewer are noise); 0 where there is none."""
    same, other = np.sort(same), np.sort(other)
    best = 0.0
    for d in np.unique(same):
        share_same = np.searchsorted(same, d, side="right") / len(same)
        if share_same < min_share:
            continue
        share_other = np.searchsorted(other, d, side="right") / len(other)
        if share_same >= odds * share_other:
            best = float(d)
    return best


def shares(cuts, edits, same, other):
    """For each cut: the share of edit, same-class and different-class pairs within it."""
    every = np.concatenate([np.asarray(v, dtype=float) for v in edits.values()] or [[0.0]])
    return [{"edits": round(float((every <= c).mean()), 3), "same_class": round(float((same <= c).mean()), 3),
             "different_class": round(float((other <= c).mean()), 4)} for c in cuts]


def measure(labelled_dir, near_dir, db_dir, model, per_edit=None):
    labelled_db, near_db = (os.path.join(db_dir, f"labels_{name}_{model}.db") for name in ("labelled", "near"))
    for folder, db_path in ((labelled_dir, labelled_db), (os.path.join(near_dir, "collection"), near_db)):
        build_db(folder, db_path, model)
    conn = connect(near_db)
    try:
        edits = edit_distances(conn, near_dir, per_edit)
    finally:
        conn.close()
    conn = connect(labelled_db)
    try:
        classes = class_distances(conn)
    finally:
        conn.close()
    rows = []
    for mode, metric in MEASURED:
        same, other = classes[(mode, metric)]
        cuts = cut_points(edits[(mode, metric)], same, other)
        rows.append({"mode": mode, "metric": metric, "cuts": cuts,
                     "shares": shares(cuts, edits[(mode, metric)], same, other),
                     "pairs": {"edits": sum(len(v) for v in edits[(mode, metric)].values()),
                               "same_class": len(same), "different_class": len(other)}})
    return {"model": model, "labels": list(LABELS), "rows": rows}


def markdown(report):
    names = report["labels"][:4]
    lines = [f"Cut points of the score labels ({report['model']}); a distance up to the cut gets the label. "
             "In brackets: the share of edit / same-class / different-class pairs within the cut.", "",
             "| mode / metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for row in report["rows"]:
        cells = [f"{c:g} ({s['edits']:.0%} / {s['same_class']:.0%} / {s['different_class']:.1%})"
                 for c, s in zip(row["cuts"], row["shares"])]
        lines.append(f"| {row['mode']} / {row['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _collection_paths(conn):
    return list(matrix_cache.load(conn, "ahash").paths)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=CACHE_DIR, help="where the image sets and DBs go (default: %(default)s)")
    parser.add_argument("--model", default="efficientnet_lite0", help="embedding model (default: %(default)s)")
    parser.add_argument("--per-edit", type=int, default=None, help="near-duplicate queries per edit (default: all)")
    parser.add_argument("--tiny", action="store_true", help="seconds-sized sets from scikit-image's samples")
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for score_labels.json")
    args = parser.parse_args(argv)
    setup_logging()
    labelled_dir, near_dir = build_tiny_sets(args.cache) if args.tiny else build_packaged_sets(args.cache)
    report = measure(labelled_dir, near_dir, args.cache, args.model, args.per_edit)
    stem = os.path.join(args.out, "score_labels_tiny" if args.tiny else "score_labels")
    publish(stem, report, markdown(report))


if __name__ == "__main__":
    run(main)
