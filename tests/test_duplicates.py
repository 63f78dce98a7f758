"""The duplicate finder: candidates and groups against brute force, the keeper rule, the
thresholds, find_duplicates on a small DB of fake features, the pHash and orientation rules,
and --move-to with its undo manifest. No network: vectors and hashes are made up, files are
a few bytes each."""
import hashlib
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import config
import duplicates.matrix_groups as matrix_groups
from cleanup.move import MoveError, move_copies, undo_moves
from db import batched, connect
from db.errors import NoFeaturesError
from db.features import ExtractedRow, write_batch
from db.images import ImageRow, insert_images, pending_page
from db.lookup import exact_copy_sets, images_by_ids
from db.meta import check_or_write_stamp, claim_dataset_root
from duplicates.candidates import all_pairs, close_pairs
from duplicates.finder import find_duplicates
from duplicates.groups import UnionFind, group_pairs, keeper_groups
from duplicates.hashes import hamming, hash_pairs, oriented_rows, plan
from duplicates.keeper import KeeperFacts, choose_keeper, has_copy_mark, keeper_reason
from duplicates.matrix_groups import group_rows, representatives
from duplicates.rows import RowReader
from duplicates.rule import DEFAULT_THRESHOLDS, Rule, check_threshold, duplicate_metric
from features.hashes import packed_hashes
from features.taken import date_taken_ns, parse_exif_date
from samples import ROOT, random_photo
from search import matrix_cache

DIM = 32
STAMP = {"embedding_model": "fake", "embedding_weights_sha256": "fake", "embedding_dim": DIM,
         "vector_dtype": "float32-le", "rgb_dim": 4, "hist_bins": 1, "hash_size": 8, "decode_side": 256,
         "embedding_precision": "float32"}


# --- planted data --------------------------------------------------------------------------

