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
from search.labels import LABELS, cuts_of
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


@pytest.mark.parametrize("expand", [True, False])
def test_expand_parameter_equals_calculate_similarities(client, app_env, tmp_path, expand):
    query = app_env["images"] / "coffee" / "original.jpg"
    outside = tmp_path / "query.jpg"
    shutil.copy(query, outside)
    image_id = next(r["id"] for r in upload(client, [query], top_k=1).json()["results"])
    answer = client.get(f"/api/similar/{image_id}", params={"top_k": 8, "expand": str(expand).lower()}).json()
    uploaded = client.post(f"/api/search?expand={str(expand).lower()}", data={"top_k": "8"},
                           files=[("files", ("q.jpg", jpeg_bytes(outside), "image/jpeg"))]).json()
    conn = connect(app_env["db"])
    expected = calculate_similarities([str(query)], conn.cursor(), "embeddings", "cosine", top_k=8, expand=expand)
    from_outside = calculate_similarities([str(outside)], conn.cursor(), "embeddings", "cosine", top_k=8,
                                          expand=expand)
    conn.close()
    assert [r["path"] for r in answer["results"]] == [relative(app_env, p) for p, _ in expected]
    assert [r["score"] for r in answer["results"]] == pytest.approx([d for _, d in expected], abs=1e-5)
    assert [r["score"] for r in uploaded["results"]] == pytest.approx([d for _, d in from_outside], abs=1e-5)
    assert uploaded["results"][0]["id"] == image_id  # the uploaded copy finds its stored twin first either way
    assert (uploaded["results"][0]["score"] < 1e-5) == (not expand)  # expanded: the distance to the mean


def test_expand_is_refused_outside_embeddings(client):
    answer = client.get("/api/similar/1", params={"mode": "phash", "expand": "true"})
    assert answer.status_code == 400 and "embeddings" in answer.json()["error"]


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
    db_copy, wide_id = with_one_more_image(mini_collection, tmp_path, "wide.png", (2010, 300), (20, 90, 200))
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


