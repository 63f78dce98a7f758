"""How well the whole-collection duplicate finder separates copies from look-alikes.

    python -m bench.quality_duplicates          # builds its sets into bench/cache/duplicates/

Two collections, each indexed by the project's own generator.scan + main.extract:

- copies: 105 packaged wallpapers and sample photos, each with its 9 edited copies
  (bench/quality_sets.py, demo/edits.py) in the same collection, plus the ~800 Tux Paint
  stamps as distractors. Truth: an original and its edits form one group of 10.
- look-alikes (distinct but similar pictures): the 310 labelled Tux Paint photos (15
  classes: many birds, many coins...) and, as a stand-in for burst shots, two
  non-overlapping crops of every original (the left and the right 45 %: the same scene,
  not the same picture). Every group found here is a false group.

Prints pair precision / recall against the threshold (pairs = two images put in one group),
recall per edit kind, and the false groups among look-alikes, for the upright search and for
``--any-orientation``; writes bench/results/quality_duplicates.{json,md}.
"""
import argparse
import json
import logging
import os
import re
from itertools import combinations

import numpy as np

import config
import generator
import main as extractor
from bench.quality_sets import (
    STAMPS_DIR,
    MissingImagesError,
    build_labelled,
    build_near_duplicates,
    load_original,
    sample_photo_files,
    stamp_files,
    wallpaper_files,
)
from cli import run, setup_logging
from db import connect
from demo.edits import NEAR_DUPLICATE_EDITS
from duplicates import DEFAULT_THRESHOLDS, find_duplicates
from fileio import atomic_write

log = logging.getLogger("quality_duplicates")

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, "cache", "duplicates")  # git-ignored
RESULTS_DIR = os.path.join(HERE, "results")
MODEL = "efficientnet_lite0"
ORIENTATION_EDITS = ("flip", "rotate_90")  # copies only under --any-orientation
BURST_SIDE = 0.45  # each crop is 45 % of the width: a 10 % gap keeps them from overlapping
THRESHOLDS = (0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.22, 0.25, 0.30)
HASH_SWEEP = {"phash": (2, 4, 6, 8), "dhash": (4,)}
TARGETS = {"precision": 0.98, "recall": 0.95}
TINY = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "grace_hopper")  # --tiny: the smoke test's
PICTURE = re.compile(r"^(?:collection/originals|queries/(?P<edit>[^/]+))/(?P<name>[^/]+)\.jpg$")


def tiny_originals():
    """The --tiny sets' pictures: six of the sample photos pip packages ship (no Debian package needed)."""
    return {name: path for name, path in sample_photo_files().items() if name.removeprefix("sample_") in TINY}


def build_sets(cache_dir=CACHE_DIR, stamps_dir=STAMPS_DIR, tiny=False):
    """(copies folder, look-alikes folder), built once and reused while their sources are unchanged.
    ``tiny``: six sample photos and their edits, their halves as the look-alikes (no stamps)."""
    originals = tiny_originals() if tiny else {**wallpaper_files(), **sample_photo_files()}
    stamps = [] if tiny else stamp_files(stamps_dir)
    if not stamps and not tiny:
        raise MissingImagesError(f"no tuxpaint stamps under {stamps_dir}: apt-get install tuxpaint-stamps-default")
    copies, lookalikes = os.path.join(cache_dir, "copies"), os.path.join(cache_dir, "lookalikes")
    sources = sorted(originals) + [name for _, _, name in stamps]
    if _manifest(copies) != sources:
        build_near_duplicates(copies, originals, [(path, name) for path, _, name in stamps])
        _write_manifest(copies, sources)
    if _manifest(lookalikes) != sources:
        if not tiny:
            build_labelled(os.path.join(lookalikes, "labelled"), stamps_dir)
        bursts = os.path.join(lookalikes, "bursts")
        os.makedirs(bursts, exist_ok=True)
        for name, path in sorted(originals.items()):
            for side, crop in zip("lr", burst_crops(load_original(path))):
                crop.save(os.path.join(bursts, f"{name}_{side}.jpg"), quality=92)
        _write_manifest(lookalikes, sources)
    return copies, lookalikes


def burst_crops(image):
    """Two non-overlapping crops of one photo: the same scene, two different pictures."""
    w, h = image.size
    cw = int(w * BURST_SIDE)
    return image.crop((0, 0, cw, h)), image.crop((w - cw, 0, w, h))


def index(folder, db_path, model=MODEL):
    """The project's own pipeline: scan, then extract every feature (a no-op once done)."""
    generator.scan(folder, db_path, progress=False)
    extractor.extract(db_path, model=model, workers=config.NUM_WORKERS, progress=False, build_index=False)
    return connect(db_path)


