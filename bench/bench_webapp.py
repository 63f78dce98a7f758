"""The web app's speed through HTTP, against the CLI's cold query.

    python -m bench.bench_webapp                      # the demo collection (built if missing)
    python -m bench.bench_webapp --sizes demo,500000  # also a 500k-row DB (built once, bench/cache/webapp/)
    python -m bench.bench_webapp --tiny --db X.db     # smoke test: few repeats

What is measured, with `app.py` running as its own process on 127.0.0.1 and this process
as the client (httpx):
- server start: process start until /api/health answers, matrix and network loaded;
- upload search: POST /api/search with a photo (decode, embed, search, JSON), warm;
- similar: GET /api/similar/{id} for random ids, warm;
  both with exact cosine (the default) and with ann_cosine (the index main.py builds);
- first screen (collections with files): what the page loads before a person sees results —
  the page, its script and style, /api/health, the search, and 20 thumbnails over 6
  connections like a browser; with thumbnails not yet made (cold) and cached (warm);
- reference: `python similarities.py PHOTO --db DB --top-k 20`, a cold CLI query.

The 500k DB has the demo DB's settings stamp (so the server's network is the DB's, as in real
use) and rows drawn around the demo's real features with noise, written through db/. It has
no image files: thumbnails and the first screen are measured on the demo only.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

import config
import generator
import main as extraction_cli
from bench.machine import cpu_model
from db import connect
from db.features import ExtractedRow, write_batch
from db.images import insert_images, pending_page
from db.meta import check_or_write_stamp, claim_dataset_root, dataset_root, features_stamp
from demo.build_demo import build as build_demo
from fileio import atomic_write
from search import ann, matrix_cache
from search.modes import MODES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", "cache", "webapp")
RESULTS = os.path.join(ROOT, "bench", "results")
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")
TARGETS_MS = {"upload": 150, "similar": 60, "first_screen": 1000}
CHUNK = 10_000


def cpu_flags():
    with open("/proc/cpuinfo") as fh:
        flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    return {flag: flag in flags for flag in FLAGS}


def demo_db(db=None):
    """The DB to measure: ``db``, the demo's, or a 60-photo collection built in the cache."""
    if db:
        return db
    demo = os.path.join(ROOT, "demo_data", "images.db")
    if os.path.exists(demo):
        return demo
    path = os.path.join(CACHE, "mini", "mini.db")
    if not os.path.exists(path + ".complete"):
        images = os.path.join(CACHE, "mini", "images")
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        build_demo(images, quarters=False)
        generator.scan(images, path, progress=False)
        extraction_cli.extract(path, workers=0, progress=False)
        with atomic_write(path + ".complete", "w") as fh:
            fh.write("complete\n")
    return path


