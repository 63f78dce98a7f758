"""The index behind ``ann_cosine``: built once, by one process, saved next to the DB, never used stale.

Which index is ``config.ANN_INDEX`` (search.ann.kinds: faiss' IVF by default, or Annoy).
Either one only names candidate rows; they are re-scored with exact cosine on the loaded
matrix, so the distances reported are exact and only the choice of rows is approximate.

The index file and its stamp (kind and settings, features version, rows, dimension, seed, and
the index file's inode, size and mtime) are written under temporary names and renamed into
place, stamp last. Before use the stamp must match the loaded matrix and the file, and sampled
rows read back from the index must equal the matrix's; anything else (a crash between the two
renames, a damaged or foreign file) is rebuilt rather than trusted. The index follows the
features version (db.versions), so a rescan that adds pending rows or moves files keeps it.

One builder at a time: a process that finds the index stale builds it while holding
``<mode>.build.lock`` beside it; other query processes meanwhile, and every query process
while main.py is extracting (it builds the index when it ends), answer ``ann_cosine`` with
exact cosine and say so once in the log. A disk that refuses the index file costs a warning,
and the process keeps the index it built in memory.
"""
import fcntl
import json
import logging
import os
import shutil

import numpy as np
from tqdm import tqdm

import config
from config import InvalidInputError
from db.versions import extraction_running
from fileio import atomic_write, read_json, remove_dead_temporaries, write_with
from search import metrics
from search.ann.kinds import KINDS

log = logging.getLogger(__name__)

_OPEN = {}  # index path -> (stamp, index)
_SAID = set()  # (index path, features version, why): what the log was told already


def index_dir(db_file):
    return os.fspath(db_file) + ".ann"


def index_file(db_file, mode, kind=None):
    """Where the index of ``mode`` lives (``kind``: config.ANN_INDEX unless named)."""
    return os.path.join(index_dir(db_file), f"{mode}.{kind or config.ANN_INDEX}")


def _stamp_path(db_file, mode):
    return os.path.join(index_dir(db_file), f"{mode}.json")


def wanted_stamp(loaded, kind):
    """What the saved index of ``kind`` must have been built from and with, to be used."""
    rows = int(len(loaded.matrix))
    return {"kind": kind, **KINDS[kind].settings(rows), "features_version": loaded.features_version, "rows": rows,
            "dim": int(loaded.matrix.shape[1]), "seed": config.ANN_SEED,
            "vectors": loaded.transform}  # built on the search vectors (search.transform) it will be queried with


def unit_matrix(loaded):
    """The loaded matrix with unit rows, shared with exact cosine (search.modes)."""
    return loaded.prepare("unit", metrics.unit_rows)


def build(unit, kind=None, seed=None, progress=False):
    """An index of ``kind`` (config.ANN_INDEX unless named) over the rows of ``unit`` (row i = item i)."""
    kind = kind or config.ANN_INDEX
    if kind not in KINDS:
        raise InvalidInputError(f"unknown index kind {kind!r}; choose one of: {', '.join(sorted(KINDS))}")
    if not len(unit):
        raise ValueError("an index needs at least one row")
    with tqdm(total=len(unit), desc=f"{kind} index", unit="row", disable=None if progress else True,
              leave=False) as bar:
        return KINDS[kind].build(unit, config.ANN_SEED if seed is None else seed, progress=bar.update)


def get_index(loaded, wait=True):
    """The index (of config.ANN_INDEX's kind) for ``loaded`` (a search.matrix_cache.Loaded), loaded or
    (re)built as needed.

    With ``wait`` False (queries) None instead of building while another process builds it
    or main.py extracts into the DB; with ``wait`` True (main.py) it waits for another builder.
    """
    kind = config.ANN_INDEX
    path = index_file(loaded.db_file, loaded.mode, kind)
    stamp_path = _stamp_path(loaded.db_file, loaded.mode)
    wanted = wanted_stamp(loaded, kind)
    cached = _OPEN.get(path)
    if cached is not None and cached[0] == wanted:
        return cached[1]
    index = _load_trusted(path, stamp_path, wanted, loaded)
    if index is not None:
        _OPEN[path] = (wanted, index)
        return index
    if not wait and extraction_running(loaded.db_file):
        _say_once(path, wanted, "main.py is extracting into this DB; it builds the index when it ends")
        return None
    lock = _build_lock(path, loaded.mode, wait)
    if lock is None:
        _say_once(path, wanted, "another process is building the index")
        return None
    try:
        index = _load_trusted(path, stamp_path, wanted, loaded)  # built meanwhile by the other one?
        if index is None:
            index = _build_and_save(loaded, path, stamp_path, wanted, wait)
    finally:
        if lock is not True:
            lock.close()  # releases the flock
    _OPEN[path] = (wanted, index)
    return index


