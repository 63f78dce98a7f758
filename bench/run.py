"""The performance benchmark: extraction and search, each beside a seed-style reference.

    python -m bench.run --quick            # < 3 min: 64 photos, search at N = 100k   (make bench-quick)
    python -m bench.run                    # 160 photos, search at N = 100k, 500k, 1M (make bench)
    python -m bench.run --quick --float32  # the network in float32 even on a CPU with native bfloat16

Prints markdown tables (absolute numbers and ratios to the reference measured in the same
run; the machine's cores, CPU flags and measured matmul speed; the network's model,
runtime and precision) and a target check, and writes the whole result as JSON plus the
tables as markdown to bench/results/. The photo collection and the synthetic DBs are
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

import config
from bench import extract_speed, machine, photos, real_recall, report
from fileio import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
log = logging.getLogger("bench")


def extraction(cache, count, quick, model, precision):
    folder = photos.build(cache, count)
    default = (config.NUM_WORKERS, config.BATCH_SIZE, config.EMBED_THREADS)
    others = [(0, config.BATCH_SIZE, 0), (1, config.BATCH_SIZE, 0), (2, config.BATCH_SIZE, 0), (2, 8, 0)]
    configurations = [default] if quick else [default] + [c for c in others if c != default]
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as work:
        result = extract_speed.run(folder, work, configurations, model, precision)
        if not quick:  # main.py's memory must not grow with the collection: the same run on fewer photos
            env = {"IR_EMBED_PRECISION": precision} if precision else {}
            result["smaller_run"] = extract_speed.end_to_end(photos.build(cache, count // 4), work, result["model"],
                                                             *default, env_extra=env)
    for run in result["runs"] + [result.get("smaller_run") or {}]:
        run.pop("db", None)  # a temporary file, gone now
    result["photos"] = photos.describe(folder)
    return result


def search(n, cache, queries, reference_queries):
    """One collection size in its own process, so that each size's memory is its own."""
    with tempfile.TemporaryDirectory(prefix="bench-search-") as work:
        out = os.path.join(work, "search.json")
        subprocess.run([sys.executable, "-m", "bench.search_speed", "--n", str(n), "--cache", cache,
                        "--queries", str(queries), "--reference-queries", str(reference_queries), "--out", out],
                       check=True, cwd=ROOT)
        with open(out) as fh:
            return json.load(fh)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 photos and N = 100k only (< 3 minutes)")
    parser.add_argument("--images", type=int, help="photos for the extraction benchmark")
    parser.add_argument("--sizes", help="comma-separated N for the search benchmark")
    parser.add_argument("--queries", type=int, default=50, help="queries per mode x metric (default 50)")
    parser.add_argument("--reference-queries", type=int, help="queries per pair for the slow reference "
                                                              "(default 10, 5 at 1M)")
    parser.add_argument("--model", default=config.EMBEDDING_MODEL, help="network on both sides (default: %(default)s)")
    parser.add_argument("--float32", action="store_true",
                        help="the project's network in float32 even where the CPU has native bfloat16 "
                             "(same as IR_EMBED_PRECISION=float32): numbers that hold on any CPU")
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--cache", default=os.path.join(HERE, "cache"), help="photos and synthetic DBs (kept)")
    parser.add_argument("--results", default=os.path.join(HERE, "results"), help="where the JSON and table go")
    parser.add_argument("--no-demo", action="store_true",
                        help="skip ann_cosine recall on the demo DB's real embeddings")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    precision = "float32" if args.float32 else None  # None: config.EMBED_PRECISION, as main.py would use
    images = args.images or (64 if args.quick else 160)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [100_000] if args.quick else [100_000, 500_000, 1_000_000])
    started = time.time()
    data = {"kind": "quick" if args.quick else "full", "command": " ".join(["python -m bench.run"] + sys.argv[1:]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)), "machine": machine.describe(),
            "settings": {"model": args.model, "precision": precision or config.EMBED_PRECISION,
                         "runtime": config.EMBED_RUNTIME, "batch_size": config.BATCH_SIZE,
                         "workers": config.NUM_WORKERS, "threads": config.EMBED_THREADS}}
    if not args.skip_extraction:
        log.info("extraction benchmark on %d photos", images)
        data["extraction"] = extraction(args.cache, images, args.quick, args.model, precision)
    data["search"] = []
    for n in sizes:
        log.info("search benchmark at N = %d", n)
        reference_queries = args.reference_queries or (5 if n >= 1_000_000 else 10)
        data["search"].append(search(n, args.cache, args.queries, reference_queries))
    demo_db = os.path.join(os.path.dirname(HERE), "demo_data", "images.db")
    data["real_embeddings"] = None if args.no_demo else real_recall.measure(demo_db)
    if data["real_embeddings"] is None and not args.no_demo:
        log.info("no %s: run `make demo` to add ann_cosine recall on real embeddings", demo_db)
    data["seconds"] = time.time() - started
    data["targets"] = [{"target": t, "measured": v, "met": bool(m)} for t, v, m in report.targets(data)]
    table = report.render(data)
    os.makedirs(args.results, exist_ok=True)
    stem = os.path.join(args.results, f"bench-{data['kind']}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(started))}")
    with atomic_write(stem + ".json", "w") as fh:
        json.dump(data, fh, indent=1)
    with atomic_write(stem + ".md", "w") as fh:
        fh.write(f"`{data['command']}` ({data['started']}, {data['seconds']:.0f} s)\n\n{table}\n")
    print(table)
    print(f"\n({data['seconds']:.0f} s; JSON: {os.path.relpath(stem)}.json, table: {os.path.relpath(stem)}.md)")


if __name__ == "__main__":
    main()