def synthetic_db(base_db, n, seed=0):
    """``n`` rows around the base DB's real features, with the base DB's stamp; built once."""
    src = connect(base_db)
    stamp = features_stamp(src)
    base = {mode: np.asarray(matrix_cache.load(src, mode).matrix) for mode in MODES}
    src.close()
    tag = f"{stamp['embedding_model']}-{stamp['embedding_dim']}-{stamp['embedding_weights_sha256'][:8]}"
    path = os.path.join(CACHE, f"synthetic-{tag}-n{n}.db")
    if os.path.exists(path + ".complete"):
        return path
    os.makedirs(CACHE, exist_ok=True)
    for stale in (path, path + "-wal", path + "-shm"):
        if os.path.exists(stale):
            os.remove(stale)
    rng = np.random.default_rng(seed)
    conn = connect(path, create=True)
    claim_dataset_root(conn, os.path.join(CACHE, f"no-files-{n}"))
    check_or_write_stamp(conn, stamp)
    started = time.perf_counter()
    for first in range(0, n, CHUNK):
        count = min(CHUNK, n - first)
        insert_images(conn, [(f"s{(first + i) // 1000:04d}/img{first + i:07d}.jpg", 250_000, 1, 1600, 1200,
                              "pending", None) for i in range(count)])
        rows = pending_page(conn, 0, count)
        pick = rng.integers(0, len(base["embeddings"]), size=count)
        emb = base["embeddings"][pick] + rng.standard_normal((count, base["embeddings"].shape[1]), np.float32) * 0.03
        rgb = base["rgb"][pick] * np.exp(rng.standard_normal((count, base["rgb"].shape[1]), np.float32) * 0.3)
        features = {"embedding": emb.astype(np.float32),
                    "rgb": (rgb / rgb.sum(axis=1, keepdims=True)).astype(np.float32)}
        for kind in ("ahash", "dhash", "phash"):
            flips = np.packbits(rng.random((count, base[kind].shape[1] * 8)) < 0.06, axis=1)
            features[kind] = base[kind][pick] ^ flips
        digests = [row.id.to_bytes(16, "big") for row in rows]
        write_batch(conn, [ExtractedRow(r.id, r.size, r.mtime_ns, d) for r, d in zip(rows, digests)], [],
                    digests, features)
        print(f"\rbuilding {path}: {first + count:,}/{n:,} rows, {time.perf_counter() - started:.0f} s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"building the ann_cosine index, as main.py does ({time.perf_counter() - started:.0f} s)",
          file=sys.stderr, flush=True)
    ann.get_index(matrix_cache.load(conn, "embeddings"))
    conn.close()
    with atomic_write(path + ".complete", "w") as fh:
        fh.write("complete\n")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``app.py`` as a separate process, as a person runs it."""

    def __init__(self, db, thumbs):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall the server
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "app.py", "--db", db, "--port", str(self.port),
                                         "--thumbs", thumbs], cwd=ROOT, stdout=self.log, stderr=self.log)
        while True:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"app.py stopped: {self.log.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.url + "/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.start_seconds = time.perf_counter() - started

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def timed(call, repeats):
    """Milliseconds of each call after one warm-up call."""
    call(-1)
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        out.append(1000 * (time.perf_counter() - start))
    return out


def stats(ms):
    ordered = sorted(ms)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2), "runs": len(ordered)}


def photos_of(db, count=8):
    """JPEG files of the demo collection, used as uploads (the bytes are all the server sees)."""
    conn = connect(db)
    root = dataset_root(conn)
    loaded = matrix_cache.load(conn, "embeddings")
    conn.close()
    picks = np.linspace(0, len(loaded.ids) - 1, count).astype(int)
    return [os.path.join(root, loaded.paths[int(r)]) for r in picks]


def first_screen(http, photo):
    """Milliseconds until the page, the results and their first 20 thumbnails are in."""
    start = time.perf_counter()
    for asset in ("/", "/static/app.js", "/static/style.css", "/api/health"):
        http.get(asset).raise_for_status()
    answer = upload(http, photo, 20)
    with ThreadPoolExecutor(6) as pool:  # a browser's connections per host
        for response in pool.map(http.get, [r["thumbnail"] for r in answer["results"]]):
            response.raise_for_status()
    return 1000 * (time.perf_counter() - start)


def upload(http, photo, top_k, metric="cosine"):
    with open(photo, "rb") as fh:
        data = fh.read()
    response = http.post("/api/search", files=[("files", (os.path.basename(photo), data, "image/jpeg"))],
                         data={"top_k": str(top_k), "metric": metric})
    response.raise_for_status()
    return response.json()


def cli_query(db, photo):
    start = time.perf_counter()
    subprocess.run([sys.executable, "similarities.py", photo, "--db", db, "--top-k", "20"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(label, db, photos, repeats, cli_repeats, with_files):
    conn = connect(db)
    ids = np.asarray(matrix_cache.load(conn, "embeddings").ids)
    conn.close()
    rng = np.random.default_rng(1)
    picks = [int(i) for i in rng.choice(ids, size=repeats + 1)]
    row = {"collection": label, "images": len(ids)}
    with tempfile.TemporaryDirectory() as thumbs:
        server = Server(db, thumbs)
        try:
            row["server_start_s"] = round(server.start_seconds, 2)
            with httpx.Client(base_url=server.url, timeout=600) as http:
                if with_files:
                    row["first_screen_cold"] = round(first_screen(http, photos[0]), 1)
                    row["first_screen_warm"] = round(first_screen(http, photos[0]), 1)
                for metric, suffix in (("cosine", ""), ("ann_cosine", "_ann")):
                    row["upload" + suffix] = stats(timed(
                        lambda i, metric=metric: upload(http, photos[i % len(photos)], 20, metric), repeats))
                    row["similar" + suffix] = stats(timed(
                        lambda i, metric=metric: http.get(f"/api/similar/{picks[i]}",
                                                          params={"metric": metric}).raise_for_status(),
                        repeats))
                row["server_search_ms"] = upload(http, photos[0], 20)["took_ms"]
        finally:
            server.stop()
    cli = [cli_query(db, photos[i % len(photos)]) for i in range(cli_repeats)]
    row["cli_query_s"] = round(min(cli), 2)
    row["upload_speedup_vs_cli"] = round(1000 * row["cli_query_s"] / row["upload"]["median_ms"], 1)
    return row


def table(rows):
    lines = ["| collection | images | server start | upload search, cosine (median / p95) | similar, cosine | "
             "upload, ann_cosine | similar, ann_cosine | first screen cold / warm | CLI cold query | upload vs CLI |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        screen = (f"{r['first_screen_cold']:.0f} / {r['first_screen_warm']:.0f} ms"
                  if "first_screen_cold" in r else "n/a (no files)")
        lines.append(f"| {r['collection']} | {r['images']:,} | {r['server_start_s']:.1f} s | "
                     f"{r['upload']['median_ms']:.1f} / {r['upload']['p95_ms']:.1f} ms | "
                     f"{r['similar']['median_ms']:.1f} / {r['similar']['p95_ms']:.1f} ms | "
                     f"{r['upload_ann']['median_ms']:.1f} / {r['upload_ann']['p95_ms']:.1f} ms | "
                     f"{r['similar_ann']['median_ms']:.1f} / {r['similar_ann']['p95_ms']:.1f} ms | {screen} | "
                     f"{r['cli_query_s']:.2f} s | {r['upload_speedup_vs_cli']:.0f}x |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="demo", help="comma-separated: demo and/or row counts, e.g. demo,500000")
    parser.add_argument("--db", help="the real collection to measure (default: demo_data/images.db, or a built one)")
    parser.add_argument("--label",
                        help="the real collection's name in the table (default: demo, or the DB's file name)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="smoke test: 3 repeats, one CLI run")
    parser.add_argument("--out", help="JSON file (default: bench/results/webapp[_tiny].json)")
    args = parser.parse_args(argv)
    repeats, cli_repeats = (3, 1) if args.tiny else (args.repeats, 3)
    base = demo_db(args.db)
    photos = photos_of(base)
    flags = cpu_flags()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; flags: "
          + ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in flags.items())
          + f"; network runtime {getattr(config, 'EMBED_RUNTIME', 'torch')}")
    rows = []
    for size in args.sizes.split(","):
        if size == "demo":
            label = args.label or ("demo" if not args.db else os.path.basename(base))
            rows.append(measure(label, base, photos, repeats, cli_repeats, True))
        else:
            n = int(size)
            rows.append(measure(f"synthetic {n:,}", synthetic_db(base, n), photos, repeats, cli_repeats, False))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    print(f"targets: upload <= {TARGETS_MS['upload']} ms at 500k, similar <= {TARGETS_MS['similar']} ms, "
          f"first screen < {TARGETS_MS['first_screen']} ms on the demo")
    out = args.out or os.path.join(RESULTS, "webapp_tiny.json" if args.tiny else "webapp.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with atomic_write(out, "w") as fh:
        json.dump({"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
                   "cpu_flags": flags, "targets_ms": TARGETS_MS, "results": rows}, fh, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
