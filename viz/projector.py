"""Files for TensorBoard's Embedding Projector: tensor, metadata, sprite and config.

Writes, per mode, the tensor (raw float32), <mode>_metadata.tsv (path, file name, folder,
label = parent folder), a sprite of thumbnails and projector_config.pbtxt (made with
TensorBoard's own ProjectorConfig proto). Exporting another mode into the same logdir adds
it to the config, so the projector offers both. The projector slows down past some ten
thousand points and its sprite is limited to 8192 x 8192 pixels, so large collections are
sampled (seeded) and the log says what was left out. Every file is written atomically.
"""
import logging
import os
from dataclasses import dataclass

import numpy as np

from config import InvalidInputError
from db import connect
from db.errors import NoFeaturesError
from fileio import atomic_write
from search import matrix_cache
from search.modes import get_mode
from viz.projection import SAMPLINGS, folder_labels, map_features, sample_rows
from viz.sprite import save_sprite, sprite_layout

log = logging.getLogger(__name__)

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
    with atomic_write(path, "wb") as fh:
        fh.write(data)


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
    # Imported here: tensorboard (and its protobuf) is heavy and only the projector export needs it.
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
    from google.protobuf import text_format  # heavy, see read_config

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
    get_mode(mode)  # ValueError listing the modes
    if sample not in SAMPLINGS:
        raise InvalidInputError(f"unknown sampling {sample!r}; valid: {', '.join(SAMPLINGS)}")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    conn = connect(db_path)
    try:
        loaded = matrix_cache.load(conn, mode)
    finally:
        conn.close()
    total = len(loaded.ids)
    if total == 0:
        raise NoFeaturesError(f"{db_path} has no extracted images: run `python main.py --db {db_path}` first")
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
