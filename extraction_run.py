"""What every extraction run shares, local (main.py) or on Dask (distributed_extract.py).

One place for the argument checks, which model a run uses, how a batch's results are
stored, the interrupt message, and the tidy-up at the end, so both drivers leave exactly
the same DB behind.
"""
import logging
import signal
from contextlib import contextmanager

from tqdm import tqdm

import config
from tqdm.contrib.logging import logging_redirect_tqdm

from db.features import delete_orphans, reset_features, write_batch
from db.images import count_by_status, error_reasons
from db.meta import features_stamp

log = logging.getLogger("main")


class ReportedInterrupt(KeyboardInterrupt):
    """Ctrl-C or SIGTERM after the run logged how much of it is saved."""


def check_positive(**values):
    """ValueError unless every value is a positive integer; hash_size must also be >= 2."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if values.get("hash_size", 2) < 2:
        raise ValueError(f"hash_size must be at least 2, got {values['hash_size']}")


def model_for_run(conn, model, reset):
    """The model and precision to load: ``auto`` keeps what the DB was built with (unless it
    is being reset). Changes nothing: the reset waits until the model has loaded."""
    stored = None if reset else features_stamp(conn)
    if stored is None:
        return model, None
    precision = stored["embedding_precision"] if config.EMBED_PRECISION == "auto" else None
    return (stored["embedding_model"] if model == "auto" else model), precision


def reset_if_asked(conn, reset):
    """``--reset-features``: called only once the new model is known to load, so a run that
    cannot extract never throws the old features away."""
    if reset:
        reset_features(conn)


def store_results(conn, rows, results):
    """One batch or shard in one transaction. rows: (id, path, size, mtime_ns) pending rows;
    results: per row, (content_hash, {column: blob}) or the reason it is unusable."""
    extracted, failed = [], []
    for (image_id, path, size, mtime_ns), result in zip(rows, results):
        if isinstance(result, str):
            log.warning("skipped %s: %s", path, result)
            failed.append((image_id, size, mtime_ns, result))
        else:
            extracted.append((image_id, size, mtime_ns, result[0], result[1]))
    write_batch(conn, extracted, failed)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt():
    """`kill` stops a run as cleanly as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """Images saved in this run, shown on a tqdm bar (which counts nothing when disabled)."""

    def __init__(self, bar):
        self.bar, self.done = bar, 0

    def update(self, n):
        self.done += n
        self.bar.update(n)


@contextmanager
def progress(total, desc, enabled=True):
    """A bar with images/s and ETA; Ctrl-C or SIGTERM inside it logs how far the run got."""
    bar = tqdm(total=total, desc=desc, unit="img", disable=not enabled, smoothing=0.1)
    counter = Progress(bar)
    try:
        with sigterm_as_interrupt(), logging_redirect_tqdm():
            yield counter
    except KeyboardInterrupt:
        bar.close()
        log.warning("interrupted: %d of %d images extracted and saved in this run; "
                    "run the same command again to continue where it stopped", counter.done, total)
        raise ReportedInterrupt() from None
    finally:
        bar.close()


def finish(conn, done, build_index):
    """Drop orphaned features, get derived files ready for queries, and summarise the DB."""
    removed = delete_orphans(conn)
    if removed:
        log.info("removed features of %d files that are gone", removed)
    if build_index:
        prepare_for_queries(conn)
    counts = count_by_status(conn)
    return {"ok": counts.get("ok", 0), "error": counts.get("error", 0), "done_now": done,
            "reasons": error_reasons(conn)}


def prepare_for_queries(conn):
    """Build (or keep, if current) the Annoy index and every mode's matrix cache, so the
    first query of any mode and metric is fast."""
    from search import ann, store
    from search.metrics import MODES

    loaded = store.load(conn, "embeddings")
    if len(loaded.ids):
        ann.get_index(loaded)
    for mode in MODES:
        store.load(conn, mode)


def summary_line(result):
    reasons = "; ".join(f"{reason} ({n})" for reason, n in result["reasons"]) or "none"
    return f"{result['ok']} images ok, {result['error']} skipped: {reasons}"
