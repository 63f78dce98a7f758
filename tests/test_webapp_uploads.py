"""Uploads are the one way a request makes the app decode something large: they may not
exhaust its memory, be sent by another site's page, or reach a Pillow plug-in outside the
listed formats (issue 18)."""
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import EpsImagePlugin, Image
from test_reliability_soak import free_port, wait_until_serving

from reliability_tools import start_script
from webapp.server import create_app

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 40 30
%%EndComments
newpath 0 0 moveto 40 0 lineto 40 30 lineto closepath fill
showpage
%%EOF
"""


def big_png(width=3750, height=2500):
    """A 9.4-megapixel RGBA PNG of a few hundred KB: small to send, large to decode (its
    transparency is flattened, the costliest path)."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                       (x + y) % 256, np.full((height, width), 200)], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def client(mini_collection, tmp_path):
    with TestClient(create_app(mini_collection["db"], thumbs_dir=str(tmp_path / "thumbs"))) as client:
        yield client


def test_fifty_big_uploads_six_at_a_time_keep_memory_bounded(mini_collection, tmp_path):
    data = big_png()
    assert len(data) < 1_000_000
    port = free_port()
    app = start_script("app.py", "--db", mini_collection["db"], "--port", port, "--thumbs", tmp_path / "thumbs",
                       log_to=tmp_path / "app.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            wait_until_serving(http, app)

            def upload(_):
                return http.post("/api/search", files=[("files", ("big.png", data, "image/png"))],
                                 data={"top_k": "3"}).status_code

            assert upload(0) == 200  # the network and matrix warm, one decode's buffers made
            warm = rss_bytes(app.pid)
            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(upload, range(50)))
            after = rss_bytes(app.pid)
    finally:
        app.terminate()
        app.wait(timeout=60)
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 1
    assert after - warm <= 300 * 2**20, f"RSS grew by {(after - warm) / 2**20:.0f} MB"


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:3000"},  # another server of this machine
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_requests_from_another_site_get_403(client, headers):
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(png, format="PNG")
    answers = [
        client.post("/api/search", files=[("files", ("q.png", png.getvalue(), "image/png"))], headers=headers),
        client.get("/api/similar/1", headers=headers),
        client.get("/api/health", headers={**headers, "Sec-Fetch-Mode": "cors"}),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert "another site" in answer.json()["error"]


def test_the_page_itself_and_its_own_requests_still_work(client):
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.get("/api/similar/1", headers=own).status_code == 200
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}).status_code == 200
    assert client.get("/api/health").status_code == 200  # curl, scripts: no browser headers at all


def test_an_eps_upload_never_reaches_the_eps_plugin(client, monkeypatch):
    opened = []
    real_open = EpsImagePlugin.EpsImageFile._open
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(1) or real_open(self))
    answer = client.post("/api/search", files=[("files", ("drawing.eps", EPS, "application/postscript"))])
    assert answer.status_code == 400
    assert "JPEG, PNG, BMP, GIF, TIFF or WebP" in answer.json()["error"]
    assert not opened


def test_an_eps_named_like_a_photo_is_an_error_row_without_the_plugin(tmp_path, monkeypatch):
    import generator

    opened = []
    real_open = EpsImagePlugin.EpsImageFile._open
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(1) or real_open(self))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "trap.jpg").write_bytes(EPS)
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "photos" / "fine.png")
    summary = generator.scan(str(tmp_path / "photos"), str(tmp_path / "c.db"), progress=False)
    assert summary.unreadable == 1 and not opened
