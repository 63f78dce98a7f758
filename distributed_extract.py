"""Feature extraction spread over a Dask cluster: the driver behind ``main.py --dask``.

    python main.py --dask tcp://scheduler:8786       # an existing cluster
    python main.py --dask local --workers 4          # a LocalCluster of 4 worker processes

Why a driver: SQLite wants one writer. This process streams pending rows out of the DB,
sends shards of a few hundred paths to the workers (features.dask_worker), keeps only a
bounded number of shards in flight (flat memory for any collection size) and writes each
finished shard in its own transaction, holding the same writer lock and checking the same
stamp as a local run. So an interrupted run resumes like a local one, a worker that dies
only costs a rerun of its shard, and results from a worker with other weights are refused.
"""
import logging
import os
import uuid
from itertools import islice

from distributed import Client, LocalCluster, as_completed

import config
from cli import UsageError
from db import WriterLock, connect
from db.errors import SettingsMismatchError
from db.images import count_by_status, pending_page
from db.meta import STAMP_KEYS, check_or_write_stamp, dataset_root
from extraction_run import check_positive, finish, model_for_run, reset_if_asked, store_results
from extraction_run import progress as extraction_progress
from features.dask_worker import WorkerSetup, extract_shard, host_of, probe

log = logging.getLogger("distributed_extract")

# Images per Dask task: big enough to hide the per-task cost, small enough that a lost worker
# costs little work to redo. IR_SHARD_SIZE overrides it, like the constants in config.py.
SHARD_SIZE = int(os.environ.get("IR_SHARD_SIZE", 256))
PAGE = 2048  # pending rows read from the DB at a time
CONNECT_TIMEOUT = 30  # seconds to reach a scheduler, and to wait for its first worker
PROBE_TIMEOUT = 600  # seconds for a worker to load the model and answer the first task
PROJECT = os.path.dirname(os.path.abspath(__file__))
SAME_CODE = (f"start the scheduler and every worker with this project on PYTHONPATH (PYTHONPATH={PROJECT}) "
             f"and the packages of requirements.txt")


class ClusterError(UsageError):
    """The Dask cluster asked for cannot be used (unreachable scheduler, no workers)."""


def open_client(scheduler, workers):
    """A Client on ``scheduler`` ("local": a new LocalCluster of ``workers`` processes)."""
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines drown the progress bar
    if scheduler == "local":
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"--workers must be a positive number of Dask worker processes, got {workers!r}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start one with "
                           f"`dask scheduler`, or pass --dask local") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        client.close()
        raise ClusterError(f"the Dask scheduler at {scheduler} has no workers: start some with "
                           f"`PYTHONPATH={PROJECT} dask worker {scheduler}`") from None
    return client, None


