"""ann_cosine recall@10 (config.ANN_INDEX) against exact cosine on real embeddings: the demo collection's DB.

Every image of the DB queries the collection once through ``calculate_similarities``
(ann_cosine vs cosine, the query left out). Small (~300 photos), so it says little about
scale, but the vectors are real EfficientNet-Lite0/ResNet18 embeddings, not synthetic.

    python -m bench.real_recall demo_data/images.db
"""
import os
import statistics
import sys
import time

import config
from db import connect
from db.meta import features_stamp
from search import matrix_cache
from similarities import calculate_similarities

TOP = 10


def measure(db_path):
    """{'db', 'images', 'model', 'recall_at_10', 'ann_median_ms', 'exact_median_ms'}, or None without a DB."""
    if not os.path.exists(db_path):
        return None
    conn = connect(db_path)
    loaded = matrix_cache.load(conn, "embeddings")
    paths = [loaded.absolute_path(row) for row in range(len(loaded.ids))]
    if len(paths) <= TOP:
        conn.close()
        return None
    recalls, ann_ms, exact_ms = [], [], []
    for path in paths:
        start = time.perf_counter()
        exact = {p for p, _ in calculate_similarities(path, conn, "embeddings", "cosine", TOP)}
        middle = time.perf_counter()
        approximate = {p for p, _ in calculate_similarities(path, conn, "embeddings", "ann_cosine", TOP)}
        end = time.perf_counter()
        recalls.append(len(exact & approximate) / TOP)
        exact_ms.append(1000 * (middle - start))
        ann_ms.append(1000 * (end - middle))
    stamp = features_stamp(conn) or {}
    conn.close()
    return {"index": config.ANN_INDEX, "db": db_path, "images": len(paths), "model": stamp.get("embedding_model"),
            "dim": int(stamp.get("embedding_dim", 0)), "recall_at_10": statistics.mean(recalls),
            "ann_median_ms": statistics.median(ann_ms), "exact_median_ms": statistics.median(exact_ms)}


if __name__ == "__main__":
    print(measure(sys.argv[1] if len(sys.argv) > 1 else "demo_data/images.db"))
