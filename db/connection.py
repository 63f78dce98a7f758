"""Opening a DB: WAL mode, schema creation, version check and the writer lock.

WAL lets queries read a consistent snapshot while ``main.py`` writes; the lock file lets
exactly one extractor write at a time.
"""
import fcntl
import os
import sqlite3

from db.errors import DatabaseBusyError, DatabaseError, DatabaseNotFoundError, NotADatabaseError, SchemaVersionError

SCHEMA_VERSION = 3
# How an older DB becomes the current one, in place and in one transaction: version -> statements.
# 2: a file's ctime and inode, so a replacement with the same size and mtime is noticed (NULL
#    in the rows of a version-1 DB until its next scan records them); the moved_out table; the
#    EXIF facts (NULL until main.py reads them from the files' headers: db.exif).
# 3: the keypoints table (db.keypoints; filled by main.py's next run from the files).
_MIGRATIONS = {
    1: ("ALTER TABLE images ADD COLUMN ctime_ns INTEGER", "ALTER TABLE images ADD COLUMN inode INTEGER",
        "ALTER TABLE images ADD COLUMN taken TEXT", "ALTER TABLE images ADD COLUMN camera_make TEXT",
        "ALTER TABLE images ADD COLUMN camera_model TEXT", "ALTER TABLE images ADD COLUMN gps_lat REAL",
        "ALTER TABLE images ADD COLUMN gps_lon REAL", "ALTER TABLE images ADD COLUMN orientation INTEGER",
        "ALTER TABLE images ADD COLUMN exif_read INTEGER"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,      -- relative to meta.dataset_root, '/' separated
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    width        INTEGER,
    height       INTEGER,
    status       TEXT NOT NULL,             -- pending | ok | error
    reason       TEXT,                      -- one line, for status = error
    content_hash BLOB,                      -- blake2b-128 of the file bytes, once extracted
    ctime_ns     INTEGER,
    inode        INTEGER,                   -- with size and mtime: all unchanged, the file is not read again
    taken        TEXT,                      -- EXIF date taken, ISO 8601 in the camera's local time
    camera_make  TEXT,                      -- EXIF
    camera_model TEXT,
    gps_lat      REAL,                      -- EXIF position, degrees (south and west negative)
    gps_lon      REAL,
    orientation  INTEGER,                   -- EXIF 1..8
    exif_read    INTEGER                    -- 1 once the header was read (NULL: main.py back-fills it)
);
CREATE INDEX IF NOT EXISTS images_status ON images(status);
CREATE INDEX IF NOT EXISTS images_content_hash ON images(content_hash);
CREATE TABLE IF NOT EXISTS features (
    content_hash BLOB PRIMARY KEY,          -- identical files share one row
    embedding    BLOB NOT NULL,             -- little-endian float32
    rgb          BLOB NOT NULL,             -- little-endian float32, L1-normalised
    ahash        BLOB NOT NULL,             -- packed bits, most significant first
    dhash        BLOB NOT NULL,
    phash        BLOB NOT NULL
);
"""

# Files find_duplicates.py --move-to took out of the collection (issue 18, item 5): their images
# rows leave (searches must not return them) but their facts stay here, so the next scan reports
# them as moved out rather than deleted, main.py --prune keeps their features, and --undo puts the
# rows back as ok without extraction. A DB of schema 1 gets it from its migration to 2.
MOVED_OUT_DDL = """
CREATE TABLE IF NOT EXISTS moved_out (
    path         TEXT PRIMARY KEY,          -- as images.path: relative to meta.dataset_root
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    width        INTEGER,
    height       INTEGER,
    content_hash BLOB NOT NULL,             -- its features row stays, keyed by this
    manifest     TEXT NOT NULL,             -- the undo manifest that lists the move
    reported     INTEGER NOT NULL DEFAULT 0 -- 1 once a generator.py summary has said so
);
"""
_SCHEMA += MOVED_OUT_DDL
_MIGRATIONS[1] += (MOVED_OUT_DDL,)

# A reviewer's duplicate decisions (db/decisions.py), keyed by content hash so they survive
# rescans, moves, renames and re-extraction.
DECISIONS_DDL = """
CREATE TABLE IF NOT EXISTS duplicate_decisions (
    decision   TEXT NOT NULL,               -- 'apart': a and b are not duplicates, 'keep': a is kept
    a          BLOB NOT NULL,               -- content hash ('apart': the smaller of the two)
    b          BLOB NOT NULL DEFAULT x'',   -- content hash ('apart'), empty for 'keep'
    decided_ns INTEGER NOT NULL,            -- when (ns since the epoch)
    PRIMARY KEY (decision, a, b)
);
"""
_SCHEMA += DECISIONS_DDL
_MIGRATIONS[1] += (DECISIONS_DDL,)

# Each picture's keypoints and tiny copy for the duplicate finder's alignment (db/keypoints.py,
# features.keypoints), keyed by content hash like its features.
KEYPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS keypoints (
    content_hash BLOB PRIMARY KEY,
    data         BLOB NOT NULL              -- features.keypoints.to_bytes
) WITHOUT ROWID;
"""
_SCHEMA += KEYPOINTS_DDL
_MIGRATIONS[2] = (KEYPOINTS_DDL,)

NOT_SQLITE = "{path} is not an SQLite database: pass the DB made by generator.py"


def connect(path: str | os.PathLike, create: bool = False) -> sqlite3.Connection:
    """Open the project DB at ``path``; with ``create`` make it (and its schema) if missing.

    Raises DatabaseNotFoundError, NotADatabaseError or SchemaVersionError with a message
    that says what to do.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise NotADatabaseError(f"{path} is a folder: pass the database file made by generator.py")
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if not exists and not create:
        raise DatabaseNotFoundError(f"no database at {path}: run `python generator.py --db {path}` first")
    try:
        conn = sqlite3.connect(path, timeout=30)
        if exists:
            _check_header(conn, path)
        blank = _unfinished(conn)  # made by a create that was killed before it committed
        if blank and not create:
            conn.close()
            raise DatabaseNotFoundError(f"{path} is an empty database: run `python generator.py --db {path}` first")
        if not blank:
            _check_version(conn, path)  # before any write: another program's DB stays untouched
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path} ({exc}): check that its folder exists and is writable") from None
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    if blank:
        _create_schema(conn)
    return conn


def _check_header(conn: sqlite3.Connection, path: str) -> None:
    """SQLite reads the header itself: opening the file any other way and closing it would drop
    every POSIX lock SQLite holds on it in this process (see tests/test_reliability_locks.py)."""
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_NOTADB:
            conn.close()
            raise NotADatabaseError(NOT_SQLITE.format(path=path)) from None
        # a damaged DB with a valid header: _check_version says it is not one of ours


def copy_database(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a DB through SQLite's backup API: a file copy would miss what is still in the WAL,
    and its open/close of the file would drop this process's locks on it."""
    src = connect(source)
    try:
        dst = sqlite3.connect(os.fspath(target))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    finally:
        src.close()


_OWN_TABLES = {"meta", "images", "features", "moved_out"}


def _unfinished(conn: sqlite3.Connection) -> bool:
    """True for a DB without tables, or with some of ours, no version and no rows: what a
    create killed part-way leaves (today's create is atomic; older code's was not)."""
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return True
        if not tables <= _OWN_TABLES or "meta" in tables and conn.execute(
                "SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone():
            return False
        return all(conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] == 0 for name in tables - {"meta"})
    except sqlite3.DatabaseError:
        return False  # not readable as a DB: _check_version says so


def _create_schema(conn: sqlite3.Connection) -> None:
    """Tables, indexes and the version in one transaction: a kill part-way leaves a blank DB
    that the next run creates again, never tables without a version (refused for ever)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?), ('generation', '0')",
            (str(SCHEMA_VERSION),),
        )
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


# Failures of the storage rather than of the file's content (a read-only folder cannot hold the
# WAL's -shm, so even a read fails with READONLY): said as "cannot open", not "not a database".
_STORAGE_CODES = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY,
                  sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PERM}


def _check_version(conn: sqlite3.Connection, path: str) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if (exc.sqlite_errorcode or 0) & 0xFF in _STORAGE_CODES:  # the file is fine, where it lives is not
            raise
        raise NotADatabaseError(f"{path} is not a database of this project ({exc}): use another --db") from None
    if row is not None and int(row[0]) in _MIGRATIONS:
        _migrate(conn)
        return
    if row is None or int(row[0]) != SCHEMA_VERSION:
        conn.close()
        found = row[0] if row else "none"
        raise SchemaVersionError(
            f"{path} has schema version {found}, this code needs {SCHEMA_VERSION}: "
            f"rebuild it with `python generator.py --db NEW.db` and `python main.py --db NEW.db`"
        )


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a DB of an older schema up to SCHEMA_VERSION, unless another process just did."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        while version in _MIGRATIONS:
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            version += 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def database_file(conn: sqlite3.Connection) -> str:
    """The file behind a connection (or cursor's connection), for per-file caches."""
    for _, name, filename in conn.execute("PRAGMA database_list"):
        if name == "main":
            return filename
    raise NotADatabaseError("the connection has no main database")


_HELD_LOCKS = set()  # lock files this process holds open


def _close_inherited_locks():
    """In a forked child (a decode worker): drop our copies of the parent's lock files.

    An flock belongs to the open file, which fork shares: without this, a worker left
    behind by a SIGKILLed main.py would keep the DB locked and block the rerun.
    """
    for fh in _HELD_LOCKS:
        fh.close()
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


class WriterLock:
    """An exclusive, non-blocking lock on ``<db>.lock``: one extractor per DB.

    The OS drops the lock when the process dies, so a killed run never leaves it stale.
    """

    SUFFIX = ".lock"
    BUSY = ("another main.py is already extracting into this DB (lock {path}); "
            "wait for it to finish, it does the same work")

    def __init__(self, db_path: str | os.PathLike):
        self.path = os.fspath(db_path) + self.SUFFIX
        self._fh = None

    def __enter__(self) -> "WriterLock":
        try:
            self._fh = open(self.path, "a+")
        except OSError as exc:  # a read-only folder or drive: the same one line as any DB that cannot be written
            raise DatabaseError(f"cannot write the lock file {self.path} ({exc.strerror or exc}): "
                                f"check that the DB's folder is writable") from None
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise DatabaseBusyError(self.BUSY.format(path=self.path)) from None
        _HELD_LOCKS.add(self._fh)
        return self

    def __exit__(self, *exc) -> None:
        _HELD_LOCKS.discard(self._fh)
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


class ScanLock(WriterLock):
    """One generator.py scan per DB at a time; a rescan may run beside an extraction."""

    SUFFIX = ".scan.lock"
    BUSY = "another generator.py is already scanning this DB (lock {path}); wait for it to finish"
