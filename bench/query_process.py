"""One query in a fresh process, as a user's would run it: time to first answer and peak RSS.

    python -m bench.query_process --db X.db --mode embeddings --metric cosine QUERY [QUERY ...]

Prints one JSON line: seconds for the imports, for connect + first answer (the DB opened
cold in this process), for each further answer, the process's peak RSS, and whether torch
was imported. A query image outside the collection is embedded with the DB's own model,
runtime and precision, as ``similarities.py`` does.
"""
import time

START = time.perf_counter()  # before the imports: they are part of what a user waits for

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from bench.machine import peak_rss_mb  # noqa: E402
from db import connect  # noqa: E402
from similarities import calculate_similarities  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--db", required=True)
    parser.add_argument("--mode", default="embeddings")
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    imported = time.perf_counter()
    times = []
    conn = None
    for query in args.queries:
        start = time.perf_counter()
        conn = conn or connect(args.db)
        results = calculate_similarities(query, conn, args.mode, args.metric, args.top_k)
        times.append(time.perf_counter() - start)
        if len(results) != args.top_k:
            raise SystemExit(f"expected {args.top_k} results, got {len(results)}")
    print(json.dumps({
        "import_s": imported - START,
        "first_answer_s": times[0],
        "later_answers_s": times[1:],
        "process_s": time.perf_counter() - START,
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
    }))


if __name__ == "__main__":
    main()
