"""Is one picture an edit of the other? Align their keypoints and see whether one lies inside the other.

A pair the embeddings call close is aligned (features.keypoints: ORB on a 341 x 256 grey copy;
OpenCV's RANSAC fit of one similarity transform: scale, turn, shift) and gets one of three verdicts:

- COPY: at least MIN_INLIERS matches agree on a transform that puts one picture (nearly) wholly
  inside the other (CONTAINED of its area) while covering at least COVERS of the other's: resized,
  re-compressed, cropped a little, brightened, greyscale, captioned, turned a little;
- APART: the transform is found but the pictures only overlap (burst frames, a panning camera), one
  is a small part of the other (a quarter of a photo), or it turns by more than MAX_TURN (upright
  search); or both pictures have RICH keypoints and none agree (different pictures);
- UNKNOWN: too few keypoints to tell (flat drawings, gradients, unreadable files) and tiny copies
  that do not disagree (duplicates.plain): the embeddings decide alone, as without alignment.

The constants were chosen on the copies set, the burst stand-ins and the look-alikes
(bench/quality_duplicates.py, bench/quality_kinds.py; numbers in docs/duplicates.md).
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import config
from db.keypoints import hashes_with_keypoints, stored_keypoints
from duplicates.plain import plainly_different
from features.decode import ImageDecodeError
from features.keypoints import FORMAT, Keypoints, Picture, from_bytes, of_file

log = logging.getLogger(__name__)

COPY, APART, UNKNOWN = 1, 0, -1
# Matches that must agree on one transform (10: twice the false copies among photos; 15: 1-3 % fewer copies).
MIN_INLIERS = 12
CONTAINED = 0.92  # share of one picture inside the other: a 5-degree turn keeps >= 0.95, burst frames 7 % apart 0.88
COVERS = 0.5  # share of the other it must cover: a crop to 80 % x 80 % covers 0.64, a quarter 0.25
RICH = 100  # keypoints on both sides with no agreement: different pictures, not "too few to tell"
MAX_TURN = 30.0  # degrees; a larger turn is a copy only with --any-orientation
# Both grey copies have one shorter side, so a copy's scale is near 1 (1.25 for a crop to 80 %, 2
# for a quarter); a fit beyond 4 squeezes its matches into a corner and says nothing.
MAX_SCALE = 4.0
RATIO = 0.8  # Lowe's ratio test on descriptor distances
REPROJECTION = 4.0  # pixels of the grey copy within which a match agrees with the transform
CACHED_PICTURES = 4096  # pictures whose keypoints stay in memory (about 7 KB each, 13 KB with a mirror's)
CACHED_VERDICTS = 1_000_000  # verdicts on pairs kept (about 150 bytes each)


class Aligner:
    """Verdicts on pairs of matrix rows, reading each picture once.

    ``path_of(row)``: the row's file. ``stored``: the keypoints main.py stored in the DB
    (KeypointStore; None: read every file). ``any_orientation``: mirrored copies (by the mirror's
    own keypoints, which are not stored: the files are read) and any turn count too. Pictures and
    verdicts are kept for the process (the web app's threshold slider and a benchmark's sweep
    re-run the finder), keyed by content hash (stored) or by file (path, size, mtime, ctime, inode);
    a verdict on a picture that could not be read is not kept. Close it
    (or use it in a with block): it holds a pool of one thread per core."""

    def __init__(self, path_of: Callable[[int], str], any_orientation: bool = False, workers: int | None = None,
                 stored: KeypointStore | None = None):
        self.path_of = path_of
        self.any_orientation = any_orientation
        self.stored = None if any_orientation else stored
        self._pool = ThreadPoolExecutor(workers or os.cpu_count() or 1)  # OpenCV and Pillow release the GIL
        self._ids: dict[int, tuple] = {}
        self.stats = {"pictures": 0, "stored": 0, "unreadable": 0, "pairs": 0, "copy": 0, "apart": 0, "unknown": 0,
                      "seconds": 0.0}

    def __enter__(self) -> Aligner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown()

    def verdicts(self, row: int, others: np.ndarray) -> np.ndarray:
        """COPY, APART or UNKNOWN for ``row`` against each of ``others`` (int8 array)."""
        started = time.perf_counter()
        others = [int(j) for j in others]
        self._identify([row, *others])
        mine, theirs = self._ids[row], [self._ids[j] for j in others]
        pairs = [_pair(mine, t, self.any_orientation) for t in theirs]
        said = [_VERDICTS.get(pair) for pair in pairs]
        todo = [k for k, found in enumerate(said) if found is None]
        if todo:
            known = self._pictures(list(dict.fromkeys([mine, *(theirs[k] for k in todo)])))
            # Here, not on the pool: measured on the copies set, two threads aligned stored pictures
            # no faster than one (0.44 against 0.40 ms a pair); the pool reads files.
            results = [verdict(known[mine], known[theirs[k]], self.any_orientation) for k in todo]
            for k, result in zip(todo, results):
                if known[mine] is not None and known[theirs[k]] is not None:  # else: try again next run
                    _VERDICTS.put(pairs[k], result)
                said[k] = result
                self.stats["pairs"] += 1
                self.stats[{COPY: "copy", APART: "apart", UNKNOWN: "unknown"}[result]] += 1
        self.stats["seconds"] += time.perf_counter() - started
        return np.array(said, dtype=np.int8)

    def _identify(self, rows: list[int]) -> None:
        """Each row's key: ("stored", content hash) when the DB holds its keypoints, else its
        file's (path, size, mtime, ctime, inode) now (Nones: cannot be read); a file replaced with
        the same size and mtime has another ctime or inode."""
        new = [r for r in dict.fromkeys(rows) if r not in self._ids]
        hashes = self.stored.hashes(new) if self.stored is not None and new else {}
        for r in new:
            if r in hashes:
                self._ids[r] = ("stored", hashes[r])
                continue
            path = self.path_of(r)
            try:
                st = os.stat(path)
                self._ids[r] = (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            except OSError:
                self._ids[r] = (path, None, None, None, None)

    def _pictures(self, keys: list[tuple]) -> dict[tuple, Picture | None]:
        """The Picture of each key: from memory, from the DB (here: its connection is this
        thread's), or read from the file (on the pool)."""
        known = {}
        for key in keys:
            found = _PICTURES.get((key, self.any_orientation), False)
            if found is not False:
                known[key] = found
        stored = [key for key in keys if key not in known and key[0] == "stored"]
        if stored:
            data = self.stored.data([key[1] for key in stored])
            for key in stored:
                known[key] = self._remember(key, _parsed(data.get(key[1])))
                self.stats["stored"] += 1
        files = [key for key in keys if key not in known]
        for key, picture in zip(files, self._pool.map(self._read, files)):
            known[key] = self._remember(key, picture)
            self.stats["pictures"] += 1
            self.stats["unreadable"] += picture is None
        return known

    def _read(self, key: tuple) -> Picture | None:
        path, size = key[:2]
        if size is None:
            return None
        try:
            return of_file(path, mirror=self.any_orientation, max_pixels=config.MAX_IMAGE_PIXELS)
        except ImageDecodeError as exc:
            log.debug("no keypoints for %s: %s", path, exc)
            return None

    def _remember(self, key: tuple, picture: Picture | None) -> Picture | None:
        """Kept for the process, unless missing: a file read may have failed for a moment, a stored
        record may have been pruned between two queries; the next run tries again."""
        if picture is not None:
            _PICTURES.put((key, self.any_orientation), picture)
        return picture


class KeypointStore:
    """The keypoints main.py stored (db.keypoints) for the rows of a loaded matrix."""

    def __init__(self, conn, ids: np.ndarray):
        self.conn, self.ids = conn, ids

    def hashes(self, rows: list[int]) -> dict[int, bytes]:
        """{row: content hash} of the rows whose content has stored keypoints."""
        found = hashes_with_keypoints(self.conn, [int(self.ids[r]) for r in rows], FORMAT)
        return {r: found[int(self.ids[r])] for r in rows if int(self.ids[r]) in found}

    def data(self, content_hashes: list[bytes]) -> dict[bytes, bytes]:
        return stored_keypoints(self.conn, content_hashes)


def _parsed(data: bytes | None) -> Picture | None:
    if data is None:
        return None
    try:
        return from_bytes(data)
    except ValueError as exc:
        log.warning("stored keypoints unreadable (%s): that picture is left to the embeddings", exc)
        return None


class _Memo:
    """A thread-safe dict that forgets its oldest entries beyond ``size``."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, default=None):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            return default

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_PICTURES = _Memo(CACHED_PICTURES)
_VERDICTS = _Memo(CACHED_VERDICTS)


def _pair(a: tuple, b: tuple, any_orientation: bool) -> bytes:
    """The verdict memo's key of two pictures' keys: a 16-byte digest (150 bytes an entry in the
    memo, against 380 for the tuples themselves: a million verdicts in 150 MB)."""
    first, second = sorted((repr(a).encode("utf-8", "surrogateescape"), repr(b).encode("utf-8", "surrogateescape")))
    return hashlib.blake2b(b"\0".join((first, second, b"%d" % any_orientation)), digest_size=16).digest()


def verdict(a: Picture | None, b: Picture | None, any_orientation: bool = False) -> int:
    """COPY, APART or UNKNOWN for two pictures (None: unreadable)."""
    if a is None or b is None:
        return UNKNOWN
    fits = [fit(a.keypoints, b.keypoints), fit(b.keypoints, a.keypoints)]
    if any_orientation and b.mirrored is not None:
        fits.append(fit(a.keypoints, b.mirrored))
    best = max((f for f in fits if f is not None), key=lambda f: f[0], default=None)
    if best is not None and best[0] >= MIN_INLIERS:
        inliers, inside, covered, turn = best
        if not any_orientation and abs(turn) > MAX_TURN:
            return APART
        return COPY if max(inside, covered) >= CONTAINED and min(inside, covered) >= COVERS else APART
    if min(len(a.keypoints), len(b.keypoints)) >= RICH:
        return APART
    return APART if plainly_different(a.tiny, b.tiny, any_orientation) else UNKNOWN


def fit(a: Keypoints, b: Keypoints) -> tuple[int, float, float, float] | None:
    """The similarity transform taking ``b`` onto ``a`` that most matches agree on:
    (agreeing matches, share of b inside a, share of a covered by b, turn in degrees), or None
    (too few matches, or a transform scaling by more than MAX_SCALE)."""
    import cv2  # OpenCV only where pictures are aligned or keypoints computed (80 ms to import)

    if len(a) < MIN_INLIERS or len(b) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(b.descriptors, a.descriptors, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    source = b.points[[m.queryIdx for m in good]]
    target = a.points[[m.trainIdx for m in good]]
    matrix, agree = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION)
    if matrix is None:
        return None
    stretch = abs(float(np.linalg.det(matrix[:, :2])))  # a similarity transform's scale, squared: b's area grows by it
    if not MAX_SCALE ** -2 <= stretch <= MAX_SCALE ** 2:
        return None  # a degenerate fit (every match squeezed into a corner)
    corners = np.array([[0, 0], [b.width, 0], [b.width, b.height], [0, b.height]], dtype=np.float32)
    mapped = corners @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    frame = np.array([[0, 0], [a.width, 0], [a.width, a.height], [0, a.height]], dtype=np.float32)
    overlap, _ = cv2.intersectConvexConvex(mapped, frame)
    turn = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    inside, covered = overlap / (stretch * b.width * b.height), overlap / (a.width * a.height)
    return int(agree.sum()), float(inside), float(covered), turn
