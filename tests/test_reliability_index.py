"""Derived files are rebuilt, never trusted, when they do not match the DB.

The ann_cosine index next to the DB is checked against the DB before use: a corrupt,
truncated, half-written or foreign index file (another DB's, at the same version counter)
is rebuilt and ann_cosine then answers like exact cosine.
"""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import generator
import main
from db import connect
from reliability_tools import MODEL, query
from search import ann, matrix_cache
from search.ann import index as ann_index
from similarities import calculate_similarities

N = 12


def _collection(folder, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for i in range(N):
        coarse = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((32, 24), Image.BICUBIC).save(os.path.join(folder, f"{i:02d}.png"))


def _build(folder, db):
    generator.scan(str(folder), str(db), progress=False)
    main.extract(str(db), model=MODEL, workers=0, batch_size=4, progress=False, build_index=False)


@pytest.fixture(scope="module")
def two_dbs(tmp_path_factory):
    """Two DBs of different pictures whose write histories have the same length."""
    base = tmp_path_factory.mktemp("index")
    for name, seed in (("a", 1), ("b", 2)):
        _collection(base / name, seed)
        _build(base / name, base / f"{name}.db")
    return base


@pytest.fixture(autouse=True)
def fresh_process_state():
    ann_index._OPEN.clear()
    matrix_cache.forget()
    yield
    ann_index._OPEN.clear()
    matrix_cache.forget()


def _ann_equals_exact(folder, db):
    conn = connect(db)
    try:
        probe = str(folder / "00.png")
        exact = calculate_similarities(probe, conn, "embeddings", "cosine", top_k=5)
        approx = calculate_similarities(probe, conn, "embeddings", "ann_cosine", top_k=5)
    finally:
        conn.close()
    assert [p for p, _ in approx] == [p for p, _ in exact]
    assert np.allclose([d for _, d in approx], [d for _, d in exact], atol=1e-4)


def _index_files(db):
    folder = ann.index_dir(db)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "deleted"])
def test_damaged_index_is_rebuilt(two_dbs, damage):
    folder, db = two_dbs / "a", two_dbs / "a.db"
    _ann_equals_exact(folder, db)  # builds and saves the index
    ann_file = ann.index_file(db, "embeddings")
    size = os.path.getsize(ann_file)
    with open(ann_file, "r+b") as fh:
        if damage == "garbage":
            fh.write(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
        elif damage in ("truncated", "empty"):
            fh.truncate(size // 2 if damage == "truncated" else 0)
    if damage == "deleted":
        os.remove(ann_file)
    ann_index._OPEN.clear()  # a new query process: only the files on disk
    _ann_equals_exact(folder, db)
    assert os.path.getsize(ann_file) == size
    assert _index_files(db) == ["embeddings.build.lock", "embeddings.ivf", "embeddings.json"]  # no temporaries


def test_another_dbs_index_at_the_same_version_is_not_trusted(two_dbs):
    """A DB rebuilt from scratch (or restored) reaches the old version counter and row count again."""
    a, b = two_dbs / "a.db", two_dbs / "b.db"
    counter = "SELECT value FROM meta WHERE key = 'features_version'"
    assert query(a, counter) == query(b, counter)  # what makes the trap real
    _ann_equals_exact(two_dbs / "a", a)
    shutil.rmtree(ann.index_dir(b), ignore_errors=True)
    shutil.copytree(ann.index_dir(a), ann.index_dir(b))
    ann_index._OPEN.clear()
    _ann_equals_exact(two_dbs / "b", b)


def test_index_of_an_older_state_after_a_crash_is_rebuilt(two_dbs, tmp_path):
    """A crash between writing the index and its stamp leaves an old stamp or a temp file."""
    folder = tmp_path / "c"
    shutil.copytree(two_dbs / "a", folder)
    db = tmp_path / "c.db"
    _build(folder, db)
    _ann_equals_exact(folder, db)
    Image.new("RGB", (32, 24), (250, 10, 10)).save(folder / "zz_new.png")  # the DB moves on
    _build(folder, db)
    with open(ann.index_file(db, "embeddings") + ".tmp999999", "wb") as fh:
        fh.write(b"half an index")  # what a killed build leaves behind
    ann_index._OPEN.clear()
    matrix_cache.forget()
    _ann_equals_exact(folder, db)
    conn = connect(db)
    try:
        assert ann.get_index(matrix_cache.load(conn, "embeddings")).rows == N + 1
    finally:
        conn.close()
    assert _index_files(db) == ["embeddings.build.lock", "embeddings.ivf", "embeddings.json"]  # the dead build gone
