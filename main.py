"""Extract every feature of every image that does not have it yet.

Each file is read and decoded once (in decode worker processes, beside the network);
embeddings, colour histogram and perceptual hashes all come from that one copy. Each
batch is committed in its own transaction, so an interrupted run loses at most one batch
and the same command resumes it. The work happens in extraction/ (run.py: the driver
loop; local.py: this machine; dask.py: a cluster).

    python main.py --db photos.db
    python main.py --db photos.db --dask local --workers 4
    python main.py --db photos.db --prune      # also forget features of files no longer in the collection
"""
import argparse
import logging
import sys

import config
from cli import run, setup_logging
from extraction.local import extract_local as extract  # noqa: F401  the Python entry point: main.extract(db, ...)
from extraction.progress import ReportedInterrupt, sigterm_as_interrupt
from extraction.run import RunSummary

log = logging.getLogger("main")


def workers_arg(text: str) -> int | str:
    """--workers: "auto" or a whole number."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number, got {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py (default: %(default)s)")
    parser.add_argument("--model", default=config.EMBEDDING_MODEL, choices=config.MODEL_CHOICES,
                        help="auto keeps the DB's model (new DB: ResNet18 if its verified weights are here, else "
                             "EfficientNet-Lite0); efficientnet_lite1/2 answer better at 2-3x the network's cost")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE)
    parser.add_argument("--workers", type=workers_arg, default=None,
                        help="decode processes: auto (one per core; IR_NUM_WORKERS), or a number (0: decode inline); "
                             "with --dask local: Dask worker processes (default 1)")
    parser.add_argument("--dask", metavar="SCHEDULER",
                        help="extract on a Dask cluster: its scheduler address (tcp://HOST:8786), or 'local'")
    parser.add_argument("--hash-size", type=int, default=config.HASH_SIZE)
    parser.add_argument("--hist-bins", type=int, default=config.HIST_BINS)
    parser.add_argument("--reset-features", action="store_true",
                        help="drop all features and extract again, with this machine's settings "
                             "(e.g. a DB made from centre crops gets IR_EMBED_FRAMING)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="try the files that failed before again (after fixing permissions or limits)")
    parser.add_argument("--prune", action="store_true",
                        help="delete the features kept for files no longer in the collection")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        with sigterm_as_interrupt():
            summary = _extract(args)
    except KeyboardInterrupt as exc:
        if not isinstance(exc, ReportedInterrupt):
            log.warning("interrupted; every finished batch is saved: run the same command again to continue")
        sys.exit(130)
    print(summary.line())


def _extract(args: argparse.Namespace) -> RunSummary:
    options = dict(model=args.model, batch_size=args.batch_size, hash_size=args.hash_size, hist_bins=args.hist_bins,
                   reset=args.reset_features, retry=args.retry_errors, prune=args.prune, progress=not args.no_progress)
    if args.dask:
        from extraction.dask import extract_on_cluster  # dask is heavy: only a --dask run imports it

        return extract_on_cluster(args.db, args.dask, 1 if args.workers is None else args.workers, **options)
    return extract(args.db, workers=config.NUM_WORKERS if args.workers is None else args.workers, **options)


if __name__ == "__main__":
    run(main)
