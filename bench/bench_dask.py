"""Benchmark: images/s of a local run vs `main.py --dask` on a LocalCluster of 1 and 2 workers.

    .venv/bin/python bench/bench_dask.py --images 300 --shard-size 25

Every run extracts the same files, starting from a copy of the same freshly scanned DB, in
the same process run (the machine is shared: compare ratios, not absolute numbers across
runs). A cluster is started before its timer (start-up is reported in its own column); model
loading on the workers is inside the timer, as it is inside the local run's; a second run on
the same cluster, whose workers keep their model, shows the steady rate a big collection gets. The overhead
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import config  # noqa: E402
import distributed_extract  # noqa: E402
import main  # noqa: E402
from generator import scan, walk_images  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
log = logging.getLogger("bench_dask")


def collection(n_images, folder):
    """Copy the first ``n_images`` files of the demo collection (built if missing) to ``folder``."""
    source = os.path.join(ROOT, "demo_data", "images")
    if not os.path.isdir(source):
        source = os.path.join(folder, "demo")
        subprocess.run([sys.executable, os.path.join(ROOT, "demo", "build_demo.py"), "--out", source], check=True)
    files = sorted(walk_images(source, set(config.IMAGE_EXTENSIONS)))[:n_images]
    target = os.path.join(folder, "images")
    for rel, full in files:
        os.makedirs(os.path.dirname(os.path.join(target, rel)), exist_ok=True)
        shutil.copy(full, os.path.join(target, rel))
    return target, len(files)


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
    from features.dask_worker import extract_shard

    client.submit(extract_shard, [], settings, 32, root, pure=False).result()
    start = time.perf_counter()
    for _ in range(repeats):
        client.submit(extract_shard, [], settings, 32, root, pure=False).result()
    return (time.perf_counter() - start) / repeats


def run_cluster(n_workers, base_db, folder, n_images, shard_size):
    from distributed import Client, LocalCluster

    from features.dask_worker import probe

    started = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(n_workers)
        startup = time.perf_counter() - started
        db = os.path.join(folder, f"dask{n_workers}.db")
        shutil.copy(base_db, db)
        cpu_before = cpu_seconds() + workers_cpu_seconds(client)
        start = time.perf_counter()
        result = distributed_extract.extract_on_cluster(db, cluster.scheduler_address, progress=False,
                                                        build_index=False, shard_size=shard_size)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() + workers_cpu_seconds(client) - cpu_before
        shutil.copy(base_db, db)  # again, on workers that have their model loaded already
        start = time.perf_counter()
        distributed_extract.extract_on_cluster(db, cluster.scheduler_address, progress=False, build_index=False,
                                               shard_size=shard_size)
        warm_seconds = time.perf_counter() - start
        settings = client.submit(probe, "auto", config.HASH_SIZE, config.HIST_BINS, config.DECODE_SIDE,
                                 config.MAX_IMAGE_PIXELS, pure=False).result()[0]
        overhead = empty_shard_round_trip(client, settings, folder)
    assert result["done_now"] == n_images, result
    return {"mode": f"LocalCluster, {n_workers} worker{'s' if n_workers > 1 else ''}", "seconds": seconds,
            "img_per_s": n_images / seconds, "cpu_ms_per_img": cpu / n_images * 1000, "startup_s": startup,
            "warm_img_per_s": n_images / warm_seconds, "empty_shard_ms": overhead * 1000,
            "shards": -(-n_images // shard_size)}


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
        local_db = os.path.join(folder, "local.db")
        shutil.copy(base_db, local_db)
        cpu_before = local_cpu_seconds()
        start = time.perf_counter()
        result = main.extract(local_db, progress=False, build_index=False)
        seconds = time.perf_counter() - start
        cpu = local_cpu_seconds() - cpu_before
        assert result["done_now"] == n_images, result
        rows = [{"mode": f"local (main.py, {config.NUM_WORKERS} decode process)", "seconds": seconds,
                 "img_per_s": n_images / seconds, "cpu_ms_per_img": cpu / n_images * 1000}]
        for n_workers in (1, 2):
            rows.append(run_cluster(n_workers, base_db, folder, n_images, args.shard_size))
    for row in rows:
        row["vs_local"] = row["img_per_s"] / rows[0]["img_per_s"]
    print(f"\n{n_images} images, shards of {args.shard_size}, {os.cpu_count()} cores\n")
    print("| mode | seconds | img/s | vs local | CPU ms/img | img/s, models loaded | cluster start (s) "
          "| empty-shard round trip (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        extra = (f"{row['warm_img_per_s']:.1f} | {row['startup_s']:.1f} | {row['empty_shard_ms']:.1f}"
                 if "startup_s" in row else "- | - | -")
        print(f"| {row['mode']} | {row['seconds']:.1f} | {row['img_per_s']:.1f} | {row['vs_local']:.2f}x "
              f"| {row['cpu_ms_per_img']:.0f} | {extra} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    temporary = args.out + ".tmp"
    with open(temporary, "w") as fh:
        json.dump({"images": n_images, "shard_size": args.shard_size, "cores": os.cpu_count(),
                   "command": " ".join(sys.argv), "rows": rows}, fh, indent=2)
    os.replace(temporary, args.out)


if __name__ == "__main__":
    main_bench()
