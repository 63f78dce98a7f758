"""ORB keypoints of a small grey copy of a picture: what the duplicate finder aligns two pictures by.

Why keypoints as well as embeddings: the network sees two frames of a burst, or a photo and a
crop of a quarter of it, as nearly the same picture (cosine distance 0.02-0.1), yet sees a copy
turned by 5 degrees or with a caption band as farther apart than many different pictures. An
alignment tells them apart (duplicates.alignment): a copy lies wholly inside its original (or the
original inside it), while two frames of a burst each show something the other does not.

Why ORB (OpenCV): free, fast (about 2 ms for a 320 x 240 picture here), invariant to rotation and,
over its image pyramid, to scale; robust to brightness, re-compression and greyscale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.decode import decode, read_file

# The grey copy's shorter side (decode: JPEG decoded in draft mode, EXIF rotation applied). 240
# keeps a 4:3 photo at 320 x 240: the copies set's edits align as well as at twice the size.
SHORTER_SIDE = 240
MAX_POINTS = 500  # ORB keeps the strongest this many
# FAST's contrast threshold (OpenCV's default 20) and the border/patch size (default 31): lower
# values find keypoints on the soft, low-contrast pictures of the copies set (gradients, skies).
FAST_THRESHOLD = 10
PATCH = 15


@dataclass(frozen=True)
class Keypoints:
    """Keypoint positions (pixels of the grey copy) and their 32-byte binary descriptors."""
    points: np.ndarray  # (n, 2) float32, x and y
    descriptors: np.ndarray  # (n, 32) uint8
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.points)


def grey_copy(path: str, side: int = SHORTER_SIDE) -> np.ndarray:
    """The picture at ``path`` as a grey uint8 array with shorter side ``side`` (ImageDecodeError
    for what extraction could not read either)."""
    data, _ = read_file(path)
    return np.asarray(decode(data, side).convert("L"))


def of_pixels(grey: np.ndarray) -> Keypoints:
    """ORB keypoints of a grey uint8 array."""
    import cv2  # OpenCV only on the duplicate finder's path (80 ms to import)

    orb = cv2.ORB_create(nfeatures=MAX_POINTS, fastThreshold=FAST_THRESHOLD, edgeThreshold=PATCH, patchSize=PATCH)
    found, descriptors = orb.detectAndCompute(np.ascontiguousarray(grey), None)
    points = np.array([k.pt for k in found], dtype=np.float32).reshape(-1, 2)
    if descriptors is None:
        descriptors = np.zeros((0, 32), dtype=np.uint8)
    return Keypoints(points, descriptors, grey.shape[1], grey.shape[0])


def of_file(path: str, mirror: bool = False) -> tuple[Keypoints, Keypoints | None]:
    """Keypoints of the picture at ``path``, and with ``mirror`` those of its mirror image (ORB
    is not mirror-invariant, so a mirrored copy is aligned by the mirror's own keypoints)."""
    grey = grey_copy(path)
    return of_pixels(grey), of_pixels(grey[:, ::-1]) if mirror else None
