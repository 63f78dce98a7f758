"""Thumbnails made on first request and kept beside the DB in ``<db>.thumbs/``.

Why lazily: a collection of 500k photos needs thumbnails only for what someone looks at.
Why named after the file's content hash (or, before extraction, its path, size and mtime):
a rescan that edits a file gives it a new name, a moved file keeps its thumbnail, and the
name is a strong ETag. The name also carries the thumbnails' FORMAT ("fit384": the whole
picture within a 384x384 box), so thumbnails of an older format (shorter side 256, as wide as
the picture) are neither served from disk nor kept by browsers that cached the old URL. Files
are written atomically; when the disk is full or the folder read-only the thumbnail is served
from memory (a small LRU) and one warning is logged.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from PIL import Image

from db.lookup import StoredImage
from features.decode import decode, read_file
from fileio import atomic_write

log = logging.getLogger(__name__)

BOX = 384  # the whole picture within BOX x BOX: a crisp cell on a phone's 2x screen, a panorama stays small
FORMAT = f"fit{BOX}"  # in file names, ETags and URLs: a new format is never confused with an older one
QUALITY = 82
MEMORY_ITEMS = 512  # thumbnails kept in memory when they cannot be written to disk


class Thumbnail(NamedTuple):
    data: bytes
    etag: str
    version: str  # the ?v= of URLs that may be cached for good


def thumbnail_version(row: StoredImage) -> str:
    """What a thumbnail URL carries: the content key and the format."""
    return f"{thumbnail_key(row)[:16]}-{FORMAT}"


def thumbnail_key(row: StoredImage) -> str:
    """A name that changes whenever the file's content may have changed."""
    if row.content_hash:
        return bytes(row.content_hash).hex()
    what = f"{row.path}\0{row.size}\0{row.mtime_ns}".encode("utf-8", "surrogateescape")
    return "p" + hashlib.blake2b(what, digest_size=16).hexdigest()


def jpeg_of(source: str, side: int, max_pixels: int) -> bytes:
    """JPEG bytes of a photo: upright, flattened on white, shorter side ``side`` pixels
    (features.decode, so exactly what the search saw); ImageDecodeError if it cannot be read."""
    image = decode(read_file(source)[0], side, max_pixels)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def fitted_jpeg_of(source: str, box: int, max_pixels: int) -> bytes:
    """JPEG bytes of the whole photo within ``box`` x ``box`` pixels, its shape kept: decoded
    with its shorter side ``box`` (features.decode), then shrunk until its longer side fits."""
    image = decode(read_file(source)[0], box, max_pixels)
    image.thumbnail((box, box), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()


class ThumbnailCache:
    """Thumbnails of one collection: from disk, from memory, or made from the photo."""

    def __init__(self, folder: str, max_pixels: int, box: int = BOX):
        self.folder = folder
        self.max_pixels = max_pixels
        self.box = box
        self.format = f"fit{box}"
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = False

    def path_for(self, key: str) -> str:
        return os.path.join(self.folder, key[:2], f"{key}-{self.format}.jpg")

    def get(self, row: StoredImage, source: Callable[[], str]) -> Thumbnail:
        """The thumbnail of ``row``; ``source()`` gives its file, and is asked only when the
        thumbnail must be made (so cached ones show even while the photos' drive is away).
        ImageDecodeError if the file cannot be made into one."""
        key = thumbnail_key(row)
        etag = f'"{key}-{self.format}"'
        version = f"{key[:16]}-{self.format}"
        path = self.path_for(key)
        try:
            with open(path, "rb") as fh:
                return Thumbnail(fh.read(), etag, version)
        except OSError:
            pass
        with self._lock:
            kept = self._memory.get(key)
        if kept is not None:
            return Thumbnail(kept, etag, version)
        data = self.make(source())
        self._store(key, path, data)
        return Thumbnail(data, etag, version)

    def make(self, source: str) -> bytes:
        return fitted_jpeg_of(source, self.box, self.max_pixels)

    def _store(self, key: str, path: str, data: bytes) -> None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with atomic_write(path, fsync=False) as fh:  # a lost thumbnail is simply made again
                fh.write(data)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot write thumbnails to %s (%s): serving them from memory instead", self.folder, exc)
            with self._lock:
                self._memory[key] = data
                self._memory.move_to_end(key)
                while len(self._memory) > MEMORY_ITEMS:
                    self._memory.popitem(last=False)

