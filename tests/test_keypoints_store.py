"""The keypoints table without a network: records read back, a record of another format counts as
missing and is replaced, main.py's back-fill skips a file that changed since its extraction and a
drive that is away, the prune takes keypoints with their features, and a schema-2 DB gains the table."""
import os
import sqlite3

import numpy as np
import pytest

import config
from db import SCHEMA_VERSION, connect
from db.features import ExtractedRow, prune_unused, write_batch
from db.images import insert_images, pending_page
from db.keypoints import count_without_keypoints, hashes_with_keypoints, store_keypoints, stored_keypoints
from extraction import keypoints_backfill as backfill
from extraction.keypoints_backfill import backfill_keypoints
from features.decode import content_hash
from features.keypoints import FORMAT, from_bytes
from samples import random_photo


def fake_features(rng, n):
    rgb = rng.random((n, 8), dtype=np.float32)
    features = {"embedding": rng.standard_normal((n, 16)).astype(np.float32), "rgb": rgb / rgb.sum(1, keepdims=True)}
    features.update({kind: rng.integers(0, 256, (n, 8), dtype=np.uint8) for kind in ("ahash", "dhash", "phash")})
    return features


@pytest.fixture
def extracted(tmp_path):
    """Two photos on disk, their rows ok with their true content hashes (random features); no keypoints."""
    root = tmp_path / "photos"
    root.mkdir()
    for k, name in enumerate(("a.jpg", "b.jpg")):
        random_photo(k, (480, 360)).save(root / name, quality=92)
    conn = connect(tmp_path / "k.db", create=True)
    insert_images(conn, [(name, (root / name).stat().st_size, 1, 480, 360, "pending", None)
                         for name in ("a.jpg", "b.jpg")])
    rows = pending_page(conn, 0, 10)
    hashes = [content_hash((root / row.path).read_bytes()) for row in rows]
    write_batch(conn, [ExtractedRow(r.id, r.size, r.mtime_ns, h) for r, h in zip(rows, hashes)], [], hashes,
                fake_features(np.random.default_rng(0), len(rows)))
    yield conn, root, dict(zip([r.path for r in rows], hashes)), {r.path: r.id for r in rows}
    conn.close()


def test_the_back_fill_stores_every_picture_once_and_the_finder_finds_them(extracted):
    conn, root, hashes, ids = extracted
    assert count_without_keypoints(conn, FORMAT) == 2
    assert backfill_keypoints(conn, str(root), progress=False) == 2
    assert count_without_keypoints(conn, FORMAT) == 0
    stored = stored_keypoints(conn, list(hashes.values()))
    assert set(stored) == set(hashes.values())
    picture = from_bytes(stored[hashes["a.jpg"]])
    assert (picture.keypoints.width, picture.keypoints.height) == (341, 256) and len(picture.keypoints) > 50
    assert hashes_with_keypoints(conn, list(ids.values()), FORMAT) == {ids[p]: h for p, h in hashes.items()}
    assert backfill_keypoints(conn, str(root), progress=False) == 0  # nothing left to do


def test_a_record_of_another_format_counts_as_missing_and_is_replaced(extracted):
    conn, root, hashes, ids = extracted
    backfill_keypoints(conn, str(root), progress=False)
    old = bytes([FORMAT + 1]) + stored_keypoints(conn, [hashes["a.jpg"]])[hashes["a.jpg"]][1:]
    store_keypoints(conn, [(hashes["a.jpg"], old)])
    assert count_without_keypoints(conn, FORMAT) == 1
    assert hashes_with_keypoints(conn, list(ids.values()), FORMAT) == {ids["b.jpg"]: hashes["b.jpg"]}
    assert backfill_keypoints(conn, str(root), progress=False) == 1
    assert stored_keypoints(conn, [hashes["a.jpg"]])[hashes["a.jpg"]][0] == FORMAT


