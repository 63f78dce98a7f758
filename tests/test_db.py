"""What the DB records about its features, the blob layout, and refusing to mix settings."""
import shutil
import sqlite3

import numpy as np
import pytest

import main
from db import SchemaVersionError, SettingsMismatchError, connect
from db.codec import blobs_to_bits, blobs_to_matrix, vector_to_blob
from db.meta import get_meta


def test_meta_records_every_setting(mini_conn):
    meta = get_meta(mini_conn)
    assert meta["schema_version"] == "1"
    assert meta["embedding_model"] == "efficientnet_lite0" and meta["embedding_dim"] == "1280"
    assert len(meta["embedding_weights_sha256"]) == 64 and meta["embedding_weights_sha256"].startswith("57934424")
    assert (meta["vector_dtype"], meta["rgb_dim"], meta["hist_bins"], meta["hash_size"]) == ("float32-le", "512", "8", "8")
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
    shutil.copy(mini_collection["db"], db)
    with pytest.raises(SettingsMismatchError, match=r"hash_size: DB has 8, asked for 16.*--reset-features"):
        main.extract(str(db), model="efficientnet_lite0", hash_size=16, workers=0, progress=False)


def test_other_network_precision_is_refused(mini_collection, tmp_path, monkeypatch):
    """bfloat16 and float32 embeddings differ slightly: one DB never holds both."""
    import config

    db = tmp_path / "copy.db"
    shutil.copy(mini_collection["db"], db)
    conn = connect(db)
    stored = get_meta(conn)["embedding_precision"]
    conn.close()
    other = "float32" if stored == "bfloat16" else "bfloat16"
    monkeypatch.setattr(config, "EMBED_PRECISION", other)
    with pytest.raises(SettingsMismatchError, match=f"embedding_precision: DB has {stored}, asked for {other}"):
        main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False)


def test_reset_features_re_extracts_with_new_settings(mini_collection, tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(mini_collection["db"], db)
    result = main.extract(str(db), model="efficientnet_lite0", hash_size=16, workers=0, progress=False,
                          reset=True, build_index=False)
    assert result["done_now"] == mini_collection["count"]
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
    with pytest.raises(SchemaVersionError, match="schema version 0, this code needs 1"):
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
    shutil.copy(mini_collection["db"], db)
    main.extract(str(db), model="efficientnet_lite0", hash_size=10, workers=0, progress=False, reset=True)
    conn = connect(db)
    assert {len(b) for (b,) in conn.execute("SELECT phash FROM features")} == {13}
    query = str(mini_collection["images"] / "rocket" / "original.jpg")
    results = calculate_similarities(query, conn.cursor(), "phash", "hamming", top_k=3)
    assert all("/rocket/" in path for path, _ in results)
    conn.close()


def test_a_reset_that_cannot_load_its_model_keeps_the_old_features(mini_collection, tmp_path, monkeypatch):
    from features import embeddings
    from features.errors import WeightsError

    db = tmp_path / "copy.db"
    shutil.copy(mini_collection["db"], db)
    monkeypatch.setitem(embeddings.WEIGHT_FILES, "resnet18", lambda: (str(tmp_path / "absent.pth"), "f37072fd"))
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
    assert (first["ok"], first["error"]) == (1, 1)
    again = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False)
    assert again["done_now"] == 0  # without the flag, a failed file stays failed
    retried = main.extract(str(db), model="efficientnet_lite0", workers=0, progress=False, build_index=False,
                           retry=True)
    assert retried["done_now"] == 1 and retried["error"] == 1
