"""The worker half of ``main.py --dask``: what runs inside each Dask worker process.

Workers only compute: they read images from the shared filesystem, call the same pure
``extract_batch`` as a local run and send the arrays back; the driver alone writes the DB.
The network is loaded once per worker process (a module-level cache), not once per task,
in the model, precision and runtime the driver asks for (the DB's, so a resumed or mixed
cluster computes what the DB holds), and every report carries the worker's stamp so the
driver can refuse a worker whose weights or settings differ from the DB's.
"""
from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import sys
from dataclasses import dataclass
from urllib.parse import urlparse

from distributed import WorkerPlugin, get_worker

from db.errors import DatasetRootError
from extraction.run import ModelChoice, Started
from features.extract import BatchResult, Settings, extract_batch, stamp
from features.network.base import Embedder, resolve_model
from features.network.loader import load_embedder

log = logging.getLogger(__name__)

_EMBEDDERS: dict[tuple, Embedder] = {}  # (model, precision, runtime) -> Embedder, per worker process
_THREADS: list[int | None] = [None]  # the network's threads in this worker process (WorkerSetup sets it)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


@dataclass
class ShardReport:
    """One shard's results and who computed them with which settings."""

    worker: str
    stamp: dict[str, str]
    result: BatchResult


def host_of(address: str) -> str | None:
    """'tcp://10.0.0.5:40123' -> '10.0.0.5': how workers sharing one machine are grouped."""
    return urlparse(address).hostname


class WorkerSetup(WorkerPlugin):
    """Prepare each worker process (now and any that joins or restarts later): its share of
    its machine's cores for the network, malloc tuned for big arrays, Ctrl-C left to the driver.

    ``threads_by_host`` holds the Dask threads on each host when the run started; a worker
    on a host that joined later assumes it is alone there. ``fixed`` > 0 overrides
    (config.EMBED_THREADS). ``ignore_ctrl_c``: for a LocalCluster, whose workers share the
    terminal's process group; the driver handles Ctrl-C and closes them.
    """

    name = "image-recommender-worker-setup"

    def __init__(self, threads_by_host: dict[str | None, int], fixed: int = 0, ignore_ctrl_c: bool = False):
        self.threads_by_host, self.fixed, self.ignore_ctrl_c = threads_by_host, fixed, ignore_ctrl_c

    def setup(self, worker) -> None:
        if self.ignore_ctrl_c:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        keep_freed_memory()
        _THREADS[0] = self.threads_for(worker.address, worker.state.nthreads)
        log.info("worker %s: %d network threads", worker.address, _THREADS[0])

    def threads_for(self, address: str, nthreads: int) -> int:
        sharing = self.threads_by_host.get(host_of(address), nthreads)
        return self.fixed or max(1, (os.cpu_count() or 1) // max(1, sharing))


def keep_freed_memory() -> None:
    """Undo what Dask's nanny does to glibc malloc, for this workload.

    The nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's
    mmap threshold at 128 KiB: every decoded image and network activation is then mapped
    and unmapped again, and the page faults made a worker ~1.6x slower per image than the
    same code in a plain process. Large fixed thresholds keep freed blocks for reuse.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: the variable meant nothing there
        return
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest allowed value on 64-bit
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


def embedder_for(choice: ModelChoice) -> Embedder:
    """This worker's network for ``choice``, loaded once per process."""
    key = (resolve_model(choice.model), choice.precision, choice.runtime)  # "auto" resolved: loaded once
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = load_embedder(key[0], choice.precision, choice.runtime, threads=_THREADS[0])
    return _EMBEDDERS[key]


def probe(choice: ModelChoice, settings: Settings) -> Started:
    """Load the network on a worker: the Settings and stamp every shard must match."""
    embedder = embedder_for(choice)
    settings = dataclasses.replace(settings, model=embedder.spec.name)
    return Started(settings, stamp(settings, embedder))


def _has_entries(root: str) -> bool:
    try:
        with os.scandir(root) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def extract_shard(paths: list[str], settings: Settings, choice: ModelChoice, batch_size: int,
                  root: str, known: frozenset[bytes] = frozenset()) -> ShardReport:
    """Features of one shard, ``batch_size`` images per network call; a file whose content
    hash is in ``known`` (features kept for files that left the collection) is only hashed.

    A worker that cannot see the dataset ``root`` (missing or empty: a mount absent on this
    machine) raises instead, so the run stops rather than marking every image as gone.
    """
    if not _has_entries(root):
        raise DatasetRootError(f"Dask worker {get_worker().address} cannot see the dataset folder {root} "
                               f"(missing or empty): mount the collection at the same path on every worker")
    embedder = embedder_for(choice)
    parts = [extract_batch(paths[start:start + batch_size], settings, embedder, known.__contains__)
             for start in range(0, len(paths), batch_size)]
    return ShardReport(get_worker().address, stamp(settings, embedder), BatchResult.concat(parts))
