"""Feature extraction spread over a Dask cluster: the executor behind ``main.py --dask``.

    python main.py --dask tcp://scheduler:8786       # an existing cluster
    python main.py --dask local --workers 4          # a LocalCluster of 4 worker processes

Why a driver: SQLite wants one writer. The run's driver loop (extraction.run) streams
pending rows out of the DB; this executor sends them in shards of a few hundred paths to
the workers (extraction.dask_worker), keeps only a bounded number of shards in flight
(flat memory for any collection size) and hands each finished shard back to be written in
its own transaction. So an interrupted run resumes like a local one, a worker that dies
only costs a rerun of its shard, and results from a worker with other weights are refused.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import closing
from itertools import islice

from distributed import Client, LocalCluster, as_completed

import config
from config import InvalidInputError
from db.errors import SettingsMismatchError
from db.features import open_reader, unused_hashes
from db.images import PendingRow
from extraction.dask_worker import ShardReport, WorkerSetup, extract_shard, host_of, probe
from extraction.errors import ClusterError
from extraction.local import check_dataset_root
from extraction.run import Job, ModelChoice, RunSummary, Started, check_positive, extract
from features.extract import STAMP_KEYS, BatchResult
from features.network.base import resolve_runtime

log = logging.getLogger("main")

# Images per Dask task: big enough to hide the per-task cost, small enough that a lost worker
# costs little work to redo. IR_SHARD_SIZE overrides it, like the constants in config.py.
SHARD_SIZE = int(os.environ.get("IR_SHARD_SIZE", 256))
CONNECT_TIMEOUT = 30  # seconds to reach a scheduler, and to wait for its first worker
PROBE_TIMEOUT = 600  # seconds for a worker to load the model and answer the first task
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAME_CODE = (f"start the scheduler and every worker with this project on PYTHONPATH (PYTHONPATH={PROJECT}) "
             f"and the packages of requirements.txt")


def open_client(scheduler: str, workers: int) -> tuple[Client, LocalCluster | None]:
    """A Client on ``scheduler`` ("local": a new LocalCluster of ``workers`` processes)."""
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines drown the progress bar
    if scheduler == "local":
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


class DaskExecutor:
    """Shards of pending rows computed on a Dask cluster (see extraction.run.Executor).

    in_flight: shards submitted but not yet written (default: two per worker thread);
    shard_size: images per shard (default: SHARD_SIZE, fewer for a small collection).
    """

    label = "extracting on dask"

    def __init__(self, scheduler: str, workers: int = 1, shard_size: int | None = None,
                 in_flight: int | None = None):
        if scheduler == "local" and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InvalidInputError(f"--workers must be a positive number of Dask worker processes, got {workers!r}")
        check_positive(shard_size=1 if shard_size is None else shard_size,
                       in_flight=1 if in_flight is None else in_flight)
        self.scheduler, self.workers, self.shard_size, self.in_flight = scheduler, workers, shard_size, in_flight
        self.client: Client | None = None
        self.cluster: LocalCluster | None = None

    def check_root(self, root: str | None) -> None:
        """Only a LocalCluster shares this machine's view of the folder; remote workers check their own."""
        if self.scheduler == "local":
            check_dataset_root(root)

    def start(self, choice: ModelChoice, job: Job, pending: int) -> Started:
        # The driver decides the runtime, as the DB (or this machine's config) decides the precision:
        # workers with other IR_EMBED_* settings still compute what the DB holds.
        choice = dataclasses.replace(choice, runtime=choice.runtime or resolve_runtime(None, choice.precision))
        self.client, self.cluster = open_client(self.scheduler, self.workers)
        threads = self._set_up_workers()
        started = self._first_answer(choice, job)
        # Every shard is computed with the concrete model, precision and runtime the probe chose.
        self.choice = ModelChoice(started.settings.model, started.stamp["embedding_precision"], choice.runtime,
                                  started.settings.framing)
        self.settings, self.batch_size, self.db_path = started.settings, job.batch_size, job.db_path
        self.expected = {key: started.stamp[key] for key in STAMP_KEYS}
        total_threads = sum(threads.values())
        if self.in_flight is None:
            self.in_flight = max(2, 2 * total_threads)
        if self.shard_size is None:  # a small collection still gets a few shards per worker thread
            self.shard_size = max(job.batch_size, min(SHARD_SIZE, -(-pending // (4 * total_threads))))
        self.threads = threads
        return started

    def _first_answer(self, choice: ModelChoice, job: Job) -> Started:
        """The workers' Settings and stamp, with one-line errors for a cluster set up wrong."""
        future = self.client.submit(probe, choice, job.settings(choice.model, choice.framing), pure=False)
        try:
            return future.result(timeout=PROBE_TIMEOUT)
        except (ImportError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "deserializ" not in str(exc):
                raise  # not the scheduler failing to unpickle the task: a real error, shown as it is
            first_line = str(exc).split(". ")[0].splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(f"the Dask cluster cannot import this project's code ({first_line}): "
                               f"{SAME_CODE}") from None
        except TimeoutError:
            raise ClusterError(f"no Dask worker answered in {PROBE_TIMEOUT} s (see the worker logs): "
                               f"{SAME_CODE}") from None

    def _set_up_workers(self) -> dict[str, int]:
        """Install WorkerSetup on every worker, now and later; returns {worker address: Dask threads}."""
        threads = self.client.nthreads()
        by_host: dict[str | None, int] = {}
        for address, n in threads.items():
            by_host[host_of(address)] = by_host.get(host_of(address), 0) + n
        try:
            setup = WorkerSetup(by_host, config.EMBED_THREADS, ignore_ctrl_c=self.cluster is not None)
            self.client.register_plugin(setup)
        except Exception as exc:  # distributed re-raises a worker's ImportError as a bare Exception
            if "ModuleNotFoundError" not in str(exc) and "ImportError" not in str(exc):
                raise
            raise ClusterError(f"a Dask worker cannot import this project's code ({exc}): {SAME_CODE}") from None
        return threads

    def run(self, rows: Iterator[PendingRow], root: str) -> Iterator[tuple[list[PendingRow], BatchResult]]:
        """Shards as they finish, never more than ``in_flight`` at the cluster."""
        log.info("extracting on %d Dask workers (%d threads), %d shards of %d images in flight",
                 len(self.threads), sum(self.threads.values()), self.in_flight, self.shard_size)
        # Workers cannot see the DB: they get the hashes a file coming back may match, once each.
        with closing(open_reader(self.db_path)) as reader:
            known = self.client.scatter([frozenset(unused_hashes(reader))], broadcast=True)[0]  # one object
        rows = iter(rows)
        shards = iter(lambda: list(islice(rows, self.shard_size)), [])
        running, rows_of = as_completed(), {}
        run_id = uuid.uuid4().hex[:12]  # keys must not collide with another DB's run on the same cluster

        def submit(shard: list[PendingRow]) -> None:
            paths = [os.path.join(root, row.path) for row in shard]
            future = self.client.submit(extract_shard, paths, self.settings, self.choice, self.batch_size, root,
                                        known, pure=False, key=f"extract-shard-{shard[0].id}-{shard[-1].id}-{run_id}")
            rows_of[future.key] = shard
            running.add(future)

        for shard in islice(shards, self.in_flight):
            submit(shard)
        for future in running:
            shard = rows_of.pop(future.key)
            report = future.result()
            accept(report, self.expected, len(shard))
            future.release()
            yield shard, report.result
            following = next(shards, None)
            if following is not None:
                submit(following)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            # Workers that loaded a network take seconds to exit; the nanny then kills them, as it should.
            logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
            self.cluster.close()
            self.cluster = None


def accept(report: ShardReport, expected: dict[str, str], n_rows: int) -> None:
    """Refuse a shard made with other settings than the DB's, or with a result missing."""
    got = {key: str(report.stamp.get(key, "unrecorded")) for key in expected}
    diff = {key: (expected[key], got[key]) for key in expected if got[key] != expected[key]}
    if diff:
        said = ", ".join(f"{key}: DB has {old}, worker has {new}" for key, (old, new) in diff.items())
        raise SettingsMismatchError(f"refused results of Dask worker {report.worker}, whose features differ "
                                    f"from the DB's ({said}): give every worker the same model weights and code")
    if len(report.result.files) != n_rows:
        raise SettingsMismatchError(f"Dask worker {report.worker} returned {len(report.result.files)} results "
                                    f"for {n_rows} images: run the same code version on every worker")


def extract_on_cluster(db_path: str, scheduler: str, workers: int = 1, model: str = config.EMBEDDING_MODEL,
                       batch_size: int = config.BATCH_SIZE, hash_size: int = config.HASH_SIZE,
                       hist_bins: int = config.HIST_BINS, reset: bool = False, progress: bool = True,
                       build_index: bool = True, shard_size: int | None = None, in_flight: int | None = None,
                       retry: bool = False, prune: bool = False) -> RunSummary:
    """Extract all pending images of the DB on Dask; returns what a local run returns."""
    job = Job(str(db_path), model, batch_size, hash_size, hist_bins, reset=reset, retry=retry, prune=prune,
              progress=progress, build_index=build_index)
    job.check()
    return extract(job, DaskExecutor(scheduler, workers, shard_size, in_flight))
