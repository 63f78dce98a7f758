"""How the network sees a picture: its input square made from the shared decoded copy.

Why whole-picture framing: a centre crop throws away the sides of every landscape picture
(and the top and bottom of every portrait one), often where the subject is. Squashing the
whole picture into the square keeps all of it; the network tolerates the change of aspect
better than the loss of content. Measured on the quality sets with EfficientNet-Lite0
(README, "Which mode should I use?"): squash raised P@10 on the Tux Paint class map from
0.657 to 0.673 and kept near-duplicate R@1 (0.997); padding (the whole picture letterboxed
on white) gained more P@10 (0.691) but lost R@1 on 90°-turned copies (0.952 on that edit),
so squash is the default and pad an option.

Every framing starts from the same copy (shorter side DECODE_SIDE, 256 by default), so none
costs a decode. The framing changes the embeddings: the DB stamp records it and a DB keeps
its own until ``main.py --reset-features``.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from config import InvalidInputError

CENTRE_CROP, SQUASH, PAD = "centre_crop", "squash", "pad"
FRAMINGS = (SQUASH, PAD, CENTRE_CROP)
DEFAULT_FRAMING = SQUASH
OLD_DBS_FRAMING = CENTRE_CROP  # what a DB stamped before framings were recorded was made with
CROP_RATIO = 224 / 256  # torchvision's ImageNet evaluation: Resize(256) then CenterCrop(224)
PAD_COLOUR = (255, 255, 255)  # white, as transparency is flattened (features.decode)


def centre_crop(image: Image.Image, size: int = 224) -> np.ndarray:
    """torchvision's ``CenterCrop(size)`` of the shared copy, as uint8 HWC (with the default
    copy, shorter side 256: ``Resize(256)`` + ``CenterCrop(224)``). A copy smaller than the
    input is first scaled to a shorter side of size / CROP_RATIO, as ``Resize`` would."""
    width, height = image.size
    if min(width, height) < size:
        side = round(size / CROP_RATIO)
        scale = side / min(width, height)
        image = image.resize((max(side, round(width * scale)), max(side, round(height * scale))), Image.BILINEAR)
        width, height = image.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return np.array(image.crop((left, top, left + size, top + size)))  # writable: torch wants that


def squash(image: Image.Image, size: int = 224) -> np.ndarray:
    """The whole picture resized to size x size (its aspect ratio not kept)."""
    return np.array(image.resize((size, size), Image.BILINEAR))


def pad(image: Image.Image, size: int = 224) -> np.ndarray:
    """The whole picture with its longer side at ``size``, centred on a white square."""
    width, height = image.size
    scale = size / max(width, height)
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), PAD_COLOUR)
    canvas.paste(small, ((size - small.width) // 2, (size - small.height) // 2))
    return np.array(canvas)


_FRAMERS = {CENTRE_CROP: centre_crop, SQUASH: squash, PAD: pad}


def check_framing(framing: str) -> str:
    """``framing``, or a ValueError listing the valid ones."""
    if framing not in _FRAMERS:
        raise InvalidInputError(f"unknown framing {framing!r}; valid: {', '.join(FRAMINGS)}")
    return framing


def frame(image: Image.Image, framing: str, size: int) -> np.ndarray:
    """The network's uint8 (size, size, 3) input for the shared decoded copy ``image``."""
    return _FRAMERS[check_framing(framing)](image, size)
