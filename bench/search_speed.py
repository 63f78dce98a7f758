"""Search benchmark at one collection size N, on a synthetic DB (see bench/synthetic.py).

Measures, each beside the seed-style reference (bench/reference.py) in the same run:
load time DB -> matrices (from SQLite, and memory-mapped from the cache), per-query
latency of every valid mode x metric through ``calculate_similarities`` (in-collection
queries, top 10, median and p95), the ann_cosine index (build time, size, recall@10 against
exact cosine; the default IVF beside Annoy, each at a few settings of its speed/recall dial)
and a fresh query process (open + first answer, peak RSS). The query from an image file
outside the collection needs a real model: it is measured on the extraction benchmark's DB
(bench/extract_speed.py).

    python -m bench.search_speed --n 100000 --out result.json   # one size (used by bench.run)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import config
from bench import reference, synthetic
from db import connect
from fileio import atomic_write, read_json, write_with
from search import ann, matrix_cache, metrics
from search.ann import KINDS
from search.modes import MODES, pairs
from similarities import calculate_similarities

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOP = 10
PAIRS = pairs()
COLUMN = {"embeddings": "embedding", "rgb": "rgb", "ahash": "ahash", "dhash": "dhash", "phash": "phash"}


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def summary(seconds):
    ms = sorted(1000 * s for s in seconds)
    return {"median_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))],
            "count": len(ms)}


def load_times(conn, db_path):
    """Seconds to get every mode's matrix: SQLite (writing the cache), then the memory map."""
    shutil.rmtree(matrix_cache.cache_root(db_path), ignore_errors=True)
    matrix_cache.forget()
    cold = {mode: timed(matrix_cache.load, conn, mode)[1] for mode in MODES}
    matrix_cache.forget()
    mapped = {mode: timed(matrix_cache.load, conn, mode)[1] for mode in MODES}
    return cold, mapped


def index_numbers(conn, db_path, cache_dir, n):
    """The default ann_cosine index (config.ANN_INDEX), as queries get it: build time (measured
    once per DB version and remembered), file size; its file read once so that queries are
    timed with it in the page cache."""
    loaded = matrix_cache.load(conn, "embeddings")
    kind = config.ANN_INDEX
    record = os.path.join(cache_dir, f"{kind}-build-n{n}.json")
    stamp = ann.wanted_stamp(loaded, kind)
    remembered = read_json(record)
    index_there = os.path.exists(ann.index_file(db_path, "embeddings"))
    if remembered is None or remembered.get("stamp") != stamp or not index_there:
        shutil.rmtree(ann.index_dir(db_path), ignore_errors=True)
        _, seconds = timed(ann.get_index, loaded)
        remembered = {"stamp": stamp, "build_s": seconds, "measured": time.strftime("%Y-%m-%d %H:%M")}
        with atomic_write(record, "w") as fh:
            json.dump(remembered, fh)
    ann.get_index(loaded)
    path = ann.index_file(db_path, "embeddings")
    _read_through(path)
    return {"kind": kind, "build_s": remembered["build_s"], "build_measured": remembered["measured"],
            "index_mb": os.path.getsize(path) / 1e6, **{k: v for k, v in stamp.items() if k in ("cells", "trees")},
            "dial": KINDS[kind].dial, "setting": KINDS[kind].default_setting()}


def other_index(loaded, cache_dir, n):
    """The other kind (Annoy beside the default IVF), built the same way from the same rows and
    kept in bench/cache under the DB's version: the side-by-side reference for recall and speed."""
    kind = next(k for k in KINDS if k != config.ANN_INDEX)
    path = os.path.join(cache_dir, f"{kind}-n{n}-v{loaded.features_version}.{kind}")
    record = read_json(path + ".json")
    index = KINDS[kind].load(path, loaded.matrix.shape[1]) if record and os.path.exists(path) else None
    if index is None or index.rows != n:
        index, seconds = timed(ann.build, ann.unit_matrix(loaded), kind)
        write_with(path, index.save)
        record = {"build_s": seconds, "measured": time.strftime("%Y-%m-%d %H:%M")}
        with atomic_write(path + ".json", "w") as fh:
            json.dump(record, fh)
    _read_through(path)
    return index, {"kind": kind, "build_s": record["build_s"], "build_measured": record["measured"],
                   "index_mb": os.path.getsize(path) / 1e6, "dial": KINDS[kind].dial, **KINDS[kind].settings(n)}


def _read_through(path):
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def index_sweep(index, unit, rows, settings):
    """Recall@10 against exact cosine and latency of one index at several settings of its dial."""
    exact = [metrics.smallest_k(metrics.cosine_distance(unit, unit[r]), TOP, [r]).tolist() for r in rows]
    points = []
    for setting in settings:
        tuned = index.tuned(setting)
        found, seconds = [], []
        for r in rows:
            (got, _), took = timed(ann.query, tuned, unit, unit[r], TOP + 1)
            seconds.append(took)
            found.append([g for g in got.tolist() if g != r][:TOP])
        points.append({"setting": setting, "recall_at_10": recall(found, exact), **summary(seconds)})
    return points


