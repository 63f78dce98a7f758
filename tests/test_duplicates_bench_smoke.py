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


def test_quality_harnesses_tiny(tmp_path):
    """make quality's duplicate harnesses on six sample photos (no Debian package): every edit of a
    photo joins it, mirrored and 90-degree-turned copies only with --any-orientation, and the
    burst frames are copies without alignment but similar shots with it."""
    for name in ("quality_duplicates", "quality_kinds"):
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--tiny", "--cache", str(tmp_path),
                               "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / f"{name}.md").read_text(encoding="utf-8") in done.stdout
    rows = json.loads((tmp_path / "quality_duplicates.json").read_text(encoding="utf-8"))["rows"]
    options = ("linkage", "use_hashes", "align", "any_orientation")
    default = next(r for r in rows if r["mode"] == "embeddings" and not any(k in r for k in options))
    assert default["precision"] == 1.0 and default["copies"]["recall"] == 1.0
    per_edit = default["copies"]["recall_per_edit"]
    assert per_edit["rotate_5"] == per_edit["text_overlay"] == 1.0 and per_edit["rotate_90"] == 0.0
    turned = next(r for r in rows if r.get("any_orientation"))["copies"]["recall_per_edit"]
    assert turned["rotate_90"] == turned["flip"] == 1.0
    kinds = {r["align"]: r["series"] for r in json.loads((tmp_path / "quality_kinds.json").read_text("utf-8"))["rows"]}
    assert kinds[True]["as_copy"] == 0.0 and kinds[True]["as_similar"] == 1.0 and kinds[False]["as_copy"] == 1.0
