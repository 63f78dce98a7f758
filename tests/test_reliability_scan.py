"""Scans that never lose work: an unmounted drive, an unlistable folder, a mass deletion, a kill.

A rescan must never turn "I could not see the files" into "the files are gone": every row
deleted by mistake costs a re-extraction. And a long scan commits as it goes, so a kill
keeps what was done and the next run finishes it.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import generator
from cli import UsageError
from features.decode import content_hash
from reliability_tools import (
    MODEL,
    ROOT,
    assert_clean_stderr,
    image_rows,
    integrity,
    permissions_enforced_for_children,
    query,
    run_script,
    script_env,
    small_photos,
    start_script,
)

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not


def _scan(folder, db, **options):
    return generator.scan(str(folder), str(db), progress=False, **options)


def _pretend_extracted(db, folder):
    """Mark every pending row ok with its real content hash, as main.py would (without the CNN):
    only extracted rows can be recognised when they move."""
    conn = sqlite3.connect(db)
    with conn:
        for row_id, path in conn.execute("SELECT id, path FROM images WHERE status = 'pending'").fetchall():
            digest = content_hash((folder / path).read_bytes())
            conn.execute("UPDATE images SET status = 'ok', content_hash = ? WHERE id = ?", (digest, row_id))
    conn.close()


def _rows_without_ids(db):
    return {path: row[1:] for path, row in image_rows(db).items()}


def _one_line_exit_2(done, *words):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def scanned(tmp_path):
    photos = tmp_path / "photos"
    small_photos(photos / "a", 12, seed=1)
    small_photos(photos / "b", 12, seed=2)
    small_photos(photos / "b" / "deep", 6, seed=3)
    db = tmp_path / "photos.db"
    _scan(photos, db)
    _pretend_extracted(db, photos)
    return photos, db


def test_unmounted_drive_changes_nothing_and_nothing_is_lost_when_it_is_back(scanned, tmp_path):
    photos, db = scanned
    before, db_bytes = image_rows(db), db.read_bytes()
    os.rename(photos, tmp_path / "away")
    os.mkdir(photos)  # the empty mount point
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    _one_line_exit_2(done, "is empty", "30 images", str(photos))
    os.rmdir(photos)  # no mount point at all
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    _one_line_exit_2(done, "does not exist")
    photos.write_text("a file where the folder was")
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    _one_line_exit_2(done, "not a folder")
    assert db.read_bytes() == db_bytes and image_rows(db) == before

    os.remove(photos)
    os.rename(tmp_path / "away", photos)  # the drive is back
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "0 new, 0 changed, 0 moved, 0 deleted" in done.stdout
    assert image_rows(db) == before


def test_empty_folder_with_an_empty_db_is_fine(tmp_path):
    (tmp_path / "photos").mkdir()
    summary = _scan(tmp_path / "photos", tmp_path / "new.db")
    assert (summary.files, summary.new, summary.deleted) == (0, 0, 0)


def test_folder_that_cannot_be_listed_keeps_its_rows(scanned, monkeypatch):
    photos, db = scanned
    before = image_rows(db)
    os.remove(photos / "a" / "img_0003.png")  # a real deletion elsewhere still happens
    real_scandir, locked = os.scandir, str(photos / "b")

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = _scan(photos, db)
    assert (summary.deleted, summary.not_checked) == (1, 18), summary
    assert "18 not checked (1 folder could not be listed: b)" in str(summary)
    after = image_rows(db)
    assert set(before) - set(after) == {"a/img_0003.png"}
    assert all(after[p] == before[p] for p in after)
    monkeypatch.undo()
    summary = _scan(photos, db)  # readable again: checked, and nothing to do
    assert (summary.new, summary.deleted, summary.not_checked) == (0, 0, 0)


def test_unreadable_folder_as_a_real_permission_keeps_its_rows(scanned, tmp_path):
    photos, db = scanned
    preexec, enforced = permissions_enforced_for_children(str(tmp_path))
    if not enforced:
        pytest.skip("this container cannot take away the right to list a folder")
    before = image_rows(db)
    os.chmod(photos / "b" / "deep", 0)
    try:
        done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress", preexec_fn=preexec)
    finally:
        os.chmod(photos / "b" / "deep", 0o755)
    assert done.returncode == 0, done.stderr
    assert_clean_stderr(done.stderr)
    assert "0 deleted" in done.stdout and "6 not checked (1 folder could not be listed: b/deep)" in done.stdout
    assert image_rows(db) == before


def test_mass_deletion_stops_unless_allowed(scanned):
    photos, db = scanned
    settled = "SELECT * FROM meta WHERE key NOT IN ('generation', 'write_token') ORDER BY key"  # counters may move
    before, meta = image_rows(db), query(db, settled)
    for name in sorted(os.listdir(photos / "a")):
        os.remove(photos / "a" / name)  # 12 of 30 (40 %): e.g. one share of a NAS not mounted
    small_photos(photos / "new", 2, seed=9)  # found by the same refused scan: not inserted either
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    _one_line_exit_2(done, "would delete 12 of 30", "--allow-deletions")
    assert image_rows(db) == before
    assert query(db, settled) == meta
    with pytest.raises(UsageError, match="would delete 12 of 30"):
        _scan(photos, db)
    assert image_rows(db) == before
    done = run_script("generator.py", "--data", photos, "--db", db, "--no-progress", "--allow-deletions")
    assert done.returncode == 0 and "2 new, 0 changed, 0 moved, 12 deleted" in done.stdout, done.stderr
    kept = {p for p in before if not p.startswith("a/")}
    assert set(image_rows(db)) == kept | {"new/img_0000.png", "new/img_0001.png"}


def test_a_few_deletions_or_a_share_under_the_threshold_do_not_stop(scanned):
    photos, db = scanned
    for name in ("img_0000.png", "img_0001.png", "img_0002.png"):  # 3 of 30: 10 %
        os.remove(photos / "b" / name)
    assert _scan(photos, db).deleted == 3
    small = photos / "b" / "deep"
    for name in os.listdir(small):  # 6 of 27 (22 %), but only 6 files: a few seconds to redo
        os.remove(small / name)
    assert _scan(photos, db).deleted == 6


def test_moves_do_not_count_as_deletions(scanned):
    photos, db = scanned
    before = image_rows(db)
    os.rename(photos / "a", photos / "album")  # 12 of 30 rows change path: moved, not deleted
    summary = _scan(photos, db, batch_size=5)  # moves recorded and applied in several batches
    assert (summary.new, summary.moved, summary.deleted) == (0, 12, 0), summary
    after = image_rows(db)
    assert all(after[f"album/{p[2:]}"] == before[p] for p in before if p.startswith("a/"))


# generator.py with a pause injected after each committed batch: once the DB holds
# ``wait_for_rows`` rows it says so on stdout and waits to be killed (no sleep to hit a moment).
KILLABLE_SCAN = """
import sys, threading
import generator
real = generator._check_batch
def check_then_maybe_pause(conn, *args):
    real(conn, *args)
    if conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] >= int(sys.argv[3]):
        print("paused", flush=True)
        threading.Event().wait()  # until the test kills the process
