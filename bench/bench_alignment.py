"""What aligning close pairs costs (duplicates.alignment), and what it adds at 500,000 photos.

    python -m bench.bench_alignment           # 24 camera-size photos (12 MP JPEGs) and 24 small ones, each with a copy
    python -m bench.bench_alignment --tiny    # seconds: the smoke test's run

The finder aligns every close pair (within ALIGN_REACH) by the keypoints main.py stored, or, in a
DB from before them or with --any-orientation, by keypoints read from the files (a JPEG decoded
in draft mode to a 256-pixel shorter side, contrast evened out, ORB, a tiny colour copy). Here,
side by side in one run: camera-size JPEGs (4032 x 3024, quality 92, grain added so they compress
like photos) and 1024-px ones, each with a copy cropped to 80 % (a verdict of "copy") and paired
with another photo ("apart"); keypoints read from the files on one thread and on every core (the
Aligner's pool), and stored ones (on the calling thread). Prints the CPU flags and a table, writes
bench/results/bench_alignment.{json,md}, what storing keypoints adds to extraction, and the minutes
the alignment adds to a run over 500,000 photos for shares of them that have a close pair (the
copies set: 88 %).
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from bench.machine import flags_text
from bench.report import publish
from cli import run, setup_logging
from demo.build_demo import package_file
from demo.edits import crop_80
from duplicates import alignment
from duplicates.alignment import Aligner
from features.decode import decode, read_file
from features.keypoints import SHORTER_SIDE, of_file, of_image, to_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "bench_alignment")
SAMPLES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg")
SIZES = {"camera (4032 x 3024)": (4032, 3024), "small (1024 x 768)": (1024, 768)}
SHARES = (0.25, 0.5, 0.9)
TARGET_N = 500_000


def make_photos(folder, size, count, seed=0):
    """``count`` photos of ``size`` with grain, and a copy of each cropped to 80 %: paths, in pairs."""
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(count):
        with Image.open(package_file("skimage", f"data/{SAMPLES[k % len(SAMPLES)]}")) as source:
            picture = source.convert("RGB").resize(size, Image.BICUBIC)
        shift = rng.integers(0, 40, size=3)  # no two photos alike, even of one sample
        pixels = np.asarray(picture, dtype=np.int16) + shift + rng.normal(0, 4, (size[1], size[0], 3)).astype(np.int16)
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        for name, image in ((f"photo_{k}.jpg", picture), (f"photo_{k}_crop.jpg", crop_80(picture))):
            path = os.path.join(folder, name)
            image.save(path, quality=92)
            paths.append(path)
    return paths


class StoredPictures:
    """What main.py stores (db.keypoints), held in memory: the Aligner's KeypointStore interface."""

    def __init__(self, paths):
        self.blobs = {k: to_bytes(of_file(p)) for k, p in enumerate(paths)}

    def hashes(self, rows):
        return {r: str(r).encode() for r in rows}

    def data(self, keys):
        return {key: self.blobs[int(key)] for key in keys}


def measure(paths, workers, stored=None):
    """Seconds to get every picture (read from its file, or stored) and give every verdict, from a cold cache."""
    alignment._PICTURES.items.clear()  # a cold start: nothing read yet in this process
    alignment._VERDICTS.items.clear()
    with Aligner(paths.__getitem__, workers=workers, stored=stored) as aligner:
        started = time.perf_counter()
        for k in range(0, len(paths), 2):
            others = [k + 1] + ([(k + 2) % len(paths)] if len(paths) > 2 else [])
            aligner.verdicts(k, np.array(others))
        return time.perf_counter() - started, aligner.stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=24, help="photos per size (each with a cropped copy)")
    parser.add_argument("--tiny", action="store_true", help="4 photos per size: the smoke test")
    parser.add_argument("--out", default=RESULTS, help="where the .json and .md go, without the extension")
    args = parser.parse_args(argv)
    setup_logging()
    count = 4 if args.tiny else args.photos
    cores = os.cpu_count() or 1
    rows = []
    folder = tempfile.mkdtemp(prefix="bench_alignment-")
    try:
        for label, size in SIZES.items():
            paths = make_photos(folder, size, count)
            megabytes = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
            stored = StoredPictures(paths)
            started = time.perf_counter()
            for path in paths:
                of_image(decode(read_file(path)[0], SHORTER_SIDE))
            extraction_ms = 1000 * (time.perf_counter() - started) / len(paths)  # decode included: see below
            started = time.perf_counter()
            copies = [decode(read_file(path)[0], SHORTER_SIDE) for path in paths]
            decode_ms = 1000 * (time.perf_counter() - started) / len(paths)
            # Stored pictures are aligned on the calling thread (duplicates.alignment): one row for them.
            for source, store, threads in (("files", None, sorted({1, cores})), ("stored (main.py)", stored, [1])):
                for workers in threads:
                    seconds, stats = measure(paths, workers, store)
                    rows.append({"photos": label, "mean_mb": megabytes, "source": source, "workers": workers,
                                 "pictures": len(paths), "pairs": stats["pairs"], "copies": stats["copy"],
                                 "apart": stats["apart"], "seconds": seconds,
                                 "ms_per_picture": 1000 * seconds / len(paths),
                                 "extraction_adds_ms": extraction_ms - decode_ms})
            del copies  # decoded only to time the decode alone
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lines = [f"CPU flags: {flags_text()}. {cores} cores.", "",
             "| photos | mean file | keypoints from | threads | pictures | pairs aligned (copy / apart) | s | "
             "ms per picture (keypoints + its pairs) |", "|---|---:|---|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['photos']} | {r['mean_mb']:.1f} MB | {r['source']} | {r['workers']} | {r['pictures']} | "
                     f"{r['pairs']} ({r['copies']} / {r['apart']}) | {r['seconds']:.2f} | {r['ms_per_picture']:.1f} |")
    adds = {r["photos"]: r["extraction_adds_ms"] for r in rows}
    lines += ["", "What storing them adds to main.py's extraction (keypoints of the copy it decodes anyway), per "
                  "picture on one thread: " + ", ".join(f"{label} {ms:.1f} ms" for label, ms in adds.items()) + "."]
    lines += ["", f"Minutes the alignment adds at {TARGET_N:,} photos (the fastest row of each; stored pictures "
                  "on one thread), by the share that has a close pair:",
              "", "| photos | " + " | ".join(f"{s:.0%} have a close pair" for s in SHARES) + " |",
              "|---|" + "---:|" * len(SHARES)]
    for label in SIZES:
        for source in ("files", "stored (main.py)"):
            best = min((r for r in rows if r["photos"] == label and r["source"] == source),
                       key=lambda r: r["ms_per_picture"])
            lines.append(f"| {label}, keypoints from {source} | " + " | ".join(
                f"{TARGET_N * s * best['ms_per_picture'] / 60000:.1f}" for s in SHARES) + " |")
    publish(args.out, {"cpu_flags": flags_text(), "cores": cores, "rows": rows, "shares": SHARES}, "\n".join(lines))


if __name__ == "__main__":
    run(main)
