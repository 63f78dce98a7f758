"""A reviewer's decisions ("not duplicates", "keep this one instead") are stored by content
hash and honoured by find_duplicates: on a small real collection (two sample photos and
their edits, scanned and extracted by the project's pipeline), through a rescan after files
are moved and renamed, and --list-decisions / --forget-decisions from the command line."""
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

import generator
import main
from db import connect
from db.decisions import forget_decisions, list_decisions, load_decisions, mark_apart, mark_keep
from demo.build_demo import SOURCES, package_file
from demo.edits import brighten_30, resize_50
from duplicates import find_duplicates
from samples import ROOT


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory):
    """cat/{original,brightened,resized}.jpg and coffee/{original,resized}.jpg, extracted."""
    base = tmp_path_factory.mktemp("decisions")
    images = base / "images"
    for name in ("chelsea", "coffee"):
        folder = images / name
        folder.mkdir(parents=True)
        with Image.open(package_file(*SOURCES[name])) as source:
            photo = source.convert("RGB")
        photo.save(folder / "original.jpg", quality=92)
        resize_50(photo).save(folder / "resized.jpg", quality=90)
        if name == "chelsea":
            brighten_30(photo).save(folder / "brightened.jpg", quality=90)
    db_path = base / "small.db"
    generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    return images, db_path


def relative_groups(report, root):
    return sorted(sorted(os.path.relpath(p, root) for p in g.paths) for g in report.groups)


def hashes_of(conn, report, group):
    rel = {os.path.relpath(p, report.settings["root"]) for p in report.groups[group].paths}
    return {path: bytes(h) for path, h in conn.execute("SELECT path, content_hash FROM images") if path in rel}


def test_decisions_survive_a_rescan_after_moves_and_renames(small_collection, tmp_path):
    source, _ = small_collection
    images = tmp_path / "images"
    shutil.copytree(source, images)
    db_path = tmp_path / "work.db"
    generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    conn = connect(db_path)
    before = find_duplicates(conn)
    assert relative_groups(before, images) == [
        ["chelsea/brightened.jpg", "chelsea/original.jpg", "chelsea/resized.jpg"],
        ["coffee/original.jpg", "coffee/resized.jpg"]]
    cat = next(k for k, g in enumerate(before.groups) if "chelsea" in g.keep)
    cat_hashes, coffee_hashes = hashes_of(conn, before, cat), hashes_of(conn, before, 1 - cat)
    # The coffee group: not duplicates. The cat's resized copy: not a duplicate of the others.
    # The brightened copy: keep this one instead.
    mark_apart(conn, coffee_hashes.values())
    resized = cat_hashes["chelsea/resized.jpg"]
    mark_apart(conn, [resized], [h for h in cat_hashes.values() if h != resized])
    mark_keep(conn, cat_hashes["chelsea/brightened.jpg"], cat_hashes.values())
    after = find_duplicates(conn)
    assert relative_groups(after, images) == [["chelsea/brightened.jpg", "chelsea/original.jpg"]]
    assert os.path.relpath(after.groups[0].keep, images) == "chelsea/brightened.jpg"
    assert after.groups[0].members[1].reason == "chosen by a reviewer"
    # Files moved and renamed; the rescan matches them by content (no re-extraction).
    os.rename(images / "chelsea" / "brightened.jpg", images / "chelsea" / "bright-version.jpg")
    shutil.move(str(images / "coffee"), str(images / "drinks"))
    summary = generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    assert summary is not None
    moved = find_duplicates(connect(db_path))
    assert relative_groups(moved, images) == [["chelsea/bright-version.jpg", "chelsea/original.jpg"]]
    assert os.path.relpath(moved.groups[0].keep, images) == "chelsea/bright-version.jpg"
    # --list-decisions names today's files; --forget-decisions brings the groups back.
    listed = run_script("--db", str(db_path), "--list-decisions")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("4 decisions") and "drinks/original.jpg" in listed.stdout
    assert "keep            chelsea/bright-version.jpg" in listed.stdout
    forgot = run_script("--db", str(db_path), "--forget-decisions")
    assert forgot.returncode == 0 and forgot.stdout.strip() == "forgot 4 decisions"
    assert list_decisions(connect(db_path)) == []
    again = find_duplicates(connect(db_path))
    assert len(again.groups) == 2 and os.path.basename(again.groups[0].keep) == "original.jpg"


def test_one_keeper_decision_per_group(tmp_path):
    conn = connect(tmp_path / "d.db", create=True)
    mark_keep(conn, b"a", [b"a", b"b"])
    mark_keep(conn, b"b", [b"a", b"b"])
    assert load_decisions(conn).keep == {b"b"}
    assert mark_apart(conn, [b"x", b"y", b"z"]) == 3 and mark_apart(conn, [b"q"], [b"x", b"q"]) == 1
    assert load_decisions(conn).apart == {(b"x", b"y"), (b"x", b"z"), (b"y", b"z"), (b"q", b"x")}
    assert forget_decisions(conn) == 5 and load_decisions(conn).apart == frozenset()


def run_script(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "find_duplicates.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=180)
