"""Benchmark: images/s of a local run vs `main.py --dask` on a LocalCluster of 1 and 2 workers.

    .venv/bin/python -m bench.bench_dask --images 300 --shard-size 25     (make bench-dask)

Every run extracts the same files, starting from a copy of the same freshly scanned DB, in
the same process run (the machine is shared: compare ratios, not absolute numbers across
runs). A cluster is started before its timer (start-up is reported in its own column); model
loading on the workers is inside the first run's timer, as it is inside the local run's; a
second run of each mode (workers keep their model) shows the steady rate a big collection gets. The overhead
per shard is the round trip of an empty shard on a warm worker: what Dask adds per task.
CPU ms/img (driver + workers, or main.py + its decode processes) is the column that other
jobs on a shared machine disturb least.
Prints a markdown table and writes bench/results/dask.json.
"""
import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import config
from db import copy_database
from extraction import run as extraction_run
from extraction.local import balance, extract_local
from extraction.run import ModelChoice
from features.extract import Settings
from fileio import atomic_write
from generator import scan, walk_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
log = logging.getLogger("bench_dask")


def collection(n_images, folder):
    """Copy the first ``n_images`` files of the demo collection (built if missing) to ``folder``."""
    source = os.path.join(ROOT, "demo_data", "images")
    if not os.path.isdir(source):
        source = os.path.join(folder, "demo")
        subprocess.run([sys.executable, "-m", "demo.build_demo", "--out", source], check=True, cwd=ROOT)
    files = sorted(walk_images(source, set(config.IMAGE_EXTENSIONS)))[:n_images]
    target = os.path.join(folder, "images")
    for rel, full in files:
        os.makedirs(os.path.dirname(os.path.join(target, rel)), exist_ok=True)
        shutil.copy(full, os.path.join(target, rel))
    return target, len(files)


FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")


