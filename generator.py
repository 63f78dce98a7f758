"""Scan the photo collection into the DB: one row per image file, cheap to run again.

A rescan reads only what changed: new files get a row, files whose size or mtime changed
are marked for re-extraction, deleted files lose their row, and a file that moved (same
bytes under a new name) keeps its row and features without being extracted again.

    python generator.py --data ~/Pictures --db photos.db
"""
import argparse
import logging
import os
import stat
import warnings
from dataclasses import dataclass

from PIL import Image
from tqdm import tqdm

import config
from cli import UsageError, run, setup_logging
from db import ScanLock, connect
from db.images import ERROR, PENDING, delete_images, insert_images, load_index, move_images, update_changed
from db.meta import claim_dataset_root
from features.decode import content_hash, limit_pixels

log = logging.getLogger("generator")


@dataclass
class ScanSummary:
    files: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    deleted: int = 0
    unreadable: int = 0

    def __str__(self):
        return (f"scanned {self.files} files: {self.new} new, {self.changed} changed, {self.moved} moved, "
                f"{self.deleted} deleted, {self.unreadable} unreadable")


def walk_images(root, extensions):
    """Yield (relative posix path, absolute path) of every image file under ``root``.

    Directory symlinks are not followed (no loops); file symlinks are yielded and checked
    by the caller.
    """
    for folder, dirs, files in os.walk(root, onerror=lambda exc: log.warning("cannot list %s", exc.filename)):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in extensions:
                full = os.path.join(folder, name)
                yield os.path.relpath(full, root).replace(os.sep, "/"), full


def describe_header(full, root):
    """(size, mtime_ns, width, height, status, reason) from stat and the image header only."""
    try:
        st = os.stat(full)
    except OSError:
        return 0, 0, None, None, ERROR, "broken symlink or vanished file"
    if os.path.islink(full) and os.path.commonpath([os.path.realpath(full), root]) != root:
        return st.st_size, st.st_mtime_ns, None, None, ERROR, "symlink points outside the dataset"
    if not stat.S_ISREG(st.st_mode):  # a named pipe would block the scan forever
        return st.st_size, st.st_mtime_ns, None, None, ERROR, "not a regular file"
    try:
        with warnings.catch_warnings(), limit_pixels(config.MAX_IMAGE_PIXELS):
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(full) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        return st.st_size, st.st_mtime_ns, None, None, ERROR, "more than twice the decompression-bomb limit"
    except PermissionError:
        return st.st_size, st.st_mtime_ns, None, None, ERROR, "no permission to read the file"
    except Exception as exc:  # Pillow raises many types for a bad header; all mean "not usable"
        reason = "empty file" if st.st_size == 0 else f"not a readable image ({type(exc).__name__})"
        return st.st_size, st.st_mtime_ns, None, None, ERROR, reason
    return st.st_size, st.st_mtime_ns, width, height, PENDING, None


def _file_digest(full):
    try:
        with open(full, "rb") as fh:
            return content_hash(fh.read())
    except OSError:
        return None


def find_moves(new_rows, deleted):
    """Pair new files with deleted rows holding the same bytes; only equal sizes are hashed.

    new_rows: {rel: (full, size, mtime_ns, width, height, status, reason)};
    deleted: {rel: (id, size, mtime_ns, content_hash)}. Paired entries are removed from
    both and returned as (new_path, mtime_ns, id).
    """
    by_size = {}
    for path, (row_id, size, _, digest) in deleted.items():
        if digest is not None:
            by_size.setdefault(size, []).append((path, row_id, digest))
    moves = []
    for rel, (full, size, mtime_ns, *_, status, _reason) in list(new_rows.items()):
        candidates = by_size.get(size)
        if not candidates or status != PENDING:
            continue
        digest = _file_digest(full)
        for k, (old_path, row_id, old_digest) in enumerate(candidates):
            if digest == old_digest:
                moves.append((rel, mtime_ns, row_id))
                del candidates[k], deleted[old_path], new_rows[rel]
                break
    return moves


def scan(data_dir, db_path, extensions=config.IMAGE_EXTENSIONS, batch_size=1000, progress=True):
    """Bring the DB's rows in line with the files under ``data_dir``; returns a ScanSummary."""
    if not os.path.isdir(data_dir):
        raise UsageError(f"dataset folder {data_dir} does not exist: pass --data with your photo folder")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(extensions, str) or not extensions:
        raise ValueError(f"extensions must be a non-empty list such as {list(config.IMAGE_EXTENSIONS)}")
    root = os.path.realpath(data_dir)
    extensions = {e.lower() for e in extensions}
    conn = connect(db_path, create=True)
    try:
        with ScanLock(db_path):
            return _sync(conn, root, extensions, batch_size, progress)
    finally:
        conn.close()


def _sync(conn, root, extensions, batch_size, progress):
    """The scan proper, under the scan lock: compare the folder with the DB and apply the difference."""
    claim_dataset_root(conn, root)
    index = load_index(conn)
    summary, seen, new_rows, changed_rows, changed_paths = ScanSummary(), set(), {}, [], []
    for rel, full in tqdm(walk_images(root, extensions), desc="scanning", unit="file", disable=not progress):
        summary.files += 1
        rel, utf8 = _storable(rel)
        seen.add(rel)
        old = index.get(rel)
        if old is not None:
            st = _stat_or_none(full)  # a broken link was stored as size 0, mtime 0
            if ((st.st_size, st.st_mtime_ns) if st else (0, 0)) == (old[1], old[2]):
                continue
        row = describe_header(full, root) if utf8 else _not_utf8(full)
        if old is None:
            new_rows[rel] = (full, *row)
        else:
            changed_rows.append((*row, old[0]))
            changed_paths.append(rel)
    deleted = {path: row for path, row in index.items() if path not in seen}
    moves = find_moves(new_rows, deleted)
    inserts = [(rel, *row[1:]) for rel, row in new_rows.items()]
    for start in range(0, len(inserts), batch_size):
        insert_images(conn, inserts[start:start + batch_size])
    for start in range(0, len(changed_rows), batch_size):
        update_changed(conn, changed_rows[start:start + batch_size])
    if moves:
        move_images(conn, moves)
    deleted_ids = [row[0] for row in deleted.values()]
    for start in range(0, len(deleted_ids), batch_size):
        delete_images(conn, deleted_ids[start:start + batch_size])
    unusable = [(row[0], row[-1]) for row in inserts if row[-2] == ERROR]
    unusable += [(rel, r[-2]) for rel, r in zip(changed_paths, changed_rows) if r[-3] == ERROR]
    for rel, reason in unusable:
        log.warning("skipped %s: %s", rel, reason)
    summary.new, summary.changed, summary.moved, summary.deleted = len(inserts), len(changed_rows), len(moves), len(deleted)
    summary.unreadable = len(unusable)
    return summary


def _storable(rel):
    """(path as stored, is valid UTF-8): an undecodable name is kept, escaped, as an error row."""
    try:
        rel.encode("utf-8")
        return rel, True
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace"), False


def _not_utf8(full):
    st = _stat_or_none(full)
    size, mtime_ns = (st.st_size, st.st_mtime_ns) if st else (0, 0)
    return size, mtime_ns, None, None, ERROR, "file name is not valid UTF-8: rename the file"


def _stat_or_none(full):
    try:
        return os.stat(full)
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=config.IMAGE_DATA_DIR, help="folder of images (default: %(default)s)")
    parser.add_argument("--db", default=config.DB_PATH, help="SQLite file to write (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    setup_logging()
    print(scan(args.data, args.db, progress=not args.no_progress))


if __name__ == "__main__":
    run(main)
