"""A contact sheet of duplicate groups: one row per group, the keeper framed, then its copies.

Drawn with PIL alone (no matplotlib: thumbnails and a few captions are all it needs), in
pages of GROUPS_PER_PAGE rows so a sheet of thousands of groups stays viewable:
``sheet.png``, ``sheet-2.png``, ...
"""
from __future__ import annotations

import os

from PIL import Image, ImageDraw, ImageOps

from features.decode import open_image, to_rgb
from fileio import write_with

TILE = 128  # thumbnail side
CAPTION = 40  # room under a tile for three short lines: distance, folder, file name
GAP = 8
GROUPS_PER_PAGE = 50
COPIES_PER_ROW = 8
KEEPER_FRAME = (30, 160, 60)
BACKGROUND = (255, 255, 255)
TEXT = (30, 30, 30)


def page_paths(out: str, pages: int) -> list[str]:
    """``out`` for the first page, ``<stem>-2<ext>``, ``<stem>-3<ext>``... for the others."""
    stem, ext = os.path.splitext(out)
    return [out] + [f"{stem}-{k}{ext or '.png'}" for k in range(2, pages + 1)]


def save_duplicate_sheet(groups, out: str, per_page: int = GROUPS_PER_PAGE) -> list[str]:
    """Draw ``groups`` (DuplicateGroup: members[0] is the keeper) and return the files written."""
    pages = [groups[k:k + per_page] for k in range(0, len(groups), per_page)] or [[]]
    written = []
    for number, (path, page) in enumerate(zip(page_paths(out, len(pages)), pages), 1):
        sheet = draw_page(page, first_number=(number - 1) * per_page + 1, page=(number, len(pages)))
        write_with(path, lambda tmp, im=sheet: im.save(tmp, format="PNG"))
        written.append(path)
    return written


def draw_page(groups, first_number: int = 1, page: tuple[int, int] = (1, 1)) -> Image.Image:
    row_height = TILE + CAPTION + GAP
    width = GAP + (COPIES_PER_ROW + 1) * (TILE + GAP) + 60
    header = 24
    sheet = Image.new("RGB", (width, header + max(1, len(groups)) * row_height + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 6), f"duplicate groups, page {page[0]} of {page[1]} (green frame: the keeper)", fill=TEXT)
    if not groups:
        draw.text((GAP, header + 10), "no duplicates found", fill=TEXT)
    for k, group in enumerate(groups):
        y = header + k * row_height
        draw.text((GAP, y + TILE // 2), f"{first_number + k}", fill=TEXT)
        shown = group.members[:COPIES_PER_ROW + 1]
        for j, member in enumerate(shown):
            x = 40 + j * (TILE + GAP)
            sheet.paste(_thumbnail(member.path), (x, y))
            if j == 0:
                draw.rectangle((x - 3, y - 3, x + TILE + 2, y + TILE + 2), outline=KEEPER_FRAME, width=4)
                label = f"keep ({group.kind})"
            else:
                label = f"d={member.distance:.3f}"
            draw.text((x, y + TILE + 3), label, fill=TEXT)
            folder, name = os.path.split(member.path)
            draw.text((x, y + TILE + 14), _short(os.path.basename(folder) + "/"), fill=TEXT)
            draw.text((x, y + TILE + 25), _short(name), fill=TEXT)
        if len(group.members) > len(shown):
            draw.text((40 + len(shown) * (TILE + GAP), y + TILE // 2), f"+{len(group.members) - len(shown)}", fill=TEXT)
    return sheet


def _thumbnail(path):
    """A TILE x TILE tile of the picture (letterboxed), or a grey tile saying it is unreadable."""
    tile = Image.new("RGB", (TILE, TILE), (235, 235, 235))
    try:
        with open_image(path) as image:
            image.draft("RGB", (TILE, TILE))
            picture = to_rgb(ImageOps.exif_transpose(image))  # transparency on white, as indexed
        picture.thumbnail((TILE, TILE))
        tile.paste(picture, ((TILE - picture.width) // 2, (TILE - picture.height) // 2))
    except (OSError, ValueError, Image.DecompressionBombError):
        ImageDraw.Draw(tile).text((8, TILE // 2 - 6), "unreadable", fill=TEXT)
    return tile


def _short(name, limit=20):
    return name if len(name) <= limit else name[:limit - 1] + "~"
