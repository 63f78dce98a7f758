"""Extract every feature of every image that does not have it yet.

Each file is read and decoded once (in decode worker processes, overlapped with the
network); embeddings, colour histogram and perceptual hashes all come from that one copy.
Each batch is committed in its own transaction, so an interrupted run loses at most one
batch and the same command resumes it.

    python main.py --db photos.db
"""
import argparse
import logging
import os
import signal
import sys

import config
from cli import run, setup_logging
from db import WriterLock, connect
from db.images import count_by_status, pending_page, retry_errors
from db.meta import check_or_write_stamp, dataset_root
from extraction_run import (
    ReportedInterrupt, check_positive, finish, model_for_run, reset_if_asked, sigterm_as_interrupt, store_results,
    summary_line,
)
from extraction_run import progress as extraction_progress
from features.extract import Settings, describe_file, finish_batch, stamp

log = logging.getLogger("main")

PAGE = 2048  # pending rows read from the DB at a time: memory stays flat for any collection


class _Files:
    """Map-style dataset for torch's DataLoader: index -> Described (decoded, not embedded)."""

    def __init__(self, paths, settings):
        self.paths, self.settings = paths, settings

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return describe_file(self.paths[index], self.settings)


def _quiet_worker(_):
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    _die_with_parent()


_PARENT_PID = os.getpid()  # in a forked decode worker: the main.py that started it


def _die_with_parent():
    """Have Linux kill this decode worker when main.py dies. Without it a SIGKILLed main.py
    leaves workers blocked for ever writing to a full pipe (torch's watchdog never runs)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getpid() != _PARENT_PID and os.getppid() != _PARENT_PID:
        os._exit(1)  # the parent died before the request took effect




def _batches(paths, settings, batch_size, workers):
    """Yield lists of Described, ``batch_size`` at a time, decoded by ``workers`` processes."""
    if workers == 0:
        for start in range(0, len(paths), batch_size):
            yield [describe_file(p, settings) for p in paths[start:start + batch_size]]
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(_Files(paths, settings), batch_size=batch_size, num_workers=workers,
                        collate_fn=list, worker_init_fn=_quiet_worker, prefetch_factor=2)
    yield from loader


def extract(db_path, model=config.EMBEDDING_MODEL, batch_size=config.BATCH_SIZE, workers=config.NUM_WORKERS,
            hash_size=config.HASH_SIZE, hist_bins=config.HIST_BINS, reset=False, progress=True, build_index=True,
            retry=False):
    """Extract all pending images of the DB; returns {'ok': n, 'error': m, 'done_now': k}."""
    check_positive(batch_size=batch_size, hash_size=hash_size, hist_bins=hist_bins)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be 0 (decode inline) or a positive integer, got {workers!r}")
    conn = connect(db_path)
    with WriterLock(db_path):  # a bad DB or a busy one is reported before the slow imports
        import torch

        from features.embeddings import load_embedder

        embedder = load_embedder(*model_for_run(conn, model, reset))
        reset_if_asked(conn, reset)
        if retry:
            log.info("retrying %d files that failed before", retry_errors(conn))
        settings = Settings(model=embedder.spec.name, hash_size=hash_size, hist_bins=hist_bins,
                            decode_side=config.DECODE_SIDE, max_pixels=config.MAX_IMAGE_PIXELS)
        check_or_write_stamp(conn, stamp(settings, embedder))
        # The decode workers have cores of their own: more threads than cores stall the network.
        torch.set_num_threads(config.TORCH_THREADS or max(1, (os.cpu_count() or 1) - workers))
        root = dataset_root(conn)
        done = _extract_pending(conn, root, settings, embedder, batch_size, workers, progress)
        result = finish(conn, done, build_index)
    conn.close()
    return result


def _extract_pending(conn, root, settings, embedder, batch_size, workers, progress):
    after = 0
    with extraction_progress(count_by_status(conn).get("pending", 0), "extracting", progress) as saved:
        while True:
            page = pending_page(conn, after, PAGE)
            if not page:
                break
            after = page[-1][0]
            paths = [os.path.join(root, row[1]) for row in page]
            position = 0
            for described in _batches(paths, settings, batch_size, workers):
                rows = page[position:position + len(described)]
                position += len(described)
                store_results(conn, rows, finish_batch(described, embedder))
                saved.update(len(rows))
    return saved.done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py (default: %(default)s)")
    parser.add_argument("--model", default=config.EMBEDDING_MODEL, choices=("auto", "resnet18", "efficientnet_lite0"))
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE)
    parser.add_argument("--workers", type=int, default=config.NUM_WORKERS,
                        help="decode processes (0: decode inline); with --dask local: Dask worker processes")
    parser.add_argument("--dask", metavar="SCHEDULER",
                        help="extract on a Dask cluster: its scheduler address (tcp://HOST:8786), or 'local'")
    parser.add_argument("--hash-size", type=int, default=config.HASH_SIZE)
    parser.add_argument("--hist-bins", type=int, default=config.HIST_BINS)
    parser.add_argument("--reset-features", action="store_true", help="drop all features and extract again")
    parser.add_argument("--retry-errors", action="store_true",
                        help="try the files that failed before again (after fixing permissions or limits)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        with sigterm_as_interrupt():
            result = _run(args)
    except KeyboardInterrupt as exc:
        if not isinstance(exc, ReportedInterrupt):
            log.warning("interrupted; every finished batch is saved: run the same command again to continue")
        sys.exit(130)
    print(summary_line(result))


def _run(args):
    if args.dask:
        from distributed_extract import extract_on_cluster

        return extract_on_cluster(args.db, args.dask, args.workers, args.model, args.batch_size, args.hash_size,
                                  args.hist_bins, reset=args.reset_features, progress=not args.no_progress)
    return extract(args.db, args.model, args.batch_size, args.workers, args.hash_size, args.hist_bins,
                   reset=args.reset_features, progress=not args.no_progress, retry=args.retry_errors)


if __name__ == "__main__":
    run(main)
