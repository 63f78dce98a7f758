"""What the DB records about its features, the blob layout, and refusing to mix settings."""
import sqlite3

import numpy as np
import pytest

import main
from db import SCHEMA_VERSION, SchemaVersionError, SettingsMismatchError, batched, connect, copy_database
from db.codec import blobs_to_bits, blobs_to_matrix, vector_to_blob
from db.meta import get_meta


def test_meta_records_every_setting(mini_conn):
    meta = get_meta(mini_conn)
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["embedding_model"] == "efficientnet_lite0" and meta["embedding_dim"] == "1280"
    assert len(meta["embedding_weights_sha256"]) == 64 and meta["embedding_weights_sha256"].startswith("57934424")
    assert (meta["vector_dtype"], meta["rgb_dim"], meta["hist_bins"], meta["hash_size"]) == \
        ("float32-le", "512", "8", "8")
    assert meta["embedding_precision"] in ("float32", "bfloat16")
    assert mini_conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_blobs_are_little_endian_float32_and_packed_bits(mini_conn):
    embedding, rgb, phash = mini_conn.execute("SELECT embedding, rgb, phash FROM features LIMIT 1").fetchone()
    assert len(embedding) == 1280 * 4 and len(rgb) == 512 * 4 and len(phash) == 8
    assert np.frombuffer(rgb, dtype="<f4").sum() == pytest.approx(1.0, abs=1e-5)
    vector = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    assert vector_to_blob(vector) == b"\x00\x00\xc0?\x00\x00\x00\xc0\x00\x00P@"
    assert np.array_equal(blobs_to_matrix([vector_to_blob(vector)] * 2, 3), np.stack([vector, vector]))
    assert blobs_to_bits([b"\x01\x02", b"\xff\x00"], 2).tolist() == [[1, 2], [255, 0]]


def test_other_settings_are_refused_with_a_way_out(mini_collection, tmp_path):
    db = tmp_path / "copy.db"
    copy_database(mini_collection["db"], db)
    with pytest.raises(SettingsMismatchError, match=r"hash_size: DB has 8, asked for 16.*--reset-features"):
        main.extract(str(db), model="efficientnet_lite0", hash_size=16, workers=0, progress=False)


def test_other_network_precision_is_refused(mini_collection, tmp_path, monkeypatch):
    """bfloat16 and float32 embeddings differ slightly: one DB never holds both."""
    import config

    db = tmp_path / "copy.db"
    copy_database(mini_collection["db"], db)
    conn = connect(db)
    stored = get_meta(conn)["embedding_precision"]
    conn.close()
    other = "float32" if stored == "bfloat16" else "bfloat16"
    monkeypatch.setattr(config, "EMBED_PRECISION", other)
    with pytest.raises(SettingsMismatchError, match=f"embedding_precision: DB has {stored}, asked for {other}"):
        main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False)


@pytest.mark.slow
def test_reset_features_re_extracts_with_new_settings(mini_collection, tmp_path):
    db = tmp_path / "copy.db"
    copy_database(mini_collection["db"], db)
    result = main.extract(str(db), model="efficientnet_lite0", hash_size=16, workers=0, progress=False,
                          reset=True, build_index=False)
    assert result.done_now == mini_collection["count"]
    conn = connect(db)
    assert get_meta(conn)["hash_size"] == "16"
    assert {len(b) for (b,) in conn.execute("SELECT phash FROM features")} == {32}
    conn.close()


def test_old_schema_version_is_refused(tmp_path):
    db = tmp_path / "old.db"
    connect(db, create=True).close()
    raw = sqlite3.connect(db)
    raw.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with pytest.raises(SchemaVersionError, match=f"schema version 0, this code needs {SCHEMA_VERSION}"):
        connect(db)


@pytest.mark.parametrize("kwargs,fragment", [({"batch_size": 0}, "batch_size must be a positive integer"),
                                             ({"hash_size": 1}, "hash_size must be at least 2"),
                                             ({"model": "vgg"}, "valid: auto, resnet18, efficientnet_lite0")])
