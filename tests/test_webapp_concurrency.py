"""The web app under load, through a real uvicorn server: 40 searches at once, and searches
while main.py extracts into the same DB."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import generator
from webapp.server import create_app, serving

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def ranking(answer):
    return [(r["id"], round(r["score"], 4)) for r in answer["results"]]


def test_40_concurrent_searches_give_the_serial_answers(mini_collection, tmp_path):
    photos = [mini_collection["images"] / name / "original.jpg" for name in ("chelsea", "coffee", "rocket", "hubble")]
    app = create_app(mini_collection["db"], thumbs_dir=str(tmp_path / "thumbs"), warm=True)
    with serving(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        def upload(i):
            photo = photos[i % len(photos)]
            return http.post("/api/search", files=[("files", (photo.name, read(photo), "image/jpeg"))],
                             data={"top_k": "10"})

        def similar(i):
            return http.get(f"/api/similar/{7 * i + 1}",
                            params={"top_k": 10, "mode": ("embeddings", "rgb")[i % 4 // 2]})

        def job(i):  # 8 different searches, each asked 5 times
            return (upload if i % 2 else similar)(i % 8)

        serial = [ranking(job(i).json()) for i in range(8)]
        with ThreadPoolExecutor(40) as pool:
            responses = list(pool.map(job, range(40)))
        assert [r.status_code for r in responses] == [200] * 40
        for i, response in enumerate(responses):
            assert ranking(response.json()) == serial[i % 8]
        # thumbnails of every result at once, while nothing is cached yet
        urls = sorted({r["thumbnail"] for resp in responses for r in resp.json()["results"]})
        with ThreadPoolExecutor(20) as pool:
            thumbs = list(pool.map(http.get, urls))
        assert all(t.status_code == 200 and t.content[:2] == b"\xff\xd8" for t in thumbs)
        assert http.get("/api/health").json()["images"] == mini_collection["count"]


# main.py with a pause injected after its first committed batch: it says so on stdout and waits
# for a line on stdin, so the server is seen mid-extraction every time (no race with its speed).
PAUSED_AFTER_ONE_BATCH = """
import os, runpy, sys
from extraction import run
real = run.store_results
done = []
def store_then_pause(*args, **kwargs):
    real(*args, **kwargs)
    if not done:
        done.append(True)
        print("paused", flush=True)
        sys.stdin.readline()
run.store_results = store_then_pause
sys.argv[0] = "main.py"
runpy.run_path("main.py", run_name="__main__")
"""


def test_server_keeps_answering_while_main_py_extracts(mini_collection, tmp_path):
    """A fresh DB of the same photos: the server starts before any feature exists and answers
    every request (503 before features, 409 for a pending image, results after) while main.py
    writes batch after batch; the image count only grows; never a 500. main.py pauses after its
    first batch, so the server is always asked half-way."""
    db = tmp_path / "growing.db"
    generator.scan(str(mini_collection["images"]), str(db), progress=False)
    photo = mini_collection["images"] / "coffee" / "original.jpg"
    app = create_app(db, thumbs_dir=str(tmp_path / "thumbs"))
    env = {**os.environ, "IR_BATCH_SIZE": "4"}
    statuses, counts = [], []
    with serving(app) as url, httpx.Client(base_url=url, timeout=120) as http:
        def ask():
            counts.append(http.get("/api/health").json()["images"])
            for response in (http.get("/api/similar/1", params={"top_k": 5}),
                             http.get("/api/thumb/2"),
                             http.post("/api/search", files=[("files", ("q.jpg", read(photo), "image/jpeg"))])):
                statuses.append(response.status_code)
                assert response.status_code in (200, 409, 503), response.text
                if response.status_code == 200 and "results" in response.text:
                    scores = [r["score"] for r in response.json()["results"]]
                    assert scores == sorted(scores)

        assert http.get("/api/similar/1").status_code == 409  # pending: nothing extracted yet
        log = open(tmp_path / "main.log", "w")
        extract = subprocess.Popen([sys.executable, "-c", PAUSED_AFTER_ONE_BATCH, "--db", str(db), "--model",
                                    "efficientnet_lite0", "--workers", "0", "--no-progress"], cwd=ROOT, env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        try:
            assert extract.stdout.readline() == "paused\n", "main.py ended before its first batch was stored"
            ask()  # half-way: one batch of 4 stored, the rest pending
            half_way = counts[-1]
            extract.stdin.write("\n")
            extract.stdin.flush()
            while extract.poll() is None:
                ask()
        finally:
            extract.communicate(timeout=300)
        assert extract.returncode == 0, (tmp_path / "main.log").read_text()
        final = http.get("/api/health").json()["images"]
        answer = http.post("/api/search", files=[("files", ("q.jpg", read(photo), "image/jpeg"))]).json()
    assert 0 < half_way < mini_collection["count"], "the server saw the extraction half-way"
    assert counts == sorted(counts), "the image count never goes back"
    assert final == mini_collection["count"]
    assert 200 in statuses, "some searches ran during the extraction"
    assert answer["results"][0]["path"] == "coffee/original.jpg"
