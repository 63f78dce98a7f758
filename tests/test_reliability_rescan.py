"""Rescans: after adds, edits, deletes, renames, moves and swaps the DB equals a fresh build.

Files are identified by content hash, so a renamed or moved file keeps its row and its
features row (same rowid: never rewritten) and costs no extraction.
"""
import os

import numpy as np
import pytest
from PIL import Image

import generator
import main
from db import connect
from reliability_tools import MODEL, features_by_path, image_rows, query
from similarities import calculate_similarities


def _put(root, rel, seed, fmt="PNG", size=(36, 28), mtime=None):
    """Write a distinct smooth picture; BMPs of one size always have the same byte count."""
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    coarse = np.random.default_rng(seed).integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize(size, Image.BICUBIC).save(path, fmt)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def _build(folder, db):
    summary = generator.scan(str(folder), str(db), progress=False)
    result = main.extract(str(db), model=MODEL, workers=0, batch_size=4, progress=False, build_index=False)
    return summary, result


def _state(db):
    """What a user can observe: path -> (status, reason, features); plus the features row count."""
    rows, features = image_rows(db), features_by_path(db)
    state = {path: (status, reason, features.get(path)) for path, (_, status, reason, _) in rows.items()}
    # Features of files gone from the folder are kept for re-use (main.py --prune): count those in use.
    in_use = query(db, "SELECT COUNT(*) FROM features WHERE content_hash IN (SELECT content_hash FROM images)")[0][0]
    return state, in_use


def _identity(db):
    """path -> (image row id, content hash, features rowid): what must survive a move untouched."""
    rows = query(db, "SELECT i.path, i.id, i.content_hash, f.rowid FROM images AS i"
                     " LEFT JOIN features AS f ON f.content_hash = i.content_hash")
    return {row[0]: row[1:] for row in rows}


def _assert_equals_fresh_build(folder, db, tmp_path, name):
    fresh = tmp_path / f"fresh_{name}.db"
    _build(folder, fresh)
    assert _state(db) == _state(fresh)


def _assert_queries_see_only_existing_files(folder, db):
    conn = connect(db)
    try:
        ok = {p for p, row in image_rows(db).items() if row[1] == "ok"}
        query_path = os.path.join(folder, sorted(ok)[0])
        found = calculate_similarities(query_path, conn.cursor(), "rgb", "bhattacharyya", top_k=1000)
    finally:
        conn.close()
    found = {os.path.relpath(p, folder) for p, _ in found}
    assert found == ok - {sorted(ok)[0]}
    assert all(os.path.isfile(os.path.join(folder, p)) for p in found)


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    for i in range(6):
        _put(photos, f"a/p{i}.png", seed=i)
    for i in range(4):  # same size on disk; distinct mtimes so a swap is visible
        _put(photos, f"b/q{i}.bmp", seed=10 + i, fmt="BMP", mtime=1_600_000_000_000_000_000 + i * 10**9)
    (photos / "c").mkdir()
    (photos / "c" / "broken.png").write_bytes((photos / "a" / "p0.png").read_bytes()[:120])
    (photos / "dup.png").write_bytes((photos / "a" / "p0.png").read_bytes())
    _put(photos, "f/upper.PNG", seed=20)  # an upper-case extension counts
    (photos / "f" / "notes.txt").write_text("not an image, wrong extension: ignored")
    return photos


def test_rescan_after_every_kind_of_change_equals_a_fresh_build(folder, tmp_path):
    db = tmp_path / "photos.db"
    summary, result = _build(folder, db)
    assert (summary.new, result.done_now) == (13, 13) and "f/upper.PNG" in image_rows(db)
    assert not any(path.endswith(".txt") for path in image_rows(db))
    before = _identity(db)
    summary, result = _build(folder, db)  # nothing changed: nothing to do
    assert (summary.new, summary.changed, summary.moved, summary.deleted, result.done_now) == (0, 0, 0, 0, 0)
    assert _identity(db) == before

    _put(folder, "new/n0.png", seed=100)  # added
    _put(folder, "new/n1.png", seed=101)
    _put(folder, "a/p1.png", seed=102, size=(40, 30))  # edited, new size
    _put(folder, "b/q0.bmp", seed=103, fmt="BMP", mtime=1_700_000_000_000_000_000)  # edited, same size
    os.remove(folder / "a" / "p2.png")  # deleted
    os.rename(folder / "a" / "p3.png", folder / "a" / "p3_renamed.png")  # renamed
    os.makedirs(folder / "d" / "deep")
    os.rename(folder / "a" / "p4.png", folder / "d" / "deep" / "p4.png")  # moved to a new folder
    os.rename(folder / "b" / "q1.bmp", folder / "b" / "tmp.bmp")  # two names swapped
    os.rename(folder / "b" / "q2.bmp", folder / "b" / "q1.bmp")
    os.rename(folder / "b" / "tmp.bmp", folder / "b" / "q2.bmp")
    _put(folder, "c/broken.png", seed=104)  # a broken file repaired
    (folder / "b" / "q3.bmp").write_bytes((folder / "b" / "q3.bmp").read_bytes()[:500])  # a good file broken
    os.makedirs(folder / "e")
    os.rename(folder / "dup.png", folder / "e" / "dup.png")  # a duplicate moved
    os.rename(folder / "a" / "p5.png", folder / "a" / "p5b.png")  # renamed and edited
    _put(folder, "a/p5b.png", seed=105)

    summary, result = _build(folder, db)
    assert (summary.new, summary.changed, summary.moved, summary.deleted) == (3, 6, 3, 2), summary
    assert result.done_now == 3 + 6  # the new and the changed files; never a moved one
    after = _identity(db)
    for old, new in (("a/p3.png", "a/p3_renamed.png"), ("a/p4.png", "d/deep/p4.png"), ("dup.png", "e/dup.png")):
        assert after[new] == before[old], f"{old} -> {new} lost its row or features"
    rows = image_rows(db)
    assert rows["b/q3.bmp"][1] == "error" and rows["b/q3.bmp"][3] is None  # no stale features kept
    assert rows["c/broken.png"][1] == "ok"
    _assert_equals_fresh_build(folder, db, tmp_path, "round1")
    _assert_queries_see_only_existing_files(folder, db)


def test_renames_and_moves_alone_cost_no_extraction(folder, tmp_path):
    db = tmp_path / "photos.db"
    _build(folder, db)
    before = _identity(db)
    os.rename(folder / "a", folder / "album")  # a whole folder renamed: 6 moves
    os.rename(folder / "b" / "q0.bmp", folder / "q0_top.bmp")
    summary, result = _build(folder, db)
    assert (summary.new, summary.changed, summary.moved, summary.deleted) == (0, 0, 7, 0), summary
    assert result.done_now == 0
    after = _identity(db)
    for i in range(6):
        assert after[f"album/p{i}.png"] == before[f"a/p{i}.png"]
    assert after["q0_top.bmp"] == before["b/q0.bmp"]
    _assert_equals_fresh_build(folder, db, tmp_path, "moves")


def test_file_edited_between_scan_and_extraction_is_caught_by_the_next_rescan(folder, tmp_path):
    db = tmp_path / "photos.db"
    generator.scan(str(folder), str(db), progress=False)
    _put(folder, "a/p1.png", seed=200, size=(50, 20))  # the user edits it while main.py is queued
    main.extract(str(db), model=MODEL, workers=0, batch_size=4, progress=False, build_index=False)
    summary, _ = _build(folder, db)
    assert summary.changed == 1
    _assert_equals_fresh_build(folder, db, tmp_path, "edited")
