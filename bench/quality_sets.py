"""The two image sets the quality benchmark scores retrieval on, built from packaged images.

- labelled: Debian's tuxpaint-stamps-default photo cut-outs, one folder per class
  (bench/tuxpaint_classes.tsv maps stamp folders to classes; classes under 8 images dropped).
- near-duplicates: >= 100 distinct packaged wallpapers and sample photos as originals, the
  tuxpaint stamps as distractors, and every original edited 9 ways (demo/edits.py) as queries.
- tiny: a few seconds' worth of both, from scikit-image's samples only (for the test).

Nobody here drew these images, so scores on them say something about real photos. Each set
is written to a temporary folder and renamed into place when complete.
"""
import glob
import json
import logging
import os
import shutil
from collections import Counter

from PIL import Image

from cli import UsageError
from demo.build_demo import package_file
from demo.edits import NEAR_DUPLICATE_EDITS, save_edit
from features.decode import content_hash, to_rgb
from fileio import atomic_write

log = logging.getLogger("quality_sets")

HERE = os.path.dirname(os.path.abspath(__file__))
CLASS_MAP = os.path.join(HERE, "tuxpaint_classes.tsv")
CACHE_DIR = os.path.join(HERE, "cache", "quality")  # git-ignored
STAMPS_DIR = "/usr/share/tuxpaint/stamps"
MIN_PER_CLASS = 8
ORIGINAL_SIDE = 1024  # longer side of a near-duplicate original: big enough to edit, quick to decode
APT_PACKAGES = ("tuxpaint-stamps-default", "plasma-workspace-wallpapers", "gnome-backgrounds", "mate-backgrounds",
                "ukui-wallpapers", "lomiri-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")

# Packaged wallpapers: one file per distinct picture (dark/light or colour variants of one
# design would be near-duplicates of each other, so only one of each is kept).
PLASMA_WALLPAPERS = (
    "Altai", "Autumn", "BytheWater", "Canopee", "Cascade", "Cluster", "ColdRipple", "ColorfulCups", "DarkestHour",
    "Elarun", "EveningGlow", "FallenLeaf", "Flow", "FlyingKonqui", "Grey", "Honeywave", "IceCold", "Kay", "Kite",
    "Kokkini", "MilkyWay", "OneStandsOut", "Opal", "PastelHills", "Patak", "Path", "SafeLanding", "Shell", "Volna",
    "summer_1am",
)
BACKGROUND_GLOBS = ("/usr/share/backgrounds/*.jpg", "/usr/share/backgrounds/*.png",
                    "/usr/share/backgrounds/mate/*/*.jpg", "/usr/share/backgrounds/mate/*/*.png",
                    "/usr/share/backgrounds/gnome/*-l.webp")
BACKGROUND_SKIP = ("Elephants_", "MATE-Stripes-Light", "Ubuntu-Mate-Dark", "Ubuntu-Mate-Radioactive",
                   "Ubuntu-Mate-Warm", "vnc-l")
