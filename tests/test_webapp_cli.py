"""app.py as a person runs it: loopback by default, a warning for any other address, and one
line (exit 2) for a missing DB or a busy port."""
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app import allowed_hosts, is_loopback

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_app(*args, timeout=60):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                           ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                           ("192.168.1.10", False), ("::", False), ("photos.example", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback
    assert (allowed_hosts(host) is not None) is loopback


def test_missing_db_is_one_line(tmp_path):
    done = run_app("--db", str(tmp_path / "nothing.db"), "--port", "0")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: no database at") and "Traceback" not in done.stderr


def test_busy_port_is_one_line(mini_collection):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_app("--db", str(mini_collection["db"]), "--port", str(port), "--no-warm")
    assert done.returncode == 2
    assert "cannot listen on 127.0.0.1" in done.stderr and "Traceback" not in done.stderr


def test_any_other_host_logs_a_warning_and_serves(mini_collection, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path / "app.log", "w+")
    server = subprocess.Popen([sys.executable, "app.py", "--db", str(mini_collection["db"]), "--host", "0.0.0.0",
                               "--port", str(port), "--no-warm", "--thumbs", str(tmp_path / "thumbs")],
                              cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, open(tmp_path / "app.log").read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert health.json()["images"] == mini_collection["count"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    text = open(tmp_path / "app.log").read()
    assert "WARNING" in text and "anyone who can reach this machine" in text


def test_loopback_logs_no_warning(mini_collection, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path / "app.log", "w+")
    server = subprocess.Popen([sys.executable, "app.py", "--db", str(mini_collection["db"]), "--port", str(port),
                               "--no-warm", "--thumbs", str(tmp_path / "thumbs")], cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        foreign = httpx.get(f"http://127.0.0.1:{port}/api/health", headers={"Host": "rebound.example"})
        assert foreign.status_code == 400
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "anyone who can reach" not in open(tmp_path / "app.log").read()
