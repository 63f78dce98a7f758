"""The finder on a small real collection with burst frames: edited copies group around their
original, frames of one burst and a photo's quarter stay out of copy groups (they form a similar
group with --similar), and without alignment the frames were copies (the bug this fixes)."""
import os

import pytest
from PIL import Image

import generator
import main
from db import connect, copy_database, database_file
from db.keypoints import count_without_keypoints
from demo.build_demo import package_file
from demo.edits import crop_80, rotate_5, text_overlay
from duplicates import alignment, find_duplicates
from duplicates.report import COPY, SIMILAR
from features.keypoints import FORMAT

pytestmark = pytest.mark.slow  # extracts a collection: `make test` runs it, `make test-fast` does not

FRAMES = ((0.0, 0.0, 0.8, 0.9), (0.07, 0.03, 0.87, 0.93), (0.14, 0.05, 0.94, 0.95))


@pytest.fixture(autouse=True)
def cold_process():
    """Each test starts as a new process would: no pictures or verdicts kept from another test."""
    alignment._PICTURES.items.clear()
    alignment._VERDICTS.items.clear()


def sample(name):
    with Image.open(package_file("skimage", f"data/{name}")) as image:
        return image.convert("RGB").resize((640, 480), Image.LANCZOS)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory):
    base = tmp_path_factory.mktemp("bursts")
    images = base / "images"
    for folder in ("coffee", "burst", "astronaut"):
        (images / folder).mkdir(parents=True)
    coffee = sample("coffee.png")
    coffee.save(images / "coffee" / "original.jpg", quality=92)
    for name, edit in (("cropped", crop_80), ("turned", rotate_5), ("captioned", text_overlay)):
        edit(coffee).save(images / "coffee" / f"{name}.jpg", quality=90)
    cat = sample("chelsea.png")
    for k, (left, top, right, bottom) in enumerate(FRAMES):
        cat.crop((int(left * 640), int(top * 480), int(right * 640), int(bottom * 480))).save(
            images / "burst" / f"frame_{k}.jpg", quality=92)
    astronaut = sample("astronaut.png")
    astronaut.save(images / "astronaut" / "whole.jpg", quality=92)
    astronaut.crop((0, 0, 320, 240)).save(images / "astronaut" / "quarter.jpg", quality=92)
    db_path = base / "bursts.db"
    generator.scan(str(images), str(db_path), progress=False)
    main.extract(str(db_path), model="efficientnet_lite0", workers=0, progress=False)
    conn = connect(db_path)
    yield conn, os.path.realpath(images)
    conn.close()


def named(report, root, kind):
    return sorted(sorted(os.path.relpath(p, root) for p in g.paths) for g in report.groups if g.kind == kind)


def test_copies_group_around_the_original_and_bursts_stay_apart(bursts):
    conn, root = bursts
    report = find_duplicates(conn)
    assert named(report, root, COPY) == [["coffee/captioned.jpg", "coffee/cropped.jpg", "coffee/original.jpg",
                                          "coffee/turned.jpg"]]
    assert os.path.relpath(report.groups[0].keep, root) == "coffee/original.jpg"
    alignment = report.settings["alignment"]
    # main.py stored every picture's keypoints: no image file was read to align them.
    assert alignment["stored"] >= 7 and alignment["pictures"] == 0 and alignment["apart"] >= 3


def test_burst_frames_are_similar_shots(bursts):
    conn, root = bursts
    similar = named(find_duplicates(conn, similar=True), root, SIMILAR)
    assert ["burst/frame_0.jpg", "burst/frame_1.jpg", "burst/frame_2.jpg"] in similar
    assert not any("coffee/cropped.jpg" in g for g in similar)


def test_without_alignment_burst_frames_were_copies(bursts):
    """The behaviour the alignment replaces: the embeddings alone put the frames in a copy group."""
    conn, root = bursts
    copies = named(find_duplicates(conn, align=False), root, COPY)
    assert any(sum(p.startswith("burst/") for p in g) >= 2 for g in copies)


def test_large_sets_align_one_keeper_at_a_time_with_the_same_answer(bursts, monkeypatch):
    """Sets above DENSE_ROWS take the other code path (one keeper against the rest): same groups."""
    conn, root = bursts
    dense = named(find_duplicates(conn, similar=True), root, COPY)
    monkeypatch.setattr("duplicates.matrix_groups.DENSE_ROWS", 1)
    assert named(find_duplicates(conn, similar=True), root, COPY) == dense


def test_an_older_db_is_aligned_from_the_files_until_main_py_fills_in_the_keypoints(bursts, tmp_path):
    """A DB extracted before the keypoints table: the finder reads the files (same groups), and
    main.py's next run stores the keypoints without running the network again."""
    conn, root = bursts
    copy = tmp_path / "older.db"
    copy_database(database_file(conn), copy)
    older = connect(copy)
    with older:
        older.execute("DELETE FROM keypoints")
    expected = named(find_duplicates(conn), root, COPY)
    report = find_duplicates(older)
    assert named(report, root, COPY) == expected
    assert report.settings["alignment"]["stored"] == 0 and report.settings["alignment"]["pictures"] >= 7
    summary = main.extract(str(copy), model="efficientnet_lite0", workers=0, progress=False)
    assert summary.done_now == 0  # nothing pending: no network run
    assert count_without_keypoints(older, FORMAT) == 0
    alignment._PICTURES.items.clear()  # a new process: nothing kept from the runs above
    alignment._VERDICTS.items.clear()
    again = find_duplicates(older)
    assert named(again, root, COPY) == expected
    assert again.settings["alignment"]["pictures"] == 0 and again.settings["alignment"]["stored"] >= 7
    older.close()
