"""Sprite sheets: every point's thumbnail in one image, the way TensorBoard's projector wants it.

The projector reads thumbnails row by row from a single image of at most 8192 x 8192
pixels, so the tile size follows from the number of points.
"""
import logging
import math

from PIL import Image
from tqdm import tqdm

from config import InvalidInputError
from fileio import atomic_write
from viz.grid import thumbnail

log = logging.getLogger(__name__)

MAX_SPRITE_SIDE = 8192  # the projector's (WebGL texture) limit, in pixels
MAX_TILE = 64  # larger tiles only make the sprite heavier: the projector draws them small
MIN_TILE = 8  # below this a thumbnail shows nothing


class SpriteTooLargeError(InvalidInputError):
    """Too many points for thumbnails that are still visible in one sprite."""


def sprite_layout(n_points, max_side=MAX_SPRITE_SIDE, max_tile=MAX_TILE):
    """(tiles per row, tile side in pixels) of a square sprite holding ``n_points`` thumbnails."""
    if n_points < 1:
        raise InvalidInputError(f"n_points must be >= 1, got {n_points}")
    per_row = math.ceil(math.sqrt(n_points))
    tile = min(max_tile, max_side // per_row)
    if tile < MIN_TILE:
        most = (max_side // MIN_TILE) ** 2
        raise SpriteTooLargeError(f"{n_points} thumbnails would be {tile} px each in a {max_side} px sprite; "
                                  f"export at most {most} points (--limit) or skip the sprite")
    return per_row, tile


def save_sprite(paths, out_path, tile, per_row=None, progress=True, quality=90):
    """Write the sprite of ``paths`` (row-major, ``per_row`` tiles a row) as JPEG; returns its size.

    Tiles are square crops: the projector draws each point as its whole tile.
    JPEG because a full 8192 x 8192 sheet of photos is ~100 MB as PNG and ~10 MB as JPEG.
    Written through a temporary file so an interrupted export leaves no broken sprite.
    """
    per_row = per_row or math.ceil(math.sqrt(len(paths)))
    rows = math.ceil(len(paths) / per_row)
    sheet = Image.new("RGB", (per_row * tile, rows * tile), (255, 255, 255))
    for i, path in enumerate(tqdm(paths, desc="sprite", unit="img", disable=not progress)):
        sheet.paste(thumbnail(path, tile, cover=True), ((i % per_row) * tile, (i // per_row) * tile))
    with atomic_write(out_path, "wb") as fh:
        sheet.save(fh, format="JPEG", quality=quality)
    log.debug("sprite %s: %d tiles of %d px, %dx%d", out_path, len(paths), tile, sheet.width, sheet.height)
    return sheet.size
