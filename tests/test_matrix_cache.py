"""The memory-mapped matrix cache (search.matrix_cache): equal to the SQLite load, never stale."""
import os

import numpy as np
import pytest

import config
from db import connect, copy_database
from db.meta import check_or_write_stamp, claim_dataset_root
from samples import add_fake_images, fake_stamp
from search import matrix_cache
from search.matrix_cache import column_reader, folders
from search.modes import MODES

DIM = 16
STAMP = fake_stamp(DIM)


def add_images(conn, rng, names):
    add_fake_images(conn, rng, names, DIM)



@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "cache.db"
    conn = connect(path, create=True)
    claim_dataset_root(conn, str(tmp_path / "images"))
    check_or_write_stamp(conn, STAMP)
    add_images(conn, np.random.default_rng(0), [f"a/{i:03d}.jpg" for i in range(40)] + ["ü/é.jpg"])
    conn.close()
    matrix_cache.forget()
    yield path
    matrix_cache.forget()


def sqlite_load(conn, mode, monkeypatch):
    """The same load with the cache switched off: the reference the cache must equal."""
    monkeypatch.setattr(config, "MATRIX_CACHE", False)
    matrix_cache.forget()
    loaded = matrix_cache.load(conn, mode)
    monkeypatch.setattr(config, "MATRIX_CACHE", True)
    matrix_cache.forget()
    assert loaded.cache_dir is None
    return loaded


def assert_same(a, b):
    assert a.matrix.dtype == b.matrix.dtype and np.array_equal(a.matrix, b.matrix)
    assert np.array_equal(a.ids, b.ids)
    assert list(a.paths) == list(b.paths)
    assert (a.features_version, a.paths_version, a.root) == (b.features_version, b.paths_version, b.root)


def cache_folders(db_path, mode=None):
    """The complete folders of ``mode``'s matrices (every mode's if None) and of the paths, as basenames."""
    modes = [mode] if mode else list(MODES)
    matrices = [os.path.basename(f) for m in modes for f in folders.matrix_folders(db_path, m)]
    return sorted(matrices), sorted(os.path.basename(f) for f in folders.paths_folders(db_path))


@pytest.mark.parametrize("mode", MODES)
def test_cache_equals_sqlite_load(db_path, mode, monkeypatch):
    conn = connect(db_path)
    built = matrix_cache.load(conn, mode)  # reads SQLite, publishes the cache
    assert built.cache_dir is not None and os.path.isdir(built.cache_dir)
    matrix_cache.forget()
    mapped = matrix_cache.load(conn, mode)  # a new process would see this: the memory map
    assert mapped.cache_dir == built.cache_dir and not mapped.matrix.flags.writeable
    reference = sqlite_load(conn, mode, monkeypatch)
    assert_same(mapped, reference)
    assert len(mapped.ids) == 41 and mapped.paths[-1] == "ü/é.jpg" and mapped.paths[-2:] == ["a/039.jpg", "ü/é.jpg"]
    if mode == "embeddings":
        assert np.allclose(np.linalg.norm(mapped.matrix, axis=1), 1.0, atol=1e-6)
    conn.close()


def test_cache_is_rebuilt_when_the_ok_features_change(db_path, monkeypatch):
    conn = connect(db_path)
    first = matrix_cache.load(conn, "embeddings")
    add_images(conn, np.random.default_rng(1), ["b/new.jpg"])
    matrix_cache.forget()
    second = matrix_cache.load(conn, "embeddings")
    assert second.cache_dir != first.cache_dir
    matrices, paths = cache_folders(db_path, "embeddings")
    assert matrices == [os.path.basename(second.cache_dir)]
    assert len(paths) == 1  # old paths gone too
    assert len(second.ids) == 42 and "b/new.jpg" in list(second.paths)
    assert_same(second, sqlite_load(conn, "embeddings", monkeypatch))
    conn.close()


def test_same_counter_with_another_history_is_not_reused(db_path, tmp_path, monkeypatch):
    """A backup restored and written to again reaches the old version counter: the random
    token still tells the two apart."""
    backup = tmp_path / "backup.db"
    copy_database(db_path, backup)
    conn = connect(db_path)
    add_images(conn, np.random.default_rng(2), ["c/one.jpg"])
    before = matrix_cache.load(conn, "rgb")
    conn.close()
    copy_database(backup, db_path)
    conn = connect(db_path)
    add_images(conn, np.random.default_rng(3), ["d/other.jpg"])
    after = matrix_cache.load(conn, "rgb")
    assert after.counter == before.counter and after.cache_dir != before.cache_dir
    assert "d/other.jpg" in list(after.paths) and "c/one.jpg" not in list(after.paths)
    assert_same(after, sqlite_load(conn, "rgb", monkeypatch))
    conn.close()


