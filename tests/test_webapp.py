"""The web app's JSON API on the mini collection: every route, with known answers.

Searches are compared with calculate_similarities on the same files: the API must give the
same images in the same order with the same distances.
"""
import io
import os
import re
import shutil
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from db import connect
from db.images import find_by_path, insert_images
from db.meta import set_meta
from search.modes import MODES
from search.query import calculate_similarities
from webapp import browse, thumbnails
from webapp.server import create_app


@pytest.fixture(scope="module")
def app_env(mini_collection, tmp_path_factory):
    thumbs = tmp_path_factory.mktemp("thumbs")
    app = create_app(mini_collection["db"], thumbs_dir=str(thumbs))
    with TestClient(app) as client:
        yield {"client": client, "thumbs": thumbs, **mini_collection}


@pytest.fixture
def client(app_env):
    return app_env["client"]


def jpeg_bytes(path):
    with open(path, "rb") as fh:
        return fh.read()


def upload(client, paths, **form):
    files = [("files", (os.path.basename(p), jpeg_bytes(p), "image/jpeg")) for p in paths]
    return client.post("/api/search", files=files, data={k: str(v) for k, v in form.items()})


def relative(app_env, absolute):
    return os.path.relpath(absolute, app_env["images"]).replace(os.sep, "/")


def test_health_counts_the_collection(client, app_env):
    answer = client.get("/api/health").json()
    assert answer["images"] == app_env["count"]
    assert answer["modes"] == list(MODES)
    assert answer["model"] == "efficientnet_lite0"
    for name, mode in MODES.items():
        assert answer["metrics"][name] == list(mode.metrics)
        assert answer["default_metrics"][name] == mode.default_metric


