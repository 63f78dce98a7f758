"""More like this / less like this (search.feedback): each rule against its formula, and searches
with + and − against a brute-force ranking of the whole matrix."""
import os

import numpy as np
import pytest

from features.hashes import majority_bits
from search import matrix_cache
from search.feedback import steered
from search.metrics import unit_rows
from search.modes import MODES
from search.query import UnknownImageError, search_ids


def test_unit_vectors_follow_the_formula():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(2, 8)).astype(np.float32)
    want = unit_rows(pos).mean(0) - 0.7 * unit_rows(neg).mean(0)
    got = steered(MODES["embeddings"], pos, neg, 0.7)[0]
    assert np.allclose(got, want / np.linalg.norm(want), atol=1e-6)
    assert np.allclose(steered(MODES["embeddings"], pos)[0], unit_rows(unit_rows(pos).mean(0, keepdims=True))[0])


def test_histograms_stay_non_negative_with_the_mass_of_the_positives():
    pos = np.array([[0.5, 0.3, 0.2, 0.0], [0.3, 0.3, 0.2, 0.2]], dtype=np.float32)
    neg = np.array([[0.0, 0.9, 0.1, 0.0]], dtype=np.float32)
    got = steered(MODES["rgb"], pos, neg, 0.5)[0]
    kept = np.maximum(pos.mean(0) - 0.5 * neg[0], 0)
    assert np.allclose(got, kept * pos.mean(0).sum() / kept.sum()) and got.min() >= 0


def test_hash_bits_are_a_weighted_vote():
    bits = lambda rows: np.packbits(np.array(rows, dtype=np.uint8), axis=1)  # noqa: E731
    pos = bits([[1, 1, 0, 0, 1, 0, 1, 0], [1, 0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 0, 1, 1]])
    assert np.array_equal(steered(MODES["phash"], pos)[0], majority_bits(pos)[0])  # no −: the majority vote
    neg = bits([[1, 1, 1, 1, 1, 1, 1, 1]])
    # bit 1: + votes 2/3 for 1 (score 1/3), − pulls 1·λ: 1/3 - 0.5 < 0 -> 0; bit 0: + all 1 (score 1) stays 1
    want = np.unpackbits(steered(MODES["phash"], pos, neg, 0.5)[0])
    assert list(want) == [1, 0, 0, 0, 0, 0, 1, 0]


def brute_force(conn, mode, plus, minus, top_k):
    loaded = matrix_cache.load(conn, mode)
    rows = lambda ids: [loaded.row_of_id(i) for i in ids]  # noqa: E731
    query = steered(MODES[mode], loaded.matrix[rows(plus)], loaded.matrix[rows(minus)])[0]
    unit = unit_rows(np.asarray(loaded.matrix, dtype=np.float64))
    distances = 1 - unit @ (query / np.linalg.norm(query))
    distances[rows(plus[:1]) + rows(minus)] = np.inf  # the query and the − ones; liked ones may come back
    order = np.argsort(distances, kind="stable")[:top_k]
    return [int(loaded.ids[r]) for r in order], distances[order]


@pytest.mark.parametrize("plus, minus", [([1], [2]), ([1, 7], [2, 13, 25]), ([30], [31])])
def test_like_and_unlike_against_brute_force(mini_conn, plus, minus):
    hits = search_ids(mini_conn, plus[:1], "embeddings", "cosine", top_k=15, expand=False, like=plus[1:], unlike=minus)
    ids, distances = brute_force(mini_conn, "embeddings", plus, minus, 15)
    assert [h.id for h in hits] == ids
    assert np.allclose([h.distance for h in hits], distances, atol=1e-5)
    assert not set(minus) & {h.id for h in hits}
    plain = search_ids(mini_conn, plus[:1], "embeddings", "cosine", top_k=15, expand=False, like=plus[1:])
    assert [h.id for h in plain] != [h.id for h in hits]  # the − pictures moved the results


def test_unknown_ids_are_named(mini_conn):
    with pytest.raises(UnknownImageError, match="999999"):
        search_ids(mini_conn, [1], "rgb", unlike=[999999])


def test_calculate_similarities_unlike_matches_search_ids(mini_collection, mini_conn, capsys):
    import similarities
    loaded = matrix_cache.load(mini_conn, "embeddings")
    root = mini_collection["images"]
    query, minus = loaded.paths[0], [loaded.paths[5], loaded.paths[9]]
    ids = [int(loaded.ids[0]), int(loaded.ids[5]), int(loaded.ids[9])]
    got = similarities.calculate_similarities(str(root / query), mini_conn.cursor(), "embeddings", "cosine", 10,
                                              expand=False, unlike=[str(root / p) for p in minus])
    want = search_ids(mini_conn, ids[:1], "embeddings", "cosine", top_k=10, expand=False, unlike=ids[1:])
    assert [os.path.relpath(p, os.path.realpath(root)) for p, _ in got] == [h.path for h in want]
    assert np.allclose([d for _, d in got], [h.distance for h in want], atol=1e-6)
    similarities.main([str(root / query), "--db", str(mini_collection["db"]), "--top-k", "10", "--no-expand",
                       "--metric", "cosine", "--unlike", *[str(root / p) for p in minus]])
    printed = [line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert [os.path.relpath(p, os.path.realpath(root)) for p in printed] == [h.path for h in want]
