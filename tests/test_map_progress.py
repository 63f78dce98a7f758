"""The similarity map's UMAP reports how far it got: viz.projection.project's progress callback,
and the 202 answer of /api/map carrying the percentage."""
import numpy as np
import pytest

from viz.projection import project


@pytest.mark.slow  # UMAP compiles its kernels (numba) the first time
def test_umap_reports_its_percentages_up_to_100():
    seen = []
    points = np.random.default_rng(0).normal(size=(80, 16)).astype(np.float32)
    coords = project(points, "umap", seed=0, progress=seen.append)
    assert coords.shape == (80, 2)
    assert seen and seen[-1] == 100 and seen == sorted(seen)
    assert project(points, "pca", progress=seen.append).shape == (80, 2)  # PCA: instant, no report needed


def test_a_pending_map_answer_carries_the_last_percentage(mini_collection, tmp_path, monkeypatch):
    import threading

    from fastapi.testclient import TestClient

    from webapp import browse
    from webapp.server import create_app

    release = threading.Event()

    def slow_map(loaded, method, limit, seed=0, progress=None):
        progress(42)
        release.wait(30)
        raise RuntimeError("not needed")

    monkeypatch.setattr(browse, "map_of_loaded", slow_map)
    monkeypatch.setattr(browse, "WAIT_SECONDS", 0.2)
    app = create_app(mini_collection["db"], thumbs_dir=str(tmp_path / "t"))
    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.get("/api/map", params={"method": "umap", "limit": 7})
        release.set()
    assert answer.status_code == 202 and answer.json()["percent"] == 42
