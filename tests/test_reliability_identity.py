"""Same size and mtime is not proof that a file is unchanged (issue 18): tools that replace
a file can keep both (``cp -p``, ``touch -r``, some sync tools). The scan also records each
file's ctime and inode; a change in either makes it read the file again, and only different
bytes mean extracting it again."""
import os
import sqlite3

import numpy as np
from PIL import Image

import generator
import main
from db import SCHEMA_VERSION, connect
from features.decode import content_hash
from reliability_tools import MODEL, query, small_photos

# The images table as schema version 1 made it, filled from the current one.
VERSION_1_IMAGES = """
BEGIN;
CREATE TABLE images_v1 (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    width INTEGER, height INTEGER, status TEXT NOT NULL, reason TEXT, content_hash BLOB);
INSERT INTO images_v1 SELECT id, path, size, mtime_ns, width, height, status, reason, content_hash FROM images;
DROP TABLE images;
ALTER TABLE images_v1 RENAME TO images;
CREATE INDEX images_status ON images(status);
CREATE INDEX images_content_hash ON images(content_hash);
DROP TABLE moved_out;
DROP TABLE duplicate_decisions;
UPDATE meta SET value = '1' WHERE key = 'schema_version';
COMMIT;
"""


def bmp(path, seed):
    """A BMP's size depends only on its dimensions: two different pictures, the same size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((80, 60), Image.BICUBIC).save(path)


def build(tmp_path):
    photos, db = tmp_path / "photos", tmp_path / "c.db"
    small_photos(photos, 4)
    bmp(photos / "swap.bmp", 1)
    generator.scan(str(photos), str(db), progress=False)
    main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    st = os.stat(photos / "swap.bmp")
    assert query(db, "SELECT ctime_ns, inode FROM images WHERE path = 'swap.bmp'") == [(st.st_ctime_ns, st.st_ino)]
    return photos, db


def stored_hash(db, path):
    return query(db, "SELECT content_hash, status FROM images WHERE path = ?", (path,))[0]


def test_a_replacement_with_the_same_size_and_mtime_is_extracted_again(tmp_path):
    photos, db = build(tmp_path)
    target = photos / "swap.bmp"
    before = os.stat(target)
    bmp(tmp_path / "other.bmp", 2)
    os.replace(tmp_path / "other.bmp", target)  # a new inode, as sync tools and `cp` to a temp name make
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(target)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    summary = generator.scan(str(photos), str(db), progress=False)
    assert summary.changed == 1
    main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    assert stored_hash(db, "swap.bmp") == (content_hash(target.read_bytes()), "ok")


def test_a_rewrite_in_place_keeping_size_and_mtime_is_noticed(tmp_path):
    """``cp -p new old`` writes into the old inode and sets the mtime back: only ctime moves."""
    photos, db = build(tmp_path)
    target = photos / "swap.bmp"
    before = os.stat(target)
    bmp(tmp_path / "other.bmp", 3)
    target.write_bytes((tmp_path / "other.bmp").read_bytes())
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_ino == before.st_ino

    assert generator.scan(str(photos), str(db), progress=False).changed == 1
    assert stored_hash(db, "swap.bmp") == (None, "pending")
    main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    assert stored_hash(db, "swap.bmp") == (content_hash(target.read_bytes()), "ok")


def test_same_bytes_with_a_new_ctime_are_not_extracted_again(tmp_path):
    """A chmod or a restore of the very same bytes: read once, recorded, features kept."""
    photos, db = build(tmp_path)
    target = photos / "swap.bmp"
    digest = stored_hash(db, "swap.bmp")
    os.chmod(target, 0o600)
    summary = generator.scan(str(photos), str(db), progress=False)
    assert summary.changed == 0
    assert stored_hash(db, "swap.bmp") == digest
    st = os.stat(target)
    assert query(db, "SELECT ctime_ns, inode FROM images WHERE path = 'swap.bmp'") == [(st.st_ctime_ns, st.st_ino)]


def test_a_version_1_db_is_migrated_and_its_files_are_not_read_again(tmp_path):
    photos, db = build(tmp_path)
    raw = sqlite3.connect(db)
    with raw:
        raw.executescript(VERSION_1_IMAGES)
    raw.close()

    connect(db).close()
    assert query(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert query(db, "SELECT COUNT(*) FROM images WHERE ctime_ns IS NULL") == [(5,)]
    assert query(db, "SELECT COUNT(*) FROM moved_out") == [(0,)]  # find_duplicates.py --move-to's table
    assert query(db, "SELECT COUNT(*) FROM duplicate_decisions") == [(0,)]  # the reviewer's decisions
    read = []
    real_digest = generator._file_digest
    generator._file_digest = lambda full: read.append(full) or real_digest(full)
    try:
        summary = generator.scan(str(photos), str(db), progress=False)
    finally:
        generator._file_digest = real_digest
    assert (summary.changed, read) == (0, [])
    assert query(db, "SELECT COUNT(*) FROM images WHERE ctime_ns IS NULL OR inode IS NULL") == [(0,)]
