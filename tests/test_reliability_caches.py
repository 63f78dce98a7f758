"""Caches follow what changed (issue 12): a rescan that only adds pending rows reloads
nothing, a move reloads the paths only, queries during an extraction never re-read SQLite,
and a disk that refuses the matrix cache costs one warning, no temporary files and no answer.

SQLite reads are counted with the connection's trace callback: a matrix read is the
statement of db.features.column_chunks, a paths read the one of db.versions.ok_path_chunks.
"""
import errno
import json
import logging
import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

import config
from db import connect
from db.features import FailedRow, write_batch
from db.images import change_rows, delete_images, pending_page
from db.meta import check_or_write_stamp, claim_dataset_root
from db.scan import Move, apply_moves
from samples import ROOT, add_fake_images, fake_stamp
from search import ann, matrix_cache
from search.matrix_cache import column_reader, folders, loader
from search.query import search_ids

DIM = 64
STAMP = fake_stamp(DIM)


def add_images(conn, rng, names, ok=True):
    add_fake_images(conn, rng, names, DIM, ok)



@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "caches.db"
    conn = connect(path, create=True)
    claim_dataset_root(conn, str(tmp_path / "images"))
    check_or_write_stamp(conn, STAMP)
    add_images(conn, np.random.default_rng(0), [f"a/{i:03d}.jpg" for i in range(300)])
    conn.close()
    matrix_cache.forget()
    yield path
    matrix_cache.forget()


class Reads:
    """SQLite reads of matrices and of paths made through one connection."""

    def __init__(self, conn):
        self.matrix = self.paths = 0
        conn.set_trace_callback(self._seen)

    def _seen(self, sql):
        if "JOIN features" in sql:
            if "SELECT i.id, i.path, f." in sql:
                self.matrix += 1
            elif "SELECT i.id, i.path FROM" in sql:
                self.paths += 1


