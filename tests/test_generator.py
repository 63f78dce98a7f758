"""Rescans: rows and features follow the folder (add, modify, delete, move)."""
import os

from samples import random_photo
from db import connect
from db.features import load_column
from db.images import count_by_status

import generator
import main


def _state(db):
    conn = connect(db)
    ids, paths, blobs = load_column(conn, "phash")
    rows = dict(conn.execute("SELECT path, status FROM images"))
    n_features = conn.execute(  # in use: features of removed files are kept for re-use until main.py --prune
        "SELECT COUNT(*) FROM features WHERE content_hash IN (SELECT content_hash FROM images)").fetchone()[0]
    conn.close()
    return rows, dict(zip(paths, blobs)), n_features


def _build(folder, db):
    summary = generator.scan(str(folder), str(db), progress=False)
    result = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False)
    return summary, result


def test_add_modify_delete_move_follow_the_folder(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(4):
        random_photo(i).save(photos / f"p{i}.jpg", quality=90)
    random_photo(9).save(photos / "sub" / "p9.PNG")  # upper-case extension counts
    (photos / "notes.txt").write_text("not an image, wrong extension: ignored")
    db = tmp_path / "p.db"
    summary, result = _build(photos, db)
    assert (summary.new, result.ok, result.done_now) == (5, 5, 5)
    rows, hashes, n_features = _state(db)
    assert set(rows) == {"p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "sub/p9.PNG"} and n_features == 5

    # nothing changed: nothing to do
    summary, result = _build(photos, db)
    assert (summary.new, summary.changed, summary.deleted, result.done_now) == (0, 0, 0, 0)

    random_photo(42).save(photos / "p1.jpg", quality=90)  # same name, new content
    os.utime(photos / "p1.jpg", ns=(1, 1_000_000_000))
    os.remove(photos / "p2.jpg")
    random_photo(5).save(photos / "p5.jpg", quality=90)
    os.rename(photos / "p3.jpg", photos / "sub" / "moved.jpg")
    summary, result = _build(photos, db)
    assert (summary.new, summary.changed, summary.moved, summary.deleted) == (1, 1, 1, 1)
    assert result.done_now == 2  # p1 changed and p5 new; the moved file is not re-extracted
    new_rows, new_hashes, n_features = _state(db)
    assert set(new_rows) == {"p0.jpg", "p1.jpg", "p5.jpg", "sub/moved.jpg", "sub/p9.PNG"}
    assert new_hashes["sub/moved.jpg"] == hashes["p3.jpg"]
    assert new_hashes["p1.jpg"] != hashes["p1.jpg"]
    assert n_features == 5  # the deleted and the replaced file's features are no longer used

    # the DB equals a fresh build of the new folder state
    fresh = tmp_path / "fresh.db"
    _build(photos, fresh)
    assert _state(fresh) == _state(db)
    conn = connect(db)
    assert count_by_status(conn) == {"ok": 5}
    conn.close()
