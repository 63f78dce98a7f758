"""Bad arguments and bad DBs: one line that says what to do, exit status 2, no traceback.

Also: file names full of SQL syntax are just names (every query is parameterised).
"""
import os
import shutil
import sqlite3

import pytest

import generator
import main
from db import copy_database
from reliability_tools import MODEL, permissions_enforced_for_children, query, run_script, small_photos
from similarities import calculate_similarities

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not

SQL_NAMES = ("it's \"x\"; DROP TABLE images; --.png", "a';DELETE FROM features;--.png", "--.png")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small extracted collection, plus damaged copies of its DB."""
    base = tmp_path_factory.mktemp("errors")
    photos = base / "photos"
    names = small_photos(photos, 6, seed=3)
    for name, sql_name in zip(names, SQL_NAMES):
        os.rename(photos / name, photos / sql_name)
    (photos / "broken.jpg").write_text("not a picture")
    db = base / "good.db"
    generator.scan(str(photos), str(db), progress=False)
    main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    (base / "notes.jpg").write_text("a text file named like a picture")
    (base / "noise.db").write_bytes(os.urandom(8192))
    with sqlite3.connect(base / "foreign.db") as conn:
        conn.execute("CREATE TABLE songs(title TEXT)")
    conn.close()
    first_page = sqlite3.connect(db).serialize()[:4096]  # through SQLite: nothing else opens a DB file
    (base / "corrupt.db").write_bytes(first_page + os.urandom(65536))
    for name, sql in (("old_schema.db", "UPDATE meta SET value = '0' WHERE key = 'schema_version'"),
                      ("other_model.db", "UPDATE meta SET value = 'resnet18' WHERE key = 'embedding_model'"),
                      ("other_weights.db", "UPDATE meta SET value = 'ab12' WHERE key = 'embedding_weights_sha256'")):
        copy_database(db, base / name)
        with sqlite3.connect(base / name) as conn:
            conn.execute(sql)
        conn.close()
    return base


CASES = [  # (script, args, words the one-line message must contain)
    ("generator.py", ["--data", "{base}/nope", "--db", "{base}/new.db"], "does not exist"),
    ("generator.py", ["--data", "{base}/photos", "--db", "{base}/no/such/folder/x.db"], "cannot open"),
    ("generator.py", ["--data", "{base}/photos", "--db", "{base}/noise.db"], "not an SQLite database"),
    ("generator.py", ["--data", "{base}", "--db", "{base}/good.db"], "this DB indexes"),
    ("main.py", ["--db", "{base}/absent.db"], "run `python generator.py"),
    ("main.py", ["--db", "{base}/photos"], "is a folder"),
    ("main.py", ["--db", "{base}/noise.db"], "not an SQLite database"),
    ("main.py", ["--db", "{base}/foreign.db"], "not a database of this project"),
    ("main.py", ["--db", "{base}/corrupt.db"], "not a database of this project"),
    ("main.py", ["--db", "{base}/old_schema.db"], "schema version 0"),
    ("main.py", ["--db", "{base}/good.db", "--hash-size", "16"], "--reset-features"),
    ("main.py", ["--db", "{base}/other_model.db", "--model", MODEL], "--reset-features"),
    ("main.py", ["--db", "{base}/good.db", "--batch-size", "0"], "batch_size must be a positive integer"),
    ("similarities.py", ["{base}/notes.jpg", "--db", "{base}/absent.db"], "run `python generator.py"),
    ("similarities.py", ["{base}/missing.jpg", "--db", "{base}/good.db"], "does not exist"),
    ("similarities.py", ["{base}/notes.jpg", "--db", "{base}/good.db", "--mode", "rgb"], "not an image"),
    ("similarities.py", ["{base}/photos/broken.jpg", "--db", "{base}/good.db"], "not an image"),
    ("similarities.py", ["{base}/notes.jpg", "--db", "{base}/old_schema.db"], "schema version 0"),
    ("similarities.py", ["{base}/photos/--.png", "--db", "{base}/good.db", "--top-k", "0"], "top_k must be"),
    ("similarities.py", ["{base}/photos", "--db", "{base}/good.db"], "is a folder: give image files"),
    ("similarities.py", ["{base}/notes.jpg", "--db", "{base}/good.db", "--mode", "phash", "--metric", "cosine"],
     "valid for phash: hamming"),
]


@pytest.mark.parametrize("script,args,words", CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES])
def test_one_line_error_and_exit_2(built, script, args, words):
    before = {p.name: p.stat().st_mtime_ns for p in built.iterdir() if p.suffix == ".db"}
    done = run_script(script, *[a.format(base=built) for a in args], timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in built.iterdir() if p.suffix == ".db"}
    assert after == before, "a failed command must not touch any DB"


def test_query_with_other_weights_than_the_db(built):
    """An outside query image in a DB made with other weights: no silent mixing of features."""
    done = run_script("similarities.py", built / "notes.jpg", "--db", built / "other_weights.db", timeout=120)
    assert done.returncode == 2 and "notes.jpg" in done.stderr  # undecodable: said before any model loads
    photo = built / "outside.png"
    shutil.copy(built / "photos" / "--.png", photo)
    done = run_script("similarities.py", photo, "--db", built / "other_weights.db", timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "--reset-features" in lines[0], done.stderr


def test_file_names_with_sql_syntax_are_just_names(built):
    from db import connect

    conn = connect(built / "good.db")
    try:
        for name in SQL_NAMES:
            path = str(built / "photos" / name)
            mine = calculate_similarities(path, conn, "phash", "hamming", top_k=10, exclude_query=False)
            assert mine[0] == (path, 0.0)  # found by its name: the query row itself
            others = calculate_similarities(path, conn, "phash", "hamming", top_k=10)
            assert path not in [p for p, _ in others] and len(others) == 5
    finally:
        conn.close()
    assert query(built / "good.db", "SELECT COUNT(*) FROM images WHERE status = 'ok'") == [(6,)]
    assert query(built / "good.db", "SELECT COUNT(*) FROM features") == [(6,)]
    cli = run_script("similarities.py", built / "photos" / SQL_NAMES[0], "--db", built / "good.db", "--mode", "phash",
                     "--top-k", 2)
    assert cli.returncode == 0 and len(cli.stdout.strip().splitlines()) == 2, cli.stderr


@pytest.mark.parametrize("call,valid", [  # calculate_similarities' own: tests/test_similarities.py
    (lambda c: main.extract("unused.db", hist_bins=0), "hist_bins must be a positive integer"),
    (lambda c: generator.scan(".", "unused.db", batch_size=0), "batch_size must be a positive integer"),
    (lambda c: generator.scan(".", "unused.db", extensions=".jpg"), r"such as \['.jpg'"),
])
def test_public_entry_points_name_the_valid_choices(call, valid):
    with pytest.raises(ValueError, match=valid):
        call(None)


def test_a_read_only_db_folder_is_one_line_not_a_traceback(tmp_path):
    """The lock files live beside the DB: a folder that cannot be written is said in one line."""
    preexec, enforced = permissions_enforced_for_children(tmp_path)
    if not enforced:
        pytest.skip("file permissions are not enforced for child processes here")
    photos = tmp_path / "photos"
    small_photos(photos, 2)
    folder = tmp_path / "ro"
    folder.mkdir()
    generator.scan(str(photos), str(folder / "c.db"), progress=False)
    os.chmod(folder, 0o555)
    try:
        done = run_script("generator.py", "--data", photos, "--db", folder / "c.db", "--no-progress",
                          preexec_fn=preexec)
    finally:
        os.chmod(folder, 0o755)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "writable" in done.stderr
