"""Crash safety: main.py killed at random moments resumes to the DB an uninterrupted run makes.

A seeded schedule interrupts main.py with SIGKILL (at a pause injected into its start-up, and
at random points of the extraction), with Ctrl-C (SIGINT to the whole process group, as a terminal sends it)
and with SIGTERM. After every interruption the DB passes PRAGMA integrity_check and keeps
every batch that was committed; the final DB equals the reference run's.
"""
import os
import random
import signal
import sqlite3
import time

import pytest

from features.extract import STAMP_KEYS
from reliability_tools import (
    MODEL,
    ROOT,
    assert_clean_stderr,
    assert_same_features,
    features_by_path,
    image_rows,
    integrity,
    query,
    run_script,
    script_env,
    small_photos,
    start_script,
)

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

N_IMAGES = 200
BATCH = 4
SEED = 20261125
SCHEDULE = ("startup-kill", "kill", "kill", "sigint", "kill", "sigterm", "kill")


def _copy_db(src, dst):
    """A consistent copy through SQLite's backup API (the WAL included)."""
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _done(db):
    return query(db, "SELECT COUNT(*) FROM images WHERE status != 'pending'")[0][0]


def _extract_args(db):
    return ("--db", db, "--model", MODEL, "--batch-size", BATCH, "--workers", 1, "--no-progress")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    photos = base / "photos"
    small_photos(photos, N_IMAGES, seed=SEED)
    (photos / "empty.png").write_bytes(b"")
    (photos / "cut.png").write_bytes((photos / "img_0000.png").read_bytes()[:200])
    db = base / "scanned.db"
    scan = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    assert scan.returncode == 0, scan.stderr
    reference = base / "reference.db"
    _copy_db(db, reference)
    done = run_script("main.py", *_extract_args(reference))
    assert done.returncode == 0, done.stderr
    return {"base": base, "db": db, "reference": reference}


# main.py with a pause injected at start-up: the network is loaded, the decode workers run and the
# settings stamp is committed, but no batch yet. The test SIGKILLs it there (no sleep to hit a moment).
PAUSED_AT_STARTUP = """
import os, runpy, threading
from extraction import run
real = run.check_or_write_stamp
def check_then_pause(*args, **kwargs):
    real(*args, **kwargs)
    open(os.environ["IR_TEST_PAUSED"], "w").close()
    threading.Event().wait()  # until the test kills the process
run.check_or_write_stamp = check_then_pause
runpy.run_path(os.path.join(os.environ["PYTHONPATH"], "main.py"), run_name="__main__")
"""


def _wait_for(condition, proc, timeout=240):
    """Poll until ``condition()`` or the process ends; True if the condition came first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            return True
        time.sleep(0.02)
    raise AssertionError("main.py made no progress")


def _interrupt(kind, db, rng, log_path, room):
    """Start main.py, interrupt it as ``kind`` says once it is past a random point that leaves
    at least ``room`` images for later runs; returns (exit status, done before, log text)."""
    total = len(image_rows(db))
    before = _done(db)
    if kind == "startup-kill":
        paused = f"{log_path}.paused"
        script = os.path.join(os.path.dirname(log_path), "paused_at_startup.py")
        with open(script, "w") as fh:
            fh.write(PAUSED_AT_STARTUP)
        proc = start_script(script, *_extract_args(db), log_to=log_path,
                            env=script_env(PYTHONPATH=ROOT, IR_TEST_PAUSED=paused))
    else:
        proc = start_script("main.py", *_extract_args(db), log_to=log_path)
    try:
        if kind == "startup-kill":
            reached = _wait_for(lambda: os.path.exists(paused), proc)
            assert reached, "main.py ended before its start-up pause"
        else:
            target = rng.randint(before + 1, max(before + 1, total - room))
            reached = _wait_for(lambda: _done(db) >= target, proc)
        committed = _done(db)
        if kind == "sigint" and reached:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        elif reached:
            os.kill(proc.pid, signal.SIGTERM if kind == "sigterm" else signal.SIGKILL)
        status = proc.wait(timeout=120)
        if status == -signal.SIGKILL:
            _assert_workers_die_with(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    with open(log_path) as fh:
        return status, committed, fh.read()


def _assert_workers_die_with(proc):
    """Decode workers of a SIGKILLed main.py exit with it (else they would hold memory, once the lock)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("a decode worker outlived the SIGKILLed main.py")


