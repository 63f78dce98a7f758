"""The collection behind the web app: one DB, searched through the search API, kept warm.

Why a connection per thread: sqlite3 connections belong to the thread that made them, and
the server answers from a pool of threads. In WAL mode every statement reads a consistent
snapshot, so the server keeps answering while ``main.py`` extracts into the same DB; the
search reloads a matrix only when the DB's version changed (search.matrix_cache).

Why every search runs on one dedicated thread: a search already uses every core (BLAS, the
network's threads), so two at once only split them; two threads loading a new matrix
version at once would hold it twice in memory; and the network's thread pools (OpenMP,
ONNX Runtime) are made per calling thread, so one caller keeps one warm pool. Decoding
uploads and serving thumbnails run in parallel on FastAPI's threads.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from PIL import Image

import config
from config import InvalidInputError
from db import DatabaseError, NoFeaturesError, SettingsMismatchError, connect
from db.exif import dates_of, row_facts
from db.images import ERROR, OK, PENDING, count_by_status
from db.lookup import StoredImage, first_ok_id, image_by_id, images_by_ids, images_with_content_hash
from db.meta import dataset_root, features_stamp, version
from features.decode import content_hash
from features.exif import NO_EXIF, Exif, exif_of
from search import matrix_cache
from search.filters import Filter
from search.labels import LABELS, cuts_of, label_index
from search.modes import MODES, check_metric, get_mode
from search.query import (
    Hit,
    QueryImageError,
    QueryTooLargeError,
    UnknownImageError,
    decode_query_bytes,
    search_ids,
    search_images,
)
from webapp.errors import ApiError
from webapp.memory import DECODE_SLOTS
from webapp.thumbnails import ThumbnailCache, thumbnail_version

log = logging.getLogger(__name__)

DEFAULT_MODE = "embeddings"
DEFAULT_TOP_K = 20
MAX_TOP_K = 1000  # a page of results; a whole 500k collection as JSON helps nobody
MAX_FILES = 32  # query images combined into one search
MAX_FEEDBACK = 200  # ids marked + or − in one search
SORTS = ("similarity", "date")
MAX_CHOICES = 500  # folders and cameras offered to the page


@dataclass(frozen=True)
class Query:
    """A checked search request: the mode, its metric (the default filled in), top_k, and query
    expansion (None: the mode's default, search.query)."""

    mode: str
    metric: str
    top_k: int
    expand: bool | None = None
    like: tuple[int, ...] = ()  # ids marked + (more like these), with the query
    unlike: tuple[int, ...] = ()  # ids marked − (less like these), left out of the results
    where: Filter | None = None  # folder, dates, camera
    sort: str = "similarity"  # or "date": the top_k most similar, newest first


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


class Collection:
    """Everything the routes ask of the DB: counts, rows by id, searches, files, thumbnails."""

    def __init__(self, db_path: str | os.PathLike, thumbs_dir: str | None = None):
        self.db_path = os.fspath(db_path)
        connect(self.db_path).close()  # a missing or foreign DB fails here, with its one-line message
        self._local = threading.local()
        self._searcher = ThreadPoolExecutor(1, thread_name_prefix="search")
        self.thumbs = ThumbnailCache(thumbs_dir or self.db_path + ".thumbs", config.MAX_IMAGE_PIXELS)
        self._choices = None  # (DB version, filter_choices())

    def private_paths(self) -> list[tuple[str, str]]:
        """(absolute path, what an error body shows instead), longest first."""
        try:
            root = dataset_root(self.conn()) or ""
        except (DatabaseError, sqlite3.Error):  # the DB is what failed: its own paths are still hidden
            root = ""
        named = [(os.path.abspath(self.db_path), os.path.basename(self.db_path)),
                 (os.path.realpath(self.db_path), os.path.basename(self.db_path)),
                 (os.path.dirname(os.path.abspath(self.db_path)), "the DB's folder"),
                 (root, "the collection folder")]
        return sorted({(path, shown) for path, shown in named if len(path) > 1}, key=lambda p: -len(p[0]))

    def conn(self):
        """This thread's connection (made on first use, kept for the thread's life)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path)
        return conn

    # --- what is in it ------------------------------------------------------------------

    def health(self) -> dict:
        conn = self.conn()
        counts = count_by_status(conn)
        stamp = features_stamp(conn) or {}
        return {
            "images": counts.get(OK, 0),
            "pending": counts.get(PENDING, 0),
            "errors": counts.get(ERROR, 0),
            "model": stamp.get("embedding_model"),
            "precision": stamp.get("embedding_precision"),
            "modes": list(MODES),
            "metrics": {name: list(mode.metrics) for name, mode in MODES.items()},
            "default_metrics": {name: mode.default_metric for name, mode in MODES.items()},
            "default_mode": DEFAULT_MODE,
        }

    def row(self, image_id: int) -> StoredImage:
        found = image_by_id(self.conn(), image_id)
        if found is None:
            raise ApiError(404, f"no image with id {image_id} in this collection")
        return found

    def file_of(self, row: StoredImage) -> str:
        """The absolute path of a row's file, which must lie inside the collection's folder."""
        root = os.path.realpath(dataset_root(self.conn()) or "")
        path = os.path.realpath(os.path.join(root, row.path))
        if not root or os.path.commonpath([root, path]) != root:
            raise ApiError(404, f"image {row.id} is not inside the collection folder")
        if not os.path.isfile(path):
            raise ApiError(404, f"the file of image {row.id} ({row.path}) is missing: is the collection's drive "
                                f"mounted? (if it was moved or deleted, run generator.py to rescan)")
        return path

    def exif(self, row: StoredImage) -> Exif:
        """A row's EXIF facts, read from its file's header (NO_EXIF when the file is away)."""
        try:
            return exif_of(self.file_of(row))
        except ApiError:
            return NO_EXIF

    # --- searching ----------------------------------------------------------------------

    @staticmethod
    def check(mode: str | None, metric: str | None, top_k: int | None, expand: bool | None = None,
              like=(), unlike=(), where: dict | None = None, sort: str | None = None) -> Query:
        """The request's mode, metric and top_k, or a 400 that lists the valid choices."""
        mode = mode or DEFAULT_MODE
        try:
            get_mode(mode)
            metric = check_metric(mode, metric or None)
        except InvalidInputError as exc:
            raise ApiError(400, str(exc)) from None
        top_k = DEFAULT_TOP_K if top_k is None else top_k
        if not 1 <= top_k <= MAX_TOP_K:
            raise ApiError(400, f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
        if expand and not get_mode(mode).expandable:
            raise ApiError(400, f"expand works with embeddings searches only, not {mode}")
        like, unlike = tuple(int(i) for i in like or ()), tuple(int(i) for i in unlike or ())
        if len(like) + len(unlike) > MAX_FEEDBACK:
            raise ApiError(400, f"at most {MAX_FEEDBACK} ids in like and unlike together, "
                                f"got {len(like) + len(unlike)}")
        if set(like) & set(unlike):
            raise ApiError(400, f"ids both in like and unlike: {', '.join(map(str, sorted(set(like) & set(unlike))))}")
        if (sort or "similarity") not in SORTS:
            raise ApiError(400, f"unknown sort {sort!r}; valid: {', '.join(SORTS)}")
        try:
            chosen = Filter(**{k: v for k, v in (where or {}).items() if v})
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return Query(mode, metric, top_k, expand, like, unlike, None if chosen.empty else chosen, sort or "similarity")

    @staticmethod
    def check_upload_count(count: int) -> None:
        """400 before any file is read, for none or more than MAX_FILES."""
        if not count:
            raise ApiError(400, "no file: send one or more images in the form field 'files'")
        if count > MAX_FILES:
            raise ApiError(400, f"too many files: at most {MAX_FILES} images per search, got {count}")

    def search_uploads(self, uploads: list[Upload], query: Query) -> list[Hit]:
        """Several uploaded photos combined into one query, as calculate_similarities does."""
        self.check_upload_count(len(uploads))
        images = []
        for upload in uploads:
            try:
                with DECODE_SLOTS:  # at most one full-resolution decode per core (webapp.memory)
                    images.append(decode_query_bytes(self.conn(), upload.data, upload.name))
            except QueryImageError as exc:
                raise ApiError(413 if isinstance(exc, QueryTooLargeError) else 400, str(exc)) from None
            except (NoFeaturesError, SettingsMismatchError) as exc:
                raise ApiError(503, str(exc)) from None
        self.check_marked(query)
        return self._search(lambda conn: search_images(conn, images, query.mode, query.metric, query.top_k,
                                                       query.expand, like=query.like, unlike=query.unlike,
                                                       where=query.where))

    def check_marked(self, query: Query) -> None:
        """404 naming the ids marked + or − that are not images of this collection."""
        wanted = set(query.like) | set(query.unlike)
        missing = sorted(wanted - set(images_by_ids(self.conn(), wanted))) if wanted else []
        if missing:
            raise ApiError(404, f"no image with id {', '.join(map(str, missing))} in this collection (like/unlike)")

    def similar(self, image_id: int, query: Query) -> list[Hit]:
        """The images most like one of the collection's own, itself left out."""
        row = self.row(image_id)
        if row.status != OK:
            raise ApiError(409, f"image {image_id} has no features ({row.status}"
                                f"{': ' + row.reason if row.reason else ''}); it cannot be searched by")
        self.check_marked(query)
        return self._search(lambda conn: search_ids(conn, [image_id], query.mode, query.metric, query.top_k,
                                          expand=query.expand, like=query.like, unlike=query.unlike,
                                          where=query.where))

    def _search(self, run) -> list[Hit]:
        """``run(connection)`` on the search thread; its errors as ApiErrors."""
        return self._searcher.submit(self._run_search, run).result()

    def _run_search(self, run) -> list[Hit]:
        try:
            return run(self.conn())
        except UnknownImageError as exc:  # its row is ok, but the loaded matrix is a batch behind
            raise ApiError(409, f"{exc} yet (main.py is extracting); try again in a moment") from None
        except (NoFeaturesError, SettingsMismatchError) as exc:
            raise ApiError(503, str(exc)) from None
        except InvalidInputError as exc:  # a bad query image or choice (QueryImageError is one); a bug stays a 500
            raise ApiError(400, str(exc)) from None
        except DatabaseError as exc:
            raise ApiError(503, str(exc)) from None

    def results(self, hits: list[Hit], query: Query, same_content: frozenset = frozenset()) -> list[dict]:
        """Hits as the API returns them: with their label, whether they equal the query (distance 0
        or a content hash in ``same_content``), and the URLs of their thumbnail and image.

        The thumbnail URL carries its content key, so browsers may keep it for good.
        """
        rows = images_by_ids(self.conn(), [hit.id for hit in hits])
        dates = dates_of(self.conn(), [hit.id for hit in hits])
        cuts = cuts_of(query.mode, query.metric)
        out = []
        for hit in hits:
            row = rows.get(hit.id)
            same = hit.distance <= 0 or (row is not None and row.content_hash is not None
                                         and bytes(row.content_hash) in same_content)
            taken, mtime_ns = dates.get(hit.id, (None, None))
            out.append({"id": hit.id, "path": hit.path, "score": round(float(hit.distance), 6),
                        "label": LABELS[0] if same else LABELS[label_index(hit.distance, cuts)],
                        "same_as_query": bool(same), "date": taken or _iso(mtime_ns), **self.urls(row, hit.id)})
        if query.sort == "date":  # newest first; the order of similarity breaks ties
            out = sorted(out, key=lambda hit: hit["date"] or "", reverse=True)
        return out

    def filter_choices(self) -> dict:
        """The folders (each with its images, subfolders included) and the cameras of the collection,
        most images first; computed once per DB version."""
        key = version(self.conn())
        if self._choices is None or self._choices[0] != key:
            facts = row_facts(self.conn())
            folders, cameras = Counter(), Counter(c for c in facts.cameras if c)
            for path in facts.paths:
                parts = path.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folders["/".join(parts[:depth])] += 1
            self._choices = (key, {"folders": [{"name": n, "images": c} for n, c in folders.most_common(MAX_CHOICES)],
                                   "cameras": [{"name": n, "images": c} for n, c in cameras.most_common(MAX_CHOICES)]})
        return self._choices[1]

    def copies_of_row(self, row: StoredImage) -> list[str]:
        """The paths of the collection's other files with a row's bytes."""
        if not row.content_hash:
            return []
        return [other.path for other in images_with_content_hash(self.conn(), row.content_hash) if other.id != row.id]

    def copies_of(self, data: bytes) -> tuple[bytes, list[str]]:
        """An upload's content hash and the paths of the collection's byte-identical files."""
        digest = content_hash(data)
        return digest, [row.path for row in images_with_content_hash(self.conn(), digest)]

    @staticmethod
    def urls(row: StoredImage | None, image_id: int | None = None) -> dict:
        """{"thumbnail", "image"} URLs of a row (or of an id whose row is gone)."""
        image_id = row.id if row is not None else image_id
        version = f"?v={thumbnail_version(row)}" if row is not None else ""
        return {"thumbnail": f"/api/thumb/{image_id}{version}", "image": f"/api/image/{image_id}"}

    def sample(self, count: int) -> list[dict]:
        """``count`` random searchable images (all of them in a small collection): somewhere to
        start walking without a photo at hand."""
        ids = self._searcher.submit(lambda: np.asarray(matrix_cache.load(self.conn(), DEFAULT_MODE).ids)).result()
        picked = np.random.default_rng().choice(ids, size=min(count, len(ids)), replace=False) if len(ids) else []
        picked = [int(i) for i in picked]
        rows = images_by_ids(self.conn(), picked)
        return [{"id": i, "path": rows[i].path, **self.urls(rows[i])} for i in picked if i in rows]

    def warm(self) -> float:
        """Load the default mode's matrix and the network now, so the first search is fast; seconds taken."""
        start = time.perf_counter()
        conn = self.conn()
        first = first_ok_id(conn)
        if first is None:
            log.warning("%s has no extracted images yet: searches will answer once main.py has run", self.db_path)
            return 0.0
        query = self.check(DEFAULT_MODE, None, 1)
        self._search(lambda c: search_ids(c, [first], query.mode, query.metric, 1))
        probe = Image.new("RGB", (256, 256), (128, 128, 128))
        self._search(lambda c: search_images(c, [probe], query.mode, query.metric, 1))
        return time.perf_counter() - start


def _iso(mtime_ns: int | None) -> str | None:
    """A file time as ISO 8601 UTC (seconds)."""
    if mtime_ns is None:
        return None
    return datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc).isoformat(timespec="seconds")
