"""Result grid: one row per search, the query in the first column, then results in rank order.

Every tile has the same size whatever the image, so a grid reads at a glance: a framed
query, a gap, then rank, distance and file name above each result.
"""
import math
import os

from PIL import Image, ImageOps

from features.decode import open_image, to_rgb
from fileio import atomic_write

THUMB = 160  # pixels: every tile is the same size, whatever the image
CAPTION = 36  # pixels above each tile for two lines of text
GAP = 28  # pixels between the query column and the results
LABEL_WIDTH = 130  # pixels left of each row for its label: a bold first line, then details
QUERY_COLOUR = "#1f77b4"
SAME_FOLDER_COLOUR = "#2ca02c"


def picture(path, size=THUMB, cover=False):
    """The image upright, RGB, fitted inside size x size (aspect kept); None if unreadable.

    cover: fill the whole square instead, cropping the longer side (sprite tiles).
    """
    try:
        with open_image(path) as image:
            image.draft("RGB", (size, size))
            upright = to_rgb(ImageOps.exif_transpose(image))
            if cover:
                return ImageOps.fit(upright, (size, size), Image.LANCZOS)
            upright.thumbnail((size, size), Image.LANCZOS)
            return upright
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def thumbnail(path, size=THUMB, cover=False):
    """A size x size RGB tile: the picture centred on white (or covering it); grey if unreadable."""
    fitted = picture(path, size, cover)
    if fitted is None:
        return Image.new("RGB", (size, size), (200, 200, 200))
    tile = Image.new("RGB", (size, size), (255, 255, 255))
    tile.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return tile


def query_tile(paths, size=THUMB):
    """One tile for the query column: the image itself, or a mosaic of several combined queries."""
    if len(paths) == 1:
        return picture(paths[0], size) or thumbnail(paths[0], size)
    side = math.ceil(math.sqrt(len(paths)))
    cell = size // side
    tile = Image.new("RGB", (size, size), (255, 255, 255))
    for i, path in enumerate(paths):
        tile.paste(thumbnail(path, cell), ((i % side) * cell, (i // side) * cell))
    return tile


def short_name(path, limit=24):
    """'folder/file.jpg' in at most ``limit`` characters: the folder is shortened first."""
    folder, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
    if len(folder) + 1 + len(name) <= limit:
        return f"{folder}/{name}"
    room = limit - len(name) - 2  # characters left for the folder, after "…/"
    if room >= 3:
        return f"{folder[:room]}…/{name}"
    return "…" + name[-(limit - 1):]


def score_format(scores):
    """Hamming distances are whole bit counts (shown as such); other distances get three decimals."""
    return "{:.0f}" if scores and all(float(s).is_integer() for s in scores) else "{:.3f}"


def _same_folder(a, b):
    return os.path.dirname(os.path.realpath(a)) == os.path.dirname(os.path.realpath(b))


def result_grid_figure(rows, title=None, thumb=THUMB, row_labels=None, mark_same_folder=False, subtitle=None):
    """A matplotlib Figure of ``rows``: [(query_paths, [(path, score), ...]), ...].

    row_labels: one text per row, drawn left of it: first line bold, the rest small
    (e.g. "rgb\ncolour histogram\nbhattacharyya").
    mark_same_folder: frame results that sit in the query's folder in green, a quick
    visual check of a search on a collection whose folders are groups.
    """
    import matplotlib  # heavy: only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("rows is empty: give at least one (queries, results) pair")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"row_labels has {len(row_labels)} entries for {len(rows)} rows")
    cells = [_row_cells(queries, results, thumb, mark_same_folder) for queries, results in rows]
    cell_w = thumb + 12
    row_heights = [CAPTION + max(image.height for image, *_ in row) + 16 for row in cells]
    left = LABEL_WIDTH if row_labels else 8
    top = (34 if title else 8) + (20 if subtitle else 0)
    width = left + cell_w * max(len(row) for row in cells) + GAP + 8
    height = top + sum(row_heights) + 4
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    fig.patch.set_facecolor("white")
    y = top + CAPTION
    for r, row in enumerate(cells):
        if row_labels:
            middle = y + max(image.height for image, *_ in row) / 2
            head, _, rest = row_labels[r].partition("\n")
            fig.text(10 / width, 1 - (middle - 6) / height, head, ha="left", va="bottom", fontsize=11,
                     fontweight="bold")
            fig.text(10 / width, 1 - middle / height, rest, ha="left", va="top", fontsize=8.5, color="#444444",
                     linespacing=1.3)
        for c, (image, caption, colour, frame) in enumerate(row):
            x = left + cell_w * c + (GAP if c else 0)
            # Each picture at its own fitted size, centred in its column: the frame hugs it.
            ax = fig.add_axes([(x + (thumb - image.width) / 2) / width, 1 - (y + image.height) / height,
                               image.width / width, image.height / height])
            ax.imshow(image, interpolation="lanczos")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(frame or "#c8c8c8")
                spine.set_linewidth(3.5 if frame else 0.8)
            fig.text((x + thumb / 2) / width, 1 - (y - 4) / height, caption, ha="center", va="bottom",
                     fontsize=8, color=colour, linespacing=1.25)
        y += row_heights[r]
    if title:
        fig.text(0.5, 1 - 8 / height, title, ha="center", va="top", fontsize=12, fontweight="bold")
    if subtitle:
        fig.text(0.5, 1 - (top - 8) / height, subtitle, ha="center", va="bottom", fontsize=9, color="#444444")
    return fig


def _row_cells(queries, results, thumb, mark_same_folder):
    """[(picture, caption, text colour, frame colour or None)] for one row, query first."""
    queries = [os.fspath(q) for q in ([queries] if isinstance(queries, (str, os.PathLike)) else queries)]
    if not queries:
        raise ValueError("a row has no query image")
    limit = (thumb + 12) // 7  # characters that fit above one tile
    first = "query" if len(queries) == 1 else f"{len(queries)} queries combined"
    row = [(query_tile(queries, thumb), f"{first}\n{short_name(queries[0], limit)}", QUERY_COLOUR, QUERY_COLOUR)]
    fmt = score_format([score for _, score in results])
    for rank, (path, score) in enumerate(results, 1):
        same = mark_same_folder and _same_folder(path, queries[0])
        colour = SAME_FOLDER_COLOUR if same else "black"
        row.append((picture(path, thumb) or thumbnail(path, thumb),
                    f"#{rank}   {fmt.format(score)}\n{short_name(path, limit)}", colour, colour if same else None))
    return row


def save_figure(fig, out_path):
    """Save as PNG through a temporary file, so a crash never leaves half a picture."""
    import matplotlib.pyplot as plt  # heavy: only when a figure is drawn

    out_path = os.fspath(out_path)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    try:
        with atomic_write(out_path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=fig.dpi, facecolor="white")
    finally:
        plt.close(fig)
    return out_path


def save_result_grid(rows, out_path, title=None, **options):
    """rows: [(query_paths, [(path, score), ...]), ...]; writes a PNG at ``out_path``.

    Options are those of ``result_grid_figure`` (thumb, row_labels, mark_same_folder, subtitle).
    """
    return save_figure(result_grid_figure(rows, title=title, **options), out_path)
