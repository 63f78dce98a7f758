"""The JSON API: health, search by uploaded photos, similar by id, files and thumbnails by id.

Every route takes ids, never paths: the path of a file always comes from the DB. Routes are
plain functions (FastAPI runs them in its thread pool), so a slow search never blocks the
thumbnails the page is loading meanwhile.
"""
from __future__ import annotations

import mimetypes
import os
import time
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from features.decode import ImageDecodeError
from features.exif import camera_name
from search.labels import LABELS, cuts_of
from webapp.collection import DEFAULT_MODE, DEFAULT_TOP_K, MAX_FILES, MAX_TOP_K, Collection, Upload
from webapp.errors import ApiError
from webapp.thumbnails import jpeg_of

router = APIRouter(prefix="/api")

# Formats every browser shows as they are; anything else (TIFF) is sent as a JPEG preview.
BROWSER_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/avif")
PREVIEW_SIDE = 2048
ERRORS = {code: {"description": text, "content": {"application/json": {"example": {"error": text}}}}
          for code, text in ((400, "bad input, e.g. not an image or an unknown mode"),
                             (404, "no image with this id"), (413, "upload over the byte or pixel limit"),
                             (422, "a malformed parameter, e.g. top_k not a number"),
                             (503, "the DB has no extracted features yet"))}

ImageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the image's id in the DB (from a result)")]
ModeQuery = Annotated[str, Query(description="embeddings, rgb, ahash, dhash or phash (see /api/health)")]
MetricQuery = Annotated[str | None, Query(description="a metric of the mode; default: the mode's own")]
TopKQuery = Annotated[int, Query(ge=1, le=MAX_TOP_K, description="how many results")]
FolderQuery = Annotated[str | None, Query(description="only images in this folder (relative, '/' separated) "
                                                    "or its subfolders")]
AfterQuery = Annotated[str | None, Query(description="only images taken (EXIF, else file date) on or after YYYY-MM-DD")]
BeforeQuery = Annotated[str | None, Query(description="only images taken on or before YYYY-MM-DD")]
CameraQuery = Annotated[str | None, Query(description="only images whose camera make or model contains this")]
SortQuery = Annotated[str | None, Query(description="similarity (default) or date: the top_k most similar, newest "
                                                  "first")]
LIKE = "ids marked + (more like this): the query becomes them and the query together"
UNLIKE = "ids marked − (less like this): the query is pushed away from them; they are left out of the results"
ExpandQuery = Annotated[bool | None, Query(description="embeddings: search again with the mean of the query and "
                                                       "its first results (query expansion); default: the server's")]


class Result(BaseModel):
    id: int = Field(description="DB id: pass it to /api/similar, /api/thumb, /api/image")
    path: str = Field(description="relative to the collection's folder")
    score: float = Field(description="a distance: smaller is more similar, 0 is identical")
    label: str = Field(description="the score in words: same picture, edited copy, similar, loosely related or "
                                   "unrelated (cut points measured per mode and metric: search/labels.py)")
    same_as_query: bool = Field(description="the same picture as the query: distance 0 or a byte-identical file")
    date: str | None = Field(description="EXIF date taken, else the file's modification time (ISO 8601)")
    thumbnail: str = Field(description="URL of a JPEG of the whole picture within 384x384 pixels")
    image: str = Field(description="URL of the full image")


class Results(BaseModel):
    results: list[Result] = Field(description="best first")
    mode: str
    metric: str
    top_k: int
    took_ms: float = Field(description="server time for the search")
    labels: list[str] = Field(description="the labels, best first")
    cuts: list[float] = Field(description="the largest distance of each label but the last, for this mode and metric")
    in_collection: list[str] = Field(description="collection files identical to the query (uploads: same bytes; "
                                                 "by id: other files with the query's bytes)")


class Health(BaseModel):
    images: int = Field(description="images with features, i.e. searchable")
    pending: int = Field(description="images not extracted yet")
    errors: int = Field(description="files that could not be used")
    model: str | None = Field(description="the embedding network the DB was made with")
    precision: str | None
    modes: list[str]
    metrics: dict[str, list[str]] = Field(description="the metrics of each mode, the default first")
    default_metrics: dict[str, str]
    default_mode: str


