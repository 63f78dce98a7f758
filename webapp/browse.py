"""Looking at the whole collection: a 2-D map (and the cache webapp.review's duplicate groups use).

Both are computed once per DB version and kept in memory: the page asks for them again
each time someone opens the view, and the answer only changes when the DB does. They run on
a background thread: a request waits up to WAIT_SECONDS, then answers 202 ("still
computing") and the page asks again, so minutes of work at 500k images (the duplicate
finder, a first UMAP) never hang a request or pile up copies of the same job.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillRunning
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from config import InvalidInputError
from db.lookup import images_by_ids
from db.meta import version
from search import matrix_cache
from search.modes import get_mode
from viz.projection import map_of_loaded
from webapp.api import ERRORS, collection
from webapp.errors import ApiError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")
MAP_METHODS = ("pca", "umap")
MAP_LIMIT = 5000  # points a browser scatter draws smoothly
MAX_GROUPS = 5000  # duplicate groups per answer
WAIT_SECONDS = 10.0  # a request waits this long for a job before answering 202
KEPT_ANSWERS = 16
_JOBS: dict[tuple, Future] = {}  # (db file, db version, what) -> the job computing (or holding) the answer
_PROGRESS: dict[tuple, int] = {}  # the same keys -> the percentage a running job last reported
_LOCK = threading.Lock()
_WORKER = ThreadPoolExecutor(1, thread_name_prefix="browse")  # one at a time: each uses every core
PENDING = {202: {"description": "still computing: ask again in a moment",
                 "content": {"application/json": {"example": {"pending": True, "message": "finding duplicates"}}}}}


class MapPoint(BaseModel):
    id: int
    x: float
    y: float
    label: str = Field(description="the image's folder")
    path: str
    thumbnail: str


class CollectionMapOut(BaseModel):
    points: list[MapPoint]
    total: int = Field(description="images in the collection; points is a seeded random sample when smaller")
    method: str
    mode: str


def cached(request: Request, what: tuple, make, doing: str, reports: bool = False):
    """``make(collection)`` for the DB's current version: from memory, or computed on the
    background thread; a JSONResponse 202 if it takes longer than WAIT_SECONDS. ``reports``:
    ``make(collection, progress)`` calls progress(percent), and the 202 carries the last one."""
    coll = collection(request)
    key = (coll.db_path, version(coll.conn()), what)
    with _LOCK:
        job = _JOBS.get(key)
        if job is None:
            for old in [k for k in _JOBS if k[0] == coll.db_path and k[2] == what]:
                del _JOBS[old]  # an older version of the same answer
                _PROGRESS.pop(old, None)
            while len(_JOBS) >= KEPT_ANSWERS:
                del _JOBS[next(iter(_JOBS))]
            if reports:  # make(coll, progress): progress(percent) as it goes
                job = _JOBS[key] = _WORKER.submit(make, coll, lambda percent: _PROGRESS.__setitem__(key, percent))
            else:
                job = _JOBS[key] = _WORKER.submit(make, coll)
    try:
        return job.result(timeout=WAIT_SECONDS)
    except StillRunning:
        answer = {"pending": True, "message": f"{doing}; ask again in a moment"}
        if key in _PROGRESS:
            answer["percent"] = _PROGRESS[key]
        return JSONResponse(answer, status_code=202)
    except Exception:
        with _LOCK:
            if _JOBS.get(key) is job:
                del _JOBS[key]  # a failure is not kept: the next request tries again
        raise


@router.get("/map", response_model=CollectionMapOut, responses={**ERRORS, **PENDING},
            summary="A 2-D map of the collection",
            description="PCA (instant) or UMAP (slow the first time) of a mode's features, as plot_embeddings "
                        f"draws it; at most {MAP_LIMIT} points, a seeded random sample of larger collections.")
def collection_map(request: Request,
                   mode: Annotated[str, Query(description="the features to project")] = "embeddings",
                   method: Annotated[str, Query(description="pca or umap")] = "pca",
                   limit: Annotated[int, Query(ge=2, le=MAP_LIMIT, description="points at most")] = 2000) -> dict:
    try:
        get_mode(mode)
    except InvalidInputError as exc:
        raise ApiError(400, str(exc)) from None
    if method not in MAP_METHODS:
        raise ApiError(400, f"unknown method {method!r}; valid methods: {', '.join(MAP_METHODS)}")

    def make(coll, progress):
        loaded = matrix_cache.load(coll.conn(), mode)
        if len(loaded.ids) < 2:
            raise ApiError(503, "the collection has fewer than 2 extracted images: run main.py first")
        projected = map_of_loaded(loaded, method, limit, seed=0, progress=progress)
        ids = [int(i) for i in np.asarray(loaded.ids)[projected.rows]]
        rows = images_by_ids(coll.conn(), ids)
        coords = _normalised(projected.coords)
        return {"points": [{"id": i, "x": round(float(x), 5), "y": round(float(y), 5), "label": label,
                            "path": loaded.paths[int(r)], "thumbnail": coll.urls(rows.get(i), i)["thumbnail"]}
                           for i, (x, y), label, r in zip(ids, coords, projected.labels, projected.rows)],
                "total": projected.total, "method": method, "mode": mode}

    return cached(request, ("map", mode, method, limit), make, f"projecting {mode} with {method.upper()}",
                  reports=True)


def _normalised(coords: np.ndarray) -> np.ndarray:
    """Coordinates scaled into [0, 1] on both axes (the page draws them as they are)."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    return (coords - low) / np.where(high > low, high - low, 1.0)


