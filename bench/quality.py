"""Retrieval quality of every mode x metric on real packaged photos, through the public API.

    python -m bench.quality            # builds the sets into bench/cache/quality (see quality_sets.py)

Labelled set (tuxpaint stamp photos, 15 classes): every image queries the collection it is
part of (leave-one-out: calculate_similarities leaves the query out) and is scored by
P@1/P@5/P@10 and mAP against its class. Near-duplicate set: each edited copy queries the
originals + distractors and is scored by recall@1/@5 of its original, per edit. Query time
is the median wall time of one calculate_similarities call. Chance level is shown beside
every score. Prints a markdown table; writes bench/results/quality.{json,md}.
"""
import argparse
import json
import logging
import os
import statistics
import time
from contextlib import contextmanager

import numpy as np
from tqdm import tqdm

import config
import generator
import main as extractor
from bench.machine import cpu_flags, flags_text
from bench.quality_options import options_markdown, run_options
from bench.quality_sets import CACHE_DIR, build_packaged_sets, build_tiny_sets, build_top_folder_set
from cli import UsageError, run, setup_logging
from db import connect
from db.images import OK, count_by_status
from db.meta import features_stamp
from features.network.base import WeightsError, verified_weights
from fileio import atomic_write
from search import matrix_cache
from search.modes import MODES, pairs
from similarities import calculate_similarities

log = logging.getLogger("quality")

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PAIRS = pairs()
# (row name, mode, metric, extra calculate_similarities arguments): every valid pair, and the
# hash modes once more with the flip/rotation-invariant search.
VARIANTS = [(f"{mode}/{metric}", mode, metric, {}) for mode, metric in PAIRS] + [
    (f"{mode}/{metric} +orientations", mode, metric, {"any_orientation": True})
    for mode, metric in PAIRS if MODES[mode].orientable]
MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18")
# int8 (IR_EMBED_PRECISION=int8) is kept only while it scores this close to the default precision
# on embeddings/cosine: P@10 on the labelled set, mean near-duplicate recall@1 (issue 11).
INT8_KEEP = {"P@10": 0.01, "recall@1": 0.005}


def build_db(folder, db_path, model, workers=config.NUM_WORKERS):
    """The project's own pipeline: generator.scan, then main.extract with ``model``."""
    generator.scan(folder, db_path, progress=False)
    return extractor.extract(db_path, model=model, workers=workers, progress=False)


def label_of(path, real_root):
    """The class of an image: its top folder under the (real) collection root."""
    return os.path.relpath(path, real_root).split(os.sep, 1)[0]


def labelled_scores(conn, root, mode, metric, ks=(1, 5, 10), **options):
    """Leave-one-out P@k and mAP over the whole labelled collection (class = top folder)."""
    real_root = os.path.realpath(root)  # calculate_similarities returns paths under the real root
    paths = sorted(matrix_cache.load(conn, "ahash").paths)  # every searchable image (the hashes load fastest)
    labels = [p.split("/", 1)[0] for p in paths]
    class_size = {label: labels.count(label) for label in set(labels)}
    precision = {k: [] for k in ks}
    average_precisions, times = [], []
    for path, label in zip(paths, labels):
        start = time.perf_counter()
        ranked = calculate_similarities(os.path.join(root, path), conn, mode, metric, top_k=len(paths) - 1,
                                        **options)
        times.append(time.perf_counter() - start)
        hits = np.array([label_of(p, real_root) == label for p, _ in ranked], dtype=bool)
        for k in ks:
            precision[k].append(hits[:k].sum() / k)
        average_precisions.append(average_precision(hits, class_size[label] - 1))
    scores = {f"P@{k}": float(np.mean(v)) for k, v in precision.items()}
    scores["mAP"] = float(np.mean(average_precisions))
    scores["query_ms"] = 1000 * statistics.median(times)
    return scores


def average_precision(hits, relevant):
    """Mean of the precision at the rank of each relevant item; ones never returned count 0."""
    ranks = np.flatnonzero(hits) + 1
    return float((np.arange(1, len(ranks) + 1) / ranks).sum() / relevant) if relevant else 0.0