def index_comparison(conn, cache_dir, n, rows):
    """Both index kinds side by side, each at its default and at a few other settings."""
    loaded = matrix_cache.load(conn, "embeddings")
    unit = ann.unit_matrix(loaded)
    default = ann.get_index(loaded)
    other, other_numbers = other_index(loaded, cache_dir, n)
    dials = {"ivf": (12, 24, config.IVF_PROBES, 96), "annoy": (config.ANNOY_SEARCH_K // 2, config.ANNOY_SEARCH_K,
                                                              2 * config.ANNOY_SEARCH_K, 4 * config.ANNOY_SEARCH_K)}
    other_numbers["sweep"] = index_sweep(other, unit, rows, sorted(set(dials[other_numbers["kind"]])))
    other_numbers["setting"] = KINDS[other_numbers["kind"]].default_setting()
    return index_sweep(default, unit, rows, sorted(set(dials[config.ANN_INDEX]))), other_numbers


def query_latencies(conn, query_paths):
    """{(mode, metric): (seconds per query, results)} through the public API; one warm-up each."""
    out = {}
    for mode, metric in PAIRS:
        calculate_similarities(query_paths[0], conn, mode, metric, TOP)  # prepares derived arrays once
        seconds, results = [], []
        for path in query_paths:
            found, took = timed(calculate_similarities, path, conn, mode, metric, TOP)
            seconds.append(took)
            results.append([p for p, _ in found])
        out[(mode, metric)] = (seconds, results)
    return out


def reference_latencies(conn, rows, n_queries):
    """Seed-style search per pair on ``n_queries`` rows; also returns the reference load time."""
    out, load_s = {}, None
    for mode in MODES:
        if mode in ("embeddings", "rgb"):
            (matrix, _), took = timed(reference.load_matrix, conn, COLUMN[mode])
            load_s = took if mode == "embeddings" else load_s
        else:
            packed, _ = reference.load_matrix(conn, COLUMN[mode], np.uint8)
            matrix = reference.seed_hash_layout(packed)
            del packed
        for metric in MODES[mode].metrics:
            exact = "cosine" if metric == "ann_cosine" else metric
            seconds = [timed(reference.top_k, matrix, matrix[row], exact, TOP, row)[1] for row in rows[:n_queries]]
            out[(mode, metric)] = seconds
        del matrix
    return out, load_s


def fresh_process(db_path, mode, metric, queries, extra=(), env=None):
    command = [sys.executable, "-m", "bench.query_process", "--db", db_path, "--mode", mode,
               "--metric", metric, *extra, *queries]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"query process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def recall(approximate, exact):
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact)]))


def run(n, cache_dir, n_queries=50, n_reference=10, with_ann=True):
    db_path, build_s = synthetic.build(cache_dir, n)
    conn = connect(db_path)
    result = {"n": n, "dim": synthetic.DIM, "clusters": synthetic.clusters_for(n), "synthetic_build_s": build_s,
              "db_mb": os.path.getsize(db_path) / 1e6}
    result["load_sqlite_s"], result["load_mapped_s"] = load_times(conn, db_path)
    loaded = matrix_cache.load(conn, "embeddings")
    rows = np.random.default_rng(n).choice(n, size=n_queries, replace=False)
    query_paths = [loaded.absolute_path(int(r)) for r in rows]
    if with_ann:
        result["ann_index"] = index_numbers(conn, db_path, cache_dir, n)
    pairs = [(m, k) for m, k in PAIRS if with_ann or k != "ann_cosine"]
    latencies = {p: v for p, v in query_latencies(conn, query_paths).items() if p in pairs}
    ref, result["load_reference_s"] = reference_latencies(conn, [int(r) for r in rows], n_reference)
    result["queries"] = {f"{mode}/{metric}": {"project": summary(latencies[(mode, metric)][0]),
                                              "reference": summary(ref[(mode, metric)])}
                         for mode, metric in pairs}
    if with_ann:
        result["ann_index"]["recall_at_10"] = recall(latencies[("embeddings", "ann_cosine")][1],
                                                     latencies[("embeddings", "cosine")][1])
        result["ann_index"]["sweep"], result["ann_reference"] = index_comparison(conn, cache_dir, n,
                                                                                 [int(r) for r in rows])
    conn.close()
    matrix_cache.forget()
    first = query_paths[:3]
    result["fresh_process"] = {
        "embeddings/cosine": fresh_process(db_path, "embeddings", "cosine", first),
        "rgb/bhattacharyya": fresh_process(db_path, "rgb", "bhattacharyya", first),
        "embeddings/cosine, no cache": fresh_process(db_path, "embeddings", "cosine", first[:1],
                                                     env=dict(os.environ, IR_MATRIX_CACHE="0")),
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--cache", default=os.path.join(HERE, "cache"))
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--reference-queries", type=int, default=10)
    parser.add_argument("--no-ann", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    data = run(args.n, args.cache, args.queries, args.reference_queries, not args.no_ann)
    with atomic_write(args.out, "w") as fh:
        json.dump(data, fh, indent=1)