@pytest.mark.parametrize("mode", ["embeddings", "rgb", "phash"])
def test_upload_search_equals_calculate_similarities(client, app_env, tmp_path, mode):
    """An uploaded photo (a copy from outside the collection) gives calculate_similarities' answer."""
    outside = tmp_path / "query.jpg"
    shutil.copy(app_env["images"] / "chelsea" / "original.jpg", outside)
    metric = MODES[mode].default_metric
    response = upload(client, [outside], mode=mode, top_k=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    conn = connect(app_env["db"])
    expected = calculate_similarities([str(outside)], conn.cursor(), mode, metric, top_k=10)
    conn.close()
    got = answer["results"]
    assert (answer["mode"], answer["metric"], answer["top_k"]) == (mode, metric, 10)
    assert [r["path"] for r in got] == [relative(app_env, p) for p, _ in expected]
    assert [r["score"] for r in got] == pytest.approx([d for _, d in expected], abs=1e-5)
    assert [r["score"] for r in got] == sorted(r["score"] for r in got)
    plain = client.post("/api/search?expand=false", files=[("files", ("q.jpg", jpeg_bytes(outside), "image/jpeg"))],
                        data={"mode": mode, "top_k": "10"}).json()["results"]  # distances to the photo itself
    assert "chelsea/original.jpg" in [r["path"] for r in plain if r["score"] < 1e-5]  # hashes may tie at 0
    for r in got:
        assert r["thumbnail"].startswith(f"/api/thumb/{r['id']}?v=") and r["image"] == f"/api/image/{r['id']}"


def test_several_uploads_are_one_combined_query(client, app_env, tmp_path):
    paths = []
    for name in ("chelsea", "coffee"):
        paths.append(tmp_path / f"{name}.jpg")
        shutil.copy(app_env["images"] / name / "original.jpg", paths[-1])
    answer = upload(client, paths, top_k=6).json()
    conn = connect(app_env["db"])
    expected = calculate_similarities([str(p) for p in paths], conn.cursor(), "embeddings", "cosine", top_k=6)
    conn.close()
    assert [r["path"] for r in answer["results"]] == [relative(app_env, p) for p, _ in expected]
    assert [r["score"] for r in answer["results"]] == pytest.approx([d for _, d in expected], abs=1e-5)


@pytest.mark.parametrize("mode,metric", [("embeddings", "cosine"), ("embeddings", "manhattan"), ("rgb", None),
                                         ("dhash", "hamming")])
def test_similar_equals_calculate_similarities_and_leaves_the_query_out(client, app_env, mode, metric):
    query = app_env["images"] / "astronaut" / "original.jpg"
    image_id = next(r["id"] for r in upload(client, [query], top_k=1).json()["results"])
    params = {"mode": mode, "top_k": 8, **({"metric": metric} if metric else {})}
    answer = client.get(f"/api/similar/{image_id}", params=params).json()
    conn = connect(app_env["db"])
    expected = calculate_similarities([str(query)], conn.cursor(), mode, metric or MODES[mode].default_metric, top_k=8)
    conn.close()
    assert image_id not in [r["id"] for r in answer["results"]]
    assert [r["path"] for r in answer["results"]] == [relative(app_env, p) for p, _ in expected]
    assert [r["score"] for r in answer["results"]] == pytest.approx([d for _, d in expected], abs=1e-5)


def test_top_k_larger_than_the_collection_returns_every_other_image(client, app_env):
    answer = client.get("/api/similar/1", params={"top_k": 1000}).json()
    assert len(answer["results"]) == app_env["count"] - 1
    assert len({r["id"] for r in answer["results"]}) == app_env["count"] - 1


def test_sample_is_random_searchable_images(client, app_env):
    picks = [client.get("/api/sample", params={"count": 10}).json()["images"] for _ in range(3)]
    for images in picks:
        assert len({i["id"] for i in images}) == 10
        for image in images:
            assert client.get(f"/api/images/{image['id']}").json()["path"] == image["path"]
            assert image["thumbnail"].startswith(f"/api/thumb/{image['id']}?v=")
    assert len({tuple(sorted(i["id"] for i in images)) for images in picks}) > 1  # not the same every time
    everything = client.get("/api/sample", params={"count": 100}).json()["images"]
    assert len(everything) == app_env["count"]


def test_default_top_k_is_20(client):
    assert len(client.get("/api/similar/1").json()["results"]) == 20


def test_image_info_and_full_image_come_from_the_db_row(client, app_env):
    info = client.get("/api/images/1").json()
    path = app_env["images"] / info["path"]
    assert (info["width"], info["height"]) == Image.open(path).size
    assert f"{info['folder']}/{info['name']}" == info["path"] and info["size"] == path.stat().st_size
    assert info["modified"][:19] == datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()[:19]
    response = client.get(info["image"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == jpeg_bytes(path)


def test_thumbnail_is_a_cached_jpeg_within_384px_with_cache_headers(client, app_env):
    result = client.get("/api/similar/2", params={"top_k": 1}).json()["results"][0]
    first = client.get(result["thumbnail"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(first.content))
    width, height = Image.open(app_env["images"] / result["path"]).size
    assert thumb.format == "JPEG" and max(thumb.size) == min(384, max(width, height))
    assert abs(thumb.size[0] / thumb.size[1] - width / height) < 0.02  # the whole picture, its shape kept
    assert "immutable" in first.headers["cache-control"]
    etag = first.headers["etag"]
    cached = [os.path.join(d, f) for d, _, files in os.walk(app_env["thumbs"]) for f in files]
    assert any(open(f, "rb").read() == first.content for f in cached)
    again = client.get(result["thumbnail"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    unversioned = client.get(f"/api/thumb/{result['id']}")
    assert unversioned.headers["cache-control"] == "no-cache" and unversioned.content == first.content


def test_a_panorama_thumbnail_fits_the_box_and_old_square_ones_are_not_served(mini_collection, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (2010, 300), (20, 90, 200)).save(photos / "wide.png")
    db_copy = tmp_path / "copy.db"
    target = connect(copy_db(mini_collection["db"], db_copy, photos))
    insert_images(target, [("wide.png", os.path.getsize(photos / "wide.png"), 1, 2010, 300, "pending", None)])
    wide_id = find_by_path(target, "wide.png")[0]
    target.close()
    thumbs = tmp_path / "thumbs"
    with TestClient(create_app(db_copy, thumbs_dir=str(thumbs))) as client:
        row = client.app.state.collection.row(wide_id)
        old = thumbs / thumbnails.thumbnail_key(row)[:2] / f"{thumbnails.thumbnail_key(row)}-256.jpg"
        old.parent.mkdir(parents=True)
        old.write_bytes(b"an old 256 px thumbnail")  # the format before: never served again
        url = client.get(f"/api/images/{wide_id}").json()["thumbnail"]
        response = client.get(url)
        assert response.content != old.read_bytes()
        assert Image.open(io.BytesIO(response.content)).size == (384, 57)
        assert "immutable" in response.headers["cache-control"]
        stale = client.get(f"/api/thumb/{wide_id}?v={thumbnails.thumbnail_key(row)[:16]}")  # an old page's URL
        assert stale.headers["cache-control"] == "no-cache"


def test_thumbnail_served_from_memory_when_the_disk_is_full(mini_collection, tmp_path, monkeypatch, caplog):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(thumbnails, "atomic_write", full_disk)
    with TestClient(create_app(mini_collection["db"], thumbs_dir=str(tmp_path / "thumbs"))) as client:
        with caplog.at_level("WARNING", logger="webapp.thumbnails"):
            answers = [client.get(f"/api/thumb/{i}") for i in (1, 2, 3, 1)]
    assert [a.status_code for a in answers] == [200] * 4
    assert answers[0].content == answers[3].content
    assert max(Image.open(io.BytesIO(answers[1].content)).size) == 384
    warnings = [r for r in caplog.records if "cannot write thumbnails" in r.getMessage()]
    assert len(warnings) == 1
    assert not any(files for _, _, files in os.walk(tmp_path / "thumbs"))


def test_duplicates_lists_groups_with_their_keeper_first(client, app_env):
    answer = client.get("/api/duplicates").json()
    assert answer["groups"], "the mini collection's edited copies form groups"
    ids = set()
    for group in answer["groups"]:
        images = group["images"]
        assert images[0]["keep"] and not any(i["keep"] for i in images[1:])
        assert group["keep"] == images[0]["id"] and images[0]["distance"] == 0
        assert len({i["path"].split("/")[0] for i in images}) == 1  # copies of one photo share its folder
        ids.update(i["id"] for i in images)
    assert len(ids) == answer["images_in_groups"]
    assert client.get("/api/duplicates", params={"limit": 1}).json()["groups"] == answer["groups"][:1]


def test_map_places_every_image_in_the_unit_square(client, app_env):
    answer = client.get("/api/map", params={"mode": "embeddings", "method": "pca"}).json()
    points = answer["points"]
    assert answer["total"] == len(points) == app_env["count"]
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in points)
    assert {p["label"] for p in points} == {p["path"].split("/")[0] for p in points}
    assert len(client.get("/api/map", params={"limit": 10}).json()["points"]) == 10


def test_page_and_its_files_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and 'type="file"' in page.text
    scripts = re.findall(r'<script src="([^"]+)" defer></script>', page.text)
    assert scripts[0] == "/static/common.js" and scripts[-1] == "/static/app.js"  # helpers first, start last
    for asset in (*scripts, "/static/style.css", "/static/favicon.svg", "/static/docs.js"):
        response = client.get(asset)
        assert response.status_code == 200, asset
        text = response.text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, not a download
        assert "https://" not in text and "http://" not in text and "//cdn" not in text, asset
    assert "default-src 'self'" in page.headers["content-security-policy"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_openapi_documents_every_route(client):
    spec = client.get("/openapi.json").json()
    routes = {"/api/health": "get", "/api/search": "post", "/api/similar/{image_id}": "get",
              "/api/thumb/{image_id}": "get", "/api/image/{image_id}": "get", "/api/duplicates": "get",
              "/api/map": "get", "/api/images/{image_id}": "get", "/api/sample": "get"}
    for path, method in routes.items():
        operation = spec["paths"][path][method]
        assert operation["summary"], path
    form = spec["paths"]["/api/search"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "files" in str(form) or "$ref" in str(form)


def test_uploads_are_never_written_into_the_collection(client, app_env):
    def listing():
        return sorted((os.path.join(d, f), os.stat(os.path.join(d, f)).st_mtime_ns)
                      for d, _, files in os.walk(app_env["images"]) for f in files)

    before = listing()
    photo = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(photo, "PNG")
    response = client.post("/api/search", files=[("files", ("new-photo.png", photo.getvalue(), "image/png"))])
    assert response.status_code == 200
    assert listing() == before


def copy_db(db, copy, root):
    """A copy of ``db`` whose collection folder is ``root``; returns the copy's path."""
    source, target = connect(db), connect(copy, create=True)
    source.backup(target)
    source.close()
    with target:
        set_meta(target, {"dataset_root": str(root)})
    target.close()
    return copy


def test_cached_thumbnails_show_while_the_photos_are_away(mini_collection, tmp_path):
    """The photos' drive unmounted: thumbnails already made still show; the full image says why it cannot."""
    photos = tmp_path / "photos"
    shutil.copytree(mini_collection["images"], photos)
    db_copy = copy_db(mini_collection["db"], tmp_path / "copy.db", photos)
    with TestClient(create_app(db_copy, thumbs_dir=str(tmp_path / "thumbs"))) as client:
        made = client.get("/api/thumb/5")
        assert made.status_code == 200
        shutil.rmtree(photos)
        again = client.get("/api/thumb/5")
        assert again.status_code == 200 and again.content == made.content
        response = client.get("/api/image/5")
        assert response.status_code == 404 and "mounted" in response.json()["error"]
        assert client.get("/api/thumb/6").status_code == 404  # never made, and its file is away


def test_long_jobs_answer_202_then_the_result(client, monkeypatch):
    """A job that takes longer than the wait answers 202 with a message; asking again gets it."""
    monkeypatch.setattr(browse, "WAIT_SECONDS", 0)
    first = client.get("/api/duplicates", params={"threshold": 0.05})
    assert first.status_code == 202 and first.json()["pending"] is True and "duplicates" in first.json()["message"]
    monkeypatch.setattr(browse, "WAIT_SECONDS", 60)
    done = client.get("/api/duplicates", params={"threshold": 0.05})
    assert done.status_code == 200 and done.json()["settings"]["threshold"] == 0.05
    assert client.get("/api/duplicates", params={"threshold": 0.05}).json() == done.json()  # kept in memory


def test_formats_browsers_cannot_show_are_sent_as_jpeg(mini_collection, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (640, 480), (200, 120, 40)).save(photos / "scan.tif")
    db_copy = tmp_path / "copy.db"
    target = connect(copy_db(mini_collection["db"], db_copy, photos))
    insert_images(target, [("scan.tif", os.path.getsize(photos / "scan.tif"), 1, 640, 480, "pending", None)])
    tif_id = find_by_path(target, "scan.tif")[0]
    target.close()
    with TestClient(create_app(db_copy, thumbs_dir=str(tmp_path / "thumbs"))) as client:
        response = client.get(f"/api/image/{tif_id}")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        preview = Image.open(io.BytesIO(response.content))
        assert preview.format == "JPEG" and preview.size == (640, 480)
        assert preview.getpixel((320, 240)) == pytest.approx((200, 120, 40), abs=3)
        thumb = Image.open(io.BytesIO(client.get(f"/api/thumb/{tif_id}").content))
        assert thumb.size == (384, 288)
