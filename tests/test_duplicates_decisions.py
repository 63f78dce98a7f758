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

pytestmark = pytest.mark.slow  # scans and extracts real photos, runs find_duplicates.py: `make test-fast` leaves it out


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


def test_the_date_taken_the_db_holds_is_used_without_reading_the_file(tmp_path, monkeypatch):
    # Two saves of one photo: "b.jpg" carries an EXIF date of 2001 and is written last; "a.jpg"
    # has none (its file time, now, counts). The DB's date (main.py reads the header) makes b the
    # keeper; the finder does not read either header again.
    images = tmp_path / "images"
    images.mkdir()
    with Image.open(package_file(*SOURCES["coffee"])) as source:
        photo = source.convert("RGB")
    photo.save(images / "a.jpg", quality=90)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2001:02:03 04:05:06"
    photo.save(images / "b.jpg", quality=92, exif=exif)
    for name in ("chelsea", "astronaut", "rocket", "motorcycle"):  # others: the search centres the vectors
        with Image.open(package_file(*SOURCES[name])) as source:
            source.convert("RGB").save(images / f"other-{name}.jpg", quality=90)
    db_path = tmp_path / "dated.db"
    generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    conn = connect(db_path)
    taken = dict(conn.execute("SELECT path, taken FROM images WHERE exif_read = 1"))
    assert len(taken) == 6 and taken["a.jpg"] is None and taken["b.jpg"] == "2001-02-03T04:05:06"
    import duplicates.finder as finder

    def no_reads(path):
        raise AssertionError(f"read the header of {path} again")

    monkeypatch.setattr(finder, "date_taken_ns", no_reads)
    group, = find_duplicates(conn).groups
    assert os.path.basename(group.keep) == "b.jpg" and group.members[1].reason == "older (date taken, else mtime)"
    assert group.members[0].taken_ns == 981173106 * 10**9