def test_a_write_during_the_read_is_not_mixed_in(db_path, monkeypatch):
    """The load reads one snapshot: the cache folder holds exactly the version it is named after."""
    conn = connect(db_path)
    writer = connect(db_path)
    real_chunks = column_reader.column_chunks

    def chunks_then_write(*args, **kwargs):
        for chunk in real_chunks(*args, **kwargs):
            yield chunk
        add_images(writer, np.random.default_rng(4), ["e/late.jpg"])

    monkeypatch.setattr(column_reader, "column_chunks", chunks_then_write)
    loaded = matrix_cache.load(conn, "phash")
    assert len(loaded.ids) == 41 and len(loaded.paths) == 41 and "e/late.jpg" not in list(loaded.paths)
    monkeypatch.setattr(column_reader, "column_chunks", real_chunks)
    matrix_cache.forget()
    again = matrix_cache.load(conn, "phash")  # the DB moved on: loaded again
    assert len(again.ids) == 42 and again.cache_dir != loaded.cache_dir and "e/late.jpg" in list(again.paths)
    writer.close()
    conn.close()


def test_prepared_arrays_are_cached_and_equal(db_path):
    conn = connect(db_path)
    loaded = matrix_cache.load(conn, "rgb")
    made = loaded.prepare("sqrt", np.sqrt)
    assert os.path.exists(os.path.join(loaded.cache_dir, "sqrt.npy"))
    matrix_cache.forget()
    again = matrix_cache.load(conn, "rgb")
    mapped = again.prepare("sqrt", lambda m: pytest.fail("should come from the cache"))
    assert np.array_equal(mapped, made) and np.array_equal(mapped, np.sqrt(again.matrix))
    conn.close()


def test_cache_switched_off_writes_nothing(db_path, monkeypatch):
    monkeypatch.setattr(config, "MATRIX_CACHE", False)
    conn = connect(db_path)
    loaded = matrix_cache.load(conn, "ahash")
    loaded.prepare("anything", lambda m: m[:1])
    assert cache_folders(db_path) == ([], []) and not os.path.exists(matrix_cache.cache_root(db_path))
    assert len(loaded.ids) == 41
    conn.close()


def test_a_stamp_that_gains_a_key_gets_its_own_cache(db_path):
    """Same features version, another stamp (main.py records a key older DBs lacked): a new
    folder, not a mismatch that would send every process to SQLite for ever."""
    from db.meta import add_to_stamp

    conn = connect(db_path)
    first = matrix_cache.load(conn, "dhash")
    add_to_stamp(conn, {"embedding_runtime": "torch-float32"})
    matrix_cache.forget()
    second = matrix_cache.load(conn, "dhash")
    assert second.cache_dir is not None and second.cache_dir != first.cache_dir
    matrix_cache.forget()
    assert matrix_cache.load(conn, "dhash").cache_dir == second.cache_dir
    conn.close()


def test_folders_are_found_by_their_stamps_not_their_names(db_path):
    """A published folder under any name is found, with its counter, by the stamp inside it:
    nothing reads the features version or the mode back out of a folder name."""
    conn = connect(db_path)
    built = matrix_cache.load(conn, "embeddings")
    renamed = os.path.join(os.path.dirname(built.cache_dir), "any-name-at-all")
    os.rename(built.cache_dir, renamed)
    counter, stamp = built.counter, built.stamp
    assert folders.newest_published(db_path, "embeddings", stamp, counter) == (counter, renamed)
    assert folders.newest_published(db_path, "embeddings", stamp, counter - 1) is None  # newer than the DB
    assert folders.newest_published(db_path, "embeddings", {**stamp, "hash_size": "16"}, counter) is None
    assert folders.newest_published(db_path, "rgb", stamp, counter) is None  # another mode's room
    [(paths, info)] = folders.published_paths(db_path, built.features_version)
    assert info["paths_version"] == built.paths_version and os.path.dirname(paths).endswith(folders.PATHS)
    conn.close()


def test_folders_of_the_old_layout_are_removed_on_the_next_write(db_path):
    """Cache formats before 3 put every folder directly in <db>.cache/: never used again."""
    old = os.path.join(matrix_cache.cache_root(db_path), "embeddings-v3-abc-s0123456789ab-f2")
    os.makedirs(old)
    conn = connect(db_path)
    matrix_cache.load(conn, "embeddings")
    assert sorted(os.listdir(matrix_cache.cache_root(db_path))) == [folders.MATRICES, folders.PATHS, folders.TMP]
    assert os.listdir(os.path.join(matrix_cache.cache_root(db_path), folders.TMP)) == []
    conn.close()
