"""Smoke test of the web app benchmark harness (bench/bench_webapp.py) on the mini collection:
it runs as a module, as `make` runs it, and writes a complete JSON report."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_webapp_tiny(mini_collection, tmp_path):
    out = tmp_path / "webapp.json"
    done = subprocess.run([sys.executable, "-m", "bench.bench_webapp", "--tiny", "--db", str(mini_collection["db"]),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "avx2" in done.stdout and "| upload search" in done.stdout
    report = json.loads(out.read_text())
    assert set(report["cpu_flags"]) == {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
    (row,) = report["results"]
    assert row["images"] == mini_collection["count"]
    assert row["upload"]["runs"] == row["similar"]["runs"] == 3
    # Timings are reported, never judged here (other jobs share the cores): only that each was measured.
    for value in (row["similar"]["median_ms"], row["upload"]["median_ms"], row["cli_query_s"],
                  row["first_screen_warm"], row["server_start_s"]):
        assert isinstance(value, (int, float)) and value > 0
