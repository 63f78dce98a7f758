"""One extraction run, whichever executor computes the features.

The driver loop lives here: open the DB and take the writer lock, choose the model (the
DB's own unless it is being reset), start the executor (extraction.local: decode workers
and the network on this machine; extraction.dask: a Dask cluster), check the settings
stamp, stream the pending rows through the executor and store each batch in its own
transaction under a progress bar, then finish: bound the kept unused features, get the
derived files ready, summarise. So a local and a Dask run leave exactly the same DB.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import config
from config import InvalidInputError
from db import WriterLock, connect
from db.exif import store_exif
from db.features import ExtractedRow, FailedRow, count_unused, prune_unused, reset_features, write_batch
from db.images import PendingRow, count_by_status, error_reasons, pending_page, retry_errors
from db.keypoints import store_keypoints
from db.meta import add_to_stamp, check_or_write_stamp, dataset_root, features_stamp
from extraction.exif_backfill import backfill_exif
from extraction.keypoints_backfill import backfill_keypoints
from extraction.progress import progress
from features.extract import BatchResult, Settings
from features.framing import OLD_DBS_FRAMING
from features.network.base import stamp_runtime
from search.matrix_cache import publish_when_due

log = logging.getLogger("main")

PAGE = 2048  # pending rows read from the DB at a time: memory stays flat for any collection


@dataclass(frozen=True)
class Job:
    """What a run was asked to do (the CLI's options)."""

    db_path: str
    model: str = config.EMBEDDING_MODEL
    batch_size: int = config.BATCH_SIZE
    hash_size: int = config.HASH_SIZE
    hist_bins: int = config.HIST_BINS
    reset: bool = False  # --reset-features
    retry: bool = False  # --retry-errors
    prune: bool = False  # --prune
    progress: bool = True
    build_index: bool = True

    def check(self) -> None:
        check_positive(batch_size=self.batch_size, hash_size=self.hash_size, hist_bins=self.hist_bins)

    def settings(self, model: str, framing: str | None = None) -> Settings:
        """The run's settings; ``framing`` None: config.EMBED_FRAMING (a new or reset DB)."""
        return Settings(model=model, hash_size=self.hash_size, hist_bins=self.hist_bins,
                        decode_side=config.DECODE_SIDE, max_pixels=config.MAX_IMAGE_PIXELS,
                        framing=framing or config.EMBED_FRAMING)


@dataclass(frozen=True)
class ModelChoice:
    """The network to load and how it sees pictures: ``precision``/``runtime``/``framing`` None
    mean the configured defaults."""

    model: str
    precision: str | None = None
    runtime: str | None = None
    framing: str | None = None


@dataclass(frozen=True)
class Started:
    """What an executor computes with: a stamp the DB must accept."""

    settings: Settings
    stamp: dict[str, str]


class Executor(Protocol):
    """Where features are computed. ``check_root`` refuses a dataset folder it cannot use;
    ``start`` loads the network for about ``pending`` images; ``run`` turns pending rows into
    (rows, BatchResult) pairs, in any grouping; ``close`` releases processes and clusters."""

    label: str

    def check_root(self, root: str | None) -> None: ...

    def start(self, choice: ModelChoice, job: Job, pending: int) -> Started: ...

    def run(self, rows: Iterator[PendingRow], root: str) -> Iterator[tuple[list[PendingRow], BatchResult]]: ...

    def close(self) -> None: ...


@dataclass
class RunSummary:
    """The DB after a run."""

    ok: int
    error: int
    done_now: int
    reasons: list[tuple[str, int]] = field(default_factory=list)
    unused_features: int = 0  # feature rows kept for files that may come back
    pruned: int = 0

    def line(self) -> str:
        reasons = "; ".join(f"{reason} ({n})" for reason, n in self.reasons) or "none"
        text = f"{self.ok} images ok, {self.error} skipped: {reasons}"
        if self.unused_features:
            text += (f"; features of {self.unused_features} files no longer in the collection kept for re-use "
                     f"(main.py --prune deletes them)")
        return text


def check_positive(**values: int) -> None:
    """ValueError unless every value is a positive integer; hash_size must also be >= 2."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    if values.get("hash_size", 2) < 2:
        raise InvalidInputError(f"hash_size must be at least 2, got {values['hash_size']}")


def extract(job: Job, executor: Executor) -> RunSummary:
    """Extract every pending image of ``job.db_path`` with ``executor``."""
    job.check()
    conn = connect(job.db_path)
    try:
        with WriterLock(job.db_path):  # a bad DB or a busy one is reported before any slow start
            return _run(conn, job, executor)
    finally:
        conn.close()


def _run(conn: sqlite3.Connection, job: Job, executor: Executor) -> RunSummary:
    root = dataset_root(conn)
    counts = count_by_status(conn)
    if job.reset:
        todo = sum(counts.values())
    else:
        todo = counts.get("pending", 0) + (counts.get("error", 0) if job.retry else 0)
    if todo:
        executor.check_root(root)  # before anything changes: an unmounted drive is not "every file gone"
    try:
        started = executor.start(model_for_run(conn, job.model, job.reset), job, todo)
        if job.reset:  # only now that the new model loaded: a run that cannot extract keeps the old features
            reset_features(conn)
        record_runtime_of_old_stamp(conn)
        record_framing_of_old_stamp(conn)
        check_or_write_stamp(conn, started.stamp)  # before --retry-errors or --prune change anything
        if job.retry:
            log.info("retrying %d files that failed before", retry_errors(conn))
        backfill_exif(conn, root, job.progress)  # DBs extracted before the EXIF columns: headers only
        backfill_keypoints(conn, root, job.progress)  # no keypoints yet, or of an older format: a decode each
        pruned = prune_unused(conn) if job.prune else 0
        if pruned:
            log.info("deleted the features of %d files no longer in the collection", pruned)
        with progress(count_by_status(conn).get("pending", 0), executor.label, job.progress) as saved:
            for rows, result in executor.run(pending_rows(conn), root):
                store_results(conn, rows, result)
                saved.update(len(rows))
                if job.build_index:  # queries during the run use what it publishes (search.matrix_cache)
                    publish_when_due(conn)
    finally:
        executor.close()
    return finish(conn, saved.done, job.build_index, pruned)


def model_for_run(conn: sqlite3.Connection, model: str, reset: bool) -> ModelChoice:
    """The network to load: ``auto`` keeps the model the DB was built with, an ``auto`` precision
    keeps its precision, and the DB keeps its framing (unless the DB is being reset: then
    config.EMBED_FRAMING). Changes nothing."""
    stored = None if reset else features_stamp(conn)
    if stored is None:
        return ModelChoice(model)
    model = stored["embedding_model"] if model == "auto" else model
    # The runtime follows from the precision and config.EMBED_RUNTIME; the stamp check refuses a mismatch.
    return ModelChoice(model, stored.get("embedding_precision") if config.EMBED_PRECISION == "auto" else None,
                       framing=stored.get("embedding_framing", OLD_DBS_FRAMING))


def record_runtime_of_old_stamp(conn: sqlite3.Connection) -> None:
    """A DB stamped before runtimes were recorded was made by torch: record that, so that
    runtimes proven equivalent keep working on it (see features.network.base.stamp_runtime)."""
    stored = features_stamp(conn)
    if stored is None or "embedding_runtime" in stored:
        return
    try:
        made_by = stamp_runtime("torch", stored.get("embedding_precision", "unrecorded"))
    except InvalidInputError:
        return  # older still (no precision recorded): the stamp check asks for --reset-features
    add_to_stamp(conn, {"embedding_runtime": made_by})


def record_framing_of_old_stamp(conn: sqlite3.Connection) -> None:
    """A DB stamped before framings were recorded was made from centre crops: record that, so it
    keeps its framing (new pictures are cropped as its old ones were) until --reset-features."""
    stored = features_stamp(conn)
    if stored is not None and "embedding_framing" not in stored:
        add_to_stamp(conn, {"embedding_framing": OLD_DBS_FRAMING})


def pending_rows(conn: sqlite3.Connection, page: int | None = None) -> Iterator[PendingRow]:
    """Every pending row by id, read ``page`` (default PAGE) at a time; rows written meanwhile
    are not re-read."""
    after = 0
    while True:
        rows = pending_page(conn, after, page or PAGE)
        if not rows:
            return
        after = rows[-1].id
        yield from rows


def store_results(conn: sqlite3.Connection, rows: list[PendingRow], result: BatchResult) -> None:
    """One batch or shard in one transaction; a file that cannot be used is logged once."""
    if len(rows) != len(result.files):
        raise RuntimeError(f"{len(result.files)} results for {len(rows)} images")
    extracted, failed = [], []
    for row, outcome in zip(rows, result.files):
        if outcome.error is not None:
            log.warning("skipped %s: %s", row.path, outcome.error)
            failed.append(FailedRow(row.id, row.size, row.mtime_ns, outcome.error))
        else:
            extracted.append(ExtractedRow(row.id, row.size, row.mtime_ns, outcome.content_hash))
    write_batch(conn, extracted, failed, result.computed_hashes, result.features)
    store_keypoints(conn, [(f.content_hash, f.keypoints) for f in result.files if f.computed and f.keypoints])
    store_exif(conn, [(row.id, outcome.exif) for row, outcome in zip(rows, result.files)
                      if outcome.error is None and outcome.exif is not None])


def finish(conn: sqlite3.Connection, done: int, build_index: bool, pruned: int = 0) -> RunSummary:
    """Keep unused features within config.MAX_UNUSED_FEATURES, get derived files ready for
    queries, and summarise the DB."""
    unused = count_unused(conn)
    if unused > config.MAX_UNUSED_FEATURES:
        dropped = prune_unused(conn, keep=config.MAX_UNUSED_FEATURES)
        log.info("deleted the features of the %d files longest out of the collection (more than "
                 "IR_MAX_UNUSED_FEATURES=%d were kept)", dropped, config.MAX_UNUSED_FEATURES)
        unused, pruned = unused - dropped, pruned + dropped
    if build_index:
        prepare_for_queries(conn)
    counts = count_by_status(conn)
    return RunSummary(ok=counts.get("ok", 0), error=counts.get("error", 0), done_now=done,
                      reasons=[tuple(r) for r in error_reasons(conn)], unused_features=unused, pruned=pruned)


def prepare_for_queries(conn: sqlite3.Connection) -> None:
    """Build (or keep, if current) the ann_cosine index and every mode's matrix cache, so the
    first query of any mode and metric is fast."""
    from search import (  # faiss/annoy are heavy; a run with build_index=False (tests, benchmarks) never needs them
        ann,
        matrix_cache,
    )
    from search.modes import MODES

    loaded = matrix_cache.load(conn, "embeddings")
    if len(loaded.ids):
        ann.get_index(loaded)
    for mode in MODES:
        matrix_cache.load(conn, mode)
