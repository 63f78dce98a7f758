"""Peak memory and time of generator.py on a large collection: a first scan and a rescan.

The collection is N hard links to a few copies of one small PNG, 1,000 per folder: N real files for the
walk, stat and header reads, at the disk cost of one file. Each scan runs as its own process
(``python generator.py``) and its peak RSS comes from the kernel (ru_maxrss of that child, wait4).
With ``--reference DIR`` the same is run with the generator.py of another checkout (e.g. the
previous commit, which held every row in memory), side by side.

    python -m bench.scan_memory --files 1000000 --dir /tmp/scan1m [--reference /tmp/old_tree] [--moves]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from db import connect
from db.features import FEATURE_COLUMNS, ExtractedRow, write_batch
from db.images import pending_page
from features.decode import content_hash
from fileio import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_FOLDER = 1000
REFERENCE_MOVES_UP_TO = 200_000  # the old scan paired moves with a list.pop(0)-like loop: O(n^2) beyond
LINKS_PER_SOURCE = 50_000


def make_collection(folder, count):
    """``count`` hard links to one 8x8 PNG (reused if the folder already holds them)."""
    marker = os.path.join(folder, f".made-{count}")
    if os.path.exists(marker):
        return os.path.join(folder, "photos")
    photos = os.path.join(folder, "photos")
    os.makedirs(photos, exist_ok=True)
    picture = Image.fromarray(np.arange(192, dtype=np.uint8).reshape(8, 8, 3))
    for start in range(0, count, PER_FOLDER):
        source = os.path.join(folder, f"source_{start // LINKS_PER_SOURCE}.png")  # ext4 allows 65,000 links
        if not os.path.exists(source):
            picture.save(source)
        sub = os.path.join(photos, f"f{start // PER_FOLDER:05d}")
        os.makedirs(sub, exist_ok=True)
        for i in range(start, min(start + PER_FOLDER, count)):
            target = os.path.join(sub, f"img_{i:07d}.png")
            if not os.path.exists(target):
                os.link(source, target)
    open(marker, "w").close()
    return photos


def run_scan(tree, photos, db):
    """(seconds, peak RSS in MiB, last stdout line) of one generator.py process."""
    start = time.perf_counter()
    with open(os.path.join(os.path.dirname(db), "scan.out"), "w+") as out:
        proc = subprocess.Popen([sys.executable, os.path.join(tree, "generator.py"), "--data", photos, "--db", db,
                                 "--no-progress"], cwd=tree, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"generator.py in {tree} failed: {text[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, text.strip().splitlines()[-1]


def pretend_extracted(db, photos):
    """Mark every row ok with the files' content hash (all links hold the same bytes) and one
    features row of zeros, through the project's own write_batch: as main.py leaves a DB,
    without the network. Only extracted rows can be recognised when they move."""
    with open(os.path.join(photos, "f00000", "img_0000000.png"), "rb") as fh:
        digest = content_hash(fh.read())
    features = {c: np.zeros((1, 8), np.uint8 if c.endswith("hash") else np.float32) for c in FEATURE_COLUMNS}
    conn = connect(db)
    try:
        while page := pending_page(conn, 0, 20_000):
            write_batch(conn, [ExtractedRow(r.id, r.size, r.mtime_ns, digest) for r in page], [], [digest], features)
    finally:
        conn.close()


def move_all(photos, into):
    """Move every folder of the collection into ``into`` (a subfolder) or back out of it."""
    if into:
        os.makedirs(os.path.join(photos, "moved"), exist_ok=True)
        for name in sorted(os.listdir(photos)):
            if name != "moved":
                os.rename(os.path.join(photos, name), os.path.join(photos, "moved", name))
    else:
        for name in sorted(os.listdir(os.path.join(photos, "moved"))):
            os.rename(os.path.join(photos, "moved", name), os.path.join(photos, name))
        os.rmdir(os.path.join(photos, "moved"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dir", default="/tmp/ir-scan-memory", help="where the collection and DBs go")
    parser.add_argument("--reference", help="a checkout whose generator.py to run too (run first)")
    parser.add_argument("--moves", action="store_true",
                        help="then mark every row extracted and move every file into a subfolder: a rescan of N moves "
                             f"(the reference only up to {REFERENCE_MOVES_UP_TO} files)")
    parser.add_argument("--json", default="bench/results/scan_memory.json")
    args = parser.parse_args(argv)
    photos = make_collection(args.dir, args.files)
    trees = ([("reference", args.reference)] if args.reference else []) + [("ours", ROOT)]
    results = []
    for name, tree in trees:
        db = os.path.join(args.dir, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        kinds = ["first scan", "rescan"]
        if args.moves and (name == "ours" or args.files <= REFERENCE_MOVES_UP_TO):
            kinds.append("all moved")
        for kind in kinds:
            if kind == "all moved":
                pretend_extracted(db, photos)
                move_all(photos, into=True)
            try:
                seconds, peak, line = run_scan(tree, photos, db)
            finally:
                if kind == "all moved":
                    move_all(photos, into=False)
            results.append({"code": name, "scan": kind, "files": args.files, "seconds": round(seconds, 1),
                            "peak_rss_mib": round(peak, 1), "summary": line})
    print(f"{'code':<10} {'scan':<11} {'files':>9} {'seconds':>8} {'peak RSS MiB':>13}")
    for r in results:
        print(f"{r['code']:<10} {r['scan']:<11} {r['files']:>9} {r['seconds']:>8} {r['peak_rss_mib']:>13}")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with atomic_write(args.json, "w") as fh:
        json.dump(results, fh, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
