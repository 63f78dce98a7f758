"""The scripts as a user runs them: generator -> main -> similarities, on real photos."""
import os
import subprocess
import sys

import pytest
from PIL import Image

from demo.build_demo import SOURCES
from samples import ROOT
from similarities import calculate_similarities

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not


def folder_of(path):
    return os.path.basename(os.path.dirname(path))


@pytest.mark.parametrize("mode,metric,within", [("embeddings", "cosine", 3), ("rgb", "bhattacharyya", 3),
                                                ("phash", "hamming", 3)])
def test_edited_copies_rank_first(mini_collection, mini_conn, mode, metric, within):
    """For every photo, its top results are its own edited copies."""
    for name in SOURCES:
        results = calculate_similarities(str(mini_collection["images"] / name / "original.jpg"),
                                         mini_conn.cursor(), mode, metric, top_k=within)
        assert [folder_of(p) for p, _ in results] == [name] * within, (mode, name, results)


def _run(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_scripts_end_to_end_write_a_result_picture(tmp_path):
    from demo.build_demo import build

    images = tmp_path / "photos"
    build(str(images / "set"), quarters=False)
    db = tmp_path / "photos.db"
    scan = _run(os.path.join(ROOT, "generator.py"), "--data", str(images), "--db", str(db), "--no-progress",
                cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    assert "60 new" in scan.stdout
    extract = _run(os.path.join(ROOT, "main.py"), "--db", str(db), "--workers", "1", "--no-progress", cwd=tmp_path)
    assert extract.returncode == 0, extract.stderr
    assert "60 images ok, 0 skipped" in extract.stdout
    assert "Traceback" not in extract.stderr
    out = tmp_path / "grid.png"
    query = images / "set" / "rocket" / "original.jpg"
    search = _run(os.path.join(ROOT, "similarities.py"), str(query), "--db", str(db), "--top-k", "4",
                  "--out", str(out), cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    ranked = [line.split()[-1] for line in search.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(ranked) == 4 and all("/rocket/" in p for p in ranked)
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 4 * 150 and picture.height > 150
