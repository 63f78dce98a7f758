"""Read + decode per format at camera sizes, and the peak memory of one decode at the pixel limit.

Speed: the same generated camera-sized photos (bench/photos.py, 1-3 MP) saved as JPEG
(quality 90), PNG and WebP (quality 90); per format, the median ms per photo of
``read_file`` + ``decode`` (the shared 256-px copy every feature uses) beside the
seed-style way (open, full decode to RGB, bilinear resize to 256), best of a few rounds.

Memory (``--memory``): one image at Pillow's decompression-bomb limit (IR_MAX_IMAGE_PIXELS,
default 89,478,485 pixels: 9459 x 9459) as JPEG, RGB PNG and 16-bit greyscale PNG; each
decoded once in a fresh process, which reports how much its peak RSS (VmHWM) grew during
the decode. Building these files takes a minute and ~1 GB of memory; they are kept in the
cache folder.

    python -m bench.decode_speed                 # speed table (bench/results/decode_speed.json)
    python -m bench.decode_speed --memory        # also the pixel-limit memory table
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image

import config
from bench import photos
from bench.machine import flags_text, peak_rss_mb
from features.decode import decode, read_file
from fileio import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMATS = {"JPEG": ("jpg", {"quality": 90}), "PNG": ("png", {}), "WebP": ("webp", {"quality": 90})}


def build_formats(cache, count):
    """``count`` camera-sized photos in each format (made once); {format: [paths]}."""
    folder = os.path.join(cache, f"formats-f{photos.FORMAT}-n{count}")
    done = folder + ".complete"
    if not os.path.exists(done):
        os.makedirs(folder, exist_ok=True)
        sources, rng = photos.source_photos(), np.random.default_rng(7)
        for i in range(count):
            photo = photos.make_photo(sources, rng, photos.SIZES[i % len(photos.SIZES)])
            for name, (ext, options) in FORMATS.items():
                photo.save(os.path.join(folder, f"photo{i:03d}.{ext}"), format=name.upper(), **options)
        with atomic_write(done, "w") as fh:
            fh.write("complete\n")
    return {name: sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith("." + ext))
            for name, (ext, _) in FORMATS.items()}


def ours(path):
    data, _ = read_file(path)
    return decode(data, config.DECODE_SIDE, config.MAX_IMAGE_PIXELS)


def seed_style(path):
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    side = config.DECODE_SIDE
    size = (side, int(side * height / width)) if width <= height else (int(side * width / height), side)
    return rgb.resize(size, Image.BILINEAR)


def ms_per_photo(function, paths, rounds):
    """Median over photos of the best of ``rounds`` timings, in ms."""
    best = []
    for path in paths:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            function(path)
            times.append(time.perf_counter() - start)
        best.append(min(times))
    return 1000 * statistics.median(best)


def speed(cache, count, rounds):
    out = {}
    for name, paths in build_formats(cache, count).items():
        mine, seed = ms_per_photo(ours, paths, rounds), ms_per_photo(seed_style, paths, rounds)
        out[name] = {"photos": len(paths), "ours_ms": mine, "seed_style_ms": seed,
                     "megabytes_mean": statistics.mean(os.path.getsize(p) for p in paths) / 1e6}
    return out


def limit_files(cache, pixels):
    """A JPEG, an RGB PNG and a 16-bit greyscale PNG of at most ``pixels`` pixels (made once)."""
    side = int(pixels ** 0.5)
    folder = os.path.join(cache, f"pixel-limit-{side}")
    os.makedirs(folder, exist_ok=True)
    files = {"JPEG": os.path.join(folder, "limit.jpg"), "PNG (RGB)": os.path.join(folder, "limit.png"),
             "PNG (16-bit grey)": os.path.join(folder, "limit16.png")}
    if all(os.path.exists(p) for p in files.values()):
        return files, side
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    grey16 = (np.add.outer(ramp, ramp) * 32767).astype(np.uint16)
    with atomic_write(files["PNG (16-bit grey)"], "wb") as fh:
        Image.fromarray(grey16).save(fh, format="PNG", compress_level=1)
    rgb = Image.merge("RGB", [Image.fromarray((grey16 >> 8).astype(np.uint8))] * 3)
    del grey16
    for name, options in (("JPEG", {"format": "JPEG", "quality": 90}),
                          ("PNG (RGB)", {"format": "PNG", "compress_level": 1})):
        with atomic_write(files[name], "wb") as fh:
            rgb.save(fh, **options)
    return files, side


def child(path):
    """Decode ``path`` once; print how much the peak RSS grew (MB)."""
    with open(path, "rb") as fh:
        data = fh.read()
    before = peak_rss_mb()
    decode(data, config.DECODE_SIDE, config.MAX_IMAGE_PIXELS)
    print(json.dumps({"grew_mb": peak_rss_mb() - before, "process_peak_mb": peak_rss_mb()}))


def memory(cache):
    files, side = limit_files(cache, config.MAX_IMAGE_PIXELS)
    out = {"pixels": side * side, "side": side}
    for name, path in files.items():
        run = subprocess.run([sys.executable, "-m", "bench.decode_speed", "--child", path],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        with Image.open(path) as image:
            mode = image.mode
        result = json.loads(run.stdout.strip().splitlines()[-1])
        out[name] = dict(result, mode=mode, file_mb=os.path.getsize(path) / 1e6)
    return out


def render(result):
    lines = [f"Read + decode to the shared {config.DECODE_SIDE}-px copy, ms per photo (median of "
             f"{result['speed']['JPEG']['photos']} camera-sized photos per format, best of {result['rounds']}); "
             f"CPU flags: {flags_text()}:", "",
             "| format | MB per file | project | seed-style (full decode + resize) | ratio |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in result["speed"].items():
        lines.append(f"| {name} | {row['megabytes_mean']:.2f} | {row['ours_ms']:.1f} | {row['seed_style_ms']:.1f} | "
                     f"{row['seed_style_ms'] / row['ours_ms']:.1f}x |")
    mem = result.get("memory")
    if mem:
        lines += ["", f"Peak memory of one decode at the pixel limit ({mem['side']} x {mem['side']} = "
                  f"{mem['pixels']:,} pixels), fresh process:", "",
                  "| file | Pillow mode | MB on disk | peak RSS growth MB | bytes per pixel |",
                  "| --- | --- | ---: | ---: | ---: |"]
        for name in ("JPEG", "PNG (RGB)", "PNG (16-bit grey)"):
            row = mem[name]
            lines.append(f"| {name} | {row['mode']} | {row['file_mb']:.0f} | {row['grew_mb']:.0f} | "
                         f"{row['grew_mb'] * 2 ** 20 / mem['pixels']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=12, help="photos per format (default 12)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also measure one decode at the pixel limit")
    parser.add_argument("--cache", default=os.path.join(HERE, "cache"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "decode_speed.json"))
    parser.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    result = {"rounds": args.rounds, "speed": speed(args.cache, args.photos, args.rounds)}
    if args.memory:
        result["memory"] = memory(args.cache)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with atomic_write(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(render(result))


if __name__ == "__main__":
    main()
