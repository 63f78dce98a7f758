"""The performance benchmark: extraction and search, each beside a seed-style reference.

    python bench/run.py --quick     # < 3 min: 64 photos, search at N = 100k   (make bench-quick)
    python bench/run.py             # 160 photos, search at N = 100k, 500k, 1M (make bench)

Prints markdown tables (absolute numbers and ratios to the reference measured in the same
run, the machine's cores and measured matmul speed) and a target check, and writes the
whole result as JSON to bench/results/. The photo collection and the synthetic DBs are
built on first use and kept in bench/cache/ (the 1M DB is ~4.5 GB; delete the folder to
reclaim the space). Timings on a shared machine are noisy: compare the ratios.
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import config  # noqa: E402,F401  (sets the OpenMP wait policy before torch is imported)
from bench import extract_speed, machine, photos, real_recall, report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "cache")
RESULTS = os.path.join(HERE, "results")
log = logging.getLogger("bench")


def extraction(count, quick):
    folder = photos.build(CACHE, count)
    default = (config.NUM_WORKERS, config.BATCH_SIZE, None, None)
    others = [(0, config.BATCH_SIZE, None, None), (1, config.BATCH_SIZE, os.cpu_count(), None),
              (2, config.BATCH_SIZE, None, None), (config.NUM_WORKERS, config.BATCH_SIZE, None, "ACTIVE")]
    configurations = [default] if quick else [default] + [c for c in others if c != default]
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as work:
        result = extract_speed.run(folder, work, configurations)
        if not quick:  # main.py's memory must not grow with the collection: the same run on fewer photos
            os.makedirs(work, exist_ok=True)
            result["smaller_run"] = extract_speed.end_to_end(photos.build(CACHE, count // 4), work, *default)
    result["photos"] = photos.describe(folder)
    return result, os.path.join(folder, sorted(os.listdir(folder))[0])


def search(n, photo, queries, reference_queries):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, os.path.join(HERE, "search_speed.py"), "--n", str(n), "--cache", CACHE,
                        "--queries", str(queries), "--reference-queries", str(reference_queries),
                        "--photo", photo, "--out", out.name], check=True)
        with open(out.name) as fh:
            return json.load(fh)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 photos and N = 100k only (< 3 minutes)")
    parser.add_argument("--images", type=int, help="photos for the extraction benchmark")
    parser.add_argument("--sizes", help="comma-separated N for the search benchmark")
    parser.add_argument("--queries", type=int, default=50, help="queries per mode x metric (default 50)")
    parser.add_argument("--skip-extraction", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    images = args.images or (64 if args.quick else 160)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [100_000] if args.quick else [100_000, 500_000, 1_000_000])
    started = time.time()
    data = {"kind": "quick" if args.quick else "full", "command": " ".join(sys.argv),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)), "machine": machine.describe()}
    photo = os.path.join(photos.build(CACHE, images), sorted(os.listdir(photos.build(CACHE, images)))[0])
    if not args.skip_extraction:
        log.info("extraction benchmark on %d photos", images)
        data["extraction"], photo = extraction(images, args.quick)
    data["search"] = []
    for n in sizes:
        log.info("search benchmark at N = %d", n)
        data["search"].append(search(n, photo, args.queries, 5 if n >= 1_000_000 else 10))
    demo_db = os.path.join(os.path.dirname(HERE), "demo_data", "images.db")
    data["real_embeddings"] = real_recall.measure(demo_db)
    if data["real_embeddings"] is None:
        log.info("no %s: run `make demo` to add Annoy recall on real embeddings", demo_db)
    data["seconds"] = time.time() - started
    data["targets"] = [{"target": t, "measured": v, "met": bool(m)} for t, v, m in report.targets(data)]
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"bench-{data['kind']}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(started))}.json")
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
    print(report.render(data))
    print(f"\n({data['seconds']:.0f} s; JSON: {os.path.relpath(path)})")


if __name__ == "__main__":
    main()