@contextmanager
def extraction_in_another_process(db_path):
    """Another process holds the writer lock, as main.py does while it extracts."""
    code = "import sys\nfrom db import WriterLock\nwith WriterLock(sys.argv[1]):\n    print('locked', flush=True)\n" \
           "    sys.stdin.read()\n"
    proc = subprocess.Popen([sys.executable, "-c", code, str(db_path)], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def leftovers(*roots):
    """Temporary files or folders anywhere under ``roots`` (and anything in the matrix cache's tmp room)."""
    found = []
    for root in roots:
        for base, dirs, files in os.walk(root):
            in_tmp_room = base == os.path.join(root, folders.TMP)
            found += [os.path.join(base, name) for name in dirs + files if ".tmp" in name or in_tmp_room]
    return found


def answer(conn, metric="cosine", mode="embeddings"):
    first = int(matrix_cache.load(conn, mode).ids[0])
    return [(h.id, h.path, round(h.distance, 5)) for h in search_ids(conn, [first], mode, metric, top_k=10)]


def test_a_rescan_that_only_adds_pending_rows_keeps_every_matrix(db_path):
    conn = connect(db_path)
    loaded = {mode: matrix_cache.load(conn, mode) for mode in ("embeddings", "rgb", "phash")}
    reads = Reads(conn)
    add_images(conn, np.random.default_rng(1), [f"new/{i}.jpg" for i in range(50)], ok=False)
    pending = pending_page(conn, 0, 1000)
    write_batch(conn, [], [FailedRow(pending[0].id, pending[0].size, pending[0].mtime_ns, "not an image")])
    for mode, before in loaded.items():
        assert matrix_cache.load(conn, mode) is before  # the same object: nothing reloaded
    matrix_cache.forget()  # a new query process maps the same cache folders
    assert {mode: matrix_cache.load(conn, mode).cache_dir for mode in loaded} == \
        {mode: old.cache_dir for mode, old in loaded.items()}
    assert (reads.matrix, reads.paths) == (0, 0)
    conn.close()


def test_a_move_reloads_the_paths_only(db_path):
    conn = connect(db_path)
    before = matrix_cache.load(conn, "embeddings")
    rgb_before = matrix_cache.load(conn, "rgb")
    old_id = int(before.ids[5])
    reads = Reads(conn)
    add_images(conn, np.random.default_rng(2), ["moved/here.jpg"], ok=False)  # the scan's row for the new path
    new_id = pending_page(conn, 0, 10)[0].id
    apply_moves(conn, [Move(old_id, new_id, "moved/here.jpg", 2, 3, 4)])
    after = matrix_cache.load(conn, "embeddings")
    assert after.matrix is before.matrix and after.ids is before.ids  # the matrix is kept
    assert after.paths[5] == "moved/here.jpg" and before.paths[5] == "a/005.jpg"
    rgb_after = matrix_cache.load(conn, "rgb")
    assert rgb_after.matrix is rgb_before.matrix and rgb_after.paths[5] == "moved/here.jpg"
    assert (reads.matrix, reads.paths) == (0, 1)  # the paths read once, for every mode
    matrix_cache.forget()
    fresh = matrix_cache.load(conn, "embeddings")  # a new process: matrix and paths both from the cache
    assert fresh.cache_dir == before.cache_dir and fresh.paths[5] == "moved/here.jpg"
    assert (reads.matrix, reads.paths) == (0, 1)
    conn.close()


@pytest.mark.parametrize("change", ["delete", "edit"])
def test_an_ok_row_that_goes_reloads_the_matrix(db_path, change):
    conn = connect(db_path)
    before = matrix_cache.load(conn, "embeddings")
    gone = int(before.ids[0])
    if change == "delete":
        delete_images(conn, [gone])
    else:
        with conn:
            change_rows(conn, [(gone, 200, 2, 10, 10, "pending", None)])
    after = matrix_cache.load(conn, "embeddings")
    assert after is not before and len(after.ids) == 299 and after.row_of_id(gone) is None
    conn.close()


def test_queries_during_an_extraction_never_read_sqlite(db_path, monkeypatch):
    """Batches land while main.py holds the lock: queries keep what they have, or take the
    newest published cache, and read no matrix from SQLite; what the extraction publishes
    (search.matrix_cache.publish) reaches them."""
    conn, extractor = connect(db_path), connect(db_path)
    first = matrix_cache.load(conn, "embeddings")  # published before the run
    rng = np.random.default_rng(3)
    with extraction_in_another_process(db_path):
        reads = Reads(conn)
        held = first
        for batch in range(3):
            add_images(extractor, rng, [f"batch{batch}/{i}.jpg" for i in range(10)])
            assert matrix_cache.load(conn, "embeddings") is held
            matrix_cache.forget()  # a query process started during the run: the published cache
            held = matrix_cache.load(conn, "embeddings")
            assert held.cache_dir == first.cache_dir and len(held.ids) == 300
            assert answer(conn) == answer(conn)  # answers work, consistently
        assert (reads.matrix, reads.paths) == (0, 0)
        matrix_cache.publish(extractor)  # what main.py does every IR_PUBLISH_SECONDS
        monkeypatch.setattr(loader, "RECHECK_SECONDS", 0.0)
        newer = matrix_cache.load(conn, "embeddings")
        assert len(newer.ids) == 330 and newer.cache_dir != first.cache_dir
        assert (reads.matrix, reads.paths) == (0, 0)
        phash = matrix_cache.load(conn, "phash")  # published for every mode
        assert len(phash.ids) == 330 and phash.cache_dir is not None
        assert (reads.matrix, reads.paths) == (0, 0)
    done = matrix_cache.load(conn, "embeddings")  # the run is over: the current state, already published
    assert len(done.ids) == 330 and reads.matrix == 0
    conn.close()
    extractor.close()


def test_a_mode_never_published_is_read_once_during_an_extraction(db_path):
    conn, extractor = connect(db_path), connect(db_path)
    rng = np.random.default_rng(4)
    with extraction_in_another_process(db_path):
        reads = Reads(conn)
        first = matrix_cache.load(conn, "dhash")
        for batch in range(3):
            add_images(extractor, rng, [f"b{batch}/{i}.jpg" for i in range(5)])
            assert matrix_cache.load(conn, "dhash") is first
        assert reads.matrix == 1
    conn.close()
    extractor.close()


def test_publish_when_due_follows_the_clock(db_path, monkeypatch):
    conn = connect(db_path)
    monkeypatch.setattr(config, "PUBLISH_SECONDS", 3600)
    assert not matrix_cache.publish_when_due(conn)
    monkeypatch.setattr(config, "PUBLISH_SECONDS", 0)
    assert matrix_cache.publish_when_due(conn)
    assert all(len(folders.matrix_folders(db_path, mode)) == 1
               for mode in ("embeddings", "rgb", "ahash", "dhash", "phash"))
    assert len(folders.paths_folders(db_path)) == 1
    conn.close()


class _FullDisk:
    """A file whose writes fail like a full disk, after writing part of the data."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        self._fh.write(bytes(memoryview(data).cast("B"))[:7])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def test_a_full_disk_while_writing_the_matrix_cache(db_path, monkeypatch, caplog):
    conn = connect(db_path)
    monkeypatch.setattr(config, "MATRIX_CACHE", False)
    normal = {mode: answer(conn, mode=mode, metric=metric)
              for mode, metric in (("embeddings", "cosine"), ("rgb", "bhattacharyya"), ("phash", "hamming"))}
    monkeypatch.setattr(config, "MATRIX_CACHE", True)
    matrix_cache.forget()
    cache = matrix_cache.cache_root(db_path)

    def full_open(path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)
        return _FullDisk(fh) if "w" in mode and os.fspath(path).startswith(cache) else fh

    for module in (column_reader, folders):  # where the cache files are opened for writing
        monkeypatch.setattr(module, "open", full_open, raising=False)
    with caplog.at_level(logging.WARNING, logger="search.matrix_cache"):
        for _ in range(2):
            got = {mode: answer(conn, mode=mode, metric=metric)
                   for mode, metric in (("embeddings", "cosine"), ("rgb", "bhattacharyya"), ("phash", "hamming"))}
            assert got == normal
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("search.matrix_cache")]
    assert len(warnings) == 1 and "cannot write the matrix cache" in warnings[0] and "No space left" in warnings[0]
    assert leftovers(cache) == []
    assert matrix_cache.publish(conn) == []  # the extraction's publish gives up quietly too
    assert leftovers(cache) == []
    conn.close()


def _limit_file_size():
    """preexec_fn: files may not grow past 20 kB (writes fail with EFBIG, like a full disk)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


QUERY = """
import json, logging, sys
from db import connect
from search.query import search_ids
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
conn = connect(sys.argv[1])
first = conn.execute("SELECT MIN(id) FROM images WHERE status = 'ok'").fetchone()[0]
print(json.dumps({metric: [[h.id, h.path, round(h.distance, 5)] for h in search_ids(conn, [first], "embeddings",
                  metric, top_k=10)] for metric in ("cosine", "ann_cosine", "cosine")}))
"""


def test_a_full_disk_while_writing_the_cache_and_the_index_in_a_query_process(db_path, monkeypatch):
    """A real write limit (RLIMIT_FSIZE) in a query process: the matrix (77 kB) and the
    ann_cosine index do not fit. One warning each, no temporary files, the answers unchanged."""
    conn = connect(db_path)  # kept open: the WAL index exists before the limited process starts
    monkeypatch.setattr(config, "MATRIX_CACHE", False)
    normal = answer(conn)
    matrix_cache.forget()
    out = subprocess.run([sys.executable, "-c", QUERY, str(db_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, preexec_fn=_limit_file_size,
                         env=dict(os.environ, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE="1"))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert [tuple(hit) for hit in got["cosine"]] == normal
    assert [tuple(hit) for hit in got["ann_cosine"]] == normal  # from the index it kept in memory
    assert out.stderr.count("cannot write the matrix cache") == 1, out.stderr
    assert out.stderr.count("cannot save the ivf index") == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert leftovers(matrix_cache.cache_root(db_path), ann.index_dir(db_path)) == []
    conn.close()
