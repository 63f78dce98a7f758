"""db/images.py and db/scan.py on their own: fast, no pictures, no network.

Each function is checked against what a plain SELECT reads back afterwards.
"""
import pytest

from db import connect
from db.images import (
    ERROR,
    OK,
    PENDING,
    ChangedRow,
    ImageRow,
    PendingRow,
    count_by_status,
    count_images,
    delete_images,
    error_reasons,
    find_by_path,
    insert_images,
    known_files,
    pending_page,
    retry_errors,
    update_changed,
)
from db.meta import generation
from db.scan import (
    apply_moves,
    begin_scan,
    commit_batch,
    count_gone,
    count_not_checked,
    count_rows,
    end_scan,
    files_to_hash,
    gone_page,
    mark_unchecked,
    move_page,
    pair_moves,
    record_digests,
)


@pytest.fixture
def conn(tmp_path):
    conn = connect(tmp_path / "rows.db", create=True)
    yield conn
    conn.close()


def _rows(conn):
    return {path: rest for path, *rest in conn.execute(
        "SELECT path, id, size, mtime_ns, width, height, status, reason, content_hash FROM images")}


def _extracted(conn, path, digest):
    with conn:
        conn.execute("UPDATE images SET status = ?, content_hash = ? WHERE path = ?", (OK, digest, path))


def test_insert_update_delete_each_on_their_own(conn):
    g0 = generation(conn)
    insert_images(conn, [ImageRow("a.png", 10, 1, 4, 3, PENDING, None), ("b.png", 20, 2, None, None, ERROR, "empty")])
    rows = _rows(conn)
    assert rows["a.png"][1:] == [10, 1, 4, 3, PENDING, None, None]
    assert rows["b.png"][1:] == [20, 2, None, None, ERROR, "empty", None]
    assert generation(conn) == g0 + 1
    _extracted(conn, "a.png", b"h" * 16)
    update_changed(conn, [ChangedRow(rows["a.png"][0], 11, 5, 8, 6, PENDING, None)])
    assert _rows(conn)["a.png"][1:] == [11, 5, 8, 6, PENDING, None, None]  # content hash dropped: re-extract
    delete_images(conn, [rows["b.png"][0]])
    assert set(_rows(conn)) == {"a.png"} and count_images(conn) == 1


def test_lookups_pages_and_counts(conn):
    names = [f"f{i:04d}.png" for i in range(1200)]  # more than one lookup chunk
    insert_images(conn, [ImageRow(n, i, i, 1, 1, PENDING if i % 3 else ERROR, None if i % 3 else "bad")
                         for i, n in enumerate(names)])
    found = known_files(conn, names[::-1] + ["absent.png"])
    assert len(found) == 1200 and "absent.png" not in found
    assert found["f0007.png"].size == 7 and found["f0007.png"].mtime_ns == 7
    page = pending_page(conn, 0, 5)
    assert all(isinstance(r, PendingRow) for r in page) and [r.path for r in page][:2] == ["f0001.png", "f0002.png"]
    assert pending_page(conn, page[-1].id, 1)[0].id > page[-1].id
    assert count_by_status(conn) == {PENDING: 800, ERROR: 400}
    assert error_reasons(conn) == [("bad", 400)]
    assert find_by_path(conn, "f0003.png")[1] == ERROR and find_by_path(conn, "nope.png") is None
    assert retry_errors(conn) == 400 and count_by_status(conn) == {PENDING: 1200}


