"""What one round of + and − does to P@10, and the λ of search/feedback.py, on the labelled set.

    python -m bench.feedback            # the Tux Paint labelled set (bench/quality_sets.py)
    python -m bench.feedback --tiny     # seconds: scikit-image samples (the smoke test)

Every image of the labelled set queries the rest (leave-one-out, by id, as the web app's
"more like this"). A simulated person marks its top 10: + the ones of the query's class, − the
others. The search runs again with those marks (the query and the + ones together, pushed away
from the − ones; the − ones are left out, the + ones may come back) and P@10 is counted again.
Per mode (its default metric)
and λ; the best λ of each kind of feature is the one search/feedback.py uses. Prints a table;
writes bench/results/feedback{,_tiny}.{json,md}.
"""
import argparse
import logging
import os

import numpy as np

from bench.quality import build_db
from bench.quality_sets import CACHE_DIR, build_packaged_sets, build_tiny_sets
from bench.report import publish
from cli import run, setup_logging
from db import connect
from search import feedback, matrix_cache
from search.modes import MODES
from search.query import search_ids

log = logging.getLogger("feedback")

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
MODES_MEASURED = ("embeddings", "rgb", "phash")
K = 10


def one_round(conn, mode, weight, k=K):
    """(mean P@k before, mean P@k after one round of + and − from the top k) over every image."""
    loaded = matrix_cache.load(conn, mode)
    ids, paths = [int(i) for i in loaded.ids], list(loaded.paths)
    label = {i: p.split("/", 1)[0] for i, p in zip(ids, paths)}
    before, after = [], []
    saved = feedback.WEIGHTS[feedback.kind_of(MODES[mode])]
    feedback.WEIGHTS[feedback.kind_of(MODES[mode])] = weight
    try:
        for image_id in ids:
            first = search_ids(conn, [image_id], mode, top_k=k)
            plus = [h.id for h in first if label[h.id] == label[image_id]]
            minus = [h.id for h in first if label[h.id] != label[image_id]]
            before.append(len(plus) / k)
            again = search_ids(conn, [image_id], mode, top_k=k, like=plus, unlike=minus)
            after.append(sum(label[h.id] == label[image_id] for h in again) / k)
    finally:
        feedback.WEIGHTS[feedback.kind_of(MODES[mode])] = saved
    return float(np.mean(before)), float(np.mean(after))


def measure(labelled_dir, db_dir, model):
    db_path = os.path.join(db_dir, f"labels_labelled_{model}.db")
    build_db(labelled_dir, db_path, model)
    conn = connect(db_path)
    rows = []
    try:
        for mode in MODES_MEASURED:
            for weight in WEIGHTS:
                before, after = one_round(conn, mode, weight)
                rows.append({"mode": mode, "kind": feedback.kind_of(MODES[mode]), "weight": weight,
                             "P@10 before": round(before, 4), "P@10 after": round(after, 4)})
    finally:
        conn.close()
    best = {}
    for row in rows:
        if row["kind"] not in best or row["P@10 after"] > best[row["kind"]]["P@10 after"]:
            best[row["kind"]] = row
    return {"model": model, "rows": rows, "best_weight": {kind: row["weight"] for kind, row in best.items()}}


def markdown(report):
    lines = [f"One round of + and − from the top 10 ({report['model']}, leave-one-out over the labelled set)", "",
             "| mode | λ | P@10 before | P@10 after | gain |", "|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['mode']} | {row['weight']:g} | {row['P@10 before']:.3f} | {row['P@10 after']:.3f} | "
                     f"{row['P@10 after'] - row['P@10 before']:+.3f} |")
    lines += ["", "best λ per kind of feature: " + ", ".join(f"{k} {w:g}" for k, w in report["best_weight"].items())]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=CACHE_DIR, help="where the image sets and DBs go (default: %(default)s)")
    parser.add_argument("--model", default="efficientnet_lite0", help="embedding model (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true", help="seconds-sized sets from scikit-image's samples")
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for feedback.json")
    args = parser.parse_args(argv)
    setup_logging()
    labelled_dir, _ = build_tiny_sets(args.cache) if args.tiny else build_packaged_sets(args.cache)
    report = measure(labelled_dir, args.cache, args.model)
    stem = os.path.join(args.out, "feedback_tiny" if args.tiny else "feedback")
    publish(stem, report, markdown(report))


if __name__ == "__main__":
    run(main)