def _manifest(folder):
    try:
        with open(folder + ".json", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _write_manifest(folder, names):
    with atomic_write(folder + ".json", "w", encoding="utf-8") as fh:
        json.dump(names, fh)


def truth_of(path):
    """(picture name, edit) of a path of the copies collection; (None, None) for a distractor."""
    found = PICTURE.match(path)
    if not found:
        return None, None
    return found["name"], found["edit"] or "original"


def copies_scores(report, root, any_orientation):
    """Pair precision / recall and recall per edit kind on the copies collection.

    Pairs: two images put in one group. True pairs: two images of one picture (45 per
    picture: original + 9 edits); the upright search is scored on the 28 without the mirrored
    and the 90-degree-turned copies (copies only with --any-orientation). False pairs are split into
    those that involve a photo (scored) and those between two Tux Paint stamps (reported:
    the stamps hold colour and glyph variants of one drawing, so no truth exists there).
    """
    group_of, labels = {}, {}
    for number, group in enumerate(report.groups):
        for path in group.paths:
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            group_of[rel] = number
            labels[rel] = truth_of(rel)
    true_pairs = false_photo = false_stamps = 0
    for group in report.groups:
        rels = [os.path.relpath(p, root).replace(os.sep, "/") for p in group.paths]
        for a, b in combinations(rels, 2):
            (name_a, _), (name_b, _) = labels[a], labels[b]
            if name_a is not None and name_a == name_b:
                true_pairs += 1
            elif name_a is None and name_b is None:
                false_stamps += 1
            else:
                false_photo += 1
    pictures = sorted({n for n, _ in (truth_of(p) for p in _all_paths(root)) if n})
    scored_edits = [e for e in NEAR_DUPLICATE_EDITS if any_orientation or e not in ORIENTATION_EDITS]
    members = ["collection/originals/{}.jpg"] + [f"queries/{e}/{{}}.jpg" for e in scored_edits]
    expected = found = 0
    for name in pictures:
        paths = [m.format(name) for m in members]
        for a, b in combinations(paths, 2):
            expected += 1
            found += a in group_of and group_of.get(a) == group_of.get(b)
    per_edit = {}
    for edit in NEAR_DUPLICATE_EDITS:
        hits = [f"collection/originals/{n}.jpg" in group_of and
                group_of.get(f"collection/originals/{n}.jpg") == group_of.get(f"queries/{edit}/{n}.jpg")
                for n in pictures]
        per_edit[edit] = float(np.mean(hits)) if hits else 0.0
    return {"true_pairs_found": true_pairs, "false_pairs_photos": false_photo, "pairs_among_stamps": false_stamps,
            "recall": found / expected if expected else 0.0, "recall_per_edit": per_edit,
            "groups": len(report.groups)}


def lookalike_scores(report, root):
    """Every group here is false: pairs and groups, split into burst crops and labelled classes."""
    burst_pairs = class_pairs = cross_pairs = 0
    for group in report.groups:
        rels = [os.path.relpath(p, root).replace(os.sep, "/") for p in group.paths]
        for a, b in combinations(rels, 2):
            if a.startswith("bursts/") and b.startswith("bursts/"):
                burst_pairs += 1
            elif a.split("/")[:2] == b.split("/")[:2]:
                class_pairs += 1
            else:
                cross_pairs += 1
    return {"false_groups": len(report.groups), "false_pairs": burst_pairs + class_pairs + cross_pairs,
            "burst_pairs": burst_pairs, "same_class_pairs": class_pairs, "other_pairs": cross_pairs,
            "images": report.settings["images"],
            "examples": [[os.path.relpath(p, root) for p in g.paths] for g in report.groups[:5]]}


def _all_paths(root):
    for folder, _, files in os.walk(root):
        for name in files:
            yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def evaluate(copies_conn, copies_root, lookalikes_conn, lookalikes_root, threshold, mode="embeddings", **options):
    """Scores of one setting on both collections; precision counts look-alike pairs as false."""
    copies = copies_scores(find_duplicates(copies_conn, mode, threshold, **options), copies_root,
                           options.get("any_orientation", False))
    lookalikes = lookalike_scores(find_duplicates(lookalikes_conn, mode, threshold, **options), lookalikes_root)
    found = copies["true_pairs_found"]
    false = copies["false_pairs_photos"] + lookalikes["false_pairs"]
    precision = found / (found + false) if found + false else 1.0
    return {"threshold": threshold, "mode": mode, **options, "precision": precision, "copies": copies,
            "lookalikes": lookalikes}


def sweep(copies_conn, copies_root, lookalikes_conn, lookalikes_root, thresholds=THRESHOLDS):
    rows = []
    variants = [{}, {"linkage": "complete"}, {"linkage": "chain"}, {"use_hashes": False}, {"align": False}]
    for options in variants:
        for threshold in thresholds:
            rows.append(evaluate(copies_conn, copies_root, lookalikes_conn, lookalikes_root, threshold, **options))
    default = DEFAULT_THRESHOLDS["cosine"]
    rows.append(evaluate(copies_conn, copies_root, lookalikes_conn, lookalikes_root, default, any_orientation=True))
    for mode, thresholds in HASH_SWEEP.items():
        rows += [evaluate(copies_conn, copies_root, lookalikes_conn, lookalikes_root, t, mode) for t in thresholds]
    return rows


def _setting(row):
    words = [] if row.get("mode", "embeddings") == "embeddings" else [f"--mode {row['mode']} (hash only)"]
    if row.get("use_hashes") is False:
        words.append("no pHash rule")
    if row.get("align") is False:
        words.append("no alignment (the rule before it)")
    if row.get("linkage") in ("complete", "chain"):
        words.append(f"{row['linkage']} linkage")
    if row.get("any_orientation"):
        words.append("--any-orientation")
    return ", ".join(words) or "default rule (star linkage)"


def markdown(rows, sizes):
    default = DEFAULT_THRESHOLDS["cosine"]
    lines = [f"Copies collection: {sizes['copies']} images ({sizes['pictures']} pictures x (original + 9 edits) + "
             f"{sizes['copies'] - 10 * sizes['pictures']} Tux Paint stamps). Look-alikes: {sizes['lookalikes']} "
             f"images ({sizes['labelled']} labelled Tux Paint photos in 15 classes, {sizes['bursts']} burst "
             f"stand-ins: two non-overlapping crops of each picture).", "",
             "| setting | threshold | pair precision | pair recall | false pairs (photos) | look-alike false groups "
             "(pairs: bursts / same class / other) | pairs among stamps |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        c, look = row["copies"], row["lookalikes"]
        mark = " **(default)**" if row["threshold"] == default and _setting(row) == _setting({}) else ""
        lines.append(f"| {_setting(row)}{mark} | {row['threshold']} | {row['precision']:.3f} | {c['recall']:.3f} | "
                     f"{c['false_pairs_photos']} | {look['false_groups']} ({look['burst_pairs']} / "
                     f"{look['same_class_pairs']} / {look['other_pairs']}) | {c['pairs_among_stamps']} |")
    edits = list(NEAR_DUPLICATE_EDITS)
    lines += ["", "Recall per edit kind (share of edited copies in their original's group):", "",
              "| setting | threshold | " + " | ".join(edits) + " |", "|---|---|" + "---|" * len(edits)]
    hash_default = DEFAULT_THRESHOLDS["hamming"]
    for row in rows:
        if row["threshold"] == (default if row["mode"] == "embeddings" else hash_default):
            per = " | ".join(f"{row['copies']['recall_per_edit'][e]:.2f}" for e in edits)
            lines.append(f"| {_setting(row)} | {row['threshold']} | {per} |")
    best = next(r for r in rows if r["threshold"] == default and _setting(r) == _setting({}))
    met = best["precision"] >= TARGETS["precision"] and best["copies"]["recall"] >= TARGETS["recall"]
    lines += ["", f"Default (cosine <= {default}, pHash rule, star linkage): pair precision {best['precision']:.3f} "
                  f"(target >= {TARGETS['precision']}), pair recall {best['copies']['recall']:.3f} (target >= "
                  f"{TARGETS['recall']}, upright edits): {'met' if met else 'NOT met'}.",
              "Look-alike false groups at the default: " + "; ".join(
                  " + ".join(os.path.basename(p) for p in g) for g in best["lookalikes"]["examples"])]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=CACHE_DIR, help="where the sets and DBs go (default: %(default)s)")
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for quality_duplicates.json and .md")
    parser.add_argument("--tiny", action="store_true", help="six sample photos, the default threshold: the smoke test")
    args = parser.parse_args(argv)
    setup_logging()
    copies, lookalikes = build_sets(args.cache, tiny=args.tiny)
    copies_conn = index(copies, os.path.join(args.cache, "copies.db"))
    lookalikes_conn = index(lookalikes, os.path.join(args.cache, "lookalikes.db"))
    thresholds = (DEFAULT_THRESHOLDS["cosine"],) if args.tiny else THRESHOLDS
    rows = sweep(copies_conn, copies, lookalikes_conn, lookalikes, thresholds)
    sizes = {"copies": rows[0]["copies"].get("images", 0) or sum(1 for _ in _all_paths(copies)),
             "pictures": len(os.listdir(os.path.join(copies, "collection", "originals"))),
             "lookalikes": rows[0]["lookalikes"]["images"],
             "labelled": sum(1 for p in _all_paths(lookalikes) if p.startswith("labelled/")),
             "bursts": sum(1 for p in _all_paths(lookalikes) if p.startswith("bursts/"))}
    text = markdown(rows, sizes)
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, "quality_duplicates.json"), "w", encoding="utf-8") as fh:
        json.dump({"sizes": sizes, "rows": rows, "targets": TARGETS}, fh, indent=1)
    with atomic_write(os.path.join(args.out, "quality_duplicates.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    run(main)
