"""Concurrent use: queries keep working while main.py writes, and a second main.py backs off.

Every answer given during the run must be a consistent snapshot: as many results as there
were extracted images at some moment (the state main.py published last), each with the
distance its stored features really have, best first. A second main.py started while the first holds the DB
(paused with SIGSTOP so the timing is certain) exits at once with a one-line message and
writes nothing.
"""
import os
import signal
import time

import pytest

from db import connect
from features.decode import decode, read_file
from features.histogram import rgb_histograms
from reliability_tools import (
    MODEL,
    assert_clean_stderr,
    bhattacharyya,
    integrity,
    query,
    run_script,
    script_env,
    small_photos,
    start_script,
)
from similarities import calculate_similarities

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

N_IMAGES = 120


def _ok(db):
    return query(db, "SELECT COUNT(*) FROM images WHERE status = 'ok'")[0][0]


def _histograms(db):
    rows = query(db, "SELECT i.path, f.rgb FROM images AS i JOIN features AS f ON f.content_hash = i.content_hash")
    return dict(rows)


def _check_snapshot(conn, db, photos, probe):
    """One query during the run; returns the number of images it saw."""
    results = calculate_similarities(probe, conn.cursor(), "rgb", "bhattacharyya", top_k=10_000)
    after = _ok(db)
    assert len(results) <= after  # a state main.py published: consistent, possibly a little behind
    distances = [d for _, d in results]
    assert distances == sorted(distances)
    stored = _histograms(db)  # features never change once written: the truth for every result
    probe_hist = rgb_histograms([decode(read_file(probe)[0])])[0].tobytes()
    for path, distance in results[:: max(1, len(results) // 10)]:
        rel = os.path.relpath(path, photos)
        assert abs(bhattacharyya(stored[rel], probe_hist) - distance) < 1e-5, rel
    return len(results)


def test_queries_during_extraction_and_a_second_writer(tmp_path):
    photos = tmp_path / "photos"
    small_photos(photos, N_IMAGES, seed=7)
    probe = tmp_path / "probe.png"
    small_photos(tmp_path / "outside", 1, seed=99)
    os.rename(tmp_path / "outside" / "img_0000.png", probe)
    db = tmp_path / "photos.db"
    assert run_script("generator.py", "--data", photos, "--db", db, "--no-progress").returncode == 0

    writer = start_script("main.py", "--db", db, "--model", MODEL, "--batch-size", 4, "--workers", 1,
                          "--no-progress", log_to=tmp_path / "writer.log",
                          env=script_env(IR_PUBLISH_SECONDS=1))  # publishes often: queries see the run progress
    try:
        while _ok(db) < 8:
            assert writer.poll() is None, (tmp_path / "writer.log").read_text()
            time.sleep(0.05)
        conn = connect(db)  # one connection for the whole run, as a notebook would hold it
        seen = {_check_snapshot(conn, db, photos, probe)}

        writer.send_signal(signal.SIGSTOP)  # holds the lock (maybe mid-transaction) for certain
        try:
            generation = query(db, "SELECT value FROM meta WHERE key = 'generation'")
            second = run_script("main.py", "--db", db, "--model", MODEL, "--no-progress")
            assert second.returncode == 2
            assert second.stderr.strip().count("\n") == 0, second.stderr
            assert "another main.py is already extracting" in second.stderr
            assert query(db, "SELECT value FROM meta WHERE key = 'generation'") == generation
            cli = run_script("similarities.py", probe, "--db", db, "--mode", "rgb", "--top-k", 3)
            assert cli.returncode == 0 and len(cli.stdout.strip().splitlines()) == 3, cli.stderr
            seen.add(_check_snapshot(conn, db, photos, probe))
        finally:
            writer.send_signal(signal.SIGCONT)

        while writer.poll() is None:
            seen.add(_check_snapshot(conn, db, photos, probe))
        conn.close()
        assert writer.wait() == 0, (tmp_path / "writer.log").read_text()
    finally:
        if writer.poll() is None:
            writer.kill()
    assert_clean_stderr((tmp_path / "writer.log").read_text())
    assert len(seen) >= 3, f"queries saw only {sorted(seen)}: they did not overlap the writes"
    assert _ok(db) == N_IMAGES and integrity(db) == [("ok",)]
    final = connect(db)
    try:
        assert len(calculate_similarities(str(probe), final, "rgb", "bhattacharyya", top_k=10_000)) == N_IMAGES
    finally:
        final.close()


def test_a_second_scan_of_the_same_db_backs_off(tmp_path):
    """Two generator.py at once would insert the same new paths twice: the second one stops."""
    from db import ScanLock

    photos = tmp_path / "photos"
    small_photos(photos, 3)
    db = tmp_path / "scan.db"
    with ScanLock(db):
        busy = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    assert busy.returncode == 2 and busy.stderr.strip().splitlines() == [
        f"error: another generator.py is already scanning this DB (lock {db}.scan.lock); wait for it to finish"]
    assert query(db, "SELECT COUNT(*) FROM images") == [(0,)]
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    assert done.returncode == 0 and "3 new" in done.stdout, done.stderr
