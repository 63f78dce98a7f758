"""ORB keypoints of a small grey copy of a picture, and a tiny colour copy: what the duplicate
finder aligns two pictures by.

Why keypoints as well as embeddings: the network sees two frames of a burst, or a photo and a
crop of a quarter of it, as nearly the same picture (cosine distance 0.02-0.1), yet sees a copy
turned by 5 degrees or with a caption band as farther apart than many different pictures. An
alignment tells them apart (duplicates.alignment): a copy lies wholly inside its original (or the
original inside it), while two frames of a burst each show something the other does not.

Why ORB (OpenCV): free, fast (about 3 ms for a 341 x 256 picture here, contrast evening included),
invariant to rotation and, over its image pyramid, to scale; robust to brightness, re-compression
and greyscale.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from features.decode import decode, read_file, resize_shorter_side

# The grey copy's shorter side: extraction's shared copy (features.decode: JPEG decoded in draft
# mode, EXIF rotation applied), so main.py computes keypoints from the decode it does anyway.
SHORTER_SIDE = 256
# ORB keeps the strongest this many: 150 aligned the copies set as well as 500 (pair precision 0.995,
# recall 0.973, burst pairs as copies 0.038 with both, on 240-px copies; on today's 256-px copies
# 0.996 / 0.968 / 0.041) in a third of the space (about 6 KB a picture).
MAX_POINTS = 150
# FAST's contrast threshold (OpenCV's default 20) and the border/patch size (default 31): lower
# values find keypoints on the soft, low-contrast pictures of the copies set (gradients, skies).
FAST_THRESHOLD = 10
PATCH = 15
# Local contrast is evened out first (CLAHE, clip limit 4 on 4 x 4 tiles): a retina scan or a
# misty landscape then has keypoints too. Measured when it was added (500 keypoints on a 240-px copy;
# bench/quality_duplicates.py, quality_kinds.py): burst pairs called copies 11 % -> 5 %, pair
# precision 0.991 -> 0.994, recall the same.
CONTRAST = 4.0
TINY = 16  # the tiny colour copy plain pictures are compared by (duplicates.alignment)


@dataclass(frozen=True)
class Keypoints:
    """Keypoint positions (pixels of the grey copy) and their 32-byte binary descriptors."""
    points: np.ndarray  # (n, 2) float32, x and y
    descriptors: np.ndarray  # (n, 32) uint8
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class Picture:
    """What the alignment needs of one picture: its keypoints, its mirror image's (ORB is not
    mirror-invariant; only when asked for) and a TINY x TINY colour copy (for plain pictures)."""
    keypoints: Keypoints
    mirrored: Keypoints | None
    tiny: np.ndarray  # (TINY, TINY, 3) uint8, the whole picture squashed


def of_file(path: str, mirror: bool = False, max_pixels: int = Image.MAX_IMAGE_PIXELS) -> Picture:
    """The Picture of the file at ``path`` (ImageDecodeError for what extraction could not read
    either; TooManyPixelsError above ``max_pixels``)."""
    data, _ = read_file(path)
    return of_image(decode(data, SHORTER_SIDE, max_pixels), mirror)


def of_image(image, mirror: bool = False) -> Picture:
    """The Picture of an RGB PIL image, brought to a shorter side of SHORTER_SIDE first if it is
    another size (extraction's copy follows IR_DECODE_SIDE): stored and read pictures must match."""
    if min(image.size) != SHORTER_SIDE:
        image = resize_shorter_side(image, SHORTER_SIDE)
    grey = np.asarray(image.convert("L"))
    tiny = np.asarray(image.convert("RGB").resize((TINY, TINY), Image.BILINEAR))
    return Picture(of_pixels(grey), of_pixels(grey[:, ::-1]) if mirror else None, tiny)


_HEADER = struct.Struct("<BHHHB")  # format, points, width, height, tiny side
# The record's layout *and* the settings above: change it when either changes, and main.py's next
# run recomputes every record of another format (db.keypoints.rows_without_keypoints).
FORMAT = 1
SUBPIXEL = 16  # positions are stored as uint16 sixteenths of a pixel (a grey copy is at most 4095 px long)


def to_bytes(picture: Picture) -> bytes:
    """The stored form of a Picture (its mirror's keypoints are not stored: --any-orientation
    reads the files for those)."""
    k = picture.keypoints
    points = np.clip(np.round(k.points * SUBPIXEL), 0, 65535).astype("<u2")
    return (_HEADER.pack(FORMAT, len(k), k.width, k.height, picture.tiny.shape[0]) + points.tobytes()
            + np.ascontiguousarray(k.descriptors, dtype=np.uint8).tobytes() + picture.tiny.tobytes())


def from_bytes(data: bytes) -> Picture:
    """A Picture from to_bytes (no mirrored keypoints); ValueError for anything else."""
    if len(data) < _HEADER.size:
        raise ValueError("keypoints record too short")
    version, count, width, height, side = _HEADER.unpack_from(data)
    if version != FORMAT or len(data) != _HEADER.size + count * (4 + 32) + side * side * 3:
        raise ValueError(f"keypoints record of format {version} and {len(data)} bytes does not parse")
    at = _HEADER.size
    points = np.frombuffer(data, "<u2", count * 2, at).reshape(count, 2).astype(np.float32) / SUBPIXEL
    at += count * 4
    descriptors = np.frombuffer(data, np.uint8, count * 32, at).reshape(count, 32)
    tiny = np.frombuffer(data, np.uint8, side * side * 3, at + count * 32).reshape(side, side, 3)
    return Picture(Keypoints(points, descriptors, width, height), None, tiny)


def of_pixels(grey: np.ndarray) -> Keypoints:
    """ORB keypoints of a grey uint8 array."""
    import cv2  # OpenCV only where pictures are aligned or keypoints computed (80 ms to import)

    orb = cv2.ORB_create(nfeatures=MAX_POINTS, fastThreshold=FAST_THRESHOLD, edgeThreshold=PATCH, patchSize=PATCH)
    even = cv2.createCLAHE(clipLimit=CONTRAST, tileGridSize=(4, 4)).apply(np.ascontiguousarray(grey))
    found, descriptors = orb.detectAndCompute(even, None)
    points = np.array([k.pt for k in found], dtype=np.float32).reshape(-1, 2)
    if descriptors is None:
        descriptors = np.zeros((0, 32), dtype=np.uint8)
    return Keypoints(points, descriptors, grey.shape[1], grey.shape[0])
