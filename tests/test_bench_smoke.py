"""The benchmark harness runs end to end on tiny sizes, so that it cannot rot unnoticed.

`make bench` takes many minutes and is not part of `make test`; this runs the same code
(`python -m bench.run`, as the Makefile does) on 3 photos and a 2,000-row synthetic DB in
a fresh process, and checks what it writes: the JSON (reopened) and the markdown tables.
It asserts structure, never speed.
"""
import json
import subprocess
import sys

import pytest

from samples import ROOT

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")


def test_bench_run_writes_its_json_and_tables(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench.run", "--quick", "--images", "3", "--sizes", "2000", "--queries", "3",
               "--reference-queries", "2", "--float32", "--no-demo", "--cache", str(tmp_path / "cache"),
               "--results", str(results)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    [json_file] = results.glob("bench-*.json")
    [table_file] = results.glob("bench-*.md")
    data = json.loads(json_file.read_text())
    assert set(FLAGS) <= set(data["machine"]["cpu_flags"])
    ex = data["extraction"]
    assert data["kind"] == "quick" and ex["images"] == 3 and ex["precision"] == "float32"
    assert ex["runtime"] in ("onnxruntime", "torch") and ex["reference_network"] == "torch float32, batch 1"
    # Timings are measured, never judged here (other jobs share the cores).
    assert all(run["ok"] == 3 and run["seconds"] > 0 and run["cpu_use"] > 0 for run in ex["runs"])
    assert ex["reference_seconds"] > 0 and {"read", "decode", "network", "hashes"} <= set(ex["stages"])
    assert ex["cold_query"]["first_answer_s"] > 0 and ex["one_photo_run"]["wall_s"] > 0
    [search] = data["search"]
    assert search["n"] == 2000 and "embeddings/cosine" in search["queries"]
    assert all(q["project"]["count"] == 3 for q in search["queries"].values())
    assert search["ann_index"]["kind"] == "ivf" and search["ann_reference"]["kind"] == "annoy"  # side by side
    for numbers in (search["ann_index"], search["ann_reference"]):
        assert len(numbers["sweep"]) >= 3 and all(0 <= p["recall_at_10"] <= 1 for p in numbers["sweep"])
    assert data["targets"] and all({"target", "measured", "met"} <= set(t) for t in data["targets"])

    table = table_file.read_text()
    for text in ("| run | img/s | vs reference", "| stage, ms per image", "| measure | N=2,000",
                 "| N | index | setting | recall@10",
                 "| target | measured | met |", "| CPU use (of all cores) |", "in float32", "on " + ex["runtime"]):
        assert text in table, text
    assert all(f"{flag} {'yes' if data['machine']['cpu_flags'][flag] else 'no'}" in table for flag in FLAGS)
    assert table.split("\n", 2)[2] in out.stdout  # the same tables were printed
