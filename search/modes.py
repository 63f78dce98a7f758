"""The mode table and the metric table: the one place that says what a mode is.

A *mode* is a kind of feature stored per image (a DB column); a *metric* is a distance
over that feature. Everything that needs to know which column a mode reads, how wide its
rows are, how a query image's feature is made, how several query images are combined, or
which metrics fit, reads these two tables instead of testing names.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from config import InvalidInputError
from features.hashes import majority_bits
from search import metrics
from search.query_features import embeddings_of, hashes_of, histograms_of


@dataclass(frozen=True)
class Metric:
    """A distance (smaller is closer) over every row of a loaded matrix, for one query row.

    ``distances(loaded, query)`` uses arrays prepared once per loaded matrix (unit rows,
    norms, square roots: ``loaded.prepare``). ``approximate`` metrics answer from an index
    and fall back to ``distances`` (their exact twin) when the index cannot answer.
    """

    name: str
    distances: Callable[[object, np.ndarray], np.ndarray]
    approximate: bool = False
    blurb: str = ""


def _cosine(loaded, query):
    unit = loaded.prepare("unit", metrics.unit_rows)
    return metrics.cosine_distance(unit, metrics.unit_rows(query[None, :].astype(np.float32))[0])


def _euclidean(loaded, query):
    norms = loaded.prepare("squared_norms", lambda m: np.einsum("ij,ij->i", m, m))
    return metrics.euclidean_distance(loaded.matrix, query.astype(np.float32), norms)


def _manhattan(loaded, query):
    return metrics.manhattan_distance(loaded.matrix, query.astype(np.float32))


def _bhattacharyya(loaded, query):
    return metrics.bhattacharyya_distance(loaded.prepare("sqrt", np.sqrt), query.astype(np.float32))


def _hamming(loaded, query):
    return metrics.hamming_distance(loaded.matrix, query)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("cosine", _cosine, blurb="1 - cosine similarity"),
    Metric("ann_cosine", _cosine, approximate=True,
           blurb="cosine through an index (IVF or Annoy): approximate choice, exact distances"),
    Metric("euclidean", _euclidean, blurb="straight-line distance"),
    Metric("manhattan", _manhattan, blurb="sum of absolute differences"),
    Metric("hamming", _hamming, blurb="bits that differ"),
    Metric("bhattacharyya", _bhattacharyya, blurb="sqrt(1 - sum sqrt(p q)) between histograms"),
)}


@dataclass(frozen=True)
class Mode:
    """One kind of stored feature.

    column: the DB blob column; dtype: of a loaded row; width(stamp): row length from the
    DB's settings stamp; unit_rows: rows are scaled to unit length when loaded (so cosine
    is a dot product); compute(images, stamp): the (n, width) feature rows of decoded
    query images, made as the extraction made them; combine: several query rows -> one; metrics: the valid metrics,
    the first being the default; orientable: a query can be searched in all 8
    orientations (search.orientations); transformed: searches compare search vectors made at
    load time (search.transform: the collection's mean taken out), and query rows get the same
    transform; expandable: searches may take a second round with the mean of the query and its
    first results (search.expansion); as_points: rows -> float32 points whose straight-line
    distance means what the default metric means (for maps and the projector); blurb: what
    it compares, for people.
    """

    name: str
    column: str
    dtype: str
    width: Callable[[dict], int]
    compute: Callable[[list, dict], np.ndarray]
    combine: Callable[[np.ndarray], np.ndarray]
    as_points: Callable[[np.ndarray], np.ndarray]
    metrics: tuple[str, ...]
    unit_rows: bool = False
    orientable: bool = False
    transformed: bool = False
    expandable: bool = False
    blurb: str = ""

    @property
    def default_metric(self) -> str:
        return self.metrics[0]

    @property
    def is_hash(self) -> bool:
        return self.dtype == "uint8"


def _mean_unit(rows):
    return metrics.unit_rows(rows.mean(axis=0, keepdims=True))[0]


def _hash_bytes(stamp):
    return -(-int(stamp["hash_size"]) ** 2 // 8)  # packed bits, rounded up to whole bytes as np.packbits does


def _hash_mode(name, blurb):
    return Mode(name, name, "uint8", _hash_bytes, hashes_of(name), lambda rows: majority_bits(rows)[0],
                lambda rows: np.unpackbits(rows, axis=1).astype(np.float32),  # 0/1 bits: squared distance = Hamming
                ("hamming",), orientable=True, blurb=blurb)


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("embeddings", "embedding", "float32", lambda s: int(s["embedding_dim"]), embeddings_of, _mean_unit,
         lambda rows: np.asarray(rows, dtype=np.float32),  # unit rows: straight-line distance ranks as cosine
         ("cosine", "ann_cosine", "euclidean", "manhattan"), unit_rows=True, transformed=True, expandable=True,
         blurb="content (CNN)"),
    Mode("rgb", "rgb", "float32", lambda s: int(s["rgb_dim"]), histograms_of, lambda rows: rows.mean(axis=0),
         lambda rows: np.sqrt(rows, dtype=np.float32),  # Hellinger: straight-line distance ranks as Bhattacharyya
         ("bhattacharyya", "cosine", "ann_cosine", "euclidean", "manhattan"), blurb="colour histogram"),
    _hash_mode("ahash", "average hash"),
    _hash_mode("dhash", "difference hash"),
    _hash_mode("phash", "perceptual hash"),
)}


def get_mode(name: str) -> Mode:
    """The Mode called ``name``, or a ValueError listing the valid ones."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unknown mode {name!r}; valid modes: {', '.join(MODES)}") from None


def get_metric(mode: str | Mode, metric: str | None = None) -> Metric:
    """The Metric ``metric`` (None: the mode's default), checked to fit ``mode``."""
    mode = mode if isinstance(mode, Mode) else get_mode(mode)
    if metric is None:
        return METRICS[mode.default_metric]
    if metric not in METRICS:
        raise InvalidInputError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    if metric not in mode.metrics:
        raise InvalidInputError(f"metric {metric!r} does not fit mode {mode.name!r}; "
                         f"valid for {mode.name}: {', '.join(mode.metrics)}")
    return METRICS[metric]


def check_metric(mode: str, metric: str | None = None) -> str:
    """The metric's name after the checks of get_metric (None: the mode's default)."""
    return get_metric(mode, metric).name


def pairs() -> list[tuple[str, str]]:
    """Every valid (mode, metric) pair, in table order."""
    return [(mode.name, metric) for mode in MODES.values() for metric in mode.metrics]
