"""One ann_cosine index builder at a time (issue 12): query processes that find the index stale build it
once between them; while another process builds it, or main.py extracts, ``ann_cosine``
answers with exact cosine and says so once in the log."""
import fcntl
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

import config
from db import connect
from db.features import ExtractedRow, write_batch
from db.images import insert_images, pending_page
from db.meta import check_or_write_stamp, claim_dataset_root
from samples import ROOT
from search import ann, matrix_cache
from search.ann import index as ann_index
from search.query import search_ids

DIM = 64
STAMP = {"embedding_model": "resnet18", "embedding_weights_sha256": "test", "embedding_dim": DIM,
         "vector_dtype": "float32-le", "rgb_dim": 8, "hist_bins": 2, "hash_size": 8, "decode_side": 256,
         "embedding_precision": "float32"}
ROWS = 20_000  # big enough that a build takes a noticeable moment


def make_db(path, rows, seed=0):
    """A DB of ``rows`` extracted images with clustered random embeddings, written by db/ code."""
    rng = np.random.default_rng(seed)
    conn = connect(path, create=True)
    claim_dataset_root(conn, os.path.dirname(path))
    check_or_write_stamp(conn, STAMP)
    insert_images(conn, [(f"img/{i:06d}.jpg", 100, 1, 10, 10, "pending", None) for i in range(rows)])
    pending = pending_page(conn, 0, rows)
    hashes = [i.to_bytes(16, "big") for i in range(rows)]
    centres = rng.standard_normal((50, DIM)).astype(np.float32)
    rgb = rng.random((rows, 8), dtype=np.float32)
    noise = 0.4 * rng.standard_normal((rows, DIM), dtype=np.float32)
    features = {"embedding": centres[rng.integers(0, 50, rows)] + noise, "rgb": rgb / rgb.sum(axis=1, keepdims=True)}
    features.update({kind: rng.integers(0, 256, (rows, 8), dtype=np.uint8)
                     for kind in ("ahash", "dhash", "phash")})
    extracted = [ExtractedRow(r.id, r.size, r.mtime_ns, h) for r, h in zip(pending, hashes)]
    write_batch(conn, extracted, [], hashes, features)
    return conn


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ann") / "ann.db"
    make_db(path, ROWS).close()
    return path


@pytest.fixture(autouse=True)
def fresh_process_state(db_path):
    """Every test starts as a new query process with a stale (absent) index."""
    ann_index._OPEN.clear()
    ann_index._SAID.clear()
    matrix_cache.forget()
    for name in os.listdir(ann.index_dir(db_path)) if os.path.isdir(ann.index_dir(db_path)) else []:
        os.remove(os.path.join(ann.index_dir(db_path), name))
    yield
    ann_index._OPEN.clear()
    matrix_cache.forget()


def hits(conn, metric, first=1, top_k=10):
    return [(h.id, round(h.distance, 5)) for h in search_ids(conn, [first], "embeddings", metric, top_k=top_k)]


CHILD = """
import json, logging, os, sys, time
import config
from db import connect
from search.query import search_ids
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
conn = connect(sys.argv[1])
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
found = search_ids(conn, [1], "embeddings", "ann_cosine", top_k=10)
print(json.dumps([[h.id, round(h.distance, 5)] for h in found]), flush=True)
"""


@pytest.mark.slow
def test_two_query_processes_with_a_stale_index_build_it_once(db_path, tmp_path):
    conn = connect(db_path)
    exact = hits(conn, "cosine")  # also publishes the matrix cache both children will map
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(db_path), str(go)], cwd=ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT))
                for _ in range(2)]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    go.touch()  # both query at the same moment
    outputs = [child.communicate(timeout=300) for child in children]
    assert all(child.returncode == 0 for child in children), [err for _, err in outputs]
    logs = "".join(err for _, err in outputs)
    assert logs.count("building the ivf index") == 1, logs
    for out, _ in outputs:
        assert [tuple(hit) for hit in json.loads(out.strip().splitlines()[-1])] == exact
    assert os.path.exists(ann.index_file(db_path, "embeddings"))
    conn.close()