generator._check_batch = check_then_maybe_pause
generator.main(["--data", sys.argv[1], "--db", sys.argv[2], "--no-progress"])
"""


def _scan_and_kill(photos, db, wait_for_rows):
    """Start a scan that pauses once ``wait_for_rows`` rows are committed, SIGKILL it there;
    return the row count."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_SCAN, str(photos), str(db), str(wait_for_rows)], cwd=ROOT,
        env=script_env(IR_SCAN_BATCH_SIZE=10), start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        said = proc.stdout.readline()  # blocks until the pause, or "" if the scan ended first
        assert said == "paused\n", "the scan finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    return query(db, "SELECT COUNT(*) FROM images")[0][0]


def test_a_scan_killed_half_way_keeps_what_it_committed(tmp_path):
    photos = tmp_path / "photos"
    small_photos(photos / "x", 100, seed=7)
    small_photos(photos / "y", 100, seed=8)
    db = tmp_path / "killed.db"
    kept = _scan_and_kill(photos, db, wait_for_rows=40)
    assert 40 <= kept < 200 and integrity(db) == [("ok",)]
    summary = _scan(photos, db)  # the rerun only reads the headers it has not read yet
    assert summary.new == 200 - kept and summary.deleted == 0
    fresh = tmp_path / "fresh.db"
    _scan(photos, fresh)
    assert _rows_without_ids(db) == _rows_without_ids(fresh)


