"""Creating a DB is atomic: a kill at any point leaves a file the next run creates again.

Old code created the tables one statement at a time: a kill in between left tables without
a schema version, and every later run refused the DB as "schema version none" for ever.
"""
import sqlite3
import subprocess
import sys

import pytest

from db import SCHEMA_VERSION, NotADatabaseError, connect
from db.errors import DatabaseNotFoundError
from reliability_tools import ROOT, query, script_env

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not

# Creates a DB with a progress handler that kills the process after K SQLite VM steps (K from
# argv; 0: never, and print how many steps the whole creation took).
KILL_AFTER_STEPS = """
import os, sqlite3, sys
limit, steps, real_connect = int(sys.argv[2]), [0], sqlite3.connect
def counting_connect(*args, **kwargs):
    conn = real_connect(*args, **kwargs)
    def step():
        steps[0] += 1
        if limit and steps[0] >= limit:
            os._exit(9)  # as abrupt as kill -9: no rollback, no cleanup
        return 0
    conn.set_progress_handler(step, 1)
    return conn
sqlite3.connect = counting_connect
from db import connect
connect(sys.argv[1], create=True).close()
print(steps[0])
"""


def _create(db, kill_after):
    return subprocess.run([sys.executable, "-c", KILL_AFTER_STEPS, str(db), str(kill_after)], cwd=ROOT,
                          capture_output=True, text=True, env=script_env(), timeout=60)


def test_a_create_killed_at_any_step_is_finished_by_the_next_run(tmp_path):
    done = _create(tmp_path / "count.db", 0)
    assert done.returncode == 0, done.stderr
    total = int(done.stdout)
    assert total > 20
    killed = 0
    for k in sorted({1, 2, 3, *range(5, total, max(1, total // 40))}):
        db = tmp_path / f"k{k}.db"
        done = _create(db, k)
        killed += done.returncode == 9
        conn = connect(db, create=True)  # whatever the kill left: usable
        conn.close()
        assert query(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)], k
        assert {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")} == {
            "meta", "images", "features", "moved_out", "duplicate_decisions", "keypoints"}
    assert killed >= 10


def test_tables_without_a_version_from_older_code_are_finished(tmp_path):
    db = tmp_path / "half.db"
    with sqlite3.connect(db) as conn:  # what the old, non-atomic create left after a kill
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
                     " mtime_ns INTEGER NOT NULL, width INTEGER, height INTEGER, status TEXT NOT NULL, reason TEXT,"
                     " content_hash BLOB)")
    conn.close()
    with pytest.raises(DatabaseNotFoundError, match="run `python generator.py"):
        connect(db)  # a reader is told what to do, and does not write
    connect(db, create=True).close()
    assert query(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    connect(db).close()


def test_a_failing_create_leaves_no_tables(tmp_path, monkeypatch):
    import db.connection

    monkeypatch.setattr(db.connection, "_SCHEMA", db.connection._SCHEMA + "CREATE TABLE meta (x);")
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        connect(tmp_path / "f.db", create=True)
    assert query(tmp_path / "f.db", "SELECT name FROM sqlite_master") == []
    monkeypatch.undo()
    connect(tmp_path / "f.db", create=True).close()
    assert query(tmp_path / "f.db", "SELECT COUNT(*) FROM meta WHERE key = 'schema_version'") == [(1,)]


def test_other_programs_databases_are_still_refused_and_untouched(tmp_path):
    foreign = tmp_path / "songs.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs(title TEXT)")
    conn.close()
    with pytest.raises(NotADatabaseError):
        connect(foreign, create=True)
    ours_with_rows = tmp_path / "rows.db"
    with sqlite3.connect(ours_with_rows) as conn:  # no version but data in it: not ours to rewrite
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT)")
        conn.execute("INSERT INTO images(path) VALUES ('a.jpg')")
    conn.close()
    with pytest.raises(Exception, match="schema version none"):
        connect(ours_with_rows, create=True)
    assert query(foreign, "SELECT name FROM sqlite_master") == [("songs",)]
