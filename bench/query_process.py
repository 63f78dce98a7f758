"""One query in a fresh process, as a user's would run it: time to first answer and peak RSS.

    python bench/query_process.py --db X.db --mode embeddings --metric cosine QUERY [QUERY ...]

Prints one JSON line: seconds for the imports, for connect + first answer (the DB opened
cold in this process), for each further answer, and the process's peak RSS. A query
image outside the collection needs the DB's model: for the synthetic benchmark DB
(``--random-resnet18``) a randomly initialised ResNet18 stands in, which costs the same
as the real one.
"""
import argparse
import json
import os
import sys
import time

START = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.machine import peak_rss_mb  # noqa: E402
from db import connect  # noqa: E402
from similarities import calculate_similarities  # noqa: E402


def use_random_resnet18(stamp_sha):
    """Register a random-init ResNet18 as the DB's model (benchmark only: same cost as the real one)."""
    import config
    import query_model
    from features.embeddings import SPECS, Embedder, build_network

    query_model._EMBEDDERS["resnet18"] = Embedder(SPECS["resnet18"], build_network("resnet18"), stamp_sha,
                                                  config.EMBED_PRECISION)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--db", required=True)
    parser.add_argument("--mode", default="embeddings")
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--random-resnet18", metavar="SHA", help="stamped weights hash of the synthetic DB")
    args = parser.parse_args()
    imported = time.perf_counter()
    if args.random_resnet18:
        import torch

        torch.set_num_threads(os.cpu_count())
        use_random_resnet18(args.random_resnet18)
    prepared = time.perf_counter()
    times = []
    conn = None
    for query in args.queries:
        start = time.perf_counter()
        conn = conn or connect(args.db)
        results = calculate_similarities(query, conn, args.mode, args.metric, args.top_k)
        times.append(time.perf_counter() - start)
        assert len(results) == args.top_k
    print(json.dumps({
        "import_s": imported - START,
        "model_setup_s": prepared - imported,
        "first_answer_s": times[0],
        "later_answers_s": times[1:],
        "process_s": time.perf_counter() - START,
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
