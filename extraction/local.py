"""Extraction on this machine: decode worker processes beside the network.

Workers read, hash and decode each file once and compute histogram, hashes and the network
crop (features.extract.describe_file); the main process runs the network over each batch
and stores it. A file whose content hash already has features (moved out and back, a
remounted drive, a second copy) is only read and hashed: no decode, no network.

How the cores are shared (``balance``): every core gets a decode worker, and the network
gets half the cores as threads. Workers are independent and stop when they are a window
ahead, so whichever stage is behind gets the cores and every core stays busy whatever the
decode/network cost ratio; the network's threads wait for each other at every layer, so
they are not oversubscribed. IR_NUM_WORKERS and IR_EMBED_THREADS override either.

This module imports no torch: the network comes from features.network.loader.load_embedder
(looked up at run time, so a benchmark can substitute its own), which on ONNX Runtime with
the model cached never loads torch.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import config
from config import InvalidInputError
from db.features import has_features, open_reader
from db.images import PendingRow
from extraction.errors import DatasetFolderError
from extraction.run import Job, ModelChoice, RunSummary, Started, extract
from extraction.workers import WorkerPool
from features.extract import BatchResult, Described, Settings, describe_file, finish_batch, stamp
from features.network import loader
from features.network.base import resolve_model
from fileio import is_empty_folder

log = logging.getLogger("main")

MAX_AUTO_WORKERS = 16  # each worker holds ~100 MB; past this the network is the bottleneck anyway
DEPTH = 2  # tasks queued per worker: enough to never idle, small enough to balance


@dataclass(frozen=True)
class Balance:
    """How a run splits the cores."""

    workers: int  # decode processes (0: decode in the main process)
    threads: int  # the network's intra-op threads


def balance(cores: int | None = None, workers: int | str = config.NUM_WORKERS,
            threads: int = config.EMBED_THREADS) -> Balance:
    """Decode workers and network threads for ``cores`` (default: this machine's).

    workers: "auto" (one per core, see the module docstring), 0 (decode inline) or a number;
    threads: 0 (auto: half the cores) or a number.
    """
    cores = cores or os.cpu_count() or 1
    if isinstance(workers, str) and workers.strip().isdigit():
        workers = int(workers)  # IR_NUM_WORKERS=2
    if workers == "auto":
        workers = min(cores, MAX_AUTO_WORKERS)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InvalidInputError(f"workers must be 0 (decode inline), a positive integer or auto (IR_NUM_WORKERS, "
                         f"--workers), got {workers!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InvalidInputError(f"network threads (IR_EMBED_THREADS) must be a positive integer or 0 (auto), "
                                f"got {threads!r}")
    return Balance(workers, threads or max(1, cores // 2))


class _Describer:
    """The decode workers' job: one path in, a Described out (features for known contents skipped)."""

    def __init__(self, settings: Settings, db_path: str):
        self.settings, self.db_path = settings, db_path
        self._reader: sqlite3.Connection | None = None  # opened in the process that uses it

    def is_known(self, content_hash: bytes) -> bool:
        if self._reader is None:
            self._reader = open_reader(self.db_path)
        return has_features(self._reader, content_hash)

    def __call__(self, path: str) -> Described:
        return describe_file(path, self.settings, self.is_known)

    def close(self) -> None:
        """Close this process's reader: the DB's last connection to close folds the WAL back in."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _lost(path: str, why: str) -> Described:
    return Described(error=why)


class LocalExecutor:
    """Decode workers plus the network in this process (see extraction.run.Executor)."""

    label = "extracting"

    def __init__(self, workers: int = config.NUM_WORKERS, threads: int = config.EMBED_THREADS):
        self.balance = balance(workers=workers, threads=threads)
        self._pool: WorkerPool | None = None
        self._describe: _Describer | None = None

    def check_root(self, root: str | None) -> None:
        check_dataset_root(root)

    def start(self, choice: ModelChoice, job: Job, pending: int) -> Started:
        # The concrete model first: the decode workers frame pictures at its input size.
        settings = job.settings(resolve_model(choice.model), choice.framing)
        self._describe = _Describer(settings, job.db_path)
        self._batch_size = job.batch_size
        if self.balance.workers:  # forked before the network loads: small processes, no threads to fork
            self._pool = WorkerPool(self._describe, self.balance.workers, _lost, DEPTH)
        self._embedder = loader.load_embedder(settings.model, choice.precision, choice.runtime,
                                              threads=self.balance.threads)
        self._settings = dataclasses.replace(settings, model=self._embedder.spec.name)
        return Started(self._settings, stamp(self._settings, self._embedder))

    def run(self, rows: Iterator[PendingRow], root: str) -> Iterator[tuple[list[PendingRow], BatchResult]]:
        """Batches in row order; the workers stay up to a window of max(2 batches, workers x DEPTH)
        files ahead of the network."""
        log.info("extracting with %d decode workers and %d network threads (%s, %s)", self.balance.workers,
                 self.balance.threads, getattr(self._embedder, "runtime", "torch"), self._embedder.precision)
        rows = iter(rows)
        if self._pool is None:
            while batch := [row for _, row in zip(range(self._batch_size), rows)]:
                described = [self._describe(os.path.join(root, row.path)) for row in batch]
                yield batch, finish_batch(described, self._embedder, self._settings)
            return
        window = max(2 * self._batch_size, self._pool.size * DEPTH)
        ahead: deque[PendingRow] = deque()

        def feed() -> None:
            while len(ahead) < window and (row := next(rows, None)) is not None:
                ahead.append(row)
                self._pool.submit(row.id, os.path.join(root, row.path))

        feed()
        batch, described = [], []
        while ahead:
            row = ahead.popleft()
            described.append(self._pool.result(row.id))
            batch.append(row)
            feed()
            if len(batch) == self._batch_size or not ahead:
                yield batch, finish_batch(described, self._embedder, self._settings)
                batch, described = [], []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._describe is not None:
            self._describe.close()


def check_dataset_root(root: str | None) -> None:
    """DatasetFolderError unless ``root`` is a folder with something in it: a missing, empty or
    unmounted collection must never turn into "every file disappeared"."""
    if root is None:
        raise DatasetFolderError("this DB records no dataset folder: "
                                 "run `python generator.py --data FOLDER --db DB` first")
    advice = "mount or restore it and run the same command again; nothing was changed"
    if not os.path.isdir(root):
        raise DatasetFolderError(f"the dataset folder {root} is missing or not a folder (a drive not mounted?): "
                                 f"{advice}")
    try:
        empty = is_empty_folder(root)
    except OSError as exc:
        raise DatasetFolderError(f"cannot list the dataset folder {root} ({exc.strerror or exc}): {advice}") from None
    if empty:
        raise DatasetFolderError(f"the dataset folder {root} is empty (a drive not mounted?): {advice}")


def extract_local(db_path: str, model: str = config.EMBEDDING_MODEL, batch_size: int = config.BATCH_SIZE,
                  workers: int = config.NUM_WORKERS, hash_size: int = config.HASH_SIZE,
                  hist_bins: int = config.HIST_BINS, reset: bool = False, progress: bool = True,
                  build_index: bool = True, retry: bool = False, prune: bool = False,
                  threads: int = config.EMBED_THREADS) -> RunSummary:
    """Extract every pending image of the DB on this machine (what ``python main.py`` runs)."""
    job = Job(str(db_path), model, batch_size, hash_size, hist_bins, reset=reset, retry=retry, prune=prune,
              progress=progress, build_index=build_index)
    job.check()
    return extract(job, LocalExecutor(workers, threads))
