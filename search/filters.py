"""Filters of a search: a folder (and its subfolders), a date range, a camera.

    search_images(conn, images, "embeddings", where=Filter(folder="trips/2021", after="2021-06-01"))

Why the facts are held in memory, per DB version: a filter must not cost a query of the whole
table per search (500k rows), and the rows it keeps must line up with the loaded matrix. Once
loaded, a folder is a range of the sorted paths (two bisections), a date range one comparison
over an array, a camera a lookup among the few distinct camera names; the search then ranks
only the rows kept (search.query). The date of an image is its EXIF date taken, else its file's
modification time; dates compare as the camera wrote them (no time zone).
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from datetime import date

import numpy as np

from config import InvalidInputError
from db.exif import row_facts
from db.meta import version

DAY = 86400


@dataclass(frozen=True)
class Filter:
    """folder: relative to the collection, '/' separated (its subfolders too); after / before:
    YYYY-MM-DD, both days included; camera: a part of the make or model, any case."""

    folder: str | None = None
    after: str | None = None
    before: str | None = None
    camera: str | None = None

    def __post_init__(self):
        for name in ("after", "before"):
            value = getattr(self, name)
            if value:
                try:
                    date.fromisoformat(value)
                except (TypeError, ValueError):
                    raise InvalidInputError(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None
        if self.folder:
            object.__setattr__(self, "folder", self.folder.replace("\\", "/").strip("/"))

    @property
    def empty(self) -> bool:
        return not (self.folder or self.after or self.before or self.camera)


class Facts:
    """The filterable facts of one loaded matrix's rows."""

    def __init__(self, conn, loaded):
        facts = row_facts(conn)
        ids = np.asarray(loaded.ids)
        position = np.searchsorted(ids, facts.ids)
        inside = position < len(ids)
        inside[inside] = ids[position[inside]] == np.asarray(facts.ids)[inside]
        rows = position[inside]  # matrix rows of the facts that the loaded matrix holds
        keep = np.flatnonzero(inside)
        self.count = len(ids)
        paths = [facts.paths[i] for i in keep]
        order = sorted(range(len(paths)), key=paths.__getitem__)
        self.sorted_paths = [paths[i] for i in order]
        self.sorted_rows = rows[np.asarray(order, dtype=np.int64)] if order else np.zeros(0, np.int64)
        taken = np.array([facts.taken[i] for i in keep], dtype="datetime64[s]").astype("int64").astype(np.float64)
        taken[np.array([facts.taken[i] is None for i in keep], dtype=bool)] = np.nan
        modified = np.array([facts.mtime_ns[i] for i in keep], dtype=np.float64) / 1e9
        self.seconds = np.full(self.count, np.nan)
        self.seconds[rows] = np.where(np.isnan(taken), modified, taken)
        names = {}
        self.camera_codes = np.full(self.count, -1, dtype=np.int32)
        self.camera_codes[rows] = [names.setdefault(facts.cameras[i], len(names)) if facts.cameras[i] else -1
                                   for i in keep]
        self.cameras = list(names)
        self.known = np.zeros(self.count, dtype=bool)
        self.known[rows] = True

    def rows(self, where: Filter) -> np.ndarray:
        """The sorted matrix rows that pass ``where``."""
        if where.folder:
            low = bisect.bisect_left(self.sorted_paths, where.folder + "/")
            high = bisect.bisect_left(self.sorted_paths, where.folder + "0")  # '0' follows '/'
            rows = np.sort(self.sorted_rows[low:high])
        else:
            rows = np.flatnonzero(self.known)
        if where.after or where.before:
            seconds = self.seconds[rows]
            keep = np.ones(len(rows), dtype=bool)
            if where.after:
                keep &= seconds >= _epoch(where.after)
            if where.before:
                keep &= seconds < _epoch(where.before) + DAY
            rows = rows[keep]
        if where.camera:
            wanted = where.camera.casefold()
            codes = [code for code, name in enumerate(self.cameras) if wanted in name.casefold()]
            rows = rows[np.isin(self.camera_codes[rows], codes)]
        return rows

    def seconds_of(self, rows) -> np.ndarray:
        return self.seconds[np.asarray(rows, dtype=np.int64)]


def _epoch(day: str) -> float:
    return float(np.datetime64(day, "s").astype("int64"))


_CACHE: dict = {}  # (id of a Loaded, DB version) -> Facts
_LOCK = threading.Lock()
KEPT = 8


def facts_of(conn, loaded) -> Facts:
    """The Facts of ``loaded``'s rows as the DB holds them now (loaded again after any write)."""
    key = (id(loaded), version(conn))
    with _LOCK:
        found = _CACHE.get(key)
    if found is None or found[0] is not loaded:
        found = (loaded, Facts(conn, loaded))
        with _LOCK:
            while len(_CACHE) >= KEPT:
                del _CACHE[next(iter(_CACHE))]
            _CACHE[key] = found
    return found[1]


def allowed_rows(conn, loaded, where: Filter | None) -> np.ndarray | None:
    """The matrix rows a search may return, or None for no filter."""
    if where is None or where.empty:
        return None
    return facts_of(conn, loaded).rows(where)
