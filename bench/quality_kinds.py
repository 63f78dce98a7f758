"""Which band catches what: exact / copy / similar on copies, burst stand-ins and look-alikes.

    python -m bench.quality_kinds        # after bench.quality_duplicates built its sets

Three collections, each indexed by the project's own pipeline (bench/cache/duplicates/):

- copies (bench.quality_duplicates): 105 pictures x (original + 9 edits) + Tux Paint stamps;
- series (built here), the burst stand-ins: four frames of every picture, overlapping crops
  shifted by 7-20 % of the width and 3-10 % of the height (a camera panning during a burst);
  every frame is a different picture of one scene: "similar", never "copy";
- look-alikes (bench.quality_duplicates): distinct pictures of one class (coins, birds...)
  and two non-overlapping halves of each picture (counted apart).

For each copy threshold and similar band: pairs put in copy groups and in similar groups,
per collection. Prints a table, writes bench/results/quality_kinds.{json,md}.
"""
import argparse
import json
import os
from itertools import combinations

from bench.quality_duplicates import (
    CACHE_DIR,
    RESULTS_DIR,
    _all_paths,
    _manifest,
    _write_manifest,
    build_sets,
    copies_scores,
    index,
    tiny_originals,
)
from bench.quality_sets import load_original, sample_photo_files, wallpaper_files
from cli import run, setup_logging
from duplicates import find_duplicates
from fileio import atomic_write

# (left, top, right, bottom) as fractions of the picture: overlapping crops, small shifts.
FRAMES = ((0.0, 0.0, 0.8, 0.9), (0.07, 0.03, 0.87, 0.93), (0.14, 0.05, 0.94, 0.95), (0.2, 0.1, 1.0, 1.0))
# (copy threshold, similar band, align): the last rows are the rule before alignment, side by side.
SETTINGS = ((0.15, 0.30, True), (0.18, 0.30, True), (0.18, 0.35, True), (0.18, 0.40, True), (0.18, 0.45, True),
            (0.25, 0.35, True), (0.18, 0.30, False), (0.25, 0.35, False))


def build_series(cache_dir=CACHE_DIR, tiny=False):
    originals = tiny_originals() if tiny else {**wallpaper_files(), **sample_photo_files()}
    folder = os.path.join(cache_dir, "series")
    sources = sorted(originals) + [str(FRAMES)]
    if _manifest(folder) != sources:
        os.makedirs(folder, exist_ok=True)
        for name, path in sorted(originals.items()):
            image = load_original(path)
            w, h = image.size
            for k, (left, top, right, bottom) in enumerate(FRAMES):
                frame = image.crop((int(left * w), int(top * h), int(right * w), int(bottom * h)))
                frame.save(os.path.join(folder, f"{name}_{k}.jpg"), quality=92)
        _write_manifest(folder, sources)
    return folder


def pair_kinds(report, root, same):
    """{kind: (true pairs, other pairs)} of the report's groups, ``same(a, b)`` telling a true pair."""
    out = {}
    for group in report.groups:
        rels = [os.path.relpath(p, root).replace(os.sep, "/") for p in group.paths]
        kind = "similar" if group.kind == "similar" else "copy"
        good, bad = out.get(kind, (0, 0))
        for a, b in combinations(rels, 2):
            good, bad = (good + 1, bad) if same(a, b) else (good, bad + 1)
        out[kind] = (good, bad)
    return out


def series_name(path):
    return os.path.basename(path).rsplit("_", 1)[0]


