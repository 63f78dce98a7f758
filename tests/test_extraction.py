"""The extraction package: the missing-collection guard, features kept for files that come
back, --prune and its bound, the decode worker pool, the core split, and no torch import."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

import config
import generator
import main
from cli import run
from extraction import local
from extraction.local import balance
from extraction.workers import WorkerPool
from features import extract as features_extract
from features.network import loader
from reliability_tools import MODEL, image_rows, query, small_photos
from samples import ROOT


@pytest.fixture
def built(tmp_path):
    """6 small photos, scanned and extracted."""
    photos = tmp_path / "photos"
    small_photos(photos, 6, seed=3)
    db = tmp_path / "p.db"
    generator.scan(str(photos), str(db), progress=False)
    main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    return photos, db


def _main(db, *args):
    """main.py as the command line runs it (one-line errors); returns the exit status."""
    with pytest.raises(SystemExit) as stopped:
        run(lambda: main.main(["--db", str(db), "--model", MODEL, "--workers", "0", "--no-progress", *args]))
    return stopped.value.code


@pytest.mark.parametrize("gone", ["missing", "empty", "a file"])
def test_a_missing_or_empty_collection_stops_main_and_changes_nothing(built, capsys, gone):
    """Issue 12: an unmounted drive used to turn every pending row into 'file disappeared'."""
    photos, db = built
    new = photos / "new.png"
    small_photos(photos / "more", 1, seed=40)
    os.rename(next((photos / "more").iterdir()), new)
    generator.scan(str(photos), str(db), progress=False)
    before = image_rows(db)
    assert before["new.png"][1] == "pending"
    shutil.move(str(photos), str(photos.parent / "unmounted"))
    if gone == "empty":
        photos.mkdir()
    elif gone == "a file":
        photos.write_text("not a folder")
    status = _main(db)
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the dataset folder") and "nothing was changed" in lines[0]
    assert image_rows(db) == before
    if photos.is_dir():
        photos.rmdir()
    elif photos.exists():
        photos.unlink()
    shutil.move(str(photos.parent / "unmounted"), str(photos))  # mounted again: the same command works
    assert _main(db) == 0
    assert image_rows(db)["new.png"][1] == "ok"


class _Counting:
    """Counts decodes and images through the network in this process (workers=0)."""

    def __init__(self, monkeypatch):
        self.decoded, self.embedded = 0, 0
        real_decode, real_load = features_extract.decode, loader.load_embedder

        def decode(*args, **kwargs):
            self.decoded += 1
            return real_decode(*args, **kwargs)

        def load_embedder(*args, **kwargs):
            embedder = real_load(*args, **kwargs)
            real_embed = embedder.embed_crops

            def embed_crops(crops):
                self.embedded += len(crops)
                return real_embed(crops)

            embedder.embed_crops = embed_crops
            return embedder

        monkeypatch.setattr(features_extract, "decode", decode)
        monkeypatch.setattr(loader, "load_embedder", load_embedder)


def _features_rows(db):
    return query(db, "SELECT COUNT(*) FROM features")[0][0]


def test_a_file_that_comes_back_costs_no_decode_and_no_network(built, monkeypatch, capsys):
    photos, db = built
    away = photos.parent / "away.png"
    os.rename(photos / "img_0002.png", away)
    generator.scan(str(photos), str(db), progress=False)
    result = main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    assert (result.ok, result.unused_features) == (5, 1)
    assert "features of 1 files no longer in the collection kept for re-use (main.py --prune" in result.line()
    assert _features_rows(db) == 6

    os.rename(away, photos / "back_again.png")  # back, under another name: a new pending row
    generator.scan(str(photos), str(db), progress=False)
    counting = _Counting(monkeypatch)
    result = main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    assert (result.ok, result.done_now, result.unused_features) == (6, 1, 0)
    assert (counting.decoded, counting.embedded) == (0, 0)
    assert image_rows(db)["back_again.png"][1:3] == ("ok", None)
    assert _features_rows(db) == 6


def test_the_same_through_a_decode_worker_process(built):
    photos, db = built
    os.rename(photos / "img_0001.png", photos.parent / "away.png")
    generator.scan(str(photos), str(db), progress=False)
    os.rename(photos.parent / "away.png", photos / "img_0001.png")
    generator.scan(str(photos), str(db), progress=False)
    assert image_rows(db)["img_0001.png"][1] == "pending"
    result = main.extract(str(db), model=MODEL, workers=1, progress=False, build_index=False)
    assert (result.ok, result.done_now, result.unused_features) == (6, 1, 0)
    assert _features_rows(db) == 6


def test_prune_deletes_unused_features_and_the_bound_keeps_the_newest(built, monkeypatch, capsys):
    photos, db = built
    for name in ("img_0000.png", "img_0001.png", "img_0002.png"):
        os.remove(photos / name)
    generator.scan(str(photos), str(db), progress=False)
    monkeypatch.setattr(config, "MAX_UNUSED_FEATURES", 2)
    result = main.extract(str(db), model=MODEL, workers=0, progress=False, build_index=False)
    assert (result.unused_features, result.pruned) == (2, 1) and _features_rows(db) == 5
    kept = {h for (h,) in query(db, "SELECT content_hash FROM features")}
    assert _main(db, "--prune") == 0
    assert capsys.readouterr().out.strip() == "3 images ok, 0 skipped: none"
    assert _features_rows(db) == 3 and {h for (h,) in query(db, "SELECT content_hash FROM features")} < kept


def _crash_on_poison(path):
    if path == "poison":
        os.kill(os.getpid(), signal.SIGKILL)
    if path == "bug":
        raise KeyError(path)
    return path.upper()


def test_a_worker_killed_by_one_file_costs_that_file_only():
    pool = WorkerPool(_crash_on_poison, 2, lambda path, why: f"lost {path}: {why}")
    try:
        names = [f"f{i}" for i in range(12)]
        names[5], names[9] = "poison", "bug"
        for i, name in enumerate(names):
            pool.submit(i, name)
        results = [pool.result(i) for i in range(len(names))]
        assert pool.size == 2  # the dead worker was replaced
        again = [pool.submit(100 + i, f"g{i}") for i in range(4)]
        assert [pool.result(100 + i) for i in range(len(again))] == ["G0", "G1", "G2", "G3"]
    finally:
        pool.close()
    assert results[5] == "lost poison: the decoder crashed on this file (killed by signal 9)"
    assert results[9] == "lost bug: KeyError: 'bug'"
    others = [n.upper() for n in names if n not in ("poison", "bug")]
    assert [r for i, r in enumerate(results) if i not in (5, 9)] == others


def test_the_cores_are_split_between_decoding_and_the_network():
    assert balance(2, "auto", 0) == local.Balance(workers=2, threads=1)
    assert balance(8, "auto", 0) == local.Balance(workers=8, threads=4)
    assert balance(64, "auto", 0).workers == local.MAX_AUTO_WORKERS
    assert balance(1, "auto", 0) == local.Balance(workers=1, threads=1)
    assert balance(8, "3", 0) == local.Balance(workers=3, threads=4)  # IR_NUM_WORKERS=3
    assert balance(8, 0, 6) == local.Balance(workers=0, threads=6)  # IR_EMBED_THREADS=6
    with pytest.raises(ValueError, match="workers must be 0 .decode inline., a positive integer or auto"):
        balance(8, "many", 0)
    with pytest.raises(ValueError, match="network threads"):
        balance(8, 1, -2)


@pytest.mark.slow  # runs main.py
def test_main_py_with_the_onnx_model_cached_never_imports_torch(built):
    """Issue 11: start-up without torch. The fixture's run has cached the ONNX model."""
    photos, db = built
    small_photos(photos / "late", 2, seed=90)
    generator.scan(str(photos), str(db), progress=False)
    code = ("import sys, main; main.main(sys.argv[1:]);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'dask')))")
    done = subprocess.run([sys.executable, "-c", code, "--db", str(db), "--model", MODEL, "--workers", "1",
                           "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["8 images ok, 0 skipped: none", "[]"]


def test_decode_workers_live_for_the_whole_run(tmp_path, monkeypatch):
    """Pages of pending rows come and go; the same worker processes decode them all."""
    from extraction import run as extraction_run

    photos = tmp_path / "photos"
    small_photos(photos, 10, seed=12)
    db = tmp_path / "p.db"
    generator.scan(str(photos), str(db), progress=False)
    pids = tmp_path / "pids"
    real = local.describe_file

    def describe_file(path, *args):
        with open(pids, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(path, *args)

    monkeypatch.setattr(local, "describe_file", describe_file)  # the workers are forked: they see it
    monkeypatch.setattr(extraction_run, "PAGE", 3)
    result = main.extract(str(db), model=MODEL, workers=2, batch_size=2, progress=False, build_index=False)
    assert result.done_now == 10
    seen = pids.read_text().split()
    assert len(seen) == 10 and len(set(seen)) <= 2 and str(os.getpid()) not in seen
