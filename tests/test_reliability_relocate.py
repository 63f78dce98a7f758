"""A collection that moved (a drive mounted elsewhere, a renamed folder) is re-pointed, not
re-extracted; a folder that is not the collection is refused; so is a system folder."""
import os
import shutil

import pytest

import generator
import main
from cli import UsageError
from db import connect
from reliability_tools import MODEL, assert_clean_stderr, query, run_script, small_photos
from similarities import calculate_similarities

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not


@pytest.fixture
def indexed(tmp_path):
    photos, db = tmp_path / "old" / "photos", tmp_path / "c.db"
    small_photos(photos / "a", 30, seed=1)
    small_photos(photos / "b", 30, seed=2)
    generator.scan(str(photos), str(db), progress=False)
    main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    return photos, db


def test_relocate_re_points_without_extracting_again(indexed, tmp_path):
    photos, db = indexed
    before = query(db, "SELECT id, path, content_hash, status FROM images ORDER BY id")
    moved = tmp_path / "drive" / "Pictures"
    shutil.copytree(photos, moved)  # the copy has new inodes and ctimes
    shutil.rmtree(photos)

    done = run_script("generator.py", "--data", moved, "--db", db, "--relocate", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "0 new, 0 changed, 0 moved, 0 deleted" in done.stdout
    assert query(db, "SELECT id, path, content_hash, status FROM images ORDER BY id") == before
    assert query(db, "SELECT value FROM meta WHERE key = 'dataset_root'") == [(str(moved),)]
    conn = connect(db)
    results = calculate_similarities(str(moved / "a" / "img_0001.png"), conn, "rgb", "bhattacharyya", top_k=3)
    conn.close()
    assert all(path.startswith(str(moved)) and os.path.exists(path) for path, _ in results)


def test_relocate_refuses_a_folder_that_is_not_the_collection(indexed, tmp_path):
    photos, db = indexed
    other = tmp_path / "other"
    small_photos(other / "a", 30, seed=7)  # the same names, other pictures
    small_photos(other / "b", 30, seed=8)
    before = query(db, "SELECT * FROM images ORDER BY id"), query(db, "SELECT * FROM meta ORDER BY key")

    done = run_script("generator.py", "--data", other, "--db", db, "--relocate", "--no-progress")
    assert done.returncode == 2
    assert_clean_stderr(done.stderr)
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "--relocate: only 0 of" in done.stderr and "Nothing was changed" in done.stderr
    assert (query(db, "SELECT * FROM images ORDER BY id"), query(db, "SELECT * FROM meta ORDER BY key")) == before


def test_without_relocate_a_moved_collection_says_how(indexed, tmp_path):
    photos, db = indexed
    moved = tmp_path / "renamed"
    os.rename(photos, moved)
    with pytest.raises(Exception, match="this DB indexes"):
        generator.scan(str(moved), str(db), progress=False)


@pytest.mark.parametrize("folder", ["/", "/proc", "/sys/kernel", "/dev"])
def test_system_folders_are_refused(tmp_path, folder):
    db = tmp_path / "c.db"
    done = run_script("generator.py", "--data", folder, "--db", db, "--no-progress", timeout=60)
    assert done.returncode == 2
    assert_clean_stderr(done.stderr)
    assert "not a photo collection" in done.stderr and "--force" in done.stderr
    assert not db.exists()


def test_force_scans_a_system_folder_anyway(tmp_path):
    summary = generator.scan("/proc/self/fdinfo", str(tmp_path / "c.db"), progress=False, force=True)
    assert summary.new == 0
    with pytest.raises(UsageError):
        generator.scan("/proc/self/fdinfo", str(tmp_path / "d.db"), progress=False)
