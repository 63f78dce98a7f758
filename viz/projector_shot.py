"""Run TensorBoard on loopback for a while, and photograph its projector with headless Chromium.

Used by `make figures` (the README's projector picture) and by the test that checks
TensorBoard itself reads our export. The server is always stopped, and every wait is bounded.
"""
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from fileio import atomic_write

log = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class TensorBoardError(RuntimeError):
    """TensorBoard did not start, or did not show the projector in time."""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


@contextmanager
def running_tensorboard(logdir, wait=90):
    """Yield the base URL of `tensorboard --logdir DIR` on 127.0.0.1 once its projector lists a run."""
    binary = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:  # a file, not a pipe that could fill up and block the server
        server = subprocess.Popen([binary, "--logdir", os.fspath(logdir), "--port", str(port), "--host", "127.0.0.1"],
                                  stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + wait
            while True:
                if server.poll() is not None:
                    output.seek(0)
                    raise TensorBoardError(f"tensorboard exited with {server.returncode}: "
                                           f"{output.read().decode(errors='replace')[-400:]}")
                try:
                    if json.loads(get(f"{base}/data/plugin/projector/runs")):
                        break
                except (urllib.error.URLError, OSError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TensorBoardError(f"tensorboard's projector listed no run within {wait} s")
                time.sleep(0.5)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)


def find_browser():
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def screenshot(logdir, out_path, size=(1400, 900), render_ms=20000):
    """PNG of the projector tab for ``logdir``; returns False (and says why) without a browser."""
    browser = find_browser()
    if browser is None:
        log.warning("no projector screenshot: Chromium is not installed (`apt-get install chromium`)")
        return False
    with running_tensorboard(logdir) as base, tempfile.TemporaryDirectory() as scratch:
        shot = os.path.join(scratch, "projector.png")
        # SwiftShader gives headless Chromium the WebGL the projector draws with.
        command = [browser, "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                   "--hide-scrollbars", f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={render_ms}",
                   f"--screenshot={shot}", f"{base}/#projector"]
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180, check=False)
        if not os.path.exists(shot):
            log.warning("no projector screenshot: %s wrote no picture", browser)
            return False
        with open(shot, "rb") as src, atomic_write(out_path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return True
