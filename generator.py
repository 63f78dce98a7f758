"""Scan the photo collection into the DB: one row per image file, cheap to run again.

A rescan reads only what changed: new files get a row, files whose size or mtime changed
are marked for re-extraction, deleted files lose their row, and a file that moved (same
bytes under a new name) keeps its row and features without being extracted again.

"Cannot see the files" is never taken for "the files are gone" (missing or empty folder,
unlistable folder, too many deletions at once). The walk commits batch by batch and holds
one batch in memory: a kill keeps the finished batches, and the same command goes on.

    python generator.py --data ~/Pictures --db photos.db
"""
import argparse
import logging
import os
import stat
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from PIL import Image
from tqdm import tqdm

import config
from cli import UsageError, run, setup_logging
from cli.collection_root import RELOCATION_SAMPLE, refuse_system_folder, relocate_collection
from config import InvalidInputError
from db import ScanLock, connect
from db.images import (
    ERROR,
    PENDING,
    ChangedRow,
    Header,
    Identity,
    ImageRow,
    KnownFile,
    count_images,
    delete_images,
    known_files,
)
from db.meta import claim_dataset_root
from db.moved_out import report_moved_out
from db.scan import (
    ScanRange,
    apply_moves,
    begin_scan,
    commit_batch,
    count_gone,
    count_not_checked,
    count_rows,
    end_scan,
    files_to_hash,
    forget_new_rows,
    gone_page,
    mark_unchecked,
    move_page,
    pair_moves,
    record_digests,
)
from features.decode import content_hash, limit_pixels, open_image
from fileio import is_empty_folder

log = logging.getLogger("generator")

# The reason extraction (features.decode) gives a file it could not find. The walk just found
# it, so the row is checked again: a drive unmounted during main.py must not fail it for ever.
VANISHED = "file disappeared"


@dataclass
class ScanSummary:
    files: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    deleted: int = 0
    unreadable: int = 0
    not_checked: int = 0  # rows kept as they were: their folder could not be listed
    moved_out: int = 0  # by find_duplicates.py --move-to since the last scan: not deletions
    unlisted: list[str] = field(default_factory=list)

    def __str__(self):
        line = (f"scanned {self.files} files: {self.new} new, {self.changed} changed, {self.moved} moved, "
                f"{self.deleted} deleted, {self.unreadable} unreadable")
        if self.unlisted:
            folders = ", ".join(f or "." for f in self.unlisted[:3]) + (", ..." if len(self.unlisted) > 3 else "")
            plural = "folder" if len(self.unlisted) == 1 else "folders"
            line += f", {self.not_checked} not checked ({len(self.unlisted)} {plural} could not be listed: {folders})"
        if self.moved_out:
            line += f", {self.moved_out} moved out by find_duplicates.py"
        return line


