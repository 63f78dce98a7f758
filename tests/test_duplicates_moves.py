"""find_duplicates.py --move-to checks the disk before it acts (issue 18, item 5): a file changed
since the scan is not moved, a group whose keeper is gone or changed is skipped, a symlink is
never a keeper and nothing is moved through one, a target that is or holds the collection is
refused, a failure is one line and exit 2 with a manifest that --undo still reads, and the DB
learns what moved (generator.py reports it, --undo brings the rows back without extraction).

Fake collections: a few bytes per file, made-up features written by the project's db code."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import generator
from cleanup.move import move_copies
from db import connect
from db.features import ExtractedRow, prune_unused, write_batch
from db.images import ImageRow, insert_images, pending_page
from db.meta import check_or_write_stamp, claim_dataset_root
from duplicates.finder import find_duplicates
from reliability_tools import image_rows, permissions_enforced_for_children, query
from samples import ROOT
from search import matrix_cache

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not

DIM = 32
STAMP = {"embedding_model": "fake", "embedding_weights_sha256": "fake", "embedding_dim": DIM,
         "vector_dtype": "float32-le", "rgb_dim": 4, "hist_bins": 1, "hash_size": 8, "decode_side": 256,
         "embedding_precision": "float32"}
PAIRS = 12  # byte-identical pairs keep/NN.jpg (older: the keeper) + copies/NN.jpg


def digest(data):
    return hashlib.blake2b(data, digest_size=16).digest()


def build(tmp_path, links=()):
    """A scanned and "extracted" collection: PAIRS exact pairs, one near pair (near/orig.jpg keeps,
    near/small.jpg is a smaller edit), alone.jpg; ``links`` {name: target} adds symlinks, with rows
    as generator.py makes them (stat follows the link). Returns (db path, root)."""
    rng = np.random.default_rng(7)
    root = tmp_path / "photos"
    items = []  # (name, content, (width, height), mtime_ns, vector)
    for k in range(PAIRS):
        content, vector = f"photo {k:02d} ".encode() * (10 + k), rng.standard_normal(DIM)
        items += [(f"keep/{k:02d}.jpg", content, (100, 100), 1000 + k, vector),
                  (f"copies/{k:02d}.jpg", content, (100, 100), 2000 + k, vector)]
    near = rng.standard_normal(DIM)
    items += [("near/orig.jpg", b"near original" * 9, (400, 300), 3000, near),
              ("near/small.jpg", b"near small" * 5, (200, 150), 3001, near + 0.01),
              ("alone.jpg", b"alone" * 7, (50, 50), 4000, rng.standard_normal(DIM))]
    for name, content, _, mtime, _ in items:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, ns=(mtime, mtime))
    by_name = {item[0]: item for item in items}
    for name, target in dict(links).items():
        os.symlink(os.path.relpath(root / target, (root / name).parent), root / name)
        items.append((name, *by_name[target][1:]))
    db_path = tmp_path / "photos.db"
    conn = connect(db_path, create=True)
    claim_dataset_root(conn, os.path.realpath(root))
    check_or_write_stamp(conn, STAMP)
    insert_images(conn, [ImageRow(name, len(content), mtime, w, h, "pending", None)
                         for name, content, (w, h), mtime, _ in items])
    pending = {row.path: row for row in pending_page(conn, 0, 1000)}
    hashes, vectors, extracted = [], [], []
    for name, content, _, _, vector in items:
        row = pending[name]
        extracted.append(ExtractedRow(row.id, row.size, row.mtime_ns, digest(content)))
        if digest(content) not in hashes:
            hashes.append(digest(content))
            vectors.append(vector / np.linalg.norm(vector))
    n = len(hashes)
    features = {"embedding": np.asarray(vectors, dtype=np.float32), "rgb": np.full((n, 4), 0.25, dtype=np.float32)}
    features.update({c: rng.integers(0, 256, (n, 8), dtype=np.uint8) for c in ("ahash", "dhash", "phash")})
    write_batch(conn, extracted, [], hashes, features)
    conn.close()
    matrix_cache.forget()
    return db_path, root


def move(db_path, dest):
    conn = connect(db_path)
    try:
        report = find_duplicates(conn)
        return move_copies(conn, report.groups, report.settings["root"], str(dest))
    finally:
        conn.close()


def files(folder):
    """{relative path: bytes} of the regular files under ``folder`` (symlinks left out)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.jpg") if not p.is_symlink()}


