"""The ann_cosine index (search.ann, an inverted file) against brute-force cosine."""
import json
import os
import subprocess
import sys

import numpy as np

from samples import ROOT
from search import ann, metrics


def clustered(n, dim, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    return metrics.unit_rows(centres[labels] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32))


def test_index_finds_the_exact_cosine_top10():
    data = clustered(5000, 64, 100, seed=11)
    index = ann.build(data, seed=42)
    assert len(index.centroids) == ann.cells_for(5000)
    queries = clustered(50, 64, 100, seed=12)
    overlaps = []
    for q in queries:
        exact_all = metrics.cosine_distance(data, q)
        exact = set(metrics.smallest_k(exact_all, 10).tolist())
        rows, dist = ann.query(index, q, 10)  # the project's default probes
        overlaps.append(len(exact & set(rows.tolist())) / 10)
        np.testing.assert_allclose(dist, exact_all[rows], atol=1e-5)  # distances reported as 1 - cos
        assert list(dist) == sorted(dist)
    assert np.mean(overlaps) >= 0.95


def test_every_cell_probed_is_exact():
    data = clustered(3000, 32, 40, seed=3)
    index = ann.build(data, cells=30, seed=1)
    q = data[17]
    rows, dist = ann.query(index, q, 25, probes=30)
    exact = metrics.smallest_k(metrics.cosine_distance(data, q), 25)
    assert rows.tolist() == exact.tolist()


def test_build_is_reproducible_with_a_fixed_seed():
    data = clustered(500, 16, 10, seed=1)
    first, second = ann.build(data, seed=3), ann.build(data, seed=3)
    assert np.array_equal(first.centroids, second.centroids) and np.array_equal(first.order, second.order)
    assert ann.query(first, data[0], 10)[0].tolist() == ann.query(second, data[0], 10)[0].tolist()


def test_the_saved_file_reopens_to_the_same_answers(tmp_path):
    data = clustered(4000, 48, 60, seed=5)
    built = ann.build(data, seed=7)
    path = str(tmp_path / "embeddings.ann")
    ann._save(built, path)
    opened = ann._open(path)
    assert np.array_equal(opened.vectors, data[built.order]) and np.array_equal(opened.bounds, built.bounds)
    for q in data[:20]:
        a, b = ann.query(built, q, 10), ann.query(opened, q, 10)
        assert a[0].tolist() == b[0].tolist() and np.allclose(a[1], b[1])
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    assert ann._open(path) is None  # a truncated file is not an index



def test_the_ann_benchmark_runs_on_tiny_sizes(tmp_path):
    """bench/bench_ann.py end to end on 2,000 rows: its table and its JSON (reopened)."""
    out = tmp_path / "ann.json"
    done = subprocess.run([sys.executable, "-m", "bench.bench_ann", "--tiny", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CPU flags: avx2" in done.stdout and "| N | index | probes / search_k | recall@10 |" in done.stdout
    data = json.loads(out.read_text())
    [result] = data["results"]
    assert result["n"] == 2000 and {p["layout"].split()[0] for p in result["points"]} == {"IVF", "Annoy"}
    assert all(0 <= p["recall_at_10"] <= 1 and p["median_ms"] > 0 for p in result["points"])
