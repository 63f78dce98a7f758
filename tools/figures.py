"""Regenerate the README pictures from the demo collection (`make figures`).

    python -m tools.figures --db demo_data/images.db --query demo_data/images/chelsea/original.jpg --out docs/figures

Writes demo_result.png (a result grid), mode_comparison.png, umap_map.png,
projector_sprite.png (the thumbnails TensorBoard's projector shows) and projector.png (a
headless-Chromium screenshot of the projector; skipped with a message without Chromium).
PNGs are reduced to 256 colours so the repository stays small.
"""
import argparse
import logging
import os
import tempfile

from PIL import Image

from cli import UsageError, run, setup_logging
from db import connect
from fileio import atomic_write
from search.query import calculate_similarities
from viz.compare import save_mode_comparison
from viz.grid import save_result_grid
from viz.projection import plot_map
from viz.projector import export
from viz.projector_shot import screenshot

log = logging.getLogger("figures")

SPRITE_PREVIEW_SIDE = 640  # pixels: the sprite shown in the README, downscaled


def shrink_png(path):
    """Re-save as a 256-colour PNG: a third of the bytes, and no visible change at README size."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    palette = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)  # dithered: no colour bands
    colours = small.getpalette()
    small.putpalette([255 if min(colours[i:i + 3]) >= 248 else c  # the page's near-white back to white
                      for i in range(0, len(colours), 3) for c in colours[i:i + 3]])
    with atomic_write(path, "wb") as fh:
        small.save(fh, format="PNG", optimize=True)
    return os.path.getsize(path)


def result_grid(db, query, out):
    conn = connect(db)
    try:
        results = calculate_similarities(query, conn, "embeddings", "cosine", top_k=8)
    finally:
        conn.close()
    return save_result_grid([([query], results)], out, title="embeddings / cosine: the query, then its top 8")


def sprite_preview(db, out):
    """The projector's sprite for the whole collection, downscaled for the README."""
    with tempfile.TemporaryDirectory() as logdir:
        exported = export(db, logdir, "embeddings", progress=False)
        with Image.open(exported.sprite_path) as sheet:
            scale = SPRITE_PREVIEW_SIDE / max(sheet.size)
            small = sheet.resize((round(sheet.width * scale), round(sheet.height * scale)), Image.LANCZOS)
        with atomic_write(out, "wb") as fh:
            small.save(fh, format="PNG")
    return out


def projector_picture(db, out):
    """A screenshot of TensorBoard's projector showing the demo collection (needs Chromium)."""
    with tempfile.TemporaryDirectory() as logdir:
        export(db, logdir, "embeddings", progress=False)
        return out if screenshot(logdir, out) else None


def make_all(db, query, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    made = {
        "demo_result.png": lambda p: result_grid(db, query, p),
        "mode_comparison.png": lambda p: save_mode_comparison(query, db, p, top_k=6),
        "umap_map.png": lambda p: plot_map(db, p, "umap", "embeddings", thumbnails=True),
        "projector_sprite.png": lambda p: sprite_preview(db, p),
        "projector.png": lambda p: projector_picture(db, p),
    }
    for name, make in made.items():
        path = os.path.join(out_dir, name)
        log.info("drawing %s", path)
        if make(path) is None:
            print(f"kept the old {path}")
            continue
        print(f"wrote {path} ({shrink_png(path) // 1024} KiB)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="demo_data/images.db")
    parser.add_argument("--query", default="demo_data/images/chelsea/original.jpg")
    parser.add_argument("--out", default="docs/figures")
    args = parser.parse_args(argv)
    setup_logging()
    if not os.path.isfile(args.query):
        raise UsageError(f"query image {args.query} does not exist: run `make demo` first")
    make_all(args.db, args.query, args.out)


if __name__ == "__main__":
    run(main)