class SampleImage(BaseModel):
    id: int
    path: str
    thumbnail: str
    image: str


class Sample(BaseModel):
    images: list[SampleImage] = Field(description="in no particular order")


class ImageInfo(BaseModel):
    id: int
    path: str
    name: str = Field(description="the file's name")
    folder: str = Field(description="its folder, relative to the collection's; empty at the top")
    width: int | None
    height: int | None
    size: int = Field(description="bytes")
    modified: str | None = Field(description="the file's modification time, ISO 8601 UTC")
    taken: str | None = Field(description="EXIF date taken, ISO 8601 in the camera's local time")
    camera: str | None = Field(description="EXIF make and model")
    latitude: float | None
    longitude: float | None
    status: str
    thumbnail: str
    image: str


def collection(request: Request) -> Collection:
    return request.app.state.collection


@router.get("/health", response_model=Health, summary="What is in the collection",
            description="Counts of searchable, pending and failed images, the model, and the modes with "
                        "their metrics (the first is each mode's default).")
def health(request: Request) -> dict:
    return collection(request).health()


@router.post("/search", response_model=Results, responses=ERRORS, summary="Search by uploaded photos",
             description=f"Multipart form: one or more images in `files` (at most {MAX_FILES}, combined into one "
                         "query as calculate_similarities does), optional `mode`, `metric` and `top_k`; `expand` is a "
                         "query parameter, as on /similar. Uploads "
                         "are decoded in memory and never stored in the collection.")
def search(request: Request,
           files: Annotated[list[UploadFile], File(description="the query image(s)")],
           mode: Annotated[str, Form(description="search mode")] = DEFAULT_MODE,
           metric: Annotated[str | None, Form(description="default: the mode's own")] = None,
           top_k: Annotated[int, Form(ge=1, le=MAX_TOP_K, description="how many results")] = DEFAULT_TOP_K,
           expand: ExpandQuery = None,
           like: Annotated[list[int], Form(description=LIKE)] = [],  # noqa: B006 (FastAPI copies defaults)
           unlike: Annotated[list[int], Form(description=UNLIKE)] = [],  # noqa: B006
           folder: FolderQuery = None, after: AfterQuery = None, before: BeforeQuery = None,
           camera: CameraQuery = None, sort: SortQuery = None) -> dict:
    coll = collection(request)
    query = coll.check(mode, metric, top_k, expand, like, unlike,
                       {"folder": folder, "after": after, "before": before, "camera": camera}, sort)
    coll.check_upload_count(len(files))
    uploads = [Upload(_display_name(f.filename), f.file.read()) for f in files]
    digests, copies = set(), []
    if len(uploads) == 1:  # several uploads are one combined query: no single picture to be a copy of
        digest, copies = coll.copies_of(uploads[0].data)
        digests.add(digest)
    return _timed(coll, query, lambda: coll.search_uploads(uploads, query), frozenset(digests), copies)


@router.get("/similar/{image_id}", response_model=Results, responses=ERRORS, summary="More like this image",
            description="The images most similar to one of the collection (left out of its own results).")
def similar(request: Request, image_id: ImageId, mode: ModeQuery = DEFAULT_MODE, metric: MetricQuery = None,
            top_k: TopKQuery = DEFAULT_TOP_K, expand: ExpandQuery = None,
            like: Annotated[list[int], Query(description=LIKE)] = [],  # noqa: B006 (FastAPI copies defaults)
            unlike: Annotated[list[int], Query(description=UNLIKE)] = [],  # noqa: B006
            folder: FolderQuery = None, after: AfterQuery = None, before: BeforeQuery = None,
            camera: CameraQuery = None, sort: SortQuery = None) -> dict:
    coll = collection(request)
    query = coll.check(mode, metric, top_k, expand, like, unlike,
                       {"folder": folder, "after": after, "before": before, "camera": camera}, sort)
    row = coll.row(image_id)
    digests = frozenset([bytes(row.content_hash)]) if row.content_hash else frozenset()
    copies = coll.copies_of_row(row)
    return _timed(coll, query, lambda: coll.similar(image_id, query), digests, copies)


class Choice(BaseModel):
    name: str
    images: int


