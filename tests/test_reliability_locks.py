"""SQLite's own locks are the only thing that keeps one process from deleting the WAL another
still reads: nothing in this project may open the DB file any other way.

On Linux and macOS, closing *any* descriptor of a file drops every POSIX lock the process holds
on it (SQLite's "How To Corrupt An SQLite Database File", 2.2). A process that opened the DB
file itself, even only to read its header, is then invisible to the next program that closes
its connection: that one checkpoints and deletes ``-wal`` and ``-shm`` under it.
"""
import builtins
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import db
from db import NotADatabaseError, connect, copy_database

OPEN_AND_CLOSE = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                  "c.execute('SELECT 1 FROM meta').fetchall(); c.close()")
ADD_ROW = textwrap.dedent("""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1])
    c.execute("INSERT INTO meta(key, value) VALUES ('written_by', 'C')")
    c.commit()
    c.close()
""")


def _other_process(code, db_path):
    subprocess.run([sys.executable, "-c", code, str(db_path)], check=True, timeout=60)


def test_a_second_connect_keeps_the_first_ones_locks(tmp_path):
    """A connects twice; B opens and closes the DB; C commits a row: A must still see C's row,
    and B must not have deleted the WAL that A's connections are using."""
    path = tmp_path / "three.db"
    first = connect(path, create=True)
    first.execute("SELECT COUNT(*) FROM images").fetchone()
    second = connect(path)  # the web app does this once per thread
    second.execute("SELECT COUNT(*) FROM images").fetchone()

    _other_process(OPEN_AND_CLOSE, path)  # B: thinks it is the last connection if A lost its locks
    assert os.path.exists(f"{path}-wal"), "B deleted the WAL while A's connections were open"
    assert os.path.exists(f"{path}-shm")

    _other_process(ADD_ROW, path)  # C
    for conn in (first, second):
        assert conn.execute("SELECT value FROM meta WHERE key = 'written_by'").fetchone() == ("C",)
    first.close()
    second.close()


def test_connect_never_opens_the_db_file_outside_sqlite(tmp_path, monkeypatch):
    """Every way a Python process opens a file, watched while connect() checks a good DB, a
    foreign file, and while copy_database copies one."""
    path = str(tmp_path / "watched.db")
    connect(path, create=True).close()
    foreign = tmp_path / "notes.db"
    foreign.write_bytes(b"these are not the pages of a database" * 100)
    opened = []
    real_open, real_os_open = builtins.open, os.open

    def watch_open(file, *args, **kwargs):
        opened.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else file)
        return real_open(file, *args, **kwargs)

    def watch_os_open(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watch_open)
    monkeypatch.setattr(os, "open", watch_os_open)
    connect(path).close()
    with pytest.raises(NotADatabaseError):
        connect(foreign)
    copy_database(path, str(tmp_path / "copy.db"))
    monkeypatch.undo()

    guarded = {path, str(foreign), str(tmp_path / "copy.db")}
    touched = {str(name) for name in opened if isinstance(name, str)
               and name.removesuffix("-wal").removesuffix("-shm").removesuffix("-journal") in guarded}
    assert not touched


def test_the_whole_pipeline_never_opens_the_db_outside_sqlite(tmp_path, monkeypatch):
    """Scan, extract, search, the duplicate finder and the web app, in this process, with every
    Python-level open watched: none of them may touch the DB, its -wal or its -shm."""
    from fastapi.testclient import TestClient

    import generator
    import main
    from reliability_tools import MODEL, small_photos
    from similarities import calculate_similarities
    from webapp.server import create_app

    photos, path = tmp_path / "photos", str(tmp_path / "watched.db")
    names = small_photos(photos, 6)
    opened = []
    real_open, real_os_open = builtins.open, os.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: opened.append(file) or real_open(file, *a, **k))
    monkeypatch.setattr(os, "open", lambda file, *a, **k: opened.append(file) or real_os_open(file, *a, **k))
    generator.scan(str(photos), path, progress=False)
    main.extract(path, model=MODEL, workers=0, progress=False)
    conn = connect(path)
    for mode, metric in (("embeddings", "ann_cosine"), ("rgb", "bhattacharyya"), ("phash", "hamming")):
        assert calculate_similarities(str(photos / names[0]), conn, mode, metric, top_k=3)
    conn.close()
    with TestClient(create_app(path, thumbs_dir=str(tmp_path / "thumbs"))) as client:
        for url in ("/api/health", "/api/similar/1", "/api/duplicates", "/api/thumb/2", "/api/image/3"):
            assert client.get(url).status_code == 200, url
    monkeypatch.undo()
    watched = {path, f"{path}-wal", f"{path}-shm", f"{path}-journal"}
    assert not {os.fspath(f) for f in opened if isinstance(f, (str, os.PathLike))} & watched


def test_a_foreign_file_gets_the_one_line_message(tmp_path):
    foreign = tmp_path / "photo.db"
    foreign.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 4096)
    with pytest.raises(NotADatabaseError, match=r"is not an SQLite database: pass the DB made by generator.py$"):
        connect(foreign)


def test_copy_database_includes_what_is_still_in_the_wal(tmp_path):
    """A byte copy of the main file alone would miss every commit not yet checkpointed."""
    source = tmp_path / "source.db"
    conn = connect(source, create=True)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("INSERT INTO meta(key, value) VALUES ('only_in_wal', 'yes')")
    conn.commit()
    assert os.path.getsize(f"{source}-wal") > 0
    copy_database(source, tmp_path / "copy.db")
    conn.close()
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT value FROM meta WHERE key = 'only_in_wal'").fetchone() == ("yes",)
    copy.close()
    assert db.connect(tmp_path / "copy.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)
