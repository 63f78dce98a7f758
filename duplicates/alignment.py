"""Is one picture an edit of the other? Align their keypoints and see whether one lies inside the other.

A pair the embeddings call close is aligned (features.keypoints: ORB on a 320 x 240 grey copy;
OpenCV's RANSAC fit of one similarity transform: scale, turn, shift) and gets one of three verdicts:

- COPY: at least MIN_INLIERS matches agree on a transform that puts one picture (nearly) wholly
  inside the other (CONTAINED of its area) while covering at least COVERS of the other's: resized,
  re-compressed, cropped a little, brightened, greyscale, captioned, turned a little;
- APART: the transform is found but the pictures only overlap (burst frames, a panning camera), one
  is a small part of the other (a quarter of a photo), or it turns by more than MAX_TURN (upright
  search); or both pictures have RICH keypoints and none agree (different pictures);
- UNKNOWN: too few keypoints to tell (flat drawings, gradients, unreadable files) and tiny copies
  that do not disagree (plain_verdict): the embeddings decide alone, as without alignment.

The constants were chosen on the copies set, the burst stand-ins and the look-alikes
(bench/quality_duplicates.py, bench/quality_kinds.py; numbers in docs/duplicates.md).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from features.decode import ImageDecodeError
from features.keypoints import Keypoints, Picture, of_file

log = logging.getLogger(__name__)

COPY, APART, UNKNOWN = 1, 0, -1
# Matches that must agree on one transform (10: twice the false copies among photos; 15: 1-3 % fewer copies).
MIN_INLIERS = 12
CONTAINED = 0.92  # share of one picture inside the other: a 5-degree turn keeps >= 0.95, burst frames 7 % apart 0.88
COVERS = 0.5  # share of the other it must cover: a crop to 80 % x 80 % covers 0.64, a quarter 0.25
RICH = 100  # keypoints on both sides with no agreement: different pictures, not "too few to tell"
MAX_TURN = 30.0  # degrees; a larger turn is a copy only with --any-orientation
RATIO = 0.8  # Lowe's ratio test on descriptor distances
REPROJECTION = 4.0  # pixels of the grey copy within which a match agrees with the transform
# Plain pictures (too few keypoints): tiny copies whose light correlates below PLAIN_LIGHT, or, both
# colourful (channels COLOURFUL apart on average, of 255), whose colours correlate below PLAIN_COLOUR,
# are apart. Among the copies set's plain pairs no upright copy fell below either (lowest: 0.67
# light, 0.78 colour); a colour wheel's quarters did (0.10 light; mirrored, 0.58 colour).
PLAIN_LIGHT = 0.5
PLAIN_COLOUR = 0.7
COLOURFUL = 12.0
CACHED_PICTURES = 4096  # pictures whose keypoints stay in memory (about 20 KB each)
CACHED_VERDICTS = 1_000_000  # verdicts on pairs kept (about 200 bytes each)


class Aligner:
    """Verdicts on pairs of matrix rows, reading each picture's keypoints once.

    ``path_of(row)``: the row's file. ``any_orientation``: mirrored copies (by the mirror's own
    keypoints) and any turn count too. Keypoints and verdicts are kept for the process, keyed by
    file (path, size, mtime): the web app's threshold slider and a benchmark's sweep re-run the
    finder without reading the pictures again."""

    def __init__(self, path_of: Callable[[int], str], any_orientation: bool = False, workers: int | None = None):
        self.path_of = path_of
        self.any_orientation = any_orientation
        self.workers = workers or os.cpu_count() or 1  # decoding and matching: one thread per core
        self._files: dict[int, tuple] = {}
        self.stats = {"pictures": 0, "unreadable": 0, "pairs": 0, "copy": 0, "apart": 0, "unknown": 0, "seconds": 0.0}

    def verdicts(self, row: int, others: np.ndarray) -> np.ndarray:
        """COPY, APART or UNKNOWN for ``row`` against each of ``others`` (int8 array)."""
        started = time.perf_counter()
        mine, theirs = self._file(row), [self._file(int(j)) for j in others]
        pairs = [_pair(mine, f, self.any_orientation) for f in theirs]
        todo = [k for k, pair in enumerate(pairs) if _VERDICTS.get(pair) is None]
        if todo:
            files = list(dict.fromkeys([mine, *(theirs[k] for k in todo)]))
            with ThreadPoolExecutor(self.workers) as pool:  # OpenCV and Pillow release the GIL
                known = dict(pool.map(self._keypoints, files))
                results = list(pool.map(lambda k: verdict(known[mine], known[theirs[k]], self.any_orientation), todo))
            for k, result in zip(todo, results):
                _VERDICTS.put(pairs[k], result)
                self.stats["pairs"] += 1
                self.stats[{COPY: "copy", APART: "apart", UNKNOWN: "unknown"}[result]] += 1
        self.stats["seconds"] += time.perf_counter() - started
        return np.array([_VERDICTS.get(pair, UNKNOWN) for pair in pairs], dtype=np.int8)

    def _file(self, row: int) -> tuple:
        """(path, size, mtime) of the row's file now; (path, None, None) when it cannot be read."""
        if row not in self._files:
            path = self.path_of(row)
            try:
                st = os.stat(path)
                self._files[row] = (path, st.st_size, st.st_mtime_ns)
            except OSError:
                self._files[row] = (path, None, None)
        return self._files[row]

    def _keypoints(self, file: tuple):
        key = (*file, self.any_orientation)
        found = _KEYPOINTS.get(key, False)
        if found is False:
            found = None
            if file[1] is not None:
                try:
                    found = of_file(file[0], mirror=self.any_orientation)
                except ImageDecodeError as exc:
                    log.debug("no keypoints for %s: %s", file[0], exc)
            _KEYPOINTS.put(key, found)
            self.stats["pictures"] += 1
            self.stats["unreadable"] += found is None
        return file, found


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