def test_a_rescan_killed_half_way_still_finds_every_move(tmp_path):
    photos = tmp_path / "photos"
    small_photos(photos / "x", 120, seed=9)
    db = tmp_path / "moves.db"
    _scan(photos, db)
    _pretend_extracted(db, photos)
    before = image_rows(db)
    os.rename(photos / "x", photos / "renamed")
    kept = _scan_and_kill(photos, db, wait_for_rows=120 + 30)
    assert 150 <= kept < 240  # new rows for the renamed files were committed, nothing deleted yet
    summary = _scan(photos, db)
    assert (summary.new, summary.moved, summary.deleted) == (0, 120, 0), summary
    after = image_rows(db)
    assert len(after) == 120
    assert all(after[f"renamed/{p[2:]}"] == before[p] for p in before)  # same id, status, hash


def test_a_rescan_that_changes_nothing_writes_nothing(scanned):
    photos, db = scanned
    version = query(db, "SELECT key, value FROM meta WHERE key IN ('generation', 'write_token') ORDER BY key")
    _scan(photos, db)
    assert query(db, "SELECT key, value FROM meta WHERE key IN ('generation', 'write_token') ORDER BY key") == version


def test_scan_memory_bench_runs_on_a_tiny_collection(tmp_path):
    """Smoke test of bench/scan_memory.py (run as a module, as a user would)."""
    out = tmp_path / "scan_memory.json"
    done = subprocess.run([sys.executable, "-m", "bench.scan_memory", "--files", "1500", "--dir", str(tmp_path / "c"),
                           "--moves", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, env=script_env(),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert [(r["code"], r["scan"]) for r in results] == [("ours", "first scan"), ("ours", "rescan"),
                                                          ("ours", "all moved")]
    assert results[0]["summary"].startswith("scanned 1500 files: 1500 new")
    assert results[1]["summary"].startswith("scanned 1500 files: 0 new, 0 changed, 0 moved, 0 deleted")
    assert results[2]["summary"].startswith("scanned 1500 files: 0 new, 0 changed, 1500 moved, 0 deleted")
    assert all(0 < r["peak_rss_mib"] < 1000 for r in results)


def test_files_marked_disappeared_while_the_drive_was_away_come_back_with_a_rescan(scanned):
    """Issue 12: main.py ran with the drive unmounted (older code) and marked rows 'file
    disappeared after the scan'; size and mtime are unchanged, so a rescan used to leave
    them failed for ever."""
    photos, db = scanned
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE images SET status = 'error', reason = 'file disappeared after the scan',"
                     " content_hash = NULL WHERE path LIKE 'a/%'")
    conn.close()
    summary = _scan(photos, db)
    assert (summary.changed, summary.deleted, summary.unreadable) == (12, 0, 0), summary
    rows = image_rows(db)
    assert {rows[p][1] for p in rows if p.startswith("a/")} == {"pending"}
    assert {rows[p][1] for p in rows if not p.startswith("a/")} == {"ok"}
    os.remove(photos / "a" / "img_0000.png")  # really gone: deleted by the next rescan as usual
    assert _scan(photos, db).deleted == 1


def test_unmounted_drive_through_both_scripts_and_back_costs_no_extraction(tmp_path):
    """The nightly `generator.py && main.py` against a NAS that is not mounted tonight."""
    photos, db = tmp_path / "nas", tmp_path / "nas.db"
    small_photos(photos, 16, seed=21)
    extract = ("main.py", "--db", db, "--model", MODEL, "--workers", 0, "--no-progress")
    assert run_script("generator.py", "--data", photos, "--db", db, "--no-progress").returncode == 0
    assert run_script(*extract).returncode == 0
    rows, features = image_rows(db), query(db, "SELECT rowid, content_hash FROM features ORDER BY rowid")
    assert {row[1] for row in rows.values()} == {"ok"} and len(features) == 16

    os.rename(photos, tmp_path / "away")
    os.mkdir(photos)  # tonight's empty mount point
    scan = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    _one_line_exit_2(scan, "is empty", "16 images")
    run_script(*extract)  # whatever main.py says about the missing files, it must not lose them
    assert image_rows(db) == rows and query(db, "SELECT rowid, content_hash FROM features ORDER BY rowid") == features

    os.rmdir(photos)
    os.rename(tmp_path / "away", photos)  # mounted again
    scan = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
    assert scan.returncode == 0 and "0 new, 0 changed, 0 moved, 0 deleted" in scan.stdout, scan.stderr
    again = run_script(*extract)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].startswith("16 images ok, 0 skipped")
    assert image_rows(db) == rows and query(db, "SELECT rowid, content_hash FROM features ORDER BY rowid") == features