def planted(n=3000, dim=DIM, groups=150, copies=3, noise=0.06, seed=0):
    """Unit rows from 40 clusters, with ``groups`` planted groups of near copies at the end."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    rows = centres[rng.integers(0, 40, n)] + rng.standard_normal((n, dim)) * 0.9
    sources = rng.choice(n - groups * copies, groups, replace=False)
    for g, source in enumerate(sources):
        for c in range(copies):
            rows[n - groups * copies + g * copies + c] = rows[source] + rng.standard_normal(dim) * noise
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def pair_set(blocks):
    found = set()
    for block in blocks:
        found.update(zip(block.left.tolist(), block.right.tolist()))
    return found


def brute_pairs(unit, threshold):
    dist = 1.0 - unit.astype(np.float64) @ unit.T.astype(np.float64)
    a, b = np.nonzero(np.triu(dist <= threshold, 1))
    return set(zip(a.tolist(), b.tolist()))


def brute_groups(n, pairs):
    """Connected components by breadth-first search: the plainest possible reference."""
    neighbours = {i: set() for i in range(n)}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, out = set(), []
    for start in range(n):
        if start in seen or not neighbours[start]:
            continue
        todo, comp = [start], set()
        while todo:
            node = todo.pop()
            if node not in comp:
                comp.add(node)
                todo.extend(neighbours[node] - comp)
        seen |= comp
        out.append(sorted(comp))
    return sorted(out)


def test_cells_find_the_same_pairs_as_all_pairs():
    unit = planted()
    threshold = 0.02
    reference = brute_pairs(unit, threshold)
    assert len(reference) >= 400  # the planted copies (3 per group: 3 pairs each) at least
    assert pair_set(all_pairs(unit, threshold)) == reference
    found = pair_set(close_pairs(unit, threshold, brute_force_rows=0, cells=30))
    assert found <= reference  # verified exactly: never a pair above the threshold
    assert len(found & reference) / len(reference) >= 0.99


def test_every_pair_reported_once_with_its_distance():
    unit = planted(n=500, groups=20)
    blocks = list(close_pairs(unit, 0.05, brute_force_rows=0, cells=8, probes=2))
    left = np.concatenate([b.left for b in blocks])
    right = np.concatenate([b.right for b in blocks])
    dist = np.concatenate([b.distance for b in blocks])
    assert (left < right).all()
    np.testing.assert_allclose(dist, 1.0 - np.einsum("ij,ij->i", unit[left], unit[right]), atol=1e-5)


def test_union_find_matches_breadth_first_search():
    rng = np.random.default_rng(3)
    n = 400
    pairs = {tuple(sorted(p)) for p in rng.integers(0, n, (300, 2)).tolist() if p[0] != p[1]}
    sets = UnionFind(n)
    edges = np.array(sorted(pairs))
    for chunk in np.array_split(edges, 7):  # several blocks, as the finder feeds them
        sets.union(chunk[:, 0], chunk[:, 1])
    assert sorted(g.tolist() for g in sets.groups()) == brute_groups(n, pairs)


def test_grouping_on_planted_data_matches_brute_force():
    unit = planted(n=2500, groups=100, copies=4)
    threshold = 0.03
    expected = brute_groups(len(unit), brute_pairs(unit, threshold))
    got = group_rows(unit, Rule("cosine", threshold), probes=3)
    assert sorted(g.tolist() for g in got) == expected
    planted_rows = set(range(2500 - 400, 2500))
    assert planted_rows <= {r for g in expected for r in g}  # every planted copy is in a group


def test_threshold_moves_the_grouping():
    unit = planted(n=600, groups=30, copies=2, noise=0.05)
    counts = []
    for threshold in (0.0, 0.002, 0.2):
        groups = group_rows(unit, Rule("cosine", threshold))
        assert sorted(g.tolist() for g in groups) == brute_groups(len(unit), brute_pairs(unit, threshold))
        counts.append(sum(len(g) for g in groups))
    assert counts[0] == 0 and counts[0] < counts[1] < counts[2]


# --- hashes --------------------------------------------------------------------------------

@pytest.mark.parametrize("radius", [0, 1, 3, 5, 8])
@pytest.mark.parametrize("nbytes", [8, 13])  # 64 bits, and hash_size 10 (100 bits in 13 bytes)
def test_hash_pairs_match_brute_force(radius, nbytes):
    rng = np.random.default_rng(radius)
    n = 1500
    packed = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    bits = np.unpackbits(packed[:300], axis=1)
    flips = rng.integers(0, 7, 300)
    for row, count in enumerate(flips):  # 300 planted copies, 0-6 bits apart
        bits[row, rng.choice(nbytes * 8, count, replace=False)] ^= 1
    packed[n - 300:] = np.packbits(bits, axis=1)
    dist = hamming(packed[:, None, :], packed[None, :, :])
    a, b = np.nonzero(np.triu(dist <= radius, 1))
    assert pair_set(hash_pairs(packed, radius)) == set(zip(a.tolist(), b.tolist()))


def test_multi_index_plan_uses_the_pigeonhole_principle():
    for radius in range(0, 13):
        blocks, sub = plan(64, radius, 500_000)
        assert blocks * (sub + 1) > radius  # some block always differs by <= sub bits
        assert -(-64 // blocks) <= 62  # each block's key fits in a 64-bit integer


def test_oriented_hashes_follow_the_picture():
    """aHash of a mirrored / turned picture equals the stored bits permuted (within a few bits
    of resampling noise); dHash's mirror and pHash's mirror and transpose nearly so."""
    photo = random_photo(5, (256, 256)).convert("L")
    turns = {1: Image.Transpose.FLIP_LEFT_RIGHT, 2: Image.Transpose.FLIP_TOP_BOTTOM, 3: Image.Transpose.ROTATE_180}
    quarter = {4: Image.Transpose.ROTATE_90, 6: Image.Transpose.TRANSPOSE}
    for kind, limit, extra in (("ahash", 2, quarter), ("dhash", 6, {}), ("phash", 8, quarter)):
        stored = packed_hashes([photo], kind)
        variants = oriented_rows(stored, kind)
        for index, transpose in {**turns, **extra}.items():
            actual = packed_hashes([photo.transpose(transpose)], kind)
            assert hamming(variants[index], actual)[0] <= limit, (kind, index)
            assert hamming(stored, actual)[0] > limit  # without the transform it would not match


def test_hash_pairs_any_orientation_find_mirrored_copies():
    rng = np.random.default_rng(9)
    packed = rng.integers(0, 256, (200, 8), dtype=np.uint8)
    packed[150] = oriented_rows(packed[10:11], "ahash")[1][0]  # row 150 is row 10 mirrored
    assert (10, 150) not in pair_set(hash_pairs(packed, 2, kind="ahash"))
    assert (10, 150) in pair_set(hash_pairs(packed, 2, kind="ahash", any_orientation=True))


# --- the keeper rule -----------------------------------------------------------------------

def facts(path, w=100, h=100, size=9000, mtime=5, taken=None):
    return KeeperFacts(path, w, h, size, mtime, taken)


def test_keeper_rule_case_by_case():
    # Each case: the second file wins on exactly one rule, all earlier rules being equal.
    assert choose_keeper([facts("b"), facts("c", w=200, size=10, mtime=9)]) == 1  # most pixels
    assert choose_keeper([facts("b", mtime=5), facts("c", mtime=3, size=10)]) == 1  # then the oldest mtime
    assert choose_keeper([facts("b", taken=7, mtime=1), facts("c", taken=6, mtime=9)]) == 1  # date taken over mtime
    assert choose_keeper([facts("b", taken=None, mtime=7), facts("c", taken=6, mtime=9)]) == 1  # date taken, else mtime
    assert choose_keeper([facts("a copy.jpg", size=10**6), facts("b.jpg")]) == 1  # then a name without copy marks
    assert choose_keeper([facts("b", size=9000), facts("c", size=9001)]) == 1  # then the largest file
    assert choose_keeper([facts("b"), facts("a")]) == 1  # then the path
    assert choose_keeper([facts("a", w=None, h=None, size=10), facts("b", w=1, h=1, size=5)]) == 1  # unknown: 0 px
    # --prefer beats everything; the first folder given wins.
    big = facts("/x/new/big.jpg", w=4000, h=3000)
    assert choose_keeper([big, facts("/x/old/small.jpg", w=10, h=10)], prefer=["/x/old"]) == 1
    assert choose_keeper([facts("/x/a/1.jpg"), facts("/x/b/1.jpg")], prefer=["/x/b", "/x/a"]) == 1
    # a folder, not a prefix of the name:
    assert choose_keeper([facts("/x/old2/1.jpg"), facts("/x/old/2.jpg")], prefer=["/x/old"]) == 1
    # The reason names the first rule that tells the keeper from the other file.
    assert keeper_reason(facts("b", w=200), facts("a")) == "more pixels"
    assert keeper_reason(facts("b.jpg"), facts("b (1).jpg")) == "name without copy marks"
    assert keeper_reason(facts("/x/old/1.jpg"), big, ["/x/old"]) == "under a --prefer folder"


@pytest.mark.parametrize("name,marked", [
    ("IMG_0001.jpg", False), ("IMG_0001 copy.jpg", True), ("IMG_0001 (1).jpg", True), ("IMG_0001-1.jpg", True),
    ("photo_edited.jpg", True), ("photo_small.png", True), ("Kopie von photo.jpg", True), ("original.jpg", False),
    ("brightened.jpg", False), ("2019-06-01 beach.jpg", False), ("IMG-2034.jpg", False)])
def test_copy_marks(name, marked):
    assert has_copy_mark(f"/photos/{name}") is marked


def test_exif_date_taken_is_read_from_the_header(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2001:02:03 04:05:06"
    Image.new("RGB", (8, 8)).save(tmp_path / "dated.jpg", exif=exif)
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert date_taken_ns(str(tmp_path / "dated.jpg")) == 981173106 * 10**9  # 2001-02-03T04:05:06 read as UTC
    assert date_taken_ns(str(tmp_path / "plain.jpg")) is None
    assert date_taken_ns(str(tmp_path / "broken.jpg")) is None
    assert parse_exif_date("0000:00:00 00:00:00") is None and parse_exif_date(b"x") is None


def test_keeper_groups_cut_chains():
    # 0-1-2-3 is a chain; only 1 is a copy of the keeper 0; 2 and 3 are copies of each other.
    linked = np.zeros((4, 4), dtype=bool)
    for a, b in ((0, 1), (1, 2), (2, 3)):
        linked[a, b] = linked[b, a] = True
    dist = np.where(linked, 0.1, 1.0)
    for complete in (False, True):
        parts = keeper_groups(4, lambda i, js: (linked[i, js], dist[i, js]), complete=complete)
        assert [p.tolist() for p in parts] == [[0, 1], [2, 3]]


def test_complete_linkage_needs_every_pair():
    # 1 and 2 are both copies of the keeper 0 but not of each other: star takes both,
    # complete takes the nearer (2) and leaves 1 alone.
    linked = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 1]], dtype=bool)
    dist = np.array([[0, 0.1, 0.05], [0.1, 0, 0.3], [0.05, 0.3, 0]])
    compare = lambda i, js: (linked[i, js], dist[i, js])  # noqa: E731
    assert [p.tolist() for p in keeper_groups(3, compare)] == [[0, 1, 2]]
    assert [p.tolist() for p in keeper_groups(3, compare, complete=True)] == [[0, 2]]


def brute_keeper_groups(unit, threshold, complete):
    """The plainest reference: the whole distance matrix; connected sets by breadth-first
    search; in each, in keeper order (here: row order), the first untaken row takes every
    untaken row within the threshold (complete: nearest first, only if within it of all taken)."""
    dist = 1.0 - unit.astype(np.float64) @ unit.T.astype(np.float64)
    out = []
    for comp in brute_groups(len(unit), brute_pairs(unit, threshold)):
        free = list(comp)
        while free:
            keeper = free.pop(0)
            near = sorted((j for j in free if dist[keeper, j] <= threshold), key=lambda j: (dist[keeper, j], j))
            taken = []
            for j in near:
                if not complete or all(dist[j, t] <= threshold for t in taken):
                    taken.append(j)
            free = [j for j in free if j not in taken]
            if taken:
                out.append([keeper] + sorted(taken))
    return sorted(out)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("linkage", ["star", "complete", "chain"])
@pytest.mark.parametrize("dense_rows", [3000, 3])  # all pairs of a set at once, or one keeper at a time
def test_linkages_match_a_brute_force_reference(seed, linkage, dense_rows, monkeypatch):
    monkeypatch.setattr(matrix_groups, "DENSE_ROWS", dense_rows)
    # Small random data with chains (random walks, each step ~ the threshold) and blobs (copies
    # around one picture, some farther from each other than from the centre).
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(12):
        start = rng.standard_normal(16)
        parts.append(start + np.cumsum(rng.standard_normal((int(rng.integers(2, 9)), 16)) * 0.12, axis=0))
        parts.append(start + rng.standard_normal((int(rng.integers(2, 7)), 16)) * 0.1)
    rows = np.concatenate(parts)
    unit = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    threshold = 0.02
    got = sorted(g.tolist() for g in group_rows(unit, Rule("cosine", threshold), linkage=linkage))
    if linkage == "chain":
        assert got == brute_groups(len(unit), brute_pairs(unit, threshold))
        return
    reference = brute_keeper_groups(unit, threshold, linkage == "complete")
    assert got == reference
    dist = 1.0 - unit.astype(np.float64) @ unit.T
    for group in got:  # no chains: every member within the threshold of its keeper (complete: of all)
        assert (dist[group[0], group] <= threshold + 1e-6).all()
        if linkage == "complete":
            assert (dist[np.ix_(group, group)] <= threshold + 1e-6).all()
    chains = brute_groups(len(unit), brute_pairs(unit, threshold))
    assert len(got) > len(chains)  # the data has chains to cut
    star = sorted(g.tolist() for g in group_rows(unit, Rule("cosine", threshold), linkage="star"))
    assert linkage == "star" or got != star  # and blobs where complete linkage differs from star


# --- thresholds and modes --------------------------------------------------------------------

def test_thresholds_are_checked():
    assert check_threshold("cosine", None) == DEFAULT_THRESHOLDS["cosine"]
    assert check_threshold("hamming", 4.0) == 4 and isinstance(check_threshold("hamming", 4.0), int)
    for metric, bad in (("cosine", -0.1), ("cosine", 1.5), ("cosine", "x"), ("cosine", True), ("hamming", 2.5),
                        ("hamming", 17), ("hamming", -1)):
        with pytest.raises(ValueError, match="threshold"):
            check_threshold(metric, bad)


def test_modes_are_checked():
    assert duplicate_metric("embeddings") == "cosine"
    assert duplicate_metric("dhash") == "hamming"
    with pytest.raises(ValueError, match="valid modes for duplicates: embeddings, ahash, dhash, phash"):
        duplicate_metric("rgb")
    with pytest.raises(ValueError, match="unknown mode; valid modes for duplicates: embeddings, ahash"):
        duplicate_metric("colour")


# --- find_duplicates on a DB ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def untransformed(monkeypatch):
    """The hand-set vectors of these tests mean their raw cosines: a handful of rows has no
    collection mean worth taking out (search.transform; bench/quality_duplicates.py measures the
    finder on real collections with the default transform)."""
    monkeypatch.setattr(config, "SEARCH_TRANSFORM", "none")
    monkeypatch.setenv("IR_SEARCH_TRANSFORM", "none")  # for the scripts these tests run


def fake_collection(tmp_path, items):
    """A DB + files from items: (name, vector, phash bytes, (width, height), content bytes, mtime_ns).
    Items with equal content are byte-identical files (one features row, as main.py stores them)."""
    root = tmp_path / "photos"
    root.mkdir()
    db_path = tmp_path / "fake.db"
    conn = connect(db_path, create=True)
    claim_dataset_root(conn, str(root))
    check_or_write_stamp(conn, STAMP)
    rows = []
    for name, _, _, (width, height), content, mtime in items:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, ns=(mtime, mtime))
        rows.append(ImageRow(name, len(content), mtime, width, height, "pending", None))
    insert_images(conn, rows)
    pending = {row.path: row for row in pending_page(conn, 0, len(items) + 1)}
    features, hashes, extracted = {c: [] for c in ("embedding", "rgb", "ahash", "dhash", "phash")}, [], []
    for name, vector, phash, _, content, _ in items:
        digest = hashlib.blake2b(content, digest_size=16).digest()
        row = pending[name]
        extracted.append(ExtractedRow(row.id, row.size, row.mtime_ns, digest))
        if digest in hashes:
            continue
        hashes.append(digest)
        features["embedding"].append(np.asarray(vector, dtype=np.float32))
        features["rgb"].append(np.full(4, 0.25, dtype=np.float32))
        for column in ("ahash", "dhash"):
            features[column].append(np.frombuffer(hashlib.sha256(content).digest()[:8], dtype=np.uint8))
        features["phash"].append(np.frombuffer(phash, dtype=np.uint8))
    write_batch(conn, extracted, [], hashes, {c: np.stack(v) for c, v in features.items()})
    matrix_cache.forget()
    return conn, root


def unit(*values):
    vector = np.zeros(DIM, dtype=np.float32)
    vector[:len(values)] = values
    return vector / np.linalg.norm(vector)


def test_find_duplicates_groups_keeper_and_kinds(tmp_path):
    far_hash = bytes(range(8))
    items = [
        # picture A: a big original, a smaller edit, and a byte-identical copy of the edit
        ("a/original.jpg", unit(1, 0.0), b"\x00" * 8, (400, 300), b"A-original" * 50, 3_000),
        ("a/small.jpg", unit(1, 0.2), b"\xff" * 8, (200, 150), b"A-small", 2_000),
        ("b/small-copy.jpg", unit(1, 0.2), b"\xff" * 8, (200, 150), b"A-small", 1_000),
        # picture B: two byte-identical files only
        ("b/x.jpg", unit(0, 1, 0), b"\x0f" * 8, (50, 50), b"B", 5),
        ("b/y.jpg", unit(0, 1, 0), b"\x0f" * 8, (50, 50), b"B", 4),
        # picture C: a heavy edit far in embeddings (0.4) but with the same pHash: joined by the pHash rule
        ("c/photo.jpg", unit(0, 0, 1), b"\xf0" * 8, (300, 300), b"C-photo", 7),
        ("c/grey.jpg", unit(0, 0, 1, 1.22), b"\xf0" * 8, (300, 300), b"C-grey", 8),
        # a look-alike of C: 0.4 away as well, but a different pHash: not a copy
        ("d/other.jpg", unit(0, 0, 1, -1.22), far_hash, (300, 300), b"D", 9),
    ]
    conn, root = fake_collection(tmp_path, items)
    report = find_duplicates(conn.cursor())
    assert [sorted(os.path.relpath(p, root) for p in g.paths) for g in report.groups] == [
        ["a/original.jpg", "a/small.jpg", "b/small-copy.jpg"], ["b/x.jpg", "b/y.jpg"], ["c/grey.jpg", "c/photo.jpg"]]
    a, b, c = report.groups
    assert a.keep == str(root / "a/original.jpg") and a.kind == "copy"  # most pixels
    assert a.distances[0] == 0 and a.distances[1] == pytest.approx(1 - 1 / np.sqrt(1.04), abs=1e-5)
    assert a.distances[1] == a.distances[2]  # the byte-identical pair is equally far
    assert b.kind == "exact" and b.keep == str(root / "b/y.jpg")  # same size: the older file
    assert c.keep == str(root / "c/photo.jpg")  # same pixels: the larger file (7 bytes against 6)
    assert report.images_in_groups == 7
    assert report.bytes_freed == sum(m.size for g in report.groups for m in g.members[1:])
    # Without the pHash rule the heavy edit is missed; a tighter threshold drops the small edit.
    assert len(find_duplicates(conn, use_hashes=False).groups) == 2
    tight = find_duplicates(conn, threshold=0.01)
    assert sorted(len(g.members) for g in tight.groups) == [2, 2, 2]
    assert tight.settings["threshold"] == 0.01 and tight.settings["images"] == 8


def test_the_original_is_kept_not_the_larger_edit(tmp_path):
    # The demo's case: a brightened copy has the original's pixels and a larger file; the
    # original is older, so it is kept (the old rule kept the larger file). --prefer overrides.
    items = [("cat/original.jpg", unit(1, 0.0), b"\x00" * 8, (400, 300), b"o" * 100, 1_000),
             ("cat/brightened.jpg", unit(1, 0.1), b"\x00" * 8, (400, 300), b"b" * 900, 2_000),
             ("cat/resized.jpg", unit(1, 0.1), b"\x00" * 8, (200, 150), b"r" * 50, 500),
             ("edits/cat copy.jpg", unit(1, 0.05), b"\x00" * 8, (400, 300), b"c" * 100, 1_000)]
    conn, root = fake_collection(tmp_path, items)
    group, = find_duplicates(conn).groups
    assert group.keep == str(root / "cat/original.jpg")
    reasons = {os.path.relpath(m.path, root): m.reason for m in group.members}
    assert reasons == {"cat/original.jpg": "keeper", "cat/brightened.jpg": "older (date taken, else mtime)",
                       "cat/resized.jpg": "more pixels", "edits/cat copy.jpg": "name without copy marks"}
    preferred, = find_duplicates(conn, prefer=[str(root / "edits")]).groups
    assert preferred.keep == str(root / "edits/cat copy.jpg")
    assert {m.reason for m in preferred.members[1:]} == {"under a --prefer folder"}


def test_similar_shots_are_their_own_kind(tmp_path):
    # A picture with a copy (0.05 away) and a byte-identical copy; another shot of the scene
    # 0.3 away (similar, not a copy); a third picture 0.9 away (nothing).
    far = bytes(range(8))
    items = [("a/shot1.jpg", unit(1, 0.0), b"\x00" * 8, (400, 300), b"one", 1),
             ("a/shot1-small.jpg", unit(1, 0.33), b"\x01" * 8, (200, 150), b"one-small", 2),
             ("b/shot1.jpg", unit(1, 0.0), b"\x00" * 8, (400, 300), b"one", 3),
             ("a/shot2.jpg", unit(1, 1.02), far, (400, 300), b"two", 4),
             ("c/other.jpg", unit(0, 1), b"\xf0" * 8, (400, 300), b"three", 5)]
    conn, root = fake_collection(tmp_path, items)
    plain = find_duplicates(conn)
    assert [g.kind for g in plain.groups] == ["copy"]
    copies, = plain.groups
    assert {os.path.relpath(m.path, root): m.kind for m in copies.members} == {
        "a/shot1.jpg": "copy", "b/shot1.jpg": "exact", "a/shot1-small.jpg": "copy"}  # the keeper: its group's kind
    with_shots = find_duplicates(conn, similar=True)
    assert [g.kind for g in with_shots.groups] == ["copy", "similar"]
    shots = with_shots.groups[1]
    assert [os.path.relpath(p, root) for p in shots.paths] == ["a/shot1.jpg", "a/shot2.jpg"]  # the copy group's keeper
    assert [m.kind for m in shots.members] == ["similar", "similar"] and 0.25 < shots.distances[1] <= 0.35
    assert shots.bytes_freed == 0 and with_shots.bytes_freed == plain.bytes_freed  # other pictures free nothing
    with pytest.raises(ValueError, match="beyond the copy threshold"):
        find_duplicates(conn, similar=0.1)
    with pytest.raises(ValueError, match="valid modes for --similar"):
        find_duplicates(conn, "phash", similar=True)


def test_find_duplicates_in_a_hash_mode(tmp_path):
    items = [(f"{k}.jpg", unit(1, k), bytes([k]) * 8, (10, 10), bytes([k]) * (k + 1), k) for k in range(4)]
    items.append(("copy.jpg", unit(0, 1), bytes([1]) * 8, (10, 10), b"other", 9))  # pHash of 1, far embedding
    conn, root = fake_collection(tmp_path, items)
    report = find_duplicates(conn, "phash", 0)
    assert [sorted(os.path.basename(p) for p in g.paths) for g in report.groups] == [["1.jpg", "copy.jpg"]]
    assert report.groups[0].distances == [0.0, 0.0] and report.settings["metric"] == "hamming"


def test_details_are_read_in_chunks(tmp_path, monkeypatch):
    items = [(f"{k}.jpg", unit(1, k), bytes(8), (k + 1, 2), b"same" if k < 3 else bytes([k]) * 3, k)
             for k in range(7)]
    conn, _ = fake_collection(tmp_path, items)
    ids = [row[0] for row in conn.execute("SELECT id FROM images ORDER BY id")]
    monkeypatch.setattr(batched, "CHUNK", 2)  # several statements for 7 ids
    found = images_by_ids(conn, ids + [10_000])
    assert sorted(found) == ids and found[ids[4]].width == 5 and found[ids[4]].size == 3
    assert exact_copy_sets(conn) == [ids[:3]]


def test_a_db_without_features_says_so(tmp_path):
    conn = connect(tmp_path / "empty.db", create=True)
    with pytest.raises(NoFeaturesError, match="main.py"):
        find_duplicates(conn)


def test_group_pairs_adds_known_sets():
    blocks = []
    groups = group_pairs(6, blocks, extra_sets=[[1, 4], [2]])
    assert [g.tolist() for g in groups] == [[1, 4]]
    assert list(itertools.chain.from_iterable(g.tolist() for g in group_pairs(3, []))) == []


# --- --move-to and its undo manifest ---------------------------------------------------------

def two_groups(tmp_path):
    items = [("keep/a.jpg", unit(1, 0), bytes(8), (400, 300), b"big original", 1),
             ("copies/a-small.jpg", unit(1, 0.1), bytes(8), (200, 150), b"small", 2),
             ("deep/er/a-copy.jpg", unit(1, 0.1), bytes(8), (200, 150), b"small", 3),
             ("keep/b.jpg", unit(0, 1), b"\xff" * 8, (10, 10), b"b-1", 4),
             ("b-copy.jpg", unit(0, 1), b"\xff" * 8, (10, 10), b"b-1", 5),
             ("alone.jpg", unit(0, 0, 1), b"\x0f" * 8, (10, 10), b"alone", 6)]
    return fake_collection(tmp_path, items)


def test_move_to_keeps_relative_paths_and_undo_puts_them_back(tmp_path):
    conn, root = two_groups(tmp_path)
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.jpg")}
    dest = tmp_path / "moved"
    report = find_duplicates(conn)
    result = move_copies(conn, report.groups, report.settings["root"], str(dest))
    moved = {"copies/a-small.jpg", "deep/er/a-copy.jpg", "b-copy.jpg"}
    assert result.moved == 3 and result.bytes == len(b"small") * 2 + len(b"b-1")
    assert {str(p.relative_to(dest)) for p in dest.rglob("*.jpg")} == moved
    assert {str(p.relative_to(root)) for p in root.rglob("*.jpg")} == {"keep/a.jpg", "keep/b.jpg", "alone.jpg"}
    with open(result.manifest, encoding="utf-8") as fh:
        manifest = json.load(fh)
    assert manifest["moved"] == 3 and {os.path.relpath(m["from"], root) for m in manifest["moves"]} == moved
    restored, skipped, rows = undo_moves(result.manifest, conn)
    assert restored == 3 and skipped == [] and rows == 3
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*.jpg")} == before
    assert not list(dest.rglob("*.jpg"))


def test_move_to_never_overwrites(tmp_path):
    conn, root = two_groups(tmp_path)
    dest = tmp_path / "moved"
    (dest / "copies").mkdir(parents=True)
    (dest / "copies" / "a-small.jpg").write_bytes(b"someone else's file")
    report = find_duplicates(conn)
    with pytest.raises(MoveError, match="already exists: nothing was moved"):
        move_copies(conn, report.groups, report.settings["root"], str(dest))
    assert (root / "copies" / "a-small.jpg").read_bytes() == b"small"  # nothing moved at all
    assert (dest / "copies" / "a-small.jpg").read_bytes() == b"someone else's file"
    with pytest.raises(MoveError, match="inside the collection"):
        move_copies(conn, report.groups, report.settings["root"], str(root / "dups"))


def test_undo_never_overwrites_a_file_that_came_back(tmp_path):
    conn, root = two_groups(tmp_path)
    report = find_duplicates(conn)
    result = move_copies(conn, report.groups, report.settings["root"], str(tmp_path / "moved"))
    (root / "b-copy.jpg").write_bytes(b"new file in the old place")
    restored, skipped, _ = undo_moves(result.manifest, conn)
    assert restored == 2 and len(skipped) == 1 and "b-copy.jpg exists again" in skipped[0]
    assert (root / "b-copy.jpg").read_bytes() == b"new file in the old place"
    assert (tmp_path / "moved" / "b-copy.jpg").read_bytes() == b"b-1"


def test_move_and_undo_from_the_command_line(tmp_path):
    conn, root = two_groups(tmp_path)
    conn.close()
    dest = tmp_path / "moved"
    done = run_script("--db", str(tmp_path / "fake.db"), "--move-to", str(dest))
    assert done.returncode == 0, done.stderr
    manifest = done.stdout.split("--undo ")[1].strip()
    assert os.path.exists(manifest) and len(list(dest.rglob("*.jpg"))) == 3
    done = run_script("--undo", manifest)
    assert done.returncode == 0 and "moved 3 files back" in done.stdout
    assert len(list(root.rglob("*.jpg"))) == 6


def test_move_to_never_moves_similar_shots(tmp_path):
    # Two shots of one scene 0.3 apart (similar, not copies) and a picture with one copy.
    items = [("scene/one.jpg", unit(1, 0), bytes(8), (100, 100), b"one", 1),
             ("scene/two.jpg", unit(1, 1.02), bytes(range(8)), (100, 100), b"two", 2),
             ("cat/original.jpg", unit(0, 1), b"\xf0" * 8, (100, 100), b"cat", 3),
             ("cat/copy.jpg", unit(0, 1, 0.1), b"\xf0" * 8, (50, 50), b"cat-copy", 4)]
    conn, root = fake_collection(tmp_path, items)
    assert [g.kind for g in find_duplicates(conn, similar=True).groups] == ["copy", "similar"]
    conn.close()
    dest = tmp_path / "moved"
    done = run_script("--db", str(tmp_path / "fake.db"), "--similar", "--move-to", str(dest))
    assert done.returncode == 0, done.stderr
    assert "1 groups of similar shots" in done.stdout
    assert [p.relative_to(dest).as_posix() for p in dest.rglob("*.jpg")] == ["cat/copy.jpg"]
    assert (root / "scene" / "two.jpg").exists()


def run_script(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "find_duplicates.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_any_orientation_joins_a_mirrored_copy_by_its_hash(tmp_path):
    rng = np.random.default_rng(4)
    upright = rng.integers(0, 256, (1, 8), dtype=np.uint8)
    mirrored = oriented_rows(upright, "phash")[1]  # what the mirrored picture's pHash would be
    items = [("photo.jpg", unit(1, 0), upright.tobytes(), (100, 100), b"photo", 1),
             ("mirror.jpg", unit(1, 1.02), mirrored.tobytes(), (100, 100), b"mirror", 2),  # cosine 0.3 away
             ("other.jpg", unit(0, 1), bytes(8), (100, 100), b"other", 3)]
    conn, _ = fake_collection(tmp_path, items)
    assert find_duplicates(conn).groups == []
    groups = find_duplicates(conn, any_orientation=True).groups
    assert [sorted(os.path.basename(p) for p in g.paths) for g in groups] == [["mirror.jpg", "photo.jpg"]]
    assert find_duplicates(conn, "phash", 0, any_orientation=True).groups[0].distances == [0.0, 0.0]


def test_a_row_deleted_after_loading_is_left_out(tmp_path, monkeypatch):
    items = [(f"{k}.jpg", unit(1, 0.01 * k), bytes(8), (10, 10), bytes([k]) * 3, k) for k in range(3)]
    conn, _ = fake_collection(tmp_path, items)

    def without_first(conn, ids):  # a rescan deleted 0.jpg between loading the matrix and reading details
        return {k: v for k, v in images_by_ids(conn, ids).items() if k != min(ids)}

    monkeypatch.setattr("duplicates.finder.images_by_ids", without_first)
    groups = find_duplicates(conn).groups
    assert [sorted(os.path.basename(p) for p in g.paths) for g in groups] == [["1.jpg", "2.jpg"]]


def test_row_reader_reads_the_mapped_rows(tmp_path):
    matrix = np.random.default_rng(2).standard_normal((1000, 24)).astype(np.float32)
    np.save(tmp_path / "m.npy", matrix)
    mapped = np.asarray(np.load(tmp_path / "m.npy", mmap_mode="r"))  # a plain view of a np.memmap, as the store's
    rows = np.array([5, 6, 7, 999, 0, 3, 500, 501])
    for source in (mapped, mapped[100:], matrix):
        with RowReader(source) as reader:
            assert (reader._fd is not None) == (source is not matrix)
            np.testing.assert_array_equal(reader.take(rows[rows < len(source)]), source[rows[rows < len(source)]])
            np.testing.assert_array_equal(reader.slice(10, 700), source[10:700])
            assert reader.take(np.array([], dtype=np.int64)).shape == (0, 24)


@pytest.mark.slow
def test_a_flood_of_identical_pictures_is_summarised_not_listed():
    rng = np.random.default_rng(8)
    unit = planted(n=3000, groups=20)
    unit[:2500] = unit[0]  # 2,500 identical pictures: 3 million pairs
    packed = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
    packed[:2500] = packed[0]
    for blocks, rule in ((list(close_pairs(unit, 0.02)), "cosine"), (list(hash_pairs(packed, 0)), "hamming")):
        assert sum(len(b.left) for b in blocks) < 300_000  # of 3.1 million (blocks under 200k pairs stay listed)
        if rule == "cosine":  # every pair, merged by the vectorised union-find (BFS is too slow for 3 million)
            dist = 1.0 - unit.astype(np.float64) @ unit.T.astype(np.float64)
            sets = UnionFind(3000)
            sets.union(*np.nonzero(np.triu(dist <= 0.02, 1)))
            expected = sorted(g.tolist() for g in sets.groups())
        else:
            expected = [list(range(2500))]
        assert sorted(g.tolist() for g in group_pairs(3000, blocks)) == expected, rule


def test_search_on_representatives_of_byte_identical_sets():
    unit = planted(n=1200, groups=30)
    exact = [np.array([3, 700, 1100]), np.array([5, 6])]
    for rows in exact:
        unit[rows] = unit[rows[0]]  # byte-identical files share one feature row
    subset = representatives(len(unit), exact)
    assert len(subset) == 1200 - 3 and 700 not in subset and 3 in subset
    found = pair_set(close_pairs(unit, 0.02, subset=subset, brute_force_rows=0, cells=10))
    assert found <= brute_pairs(unit, 0.02) and all(a in subset and b in subset for a, b in found)
    groups = group_rows(unit, Rule("cosine", 0.02), exact_sets=exact)
    with_subset = group_pairs(len(unit), close_pairs(unit, 0.02, subset=subset), exact)
    assert sorted(g.tolist() for g in with_subset) == sorted(g.tolist() for g in groups)