def walk_images(root: str, extensions: Collection[str], unlisted: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (relative posix path, absolute path) of every image file under ``root``.

    Directory symlinks are not followed (no loops); file symlinks are yielded and checked
    by the caller. Folders that cannot be listed are appended to ``unlisted``.
    """
    def cannot_list(exc):
        log.warning("cannot list %s: its rows are kept as they are (not checked)", exc.filename)
        if unlisted is not None:
            unlisted.append(exc.filename)

    for folder, dirs, files in os.walk(root, onerror=cannot_list):
        dirs.sort()
        prefix = os.path.relpath(folder, root).replace(os.sep, "/") + "/"  # once per folder: relpath is slow
        prefix = "" if prefix == "./" else prefix
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in extensions:
                yield prefix + name, os.path.join(folder, name)


def describe_header(full: str, root: str) -> Header:
    """What stat and the image header alone say about a file (no decoding)."""
    try:
        st = os.stat(full)
    except OSError:
        return Header(0, 0, None, None, ERROR, "broken symlink or vanished file")
    if os.path.islink(full) and os.path.commonpath([os.path.realpath(full), root]) != root:
        return Header(st.st_size, st.st_mtime_ns, None, None, ERROR, "symlink points outside the dataset")
    if not stat.S_ISREG(st.st_mode):  # a named pipe would block the scan forever
        return Header(st.st_size, st.st_mtime_ns, None, None, ERROR, "not a regular file")
    try:
        with warnings.catch_warnings(), limit_pixels(config.MAX_IMAGE_PIXELS):
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_image(full) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        return Header(st.st_size, st.st_mtime_ns, None, None, ERROR, "more than twice the decompression-bomb limit")
    except PermissionError:
        return Header(st.st_size, st.st_mtime_ns, None, None, ERROR, "no permission to read the file")
    except Exception as exc:  # Pillow raises many types for a bad header; all mean "not usable"
        reason = "empty file" if st.st_size == 0 else f"not a readable image ({type(exc).__name__})"
        return Header(st.st_size, st.st_mtime_ns, None, None, ERROR, reason)
    return Header(st.st_size, st.st_mtime_ns, width, height, PENDING, None)


def _file_digest(full):
    try:
        with open(full, "rb") as fh:
            return content_hash(fh.read())
    except OSError:
        return None


def scan(data_dir: str | os.PathLike, db_path: str | os.PathLike, extensions: Collection[str] = config.IMAGE_EXTENSIONS,
         batch_size: int = config.SCAN_BATCH_SIZE, progress: bool = True, allow_deletions: bool = False,
         relocate: bool = False, force: bool = False) -> ScanSummary:
    """Bring the DB's rows in line with the files under ``data_dir``; returns a ScanSummary.

    Raises UsageError, changing nothing, when the folder is missing, not a folder, a system
    folder (unless ``force``), or empty while the DB has rows, and before deleting more than
    config.DELETION_GUARD_SHARE of the rows unless ``allow_deletions``. ``relocate``: the DB
    indexes another folder that moved here; it is re-pointed once a sample of its files is
    found here with the same bytes (nothing is extracted again).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(extensions, str) or not extensions:
        raise InvalidInputError(f"extensions must be a non-empty list such as {list(config.IMAGE_EXTENSIONS)}")
    if not os.path.exists(data_dir):
        raise UsageError(f"dataset folder {data_dir} does not exist: pass --data with your photo folder "
                         f"(on a drive or share: is it mounted?); nothing was changed")
    if not os.path.isdir(data_dir):
        raise UsageError(f"dataset folder {data_dir} is not a folder: pass --data with your photo folder")
    root = os.path.realpath(data_dir)
    if not force:
        refuse_system_folder(data_dir, root)
    extensions = {e.lower() for e in extensions}
    conn = connect(db_path, create=True)
    try:
        with ScanLock(db_path):
            if relocate:
                relocate_collection(conn, root, _file_digest)
            claim_dataset_root(conn, root)  # another folder's DB: said before anything else
            _refuse_empty_root(conn, data_dir, root)
            return _sync(conn, root, extensions, batch_size, progress, allow_deletions)
    finally:
        conn.close()


def _refuse_empty_root(conn, data_dir, root):
    """An empty mount point looks exactly like a collection whose files were all deleted."""
    try:
        empty = is_empty_folder(root)
    except OSError as exc:
        raise UsageError(f"cannot list the dataset folder {data_dir} ({exc.strerror}); nothing was changed") from None
    rows = count_images(conn) if empty else 0
    if rows:
        raise UsageError(f"dataset folder {data_dir} is empty but the DB has {rows} images from it: is the drive "
                         f"mounted? Nothing was changed (if the collection is really gone, start a new DB)")


def _sync(conn, root, extensions, batch_size, progress, allow_deletions):
    """The scan proper, under the scan lock: walk and commit batch by batch, then moves and deletions."""
    scan_range = begin_scan(conn)
    summary, batch = ScanSummary(), []
    for item in tqdm(walk_images(root, extensions, summary.unlisted), desc="scanning", unit="file",
                     disable=not progress):
        batch.append(item)
        if len(batch) >= batch_size:
            _check_batch(conn, scan_range, batch, root, summary)
            batch = []
    _check_batch(conn, scan_range, batch, root, summary)
    summary.unlisted = [_relative_folder(folder, root) for folder in summary.unlisted]
    for folder in summary.unlisted:
        mark_unchecked(conn, folder)
    moved, moved_new = _find_moves(conn, scan_range, root, batch_size)
    summary.moved, summary.new = moved, summary.new - moved_new
    gone, summary.not_checked = count_gone(conn, scan_range), count_not_checked(conn, scan_range)
    try:
        _refuse_mass_deletion(gone, count_rows(conn, scan_range), allow_deletions)
    except UsageError:
        forget_new_rows(conn, scan_range)
        raise
    after = 0
    while page := move_page(conn, after, batch_size):
        apply_moves(conn, page)
        after = page[-1].old_id
    after = 0
    while ids := gone_page(conn, scan_range, after, batch_size):
        delete_images(conn, ids)
        after = ids[-1]
    end_scan(conn)
    summary.deleted = gone
    summary.moved_out = report_moved_out(conn)
    return summary


def _check_batch(conn, scan_range, batch, root, summary):
    """Compare one batch of walked files with their rows and commit the difference."""
    files = {}
    for rel, full in batch:
        stored, utf8 = _storable(rel)
        files[stored] = (full, utf8)
    known = known_files(conn, list(files))
    inserts, changes, seen, identities = [], [], [], []
    for rel, (full, utf8) in files.items():
        old = known.get(rel)
        st = _stat_or_none(full)  # a broken link was stored as size 0, mtime 0
        if old is not None:
            seen.append(old.id)
            if _unchanged(old, st, full):
                if st is not None and (old.ctime_ns, old.inode) != (st.st_ctime_ns, st.st_ino):
                    identities.append(Identity(st.st_ctime_ns, st.st_ino, rel))  # the same bytes: recorded only
                continue
        if st is not None:
            identities.append(Identity(st.st_ctime_ns, st.st_ino, rel))
        header = describe_header(full, root) if utf8 else _not_utf8(full)
        if header.status == ERROR:
            log.warning("skipped %s: %s", rel, header.reason)
            summary.unreadable += 1
        if old is None:
            inserts.append(ImageRow(rel, *header))
        else:
            changes.append(ChangedRow(old.id, *header))
    commit_batch(conn, scan_range, inserts, changes, seen, identities)
    summary.files += len(batch)
    summary.new += len(inserts)
    summary.changed += len(changes)


def _unchanged(old: KnownFile, st: os.stat_result | None, full: str) -> bool:
    """True if the file is the one the row describes, so its features still hold.

    Size and mtime first (a changed one means changed); then ctime and inode, which only a
    real replacement or a metadata change moves: those files are read and hashed, and count
    as changed only if their bytes differ from what was extracted. A row with nothing extracted
    (pending, or an error) has no features to protect, and a version-1 row has no ctime or inode
    yet: both are trusted on size and mtime, as before, and the new ctime and inode recorded.
    """
    if old.status == ERROR and (old.reason or "").startswith(VANISHED):
        return False
    if ((st.st_size, st.st_mtime_ns) if st else (0, 0)) != (old.size, old.mtime_ns):
        return False
    if st is None or old.ctime_ns is None or old.content_hash is None:
        return True
    return (old.ctime_ns, old.inode) == (st.st_ctime_ns, st.st_ino) or _file_digest(full) == old.content_hash


def _find_moves(conn, scan_range: ScanRange, root, batch_size) -> tuple[int, int]:
    """Recognise files that moved: rows that are gone and new files with the same bytes.

    Only new files whose size equals a gone row's are read and hashed; the pairing happens
    in SQL. Returns (moves, of which files this scan inserted).
    """
    digests = []
    for row in files_to_hash(conn, scan_range):
        digest = _file_digest(os.path.join(root, row.path))
        if digest is not None:
            digests.append((row.id, digest))
        if len(digests) >= batch_size:
            record_digests(conn, digests)
            digests = []
    record_digests(conn, digests)
    return pair_moves(conn, scan_range)


def _refuse_mass_deletion(gone, total, allow):
    """Many rows gone at once is far more often a missing share or drive than a real deletion."""
    if allow or gone <= config.DELETION_GUARD_MIN_FILES or gone <= config.DELETION_GUARD_SHARE * total:
        return
    raise UsageError(
        f"this rescan would delete {gone} of {total} images ({gone / total:.0%}, more than the "
        f"{config.DELETION_GUARD_SHARE:.0%} allowed): is a drive, share or folder missing? Nothing was deleted; "
        f"if the files are really gone, run again with --allow-deletions")


def _relative_folder(folder, root):
    rel = os.path.relpath(folder, root)
    return "" if rel == "." else _storable(rel.replace(os.sep, "/"))[0]


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
    return Header(size, mtime_ns, None, None, ERROR, "file name is not valid UTF-8: rename the file")


def _stat_or_none(full):
    try:
        return os.stat(full)
    except OSError:
        return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=config.IMAGE_DATA_DIR, help="folder of images (default: %(default)s)")
    parser.add_argument("--db", default=config.DB_PATH, help="SQLite file to write (default: %(default)s)")
    parser.add_argument("--allow-deletions", action="store_true",
                        help=f"delete the rows of missing files even if they are more than "
                             f"{config.DELETION_GUARD_SHARE:.0%}% of the collection")
    parser.add_argument("--relocate", action="store_true",
                        help="the collection moved to --data (another mount point, a renamed folder): re-point the "
                             f"DB after checking that {RELOCATION_SAMPLE} of its files are there, unchanged")
    parser.add_argument("--force", action="store_true", help="scan even a system folder such as / or /proc")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    setup_logging()
    print(scan(args.data, args.db, progress=not args.no_progress, allow_deletions=args.allow_deletions,
               relocate=args.relocate, force=args.force))


if __name__ == "__main__":
    run(main)
