"""The web app beside the usual scripts, as a user runs them: app.py serving while
similarities.py queries and generator.py and main.py add, change and delete images.

What must hold (issue 18): the app's WAL never vanishes while it runs, the DB stays intact,
the app answers from the new state once the writers have committed (new ids searchable,
removed ids 404, counts right), never a 500, and every answer equals a fresh process's.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from PIL import Image

from reliability_tools import MODEL, ROOT, integrity, query, run_script, small_photos, start_script

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

FRESH_ANSWERS = """
import json, sys
from fastapi.testclient import TestClient
from webapp.server import create_app
db, requests = sys.argv[1], json.loads(sys.argv[2])
with TestClient(create_app(db)) as client:
    print(json.dumps([[r.status_code, r.json()] for r in (client.get(url) for url in requests)]))
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def comparable(status, body):
    """An answer without what legitimately differs between two processes (timings)."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("elapsed_ms", "took_ms")}
    return status, body


def wait_until_serving(http, proc, deadline_s=120):
    """Poll /api/health until the server answers (bounded); the app's start is not a race here."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "app.py exited"
        try:
            if http.get("/api/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("app.py did not start")


class WalWatch(threading.Thread):
    """Looks for the -wal file until stopped; remembers whether it was ever missing."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.wal, self.stop, self.vanished = f"{db}-wal", threading.Event(), 0

    def run(self):
        while not self.stop.wait(0.002):
            if not os.path.exists(self.wal):
                self.vanished += 1


def test_app_beside_the_scripts_stays_consistent_and_catches_up(tmp_path):
    photos, db = tmp_path / "photos", tmp_path / "soak.db"
    names = small_photos(photos, 16, seed=3)
    assert run_script("generator.py", "--data", photos, "--db", db, "--no-progress").returncode == 0
    assert run_script("main.py", "--db", db, "--model", MODEL, "--no-progress").returncode == 0
    before = dict(query(db, "SELECT path, id FROM images"))

    port = free_port()
    app = start_script("app.py", "--db", db, "--port", port, "--no-warm", log_to=tmp_path / "app.log")
    watch = WalWatch(db)
    errors = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            wait_until_serving(http, app)
            assert http.get("/api/similar/1", params={"mode": "rgb"}).status_code == 200  # the app's connections
            watch.start()
            stop_asking = threading.Event()

            def keep_asking():  # the page, open while the scripts run: never a 500
                while not stop_asking.is_set():
                    for url in ("/api/health", "/api/similar/1?mode=rgb", "/api/sample?count=4"):
                        status = http.get(url).status_code
                        if status >= 500 and status != 503:
                            errors.append((url, status))

            asker = threading.Thread(target=keep_asking, daemon=True)
            asker.start()
            similar = run_script("similarities.py", photos / names[0], "--db", db, "--mode", "rgb",
                                 "--metric", "bhattacharyya", "--top-k", "3")
            assert similar.returncode == 0, similar.stderr
            small_photos(photos / "new", 6, seed=4)  # adds
            for name in names[:2]:  # changes: another picture under the same name
                Image.new("RGB", (40, 30), (250, 20 * len(name), 30)).save(photos / name)
            for name in names[-3:]:  # deletions
                os.remove(photos / name)
            for script, args in (("generator.py", ("--data", photos, "--no-progress")),
                                 ("main.py", ("--model", MODEL, "--no-progress"))):
                done = run_script(script, "--db", db, *args)
                assert done.returncode == 0, done.stderr
            stop_asking.set()
            asker.join(timeout=120)

            after = dict(query(db, "SELECT path, id FROM images"))
            removed = [before[f"{name}"] for name in names[-3:]]
            added = [i for path, i in after.items() if path.startswith("new/")]
            assert len(added) == 6 and not set(removed) & set(after.values())
            urls = ["/api/health"] + [f"/api/images/{i}" for i in removed + added] + [
                f"/api/similar/{i}?mode={mode}&top_k=5"
                for i in sorted(after.values()) for mode in ("rgb", "embeddings")]
            running = [comparable(r.status_code, r.json()) for r in map(http.get, urls)]
        watch.stop.set()
        watch.join(timeout=10)
        assert app.poll() is None, "app.py died"
    finally:
        watch.stop.set()
        app.terminate()
        app.wait(timeout=60)

    assert watch.vanished == 0, "the WAL was deleted while the app had the DB open"
    assert not errors, errors
    assert integrity(db) == [("ok",)]
    fresh = subprocess.run([sys.executable, "-c", FRESH_ANSWERS, str(db), json.dumps(urls)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    fresh = [comparable(status, body) for status, body in json.loads(fresh.stdout)]
    health = running[0][1]
    assert health["images"] == len(after)
    assert [status for status, _ in running[1:4]] == [404] * 3  # removed ids
    assert all(status == 200 for status, _ in running[4:])  # new ids and every search
    assert running == fresh