def _build_lock(path, mode, wait):
    """The open lock file, held; None if another process holds it and ``wait`` is False;
    True when there is no folder to lock in (then nothing can be saved either)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fh = open(os.path.join(os.path.dirname(path), f"{mode}.build.lock"), "a+")
    except OSError:
        return True
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _build_and_save(loaded, path, stamp_path, wanted, progress):
    log.info("building the %s index for %s (%d rows)", wanted["kind"], loaded.mode, wanted["rows"])
    index = build(unit_matrix(loaded), wanted["kind"], wanted["seed"], progress=progress)
    folder = os.path.dirname(path)
    remove_dead_temporaries(folder, os.path.basename(path))
    identity = []
    try:
        write_with(path, lambda tmp: identity.extend(_save(index, tmp)))
        with atomic_write(stamp_path, "w") as fh:
            json.dump({"index": wanted, "file": identity}, fh)
    except OSError as exc:  # a full disk or a read-only folder: the temporary files are gone already
        log.warning("cannot save the %s index in %s (%s); this process keeps it in memory, and the next "
                    "one builds it again (free disk space or make the folder writable)", wanted["kind"], folder, exc)
        return index
    _remove_unused(folder, loaded.mode, wanted["kind"], loaded.db_file)
    return index


def _remove_unused(folder, mode, kind, db_file):
    """Once the new index is saved: the other kind's file (IR_ANN_INDEX changed) and the
    folder of older versions (<db>.annoy/) are never read again, and only take disk space."""
    unused = [os.path.join(folder, f"{mode}.{other}") for other in KINDS if other != kind]
    for path in unused + [os.fspath(db_file) + ".annoy"]:
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
            else:
                continue
        except OSError as exc:  # read-only: harmless, it is never read
            log.warning("cannot remove the unused %s (%s)", path, exc)
            continue
        log.info("removed the unused %s", path)


def _say_once(path, wanted, why):
    key = (path, wanted["features_version"], why)
    if key not in _SAID:
        _SAID.add(key)
        log.info("the %s index of %s is not ready (%s): ann_cosine answers with exact cosine meanwhile",
                 wanted["kind"], os.path.basename(path).rsplit(".", 1)[0], why)


def _load_trusted(path, stamp_path, wanted, loaded, samples=8):
    """The saved index if its stamp, its file and a sample of its rows match, else None."""
    stamp = read_json(stamp_path)
    if not isinstance(stamp, dict) or stamp.get("index") != wanted or stamp.get("file") != _identity(path):
        return None
    index = KINDS[wanted["kind"]].load(path, wanted["dim"])
    if index is None or index.rows != wanted["rows"]:
        return None
    unit = unit_matrix(loaded)
    rows = np.unique(np.linspace(0, len(unit) - 1, samples).astype(np.int64)) if len(unit) else np.zeros(0, np.int64)
    return index if index.check(unit, rows) else None


def _identity(path):
    """[inode, size, mtime_ns] of a file, or None: tells a file from any later replacement."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def search(loaded, query_row, top_k, exclude=()):
    """(rows, exact cosine distances) of the approximate ``top_k`` nearest rows to ``query_row``,
    leaving out the rows in ``exclude``; None when the index cannot give min(top_k, rows
    left) of them (then the caller answers with exact cosine)."""
    exclude = np.unique(np.asarray(exclude, dtype=np.int64))
    wanted = min(top_k, len(loaded.matrix) - len(exclude))
    if wanted <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    index = get_index(loaded, wait=False)
    if index is None:
        return None
    rows, distances = query(index, unit_matrix(loaded), query_row, min(top_k + len(exclude), len(loaded.matrix)))
    keep = ~np.isin(rows, exclude)
    rows, distances = rows[keep][:top_k], distances[keep][:top_k]
    if len(rows) < wanted:
        log.info("the index found %d of the %d results asked for; answering with exact cosine", len(rows), wanted)
        return None
    return rows, distances


def query(index, unit, query_row, k):
    """(rows, cosine distances) of the approximate k nearest rows of ``unit``: the index names
    candidates, exact cosine orders them."""
    unit_query = metrics.unit_rows(np.asarray(query_row, dtype=np.float32)[None, :])[0]
    candidates = np.unique(index.candidates(unit_query, k))
    distances = metrics.cosine_distance(unit[candidates], unit_query)
    best = np.argsort(distances, kind="stable")[:k]
    return candidates[best], distances[best]


def _save(index, tmp):
    """Save the index to ``tmp``; returns the identity it keeps once renamed into place."""
    index.save(tmp)
    return _identity(tmp)