class FilterChoices(BaseModel):
    folders: list[Choice] = Field(description="folders with their images (subfolders included), most first")
    cameras: list[Choice] = Field(description="EXIF cameras (make and model), most images first")


@router.get("/filters", response_model=FilterChoices, responses=ERRORS, summary="Folders and cameras to filter by")
def filter_choices(request: Request) -> dict:
    return collection(request).filter_choices()


@router.get("/sample", response_model=Sample, responses=ERRORS, summary="Random images to start from",
            description="A fresh random choice of searchable images on every call (the page's start screen).")
def sample(request: Request, count: Annotated[int, Query(ge=1, le=100, description="how many")] = 12) -> dict:
    return {"images": collection(request).sample(count)}


@router.get("/images/{image_id}", response_model=ImageInfo, responses=ERRORS, summary="One image's details",
            description="Its name, folder, pixels, bytes, file date and EXIF facts (date taken, camera, position).")
def image_info(request: Request, image_id: ImageId) -> dict:
    coll = collection(request)
    row = coll.row(image_id)
    facts = coll.exif(row)
    folder, _, name = row.path.rpartition("/")
    modified = (datetime.fromtimestamp(row.mtime_ns / 1e9, timezone.utc).isoformat(timespec="seconds")
                if row.mtime_ns else None)
    return {"id": row.id, "path": row.path, "name": name, "folder": folder, "width": row.width, "height": row.height,
            "size": row.size, "modified": modified, "taken": facts.taken,
            "camera": camera_name(facts.make, facts.model),
            "latitude": facts.latitude, "longitude": facts.longitude, "status": row.status, **coll.urls(row)}


@router.get("/thumb/{image_id}", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
            response_class=Response, summary="A JPEG thumbnail: the whole picture within 384x384 pixels",
            description="Made on first request and cached in `<db>.thumbs/`; sent with an ETag.")
def thumbnail(request: Request, image_id: ImageId, v: Annotated[str | None, Query(
        description="the content key from a result's URL; makes the response cacheable for good")] = None) -> Response:
    coll = collection(request)
    row = coll.row(image_id)
    try:
        thumb = coll.thumbs.get(row, lambda: coll.file_of(row))
    except ImageDecodeError as exc:
        raise ApiError(404, f"image {image_id} has no thumbnail: {exc}") from None
    fresh = v == thumb.version  # an older format's URL is answered, but not cached for good
    headers = {"ETag": thumb.etag,
               "Cache-Control": "public, max-age=31536000, immutable" if fresh else "no-cache"}
    if request.headers.get("if-none-match") == thumb.etag:
        return Response(status_code=304, headers=headers)
    return Response(thumb.data, media_type="image/jpeg", headers=headers)


@router.get("/image/{image_id}", responses={**ERRORS, 200: {"content": {"image/*": {}}}},
            response_class=Response, summary="The full image",
            description="The original file (a JPEG preview for formats browsers do not show, such as TIFF).")
def image(request: Request, image_id: ImageId) -> Response:
    coll = collection(request)
    row = coll.row(image_id)
    source = coll.file_of(row)
    media_type = mimetypes.guess_type(source)[0]
    if media_type in BROWSER_TYPES:
        return FileResponse(source, media_type=media_type, headers={"Cache-Control": "no-cache"})
    side = min(PREVIEW_SIDE, min(row.width or PREVIEW_SIDE, row.height or PREVIEW_SIDE))
    try:
        data = jpeg_of(source, side, coll.thumbs.max_pixels)
    except ImageDecodeError as exc:
        raise ApiError(404, f"image {image_id} cannot be shown: {exc}") from None
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})


def _timed(coll: Collection, query, search, same_content: frozenset = frozenset(), copies=()) -> dict:
    start = time.perf_counter()
    hits = search()
    took = 1000 * (time.perf_counter() - start)
    return {"results": coll.results(hits, query, same_content), "mode": query.mode, "metric": query.metric,
            "top_k": query.top_k, "took_ms": round(took, 1), "labels": list(LABELS),
            "cuts": list(cuts_of(query.mode, query.metric)), "in_collection": list(copies)}


def _display_name(filename: str | None) -> str:
    """An upload's name for messages only (it is never used as a path)."""
    name = os.path.basename((filename or "").replace("\\", "/"))[:80]
    return name or "uploaded file"
