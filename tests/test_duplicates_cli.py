"""find_duplicates.py on a real extracted collection (the session's mini collection: 10 photos,
each with 5 edited copies in its own folder), its output files reopened, and every bad input
giving one line and exit status 2."""
import csv
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from db import connect
from duplicates import DEFAULT_THRESHOLDS, find_duplicates
from samples import ROOT
from viz.duplicate_sheet import save_duplicate_sheet

pytestmark = pytest.mark.slow  # runs find_duplicates.py: `make test` runs it, `make test-fast` does not

SCRIPT = os.path.join(ROOT, "find_duplicates.py")


def run_script(*args, timeout=180):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def folder_of(path, images):
    return os.path.relpath(path, images).split(os.sep)[0]


def test_each_photo_and_its_edits_form_one_group(mini_conn, mini_collection):
    images = os.path.realpath(mini_collection["images"])
    report = find_duplicates(mini_conn)
    folders = [{folder_of(p, images) for p in g.paths} for g in report.groups]
    assert all(len(f) == 1 for f in folders)  # no group mixes two photos
    assert len(report.groups) == 10 and all(len(g.members) >= 5 for g in report.groups)  # at most one edit missed
    for group in report.groups:
        names = {os.path.basename(p) for p in group.paths}
        assert os.path.basename(group.keep) == "original.jpg"  # not the larger brightened or flipped copy
        assert group.distances[0] == 0 and all(0 <= d <= 0.5 for d in group.distances)
        assert "original.jpg" in names


def test_outputs_are_written_and_read_back(mini_collection, tmp_path):
    images = os.path.realpath(mini_collection["images"])
    out_json, out_csv, sheet = tmp_path / "d.json", tmp_path / "d.csv", tmp_path / "sheet.png"
    done = run_script("--db", str(mini_collection["db"]), "--json", str(out_json), "--csv", str(out_csv),
                      "--out", str(sheet))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("10 groups of copies") and "would free" in done.stdout
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(data) == {"groups", "settings"} and data["settings"]["threshold"] == DEFAULT_THRESHOLDS["cosine"]
    assert len(data["groups"]) == 10
    for group in data["groups"]:
        assert set(group) == {"paths", "keep", "distances", "kind", "members"} and group["kind"] in ("exact", "copy")
        assert [m["path"] for m in group["members"]] == group["paths"] and group["members"][0]["reason"] == "keeper"
        for member in group["members"]:
            assert member["bytes"] == os.path.getsize(member["path"]) and member["kind"] in ("exact", "copy")
            with Image.open(member["path"]) as image:
                assert member["pixels"] == image.size[0] * image.size[1]
            assert member["date"][:2] in ("19", "20") and member["date_source"] in ("exif", "mtime")
        assert group["keep"] == group["paths"][0] and len(group["distances"]) == len(group["paths"])
        assert all(os.path.isabs(p) and os.path.exists(p) for p in group["paths"])
    with open(out_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["group", "group_kind", "path", "keep", "kind", "distance", "width", "height", "bytes",
                             "date", "reason"]
    assert {r["reason"] for r in rows if r["keep"] == "yes"} == {"keeper"}
    assert all(r["reason"] != "keeper" for r in rows if r["keep"] == "no")
    assert len(rows) == sum(len(g["paths"]) for g in data["groups"])
    assert sum(r["keep"] == "yes" for r in rows) == 10
    first = rows[0]
    assert int(first["bytes"]) == os.path.getsize(first["path"])
    with Image.open(first["path"]) as image:
        assert (int(first["width"]), int(first["height"])) == image.size
    assert all(folder_of(r["path"], images) == folder_of(data["groups"][int(r["group"]) - 1]["keep"], images)
               for r in rows)
    with Image.open(sheet) as picture:
        assert picture.format == "PNG" and picture.height > 10 * 128


def test_similar_shots_are_reported_as_their_own_kind(mini_collection, tmp_path):
    out_csv = tmp_path / "d.csv"
    plain = run_script("--db", str(mini_collection["db"]))
    done = run_script("--db", str(mini_collection["db"]), "--similar", "0.6", "--csv", str(out_csv))
    assert done.returncode == 0, done.stderr
    assert "groups of similar shots (cosine <= 0.6; different pictures: nothing to free)" in done.stdout
    first, second = done.stdout.splitlines()[:2]
    assert second == plain.stdout.splitlines()[1]  # the copies and the bytes they free are unchanged
    assert first.split("; ")[0] == plain.stdout.splitlines()[0].split("; ")[0]
    with open(out_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    similar = [r for r in rows if r["group_kind"] == "similar"]
    assert similar and all(r["kind"] == "similar" for r in similar)
    copies = {r["path"] for r in rows if r["group_kind"] != "similar" and r["keep"] == "no"}
    assert not copies & {r["path"] for r in similar}  # similar shots: keepers and images in no group only


def test_sheet_pages(mini_conn, tmp_path):
    groups = find_duplicates(mini_conn).groups
    written = save_duplicate_sheet(groups, str(tmp_path / "s.png"), per_page=4)
    assert [os.path.basename(p) for p in written] == ["s.png", "s-2.png", "s-3.png"]
    for path in written:
        with Image.open(path) as page:
            page.verify()


@pytest.mark.parametrize("args, message", [
    (["--db", "{tmp}/missing.db"], "no database at"),
    (["--db", "{empty}"], "no extracted features yet"),
    (["--db", "{mini}", "--mode", "colour"], "unknown mode; valid modes for duplicates"),
    (["--db", "{mini}", "--mode", "rgb"], "ignores layout"),
    (["--db", "{mini}", "--threshold", "1.5"], "threshold for cosine must be"),
    (["--db", "{mini}", "--mode", "dhash", "--threshold", "40"], "threshold for hamming must be"),
    (["--db", "{mini}", "--threshold", "lots"], "--threshold must be a number"),
    (["--db", "{mini}", "--similar", "lots"], "--similar must be a cosine distance"),
    (["--db", "{mini}", "--similar", "0.1"], "must reach beyond the copy threshold"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, mini_collection, tmp_path):
    empty = tmp_path / "empty.db"
    connect(empty, create=True).close()
    values = {"tmp": tmp_path, "empty": empty, "mini": mini_collection["db"]}
    done = run_script(*[a.format(**values) for a in args])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr


def test_alignment_is_reported_and_can_be_left_out(mini_collection):
    aligned = run_script("--db", str(mini_collection["db"]))
    assert aligned.returncode == 0, aligned.stderr
    line = next(x for x in aligned.stdout.splitlines() if x.startswith("aligned "))
    assert "0 unreadable" in line and " copies, " in line
    plain = run_script("--db", str(mini_collection["db"]), "--no-align")
    assert plain.returncode == 0 and "aligned " not in plain.stdout and plain.stdout.startswith("10 groups")