def overwrite(path, content, keep_mtime):
    """Change a file's bytes; with ``keep_mtime`` its size and mtime look unchanged."""
    st = os.stat(path)
    path.write_bytes(content)
    if keep_mtime:
        assert len(content) == st.st_size
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def run_script(*args, preexec_fn=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "find_duplicates.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=180, preexec_fn=preexec_fn)


def error_line(done):
    """The one-line error of a failed run (its stderr may hold INFO logs before it)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and done.stderr.strip().splitlines()[-1] == errors[0], done.stderr
    return errors[0]


def test_a_file_changed_after_the_scan_is_not_moved(tmp_path):
    db_path, root = build(tmp_path)
    same_look = b"X" * len((root / "copies/00.jpg").read_bytes())  # same size, mtime put back: only the hash tells
    overwrite(root / "copies/00.jpg", same_look, keep_mtime=True)
    overwrite(root / "copies/01.jpg", b"edited since the scan", keep_mtime=False)
    result = move(db_path, tmp_path / "moved")
    assert (root / "copies/00.jpg").read_bytes() == same_look
    assert (root / "copies/01.jpg").read_bytes() == b"edited since the scan"
    moved = files(tmp_path / "moved")
    assert "copies/00.jpg" not in moved and "copies/01.jpg" not in moved
    assert result.moved == PAIRS - 2 + 1 and len(moved) == result.moved  # the other copies and near/small.jpg
    said = [line for line in result.notes if "copies/00.jpg" in line or "copies/01.jpg" in line]
    assert len(said) == 2 and all("changed since the scan" in line and "not moved" in line for line in said)
    with open(result.manifest, encoding="utf-8") as fh:
        manifest = json.load(fh)
    skipped = {os.path.relpath(m["from"], root) for m in manifest["moves"] if m.get("skipped")}
    assert skipped == {"copies/00.jpg", "copies/01.jpg"} and manifest["moved"] == result.moved


def test_a_group_whose_keeper_is_gone_or_changed_is_skipped_whole(tmp_path):
    db_path, root = build(tmp_path)
    before = files(root)
    os.remove(root / "keep/02.jpg")
    overwrite(root / "keep/03.jpg", b"Y" * len(before["keep/03.jpg"]), keep_mtime=True)
    result = move(db_path, tmp_path / "moved")
    after = files(root)
    assert after["copies/02.jpg"] == before["copies/02.jpg"] and after["copies/03.jpg"] == before["copies/03.jpg"]
    assert result.moved == PAIRS - 2 + 1
    for name, why in (("keep/02.jpg", "is gone"), ("keep/03.jpg", "changed since the scan")):
        said = [line for line in result.notes if name in line]
        assert len(said) == 1 and "skipped" in said[0] and why in said[0], result.notes


def test_a_symlink_is_never_the_keeper_and_nothing_is_moved_through_one(tmp_path):
    # aa-link.jpg sorts before keep/00.jpg with equal pixels, size and mtime: the keeper rule picks the link
    links = {"aa-link.jpg": "keep/00.jpg", "zz-link.jpg": "keep/01.jpg", "ab-link.jpg": "copies/02.jpg"}
    db_path, root = build(tmp_path, links)
    before = files(root)
    conn = connect(db_path)
    groups = {g.keep: g for g in find_duplicates(conn).groups}
    conn.close()
    assert str(root / "aa-link.jpg") in groups  # the bug: a symlink chosen as the keeper
    result = move(db_path, tmp_path / "moved")
    moved = tmp_path / "moved"
    assert not [p for p in moved.rglob("*") if p.is_symlink()]  # no link was moved
    for name, target in links.items():
        assert (root / name).is_symlink() and (root / name).read_bytes() == before[target]  # none dangles
    after = files(root)
    assert after["keep/00.jpg"] == before["keep/00.jpg"] and after["keep/01.jpg"] == before["keep/01.jpg"]
    assert after["copies/02.jpg"] == before["copies/02.jpg"]  # a link in its group points to it
    assert {"copies/00.jpg", "copies/01.jpg"} <= set(files(moved)) and "copies/02.jpg" not in files(moved)
    said = [line for line in result.notes if "aa-link.jpg" in line]
    assert len(said) == 1 and "symlink" in said[0] and f"{root / 'keep/00.jpg'} is kept instead" in said[0]


def test_a_target_that_holds_the_collection_or_leads_into_it_is_refused(tmp_path):
    db_path, root = build(tmp_path)
    before = files(root)
    line = error_line(run_script("--db", db_path, "--move-to", tmp_path))  # the collection's parent
    assert "holds the collection" in line and "nothing was moved" in line
    dest = tmp_path / "elsewhere"
    dest.mkdir()
    os.symlink(root / "keep", dest / "copies")  # dest/copies/NN.jpg would land in the collection
    line = error_line(run_script("--db", db_path, "--move-to", dest))
    assert "inside the collection" in line and "nothing was moved" in line
    assert files(root) == before and not list(tmp_path.glob("undo-*.json")) and not list(dest.glob("undo-*.json"))


def test_a_read_only_target_is_one_line_and_exit_2_and_the_manifest_stays_valid(tmp_path):
    preexec, enforced = permissions_enforced_for_children(str(tmp_path))
    if not enforced:
        pytest.skip("this machine cannot deny a child process write access (root without prctl)")
    db_path, root = build(tmp_path)
    before = files(root)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    line = error_line(run_script("--db", db_path, "--move-to", locked, preexec_fn=preexec))
    assert "nothing was moved" in line and files(root) == before
    dest = tmp_path / "moved"
    (dest / "near").mkdir(parents=True)
    os.chmod(dest / "near", 0o555)  # the copies go in first; near/small.jpg then fails
    try:
        line = error_line(run_script("--db", db_path, "--move-to", dest, preexec_fn=preexec))
    finally:
        os.chmod(dest / "near", 0o755)
    assert "near/small.jpg" in line and "--undo" in line
    manifest = line.split("--undo ")[1].split()[0]
    with open(manifest, encoding="utf-8") as fh:
        data = json.load(fh)
    assert data["moved"] == PAIRS and len(files(dest)) == PAIRS
    assert (root / "near/small.jpg").read_bytes() == before["near/small.jpg"]
    done = run_script("--undo", manifest)
    assert done.returncode == 0 and done.stdout.startswith(f"moved {PAIRS} files back; {PAIRS} DB rows back as ok")
    assert "left where they are" not in done.stdout, done.stdout  # near/small.jpg was never moved
    assert files(root) == before and not files(dest)
    assert all(status == "ok" for _, status, _, _ in image_rows(db_path).values())


def test_generator_after_a_move_needs_no_allow_deletions_and_undo_restores_rows_without_extraction(tmp_path):
    db_path, root = build(tmp_path)
    before, rows_before = files(root), image_rows(db_path)
    features_before = query(db_path, "SELECT * FROM features ORDER BY content_hash")
    moved = {f"copies/{k:02d}.jpg" for k in range(PAIRS)} | {"near/small.jpg"}
    done = run_script("--db", db_path, "--move-to", tmp_path / "moved")
    assert done.returncode == 0, done.stderr
    manifest = done.stdout.split("--undo ")[1].split()[0]
    assert set(files(tmp_path / "moved")) == moved
    assert not moved & set(image_rows(db_path))  # searches no longer return them
    scan = subprocess.run([sys.executable, os.path.join(ROOT, "generator.py"), "--data", root, "--db", db_path,
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert scan.returncode == 0, scan.stderr  # today: "would delete 13 of 27 images ... --allow-deletions"
    assert f"{len(moved)} moved out by find_duplicates.py" in scan.stdout and "0 deleted" in scan.stdout
    conn = connect(db_path)
    assert prune_unused(conn) == 0  # near/small.jpg's features are kept for the undo
    conn.close()
    done = run_script("--undo", manifest)
    assert done.returncode == 0 and f"moved {len(moved)} files back" in done.stdout, done.stderr
    assert files(root) == before  # same bytes
    rows = image_rows(db_path)
    assert set(rows) == set(rows_before)
    assert all(rows[p][1:] == rows_before[p][1:] for p in rows)  # ok again, same content hash
    assert query(db_path, "SELECT * FROM features ORDER BY content_hash") == features_before
    assert query(db_path, "SELECT COUNT(*) FROM moved_out") == [(0,)]
    again = generator.scan(str(root), str(db_path), progress=False)
    assert (again.new, again.changed, again.deleted, again.moved) == (0, 0, 0, 0)
    assert "moved out" not in str(again)
