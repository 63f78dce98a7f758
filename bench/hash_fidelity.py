"""How far our stored hashes are from imagehash run on the original file.

The project hashes the shared 256-pixel decoded copy (features/decode.py), not the original
file: decoding once is what makes extraction fast, and imagehash at full resolution costs
tens of milliseconds more per photo. This measures the price: on 24 photos (the 10 sample
photos scikit-image and matplotlib ship, as their own files, and 14 generated camera-sized
photos, JPEG and PNG, from bench/photos.py) it counts, per hash, the bits that differ between
``imagehash.<hash>(original, hash_size=8)`` (the file decoded at full resolution, upright,
transparency flattened on white like ours) and ours,
and the same for a few ways of making the hash input, so that the cheapest good one can be
chosen:

- ``shared copy``: what the project stores (the 256-px bilinear copy, JPEG decoded at a
  reduced DCT scale);
- ``full decode + bilinear 256``: no JPEG draft, the same resize (what draft mode costs);
- ``full decode + Lanczos 256``: imagehash's own filter for the copy (what the filter costs).

    python -m bench.hash_fidelity            # prints the table, writes bench/results/hash_fidelity.json
"""
import argparse
import json
import os
import time

import numpy as np
from PIL import Image, ImageOps

from bench import photos
from demo.build_demo import SOURCES, package_file
from features.decode import decode, read_file, to_rgb
from features.hashes import HASH_FUNCTIONS, all_hashes
from fileio import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
CAMERA_PHOTOS = 14
HASH_SIZE = 8


def test_images(cache):
    """The 24 files: packaged sample photos plus generated camera-sized photos."""
    samples = [package_file(*SOURCES[name]) for name in sorted(SOURCES)]
    folder = photos.build(cache, CAMERA_PHOTOS)
    camera = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    return [path for path in samples if os.path.exists(path)] + camera


def _upright(path):
    """The file at full resolution, upright, in RGB with transparency on white (as ours): so
    that the only difference measured is the size of the hash input."""
    with Image.open(path) as image:
        return to_rgb(ImageOps.exif_transpose(image))


def _plain_resize(image, side, resample):
    width, height = image.size
    size = (side, int(side * height / width)) if width <= height else (int(side * width / height), side)
    return image.resize(size, resample)


def hash_bits(image):
    """{kind: 64 bools} of the project's hashes of ``image``."""
    packed = all_hashes([image], HASH_SIZE)
    return {kind: np.unpackbits(packed[kind][0])[:HASH_SIZE ** 2].astype(bool) for kind in HASH_FUNCTIONS}


def inputs(path):
    """{variant: image} whose hashes are compared with imagehash on the original."""
    data, _ = read_file(path)
    full = _upright(path)
    return {
        "shared copy": decode(data, 256),
        "full decode + bilinear 256": _plain_resize(full, 256, Image.BILINEAR),
        "full decode + Lanczos 256": _plain_resize(full, 256, Image.LANCZOS),
    }


def measure(paths):
    """Per variant and hash: differing bits per image, plus the time of imagehash on the original."""
    differences, seconds = {}, []
    for path in paths:
        start = time.perf_counter()
        original = _upright(path)
        truth = {kind: function(original, hash_size=HASH_SIZE).hash.ravel()
                 for kind, function in HASH_FUNCTIONS.items()}
        seconds.append(time.perf_counter() - start)
        for variant, image in inputs(path).items():
            bits = hash_bits(image)
            for kind in HASH_FUNCTIONS:
                differences.setdefault(variant, {}).setdefault(kind, []).append(int((bits[kind] != truth[kind]).sum()))
    return differences, float(np.median(seconds))


def summary(differences):
    return {variant: {kind: {"images_differing": sum(d > 0 for d in bits), "mean_bits": float(np.mean(bits)),
                             "max_bits": max(bits), "bits": bits} for kind, bits in kinds.items()}
            for variant, kinds in differences.items()}


def table(result):
    lines = [f"Hash bits (of 64) that differ from imagehash on the original file, {result['images']} photos "
             f"(imagehash on the original: {1000 * result['imagehash_original_s']:.0f} ms per photo, median):", "",
             "| hash input | " + " | ".join(f"{k}: images differing / mean / max bits" for k in HASH_FUNCTIONS) + " |",
             "| --- |" + " ---: |" * len(HASH_FUNCTIONS)]
    for variant, kinds in result["variants"].items():
        cells = [f"{s['images_differing']} / {s['mean_bits']:.2f} / {s['max_bits']}" for s in kinds.values()]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=os.path.join(HERE, "cache"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "hash_fidelity.json"))
    args = parser.parse_args()
    paths = test_images(args.cache)
    differences, seconds = measure(paths)
    result = {"images": len(paths), "files": [os.path.basename(p) for p in paths], "hash_size": HASH_SIZE,
              "imagehash_original_s": seconds, "variants": summary(differences)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with atomic_write(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(table(result))


if __name__ == "__main__":
    main()
