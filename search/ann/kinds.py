"""The two index kinds behind ``ann_cosine``, one interface: build from unit rows, save, load,
check against the matrix, and name candidate rows for a query (search.ann re-scores them exactly).

- ``ivf`` (the default, faiss): k-means cells (4 x sqrt(rows), at most rows / 16) over the unit
  rows, each row stored as 8-bit scalar-quantised codes (a quarter of float32); a query scans the
  ``IVF_PROBES`` cells whose centres are nearest and returns a few times top_k candidates for the
  exact re-ranking. Why:
  on bench/synthetic's clustered 500k vectors, Annoy stays below recall@10 0.95 at any setting
  that answers within 5 ms (0.916 in 3-4 ms), while this reaches 0.974 in 2-3 ms (make bench).
- ``annoy``: Spotify's random-projection forest (``ANNOY_TREES``, ``ANNOY_SEARCH_K``); its file
  is memory-mapped, so query processes share it. ``IR_ANN_INDEX=annoy`` keeps it.

Both are built with a fixed seed (``ANN_SEED``), so a build is reproducible.
"""
from __future__ import annotations

import logging
import math

import numpy as np

import config

IVF_RERANK = 4  # candidates per wanted result that the IVF hands to the exact re-ranking
IVF_MIN_ROWS_PER_CELL = 16  # below this k-means centres are poorly placed (faiss wants 39)
IVF_TRAIN_ROWS_PER_CELL = 16  # k-means trains on this many sampled rows per cell, not on all
IVF_TRAIN_ITERATIONS = 10  # k-means rounds (faiss' default: 25); with 10 a 500k build takes ~50 s
ADD_CHUNK = 65_536  # rows assigned to cells per step (bounds the temporary distance matrix)


