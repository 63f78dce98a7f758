"""The duplicate benchmark's harness runs end to end on tiny sizes (a subprocess: tests import
no bench code): data built, both sides run in their own processes, table and JSON written,
and the cells find every pair the all-pairs reference finds."""
import json
import subprocess
import sys

import pytest

from samples import ROOT

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not


def test_bench_duplicates_tiny(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench.bench_duplicates", "--tiny", "--out", str(out),
                           "--cache", str(tmp_path / "cache")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "avx512_bf16" in done.stdout and "| 8,000 |" in done.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [row["n"] for row in data["rows"]] == [3000, 8000]
    for row in data["rows"]:
        assert row["recall_of_reference_pairs"] >= 0.99 and row["extra_pairs"] == 0
        assert row["planted_pairs_found"] >= 0.99
        assert row["ours"]["groups"] == row["reference"]["groups"]


def test_bench_alignment_tiny(tmp_path):
    """The alignment benchmark's harness: both sources, both thread counts, every verdict known
    (each photo's crop a copy, the next photo apart), the table and the JSON written."""
    out = tmp_path / "alignment"
    done = subprocess.run([sys.executable, "-m", "bench.bench_alignment", "--tiny", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "avx512_bf16" in done.stdout and "keypoints from stored (main.py)" in done.stdout
    data = json.loads((tmp_path / "alignment.json").read_text(encoding="utf-8"))
    assert {(r["source"], r["photos"]) for r in data["rows"]} == {
        (source, photos) for source in ("files", "stored (main.py)")
        for photos in ("camera (4032 x 3024)", "small (1024 x 768)")}
    assert all(r["copies"] == 4 and r["apart"] == 4 for r in data["rows"])
    assert (tmp_path / "alignment.md").read_text(encoding="utf-8").startswith("CPU flags")
