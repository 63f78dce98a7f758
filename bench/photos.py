"""A collection of realistic, camera-sized photos for the extraction benchmark, built offline.

The sources are the colour photographs scikit-image and matplotlib ship (the same as the
demo). Each benchmark photo is a random crop of one or a 2x2 mosaic of four, scaled to a
camera size (1024x768 up to 2048x1536, landscape and portrait), with sensor-like grain so
that the files compress like real photos (flat upscaled pixels would decode unrealistically
fast). Two in three are saved as JPEG (quality 90), one in three as PNG. Deterministic.
"""
import os

import numpy as np
from PIL import Image

from demo.build_demo import SOURCES, package_file

SIZES = ((1600, 1200), (1200, 1600), (1024, 768), (2048, 1536), (1500, 1000), (1000, 1500))
FORMAT = 1  # bump when the recipe changes: cached collections are named after it


def source_photos():
    photos = []
    for _, (package, relative) in sorted(SOURCES.items()):
        path = package_file(package, relative)
        if os.path.exists(path):
            with Image.open(path) as image:
                photos.append(image.convert("RGB"))
    if not photos:
        raise FileNotFoundError("no packaged sample photos found: install scikit-image and matplotlib")
    return photos


def random_crop(image, rng, aspect):
    """The largest-ish crop of ``image`` with the given aspect ratio, at a random place."""
    width, height = image.size
    scale = rng.uniform(0.6, 1.0)
    crop_w = min(width, int(height * aspect)) * scale
    crop_h = crop_w / aspect
    left = rng.uniform(0, width - crop_w)
    top = rng.uniform(0, height - crop_h)
    return image.crop((int(left), int(top), int(left + crop_w), int(top + crop_h)))


def make_photo(sources, rng, size):
    aspect = size[0] / size[1]
    if rng.random() < 0.5:
        picture = random_crop(sources[rng.integers(len(sources))], rng, aspect).resize(size, Image.BICUBIC)
    else:
        half = (size[0] // 2, size[1] // 2)
        picture = Image.new("RGB", size)
        for x, y in ((0, 0), (half[0], 0), (0, half[1]), (half[0], half[1])):
            tile = random_crop(sources[rng.integers(len(sources))], rng, aspect).resize(half, Image.BICUBIC)
            picture.paste(tile, (x, y))
    pixels = np.asarray(picture, dtype=np.float32)
    pixels = pixels * rng.uniform(0.8, 1.15) + rng.normal(0.0, 4.0, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def build(cache_dir, count, seed=0):
    """Folder of ``count`` photos (made once, kept in ``cache_dir``); returns its path."""
    folder = os.path.join(cache_dir, f"photos-f{FORMAT}-n{count}")
    done = folder + ".complete"
    if os.path.exists(done):
        return folder
    os.makedirs(folder, exist_ok=True)
    sources = source_photos()
    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = make_photo(sources, rng, SIZES[i % len(SIZES)])
        if i % 3 == 2:
            photo.save(os.path.join(folder, f"photo{i:05d}.png"), optimize=False)
        else:
            photo.save(os.path.join(folder, f"photo{i:05d}.jpg"), quality=90)
    with open(done, "w") as fh:
        fh.write("complete\n")
    return folder


def describe(folder):
    """{'files', 'jpeg', 'png', 'megapixels', 'megabytes'} of a built collection."""
    names = sorted(os.listdir(folder))
    pixels = 0
    for name in names:
        with Image.open(os.path.join(folder, name)) as image:
            pixels += image.width * image.height
    return {"files": len(names), "jpeg": sum(n.endswith(".jpg") for n in names),
            "png": sum(n.endswith(".png") for n in names),
            "megapixels_mean": pixels / max(1, len(names)) / 1e6,
            "megabytes": sum(os.path.getsize(os.path.join(folder, n)) for n in names) / 1e6}
