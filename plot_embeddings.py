"""Draw the collection as a 2-D map (UMAP, PCA or t-SNE), coloured by folder.

    python plot_embeddings.py --db photos.db --out map.png --method umap --thumbnails

PCA needs nothing but numpy; UMAP comes from umap-learn, t-SNE from scikit-learn (which
umap-learn installs). Large collections are drawn from a seeded random sample; the title
and the printed line say how many points were drawn.
"""
import argparse

import config
from cli import run, setup_logging
from search.modes import MODES
from viz.projection import DEFAULT_LIMITS, LABELS, METHODS, plot_map


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py + main.py (default: %(default)s)")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--method", default="umap", choices=METHODS)
    parser.add_argument("--mode", default="embeddings", choices=MODES, help="which features to map")
    parser.add_argument("--label", default="folder", choices=LABELS,
                        help="colour by the parent folder or by the top-level folder")
    parser.add_argument("--thumbnails", action="store_true", help="draw thumbnails at points spread over the map")
    parser.add_argument("--limit", type=int, default=None,
                        help="most points to draw (default: " +
                             ", ".join(f"{m} {n:,}" for m, n in DEFAULT_LIMITS.items()) + ")")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of UMAP/t-SNE")
    args = parser.parse_args(argv)
    setup_logging()
    cmap = plot_map(args.db, args.out, args.method, args.mode, args.thumbnails, args.limit, args.seed, args.label)
    print(f"wrote {args.out}: {cmap.drawn:,} of {cmap.total:,} images drawn ({args.method}, {args.mode})")


if __name__ == "__main__":
    run(main)
