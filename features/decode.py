"""Decode an image file once into the shared copy every feature is computed from.

Why one shared copy: decoding dominates everything but the network, so each file is read
once, decoded at reduced size where the format allows it (JPEG draft mode), turned upright
(EXIF), flattened on white (transparency) and resized so its shorter side is DECODE_SIDE —
exactly torchvision's ``Resize(256)`` — before histogram, hashes and network crop use it.
"""
import hashlib
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# How much longer than the shorter side the copy may be: absurd aspect ratios (a 20000x1
# strip) would otherwise make a gigantic copy. Only images longer than 8:1 are squeezed.
MAX_ASPECT = 8


class ImageDecodeError(Exception):
    """The file is not an image we can use; the message is the one-line reason stored in the DB."""


def read_file(path):
    """The file's bytes and their content hash (blake2b-128), or ImageDecodeError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ImageDecodeError("file disappeared after the scan") from None
    except PermissionError:
        raise ImageDecodeError("no permission to read the file") from None
    except IsADirectoryError:
        raise ImageDecodeError("is a directory") from None
    except OSError as exc:
        raise ImageDecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    if not data:
        raise ImageDecodeError("empty file")
    return data, content_hash(data)


def content_hash(data):
    return hashlib.blake2b(data, digest_size=16).digest()


def decode(data, side=256, max_pixels=Image.MAX_IMAGE_PIXELS):
    """Bytes -> upright RGB PIL image whose shorter side is ``side`` pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with limit_pixels(max_pixels):
                image = Image.open(io.BytesIO(data))
                if image.format == "JPEG":
                    image.draft("RGB", _draft_request(image.size, side))
                image.load()
                image = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageDecodeError(f"more than {max_pixels} pixels (decompression-bomb limit; raise IR_MAX_IMAGE_PIXELS "
                               f"and run main.py --retry-errors)") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can identify") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageDecodeError(f"cannot decode: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return resize_shorter_side(to_rgb(image), side)


class limit_pixels:
    """Temporarily set Pillow's global decompression-bomb limit."""

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        self.saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, self.limit

    def __exit__(self, *exc):
        Image.MAX_IMAGE_PIXELS = self.saved


def _draft_request(size, side):
    """The size to ask JPEG draft mode for: the shorter side must stay >= ``side``."""
    width, height = size
    scale = side / min(width, height)
    return (max(1, int(np.ceil(width * scale))), max(1, int(np.ceil(height * scale))))


def to_rgb(image):
    """Any Pillow mode -> RGB, transparency flattened on white, 16-bit scaled to 8-bit."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode != "F" and pixels.max(initial=0) > 255:
            pixels = pixels / 257.0
        image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def resize_shorter_side(image, side):
    """torchvision ``Resize(side)`` on a PIL image (bilinear, antialiased), long side capped."""
    width, height = image.size
    if width <= height:
        new_w, new_h = side, min(int(side * height / width), side * MAX_ASPECT)
    else:
        new_w, new_h = min(int(side * width / height), side * MAX_ASPECT), side
    if (new_w, new_h) == (width, height):
        return image
    return image.resize((new_w, new_h), Image.BILINEAR)