def test_extract_validates_arguments(mini_collection, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        main.extract(str(mini_collection["db"]), workers=0, progress=False, **kwargs)


def test_hash_sizes_that_do_not_fill_whole_bytes_are_searchable(mini_collection, tmp_path):
    """hash_size 10 -> 100 bits -> 13 packed bytes (np.packbits pads the last byte)."""
    from similarities import calculate_similarities

    db = tmp_path / "copy.db"
    copy_database(mini_collection["db"], db)
    main.extract(str(db), model="efficientnet_lite0", hash_size=10, workers=0, progress=False, reset=True)
    conn = connect(db)
    assert {len(b) for (b,) in conn.execute("SELECT phash FROM features")} == {13}
    query = str(mini_collection["images"] / "rocket" / "original.jpg")
    results = calculate_similarities(query, conn.cursor(), "phash", "hamming", top_k=3)
    assert all("/rocket/" in path for path, _ in results)
    conn.close()


def test_a_reset_that_cannot_load_its_model_keeps_the_old_features(mini_collection, tmp_path, monkeypatch):
    from features.errors import WeightsError
    from features.network import base

    db = tmp_path / "copy.db"
    copy_database(mini_collection["db"], db)
    monkeypatch.setitem(base.WEIGHT_FILES, "resnet18", lambda: (str(tmp_path / "absent.pth"), "f37072fd"))
    with pytest.raises(WeightsError):
        main.extract(str(db), model="resnet18", workers=0, progress=False, reset=True)
    conn = connect(db)
    assert conn.execute("SELECT COUNT(*) FROM features").fetchone()[0] == mini_collection["count"]
    assert get_meta(conn)["embedding_model"] == "efficientnet_lite0"
    conn.close()


def test_retry_errors_puts_failed_files_back_in_the_queue(tmp_path):
    import generator
    from samples import random_photo

    photos = tmp_path / "photos"
    photos.mkdir()
    good = photos / "good.png"
    random_photo(3).save(good)
    payload = good.read_bytes()
    (photos / "later.png").write_bytes(payload[: len(payload) // 2])  # truncated: fails at extraction
    db = tmp_path / "r.db"
    generator.scan(str(photos), str(db), progress=False)
    first = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False)
    assert (first.ok, first.error) == (1, 1)
    again = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False)
    assert again.done_now == 0  # without the flag, a failed file stays failed
    retried = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False,
                           retry=True)
    assert retried.done_now == 1 and retried.error == 1


# --- db/features.py, db/codec.py and db/meta.py with small fake vectors (no network) -------------

FAKE_STAMP = {"embedding_model": "fake", "embedding_dim": 4, "hash_size": 4}


def _fake_db(tmp_path, n=5):
    """A DB with ``n`` pending rows a.jpg, b.jpg, ... and a stamp; returns (conn, rows)."""
    from db.images import insert_images, pending_page
    from db.meta import check_or_write_stamp, claim_dataset_root

    conn = connect(tmp_path / "fake.db", create=True)
    claim_dataset_root(conn, str(tmp_path))
    check_or_write_stamp(conn, FAKE_STAMP)
    insert_images(conn, [(f"{chr(97 + i)}.jpg", 100 + i, 7, 10, 10, "pending", None) for i in range(n)])
    return conn, pending_page(conn, 0, 100)


def _fake_features(n, seed=0):
    rng = np.random.default_rng(seed)
    features = {"embedding": rng.standard_normal((n, 4)).astype(np.float32),
                "rgb": rng.random((n, 8)).astype(np.float32)}
    features.update({kind: rng.integers(0, 256, (n, 2), dtype=np.uint8) for kind in ("ahash", "dhash", "phash")})
    return features


def _store(conn, rows, digests, features, failed=()):
    from db.features import ExtractedRow, FailedRow, write_batch

    write_batch(conn, [ExtractedRow(r.id, r.size, r.mtime_ns, d) for r, d in zip(rows, digests)],
                [FailedRow(r.id, r.size, r.mtime_ns, why) for r, why in failed], digests, features)