def test_scan_bookkeeping_seen_gone_unchecked_and_moves(conn):
    insert_images(conn, [ImageRow(p, size, 1, 1, 1, PENDING, None)
                         for p, size in (("a/1.png", 5), ("a/2.png", 6), ("b/3.png", 7), ("bb/4.png", 8))])
    for path in ("a/1.png", "a/2.png", "b/3.png", "bb/4.png"):
        _extracted(conn, path, path.encode().ljust(16, b"."))
    ids = {p: r[0] for p, r in _rows(conn).items()}
    scan = begin_scan(conn)
    assert scan.last == scan.new_after == max(ids.values()) and count_rows(conn, scan) == 4
    g0 = generation(conn)
    commit_batch(conn, scan, [], [], [ids["a/2.png"]])  # seen, unchanged: nothing written
    assert generation(conn) == g0
    commit_batch(conn, scan, [ImageRow("c/1.png", 5, 9, 1, 1, PENDING, None)], [], [])
    assert generation(conn) == g0 + 1
    mark_unchecked(conn, "b")  # b/3.png kept; bb/4.png is not under b/
    assert count_not_checked(conn, scan) == 1
    fresh = list(files_to_hash(conn, scan))  # the size of a gone row (a/1.png and bb/4.png are gone)
    assert [(r.path, r.size, r.mtime_ns) for r in fresh] == [("c/1.png", 5, 9)]
    record_digests(conn, [(fresh[0].id, b"a/1.png" + b"." * 9)])
    assert tuple(pair_moves(conn, scan)) == (1, 1)  # one move, to a row this scan inserted
    assert count_gone(conn, scan) == 1 and gone_page(conn, scan, 0, 10) == [ids["bb/4.png"]]
    apply_moves(conn, move_page(conn, 0, 10))
    rows = _rows(conn)
    assert rows["c/1.png"][0] == ids["a/1.png"] and rows["c/1.png"][2] == 9  # old id, new path and mtime
    assert rows["c/1.png"][7] == b"a/1.png" + b"." * 9  # with its content hash, so its features
    assert "a/1.png" not in rows and len(rows) == 4
    delete_images(conn, gone_page(conn, scan, 0, 10))
    end_scan(conn)
    assert set(_rows(conn)) == {"a/2.png", "b/3.png", "c/1.png"}
    assert conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'scan_new_after_id'").fetchone() == (0,)


def test_rows_inserted_by_an_unfinished_scan_stay_move_candidates(conn):
    insert_images(conn, [ImageRow("old.png", 5, 1, 1, 1, PENDING, None)])
    _extracted(conn, "old.png", b"x" * 16)
    first = begin_scan(conn)
    commit_batch(conn, first, [ImageRow("new.png", 5, 2, 1, 1, PENDING, None)], [], [])
    # killed here; the next scan sees new.png as an existing row, unchanged
    second = begin_scan(conn)
    assert second.new_after == first.last < second.last
    new_id = _rows(conn)["new.png"][0]
    assert list(files_to_hash(conn, second)) == []  # not seen by this walk yet
    commit_batch(conn, second, [], [], [new_id])
    assert [r.path for r in files_to_hash(conn, second)] == ["new.png"]
    record_digests(conn, [(new_id, b"x" * 16)])
    assert tuple(pair_moves(conn, second)) == (1, 0)  # inserted by the scan before: not new in this one
    assert move_page(conn, 0, 5)[0].old_id == _rows(conn)["old.png"][0]


def test_copies_pair_one_to_one(conn):
    """Three rows of the same bytes gone, two new files with those bytes: two moves, one deletion."""
    insert_images(conn, [ImageRow(f"old{i}.png", 5, 1, 1, 1, PENDING, None) for i in range(3)])
    for i in range(3):
        _extracted(conn, f"old{i}.png", b"same" * 4)
    scan = begin_scan(conn)
    commit_batch(conn, scan, [ImageRow(f"new{i}.png", 5, 2, 1, 1, PENDING, None) for i in range(2)], [], [])
    fresh = list(files_to_hash(conn, scan))
    record_digests(conn, [(r.id, b"same" * 4) for r in fresh])
    assert tuple(pair_moves(conn, scan)) == (2, 2) and count_gone(conn, scan) == 1
    moves = move_page(conn, 0, 10)
    assert len({m.old_id for m in moves}) == len({m.new_id for m in moves}) == 2
