"""Drawing a 2-D collection map: points coloured by folder, names and thumbnails that never overlap.

Similar images sit on top of each other in a good map, so labels and thumbnails are placed
greedily: at their point if that spot is free, otherwise on a ring around it with a thin
leader line, otherwise not at all.
"""
from collections import Counter

import numpy as np

from viz.grid import picture, thumbnail

LEGEND_MAX = 10  # groups listed in a legend; more are named on the map itself
COLOURED_MAX = 60  # past this many groups only the largest 19 get a colour of their own
OTHER = (0.75, 0.75, 0.75)


def group_colours(labels):
    """{label: colour}, largest groups first."""
    import matplotlib  # heavy: only when a figure is drawn

    ordered = [name for name, _ in sorted(Counter(labels).items(), key=lambda kv: (-kv[1], kv[0]))]
    palette = list(matplotlib.colormaps["tab10" if len(ordered) <= 10 else "tab20"].colors)
    if len(ordered) > COLOURED_MAX:
        return {name: palette[i] if i < 19 else OTHER for i, name in enumerate(ordered)}
    return {name: palette[i % len(palette)] for i, name in enumerate(ordered)}


def spread_points(coords, count, seed=0):
    """Indices of up to ``count`` points spread over the map: one per occupied grid cell."""
    if len(coords) <= count:
        return np.arange(len(coords))
    side = int(np.ceil(np.sqrt(count * 1.5)))
    low, high = coords.min(axis=0), coords.max(axis=0)
    cell = np.floor((coords - low) / np.maximum(high - low, 1e-9) * (side - 1e-6)).astype(int)
    centre = low + (cell + 0.5) * (high - low) / side
    key = cell[:, 0] * side + cell[:, 1]
    order = np.lexsort((np.linalg.norm(coords - centre, axis=1), key))
    firsts = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    if len(firsts) > count:
        firsts = np.random.default_rng(seed).choice(firsts, size=count, replace=False)
    return np.sort(firsts)


def group_representatives(coords, labels):
    """For each group, largest first, the index of its point nearest the group's median."""
    labels = np.asarray(labels)
    chosen = []
    for name, _ in sorted(Counter(labels.tolist()).items(), key=lambda kv: (-kv[1], kv[0])):
        members = np.flatnonzero(labels == name)
        centre = np.median(coords[members], axis=0)
        chosen.append(members[np.argmin(np.linalg.norm(coords[members] - centre, axis=1))])
    return np.array(chosen, dtype=int)


class Placer:
    """Greedy non-overlapping boxes in display pixels, inside the axes."""

    def __init__(self, ax, margin=3):
        self.ax, self.margin, self.boxes = ax, margin, []
        self.bounds = ax.get_window_extent().extents

    def place(self, xy, w, h, rings=(0, 1.1, 2.2)):
        """Pixel offset (dx, dy) of a free w x h box near data point ``xy``, or None."""
        px, py = self.ax.transData.transform(xy)
        for radius in rings:
            steps = 1 if radius == 0 else 8 * int(np.ceil(radius))
            for k in range(steps):
                angle = 2 * np.pi * k / steps + np.pi / 2
                dx, dy = radius * w * np.cos(angle), radius * h * np.sin(angle)
                box = (px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2)
                if self._inside(box) and not any(self._overlaps(box, other) for other in self.boxes):
                    self.boxes.append(box)
                    return dx, dy
        return None

    def _inside(self, box):
        x0, y0, x1, y1 = self.bounds
        return box[0] >= x0 and box[1] >= y0 and box[2] <= x1 and box[3] <= y1

    def _overlaps(self, a, b):
        m = self.margin
        return not (a[2] + m <= b[0] or b[2] + m <= a[0] or a[3] + m <= b[1] or b[3] + m <= a[1])


def map_figure(cmap, thumbnails=False, n_thumbnails=60, thumb=48):
    """A matplotlib Figure of a ``viz.projection.CollectionMap``."""
    import matplotlib  # heavy: only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    colours = group_colours(cmap.labels)
    fig, ax = plt.subplots(figsize=(11, 8.5), dpi=100)
    size = max(2.0, min(30.0, 20000 / max(cmap.drawn, 1)))
    ax.scatter(cmap.coords[:, 0], cmap.coords[:, 1], s=size, c=[colours[g] for g in cmap.labels],
               alpha=0.85, linewidths=0, zorder=2)
    ax.margins(0.08)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#cccccc")
    shown = f"all {cmap.total:,} images" if cmap.drawn == cmap.total else \
        f"{cmap.drawn:,} of {cmap.total:,} images drawn (random sample, seed {cmap.seed})"
    ax.set_title(f"{cmap.method.upper()} map of the {cmap.mode} features: {shown}, coloured by folder", fontsize=11)
    if len(colours) <= LEGEND_MAX:
        for name, colour in colours.items():
            ax.scatter([], [], s=30, color=colour, label=name)
        ax.legend(title="folder", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    fig.tight_layout()
    placer = Placer(ax)
    line = dict(arrowstyle="-", color="#888888", lw=0.6, shrinkA=0, shrinkB=0)
    if thumbnails:
        candidates = list(spread_points(cmap.coords, n_thumbnails, cmap.seed))
        if len(colours) <= n_thumbnails:  # every group shows one of its pictures first
            reps = group_representatives(cmap.coords, cmap.labels)
            candidates = list(reps) + [i for i in candidates if i not in set(reps)]
        for i in candidates[:n_thumbnails]:
            offset = placer.place(cmap.coords[i], thumb + 6, thumb + 6)
            if offset is None:
                continue
            image = picture(cmap.paths[i], thumb) or thumbnail(cmap.paths[i], thumb)
            box = AnnotationBbox(OffsetImage(np.asarray(image), zoom=72 / fig.dpi), cmap.coords[i], xybox=offset,
                                 boxcoords="offset pixels", frameon=True, pad=0.2,
                                 bboxprops=dict(edgecolor=colours[cmap.labels[i]], linewidth=1.5),
                                 arrowprops=line if offset != (0, 0) else None, zorder=3)
            ax.add_artist(box)
    elif len(colours) > LEGEND_MAX:  # name each group where its points are, where there is room
        for i in group_representatives(cmap.coords, cmap.labels):
            name = cmap.labels[i]
            offset = placer.place(cmap.coords[i], 7 * len(name) + 8, 16)
            if offset is not None:
                ax.annotate(name, cmap.coords[i], xytext=offset, textcoords="offset pixels", fontsize=8,
                            ha="center", va="center", zorder=3,
                            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=colours[name], lw=1, alpha=0.9),
                            arrowprops=line if offset != (0, 0) else None)
    return fig