def with_one_more_image(mini_collection, tmp_path, name, size, colour):
    """A copy of the mini DB whose collection folder holds one new picture, pending: (DB, its id)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", size, colour).save(photos / name)
    db_copy = tmp_path / "copy.db"
    target = connect(copy_db(mini_collection["db"], db_copy, photos))
    insert_images(target, [(name, os.path.getsize(photos / name), 1, *size, "pending", None)])
    image_id = find_by_path(target, name)[0]
    target.close()
    return db_copy, image_id


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
    db_copy, tif_id = with_one_more_image(mini_collection, tmp_path, "scan.tif", (640, 480), (200, 120, 40))
    with TestClient(create_app(db_copy, thumbs_dir=str(tmp_path / "thumbs"))) as client:
        response = client.get(f"/api/image/{tif_id}")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        preview = Image.open(io.BytesIO(response.content))
        assert preview.format == "JPEG" and preview.size == (640, 480)
        assert preview.getpixel((320, 240)) == pytest.approx((200, 120, 40), abs=3)
        thumb = Image.open(io.BytesIO(client.get(f"/api/thumb/{tif_id}").content))
        assert thumb.size == (384, 288)


@pytest.mark.parametrize("mode,metric", [("embeddings", "cosine"), ("embeddings", "ann_cosine"), ("rgb", "euclidean"),
                                         ("phash", "hamming")])
def test_labels_follow_the_documented_cut_points(client, mode, metric):
    answer = client.get("/api/similar/3", params={"mode": mode, "metric": metric, "top_k": 59}).json()
    cuts = cuts_of(mode, metric)
    assert answer["labels"] == list(LABELS) and answer["cuts"] == list(cuts)
    for hit in answer["results"]:
        within = [i for i, cut in enumerate(cuts) if hit["score"] <= cut]
        expected = "same picture" if hit["same_as_query"] else LABELS[within[0] if within else len(cuts)]
        assert hit["label"] == expected, hit
    if mode == "embeddings":  # image 3's edited copies first (at least similar), the rest of the 59 not
        ranks = [LABELS.index(hit["label"]) for hit in answer["results"]]
        assert ranks[0] <= LABELS.index("similar") and ranks[-1] >= LABELS.index("loosely related")


def test_an_upload_identical_to_a_collection_file_is_marked(client, app_env, tmp_path):
    outside = tmp_path / "copy of chelsea.jpg"
    shutil.copy(app_env["images"] / "chelsea" / "original.jpg", outside)
    answer = upload(client, [outside], top_k=5).json()  # with query expansion: the distance need not be 0
    assert answer["in_collection"] == ["chelsea/original.jpg"]
    marked = [hit for hit in answer["results"] if hit["same_as_query"]]
    assert [hit["path"] for hit in marked] == ["chelsea/original.jpg"] and marked[0]["label"] == "same picture"
    other = upload(client, [app_env["images"] / "chelsea" / "flipped.jpg"], top_k=5).json()
    assert other["in_collection"] == ["chelsea/flipped.jpg"]
    two = upload(client, [outside, app_env["images"] / "coffee" / "original.jpg"], top_k=5).json()
    assert two["in_collection"] == [] and not any(hit["same_as_query"] for hit in two["results"])


def brute_force_feedback(app_env, query_id, like, unlike, top_k):
    """The + / − search by its formula over the whole matrix (search.feedback, exact cosine, no expansion)."""
    from search import matrix_cache
    from search.feedback import steered
    from search.metrics import unit_rows
    conn = connect(app_env["db"])
    try:
        loaded = matrix_cache.load(conn, "embeddings")
        row = loaded.row_of_id
        query = steered(MODES["embeddings"], loaded.matrix[[row(query_id)] + [row(i) for i in like]],
                        loaded.matrix[[row(i) for i in unlike]])[0]
        distances = 1 - unit_rows(loaded.matrix.astype("float64")) @ (query / (query ** 2).sum() ** 0.5)
        distances[[row(query_id)] + [row(i) for i in unlike]] = float("inf")
        order = distances.argsort(kind="stable")[:top_k]
        return [int(loaded.ids[r]) for r in order]
    finally:
        conn.close()


def test_like_and_unlike_on_similar_and_search(client, app_env, tmp_path):
    first = client.get("/api/similar/3", params={"top_k": 10, "expand": "false"}).json()["results"]
    like, unlike = [first[0]["id"], first[1]["id"]], [first[5]["id"], first[6]["id"], first[9]["id"]]
    params = [("top_k", 10), ("expand", "false")] + [("like", i) for i in like] + [("unlike", i) for i in unlike]
    again = client.get("/api/similar/3", params=params).json()["results"]
    assert [hit["id"] for hit in again] == brute_force_feedback(app_env, 3, like, unlike, 10)
    assert not set(unlike) & {hit["id"] for hit in again}
    assert [hit["id"] for hit in again] != [hit["id"] for hit in first]
    outside = tmp_path / "q.jpg"
    shutil.copy(app_env["images"] / "coffee" / "original.jpg", outside)
    plain = upload(client, [outside], top_k=8).json()["results"]
    files = [("files", ("q.jpg", jpeg_bytes(outside), "image/jpeg"))]
    marked = client.post("/api/search", files=files, data={"top_k": "8", "unlike": [str(plain[1]["id"])]}).json()
    assert plain[1]["id"] not in [hit["id"] for hit in marked["results"]]
    bad = client.get("/api/similar/3", params=[("like", 999999)])
    assert bad.status_code == 404 and "999999" in bad.json()["error"]
    both = client.get("/api/similar/3", params=[("like", like[0]), ("unlike", like[0])])
    assert both.status_code == 400


@pytest.fixture(scope="module")
def dated(mini_collection, tmp_path_factory):
    """A copy of the mini collection with EXIF dates and cameras (the photos themselves have none)."""
    from db.connection import copy_database
    from db.exif import store_exif
    base = tmp_path_factory.mktemp("dated")
    copy_database(mini_collection["db"], base / "dated.db")
    conn = connect(base / "dated.db")
    rows = conn.execute("SELECT id, path FROM images ORDER BY id").fetchall()
    store_exif(conn, [(i, (f"{2000 + k % 20}-05-0{1 + k % 9}T10:00:00", "Canon" if k % 3 else "Apple",
                           "Canon EOS 5D" if k % 3 else "iPhone 8", None, None, 1)) for k, (i, _) in enumerate(rows)])
    conn.close()
    with TestClient(create_app(base / "dated.db", thumbs_dir=str(base / "thumbs"))) as client:
        yield client, base / "dated.db"


@pytest.mark.parametrize("where", [{"folder": "coffee"}, {"after": "2010-01-01"}, {"before": "2005-12-31"},
                                   {"after": "2004-01-01", "before": "2012-06-30", "camera": "iphone"},
                                   {"camera": "CANON", "folder": "chelsea"}])
def test_filters_equal_a_brute_force_reference(dated, where):
    client, db_path = dated
    answer = client.get("/api/similar/2", params={"top_k": 60, "expand": "false", **where}).json()
    conn = connect(db_path)
    facts = conn.execute("SELECT id, path, taken, camera_make || ' ' || camera_model FROM images").fetchall()
    conn.close()
    passing = {i for i, path, taken, camera in facts if i != 2
               and (not where.get("folder") or path.startswith(where["folder"] + "/"))
               and (not where.get("after") or taken[:10] >= where["after"])
               and (not where.get("before") or taken[:10] <= where["before"])
               and (not where.get("camera") or where["camera"].lower() in camera.lower())}
    assert {hit["id"] for hit in answer["results"]} == passing and passing
    unfiltered = client.get("/api/similar/2", params={"top_k": 60, "expand": "false"}).json()["results"]
    assert [h["id"] for h in answer["results"]] == [h["id"] for h in unfiltered if h["id"] in passing]  # same order
    by_date = client.get("/api/similar/2", params={"top_k": 60, "sort": "date", **where}).json()["results"]
    assert [h["date"] for h in by_date] == sorted((h["date"] for h in by_date), reverse=True)


def test_filter_choices_and_bad_filters(dated):
    client, _ = dated
    choices = client.get("/api/filters").json()
    assert {c["name"] for c in choices["folders"]} >= {"coffee", "chelsea"}
    assert [c["name"] for c in choices["cameras"]] == ["Canon EOS 5D", "Apple iPhone 8"]
    assert client.get("/api/similar/2", params={"after": "yesterday"}).status_code == 400
    assert client.get("/api/similar/2", params={"sort": "size"}).status_code == 400
    files = [("files", ("q.jpg", client.get("/api/image/5").content, "image/jpeg"))]
    found = client.post("/api/search?folder=coffee&camera=iphone", files=files, data={"top_k": "60"}).json()
    assert found["results"] and all(h["path"].startswith("coffee/") for h in found["results"])