@contextmanager
def build_lock_held(db_path):
    """Another process building: its lock on <db>.ann/embeddings.build.lock (an flock of
    another open file conflicts even within one process)."""
    os.makedirs(ann.index_dir(db_path), exist_ok=True)
    with open(os.path.join(ann.index_dir(db_path), "embeddings.build.lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def test_while_another_process_builds_ann_cosine_answers_exactly_and_says_so_once(db_path, caplog):
    conn = connect(db_path)
    exact = hits(conn, "cosine")
    with build_lock_held(db_path), caplog.at_level(logging.INFO, logger="search.ann"):
        start = time.perf_counter()
        for first in (1, 2, 3):
            assert hits(conn, "ann_cosine", first) == hits(conn, "cosine", first)
        assert time.perf_counter() - start < 5  # answered at once, not after a build
    said = [r.getMessage() for r in caplog.records if r.name.startswith("search.ann")]
    assert len(said) == 1 and "another process is building the index" in said[0] and "exact cosine" in said[0]
    assert not os.path.exists(ann.index_file(db_path, "embeddings"))
    assert hits(conn, "ann_cosine") == exact  # the lock released: this process builds it now
    assert os.path.exists(ann.index_file(db_path, "embeddings"))
    conn.close()


def test_during_an_extraction_queries_do_not_build_the_index(db_path, caplog):
    code = "import sys\nfrom db import WriterLock\nwith WriterLock(sys.argv[1]):\n    print('locked', flush=True)\n" \
           "    sys.stdin.read()\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(db_path)], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT))
    conn = connect(db_path)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with caplog.at_level(logging.INFO, logger="search.ann"):
            assert hits(conn, "ann_cosine") == hits(conn, "cosine")
            assert hits(conn, "ann_cosine", 7) == hits(conn, "cosine", 7)
        said = [r.getMessage() for r in caplog.records if r.name.startswith("search.ann")]
        assert len(said) == 1 and "extracting" in said[0]
        assert not os.path.exists(ann.index_file(db_path, "embeddings"))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        conn.close()


def test_a_top_k_larger_than_the_index_yields_is_never_cut_short(db_path):
    """An index finds a bounded number of candidates (IVF: the probed cells; Annoy: about
    search_k); asking for more must not silently return fewer."""
    conn = connect(db_path)
    found = search_ids(conn, [1], "embeddings", "ann_cosine", top_k=8000)
    exact = search_ids(conn, [1], "embeddings", "cosine", top_k=8000)
    assert len(found) == 8000 and [h.id for h in found] == [h.id for h in exact]
    assert len(search_ids(conn, [1], "embeddings", "ann_cosine", top_k=50_000)) == ROWS - 1
    conn.close()


@pytest.mark.slow
def test_switching_the_index_kind_replaces_the_file_and_an_old_annoy_folder(db_path, monkeypatch, caplog):
    """IR_ANN_INDEX=annoy builds, saves and later trusts an Annoy file; switching back to the IVF
    builds that and removes the Annoy file, and the folder of older versions (<db>.annoy/) goes too."""
    conn = connect(db_path)
    old = str(db_path) + ".annoy"
    os.makedirs(old, exist_ok=True)
    with open(os.path.join(old, "embeddings.ann"), "wb") as fh:
        fh.write(b"an index of the previous version")
    exact = hits(conn, "cosine")
    monkeypatch.setattr(config, "ANN_INDEX", "annoy")
    with caplog.at_level(logging.INFO, logger="search.ann"):
        assert hits(conn, "ann_cosine") == exact
        ann_index._OPEN.clear()  # a new query process: the saved file is loaded and trusted, not rebuilt
        assert hits(conn, "ann_cosine") == exact
    assert [r.getMessage() for r in caplog.records].count("building the annoy index for embeddings (20000 rows)") == 1
    assert os.path.exists(ann.index_file(db_path, "embeddings", "annoy")) and not os.path.exists(old)
    monkeypatch.setattr(config, "ANN_INDEX", "ivf")
    assert hits(conn, "ann_cosine") == exact
    assert os.path.exists(ann.index_file(db_path, "embeddings", "ivf"))
    assert not os.path.exists(ann.index_file(db_path, "embeddings", "annoy"))
    conn.close()
