"""Speed of filtered searches (search.filters) on the synthetic DB of bench/synthetic.py.

    python -m bench.filter_speed --n 500000      # the issue's size (builds the DB once: minutes)
    python -m bench.filter_speed --n 2000        # seconds (the smoke test)

The synthetic images get EXIF facts first (dates spread over 20 years, one camera in five a
"Pixel", and 200 images of one folder marked "Fuji"), written by db.exif as main.py would.
Then, per filter, the median and p95 of ``search_ids`` (embeddings, exact cosine, top 20, the
default query expansion) beside the same search without a filter, in the same run:
- a date range keeping about 30% of the collection;
- a folder (the synthetic folders hold 1000 images each);
- 200 images: that folder and the "Fuji" camera (the rows ranked are those 200);
- a camera kept by one image in five.
The first filtered search of a DB version also loads the facts (once): timed apart. Prints a
table; writes bench/results/filter_speed{,_n}.json and .md.
"""
import argparse
import os
import statistics
import time

import numpy as np

from bench import synthetic
from bench.machine import cpu_flags, flags_text
from bench.report import publish
from cli import run, setup_logging
from db import connect
from db.exif import count_unread, store_exif, usable_ids
from search import filters, matrix_cache
from search.filters import Filter
from search.query import search_ids

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "cache", "bench")
RESULTS = os.path.join(HERE, "results")
FOLDER = "c0000"


def add_facts(conn, seed=0):
    """Dates over 2005-2024, cameras, and "Fuji" on 200 images of FOLDER (once per DB)."""
    if count_unread(conn) == 0:
        return
    rng = np.random.default_rng(seed)
    ids = usable_ids(conn)
    folder_ids = set(usable_ids(conn, FOLDER, 200))
    days = rng.integers(0, 20 * 365, size=len(ids))
    facts = []
    for image_id, day in zip(ids, days):
        taken = str(np.datetime64("2005-01-01") + int(day)) + "T12:00:00"
        camera = ("Fujifilm", "X-T3") if image_id in folder_ids else ("Google", "Pixel 6") if image_id % 5 == 0 \
            else ("Canon", "EOS 80D")
        facts.append((image_id, (taken, *camera, None, None, 1)))
    for start in range(0, len(facts), 50_000):
        store_exif(conn, facts[start:start + 50_000])


def timed(conn, where, queries, top=20):
    seconds, kept = [], None
    for image_id in queries:
        start = time.perf_counter()
        hits = search_ids(conn, [image_id], "embeddings", "cosine", top_k=top, where=where)
        seconds.append(time.perf_counter() - start)
        kept = len(hits)
    seconds.sort()
    return {"median_ms": round(1000 * statistics.median(seconds), 2),
            "p95_ms": round(1000 * seconds[int(0.95 * (len(seconds) - 1))], 2), "results": kept}


def measure(n, cache_dir=CACHE, n_queries=30):
    path, built = synthetic.build(cache_dir, n)
    conn = connect(path)
    try:
        add_facts(conn)
        loaded = matrix_cache.load(conn, "embeddings")
        queries = [int(i) for i in np.random.default_rng(1).choice(loaded.ids, size=n_queries, replace=False)]
        search_ids(conn, queries[:1], "embeddings", "cosine", top_k=20)  # warm: matrix and prepared arrays
        start = time.perf_counter()
        facts = filters.facts_of(conn, loaded)
        load_ms = 1000 * (time.perf_counter() - start)
        cases = {"no filter": None, "dates (about 30%)": Filter(after="2010-01-01", before="2015-12-31"),
                 f"folder {FOLDER}": Filter(folder=FOLDER),
                 "200 images (folder + camera)": Filter(folder=FOLDER, camera="fuji"),
                 "camera (1 in 5)": Filter(camera="pixel")}
        rows = []
        for name, where in cases.items():
            kept = len(loaded.ids) if where is None else len(facts.rows(where))
            rows.append({"filter": name, "images kept": kept, **timed(conn, where, queries)})
    finally:
        conn.close()
    return {"n": n, "facts_load_ms": round(load_ms, 1), "build_s": round(built, 1), "rows": rows,
            "note": "compare the rows of one run, not runs: wall times move with whatever else the machine runs",
            "cpu_flags": cpu_flags()}


def markdown(report):
    base = report["rows"][0]["median_ms"]
    lines = [f"Filtered search, {report['n']:,} synthetic images (embeddings, exact cosine, top 20, "
             f"median of the same queries); loading the facts once per DB version: {report['facts_load_ms']} ms",
             "", "| filter | images kept | median ms | p95 ms | vs no filter |", "|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['filter']} | {row['images kept']:,} | {row['median_ms']} | {row['p95_ms']} | "
                     f"{row['median_ms'] / base:.2f}x |")
    lines += ["", report["note"], f"CPU: {flags_text(report['cpu_flags'])}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500_000, help="collection size (default: %(default)s)")
    parser.add_argument("--cache", default=CACHE, help="where the synthetic DB is kept (default: %(default)s)")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    setup_logging()
    report = measure(args.n, args.cache)
    stem = os.path.join(args.out, "filter_speed" if args.n == 500_000 else f"filter_speed_{args.n}")
    publish(stem, report, markdown(report))


if __name__ == "__main__":
    run(main)