def test_a_changed_file_and_an_absent_drive_are_left_for_later(extracted, tmp_path, monkeypatch):
    conn, root, hashes, _ = extracted
    with monkeypatch.context() as patch:  # an unmounted drive: not one file is tried
        patch.setattr(backfill, "read_file", lambda path: pytest.fail(f"read {path} of an absent drive"))
        assert backfill_keypoints(conn, str(tmp_path / "unmounted"), progress=False) == 0
    random_photo(7, (480, 360)).save(root / "b.jpg", quality=92)  # not the bytes b.jpg was extracted from
    assert backfill_keypoints(conn, str(root), progress=False) == 1
    assert set(stored_keypoints(conn, list(hashes.values()))) == {hashes["a.jpg"]}
    assert count_without_keypoints(conn, FORMAT) == 1


def test_the_prune_takes_the_keypoints_of_the_features_it_deletes(extracted):
    conn, root, hashes, _ = extracted
    backfill_keypoints(conn, str(root), progress=False)
    gone = [b"left the collection" + bytes(8)]
    write_batch(conn, [], [], gone, fake_features(np.random.default_rng(1), 1))  # features no image uses
    store_keypoints(conn, [(gone[0], stored_keypoints(conn, [hashes["a.jpg"]])[hashes["a.jpg"]])])
    assert prune_unused(conn) == 1
    assert set(stored_keypoints(conn, [*hashes.values(), gone[0]])) == set(hashes.values())


def test_a_schema_2_db_gains_the_keypoints_table(tmp_path):
    path = tmp_path / "old.db"
    connect(path, create=True).close()
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("DROP TABLE keypoints")
        raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    raw.close()
    conn = connect(path)
    assert count_without_keypoints(conn, FORMAT) == 0
    conn.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    raw.close()


def add_twin(conn, root, hashes):
    """'a copy.jpg': the same bytes as a.jpg, its row ok with a.jpg's content hash."""
    (root / "a copy.jpg").write_bytes((root / "a.jpg").read_bytes())
    insert_images(conn, [("a copy.jpg", (root / "a.jpg").stat().st_size, 1, 480, 360, "pending", None)])
    row = pending_page(conn, 0, 10)[0]
    write_batch(conn, [ExtractedRow(row.id, row.size, row.mtime_ns, hashes["a.jpg"])], [])


def counting_reads(monkeypatch):
    reads, real = [], backfill.read_file
    monkeypatch.setattr(backfill, "read_file", lambda path: reads.append(os.path.basename(path)) or real(path))
    return reads


def test_byte_identical_files_are_read_once(extracted, monkeypatch):
    conn, root, hashes, _ = extracted
    add_twin(conn, root, hashes)
    reads = counting_reads(monkeypatch)
    assert backfill_keypoints(conn, str(root), progress=False) == 2
    assert len(reads) == 2 and "b.jpg" in reads
    assert set(stored_keypoints(conn, list(hashes.values()))) == set(hashes.values())


def test_a_changed_file_falls_back_to_its_byte_identical_twin(extracted, monkeypatch):
    conn, root, hashes, _ = extracted
    add_twin(conn, root, hashes)
    random_photo(9, (480, 360)).save(root / "a.jpg", quality=92)  # the first of the twins changed since
    reads = counting_reads(monkeypatch)
    assert backfill_keypoints(conn, str(root), progress=False) == 2  # a's content (from its twin) and b's
    assert sorted(reads) == ["a copy.jpg", "a.jpg", "b.jpg"]
    assert set(stored_keypoints(conn, list(hashes.values()))) == set(hashes.values())


def test_the_back_fill_honours_the_pixel_limit(extracted, monkeypatch):
    conn, root, hashes, _ = extracted
    monkeypatch.setattr(config, "MAX_IMAGE_PIXELS", 1000)  # both photos are 480 x 360
    assert backfill_keypoints(conn, str(root), progress=False) == 0
    assert count_without_keypoints(conn, FORMAT) == 2
