"""The worker half of ``main.py --dask``: what runs inside each Dask worker process.

Workers only compute: they read images from the shared filesystem, call the same pure
``extract_batch`` as a local run and send the blobs back; the driver alone writes the DB.
The network is loaded once per worker process (a module-level cache), not once per task,
and every report carries the worker's stamp so the driver can refuse a worker whose model
weights or hash settings differ from the DB's.
"""
import ctypes
import logging
import os
import signal
import sys
from urllib.parse import urlparse

from distributed import WorkerPlugin, get_worker

from db.errors import DatasetRootError
from features.extract import Settings, extract_batch, stamp

log = logging.getLogger(__name__)

_EMBEDDERS = {}  # model name -> Embedder, per worker process
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


def host_of(address):
    """'tcp://10.0.0.5:40123' -> '10.0.0.5': how workers sharing one machine are grouped."""
    return urlparse(address).hostname


class WorkerSetup(WorkerPlugin):
    """Prepare each worker process (now and any that joins or restarts later): its share of
    its machine's cores for torch, malloc tuned for big arrays, Ctrl-C left to the driver.

    ``threads_by_host`` holds the Dask threads on each host when the run started; a worker
    on a host that joined later assumes it is alone there. ``fixed`` > 0 overrides
    (config.TORCH_THREADS). ``ignore_ctrl_c``: for a LocalCluster, whose workers share the
    terminal's process group; the driver handles Ctrl-C and closes them.
    """

    name = "image-recommender-worker-setup"

    def __init__(self, threads_by_host, fixed=0, ignore_ctrl_c=False):
        self.threads_by_host, self.fixed, self.ignore_ctrl_c = threads_by_host, fixed, ignore_ctrl_c

    def setup(self, worker):
        import torch

        if self.ignore_ctrl_c:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        keep_freed_memory()
        sharing = self.threads_by_host.get(host_of(worker.address), worker.state.nthreads)
        threads = self.fixed or max(1, (os.cpu_count() or 1) // max(1, sharing))
        torch.set_num_threads(threads)
        log.info("worker %s: %d torch threads", worker.address, threads)


def keep_freed_memory():
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


def _embedder(model):
    from features.embeddings import load_embedder, resolve_model

    name = resolve_model(model)  # "auto" -> a concrete name, so it is loaded only once
    if name not in _EMBEDDERS:
        _EMBEDDERS[name] = load_embedder(name)
    return _EMBEDDERS[name]


def probe(model, hash_size, hist_bins, decode_side, max_pixels):
    """Resolve ``model`` (maybe "auto") on a worker: (Settings, stamp) every shard must match."""
    embedder = _embedder(model)
    settings = Settings(model=embedder.spec.name, hash_size=hash_size, hist_bins=hist_bins,
                        decode_side=decode_side, max_pixels=max_pixels)
    return settings, stamp(settings, embedder)


def extract_shard(paths, settings, batch_size, root):
    """Features of one shard, ``batch_size`` images per network call.

    Returns {"worker", "stamp", "results"}; results has one entry per path, exactly what
    ``extract_batch`` returns locally: (content_hash, {column: blob}) or an error string.
    A worker that cannot see the dataset ``root`` raises instead, so that a missing mount
    stops the run rather than marking every image as gone.
    """
    if not os.path.isdir(root):
        raise DatasetRootError(f"Dask worker {get_worker().address} cannot see the dataset folder {root}: "
                               f"mount the collection at the same path on every worker")
    embedder = _embedder(settings.model)
    results = []
    for start in range(0, len(paths), batch_size):
        results.extend(extract_batch(paths[start:start + batch_size], settings, embedder))
    return {"worker": get_worker().address, "stamp": stamp(settings, embedder), "results": results}
