"""ann_cosine's index: recall@10 against exact cosine, and median query time, per index and setting.

The vectors are bench/synthetic.py's clustered embeddings (unit rows, as the search loads
them), queried from inside the collection (the row itself left out), like bench/search_speed.py.
For each N it builds each index once and sweeps its query-time dial:

- the project's inverted file (search/ann.py): cells of ANN_ROWS_PER_CELL rows, sweeping
  the cells probed per query (ANN_PROBES);
- Annoy, what ann_cosine used before, for comparison: T trees, sweeping search_k;
  optionally two Annoy shards queried in two threads (Annoy releases the GIL while it searches).

Beside them, the straightforward reference: exact cosine over the whole matrix (float32 BLAS).

    python -m bench.bench_ann                    # N = 100k and 500k (minutes: Annoy builds are slow)
    python -m bench.bench_ann --n 500000 --probes 32,64 --trees 50 --search-k 5000,40000
    python -m bench.bench_ann --tiny             # the smoke test: 2,000 rows, seconds
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench import machine, synthetic
import config
from search import ann, metrics

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = 10
CHUNK = 20_000


def cpu_flags() -> dict[str, bool]:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        flags = []
    return {flag: flag in flags for flag in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")}


def vectors(n: int, seed: int = 0) -> np.ndarray:
    """(n, 512) unit rows drawn from the synthetic mixture, chunk by chunk (memory: the matrix)."""
    mixture = synthetic.Mixture(synthetic.clusters_for(n), seed)
    rng = np.random.default_rng(seed + 1)
    out = np.empty((n, synthetic.DIM), dtype=np.float32)
    for first in range(0, n, CHUNK):
        count = min(CHUNK, n - first)
        out[first:first + count] = metrics.unit_rows(mixture.draw(count, rng)[1])
    return out


def exact_top(matrix: np.ndarray, rows: np.ndarray) -> tuple[list[list[int]], float]:
    """Exact cosine top-10 of each query row (itself left out), and the median ms per query."""
    found, seconds = [], []
    for r in rows:
        start = time.perf_counter()
        found.append(metrics.smallest_k(metrics.cosine_distance(matrix, matrix[r]), TOP, [int(r)]).tolist())
        seconds.append(time.perf_counter() - start)
    return found, 1000 * statistics.median(seconds)


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)]))


class AnnoyLayout:
    """One or more Annoy indexes over consecutive slices of the rows (the reference ANN)."""

    def __init__(self, matrix: np.ndarray, trees: int, shards: int):
        from annoy import AnnoyIndex  # only this comparison needs it

        self.trees, self.shards = trees, shards
        bounds = np.linspace(0, len(matrix), shards + 1).astype(int)
        self.offsets = bounds[:-1]
        start = time.perf_counter()
        self.indexes = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            index = AnnoyIndex(matrix.shape[1], "angular")
            index.set_seed(42)
            for i, row in enumerate(matrix[a:b]):
                index.add_item(i, row)
            index.build(trees, n_jobs=-1)
            self.indexes.append(index)
        self.build_s = time.perf_counter() - start
        self.pool = ThreadPoolExecutor(shards) if shards > 1 else None

    @property
    def name(self) -> str:
        return f"Annoy {self.trees} trees" if self.shards == 1 else f"Annoy {self.shards} shards x {self.trees} trees"

    def _one(self, i: int, unit: np.ndarray, k: int, search_k: int):
        rows, angular = self.indexes[i].get_nns_by_vector(unit, k, search_k=search_k, include_distances=True)
        return np.asarray(rows, dtype=np.int64) + self.offsets[i], np.asarray(angular)

    def query(self, unit: np.ndarray, k: int, search_k: int) -> np.ndarray:
        if self.pool is None:
            return self._one(0, unit, k, search_k)[0]
        parts = list(self.pool.map(lambda i: self._one(i, unit, k, search_k), range(self.shards)))
        rows = np.concatenate([rows for rows, _ in parts])
        return rows[np.argsort(np.concatenate([d for _, d in parts]), kind="stable")][:k]

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown()
        for index in self.indexes:
            index.unload()


class IvfLayout:
    """The project's index (search.ann): the dial is the number of cells probed."""

    def __init__(self, matrix: np.ndarray, rows_per_cell: int):
        start = time.perf_counter()
        self.index = ann.build(matrix, ann.cells_for(len(matrix), rows_per_cell))
        self.index.vectors = np.ascontiguousarray(self.index.vectors[:])  # as it is once saved and mapped
        self.build_s = time.perf_counter() - start
        self.trees, self.shards, self.cells = 0, 1, len(self.index.centroids)

    @property
    def name(self) -> str:
        return f"IVF {self.cells} cells"

    def query(self, unit: np.ndarray, k: int, probes: int) -> np.ndarray:
        return ann.query(self.index, unit, k, probes)[0]

    def close(self) -> None:
        pass


