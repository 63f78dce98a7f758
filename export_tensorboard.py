"""Export the collection's features for TensorBoard's Embedding Projector.

    python export_tensorboard.py --db photos.db --logdir runs/photos [--mode embeddings|rgb]
    tensorboard --logdir runs/photos      # then open the PROJECTOR tab

viz.projector writes the files; this is its command line.
"""
import argparse

import config
from cli import run, setup_logging
from search.modes import MODES
from viz.projector import DEFAULT_LIMIT, SAMPLINGS, export


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py + main.py (default: %(default)s)")
    parser.add_argument("--logdir", required=True, help="folder to write (give it to `tensorboard --logdir`)")
    parser.add_argument("--mode", default="embeddings", choices=MODES,
                        help="features to export; rgb is exported square-rooted, hashes as 0/1 bits")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="most points to export (default: %(default)s)")
    parser.add_argument("--sample", default="random", choices=SAMPLINGS, help="which points when capped")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sample")
    parser.add_argument("--no-sprite", action="store_true", help="no thumbnails (faster for huge exports)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    result = export(args.db, args.logdir, args.mode, args.limit, args.sample, args.seed, not args.no_sprite,
                    progress=not args.no_progress)
    sprite = f", sprite tiles {result.tile} px" if result.sprite_path else ""
    print(f"exported {result.exported} of {result.total} images ({result.mode}, {result.dim} dims{sprite}) "
          f"to {result.logdir}: run `tensorboard --logdir {result.logdir}`")


if __name__ == "__main__":
    run(main)