def import_faiss():
    """faiss, imported quietly: its loader logs, at INFO, a "could not load" line for every
    SIMD build the wheel does not ship (this one picks AVX2/AVX-512 code at run time instead),
    which reads like an error in main.py's log."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss  # heavy, and only ann_cosine and the duplicate finder need it

    return faiss


def ivf_cells(rows: int) -> int:
    """4 x sqrt(rows) cells (faiss' guideline is 4-16 x sqrt), at least 16 rows each."""
    return max(1, min(int(round(4 * math.sqrt(rows))), rows // IVF_MIN_ROWS_PER_CELL))


class IvfIndex:
    """faiss IndexIVFScalarQuantizer (8-bit codes, inner product on unit rows)."""

    suffix = "ivf"
    dial = "probes"  # what trades speed for recall at query time

    def __init__(self, index, probes=None):
        self._index = index
        self.probes = probes or config.IVF_PROBES

    def tuned(self, probes) -> IvfIndex:
        """The same index, scanning ``probes`` cells per query."""
        return IvfIndex(self._index, probes)

    @staticmethod
    def settings(rows) -> dict:
        """What a build over ``rows`` rows depends on besides the rows (goes into the stamp)."""
        return {"cells": ivf_cells(rows)}

    @staticmethod
    def default_setting() -> int:
        return config.IVF_PROBES

    @classmethod
    def build(cls, unit, seed, progress=None) -> IvfIndex:
        faiss = import_faiss()

        rows, dim = unit.shape
        cells = ivf_cells(rows)
        quantiser = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantiser, dim, cells, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # cells <= rows / 16 already; 1 only silences faiss' warning
        index.cp.max_points_per_centroid = IVF_TRAIN_ROWS_PER_CELL
        sample = np.random.default_rng(seed).choice(rows, min(rows, cells * IVF_TRAIN_ROWS_PER_CELL), replace=False)
        index.train(np.ascontiguousarray(unit[np.sort(sample)], dtype=np.float32))
        for start in range(0, rows, ADD_CHUNK):
            index.add(np.ascontiguousarray(unit[start:start + ADD_CHUNK], dtype=np.float32))
            if progress is not None:
                progress(min(ADD_CHUNK, rows - start))
        index.make_direct_map()  # lets check() read a stored row back
        return cls(index)

    @classmethod
    def load(cls, path, dim) -> IvfIndex | None:
        faiss = import_faiss()

        try:
            index = faiss.read_index(path)
        except RuntimeError:  # faiss reports a damaged or truncated file this way
            return None
        if not isinstance(index, faiss.IndexIVFScalarQuantizer) or index.d != dim:
            return None
        return cls(index)

    def save(self, path) -> None:
        faiss = import_faiss()

        try:
            faiss.write_index(self._index, path)
        except RuntimeError as exc:  # faiss reports a failed write (full disk, read-only folder) this way
            raise OSError(f"cannot write {path}: {str(exc).rsplit(': ', 1)[-1]}") from exc

    @property
    def rows(self) -> int:
        return int(self._index.ntotal)

    def check(self, unit, rows) -> bool:
        """Are the stored codes of ``rows`` exactly what this index makes of those rows of ``unit``?
        (Compared as codes, decoded: the 8-bit ranges are trained on a sample, so a row outside
        it is clipped, and only the index's own encoding says what it should have stored.)"""
        if not len(rows):
            return True
        try:
            stored = np.stack([self._index.reconstruct(int(r)) for r in rows])
        except RuntimeError:
            return False
        expected = self._index.sa_decode(self._index.sa_encode(np.ascontiguousarray(unit[rows], dtype=np.float32)))
        # Not bit-equal: a row at a near-tie between two cells may be filed in the other one when
        # encoded in a different batch, and then decodes one 8-bit step apart; another row is far off.
        return bool(np.allclose(stored, expected, rtol=0, atol=0.01))

    def candidates(self, unit_query, k) -> np.ndarray:
        """Rows (best first by their 8-bit scores) to re-rank for the ``k`` best."""
        faiss = import_faiss()

        params = faiss.SearchParametersIVF(nprobe=min(self.probes, self._index.nlist))
        _, found = self._index.search(unit_query[None, :].astype(np.float32), max(IVF_RERANK * k, k + 30),
                                      params=params)
        return found[0][found[0] >= 0].astype(np.int64)


class AnnoyForest:
    """annoy.AnnoyIndex (angular) over the rows; its candidates are already its best k."""

    suffix = "annoy"
    dial = "search_k"

    def __init__(self, index, search_k=None):
        self._index = index
        self.search_k = search_k or config.ANNOY_SEARCH_K

    def tuned(self, search_k) -> AnnoyForest:
        """The same index, inspecting ``search_k`` items per query."""
        return AnnoyForest(self._index, search_k)

    @staticmethod
    def settings(rows) -> dict:
        return {"trees": config.ANNOY_TREES}

    @staticmethod
    def default_setting() -> int:
        return config.ANNOY_SEARCH_K

    @classmethod
    def build(cls, unit, seed, progress=None) -> AnnoyForest:
        from annoy import AnnoyIndex  # only ann_cosine needs it

        index = AnnoyIndex(unit.shape[1], "angular")
        index.set_seed(seed)
        for i, row in enumerate(unit):
            index.add_item(i, row)
            if progress is not None and (i + 1) % ADD_CHUNK == 0:
                progress(ADD_CHUNK)
        index.build(config.ANNOY_TREES, n_jobs=-1)
        if progress is not None:
            progress(len(unit) % ADD_CHUNK)
        return cls(index)

    @classmethod
    def load(cls, path, dim) -> AnnoyForest | None:
        from annoy import AnnoyIndex  # only ann_cosine needs it

        index = AnnoyIndex(dim, "angular")
        try:
            index.load(path)  # memory-mapped: query processes share the pages
        except OSError:
            return None
        return cls(index)

    def save(self, path) -> None:
        self._index.save(path)

    @property
    def rows(self) -> int:
        return int(self._index.get_n_items())

    def check(self, unit, rows) -> bool:
        return all(np.allclose(self._index.get_item_vector(int(r)), unit[r], atol=1e-6) for r in rows)

    def candidates(self, unit_query, k) -> np.ndarray:
        found = self._index.get_nns_by_vector(unit_query, k, search_k=self.search_k)
        return np.asarray(found, dtype=np.int64)


KINDS = {kind.suffix: kind for kind in (IvfIndex, AnnoyForest)}