def test_a_rescan_beside_a_running_extraction_then_both_again_equal_a_fresh_build(tmp_path):
    """The README promises a rescan may run beside main.py: its batches interleave with the
    extraction's, and whatever either did first, the next round settles to a fresh build."""
    photos, db = tmp_path / "photos", tmp_path / "live.db"
    small_photos(photos / "a", 80, seed=31)  # enough for the extraction to outlast a rescan
    small_photos(photos / "b", 80, seed=32)
    assert run_script("generator.py", "--data", photos, "--db", db, "--no-progress").returncode == 0
    extract = ("main.py", "--db", db, "--model", MODEL, "--workers", 0, "--batch-size", 1, "--no-progress")
    writer = start_script(*extract, log_to=tmp_path / "writer.log")
    try:
        while query(db, "SELECT COUNT(*) FROM images WHERE status = 'ok'")[0][0] < 6:
            assert writer.poll() is None, (tmp_path / "writer.log").read_text()
            time.sleep(0.05)
        small_photos(photos / "c", 10, seed=33)  # new files
        os.rename(photos / "a" / "img_0000.png", photos / "a" / "renamed.png")  # a move (if already extracted)
        for name in ("img_0001.png", "img_0002.png"):
            os.remove(photos / "b" / name)  # deletions
        scan = run_script("generator.py", "--data", photos, "--db", db, "--no-progress")
        assert scan.returncode == 0, scan.stderr
        assert_clean_stderr(scan.stderr)
        assert writer.poll() is None, "the extraction ended before the rescan: nothing overlapped"
        assert writer.wait(timeout=300) == 0, (tmp_path / "writer.log").read_text()
    finally:
        if writer.poll() is None:
            writer.kill()
    assert run_script("generator.py", "--data", photos, "--db", db, "--no-progress").returncode == 0
    assert run_script(*extract).returncode == 0
    fresh = tmp_path / "fresh.db"
    assert run_script("generator.py", "--data", photos, "--db", fresh, "--no-progress").returncode == 0
    assert run_script(*extract[:2], fresh, *extract[3:]).returncode == 0

    def settled(path):
        return {p: (status, digest) for p, (_, status, _, digest) in image_rows(path).items()}

    assert settled(db) == settled(fresh) and integrity(db) == [("ok",)]
