"""Extraction benchmark: all features of realistic photos, the project's pipeline vs the seed's.

Both sides run the same network, ResNet18. Its verified ImageNet weights cannot be
downloaded here, so unless they are in the torch hub cache it is randomly initialised:
the same layers and the same arithmetic, so the same cost (the embeddings are meaningless,
which does not matter for timing). The project's side runs ``main.extract`` end to end
(in a child process, so its peak RSS is its own) on a DB made by ``generator.scan``; its
per-stage times come from running the same functions one stage at a time.

    python bench/extract_speed.py --child --db X.db --workers 1   # one end-to-end run (used by run.py)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import config  # noqa: E402
from bench.machine import peak_rss_mb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTHETIC_SHA = "random-init-resnet18-benchmark"


def resnet18_embedder():
    """ResNet18 for timing: verified ImageNet weights when present, else random init (same
    cost), computing in config.EMBED_PRECISION like the pipeline."""
    from features.embeddings import SPECS, Embedder, WeightsError, build_network, load_embedder

    try:
        return load_embedder("resnet18"), "ImageNet weights"
    except WeightsError:
        network = build_network("resnet18")
        return Embedder(SPECS["resnet18"], network, SYNTHETIC_SHA, config.EMBED_PRECISION), "random init (weights absent)"


def child(db_path, workers, batch_size):
    """One ``main.extract`` run with ResNet18; prints its JSON result line."""
    import features.embeddings
    import main

    import numpy as np

    embedder, weights = resnet18_embedder()
    features.embeddings.load_embedder = lambda name: embedder  # the model main.extract will use
    embedder.embed_crops(np.zeros((batch_size, 224, 224, 3), dtype=np.uint8))  # one-off kernel set-up, untimed
    start = time.perf_counter()
    result = main.extract(db_path, model="resnet18", batch_size=batch_size, workers=workers,
                          progress=False, build_index=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "ok": result["ok"], "error": result["error"], "weights": weights,
                      "peak_rss_mb": peak_rss_mb()}))


def end_to_end(folder, work_dir, workers, batch_size, threads=None, omp_policy=None):
    """Scan ``folder`` into a fresh DB and run the child; returns its result plus scan time."""
    import generator

    db_path = os.path.join(work_dir, f"e2e-w{workers}-b{batch_size}-t{threads}-{omp_policy}.db")
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    start = time.perf_counter()
    generator.scan(folder, db_path, progress=False)
    scan_seconds = time.perf_counter() - start
    env = dict(os.environ)
    if threads:
        env["IR_TORCH_THREADS"] = str(threads)
    if omp_policy:
        env["OMP_WAIT_POLICY"] = omp_policy
    out = subprocess.run([sys.executable, os.path.join(HERE, "extract_speed.py"), "--child", "--db", db_path,
                          "--workers", str(workers), "--batch-size", str(batch_size)],
                         capture_output=True, text=True, env=env, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(scan_seconds=scan_seconds, workers=workers, batch_size=batch_size,
                  torch_threads=threads or config.TORCH_THREADS or max(1, os.cpu_count() - workers),
                  omp_wait_policy=env.get("OMP_WAIT_POLICY", "default"))
    return result


def stage_times(folder, work_dir, embedder, batch_size=config.BATCH_SIZE):
    """Seconds per stage of the project's pipeline, one stage at a time on every file."""
    import numpy as np

    import generator
    from db import connect
    from db.features import ExtractedRow, write_batch
    from db.images import pending_page
    from features.decode import decode, read_file
    from features.embeddings import centre_crop
    from features.extract import Described, Settings, finish_batch
    from features.hashes import all_hashes
    from features.histogram import rgb_histograms
    from bench.reference import Stopwatch

    settings = Settings(model="resnet18")
    db_path = os.path.join(work_dir, "stages.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    generator.scan(folder, db_path, progress=False)
    conn = connect(db_path)
    rows = pending_page(conn, 0, 1_000_000)
    watch = Stopwatch()
    described = []
    for _, rel, _, _ in rows:
        data, digest = watch("read", read_file, os.path.join(folder, rel))
        image = watch("decode", decode, data, settings.decode_side, settings.max_pixels)
        rgb = watch("histogram", rgb_histograms, [image], settings.hist_bins)[0]
        hashes = watch("hashes", all_hashes, [image], settings.hash_size)
        crop = watch("preprocess", centre_crop, image)
        described.append(Described(digest, rgb, {k: v[0] for k, v in hashes.items()}, crop))
    for start in range(0, len(described), batch_size):
        batch = described[start:start + batch_size]
        watch("network", embedder.embed_crops, np.stack([d.crop for d in batch]))
        result = finish_batch(batch, embedder, settings)  # runs the network again: not timed as a stage
        extracted = [ExtractedRow(row.id, row.size, row.mtime_ns, f.content_hash)
                     for row, f in zip(rows[start:start + batch_size], result.files)]
        watch("db_write", write_batch, conn, extracted, [], result.computed_hashes, result.features)
    conn.close()
    return dict(watch.seconds)


def reference_run(paths, network, work_dir):
    from bench import reference

    db_file = os.path.join(work_dir, "reference.db")
    if os.path.exists(db_file):
        os.remove(db_file)
    return reference.extract_all(paths, network, db_file)


def run(folder, work_dir, configurations):
    """Reference vs project on the same files; ``configurations``: [(workers, batch, threads, omp)]."""
    import torch

    os.makedirs(work_dir, exist_ok=True)
    torch.set_num_threads(config.TORCH_THREADS or os.cpu_count())
    embedder, weights = resnet18_embedder()
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    ref_stages, ref_seconds = reference_run(paths, embedder.network.to(memory_format=torch.contiguous_format),
                                            work_dir)
    embedder.network.to(memory_format=torch.channels_last)
    runs = [end_to_end(folder, work_dir, *c) for c in configurations]
    stages = stage_times(folder, work_dir, embedder)
    shutil.rmtree(work_dir, ignore_errors=True)
    return {"images": len(paths), "weights": weights, "precision": embedder.precision, "reference_seconds": ref_seconds,
            "reference_stages": ref_stages, "stages": stages, "runs": runs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--db")
    parser.add_argument("--workers", type=int, default=config.NUM_WORKERS)
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE)
    args = parser.parse_args()
    if args.child:
        child(args.db, args.workers, args.batch_size)
