"""Smoke test of bench/bench_network.py at its tiny size, in a fresh process (no bench import):
it runs, writes its JSON (reopened here) and prints the table it stores. Structure only, never speed."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")


def test_bench_network_tiny_writes_json_and_table(tmp_path):
    out = tmp_path / "network.json"
    done = subprocess.run([sys.executable, "-m", "bench.bench_network", "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(FLAGS) <= set(report["machine"]["cpu_flags"])
    rows = report["rows"]
    assert {(r["runtime"], r["precision"], r["threads"], r["batch"]) for r in rows} == {
        (runtime, "float32", 1, batch) for runtime in ("torch", "onnxruntime") for batch in (1, 2)}
    assert all(r["images_per_s"] > 0 and r["model"] == "efficientnet_lite0" for r in rows)
    table = report["table"]
    assert "| torch, float32 |" in table and "| onnxruntime / torch, float32 |" in table
    assert all(f"{flag} {'yes' if report['machine']['cpu_flags'][flag] else 'no'}" in table for flag in FLAGS)
    assert table in done.stdout
