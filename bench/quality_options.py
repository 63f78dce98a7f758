"""Issue 21's table: each step from the search before it to today's defaults, the options left
out, and the larger networks, scored per set with the network's cost per image.

Every row is embeddings/cosine through calculate_similarities on DBs built by the project's own
pipeline (bench.quality.evaluate): the Tux Paint class map (P@1/5/10, mAP), the Tux Paint top
folders (P@10, mAP; a second, independent grouping of the same kind of pictures), and the
near-duplicate set of packaged photos (mean R@1 of its edits, and the worst edit). The cost is
the network alone on one thread, the same pictures for every model in one process, as CPU
milliseconds per image (the process's CPU time: less disturbed than wall time by other jobs on
a shared machine) and as a multiple of the first model's; the models take turns, round after
round, and each keeps its best round.
"""
import logging
import os
import time

import numpy as np

import config
from features.decode import decode
from features.framing import frame
from features.network.base import SPECS
from features.network.loader import load_embedder

log = logging.getLogger("quality")

# (row name, framing, search transform, query expansion): the first model's rows, from the search
# before issue 21 to the defaults one step at a time, then the options the measurements left out.
OPTIONS = (
    ("before issue 21: centre crop", "centre_crop", "none", False),
    ("whole picture, squashed", "squash", "none", False),
    ("whole picture, padded", "pad", "none", False),
    ("squashed + centred", "squash", "centred", False),
    ("squashed + centred + signed sqrt", "squash", "centred_ssqrt", False),
    ("squashed + centred + expansion k=2", "squash", "centred", True),
    ("squashed + centred + signed sqrt + expansion", "squash", "centred_ssqrt", True),
    ("padded + centred + expansion", "pad", "centred", True),
)
COST_IMAGES, COST_BATCH, COST_ROUNDS = 48, 8, 5


def is_default(framing, transform, expand):
    return (framing, transform, expand) == (config.EMBED_FRAMING, config.SEARCH_TRANSFORM, config.QUERY_EXPANSION)


def run_options(evaluate, report, sets, db_dir, workers):
    """report["options"]: one entry per OPTIONS row for the first model (the defaults' row taken
    from report["runs"][0]), then each other model at the defaults, each with its network cost."""
    labelled_dir, near_dir, top_dir = sets
    first = report["runs"][0]
    cosine = [("embeddings/cosine", "embeddings", "cosine", {})]
    costs = network_costs([one["model"] for one in report["runs"] if one["precision"] != "int8"], labelled_dir)
    options = []
    for name, framing, transform, expand in OPTIONS:
        if is_default(framing, transform, expand):
            scored, name = first, f"**{name} (the defaults)**"
        else:
            log.info("option: %s", name)
            scored = evaluate(labelled_dir, near_dir, db_dir, first["model"], cosine, workers,
                              framing=None if framing == config.EMBED_FRAMING else framing,
                              transform=transform, expand=expand, top_dir=top_dir)
        options.append(_entry(name, scored, costs))
    for other in report["runs"][1:]:
        if other["precision"] != "int8":
            options.append(_entry(f"{other['model']}, the defaults", other, costs))
    report["options"] = options


def _entry(name, scored, costs):
    row = scored["rows"]["embeddings/cosine"]
    near = {edit: scores["recall@1"] for edit, scores in row["near_duplicates"].items() if edit != "mean"}
    worst = min(near, key=near.get)
    return {"name": name, "model": scored["model"], "framing": scored["framing"], "transform": scored["transform"],
            "expand": scored["expand"], "labelled": row["labelled"], "top_folders": row.get("top_folders"),
            "near_recall@1": row["near_duplicates"]["mean"]["recall@1"], "worst_edit": [worst, near[worst]],
            "network_ms_per_image": costs.get(scored["model"])}


def network_costs(models, labelled_dir):
    """{model: CPU ms per image}: the network alone, one thread, batches of COST_BATCH pictures of
    the labelled set framed as configured; the models take turns for COST_ROUNDS rounds, each
    keeping its best, so a busy moment of the machine does not fall on one model only."""
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(labelled_dir) for f in names)[:COST_IMAGES]
    pictures = []
    for path in files:
        with open(path, "rb") as fh:
            pictures.append(decode(fh.read(), config.DECODE_SIDE))
    networks = {}
    for model in models:
        embedder = load_embedder(model, threads=1)
        size = SPECS[embedder.spec.name].input_size
        batches = [np.stack([frame(p, config.EMBED_FRAMING, size) for p in pictures[i:i + COST_BATCH]])
                   for i in range(0, len(pictures), COST_BATCH)]
        embedder.embed_crops(batches[0])  # warm-up
        networks[model] = (embedder, batches)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(COST_ROUNDS):
        for model, (embedder, batches) in networks.items():
            start = time.process_time()
            for batch in batches:
                embedder.embed_crops(batch)
            best[model] = min(best[model], time.process_time() - start)
    return {model: 1000 * seconds / len(pictures) for model, seconds in best.items()}


def options_markdown(report):
    """The issue-21 table, one row per entry of report["options"]."""
    options = report.get("options") or []
    if not options:
        return []
    base = options[0]["network_ms_per_image"]
    lines = ["Each step of issue 21 and the options left out (embeddings/cosine; Tux Paint class map and top "
             "folders leave-one-out, near-duplicate R@1 the mean of the edits; network cost: CPU ms per image on "
             f"one thread, best of {COST_ROUNDS} rounds taken in turns, and as a multiple of the first row's):", "",
             "| search | network | classes P@1 | P@5 | P@10 | mAP | top folders P@10 | mAP | near-dup R@1 | "
             "worst edit | network CPU ms/img | cost | ms/query |", "|---" * 13 + "|"]
    for one in options:
        lab, top, cost = one["labelled"], one["top_folders"] or {}, one["network_ms_per_image"]
        top_text = f"{top['P@10']:.3f} | {top['mAP']:.3f}" if top else "- | -"
        lines.append(f"| {one['name']} | {one['model']} | {lab['P@1']:.3f} | {lab['P@5']:.3f} | {lab['P@10']:.3f} | "
                     f"{lab['mAP']:.3f} | {top_text} | {one['near_recall@1']:.4f} | {one['worst_edit'][0]} "
                     f"{one['worst_edit'][1]:.3f} | {cost:.1f} | {cost / base:.2f}x | {lab['query_ms']:.1f} |")
    return lines + [""]
