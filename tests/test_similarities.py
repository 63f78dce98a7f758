"""calculate_similarities: argument checks, edge cases and combined queries, on real photos."""
import os

import numpy as np
import pytest

from search.modes import METRICS, MODES
from similarities import QueryImageError, calculate_similarities


def query(collection, name="chelsea", variant="original"):
    return str(collection["images"] / name / f"{variant}.jpg")


@pytest.mark.parametrize("mode,metric,fragment", [
    ("colour", "cosine", "valid modes: embeddings, rgb, ahash, dhash, phash"),
    ("embeddings", "jaccard", "valid metrics: cosine, ann_cosine, euclidean, manhattan, hamming, bhattacharyya"),
    ("phash", "cosine", "valid for phash: hamming"),
    ("embeddings", "bhattacharyya", "valid for embeddings: cosine, ann_cosine, euclidean, manhattan"),
    ("rgb", "hamming", "valid for rgb: bhattacharyya"),
])
def test_bad_mode_metric_pairs_list_the_valid_choices(mini_collection, mini_conn, mode, metric, fragment):
    with pytest.raises(ValueError, match=fragment):
        calculate_similarities(query(mini_collection), mini_conn.cursor(), mode, metric)


@pytest.mark.parametrize("top_k", [0, -3, 2.5, True, "5"])
def test_bad_top_k(mini_collection, mini_conn, top_k):
    with pytest.raises(ValueError, match="top_k must be an integer >= 1"):
        calculate_similarities(query(mini_collection), mini_conn.cursor(), "embeddings", "cosine", top_k=top_k)


def test_empty_input_and_undecodable_query(mini_collection, mini_conn, tmp_path):
    with pytest.raises(ValueError, match="input_images is empty"):
        calculate_similarities([], mini_conn.cursor(), "embeddings", "cosine")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(QueryImageError, match="bad.jpg: not an image"):
        calculate_similarities(str(bad), mini_conn.cursor(), "rgb", "bhattacharyya")


@pytest.mark.parametrize("mode", MODES)
def test_every_valid_pair_returns_sorted_distances_without_the_query(mini_collection, mini_conn, mode):
    for metric in MODES[mode].metrics:
        results = calculate_similarities(query(mini_collection), mini_conn.cursor(), mode, metric, top_k=5)
        assert len(results) == 5
        scores = [s for _, s in results]
        assert scores == sorted(scores), (mode, metric)
        assert query(mini_collection) not in [p for p, _ in results]
        assert all(os.path.exists(p) for p, _ in results)


def test_include_query_returns_itself_first_at_distance_zero(mini_collection, mini_conn):
    for mode in MODES:
        metric = MODES[mode].default_metric
        results = calculate_similarities(query(mini_collection), mini_conn.cursor(), mode, metric, exclude_query=False,
                                         expand=False)
        assert results[0][1] == pytest.approx(0.0, abs=1e-5)
        # a hash can tie at 0 with an edited copy (brightened keeps every bit): any tied place
        assert query(mini_collection) in [p for p, s in results if s <= 1e-5], mode
    # Expanded (the default for embeddings), distances are to the mean of the query and its
    # first results: no longer 0, but the query itself still comes first.
    results = calculate_similarities(query(mini_collection), mini_conn.cursor(), "embeddings", "cosine",
                                     exclude_query=False, expand=True)
    assert results[0][0] == query(mini_collection) and results[0][1] > 0


def test_top_k_larger_than_the_collection_returns_everything_else(mini_collection, mini_conn):
    results = calculate_similarities(query(mini_collection), mini_conn.cursor(), "phash", "hamming", top_k=10_000)
    assert len(results) == mini_collection["count"] - 1
    assert len({p for p, _ in results}) == len(results)


def test_query_from_outside_the_collection_matches_the_stored_copy(mini_collection, mini_conn, tmp_path):
    """A copy of a collection image, outside it, is embedded like main.py did: distance ~0."""
    outside = tmp_path / "copy_of_coffee.jpg"
    outside.write_bytes((mini_collection["images"] / "coffee" / "original.jpg").read_bytes())
    for mode in MODES:
        metric = MODES[mode].default_metric
        results = calculate_similarities(str(outside), mini_conn.cursor(), mode, metric, top_k=3, expand=False)
        assert results[0][1] == pytest.approx(0.0, abs=1e-4), mode
        assert query(mini_collection, "coffee") in [p for p, s in results if s <= 1e-4], mode
        if MODES[mode].expandable:  # expanded (the default), the stored copy still comes first
            expanded = calculate_similarities(str(outside), mini_conn.cursor(), mode, metric, top_k=3, expand=True)
            assert expanded[0][0] == query(mini_collection, "coffee"), mode


def test_several_queries_are_combined(mini_collection, mini_conn):
    both = [query(mini_collection, "chelsea"), query(mini_collection, "coffee")]
    results = calculate_similarities(both, mini_conn.cursor(), "embeddings", "cosine", top_k=10)
    folders = {os.path.basename(os.path.dirname(p)) for p, _ in results}
    assert folders == {"chelsea", "coffee"}  # the edited copies of both, not one alone
    assert not set(both) & {p for p, _ in results}


def test_metrics_table_is_complete():
    assert {m for mode in MODES.values() for m in mode.metrics} == set(METRICS)
    assert all(mode.default_metric == mode.metrics[0] for mode in MODES.values())


def test_matrices_are_loaded_once_and_reloaded_after_a_write(mini_collection, mini_conn):
    from db.versions import FEATURES, bump
    from search import matrix_cache

    first = matrix_cache.load(mini_conn, "rgb")
    assert matrix_cache.load(mini_conn, "rgb") is first
    with mini_conn:
        bump(mini_conn, FEATURES)  # what a write that changes the ok rows' features does
    second = matrix_cache.load(mini_conn, "rgb")
    assert second is not first and np.array_equal(second.matrix, first.matrix)


def test_a_db_without_features_says_to_run_main(tmp_path):
    import generator
    from db import NoFeaturesError, connect
    from samples import random_photo

    (tmp_path / "photos").mkdir()
    photo = tmp_path / "photos" / "a.png"
    random_photo(1).save(photo)
    generator.scan(str(tmp_path / "photos"), str(tmp_path / "scanned.db"), progress=False)
    conn = connect(tmp_path / "scanned.db")
    with pytest.raises(NoFeaturesError, match="no extracted features yet: run `python main.py --db"):
        calculate_similarities(str(photo), conn.cursor(), "phash", "hamming")
    conn.close()
