"""main.py --dask: a LocalCluster run stores what a local run stores, even when a worker dies.

One small generated collection (with a duplicate, a truncated JPEG and a file deleted after
the scan), one local reference run in a subprocess, one 2-process LocalCluster shared by
every test: about a minute on two busy cores.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

import main  # noqa: E402
from db import WriterLock, connect, copy_database  # noqa: E402
from db.codec import blobs_to_matrix  # noqa: E402
from db.errors import DatabaseBusyError, DatasetRootError, SettingsMismatchError  # noqa: E402
from db.features import FEATURE_COLUMNS, load_column, reset_features  # noqa: E402
from db.images import count_by_status, error_reasons, find_by_path, load_index  # noqa: E402
from db.meta import check_or_write_stamp, features_stamp  # noqa: E402
from extraction import dask as cluster_extract  # noqa: E402
from extraction import run as extraction_run  # noqa: E402
from extraction.dask_worker import ShardReport  # noqa: E402
from features.extract import STAMP_KEYS, BatchResult, FileResult  # noqa: E402
from generator import scan  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_IMAGES = 22


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A scanned DB of small images, two of which fail only at extraction time."""
    folder = tmp_path_factory.mktemp("dask") / "images"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(N_IMAGES):
        size = (int(rng.integers(40, 320)), int(rng.integers(40, 320)))
        gradient = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
        pixels = (gradient + rng.integers(0, 60, gradient.shape)) % 256
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{i:02d}.{'jpg' if i % 3 else 'png'}")
    shutil.copy(folder / "img01.jpg", folder / "zz_same_bytes.jpg")
    data = (folder / "img02.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    db = folder.parent / "scanned.db"
    scan(str(folder), str(db), progress=False)
    os.remove(folder / "img04.jpg")  # gone after the scan
    return db


@pytest.fixture(scope="module")
def reference(scanned):
    """The DB a plain local `python main.py` makes, and the modules that run imported."""
    db = scanned.parent / "local.db"
    copy_database(scanned, db)
    code = ("import sys, main; main.main(['--db', sys.argv[1], '--workers', '0', '--no-progress']);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code, str(db)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return db, done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with Client(local) as client:
            yield local, client


def fresh_copy(scanned, name):
    db = scanned.parent / name
    copy_database(scanned, db)
    return db


def assert_same_db(db, reference_db):
    """Same rows, statuses, reasons and content hashes; bit-identical histograms and hashes;
    embeddings equal up to float rounding of different batch compositions."""
    got, want = connect(db), connect(reference_db)
    assert features_stamp(got) == features_stamp(want)
    index = load_index(want)
    assert load_index(got) == index
    assert [find_by_path(got, p) for p in sorted(index)] == [find_by_path(want, p) for p in sorted(index)]
    assert error_reasons(got) == error_reasons(want)
    for column in FEATURE_COLUMNS:
        ids, paths, blobs = load_column(got, column)
        want_ids, want_paths, want_blobs = load_column(want, column)
        assert (ids, paths) == (want_ids, want_paths)
        if column == "embedding":
            dim = int(features_stamp(want)["embedding_dim"])
            a, b = blobs_to_matrix(blobs, dim), blobs_to_matrix(want_blobs, dim)
            cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            assert cosine.min() >= 0.9999
        else:
            assert blobs == want_blobs
    got.close()
    want.close()


def test_local_reference_is_sane_and_never_imports_dask(reference):
    db, dask_modules = reference
    assert dask_modules == "[]"
    conn = connect(db)
    reasons = dict(error_reasons(conn))
    assert reasons["file disappeared after the scan"] == 1
    assert sum(reasons.values()) == 2  # plus the truncated JPEG
    ids, _, _ = load_column(conn, "embedding")
    assert len(ids) == N_IMAGES  # N - the deleted one + the duplicate
    conn.close()


def _shard_tasks_on_scheduler(dask_scheduler):
    return sum(str(key).startswith("extract-shard") for key in dask_scheduler.tasks)


def test_two_worker_cluster_run_equals_local_run(scanned, reference, cluster, monkeypatch):
    """Also checks the backpressure: never more than ``in_flight`` shards at the scheduler (+1
    written and released whose release the scheduler may not have processed yet)."""
    local, client = cluster
    db = fresh_copy(scanned, "cluster.db")
    tasks_at_each_write = []
    store_results = extraction_run.store_results

    def counting_store_results(*args):
        tasks_at_each_write.append(client.run_on_scheduler(_shard_tasks_on_scheduler))
        store_results(*args)

    monkeypatch.setattr(extraction_run, "store_results", counting_store_results)
    result = cluster_extract.extract_on_cluster(str(db), local.scheduler_address, shard_size=4, in_flight=2,
                                                    progress=False, build_index=False)
    assert (result.ok, result.error, result.done_now) == (N_IMAGES, 2, N_IMAGES + 2)
    assert len(tasks_at_each_write) == 6 and 1 <= max(tasks_at_each_write) <= 3
    assert_same_db(db, reference[0])


@pytest.mark.timeout(240)
def test_killing_a_worker_mid_run_changes_nothing(scanned, reference, cluster, monkeypatch, capsys):
    """Through main.py's --dask option; one worker process is SIGKILLed while it holds a shard."""
    local, client = cluster
    db = fresh_copy(scanned, "killed.db")
    monkeypatch.setattr(cluster_extract, "SHARD_SIZE", 3)
    pids = client.run(os.getpid)
    killed = []

    def kill_first_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for worker, keys in client.processing().items():
                if any(str(key).startswith("extract-shard") for key in keys) and worker in pids:
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_busy_worker)
    killer.start()
    main.main(["--db", str(db), "--dask", local.scheduler_address, "--batch-size", "2", "--no-progress"])
    killer.join()
    assert killed, "no worker was busy with a shard during the run"
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(pids.values())  # the nanny started a new process
    assert capsys.readouterr().out.strip() == f"{N_IMAGES} images ok, 2 skipped: " + "; ".join(
        f"{reason} (1)" for reason in sorted(["file disappeared after the scan", _truncated_reason(reference[0])]))
    assert_same_db(db, reference[0])


@pytest.mark.timeout(300)
def test_stopped_run_resumes_like_a_local_one(scanned, reference, cluster):
    """SIGTERM to `main.py --dask local` after its first saved shard; the same command on a
    cluster then finishes the job, and the DB is the one a local run makes."""
    local, _ = cluster
    db = fresh_copy(scanned, "stopped.db")
    command = [sys.executable, "main.py", "--db", str(db), "--dask", "local", "--workers", "1", "--batch-size", "1",
               "--no-progress"]
    run = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, IR_SHARD_SIZE="2"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    conn = connect(db)
    deadline = time.monotonic() + 240
    while count_by_status(conn).get("pending") == N_IMAGES + 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "extracted and saved in this run; run the same command again" in err
    assert 0 < N_IMAGES + 2 - count_by_status(conn).get("pending", 0) < N_IMAGES + 2
    conn.close()
    main.main(["--db", str(db), "--dask", local.scheduler_address, "--no-progress"])
    assert_same_db(db, reference[0])


def _truncated_reason(db):
    conn = connect(db)
    reasons = [reason for reason, _ in error_reasons(conn) if reason != "file disappeared after the scan"]
    conn.close()
    return reasons[0]


def _poison_weights():
    """From now on this worker loads networks that report other weights."""
    from extraction import dask_worker

    real = dask_worker.load_embedder

    def poisoned(*args, **kwargs):
        embedder = real(*args, **kwargs)
        embedder.weights_sha256 = "0" * 64
        return embedder

    dask_worker._EMBEDDERS.clear()
    dask_worker.load_embedder = poisoned
    dask_worker.real_load_embedder = real


def _forget_models():
    from extraction import dask_worker

    dask_worker._EMBEDDERS.clear()
    dask_worker.load_embedder = getattr(dask_worker, "real_load_embedder", dask_worker.load_embedder)


def test_workers_with_other_weights_are_refused(scanned, reference, cluster):
    local, client = cluster
    db = fresh_copy(reference[0], "refused.db")
    conn = connect(db)
    stamp_before = features_stamp(conn)
    reset_features(conn)  # all pending again; the DB keeps its stamp as if extracted before
    check_or_write_stamp(conn, stamp_before)
    client.run(_poison_weights)
    try:
        with pytest.raises(SettingsMismatchError, match="embedding_weights_sha256"):
            cluster_extract.extract_on_cluster(str(db), local.scheduler_address, progress=False)
    finally:
        client.run(_forget_models)
    assert load_column(conn, "embedding")[0] == []
    conn.close()


def test_a_worker_that_cannot_see_the_photos_stops_the_run(scanned, cluster):
    """Not one image may be marked 'disappeared' because a mount is missing on a worker."""
    local, _ = cluster
    db = fresh_copy(scanned, "unmounted.db")
    folder = scanned.parent / "images"
    folder.rename(scanned.parent / "elsewhere")
    try:
        with pytest.raises(DatasetRootError, match="cannot see the dataset folder"):
            cluster_extract.extract_on_cluster(str(db), local.scheduler_address, progress=False)
    finally:
        (scanned.parent / "elsewhere").rename(folder)
    conn = connect(db)
    assert count_by_status(conn) == {"pending": N_IMAGES + 2}
    conn.close()


def test_each_worker_gets_its_share_of_its_machines_cores():
    from extraction.dask_worker import WorkerSetup

    cores = os.cpu_count()
    # more Dask threads than cores on that host: one network thread each
    assert WorkerSetup({"10.0.0.1": 2 * cores}).threads_for("tcp://10.0.0.1:4000", 1) == 1
    assert WorkerSetup({"10.0.0.1": 2 * cores}).threads_for("tcp://10.0.0.2:4000", 1) == cores  # joined later: alone
    assert WorkerSetup({"10.0.0.1": 1}, fixed=3).threads_for("tcp://10.0.0.1:4000", 1) == 3  # IR_EMBED_THREADS wins


def test_a_shard_with_other_settings_is_refused():
    expected = {key: "1" for key in STAMP_KEYS}
    one = BatchResult([FileResult(error="x")], {})
    report = ShardReport("tcp://10.0.0.9:1234", dict(expected, hash_size="16"), one)
    with pytest.raises(SettingsMismatchError, match=r"10\.0\.0\.9.*hash_size: DB has 1, worker has 16"):
        cluster_extract.accept(report, expected, 1)
    cluster_extract.accept(ShardReport(report.worker, expected, one), expected, 1)
    with pytest.raises(SettingsMismatchError, match="returned 1 results for 2 images"):
        cluster_extract.accept(ShardReport(report.worker, expected, one), expected, 2)


def test_busy_db_and_bad_arguments_fail_before_any_cluster_work(scanned, monkeypatch):
    db = fresh_copy(scanned, "busy.db")
    with WriterLock(db), pytest.raises(DatabaseBusyError):
        cluster_extract.extract_on_cluster(str(db), "tcp://127.0.0.1:9")
    with pytest.raises(ValueError, match="--workers"):
        cluster_extract.extract_on_cluster(str(db), "local", workers=0)
    with pytest.raises(ValueError, match="shard_size"):
        cluster_extract.extract_on_cluster(str(db), "local", shard_size=0)
    monkeypatch.setattr(cluster_extract, "CONNECT_TIMEOUT", 1)
    with pytest.raises(cluster_extract.ClusterError, match="cannot reach the Dask scheduler"):
        cluster_extract.extract_on_cluster(str(db), "tcp://127.0.0.1:9")
    conn = connect(db)
    assert count_by_status(conn) == {"pending": N_IMAGES + 2}
    conn.close()


def _prefer_bfloat16():
    """On this worker, torch's "auto" precision now means bfloat16 (as on a CPU with native
    bfloat16); its own runtime setting stays onnxruntime."""
    from extraction import dask_worker
    from features.network import base

    dask_worker._EMBEDDERS.clear()
    base.real_native_bfloat16 = base.native_bfloat16
    base.native_bfloat16 = lambda: True


def _undo_prefer_bfloat16():
    from extraction import dask_worker
    from features.network import base

    dask_worker._EMBEDDERS.clear()
    base.native_bfloat16 = base.real_native_bfloat16


def _worker_networks():
    from extraction import dask_worker

    return [(e.runtime, e.precision) for e in dask_worker._EMBEDDERS.values()]


@pytest.mark.timeout(300)
def test_a_resumed_run_computes_in_the_dbs_precision(scanned, reference, cluster, monkeypatch):
    """Issue 12: workers whose IR_EMBED_PRECISION=auto would mean bfloat16 resume a DB stamped
    float32 in float32 instead of having every shard refused, and run the driver's runtime
    (torch here) whatever their own IR_EMBED_RUNTIME says."""
    import config

    local, client = cluster
    db = fresh_copy(reference[0], "resumed.db")
    conn = connect(db)
    stamp_before = features_stamp(conn)
    assert stamp_before["embedding_precision"] == "float32"
    reset_features(conn)  # all pending again, the float32 stamp kept, as if the run had stopped early
    check_or_write_stamp(conn, stamp_before)
    conn.close()
    monkeypatch.setattr(config, "EMBED_PRECISION", "auto")
    monkeypatch.setattr(config, "EMBED_RUNTIME", "torch")  # the driver's runtime is every worker's
    client.run(_prefer_bfloat16)
    try:
        result = cluster_extract.extract_on_cluster(str(db), local.scheduler_address, progress=False,
                                                    build_index=False)
        networks = client.run(_worker_networks)
    finally:
        client.run(_undo_prefer_bfloat16)
    assert {network for used in networks.values() for network in used} == {("torch", "float32")}
    assert (result.ok, result.error) == (N_IMAGES, 2)
    conn = connect(db)
    assert features_stamp(conn) == stamp_before
    conn.close()


def test_a_file_that_comes_back_is_only_hashed_on_the_workers(scanned, reference, cluster, monkeypatch):
    """Features kept for a file that left the collection are re-used on Dask too: the worker
    reads and hashes the file, and the network never sees it."""
    from db.images import delete_images, insert_images

    local, _ = cluster
    db = fresh_copy(reference[0], "came_back.db")
    conn = connect(db)
    gone = find_by_path(conn, "img05.jpg")[0]
    delete_images(conn, [gone])  # a rescan while the file was away
    stat = os.stat(scanned.parent / "images" / "img05.jpg")
    insert_images(conn, [("img05_back.jpg", stat.st_size, stat.st_mtime_ns, 1, 1, "pending", None)])
    conn.close()
    os.link(scanned.parent / "images" / "img05.jpg", scanned.parent / "images" / "img05_back.jpg")
    stored = []
    store_results = extraction_run.store_results

    def keep_results(conn, rows, result):
        stored.extend(zip([row.path for row in rows], result.files))
        store_results(conn, rows, result)

    monkeypatch.setattr(extraction_run, "store_results", keep_results)
    try:
        result = cluster_extract.extract_on_cluster(str(db), local.scheduler_address, progress=False,
                                                    build_index=False)
    finally:
        os.remove(scanned.parent / "images" / "img05_back.jpg")
    assert [(path, f.known, f.error) for path, f in stored] == [("img05_back.jpg", True, None)]
    assert (result.ok, result.done_now, result.unused_features) == (N_IMAGES, 1, 0)