def test_write_batch_stores_arrays_that_read_back_exactly(tmp_path):
    from db.features import load_column
    from db.images import count_by_status, error_reasons

    conn, rows = _fake_db(tmp_path)
    features = _fake_features(4)
    digests = [bytes([i]) * 16 for i in range(4)]
    _store(conn, rows[:4], digests, features, failed=[(rows[4], "empty file")])
    conn.close()
    conn = connect(tmp_path / "fake.db")  # reopened: what was committed, not what is cached
    assert count_by_status(conn) == {"ok": 4, "error": 1}
    assert error_reasons(conn) == [("empty file", 1)]
    ids, paths, blobs = load_column(conn, "embedding")
    assert (ids, paths) == ([r.id for r in rows[:4]], ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    assert np.array_equal(blobs_to_matrix(blobs, 4), features["embedding"])
    assert np.array_equal(blobs_to_matrix(load_column(conn, "rgb")[2], 8), features["rgb"])
    for kind in ("ahash", "dhash", "phash"):
        assert np.array_equal(blobs_to_bits(load_column(conn, kind)[2], 2), features[kind])
    conn.close()


def test_write_batch_marks_ok_only_rows_whose_features_exist_and_whose_file_did_not_change(tmp_path):
    from db.features import ExtractedRow, write_batch
    from db.images import count_by_status, find_by_path

    conn, rows = _fake_db(tmp_path, n=3)
    _store(conn, rows[:1], [b"x" * 16], _fake_features(1))
    # b.jpg: contents seen before (features exist): ok without new features; c.jpg: no features anywhere
    write_batch(conn, [ExtractedRow(rows[1].id, rows[1].size, rows[1].mtime_ns, b"x" * 16),
                       ExtractedRow(rows[2].id, rows[2].size, rows[2].mtime_ns, b"y" * 16)], [])
    assert [find_by_path(conn, p)[1] for p in ("a.jpg", "b.jpg", "c.jpg")] == ["ok", "ok", "pending"]
    # a file edited after the scan (other size) stays pending for the next rescan
    _store(conn, [rows[2]._replace(size=999)], [b"z" * 16], _fake_features(1))
    assert count_by_status(conn) == {"ok": 2, "pending": 1}
    assert conn.execute("SELECT COUNT(*) FROM features").fetchone()[0] == 2
    conn.close()


def test_write_batch_refuses_arrays_that_do_not_match_the_hashes(tmp_path):
    conn, rows = _fake_db(tmp_path, n=2)
    with pytest.raises(ValueError, match="2 content hashes but feature arrays of "
                                         "embedding 1, rgb 1, ahash 1, dhash 1, phash 1 rows"):
        _store(conn, rows, [b"a" * 16, b"b" * 16], {k: v[:1] for k, v in _fake_features(2).items()})
    features = _fake_features(2)
    del features["phash"]
    with pytest.raises(ValueError, match="features lack phash"):
        _store(conn, rows, [b"a" * 16, b"b" * 16], features)
    assert conn.execute("SELECT COUNT(*) FROM features").fetchone()[0] == 0
    conn.close()


def test_codec_roundtrip_and_checks():
    from db.codec import bit_rows_to_blobs, bits_to_blob, matrix_to_blobs

    matrix = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    assert np.array_equal(blobs_to_matrix(matrix_to_blobs(matrix), 4), matrix.astype(np.float32))
    packed = np.array([[1, 2], [255, 0]], dtype=np.uint8)
    assert bit_rows_to_blobs(packed) == [b"\x01\x02", b"\xff\x00"]
    assert np.array_equal(blobs_to_bits(bit_rows_to_blobs(packed), 2), packed)
    with pytest.raises(ValueError, match="packed hashes must be uint8"):
        bits_to_blob(np.array([1, 2], dtype=np.int64))
    assert blobs_to_matrix([], 4).shape == (0, 4) and blobs_to_bits([], 2).shape == (0, 2)


def test_unused_features_are_kept_until_pruned_newest_last(tmp_path):
    from db.features import count_unused, has_features, prune_unused
    from db.images import delete_images

    conn, rows = _fake_db(tmp_path, n=4)
    digests = [bytes([i]) * 16 for i in range(4)]
    for row, digest in zip(rows, digests):  # one batch each: rowids in storing order
        _store(conn, [row], [digest], _fake_features(1))
    delete_images(conn, [rows[0].id, rows[1].id, rows[2].id])
    assert count_unused(conn) == 3 and has_features(conn, digests[0])
    assert prune_unused(conn, keep=1) == 2  # the two stored first go
    assert [has_features(conn, d) for d in digests] == [False, False, True, True]
    assert prune_unused(conn) == 1 and count_unused(conn) == 0
    assert has_features(conn, digests[3])  # still used by d.jpg
    with pytest.raises(ValueError, match="keep must be 0 or more"):
        prune_unused(conn, keep=-1)
    conn.close()


def test_reset_forgets_features_and_stamp_in_one_go(tmp_path):
    from db.features import reset_features
    from db.images import count_by_status
    from db.meta import features_stamp

    conn, rows = _fake_db(tmp_path, n=2)
    _store(conn, rows, [b"a" * 16, b"b" * 16], _fake_features(2))
    reset_features(conn)
    assert features_stamp(conn) is None and count_by_status(conn) == {"pending": 2}
    assert conn.execute("SELECT COUNT(*) FROM features").fetchone()[0] == 0
    assert not [k for k in get_meta(conn) if k in FAKE_STAMP or k == "stamp_keys"]
    conn.close()


def test_the_stamp_is_whatever_keys_extraction_defines(tmp_path):
    """db/meta.py keeps no list of stamp keys: it records the keys it was given."""
    from db.meta import add_to_stamp, check_or_write_stamp, features_stamp
    from features.extract import STAMP_KEYS

    conn, _ = _fake_db(tmp_path, n=0)
    assert features_stamp(conn) == {key: str(value) for key, value in FAKE_STAMP.items()}
    check_or_write_stamp(conn, FAKE_STAMP)  # the same: accepted
    with pytest.raises(SettingsMismatchError, match="embedding_dim: DB has 4, asked for 8, extra: DB has unrecorded"):
        check_or_write_stamp(conn, dict(FAKE_STAMP, embedding_dim=8, extra="x"))
    add_to_stamp(conn, {"extra": "x", "embedding_dim": 99})  # a key it held already is not changed
    assert features_stamp(conn) == {"embedding_model": "fake", "embedding_dim": "4", "hash_size": "4", "extra": "x"}
    assert "embedding_runtime" in STAMP_KEYS and len(set(STAMP_KEYS)) == len(STAMP_KEYS)
    conn.close()


def test_a_db_stamped_before_runtimes_were_recorded_is_read_and_upgraded(mini_collection, tmp_path):
    """Old DBs hold the nine keys of that time and no key list; they were made by torch."""
    from db.meta import features_stamp
    from extraction.run import record_runtime_of_old_stamp

    db = tmp_path / "old.db"
    copy_database(mini_collection["db"], db)
    conn = connect(db)
    with conn:
        conn.execute("DELETE FROM meta WHERE key IN ('stamp_keys', 'embedding_runtime')")
    old = features_stamp(conn)
    assert len(old) == 9 and "embedding_runtime" not in old and old["embedding_precision"] == "float32"
    record_runtime_of_old_stamp(conn)
    assert features_stamp(conn) == dict(old, embedding_runtime="onnxruntime")  # float32 torch == onnxruntime
    conn.close()
    result = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False)
    assert result.done_now == 0 and result.ok == mini_collection["count"]