# Sample photographs that pip packages ship (colour and greyscale; no two of one scene).
SAMPLE_PHOTOS = {
    "astronaut": ("skimage", "data/astronaut.png"), "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"), "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"), "hubble": ("skimage", "data/hubble_deep_field.jpg"),
    "retina": ("skimage", "data/retina.jpg"), "ihc": ("skimage", "data/ihc.png"),
    "color_wheel": ("skimage", "data/color.png"), "camera": ("skimage", "data/camera.png"),
    "moon": ("skimage", "data/moon.png"), "coins": ("skimage", "data/coins.png"),
    "page": ("skimage", "data/page.png"), "brick": ("skimage", "data/brick.png"),
    "grass": ("skimage", "data/grass.png"), "gravel": ("skimage", "data/gravel.png"),
    "text": ("skimage", "data/text.png"), "cell": ("skimage", "data/cell.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
EXACT_COPY = "exact copy"  # an edit that copies the original's bytes (the test's sanity check)


class MissingImagesError(UsageError):
    """The packaged images a set is built from are not installed: one line and exit status 2
    from every benchmark (cli.run), like any other problem with what the user asked for."""


def load_class_map(path=CLASS_MAP):
    """{'animals/birds': 'birds', ...} from the TSV (two folder levels above the PNG -> class)."""
    mapping = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and not line.startswith("#"):
                folder, label = line.rstrip("\n").split("\t")
                mapping[folder] = label
    return mapping


def stamp_files(stamps_dir=STAMPS_DIR):
    """[(source path, 'parent/folder', copied name)] of every stamp PNG, byte-identical repeats dropped."""
    found, seen = [], set()
    for path in sorted(glob.glob(os.path.join(stamps_dir, "**", "*.png"), recursive=True)):
        parts = ("stamps/" + os.path.relpath(os.path.dirname(path), stamps_dir)).split("/")
        with open(path, "rb") as fh:
            digest = content_hash(fh.read())
        if digest not in seen:
            seen.add(digest)
            # Several files share a base name across folders: keep the folders in the name.
            found.append((path, "/".join(parts[-2:]), f"{parts[-2]}_{parts[-1]}_{os.path.basename(path)}"))
    return found


def labelled_stamps(stamps_dir=STAMPS_DIR, class_map=None, min_per_class=MIN_PER_CLASS):
    """[(source path, class, copied name)] of the stamp photos in classes with enough images."""
    class_map = load_class_map() if class_map is None else class_map
    found = [(path, class_map[folder], name) for path, folder, name in stamp_files(stamps_dir) if folder in class_map]
    counts = Counter(label for _, label, _ in found)
    return [item for item in found if counts[item[1]] >= min_per_class]


def wallpaper_files():
    """{name: path} of the installed packaged wallpapers, one per distinct picture."""
    files, seen = {}, set()
    for name in PLASMA_WALLPAPERS:
        candidates = glob.glob(f"/usr/share/wallpapers/{name}/contents/images/*.*")
        landscape = [(w * h, p) for p in candidates for w, h in [_size(p)] if w >= h]
        if landscape:
            files[f"plasma_{name}"] = max(landscape)[1]
    for pattern in BACKGROUND_GLOBS:
        for path in sorted(glob.glob(pattern)):
            stem = os.path.splitext(os.path.basename(path))[0]
            real = os.path.realpath(path)  # some are symlinks to another wallpaper
            if real in seen or any(stem.startswith(skip) for skip in BACKGROUND_SKIP) or _mostly_transparent(path):
                continue
            seen.add(real)
            files[f"bg_{stem}"] = path
    return files


def _mostly_transparent(path, limit=0.75):
    """True for overlay wallpapers (meant to go over a desktop colour): on white they are near-blank."""
    with Image.open(path) as image:
        if "A" not in image.getbands():
            return False
        alpha = image.getchannel("A")
        alpha.thumbnail((256, 256))
        return sum(alpha.getdata()) / (255 * alpha.width * alpha.height) < limit

def sample_photo_files():
    """{name: path} of the sample photographs pip packages ship."""
    files = {}
    for name, (package, relative) in SAMPLE_PHOTOS.items():
        path = package_file(package, relative)
        if os.path.exists(path):
            files[f"sample_{name}"] = path
    return files


def _size(path):
    with Image.open(path) as image:
        return image.size


def load_original(path, side=ORIGINAL_SIDE):
    """An RGB copy (transparency flattened on white, as features.decode does) no longer than ``side``."""
    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        image.load()
        rgb = to_rgb(image)
    rgb.thumbnail((side, side), Image.LANCZOS)
    return rgb


def build_labelled(out_dir, stamps_dir=STAMPS_DIR):
    """Copy the labelled stamps to ``out_dir/<class>/``; returns {class: count}."""
    stamps = labelled_stamps(stamps_dir)
    if not stamps:
        raise MissingImagesError(f"no tuxpaint stamps under {stamps_dir}: apt-get install tuxpaint-stamps-default")
    with _building(out_dir) as tmp:
        for path, label, name in stamps:
            os.makedirs(os.path.join(tmp, label), exist_ok=True)
            shutil.copyfile(path, os.path.join(tmp, label, name))
    return dict(Counter(label for _, label, _ in stamps))


def build_near_duplicates(out_dir, originals, distractors=(), edits=NEAR_DUPLICATE_EDITS):
    """collection/{originals,distractors}/ and queries/<edit>/<name>.jpg; returns the counts.

    originals: {name: source path}; distractors: [(source path, copied name)]. The originals
    are saved as JPEG at quality 92; each edit (demo.edits, or EXACT_COPY) starts from the
    same in-memory picture the original was saved from.
    """
    with _building(out_dir) as tmp:
        for sub in ["collection/originals", "collection/distractors"] + [f"queries/{e}" for e in edits]:
            os.makedirs(os.path.join(tmp, sub))
        for name, path in sorted(originals.items()):
            image = load_original(path)
            saved = os.path.join(tmp, "collection/originals", f"{name}.jpg")
            image.save(saved, quality=92)
            for edit_name, edit in edits.items():
                query = os.path.join(tmp, "queries", edit_name, f"{name}.jpg")
                if edit is EXACT_COPY:
                    shutil.copyfile(saved, query)
                else:
                    save_edit(image, edit, query)
        for path, name in distractors:
            shutil.copyfile(path, os.path.join(tmp, "collection/distractors", name))
    return {"originals": len(originals), "distractors": len(distractors), "edits": len(edits)}


def top_folder_stamps(stamps_dir=STAMPS_DIR, min_per_class=MIN_PER_CLASS):
    """[(source path, top folder, copied name)]: every stamp photo labelled by its top folder under
    the stamps tree (animals, food, vehicles ...), folders under ``min_per_class`` dropped. A second,
    coarser and independent grouping of the same photos than the class map's."""
    found = [(path, os.path.relpath(path, stamps_dir).split(os.sep)[0], name)
             for path, _, name in stamp_files(stamps_dir) if os.sep in os.path.relpath(path, stamps_dir)]
    counts = Counter(label for _, label, _ in found)
    return [item for item in found if counts[item[1]] >= min_per_class]


def build_top_folder_set(cache_dir, stamps_dir=STAMPS_DIR):
    """The stamps grouped by top folder in ``cache_dir/top_folders/<folder>/`` (built or reused),
    or None when the stamps are not installed."""
    stamps = top_folder_stamps(stamps_dir)
    if not stamps:
        return None
    out = os.path.join(cache_dir, "top_folders")
    if _manifest(out) != sorted(name for _, _, name in stamps):
        with _building(out) as tmp:
            for path, label, name in stamps:
                os.makedirs(os.path.join(tmp, label), exist_ok=True)
                shutil.copyfile(path, os.path.join(tmp, label, name))
        _write_manifest(out, sorted(name for _, _, name in stamps))
        log.info("top-folder set: %s", dict(Counter(label for _, label, _ in stamps)))
    return out


def build_packaged_sets(cache_dir, stamps_dir=STAMPS_DIR):
    """Build (or reuse) the labelled and near-duplicate sets; returns their folders."""
    labelled, near = os.path.join(cache_dir, "labelled"), os.path.join(cache_dir, "near_duplicates")
    stamps = labelled_stamps(stamps_dir)
    if _manifest(labelled) != sorted(name for _, _, name in stamps):
        log.info("labelled set: %s", build_labelled(labelled, stamps_dir))
        _write_manifest(labelled, sorted(name for _, _, name in stamps))
    originals = {**wallpaper_files(), **sample_photo_files()}
    if len(originals) < 100:
        log.warning("only %d packaged originals found (want >= 100): apt-get install %s",
                    len(originals), " ".join(APT_PACKAGES[1:]))
    if _manifest(near) != sorted(originals):
        distractors = [(path, name) for path, _, name in stamp_files(stamps_dir)]
        log.info("near-duplicate set: %s", build_near_duplicates(near, originals, distractors))
        _write_manifest(near, sorted(originals))
    return labelled, near


def _manifest(folder):
    """What a built set was built from (names), or None: a set is rebuilt when its sources change."""
    try:
        with open(os.path.join(folder, "..", os.path.basename(folder) + ".json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _write_manifest(folder, names):
    with atomic_write(os.path.join(folder, "..", os.path.basename(folder) + ".json"), "w", encoding="utf-8") as fh:
        json.dump(names, fh)


def build_tiny_sets(out_dir, photos=("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "ihc"), crops=5):
    """Seconds-sized sets from scikit-image samples: ``crops`` overlapping crops of each photo as
    its class, and the whole photos with byte-identical copies outside the collection as queries."""
    sources = {name: package_file(*SAMPLE_PHOTOS[name]) for name in photos}
    labelled, near = os.path.join(out_dir, "labelled"), os.path.join(out_dir, "near_duplicates")
    with _building(labelled) as tmp:
        for name, path in sources.items():
            os.makedirs(os.path.join(tmp, name))
            image = load_original(path, 512)
            w, h = image.size
            cw, ch = int(w * 0.6), int(h * 0.6)
            corners = [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch), ((w - cw) // 2, (h - ch) // 2)]
            for k, (x, y) in enumerate(corners[:crops]):
                image.crop((x, y, x + cw, y + ch)).save(os.path.join(tmp, name, f"crop{k}.jpg"), quality=90)
    build_near_duplicates(near, {f"sample_{n}": p for n, p in sources.items()}, edits={"exact_copy": EXACT_COPY})
    return labelled, near


class _building:
    """Write a folder under a temporary name and rename it into place only when complete."""

    def __init__(self, out_dir):
        self.out_dir, self.tmp = out_dir, f"{out_dir}.tmp{os.getpid()}"

    def __enter__(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        shutil.rmtree(self.out_dir, ignore_errors=True)
        os.replace(self.tmp, self.out_dir)