def measure(conns, roots, copy_t, similar_t, align=True):
    row = {"copy_threshold": copy_t, "similar_threshold": similar_t, "align": align}
    report = find_duplicates(conns["copies"], threshold=copy_t, similar=similar_t, align=align)
    report.groups = [g for g in report.groups if g.kind != "similar"]  # a keeper is in both kinds
    scores = copies_scores(report, roots["copies"], False)
    row["copies"] = {"recall": scores["recall"], "false_photo_pairs": scores["false_pairs_photos"]}
    series = find_duplicates(conns["series"], threshold=copy_t, similar=similar_t, align=align)
    frames = sum(1 for _ in _all_paths(roots["series"]))
    total = (frames // len(FRAMES)) * len(list(combinations(FRAMES, 2)))
    kinds = pair_kinds(series, roots["series"], lambda a, b: series_name(a) == series_name(b))
    row["series"] = {"pairs": total, "as_copy": kinds.get("copy", (0, 0))[0] / total,
                     "as_similar": kinds.get("similar", (0, 0))[0] / total,
                     "wrong_scene_pairs": sum(bad for _, bad in kinds.values()),
                     "similar_wrong_scene_pairs": kinds.get("similar", (0, 0))[1]}
    looks = find_duplicates(conns["lookalikes"], threshold=copy_t, similar=similar_t, align=align)
    halves = pair_kinds(looks, roots["lookalikes"], lambda a, b: a.startswith("bursts/") and b.startswith("bursts/"))
    row["lookalikes"] = {kind: {"halves": good, "distinct": bad} for kind, (good, bad) in halves.items()}
    # The similar kind's own pair precision: pairs of one scene (burst frames, halves of one
    # picture) against distinct look-alikes and frames of other scenes put in similar groups.
    good = kinds.get("similar", (0, 0))[0] + row["lookalikes"].get("similar", {}).get("halves", 0)
    bad = row["series"]["similar_wrong_scene_pairs"] + row["lookalikes"].get("similar", {}).get("distinct", 0)
    row["similar_precision"] = good / (good + bad) if good + bad else 1.0
    return row


def markdown(rows):
    lines = ["| alignment | copy <= | similar <= | copies: pair recall (copy kind) | copies: false photo pairs | "
             "bursts: pairs as copy | bursts: pairs as similar | bursts: pairs across scenes | "
             "look-alikes: distinct pairs as copy / similar | halves of one picture as copy / similar | "
             "similar kind: pair precision |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        look = r["lookalikes"]

        def get(kind, key, look=look):
            return look.get(kind, {}).get(key, 0)
        aligned = "yes" if r.get("align", True) else "no"
        lines.append(f"| {aligned} | {r['copy_threshold']} | {r['similar_threshold']} | {r['copies']['recall']:.3f} | "
                     f"{r['copies']['false_photo_pairs']} | {r['series']['as_copy']:.3f} | "
                     f"{r['series']['as_similar']:.3f} | {r['series']['wrong_scene_pairs']} | "
                     f"{get('copy', 'distinct')} / {get('similar', 'distinct')} | "
                     f"{get('copy', 'halves')} / {get('similar', 'halves')} | {r['similar_precision']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=CACHE_DIR)
    parser.add_argument("--out", default=RESULTS_DIR)
    parser.add_argument("--tiny", action="store_true", help="six sample photos, the default bands: the smoke test")
    args = parser.parse_args(argv)
    setup_logging()
    copies, lookalikes = build_sets(args.cache, tiny=args.tiny)
    roots = {"copies": copies, "lookalikes": lookalikes, "series": build_series(args.cache, args.tiny)}
    conns = {name: index(root, os.path.join(args.cache, f"{name}.db")) for name, root in roots.items()}
    settings = [s for s in SETTINGS if s[:2] == (0.18, 0.30)] if args.tiny else SETTINGS
    rows = [measure(conns, roots, *setting) for setting in settings]
    text = markdown(rows)
    os.makedirs(args.out, exist_ok=True)
    with atomic_write(os.path.join(args.out, "quality_kinds.json"), "w", encoding="utf-8") as fh:
        json.dump({"frames": FRAMES, "rows": rows}, fh, indent=1)
    with atomic_write(os.path.join(args.out, "quality_kinds.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    run(main)
