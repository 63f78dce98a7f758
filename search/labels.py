"""Scores people can read: a label for a distance, from cut points measured per mode and metric.

Why a table of measured cut points: every mode and metric has its own scale (a cosine of
0.06, a Bhattacharyya of 0.3, 22 bits of a hash), and the same number means "edited copy" in
one and "unrelated" in another. The cuts below were measured by ``python -m bench.score_labels``
on the quality sets (bench/quality_sets.py: near-duplicate edits, same-class and different-class
pairs of the Tux Paint photos) on the distances the search returns (search-vector transform and
query expansion as configured by default); the rule is in that module's docstring. A distance
up to a cut gets its label; beyond the last, "unrelated". ann_cosine returns exact cosine
distances, so it uses cosine's cuts.
"""
from __future__ import annotations

import bisect

from search.modes import get_metric, get_mode

LABELS = ("same picture", "edited copy", "similar", "loosely related", "unrelated")
SIMILAR = LABELS.index("similar")

# (mode, metric) -> the largest distance of "same picture", "edited copy", "similar", "loosely related".
CUTS: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("embeddings", "cosine"): (0.1276, 0.1532, 0.9738, 1.0394),
    ("embeddings", "euclidean"): (0.5051, 0.5535, 1.3956, 1.4418),
    ("embeddings", "manhattan"): (9.8977, 10.7912, 24.4253, 27.0691),
    ("rgb", "bhattacharyya"): (0.1593, 0.2787, 0.3092, 0.5251),
    ("rgb", "cosine"): (0.0012, 0.0039, 0.0039, 0.0068),
    ("rgb", "euclidean"): (0.0569, 0.0964, 0.0964, 0.2573),
    ("rgb", "manhattan"): (0.1909, 0.3439, 0.3439, 0.7962),
    ("ahash", "hamming"): (1.0, 11.0, 11.0, 14.0),
    ("dhash", "hamming"): (4.0, 17.0, 17.0, 20.0),
    ("phash", "hamming"): (4.0, 20.0, 20.0, 20.0),
}
SHARES_OF = {"ann_cosine": "cosine"}  # metrics that return another metric's distances


def cuts_of(mode: str, metric: str | None = None) -> tuple[float, float, float, float]:
    """The four cut points of a mode and metric (None: the mode's default metric); ValueErrors list the choices."""
    spec = get_mode(mode)
    name = get_metric(spec, metric).name
    return CUTS[(spec.name, SHARES_OF.get(name, name))]


def label_index(distance: float, cuts) -> int:
    """0 for "same picture" ... 4 for "unrelated"."""
    return bisect.bisect_left(cuts, float(distance) - 1e-9)


def label_of(distance: float, mode: str, metric: str | None = None) -> str:
    return LABELS[label_index(distance, cuts_of(mode, metric))]