def labelled_chance(root, seed=0, rounds=20):
    """Scores of a random ranking: P@k = mean share of same-class images; mAP by simulation."""
    labels = np.array([label_of(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files])
    rng = np.random.default_rng(seed)
    share = np.mean([(labels == label).sum() - 1 for label in labels]) / (len(labels) - 1)
    aps = []
    for _ in range(rounds):
        for i, label in enumerate(labels):
            others = np.delete(labels, i)
            hits = others[rng.permutation(len(others))] == label
            aps.append(average_precision(hits, hits.sum()))
    return {"P@1": float(share), "P@5": float(share), "P@10": float(share), "mAP": float(np.mean(aps))}


def near_duplicate_queries(folder):
    """{edit: [(query path, original path)]} from queries/<edit>/<name>.jpg."""
    queries = {}
    for edit in sorted(os.listdir(os.path.join(folder, "queries"))):
        names = sorted(os.listdir(os.path.join(folder, "queries", edit)))
        queries[edit] = [(os.path.join(folder, "queries", edit, n), os.path.join(folder, "collection/originals", n))
                         for n in names]
    return queries


def near_duplicate_scores(conn, queries, mode, metric, ks=(1, 5), **options):
    """{edit: {recall@k}} plus the median query time (features of the query file included)."""
    scores, times = {}, []
    for edit, edited in tqdm(queries.items(), desc=f"{mode}/{metric} near-duplicates", unit="edit", leave=False):
        found = {k: 0 for k in ks}
        for query, original in edited:
            start = time.perf_counter()
            ranked = calculate_similarities(query, conn, mode, metric, top_k=max(ks), **options)
            times.append(time.perf_counter() - start)
            paths = [os.path.realpath(p) for p, _ in ranked]
            for k in ks:
                found[k] += os.path.realpath(original) in paths[:k]
        scores[edit] = {f"recall@{k}": found[k] / len(edited) for k in ks}
    scores["mean"] = {f"recall@{k}": float(np.mean([s[f"recall@{k}"] for s in scores.values()])) for k in ks}
    return scores, 1000 * statistics.median(times)


@contextmanager
def settings(**values):
    """config's ``NAME=value`` settings while inside (a None value: left as configured); the loaded
    matrices are dropped on the way in and out, as IR_SEARCH_TRANSFORM applies when they load."""
    saved = {name: getattr(config, name) for name in values}
    for name, value in values.items():
        setattr(config, name, saved[name] if value is None else value)
    matrix_cache.forget()
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(config, name, value)
        matrix_cache.forget()


def db_name(model, precision=None, framing=None):
    """The DBs of one network and framing: ``labelled_<name>.db`` ... (default framing: no suffix)."""
    return model + (f"-{precision}" if precision else "") + (f"-{framing}" if framing else "")


def evaluate(labelled_dir, near_dir, db_dir, model, variants=VARIANTS, workers=config.NUM_WORKERS, query_threads=1,
             precision=None, framing=None, transform=None, expand=None, top_dir=None):
    """Every variant's scores on both sets (and embeddings variants on the top-folder set
    ``top_dir``, if given) with ``model``'s embeddings in ``precision``, pictures framed as
    ``framing``, searched with ``transform`` and ``expand`` (None: as configured); builds the
    DBs if needed.
    """
    name = db_name(model, precision, framing)
    labelled_db, near_db = os.path.join(db_dir, f"labelled_{name}.db"), os.path.join(db_dir, f"near_{name}.db")
    top_db = os.path.join(db_dir, f"top_{name}.db")
    with settings(EMBED_PRECISION=precision, EMBED_FRAMING=framing):
        build_db(labelled_dir, labelled_db, model, workers)
        build_db(os.path.join(near_dir, "collection"), near_db, model, workers)
        if top_dir:
            build_db(top_dir, top_db, model, workers)
    with settings(SEARCH_TRANSFORM=transform):
        return _scores(labelled_dir, near_dir, model, variants, query_threads, labelled_db, near_db,
                       top_dir and (top_dir, top_db), expand)


def _scores(labelled_dir, near_dir, model, variants, query_threads, labelled_db, near_db, top, expand):
    """The scores of ``evaluate``. Queries run the network on one image with ``query_threads``
    torch threads: two gain little on one image, and on a busy machine two OpenMP threads waiting
    for each other made a query ten times slower (0.9 s instead of 0.08 s), swamping the timings."""
    import torch  # heavy: only to set the query threads of a torch-runtime model

    torch.set_num_threads(query_threads)
    queries = near_duplicate_queries(near_dir)
    labelled_conn, near_conn = connect(labelled_db), connect(near_db)
    collection_size = count_by_status(near_conn).get(OK, 0)
    stamp = features_stamp(labelled_conn) or {}
    results = {"model": model, "runtime": stamp.get("embedding_runtime", "unrecorded"),
               "precision": stamp.get("embedding_precision", "unrecorded"),
               "framing": stamp.get("embedding_framing", "unrecorded"), "transform": config.SEARCH_TRANSFORM,
               "expand": config.QUERY_EXPANSION if expand is None else expand, "rows": {},
               "chance": {"labelled": labelled_chance(labelled_dir),
                          "near_duplicates": {"recall@1": 1 / collection_size, "recall@5": 5 / collection_size}},
               "sizes": {"labelled": sum(len(f) for _, _, f in os.walk(labelled_dir)),
                         "classes": {c: len(os.listdir(os.path.join(labelled_dir, c)))
                                     for c in sorted(os.listdir(labelled_dir))},
                         "near_collection": collection_size,
                         "near_originals": len(os.listdir(os.path.join(near_dir, "collection", "originals"))),
                         "near_queries": sum(len(p) for p in queries.values())}}
    if top:
        results["chance"]["top_folders"] = labelled_chance(top[0])
        results["sizes"]["top_folders"] = {c: len(os.listdir(os.path.join(top[0], c)))
                                           for c in sorted(os.listdir(top[0]))}
    top_conn = connect(top[1]) if top else None
    for name, mode, metric, options in variants:
        log.info("%s: %s", model, name)
        if MODES[mode].expandable and expand is not None:
            options = {**options, "expand": expand}
        labelled = labelled_scores(labelled_conn, labelled_dir, mode, metric, **options)
        near, near_ms = near_duplicate_scores(near_conn, queries, mode, metric, **options)
        results["rows"][name] = {"mode": mode, "metric": metric, **options, "labelled": labelled,
                                 "near_duplicates": near, "near_query_ms": near_ms}
        if top_conn is not None and mode == "embeddings":
            results["rows"][name]["top_folders"] = labelled_scores(top_conn, top[0], mode, metric, **options)
    for conn in (labelled_conn, near_conn, top_conn):
        if conn is not None:
            conn.close()
    return results


def int8_verdict(report):
    """One line: does int8 keep embeddings/cosine within INT8_KEEP of the default precision?"""
    int8 = next((one for one in report["runs"] if one["precision"] == "int8"), None)
    default = int8 and next((one for one in report["runs"]
                             if one["model"] == int8["model"] and one["precision"] != "int8"), None)
    if not default:
        return None
    ours, theirs = int8["rows"]["embeddings/cosine"], default["rows"]["embeddings/cosine"]
    p10 = (ours["labelled"]["P@10"], theirs["labelled"]["P@10"])
    r1 = (ours["near_duplicates"]["mean"]["recall@1"], theirs["near_duplicates"]["mean"]["recall@1"])
    holds = p10[1] - p10[0] <= INT8_KEEP["P@10"] and r1[1] - r1[0] <= INT8_KEEP["recall@1"]
    return (f"int8 against {default['precision']} ({int8['model']}, embeddings/cosine): P@10 {p10[0]:.3f} vs "
            f"{p10[1]:.3f}, near-duplicate R@1 {r1[0]:.3f} vs {r1[1]:.3f}; allowed loss {INT8_KEEP['P@10']} and "
            f"{INT8_KEEP['recall@1']}: {'quality holds, int8 stays an option' if holds else 'quality does NOT hold'}.")


def model_status(name):
    """None if ``name``'s verified weights are on this machine, else the reason they are not."""
    try:
        verified_weights(name)
    except WeightsError as exc:
        return str(exc)
    return None


def markdown(report):
    """Issue 21's table (bench.quality_options), the mode x metric table (labelled set), the
    near-duplicate recall@1 per edit, plus the model notes."""
    main_run = report["runs"][0]
    chance_l, chance_n = main_run["chance"]["labelled"], main_run["chance"]["near_duplicates"]
    sizes = main_run["sizes"]
    edits = [e for e in next(iter(main_run["rows"].values()))["near_duplicates"] if e != "mean"]
    classes = ", ".join(f"{c} {n}" for c, n in sorted(sizes["classes"].items(), key=lambda item: -item[1]))
    lines = [f"Labelled set: {sizes['labelled']} tuxpaint stamp photos in {len(sizes['classes'])} classes ({classes}), "
             f"leave-one-out. Near-duplicates: {sizes['near_queries']} edited queries of {sizes['near_originals']} "
             f"originals, collection {sizes['near_collection']} images (originals + distractors). CPU flags: "
             f"{flags_text(report.get('cpu_flags', cpu_flags()))}; each model's runtime and precision beside its "
             f"name. Framing {main_run.get('framing')}, search vectors {main_run.get('transform')}, query expansion "
             f"{'on' if main_run.get('expand') else 'off'} (embeddings).", "", *options_markdown(report),
             "| model | mode / metric | P@1 | P@5 | P@10 | mAP | near-dup R@1 | near-dup R@5 | ms/query in collection "
             "| ms/query new file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for one in report["runs"]:
        for name, row in one["rows"].items():
            lab, near = row["labelled"], row["near_duplicates"]["mean"]
            network = f"{one['model']} ({one.get('runtime', '?')}, {one.get('precision', '?')})"
            lines.append(f"| {network} | {name} | {lab['P@1']:.2f} | {lab['P@5']:.2f} | {lab['P@10']:.2f} | "
                         f"{lab['mAP']:.2f} | {near['recall@1']:.2f} | {near['recall@5']:.2f} | "
                         f"{lab['query_ms']:.1f} | {row['near_query_ms']:.1f} |")
    lines.append(f"| | chance | {chance_l['P@1']:.2f} | {chance_l['P@5']:.2f} | {chance_l['P@10']:.2f} | "
                 f"{chance_l['mAP']:.2f} | {chance_n['recall@1']:.3f} | {chance_n['recall@5']:.3f} | | |")
    lines += ["", "Near-duplicate recall@1 per edit (" + report["runs"][0]["model"] + "):", "",
              "| mode / metric | " + " | ".join(edits) + " |", "|---|" + "---|" * len(edits)]
    for name, row in main_run["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row['near_duplicates'][e]['recall@1']:.2f}" for e in edits) + " |")
    lines.append("| chance | " + " | ".join(f"{chance_n['recall@1']:.3f}" for _ in edits) + " |")
    verdict = int8_verdict(report)
    if verdict:
        lines += ["", verdict]
    for name, reason in report["unavailable_models"].items():
        lines += ["", f"{name}: not measured, {reason}"]
    return "\n".join(lines) + "\n"


def write_results(report, text, out_dir=RESULTS_DIR):
    """quality.json and quality.md, each written atomically (fileio)."""
    os.makedirs(out_dir, exist_ok=True)
    for name, content in (("quality.json", json.dumps(report, indent=2)), ("quality.md", text)):
        with atomic_write(os.path.join(out_dir, name), "w", encoding="utf-8") as fh:
            fh.write(content)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=CACHE_DIR, help="where the image sets and DBs go (default: %(default)s)")
    parser.add_argument("--models", default=",".join(MODELS), help="embedding models to compare (default: %(default)s)")
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for quality.json and quality.md")
    parser.add_argument("--tiny", action="store_true",
                        help="seconds-sized sets from scikit-image's sample photos (no Debian packages; the "
                             "test suite's smoke run): crops of a photo as its class, exact copies as queries")
    parser.add_argument("--workers", default=config.NUM_WORKERS, help="decode workers for the extraction runs")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 run (IR_EMBED_PRECISION=int8) of the "
                                                                 "first model, scored against its default precision")
    parser.add_argument("--no-options", action="store_true", help="skip issue 21's table (framings, search "
                                                                    "transforms, query expansion, network cost)")
    args = parser.parse_args(argv)
    setup_logging()
    workers = int(args.workers) if str(args.workers).isdigit() else args.workers
    labelled_dir, near_dir = build_tiny_sets(args.cache) if args.tiny else build_packaged_sets(args.cache)
    top_dir = None if args.tiny else build_top_folder_set(args.cache)
    report = {"runs": [], "unavailable_models": {}, "cpu_flags": cpu_flags()}
    for model in args.models.split(","):
        reason = model_status(model)
        if reason is not None:
            log.warning("%s: %s", model, reason)
            report["unavailable_models"][model] = reason
            continue
        variants = VARIANTS if not report["runs"] else [v for v in VARIANTS if v[1] == "embeddings"]
        report["runs"].append(evaluate(labelled_dir, near_dir, args.cache, model, variants, workers, top_dir=top_dir))
    if not report["runs"]:
        raise UsageError("no embedding model has verified weights on this machine")
    if not args.no_int8 and report["runs"][0]["precision"] != "int8":
        cosine = [v for v in VARIANTS if v[0] == "embeddings/cosine"]
        report["runs"].append(evaluate(labelled_dir, near_dir, args.cache, report["runs"][0]["model"], cosine, workers,
                                       precision="int8"))
    if not args.no_options:
        run_options(evaluate, report, (labelled_dir, near_dir, top_dir), args.cache, workers)
    text = markdown(report)
    write_results(report, text, args.out)
    print(text)


if __name__ == "__main__":
    run(main)