def sweep(layout, matrix: np.ndarray, rows: np.ndarray, exact, search_ks) -> list[dict]:
    points = []
    for search_k in search_ks:
        layout.query(matrix[rows[0]], TOP + 1, search_k)  # warm-up
        found, seconds = [], []
        for r in rows:
            start = time.perf_counter()
            got = layout.query(matrix[r], TOP + 1, search_k)
            seconds.append(time.perf_counter() - start)
            found.append([g for g in got.tolist() if g != r][:TOP])
        points.append({"layout": layout.name, "trees": layout.trees, "shards": layout.shards, "dial": search_k,
                       "build_s": layout.build_s, "recall_at_10": recall(found, exact),
                       "median_ms": 1000 * statistics.median(seconds)})
    return points


def run(n: int, rows_per_cell: int, probes: list[int], trees: list[int], search_ks: list[int],
        shard_trees: list[int], n_queries: int) -> dict:
    matrix = vectors(n)
    rows = np.random.default_rng(n).choice(n, size=min(n_queries, n), replace=False)
    exact, exact_ms = exact_top(matrix, rows)
    points = []
    layouts = [(lambda: IvfLayout(matrix, rows_per_cell), probes)]
    layouts += [(lambda t=t: AnnoyLayout(matrix, t, 1), search_ks) for t in trees]
    layouts += [(lambda t=t: AnnoyLayout(matrix, t, 2), search_ks) for t in shard_trees]
    for make, dials in layouts:
        layout = make()
        swept = sweep(layout, matrix, rows, exact, dials)
        layout.close()
        points += swept
        print(f"  n={n:,} {layout.name}: built in {layout.build_s:.0f} s; " + ", ".join(
            f"{p['dial']}: recall {p['recall_at_10']:.3f} in {p['median_ms']:.2f} ms" for p in swept), flush=True)
    return {"n": n, "dim": int(matrix.shape[1]), "queries": len(rows), "exact_median_ms": exact_ms, "points": points}


def table(results: list[dict]) -> str:
    lines = ["| N | index | probes / search_k | recall@10 | median ms | build s | exact cosine ms |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for result in results:
        for p in result["points"]:
            lines.append(f"| {result['n']:,} | {p['layout']} | {p['dial']} | {p['recall_at_10']:.3f} | "
                         f"{p['median_ms']:.2f} | {p['build_s']:.0f} | {result['exact_median_ms']:.1f} |")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="100000,500000", help="collection sizes, comma-separated")
    parser.add_argument("--rows-per-cell", type=int, default=config.ANN_ROWS_PER_CELL)
    parser.add_argument("--probes", default="16,32,48,64,96", help="cells probed per query, comma-separated")
    parser.add_argument("--trees", default="50", help="trees of the Annoy reference, comma-separated ('' for none)")
    parser.add_argument("--shard-trees", default="", help="trees per shard of a two-shard Annoy ('' for none)")
    parser.add_argument("--search-k", default="5000,40000", help="Annoy search_k values, comma-separated")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--tiny", action="store_true", help="2,000 rows: checks the harness in seconds")
    parser.add_argument("--out", help="the JSON file (default bench/results/ann.json, ann_tiny.json with --tiny)")
    args = parser.parse_args()
    if args.tiny:
        args.n, args.probes, args.trees, args.shard_trees, args.search_k = "2000", "4,8", "10", "5", "500"
        args.queries = 20
    args.out = args.out or os.path.join(HERE, "results", "ann_tiny.json" if args.tiny else "ann.json")
    flags = cpu_flags()
    print("CPU flags: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))
    info = machine.describe()
    print(f"Machine: {info['cores']} cores ({info['cpu']}), load average {info['load_average']}")
    results = [run(n, args.rows_per_cell, _ints(args.probes), _ints(args.trees), _ints(args.search_k),
                   _ints(args.shard_trees), args.queries) for n in _ints(args.n)]
    print(table(results))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"machine": info, "cpu_flags": flags, "results": results}, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