def test_interrupted_runs_resume_to_the_uninterrupted_result(scanned, record_property):
    db = scanned["base"] / "interrupted.db"
    _copy_db(scanned["db"], db)
    rng = random.Random(SEED)
    killed, progress = 0, []
    for step, kind in enumerate(SCHEDULE):  # each run starts right after the last one died: no stale lock
        # A stopped run may still finish the batches its decode worker had ready (up to about 3):
        # leave that much room for every run still to come, so the last one always has work.
        room = 3 * BATCH * (len(SCHEDULE) - step)
        status, committed, log = _interrupt(kind, db, rng, scanned["base"] / f"run{step}.log", room)
        assert integrity(db) == [("ok",)], (kind, log)
        progress.append(_done(db))
        assert progress[-1] >= committed, f"{kind}: committed batches were lost"
        assert_clean_stderr(log)
        if status == -signal.SIGKILL:
            killed += 1
        elif kind in ("sigint", "sigterm") and status == 130:
            assert "interrupted" in log and "run the same command again" in log, log
        else:
            assert status == 0, (kind, status, log)  # it finished before the signal came
        assert query(db, "SELECT COUNT(*) FROM images WHERE status = 'ok' AND content_hash NOT IN"
                         " (SELECT content_hash FROM features)") == [(0,)]
    record_property("sigkills_survived", killed)
    record_property("done_after_each_interruption", progress)
    assert killed >= 4, f"only {killed} SIGKILLs landed while main.py ran"
    assert progress == sorted(progress) and progress[-1] < len(image_rows(db))

    final = run_script("main.py", *_extract_args(db))
    assert final.returncode == 0, final.stderr
    assert_clean_stderr(final.stderr)
    _assert_same_db(db, scanned["reference"])


def _assert_same_db(db, reference):
    assert integrity(db) == [("ok",)]
    got, want = image_rows(db), image_rows(reference)
    assert got == want  # same ids, paths, statuses, reasons and content hashes
    assert query(db, "SELECT COUNT(*) FROM images WHERE status = 'pending'") == [(0,)]
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT content_hash) FROM features") == \
        query(reference, "SELECT COUNT(*), COUNT(DISTINCT content_hash) FROM features")
    got_features, want_features = features_by_path(db), features_by_path(reference)
    assert set(got_features) == set(want_features) and len(got_features) == N_IMAGES
    for path, features in want_features.items():
        assert_same_features(got_features[path], features, what=path)
    settings = f"SELECT key, value FROM meta WHERE key IN ({', '.join('?' * len(STAMP_KEYS))}) ORDER BY key"
    assert query(db, settings, STAMP_KEYS) == query(reference, settings, STAMP_KEYS)


@pytest.mark.parametrize("stop_in", ["describe_header", "delete_images"])
def test_interrupted_scan_says_so_and_the_next_scan_heals(tmp_path, monkeypatch, capsys, stop_in):
    """Ctrl-C while generator.py walks the folder, or between its insert and delete phases."""
    import generator
    from cli import run

    photos = tmp_path / "photos"
    small_photos(photos, 30, seed=5)
    db = tmp_path / "scan.db"
    generator.scan(str(photos), str(db), progress=False)
    for name in ("img_0000.png", "img_0001.png"):
        os.remove(photos / name)
    small_photos(tmp_path / "more", 5, seed=6)
    for name in os.listdir(tmp_path / "more"):
        os.rename(tmp_path / "more" / name, photos / f"new_{name}")

    real, calls = getattr(generator, stop_in), []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 3 or stop_in == "delete_images":
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(generator, stop_in, interrupted)
    with pytest.raises(SystemExit) as stopped:
        run(lambda: generator.main(["--data", str(photos), "--db", str(db), "--no-progress"]))
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: run the same command again" in err and "Traceback" not in err
    assert integrity(db) == [("ok",)]
    monkeypatch.undo()
    generator.scan(str(photos), str(db), progress=False)
    fresh = tmp_path / "fresh.db"
    generator.scan(str(photos), str(fresh), progress=False)
    assert _without_ids(image_rows(db)) == _without_ids(image_rows(fresh))


def _without_ids(rows):
    return {path: row[1:] for path, row in rows.items()}


def test_full_disk_mid_run_is_one_line_and_resumable(tmp_path, monkeypatch, capsys):
    """SQLite's max_page_count makes the DB 'full' after a few batches, as a full disk would."""
    import generator
    import main
    from cli import run
    from extraction import run as extraction_run

    photos = tmp_path / "photos"
    small_photos(photos, 24, seed=8)
    db = tmp_path / "full.db"
    generator.scan(str(photos), str(db), progress=False)
    limit = query(db, "PRAGMA page_count")[0][0] + 20  # room for a batch or two of features
    real_connect = extraction_run.connect

    def nearly_full(path, create=False):
        conn = real_connect(path, create)
        conn.execute(f"PRAGMA max_page_count = {int(limit)}")
        return conn

    monkeypatch.setattr(extraction_run, "connect", nearly_full)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stopped:
            run(lambda: main.main(["--db", str(db), "--model", MODEL, "--workers", "0", "--batch-size", "4",
                                   "--no-progress"]))
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: the database failed (database or disk is full); all finished work is saved: "
        "fix the cause (disk space, permissions) and run the same command again"]
    saved = query(db, "SELECT COUNT(*) FROM images WHERE status = 'ok'")[0][0]
    assert 0 < saved < 24 and integrity(db) == [("ok",)]
    monkeypatch.undo()
    result = main.extract(str(db), model=MODEL, workers=0, batch_size=4, progress=False, build_index=False)
    assert (result.ok, result.done_now) == (24, 24 - saved)
