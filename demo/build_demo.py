"""Build the offline demo collection from sample photos that pip packages ship.

scikit-image and matplotlib carry a handful of real photographs. Each one gives a few
distinct "originals" (the whole photo and its quarters), and every original gets
deterministic edited copies (resized, re-compressed, cropped, flipped, brightened) so a
search visibly finds them first. About 300 images, no downloads.

    python -m demo.build_demo --out demo_data/images
"""
import argparse
import logging
import os

from PIL import Image

from demo.edits import DEMO_EDITS, save_edit
from fileio import atomic_write

log = logging.getLogger("build_demo")

# (package, path inside it) of colour photographs; greyscale scientific images are left out.
SOURCES = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "hubble": ("skimage", "data/hubble_deep_field.jpg"),
    "retina": ("skimage", "data/retina.jpg"),
    "ihc": ("skimage", "data/ihc.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "color_wheel": ("skimage", "data/color.png"),
}
DEMO_QUERY = "chelsea/original.jpg"  # the cat: its edited copies should come first


def package_file(package, relative):
    module = __import__(package)
    return os.path.join(os.path.dirname(module.__file__), relative)


def originals(name, image):
    """The whole photo and its four quarters: five distinct pictures from one file."""
    yield name, image
    w, h = image.width // 2, image.height // 2
    for label, (x, y) in {"tl": (0, 0), "tr": (w, 0), "bl": (0, h), "br": (w, h)}.items():
        yield f"{name}_{label}", image.crop((x, y, x + w, y + h))


def build(out_dir, quarters=True):
    """Write the collection under ``out_dir``; returns the number of images written."""
    written = 0
    for name, (package, relative) in SOURCES.items():
        path = package_file(package, relative)
        if not os.path.exists(path):
            log.warning("sample %s is not installed (%s); skipped", name, path)
            continue
        with Image.open(path) as source:
            photo = source.convert("RGB")
        for label, image in originals(name, photo) if quarters else [(name, photo)]:
            folder = os.path.join(out_dir, label)
            os.makedirs(folder, exist_ok=True)
            with atomic_write(os.path.join(folder, "original.jpg"), "wb") as fh:
                image.save(fh, format="JPEG", quality=92)
            for edit_name, edit in DEMO_EDITS.items():
                save_edit(image, edit, os.path.join(folder, f"{edit_name}.jpg"))
            written += 1 + len(DEMO_EDITS)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_data/images")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"wrote {build(args.out)} images under {args.out}")


if __name__ == "__main__":
    main()
