"""Find the images most like one or more query images: the README's entry point.

    python similarities.py photo.jpg --mode embeddings --metric cosine --top-k 5 --out grid.png

Modes and the metrics that fit them (every score is a distance: smaller is more similar):

    embeddings  cosine, ann_cosine, euclidean, manhattan   (CNN content; unit-length vectors)
    rgb         bhattacharyya, cosine, ann_cosine, euclidean, manhattan   (colour histogram)
    ahash/dhash/phash   hamming   (perceptual hashes; bits that differ)

From Python: ``from similarities import calculate_similarities`` (search.query does the work;
this file is the command line and that import).
"""
import argparse
import logging
import os

import config
from cli import UsageError, run, setup_logging
from db import connect
from search.modes import METRICS, MODES, check_metric
from search.query import Filter, QueryImageError, calculate_similarities
from viz.grid import save_result_grid

__all__ = ["calculate_similarities", "Filter", "QueryImageError", "main"]

log = logging.getLogger("similarities")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("queries", nargs="+", help="query image file(s); several are combined")
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py + main.py (default: %(default)s)")
    parser.add_argument("--mode", default=config.DEFAULT_MODE, choices=MODES)
    parser.add_argument("--metric", default=None, choices=METRICS, help="default: the best metric for the mode")
    parser.add_argument("--top-k", type=int, default=config.TOP_K)
    parser.add_argument("--include-query", action="store_true", help="let a query in the collection match itself")
    parser.add_argument("--any-orientation", action="store_true", help="hash modes: also find flipped/rotated copies")
    parser.add_argument("--expand", action=argparse.BooleanOptionalAction, default=None,
                        help="embeddings: search again with the mean of the query and its first "
                             f"{config.EXPANSION_K} results (query expansion; default: "
                             f"{'on' if config.QUERY_EXPANSION else 'off'}, IR_QUERY_EXPANSION)")
    parser.add_argument("--unlike", nargs="+", default=[], metavar="FILE",
                        help="less like these: push the query away from these image files (search.feedback); "
                             "those in the collection are left out of the results")
    parser.add_argument("--folder", help="only images in this folder of the collection (and its subfolders)")
    parser.add_argument("--after", help="only images taken (EXIF, else file date) on or after YYYY-MM-DD")
    parser.add_argument("--before", help="only images taken on or before YYYY-MM-DD")
    parser.add_argument("--camera", help="only images whose camera make or model contains this (any case)")
    parser.add_argument("--out", help="write a PNG: the query image(s), then the results with their scores")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the time of each step")
    args = parser.parse_args(argv)
    setup_logging()
    default_metric = config.DEFAULT_METRIC if args.mode == config.DEFAULT_MODE else None
    metric = check_metric(args.mode, args.metric or default_metric)
    for query in args.queries + args.unlike:
        if os.path.isdir(query):
            raise UsageError(f"query {query} is a folder: give image files")
        if not os.path.isfile(query):
            raise UsageError(f"query image {query} does not exist")
    try:
        where = Filter(folder=args.folder, after=args.after, before=args.before, camera=args.camera)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    conn = connect(args.db)
    results = calculate_similarities(args.queries, conn.cursor(), args.mode, metric, args.top_k, args.verbose,
                                     exclude_query=not args.include_query, any_orientation=args.any_orientation,
                                     expand=args.expand, unlike=args.unlike, where=where)
    if not results and not where.empty:
        raise UsageError("no image passes the filters (--folder, --after, --before, --camera)")
    if not results:
        raise UsageError(f"no other image in {args.db} has features to compare with "
                         f"(see `python main.py --db {args.db}`)")
    for rank, (path, score) in enumerate(results, 1):
        print(f"{rank:3d}  {score:.4f}  {path}")
    if args.out:
        save_result_grid([(args.queries, results)], args.out, title=f"{args.mode} / {metric}")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    run(main)