def extract_on_cluster(db_path, scheduler, workers=1, model=config.EMBEDDING_MODEL, batch_size=config.BATCH_SIZE,
                       hash_size=config.HASH_SIZE, hist_bins=config.HIST_BINS, reset=False, progress=True,
                       build_index=True, shard_size=None, in_flight=None):
    """Extract all pending images of the DB on Dask; returns what ``main.extract`` returns.

    in_flight: shards submitted but not yet written (default: two per worker thread).
    """
    check_positive(batch_size=batch_size, hash_size=hash_size, hist_bins=hist_bins,
                   shard_size=1 if shard_size is None else shard_size, in_flight=1 if in_flight is None else in_flight)
    conn = connect(db_path)
    with WriterLock(db_path):
        client, cluster = open_client(scheduler, workers)
        try:
            model, _ = model_for_run(conn, model, reset)  # workers compute in their own precision
            threads = set_up_workers(client, local=cluster is not None)
            settings, worker_stamp = first_answer(client, model, hash_size, hist_bins)
            reset_if_asked(conn, reset)
            check_or_write_stamp(conn, worker_stamp)
            expected = {key: str(worker_stamp[key]) for key in STAMP_KEYS}
            if in_flight is None:
                in_flight = max(2, 2 * sum(threads.values()))
            if shard_size is None:  # a small collection still gets a few shards per worker thread
                pending = count_by_status(conn).get("pending", 0)
                shard_size = max(batch_size, min(SHARD_SIZE, -(-pending // (4 * sum(threads.values())))))
            log.info("extracting on %d Dask workers (%d threads), %d shards of %d images in flight",
                     len(threads), sum(threads.values()), in_flight, shard_size)
            done = _extract_pending(conn, client, dataset_root(conn), settings, expected, batch_size,
                                    shard_size, in_flight, progress)
        finally:
            client.close()
            if cluster is not None:
                # Workers that imported torch take seconds to exit; the nanny then kills them, as it should.
                logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
                cluster.close()
        result = finish(conn, done, build_index)
    conn.close()
    return result


def first_answer(client, model, hash_size, hist_bins):
    """(Settings, stamp) from one worker, with one-line errors for a cluster set up wrong."""
    future = client.submit(probe, model, hash_size, hist_bins, config.DECODE_SIDE, config.MAX_IMAGE_PIXELS,
                           pure=False)
    try:
        return future.result(timeout=PROBE_TIMEOUT)
    except (ImportError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "deserializ" not in str(exc):
            raise  # not the scheduler failing to unpickle the task: a real error, shown as it is
        first_line = str(exc).split(". ")[0].splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"the Dask cluster cannot import this project's code ({first_line}): {SAME_CODE}") from None
    except TimeoutError:
        raise ClusterError(f"no Dask worker answered in {PROBE_TIMEOUT} s (see the worker logs): {SAME_CODE}") from None


def set_up_workers(client, local):
    """Install WorkerSetup on every worker, now and later; returns {worker address: Dask threads}."""
    threads = client.nthreads()
    by_host = {}
    for address, n in threads.items():
        by_host[host_of(address)] = by_host.get(host_of(address), 0) + n
    try:
        client.register_plugin(WorkerSetup(by_host, config.TORCH_THREADS, ignore_ctrl_c=local))
    except Exception as exc:  # distributed re-raises a worker's ImportError as a bare Exception
        if "ModuleNotFoundError" not in str(exc) and "ImportError" not in str(exc):
            raise
        raise ClusterError(f"a Dask worker cannot import this project's code ({exc}): {SAME_CODE}") from None
    return threads


def pending_shards(conn, shard_size):
    """Yield lists of pending rows, ``shard_size`` at a time, streaming the DB by id."""
    after = 0
    while True:
        page = pending_page(conn, after, max(PAGE, shard_size))
        if not page:
            return
        after = page[-1][0]
        for start in range(0, len(page), shard_size):
            yield page[start:start + shard_size]


def _extract_pending(conn, client, root, settings, expected, batch_size, shard_size, in_flight, progress):
    total = count_by_status(conn).get("pending", 0)
    shards = pending_shards(conn, shard_size)
    running, rows_of = as_completed(), {}
    run_id = uuid.uuid4().hex[:12]  # keys must not collide with another DB's run on the same cluster

    def submit(rows):
        paths = [os.path.join(root, row[1]) for row in rows]
        future = client.submit(extract_shard, paths, settings, batch_size, root, pure=False,
                               key=f"extract-shard-{rows[0][0]}-{rows[-1][0]}-{run_id}")
        rows_of[future.key] = rows
        running.add(future)

    with extraction_progress(total, "extracting on dask", progress) as saved:
        for rows in islice(shards, in_flight):
            submit(rows)
        for future in running:
            rows = rows_of.pop(future.key)
            report = future.result()
            accept(report, expected, len(rows))
            store_results(conn, rows, report["results"])
            future.release()
            saved.update(len(rows))
            following = next(shards, None)
            if following is not None:
                submit(following)
    return saved.done


def accept(report, expected, n_rows):
    """Refuse a shard made with other settings than the DB's, or with a result missing."""
    got = {key: str(report["stamp"][key]) for key in STAMP_KEYS}
    diff = {key: (expected[key], got[key]) for key in STAMP_KEYS if got[key] != expected[key]}
    if diff:
        said = ", ".join(f"{key}: DB has {old}, worker has {new}" for key, (old, new) in diff.items())
        raise SettingsMismatchError(f"refused results of Dask worker {report['worker']}, whose features differ "
                                    f"from the DB's ({said}): give every worker the same model weights and code")
    if len(report["results"]) != n_rows:
        raise SettingsMismatchError(f"Dask worker {report['worker']} returned {len(report['results'])} results "
                                    f"for {n_rows} images: run the same code version on every worker")
