"""Every bad input gets a 4xx with {"error": "<one readable line>"}, and the server keeps serving.

Also: path traversal on the file routes, uploads over the byte and pixel limits, and Host
headers that are not this server's (DNS rebinding).
"""
import io
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import config
import generator
from db import connect
from db.images import find_by_path, insert_images
from webapp.server import create_app

LIMIT = 200_000  # bytes per request in these tests


@pytest.fixture(scope="module")
def client(mini_collection, tmp_path_factory):
    app = create_app(mini_collection["db"], max_upload_bytes=LIMIT,
                     thumbs_dir=str(tmp_path_factory.mktemp("thumbs")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def photo(mini_collection):
    with open(mini_collection["images"] / "coffee" / "original.jpg", "rb") as fh:
        return fh.read()


def png(size, colour=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def assert_refused(response, status, *words):
    """A JSON {"error": ...} of one line, naming what was wrong, with the expected status."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    message = body["error"]
    assert "\n" not in message and "Traceback" not in message and len(message) < 400
    for word in words:
        assert word.lower() in message.lower(), (word, message)


def still_serving(client):
    assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("name,data,status,words", [
    ("notes.txt", b"this is not an image, just text\n", 400, ("notes.txt", "not an image")),
    ("empty.jpg", b"", 400, ("empty.jpg", "empty")),
    ("zeros.jpg", bytes(5000), 400, ("zeros.jpg",)),
    ("fake.png", b"\x89PNG\r\n\x1a\n" + bytes(100), 400, ("fake.png",)),
])
def test_upload_that_is_not_an_image(client, name, data, status, words):
    assert_refused(client.post("/api/search", files=[("files", (name, data, "image/jpeg"))]), status, *words)
    still_serving(client)


def test_truncated_upload(client, photo):
    response = client.post("/api/search", files=[("files", ("cut.jpg", photo[: len(photo) // 3], "image/jpeg"))])
    assert_refused(response, 400, "cut.jpg", "truncated")
    still_serving(client)


def test_one_bad_file_among_good_ones_names_the_bad_one(client, photo):
    files = [("files", ("good.jpg", photo, "image/jpeg")), ("files", ("bad.jpg", b"nope", "image/jpeg"))]
    assert_refused(client.post("/api/search", files=files), 400, "bad.jpg")


def test_no_file(client):
    assert_refused(client.post("/api/search", data={"mode": "embeddings"}), 422, "files", "required")
    assert_refused(client.post("/api/search"), 422, "files")
    assert_refused(client.post("/api/search", data={"files": "not a file"}), 422, "files")


def test_too_many_files(client):
    files = [("files", (f"{i}.png", b"x", "image/png")) for i in range(1000)]  # counted before any is read
    assert_refused(client.post("/api/search", files=files), 400, "too many files", "at most 32", "got 1000")


@pytest.mark.parametrize("header,status,words", [
    ("bytes=999999999-", 416, ("range not satisfiable", "bytes")),
    ("nonsense", 400, ("range",)),
    ("bytes=5-2", 400, ("range",)),
])
def test_bad_range_headers_get_the_error_shape(client, header, status, words):
    assert_refused(client.get("/api/image/1", headers={"Range": header}), status, *words)


def test_a_good_range_header_still_gets_its_bytes(client, mini_collection):
    answer = client.get("/api/image/1", headers={"Range": "bytes=0-1"})
    assert answer.status_code == 206 and answer.content == b"\xff\xd8"


def test_no_error_body_names_an_absolute_path(tmp_path):
    """A scanned DB with nothing extracted yet: the duplicate finder's 503 names the DB."""
    photos, db = tmp_path / "private" / "photos", tmp_path / "private" / "photos.db"
    for i in range(3):
        photos.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (80 * i, 10, 10)).save(photos / f"{i}.png")
    generator.scan(str(photos), str(db), progress=False)
    with TestClient(create_app(db, thumbs_dir=str(tmp_path / "thumbs")), raise_server_exceptions=False) as client:
        answers = [client.get(url) for url in ("/api/duplicates", "/api/similar/1", "/api/image/99", "/api/map")]
    assert answers[0].status_code == 503, answers[0].text
    assert "photos.db" in answers[0].json()["error"]
    for answer in answers:
        assert str(tmp_path) not in answer.text


@pytest.mark.parametrize("form,status,words", [
    ({"mode": "colour"}, 400, ("unknown mode", "embeddings", "phash")),
    ({"mode": "embeddings", "metric": "hamming"}, 400, ("does not fit", "cosine")),
    ({"metric": "chebyshev"}, 400, ("unknown metric", "cosine")),
    ({"mode": "phash", "metric": "cosine"}, 400, ("hamming",)),
    ({"top_k": "0"}, 422, ("top_k", "greater than or equal to 1")),
    ({"top_k": "-3"}, 422, ("top_k",)),
    ({"top_k": "abc"}, 422, ("top_k", "integer")),
    ({"top_k": "2.5"}, 422, ("top_k",)),
    ({"top_k": "1000000"}, 422, ("top_k", "1000")),
])
def test_bad_search_fields(client, photo, form, status, words):
    response = client.post("/api/search", files=[("files", ("q.jpg", photo, "image/jpeg"))], data=form)
    assert_refused(response, status, *words)
    still_serving(client)


@pytest.mark.parametrize("url,status,words", [
    ("/api/similar/999999", 404, ("999999",)),
    ("/api/similar/0", 422, ("image_id",)),
    ("/api/similar/-1", 422, ("image_id",)),
    ("/api/similar/abc", 422, ("image_id", "integer")),
    ("/api/similar/1.5", 422, ("image_id",)),
    ("/api/similar/99999999999999999999999999", 422, ("image_id",)),
    ("/api/similar/1?mode=nope", 400, ("unknown mode",)),
    ("/api/similar/1?metric=nope", 400, ("unknown metric",)),
    ("/api/similar/1?mode=rgb&metric=hamming", 400, ("does not fit",)),
    ("/api/similar/1?top_k=0", 422, ("top_k",)),
    ("/api/similar/1?top_k=-5", 422, ("top_k",)),
    ("/api/similar/1?top_k=ten", 422, ("top_k", "integer")),
    ("/api/similar/1?top_k=", 422, ("top_k",)),
    ("/api/thumb/999999", 404, ("999999",)),
    ("/api/image/999999", 404, ("999999",)),
    ("/api/images/999999", 404, ("999999",)),
    ("/api/thumb/abc", 422, ("image_id",)),
    ("/api/map?mode=nope", 400, ("unknown mode",)),
    ("/api/map?method=tsne", 400, ("pca", "umap")),
    ("/api/map?limit=0", 422, ("limit",)),
    ("/api/duplicates?mode=rgb", 400, ("rgb",)),
    ("/api/duplicates?threshold=7", 400, ("threshold",)),
    ("/api/duplicates?threshold=x", 422, ("threshold",)),
    ("/api/sample?count=0", 422, ("count",)),
    ("/api/sample?count=500", 422, ("count",)),
    ("/api/nothing-here", 404, ("no such",)),
])
def test_bad_urls(client, url, status, words):
    assert_refused(client.get(url), status, *words)
    still_serving(client)


def test_wrong_method(client):
    assert_refused(client.delete("/api/similar/1"), 405, "DELETE")
    assert_refused(client.get("/api/search"), 405, "GET")


TRAVERSALS = [
    "/api/image/../../etc/passwd", "/api/image/..%2F..%2Fetc%2Fpasswd", "/api/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/image/%252e%252e%252fetc%252fpasswd", "/api/image/..%5c..%5cetc%5cpasswd",
    "/api/thumb/..%2F..%2Fetc%2Fpasswd",
    "/api/image/1%2F..%2F..%2F..%2Fetc%2Fpasswd", "/api/image//etc/passwd", "/api/image/%2Fetc%2Fpasswd",
    "/static/../../../../etc/passwd", "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/%2e%2e/%2e%2e/app.py",
    "/static/..%2fserver.py", "/docs-assets/..%2F..%2F..%2Fetc%2Fpasswd", "/api/image/1/../../../etc/passwd",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_path_traversal_never_serves_a_file(client, url):
    response = client.get(url)
    assert response.status_code in (400, 404, 405, 422), (url, response.status_code)
    assert b"root:" not in response.content and b"import " not in response.content
    assert response.headers["content-type"].startswith("application/json")


def test_a_db_row_pointing_outside_the_collection_is_not_served(mini_collection, tmp_path):
    """Even a path in the DB that climbs out of the collection folder is refused."""
    db_copy = tmp_path / "copy.db"
    source = connect(mini_collection["db"])
    target = connect(db_copy, create=True)
    source.backup(target)
    source.close()
    climbing = "../../../../../../etc/passwd"
    insert_images(target, [(climbing, 1, 1, 1, 1, "ok", None)])
    bad_id = find_by_path(target, climbing)[0]
    target.close()
    with TestClient(create_app(db_copy, thumbs_dir=str(tmp_path / "thumbs"))) as client:
        for route in ("image", "thumb"):
            response = client.get(f"/api/{route}/{bad_id}")
            assert_refused(response, 404, "not inside the collection")


def test_upload_over_the_byte_limit_is_413(client, photo):
    big = photo * (LIMIT // len(photo) + 2)
    assert_refused(client.post("/api/search", files=[("files", ("big.jpg", big, "image/jpeg"))]), 413, "too large")
    still_serving(client)


def test_streamed_upload_without_length_is_cut_at_the_limit(client):
    """A chunked body (no Content-Length) is counted as it arrives and refused past the limit."""
    boundary = "xyz"
    chunks_sent = []

    def body():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n' \
              f"Content-Type: image/jpeg\r\n\r\n".encode()
        for _ in range(LIMIT // 10_000 * 3):
            chunks_sent.append(1)
            yield b"\xff" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/api/search", content=body(),
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_refused(response, 413, "too large")
    still_serving(client)


def test_declared_content_length_over_the_limit_is_refused_before_reading(client):
    response = client.post("/api/search", content=b"x" * 10,
                           headers={"Content-Length": str(LIMIT * 10),
                                    "Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413


def test_upload_over_the_pixel_limit_is_413(client, monkeypatch):
    monkeypatch.setattr(config, "MAX_IMAGE_PIXELS", 10_000)
    response = client.post("/api/search", files=[("files", ("huge.png", png((400, 400)), "image/png"))])
    assert_refused(response, 413, "huge.png", "pixels", "smaller copy")
    assert "retry-errors" not in response.text and "main.py" not in response.text
    monkeypatch.undo()
    assert client.post("/api/search", files=[("files", ("ok.png", png((400, 400)), "image/png"))]).status_code == 200


def test_unknown_host_header_is_refused(mini_collection, tmp_path):
    app = create_app(mini_collection["db"], allowed_hosts=("127.0.0.1", "localhost"), thumbs_dir=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
        assert_refused(client.get("/api/health", headers={"Host": "evil.example"}), 400, "host")
        assert_refused(client.get("/", headers={"Host": "127.0.0.1.evil.example:8000"}), 400, "host")


def test_no_route_reads_a_path_from_the_request(client):
    """The OpenAPI description has no parameter that could carry a path: only ids and names."""
    spec = client.get("/openapi.json").json()
    names = set()
    for operations in spec["paths"].values():
        for operation in operations.values():
            names.update(p["name"] for p in operation.get("parameters", []))
    assert names == {"image_id", "mode", "metric", "top_k", "v", "method", "limit", "threshold", "any_orientation",
                     "count", "expand", "like", "unlike",  # like / unlike: lists of ids
                     "folder", "after", "before", "camera", "sort",  # folder: compared with the DB's paths
                     # (never opened)
                     "kind"}  # kind: the duplicates tab (copies or similar)


def test_server_survives_a_burst_of_bad_requests(client, photo):
    for i in range(30):
        client.post("/api/search", files=[("files", (f"{i}.jpg", os.urandom(2000), "image/jpeg"))])
        client.get(f"/api/similar/{10_000 + i}")
    answer = client.post("/api/search", files=[("files", ("q.jpg", photo, "image/jpeg"))]).json()
    assert answer["results"][0]["path"] == "coffee/original.jpg"
