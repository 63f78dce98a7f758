"""Result grids, the mode comparison, 2-D maps and their helpers, on the shared mini collection."""
import numpy as np
import pytest
from PIL import Image

from search import matrix_cache, metrics
from viz import compare, grid, map_figure, projection


@pytest.fixture
def chelsea(mini_collection):
    return str(mini_collection["images"] / "chelsea" / "original.jpg")


def test_short_name_keeps_the_file_name_and_shortens_the_folder():
    assert grid.short_name("/x/cats/tabby.jpg") == "cats/tabby.jpg"
    assert grid.short_name("/x/a_very_long_folder_name/tabby.jpg", 20) == "a_very_lo…/tabby.jpg"
    assert len(grid.short_name("/x/f/" + "n" * 40 + ".jpg", 20)) == 20


def test_unreadable_files_become_grey_tiles_not_errors(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    assert grid.picture(broken) is None
    tile = grid.thumbnail(broken, 32)
    assert tile.size == (32, 32) and tile.getpixel((16, 16)) == (200, 200, 200)
    mosaic = grid.query_tile([broken] * 3, 64)  # 2 x 2 mosaic, the fourth cell left white
    assert mosaic.getpixel((10, 10)) == (200, 200, 200) and mosaic.getpixel((50, 50)) == (255, 255, 255)


def test_scores_of_a_hamming_row_are_whole_numbers():
    assert grid.score_format([0.0, 3.0, 12.0]).format(3.0) == "3"
    assert grid.score_format([0.0, 0.125]).format(0.125) == "0.125"


def test_result_grid_has_one_row_per_search_query_first_then_ranks(mini_collection, mini_conn, chelsea, tmp_path):
    from similarities import calculate_similarities

    coffee = str(mini_collection["images"] / "coffee" / "original.jpg")
    rows = [([chelsea], calculate_similarities(chelsea, mini_conn, "embeddings", "cosine", 4)),
            ([chelsea, coffee], calculate_similarities([chelsea, coffee], mini_conn, "phash", "hamming", 3))]
    fig = grid.result_grid_figure(rows, title="t")
    captions = [t.get_text() for t in fig.texts]
    assert len(fig.axes) == (1 + 4) + (1 + 3)  # one picture per query cell and per result
    assert captions[0] == "query\nchelsea/original.jpg" and captions[-1] == "t"
    assert [c.split()[0] for c in captions[:5]] == ["query", "#1", "#2", "#3", "#4"]
    assert captions[5].startswith("2 queries combined")
    first_result = rows[0][1][0]
    assert captions[1] == f"#1   {first_result[1]:.3f}\n{grid.short_name(first_result[0])}"
    out = grid.save_figure(fig, tmp_path / "grid.png")
    with Image.open(out) as image:  # read back: as wide as the layout says
        assert image.width == 8 + (grid.THUMB + 12) * 5 + grid.GAP + 8
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    query_frame = np.abs(pixels - (31, 119, 180)).sum(axis=1) < 30  # the blue frame of the two query cells
    assert query_frame.sum() > 2 * 4 * 100


def test_grid_rejects_mismatched_row_labels(chelsea):
    with pytest.raises(ValueError, match="row_labels"):
        grid.result_grid_figure([([chelsea], [])], row_labels=["a", "b"])


def test_mode_comparison_finds_the_edited_copies_in_every_mode(mini_conn, chelsea, tmp_path):
    compared = compare.mode_comparison(chelsea, mini_conn, top_k=5)
    assert [(mode, metric) for mode, metric, _ in compared] == list(compare.DEFAULT_MODES)
    embeddings = compared[0][2]
    assert all("/chelsea/" in path for path, _ in embeddings)  # the 5 edits of the cat come first
    assert [s for _, s in embeddings] == sorted(s for _, s in embeddings)
    out = compare.save_mode_comparison(chelsea, mini_conn, tmp_path / "cmp.png", top_k=5)
    with Image.open(out) as image:
        assert image.width > image.height > 3 * 100  # three rows of six pictures


def test_mode_comparison_validates_modes(mini_conn, chelsea):
    assert compare.mode_metric_pairs(["rgb", ("embeddings", "euclidean")]) == [("rgb", "bhattacharyya"),
                                                                               ("embeddings", "euclidean")]
    with pytest.raises(ValueError, match="valid modes"):
        compare.mode_comparison(chelsea, mini_conn, modes=["colour"])


def test_sample_rows_is_seeded_sorted_and_capped():
    a, b = projection.sample_rows(1000, 50, "random", seed=3), projection.sample_rows(1000, 50, "random", seed=3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 50 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, projection.sample_rows(1000, 50, "random", seed=4))
    assert np.array_equal(projection.sample_rows(1000, 5, "first"), np.arange(5))
    assert len(projection.sample_rows(10, 50)) == 10
    with pytest.raises(ValueError, match="valid"):
        projection.sample_rows(10, 5, "every_other")


def test_map_features_turn_each_metric_into_euclidean_distance(mini_conn):
    rgb = matrix_cache.load(mini_conn, "rgb")
    mapped = projection.map_features(rgb)
    query = rgb.matrix[0].astype(np.float32)
    bhattacharyya = metrics.bhattacharyya_distance(np.sqrt(rgb.matrix), query)
    euclidean_sq = ((mapped - mapped[0]) ** 2).sum(axis=1)
    np.testing.assert_allclose(euclidean_sq, 2 * bhattacharyya ** 2, atol=1e-5)  # |√p-√q|² = 2(1-BC)
    phash = matrix_cache.load(mini_conn, "phash")
    bits = projection.map_features(phash)
    hamming = metrics.hamming_distance(phash.matrix, phash.matrix[0])
    np.testing.assert_array_equal(((bits - bits[0]) ** 2).sum(axis=1), hamming)


@pytest.mark.parametrize("shape", [(200, 30), (20, 300)])  # covariance route, SVD route
def test_pca_matches_scikit_learn_up_to_sign(shape):
    from sklearn.decomposition import PCA

    data = np.random.default_rng(0).normal(size=shape) * np.linspace(5, 0.1, shape[1])
    ours = projection.pca_2d(data.astype(np.float32))
    ref = PCA(n_components=2).fit_transform(data)
    for k in range(2):
        assert abs(np.corrcoef(ours[:, k], ref[:, k])[0, 1]) > 0.9999


def test_folder_labels():
    assert projection.folder_labels(["a/b/c.jpg", "top.jpg"]) == ["b", "."]
    assert projection.folder_labels(["a/b/c.jpg", "top.jpg"], "top") == ["a", "."]


# UMAP compiles with numba: slow.
@pytest.mark.parametrize("method", ["pca", pytest.param("umap", marks=pytest.mark.slow), "tsne"])
def test_map_puts_each_folder_together(mini_conn, method):
    cmap = projection.collection_map(mini_conn, method, "embeddings", limit=None, seed=0)
    assert cmap.coords.shape == (cmap.total, 2) == (60, 2)
    labels = np.array(cmap.labels)
    dist = np.linalg.norm(cmap.coords[:, None] - cmap.coords[None], axis=2)
    same = labels[:, None] == labels[None]
    np.fill_diagonal(same, False)
    # a photo's edited copies sit much closer to it than the other photos do
    assert np.median(dist[same]) < 0.5 * np.median(dist[~same & ~np.eye(60, dtype=bool)])


def test_plot_embeddings_script_samples_and_says_how_many(mini_collection, tmp_path, capsys, caplog):
    import plot_embeddings

    out = tmp_path / "map.png"
    plot_embeddings.main(["--db", str(mini_collection["db"]), "--out", str(out), "--method", "pca",
                          "--limit", "20", "--thumbnails", "--mode", "rgb"])
    assert "20 of 60 images drawn" in capsys.readouterr().out
    assert "drawing 20 of 60 images" in caplog.text
    with Image.open(out) as image:
        assert image.size == (1100, 850)


def test_placer_never_overlaps_and_stays_inside():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    placer = map_figure.Placer(ax, margin=0)
    offsets = [placer.place((0.5, 0.5), 40, 40) for _ in range(30)]
    plt.close(fig)
    assert offsets[0] == (0, 0) and sum(o is not None for o in offsets) == len(placer.boxes) > 5
    assert None in offsets  # the rings fill up: the rest is left out, not piled on top
    boxes = placer.boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_spread_points_picks_one_point_per_region():
    coords = np.vstack([np.zeros((50, 2)), np.ones((50, 2)) * 10])
    picked = map_figure.spread_points(coords, 10)
    assert len(picked) == 2 and {int(p) // 50 for p in picked} == {0, 1}


def test_half_a_million_points_are_sampled_and_the_picture_says_so(caplog):
    from viz.map_figure import map_figure

    n = 500_000
    rng = np.random.default_rng(0)
    loaded = matrix_cache.Loaded("phash", 1, np.arange(n), [f"g{i % 40}/{i}.jpg" for i in range(n)], "/nowhere",
                          rng.integers(0, 256, size=(n, 8), dtype=np.uint8), {}, "fake.db")
    cmap = projection.map_of_loaded(loaded, "pca")
    assert (cmap.drawn, cmap.total) == (projection.DEFAULT_LIMITS["pca"], n) and cmap.coords.shape == (50_000, 2)
    assert "drawing 50000 of 500000 images (random sample, seed 0)" in caplog.text
    fig = map_figure(cmap)
    assert "50,000 of 500,000 images drawn (random sample, seed 0)" in fig.axes[0].get_title()