_KEYPOINTS = _Memo(CACHED_PICTURES)
_VERDICTS = _Memo(CACHED_VERDICTS)


def _pair(a: tuple, b: tuple, any_orientation: bool) -> tuple:
    return (a, b, any_orientation) if a <= b else (b, a, any_orientation)


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
    return plain_verdict(a.tiny, b.tiny, any_orientation)


def plain_verdict(a: np.ndarray, b: np.ndarray, any_orientation: bool = False) -> int:
    """Two pictures too plain for keypoints, by their tiny colour copies: APART when their layouts
    of light (or, both being colourful, of colour) disagree at a glance; else UNKNOWN, left to the
    embeddings. Never COPY: gradients and skies also look alike when they are different pictures."""
    variants = _orientations(b) if any_orientation else [b]
    if max(_correlation(_luma(a), _luma(v)) for v in variants) < PLAIN_LIGHT:
        return APART
    if _colourful(a) and _colourful(b) and max(_correlation(a, v) for v in variants) < PLAIN_COLOUR:
        return APART
    return UNKNOWN


def _orientations(tiny: np.ndarray) -> list[np.ndarray]:
    """The 8 turns and mirrors of a square tiny copy (a squashed picture turns with its squash)."""
    return [np.rot90(t, k) for t in (tiny, tiny[:, ::-1]) for k in range(4)]


def _luma(tiny: np.ndarray) -> np.ndarray:
    return tiny.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _colourful(tiny: np.ndarray) -> bool:
    spread = tiny.max(axis=2).astype(np.float32) - tiny.min(axis=2)
    return float(spread.mean()) >= COLOURFUL


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of one shape; 1 when either is flat (nothing to compare)."""
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms > 1e-3 else 1.0


def fit(a: Keypoints, b: Keypoints) -> tuple[int, float, float, float] | None:
    """The similarity transform taking ``b`` onto ``a`` that most matches agree on:
    (agreeing matches, share of b inside a, share of a covered by b, turn in degrees), or None."""
    import cv2  # OpenCV only on the duplicate finder's path (80 ms to import)

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
    corners = np.array([[0, 0], [b.width, 0], [b.width, b.height], [0, b.height]], dtype=np.float32)
    mapped = corners @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    frame = np.array([[0, 0], [a.width, 0], [a.width, a.height], [0, a.height]], dtype=np.float32)
    overlap, _ = cv2.intersectConvexConvex(mapped, frame)
    area = _area(mapped)
    if area <= 0:
        return None
    turn = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    return int(agree.sum()), float(overlap / area), float(overlap / (a.width * a.height)), turn


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
