"""Result grid: each row is a search, query image(s) first, then results in rank order."""
import os

from PIL import Image

THUMB = 160  # pixels: every cell is the same size, whatever the image


def thumbnail(path, size=THUMB):
    """A size x size RGB tile: the image fitted inside, on white; a grey tile if unreadable."""
    tile = Image.new("RGB", (size, size), (255, 255, 255))
    try:
        with Image.open(path) as image:
            from features.decode import to_rgb

            image.draft("RGB", (size, size))
            picture = to_rgb(image)
            picture.thumbnail((size, size))
    except OSError:
        return Image.new("RGB", (size, size), (200, 200, 200))
    tile.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return tile


def _label(path, limit=22):
    name = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


def save_result_grid(rows, out_path, title=None):
    """rows: [(query_paths, [(path, score), ...]), ...]; writes a PNG at ``out_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max(len(queries) + len(results) for queries, results in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.0 * n_cols, 2.35 * len(rows) + (0.4 if title else 0)),
                             squeeze=False)
    for r, (queries, results) in enumerate(rows):
        cells = [(q, "query", None) for q in queries] + [(p, f"#{i}  {s:.3f}", None) for i, (p, s) in enumerate(results, 1)]
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c >= len(cells):
                continue
            path, caption, _ = cells[c]
            ax.imshow(thumbnail(path))
            colour = "tab:blue" if caption == "query" else "black"
            ax.set_title(f"{caption}\n{_label(path)}", fontsize=8, color=colour)
            if caption == "query":
                for spine in ax.spines.values():
                    spine.set_visible(True)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