def test_a_run_refused_for_its_settings_changes_nothing(tmp_path):
    """--retry-errors and --prune wait for the stamp check."""
    from db.features import count_unused
    from db.images import count_by_status, delete_images

    conn, rows = _fake_db(tmp_path, n=3)
    _store(conn, rows[:2], [b"a" * 16, b"b" * 16], _fake_features(2), failed=[(rows[2], "empty file")])
    delete_images(conn, [rows[0].id])
    conn.close()
    with pytest.raises(SettingsMismatchError, match="embedding_model: DB has fake"):
        main.extract(str(tmp_path / "fake.db"), model="efficientnet_lite0", workers=0, progress=False,
                     retry=True, prune=True)
    conn = connect(tmp_path / "fake.db")
    assert count_by_status(conn) == {"ok": 1, "error": 1} and count_unused(conn) == 1
    conn.close()


def test_select_in_reads_a_long_list_a_chunk_at_a_time(tmp_path, monkeypatch):
    """db.batched.select_in: every value found whatever the chunk size, parameters bound before and
    after each chunk, one statement per chunk."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k INTEGER, tag TEXT, n INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(k, "x" if k % 2 else "y", k * 10) for k in range(23)])
    statements = []
    conn.set_trace_callback(statements.append)
    monkeypatch.setattr(batched, "CHUNK", 5)
    rows = batched.select_in(conn, "SELECT k FROM t WHERE tag = ? AND k IN ({marks}) AND n < ?", range(40),
                             before=["x"], after=[200])
    assert sorted(k for (k,) in rows) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19] and len(statements) == 8
    assert list(batched.select_in(conn, "SELECT k FROM t WHERE k IN ({marks})", [])) == []