def cpu_flags():
    """Which of FLAGS this CPU has: what the network's speed depends on."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in FLAGS if flag in have]
    except OSError:
        pass
    return []


def cpu_seconds(who=resource.RUSAGE_SELF):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def local_cpu_seconds():
    """This process and its finished children (the local run's decode processes)."""
    return cpu_seconds() + cpu_seconds(resource.RUSAGE_CHILDREN)


def workers_cpu_seconds(client):
    return sum(client.run(cpu_seconds).values())


def empty_shard_round_trip(client, settings, root, repeats=30):
    """Mean seconds from submit to result of a shard with no images, on a warm worker."""
    from extraction.dask_worker import extract_shard  # imports dask: only for the cluster rows

    choice = ModelChoice(settings.model)
    client.submit(extract_shard, [], settings, choice, 32, root, pure=False).result()
    start = time.perf_counter()
    for _ in range(repeats):
        client.submit(extract_shard, [], settings, choice, 32, root, pure=False).result()
    return (time.perf_counter() - start) / repeats


class WriteTimer:
    """Wraps the driver's store_results to time the one transaction per shard it runs."""

    def __init__(self):
        self.seconds, self.shards, self.original = 0.0, 0, extraction_run.store_results

    def __call__(self, *args):
        start = time.perf_counter()
        self.original(*args)
        self.seconds += time.perf_counter() - start
        self.shards += 1


def timed_twice(extract, base_db, db, n_images, cpu_now):
    """Run ``extract(db)`` on a fresh copy of the scanned DB twice: (cold row, warm seconds)."""
    copy_database(base_db, db)
    cpu_before, start = cpu_now(), time.perf_counter()
    result = extract(db)
    seconds, cpu = time.perf_counter() - start, cpu_now() - cpu_before
    assert result["done_now"] == n_images, result
    copy_database(base_db, db)  # again: the model is loaded (workers) or torch imported (local)
    start = time.perf_counter()
    extract(db)
    warm = time.perf_counter() - start
    return {"seconds": seconds, "img_per_s": n_images / seconds, "cpu_ms_per_img": cpu / n_images * 1000,
            "warm_img_per_s": n_images / warm}


def run_local(base_db, folder, n_images):
    row = timed_twice(lambda db: extract_local(db, progress=False, build_index=False), base_db,
                      os.path.join(folder, "local.db"), n_images, local_cpu_seconds)
    split = balance()
    return dict(row, mode=f"local (main.py, {split.workers} decode processes, {split.threads} network threads)")


def run_cluster(n_workers, base_db, folder, n_images, shard_size):
    from distributed import Client, LocalCluster  # dask is heavy: only for the cluster rows

    from extraction.dask import extract_on_cluster
    from extraction.dask_worker import probe  # imports dask, like the line above

    started = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(n_workers)
        startup = time.perf_counter() - started
        timer = WriteTimer()
        extraction_run.store_results = timer
        try:
            row = timed_twice(lambda db: extract_on_cluster(
                db, cluster.scheduler_address, progress=False, build_index=False, shard_size=shard_size),
                base_db, os.path.join(folder, f"dask{n_workers}.db"), n_images,
                lambda: cpu_seconds() + workers_cpu_seconds(client))
        finally:
            extraction_run.store_results = timer.original
        wanted = Settings("auto", config.HASH_SIZE, config.HIST_BINS, config.DECODE_SIDE, config.MAX_IMAGE_PIXELS)
        settings = client.submit(probe, ModelChoice("auto"), wanted, pure=False).result().settings
        overhead = empty_shard_round_trip(client, settings, folder)
        logging.getLogger("distributed.nanny").setLevel(logging.ERROR)  # slow torch exit, then killed: fine
    return dict(row, mode=f"LocalCluster, {n_workers} worker{'s' if n_workers > 1 else ''}", startup_s=startup,
                empty_shard_ms=overhead * 1000, write_ms_per_shard=timer.seconds / timer.shards * 1000)


def main_bench():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--shard-size", type=int, default=25)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "dask.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as folder:
        images, n_images = collection(args.images, folder)
        base_db = os.path.join(folder, "scanned.db")
        scan(images, base_db, progress=False)
        rows = [run_local(base_db, folder, n_images)]
        for n_workers in (1, 2):
            rows.append(run_cluster(n_workers, base_db, folder, n_images, args.shard_size))
    for row in rows:
        row["vs_local"] = row["img_per_s"] / rows[0]["img_per_s"]
        row["warm_vs_local"] = row["warm_img_per_s"] / rows[0]["warm_img_per_s"]
    print(f"\n{n_images} images, shards of {args.shard_size}, {os.cpu_count()} cores, CPU flags: "
          f"{', '.join(cpu_flags()) or 'none of ' + ', '.join(FLAGS)}; network: {config.EMBED_RUNTIME}, "
          f"precision {config.EMBED_PRECISION}\n")
    print("| mode | first run: s | img/s | vs local | CPU ms/img | second run: img/s | vs local "
          "| cluster start (s) | empty-shard round trip (ms) | driver write per shard (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        extra = (f"{row['startup_s']:.1f} | {row['empty_shard_ms']:.1f} | {row['write_ms_per_shard']:.1f}"
                 if "startup_s" in row else "- | - | -")
        print(f"| {row['mode']} | {row['seconds']:.1f} | {row['img_per_s']:.1f} | {row['vs_local']:.2f}x "
              f"| {row['cpu_ms_per_img']:.0f} | {row['warm_img_per_s']:.1f} | {row['warm_vs_local']:.2f}x | {extra} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with atomic_write(args.out, "w") as fh:
        json.dump({"images": n_images, "shard_size": args.shard_size, "cores": os.cpu_count(),
                   "cpu_flags": cpu_flags(), "runtime": config.EMBED_RUNTIME, "precision": config.EMBED_PRECISION,
                   "command": " ".join(sys.argv), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main_bench()
