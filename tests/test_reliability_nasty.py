"""Bad input never stops a run: generator.py and main.py on the nasty collection.

Both scripts run as subprocesses, as a user runs them. Every unusable file must end up as
an 'error' row with a one-line reason and no features; every usable one gets features
equal to those of a plain RGB copy of the pixels it should decode to.
"""
import os
import re
import shutil
import tempfile

import pytest

import nasty_collection
from reliability_tools import (
    MODEL,
    assert_clean_stderr,
    assert_same_features,
    bhattacharyya,
    cosine,
    features_by_path,
    image_rows,
    permissions_enforced_for_children,
    query,
    run_script,
)

pytestmark = pytest.mark.slow  # runs the scripts end to end: `make test` runs it, `make test-fast` does not


@pytest.fixture(scope="module")
def nasty():
    base = tempfile.mkdtemp(prefix="ir-nasty-")
    data, db = os.path.join(base, "photos"), os.path.join(base, "nasty.db")
    try:
        kinds = nasty_collection.make(data, os.path.join(base, "outside"))
        preexec, enforced = permissions_enforced_for_children(base)
        if not enforced:  # e.g. root in a container that may not drop capabilities
            kinds = [k for k in kinds if k.reason != "permission" and not k.path.startswith("locked/")]
            nasty_collection.unlock(data)
        scan = run_script("generator.py", "--data", data, "--db", db, "--no-progress", preexec_fn=preexec)
        vanishing = next(k for k in kinds if k.reason == "disappeared")
        os.remove(os.path.join(data, vanishing.path))
        if enforced:
            os.chmod(os.path.join(data, nasty_collection.REVOKED_AFTER_SCAN), 0)
        extract = run_script("main.py", "--db", db, "--model", MODEL, "--workers", 1, "--batch-size", 8,
                             "--no-progress", preexec_fn=preexec)
        yield {"kinds": kinds, "db": db, "scan": scan, "extract": extract, "preexec": preexec}
    finally:
        nasty_collection.unlock(data)
        shutil.rmtree(base)


def test_collection_has_at_least_25_kinds(nasty):
    assert len({k.name.split(" orientation")[0] for k in nasty["kinds"]}) >= 25


def test_both_scripts_exit_0_without_tracebacks(nasty):
    for run in (nasty["scan"], nasty["extract"]):
        assert run.returncode == 0, run.stderr[-3000:]
        assert_clean_stderr(run.stderr)


def test_every_kind_is_recorded_as_expected(nasty):
    rows = image_rows(nasty["db"])
    for kind in nasty["kinds"]:
        if kind.status is None:
            assert kind.path not in rows, kind.name
            continue
        assert kind.path in rows, kind.name
        _, status, reason, digest = rows[kind.path]
        assert status == kind.status, (kind.name, status, reason)
        if kind.status == "error":
            assert kind.reason in reason and "\n" not in reason, (kind.name, reason)
            assert digest is None, f"{kind.name}: an unusable file must have no features"
    assert not [p for p, row in rows.items() if row[1] == "pending"]
    assert not [p for p in rows if p.startswith("broken/up/")], "a symlinked folder was followed"


def test_unusable_files_never_get_features(nasty):
    with_features = features_by_path(nasty["db"])
    errors = [p for p, row in image_rows(nasty["db"]).items() if row[1] == "error"]
    assert errors and not set(errors) & set(with_features)
    orphans = query(nasty["db"], "SELECT COUNT(*) FROM features WHERE content_hash NOT IN"
                                 " (SELECT content_hash FROM images WHERE status = 'ok')")
    assert orphans == [(0,)]


def test_summary_line_matches_the_db(nasty):
    rows = image_rows(nasty["db"])
    n_ok = sum(row[1] == "ok" for row in rows.values())
    reasons = [row[2] for row in rows.values() if row[1] == "error"]
    last = nasty["extract"].stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\d+) images ok, (\d+) skipped: (.*)", last)
    assert match, last
    assert (int(match[1]), int(match[2])) == (n_ok, len(reasons))
    for reason in set(reasons):
        assert f"{reason} ({reasons.count(reason)})" in match[3]


def test_each_unusable_file_is_logged_exactly_once(nasty):
    lines = (nasty["scan"].stderr + nasty["extract"].stderr).splitlines()
    for kind in nasty["kinds"]:
        if kind.status == "error":
            mentions = [line for line in lines if kind.path in line]
            assert len(mentions) == 1, (kind.name, mentions)


def test_decodable_files_get_the_features_of_their_pixels(nasty):
    """Rotated, CMYK, 16-bit, palette, alpha, animated, multi-page... decode to the right pixels."""
    features = features_by_path(nasty["db"])
    for kind in nasty["kinds"]:
        if kind.same_as:
            assert_same_features(features[kind.path], features[kind.same_as], what=kind.name)
        if kind.looks_like:  # lossy: close colours (an inverted copy is at 0.6) and content
            got, want = features[kind.path], features[kind.looks_like]
            assert bhattacharyya(got["rgb"], want["rgb"]) < 0.05, kind.name
            assert cosine(got["embedding"], want["embedding"]) > 0.99, kind.name


def test_extreme_sizes_get_real_features(nasty):
    import numpy as np

    features = features_by_path(nasty["db"])
    for path in ("sizes/dot.png", "sizes/strip.png"):
        embedding = np.frombuffer(features[path]["embedding"], "<f4")
        histogram = np.frombuffer(features[path]["rgb"], "<f4")
        assert np.isfinite(embedding).all() and np.linalg.norm(embedding) > 0
        assert abs(histogram.sum() - 1) < 1e-5
    dot = np.frombuffer(features["sizes/dot.png"]["rgb"], "<f4")
    assert dot.max() == 1.0  # one colour, one bin


def test_rerun_does_nothing_and_logs_nothing_again(nasty):
    before = image_rows(nasty["db"])
    scan = run_script("generator.py", "--data", os.path.dirname(nasty["db"]) + "/photos", "--db", nasty["db"],
                      "--no-progress", preexec_fn=nasty["preexec"])
    assert scan.returncode == 0 and "skipped" not in scan.stderr, scan.stderr
    assert "0 new, 0 changed, 0 moved, 1 deleted" in scan.stdout  # only the file that vanished
    after = image_rows(nasty["db"])
    vanished = set(before) - set(after)
    assert len(vanished) == 1 and before[vanished.pop()][2] == "file disappeared after the scan"
    assert {p: r for p, r in before.items() if p in after} == after
