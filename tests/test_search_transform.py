"""Search vectors (search.transform): unit rows, the collection's mean kept with the matrix cache
and reused, queries transformed exactly as the rows, the index built on them (issue 21)."""
import os

import numpy as np
import pytest

import config
from db import connect
from db.meta import check_or_write_stamp, claim_dataset_root
from samples import add_fake_images, fake_stamp
from search import ann, matrix_cache, transform
from search.query import search_ids

DIM = 24


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SEARCH_TRANSFORM", "centred")
    path = tmp_path / "t.db"
    conn = connect(path, create=True)
    claim_dataset_root(conn, str(tmp_path / "images"))
    check_or_write_stamp(conn, fake_stamp(DIM))
    rng = np.random.default_rng(3)
    add_fake_images(conn, rng, [f"a/{i:03d}.jpg" for i in range(50)], DIM)
    conn.close()
    matrix_cache.forget()
    yield path
    matrix_cache.forget()


def raw_unit_rows(conn, monkeypatch):
    """The matrix as it was searched before issue 21: unit rows of the stored embeddings."""
    monkeypatch.setattr(config, "SEARCH_TRANSFORM", "none")
    matrix_cache.forget()
    loaded = matrix_cache.load(conn, "embeddings")
    unit = np.array(loaded.matrix)
    monkeypatch.setattr(config, "SEARCH_TRANSFORM", "centred")
    matrix_cache.forget()
    assert loaded.transform == "none"
    return unit


def unit(m):
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


@pytest.mark.parametrize("kind", ["centred", "centred_ssqrt", "none"])
def test_search_vectors_are_unit_rows_made_as_documented(kind):
    rng = np.random.default_rng(0)
    raw = np.abs(rng.standard_normal((300, 12)).astype(np.float32)) * 5  # non-negative, like pooled CNN features
    mean = unit(raw).mean(axis=0)
    got = transform.search_vectors(raw, mean, kind)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    centred = unit(raw) - mean
    expected = {"centred": unit(centred), "centred_ssqrt": unit(np.sign(centred) * np.sqrt(np.abs(centred))),
                "none": unit(raw)}[kind]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(transform.collection_mean(unit(raw)), mean, atol=1e-6)


def test_unknown_transform_lists_the_valid_ones():
    with pytest.raises(ValueError, match="centred, centred_ssqrt, none"):
        transform.search_vectors(np.ones((1, 3), np.float32), np.zeros(3, np.float32), "whitened")


def test_loaded_rows_are_the_search_vectors_and_the_mean_is_kept_with_the_cache(db_path, monkeypatch):
    conn = connect(db_path)
    raw = raw_unit_rows(conn, monkeypatch)
    loaded = matrix_cache.load(conn, "embeddings")
    assert loaded.transform == "centred" and loaded.cache_dir
    np.testing.assert_allclose(loaded.mean, raw.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(loaded.matrix, unit(raw - raw.mean(axis=0)), atol=1e-6)
    saved = os.path.join(loaded.cache_dir, "mean.npy")  # in the folder named after the features version
    np.testing.assert_array_equal(np.load(saved), loaded.mean)
    assert matrix_cache.load(conn, "rgb").transform == "none"  # histograms are searched as they are

    # A new process maps the saved mean and vectors instead of computing them again.
    matrix_cache.forget()
    monkeypatch.setattr(transform, "collection_mean", lambda m: pytest.fail("the mean was computed again"))
    monkeypatch.setattr(transform, "search_vectors", lambda *a: pytest.fail("the vectors were computed again"))
    again = matrix_cache.load(conn, "embeddings")
    np.testing.assert_array_equal(again.mean, loaded.mean)
    np.testing.assert_array_equal(again.matrix, loaded.matrix)


def test_a_changed_collection_gets_its_own_mean(db_path, monkeypatch):
    conn = connect(db_path)
    before = matrix_cache.load(conn, "embeddings")
    add_fake_images(conn, np.random.default_rng(9), [f"b/{i:03d}.jpg" for i in range(30)], DIM)
    after = matrix_cache.load(conn, "embeddings")
    assert after.cache_dir != before.cache_dir and len(after.ids) == 80
    raw = raw_unit_rows(conn, monkeypatch)
    np.testing.assert_allclose(after.mean, raw.mean(axis=0), atol=1e-6)


def test_a_query_is_transformed_exactly_as_the_rows(db_path, monkeypatch):
    conn = connect(db_path)
    raw = raw_unit_rows(conn, monkeypatch)
    loaded = matrix_cache.load(conn, "embeddings")
    # A query row is a raw embedding (any length): it must land exactly on its stored copy's row.
    queries = transform.query_vectors(loaded, raw[[4, 17]] * np.float32(3.5))
    np.testing.assert_allclose(queries, loaded.matrix[[4, 17]], atol=1e-6)
    hits = search_ids(conn, [int(loaded.ids[4])], "embeddings", "cosine", top_k=3, exclude_query=False, expand=False)
    assert hits[0].id == loaded.ids[4] and hits[0].distance == pytest.approx(0.0, abs=1e-6)


def test_the_index_is_built_on_the_search_vectors(db_path):
    conn = connect(db_path)
    loaded = matrix_cache.load(conn, "embeddings")
    assert ann.unit_matrix(loaded) is loaded.matrix
    assert ann.wanted_stamp(loaded, config.ANN_INDEX)["vectors"] == "centred"
    exact = search_ids(conn, [int(loaded.ids[0])], "embeddings", "cosine", top_k=5, expand=False)
    approx = search_ids(conn, [int(loaded.ids[0])], "embeddings", "ann_cosine", top_k=5, expand=False)
    assert [h.id for h in approx] == [h.id for h in exact]  # 50 rows: the index probes every cell
    np.testing.assert_allclose([h.distance for h in approx], [h.distance for h in exact], atol=1e-5)
