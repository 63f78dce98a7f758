"""Export the collection's features for TensorBoard's Embedding Projector.

    python export_tensorboard.py --db photos.db --logdir runs/photos [--mode embeddings|rgb]
    tensorboard --logdir runs/photos      # then open the PROJECTOR tab

Writes, per mode, the tensor (raw float32), metadata.tsv (path, file name, folder,
label = parent folder), a sprite of thumbnails and projector_config.pbtxt (made with TensorBoard's
own ProjectorConfig proto). Exporting another mode into the same logdir adds it to the
config, so the projector offers both. The projector slows down past some ten thousand
points and its sprite is limited to 8192 x 8192 pixels, so large collections are sampled
(seeded) and the log says what was left out.
"""
import argparse
import logging
import os
from dataclasses import dataclass

import numpy as np

import config
from search.metrics import MODES
from viz.projection import SAMPLINGS, folder_labels, map_features, sample_rows

log = logging.getLogger("export_tensorboard")

DEFAULT_LIMIT = 10_000  # points; at this size a sprite tile is still 64 px and the browser stays fluent
CONFIG_FILE = "projector_config.pbtxt"
METADATA_COLUMNS = ("path", "file", "folder", "label")  # the first one labels points on hover


@dataclass
class Export:
    """What was written: enough for a caller (or a test) to check it."""

    logdir: str
    mode: str
    exported: int
    total: int
    dim: int
    tensor_path: str
    metadata_path: str
    sprite_path: str
    tile: int


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def tensor_bytes(matrix):
    """(file suffix, bytes): raw float32, or TSV if the raw bytes happen to be valid UTF-8.

    The projector tries every tensor file as TSV text first and only falls back to binary
    on a UnicodeDecodeError, so binary that decodes as text must be written as text.
    """
    raw = np.ascontiguousarray(matrix, dtype="<f4").tobytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return ".bytes", raw
    lines = ("\t".join(f"{v:.7g}" for v in row) for row in matrix)
    return ".tsv", ("\n".join(lines) + "\n").encode()


def metadata_tsv(paths):
    """Header + one line per point; tabs and newlines in names become spaces (TSV has no quoting)."""
    def clean(text):
        return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")

    labels = folder_labels(paths, "folder")
    lines = ["\t".join(METADATA_COLUMNS)]
    for path, label in zip(paths, labels):
        folder, _, name = path.rpartition("/")
        lines.append("\t".join(clean(v) for v in (path, name, folder or ".", label)))
    return ("\n".join(lines) + "\n").encode("utf-8")


def read_config(logdir):
    """The logdir's ProjectorConfig, empty if there is none yet."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector import ProjectorConfig

    projector = ProjectorConfig()
    path = os.path.join(logdir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            text_format.Parse(fh.read(), projector)
    return projector


def write_config(logdir, mode, shape, tensor_file, metadata_file, sprite_file, tile):
    """Add (or replace) this mode's embedding in the logdir's projector config."""
    from google.protobuf import text_format

    projector = read_config(logdir)
    kept = [e for e in projector.embeddings if e.tensor_name != mode]
    del projector.embeddings[:]
    projector.embeddings.extend(kept)
    embedding = projector.embeddings.add()
    embedding.tensor_name = mode
    embedding.tensor_path = tensor_file
    embedding.tensor_shape.extend(shape)
    embedding.metadata_path = metadata_file
    if sprite_file:
        embedding.sprite.image_path = sprite_file
        embedding.sprite.single_image_dim.extend([tile, tile])
    _write_atomic(os.path.join(logdir, CONFIG_FILE), text_format.MessageToString(projector).encode())


def export(db_path, logdir, mode="embeddings", limit=DEFAULT_LIMIT, sample="random", seed=0, sprite=True,
           progress=True):
    """Write the projector files for ``mode`` into ``logdir``; returns an Export."""
    from db import connect
    from search import store
    from viz.sprite import save_sprite, sprite_layout

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if sample not in SAMPLINGS:
        raise ValueError(f"unknown sampling {sample!r}; valid: {', '.join(SAMPLINGS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    conn = connect(db_path)
    try:
        loaded = store.load(conn, mode)
    finally:
        conn.close()
    total = len(loaded.ids)
    if total == 0:
        raise ValueError(f"{db_path} has no extracted images: run `python main.py --db {db_path}` first")
    rows = sample_rows(total, limit, sample, seed)
    if len(rows) < total:
        log.warning("the collection has %d images; exporting %d of them (%s, seed %d) because the projector "
                    "slows down with more points and its sprite must fit 8192x8192 px; pass --limit to change",
                    total, len(rows), "random sample" if sample == "random" else "the first by id", seed)
    matrix = map_features(loaded, rows)
    paths = [loaded.paths[r] for r in rows]
    per_row, tile = sprite_layout(len(rows)) if sprite else (0, 0)
    os.makedirs(logdir, exist_ok=True)
    suffix, data = tensor_bytes(matrix)
    tensor_file, metadata_file = f"{mode}_tensor{suffix}", f"{mode}_metadata.tsv"
    sprite_file = f"{mode}_sprite.jpg" if sprite else ""
    _write_atomic(os.path.join(logdir, tensor_file), data)
    _write_atomic(os.path.join(logdir, metadata_file), metadata_tsv(paths))
    if sprite:
        save_sprite([loaded.absolute_path(r) for r in rows], os.path.join(logdir, sprite_file), tile, per_row,
                    progress=progress)
    write_config(logdir, mode, matrix.shape, tensor_file, metadata_file, sprite_file, tile)
    return Export(logdir, mode, len(rows), total, matrix.shape[1], os.path.join(logdir, tensor_file),
                  os.path.join(logdir, metadata_file), os.path.join(logdir, sprite_file) if sprite else "", tile)


def main(argv=None):
    from cli import setup_logging

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
    from cli import run

    run(main)
