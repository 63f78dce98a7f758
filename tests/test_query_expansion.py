"""Average query expansion (search.expansion) against a brute-force reference (issue 21)."""
import numpy as np
import pytest

import config
from db import connect
from db.meta import check_or_write_stamp, claim_dataset_root
from samples import add_fake_images, fake_stamp
from search import matrix_cache
from search.query import search_ids

DIM = 20


@pytest.fixture
def conn(tmp_path):
    path = tmp_path / "e.db"
    conn = connect(path, create=True)
    claim_dataset_root(conn, str(tmp_path / "images"))
    check_or_write_stamp(conn, fake_stamp(DIM))
    add_fake_images(conn, np.random.default_rng(5), [f"x/{i:03d}.jpg" for i in range(60)], DIM)
    matrix_cache.forget()
    yield conn
    matrix_cache.forget()


def brute_force(matrix, row, top_k, k=2):
    """Cosine top k without the query row, then the search again with unit(mean(query, those k))."""
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    first = 1.0 - unit @ unit[row]
    first[row] = np.inf
    neighbours = np.argsort(first, kind="stable")[:k]
    query = unit[[row, *neighbours]].mean(axis=0)
    query /= np.linalg.norm(query)
    second = 1.0 - unit @ query
    second[row] = np.inf
    rows = np.argsort(second, kind="stable")[:top_k]
    return rows, second[rows]


@pytest.mark.parametrize("row", [0, 7, 33, 59])
def test_expansion_equals_brute_force(conn, row):
    loaded = matrix_cache.load(conn, "embeddings")
    expected_rows, expected_distances = brute_force(np.asarray(loaded.matrix, np.float64), row, top_k=8)
    hits = search_ids(conn, [int(loaded.ids[row])], "embeddings", "cosine", top_k=8, expand=True)
    assert [h.id for h in hits] == [int(i) for i in loaded.ids[expected_rows]]
    np.testing.assert_allclose([h.distance for h in hits], expected_distances, atol=1e-5)


def test_expansion_changes_the_answer_and_follows_the_setting(conn, monkeypatch):
    loaded = matrix_cache.load(conn, "embeddings")
    ids = [int(loaded.ids[3])]
    plain = search_ids(conn, ids, "embeddings", "cosine", top_k=10, expand=False)
    expanded = search_ids(conn, ids, "embeddings", "cosine", top_k=10, expand=True)
    assert [h.distance for h in plain] != [h.distance for h in expanded]  # the test can tell them apart
    monkeypatch.setattr(config, "QUERY_EXPANSION", True)
    assert search_ids(conn, ids, "embeddings", "cosine", top_k=10) == expanded
    monkeypatch.setattr(config, "QUERY_EXPANSION", False)
    assert search_ids(conn, ids, "embeddings", "cosine", top_k=10) == plain


def test_expansion_with_more_neighbours(conn, monkeypatch):
    monkeypatch.setattr(config, "EXPANSION_K", 3)
    loaded = matrix_cache.load(conn, "embeddings")
    expected_rows, _ = brute_force(np.asarray(loaded.matrix, np.float64), 12, top_k=5, k=3)
    hits = search_ids(conn, [int(loaded.ids[12])], "embeddings", "cosine", top_k=5, expand=True)
    assert [h.id for h in hits] == [int(i) for i in loaded.ids[expected_rows]]


def test_expansion_is_for_embeddings_only(conn):
    loaded = matrix_cache.load(conn, "rgb")
    with pytest.raises(ValueError, match="query expansion works with embeddings only"):
        search_ids(conn, [int(loaded.ids[0])], "rgb", "bhattacharyya", expand=True)
    # Left to its default, a hash or histogram search is simply not expanded.
    assert len(search_ids(conn, [int(loaded.ids[0])], "phash", "hamming", top_k=3)) == 3
