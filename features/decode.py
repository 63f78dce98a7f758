"""Decode an image file once into the shared copy every feature is computed from.

Why one shared copy: decoding dominates everything but the network, so each file is read
once and decoded as small as its format allows, then resized so its shorter side is
DECODE_SIDE (torchvision's ``Resize(256)``: bilinear, antialiased), turned upright (EXIF)
and flattened on white (transparency) before histogram, hashes and network crop use it.

Why in this order: the full-resolution image is touched as little as possible. JPEG is
decoded at the smallest DCT scale (1/8, 1/4, 1/2) whose shorter side is still at least
DECODE_SIDE; other formats are box-reduced by an integer factor first while they stay
REDUCING_GAP times larger than the copy (Pillow's ``reducing_gap``). An upright RGB or
greyscale image is resized with no intermediate copy (greyscale becomes RGB only once
small); 16/32-bit images become 8-bit and transparent ones are flattened on white strip
by strip (never a full-resolution float copy or a stack of RGBA copies: memory per image
stays within ~2x of the decoded pixels Pillow holds anyway); palette and transparent
images get their true colours and the EXIF rotation before resampling, so they resample
exactly like a plain RGB copy of the same pixels (tests/test_reliability_nasty.py).

How far the copy is from torchvision's ``Resize(256)`` of the full image: identical below
REDUCING_GAP x DECODE_SIDE (tests/test_decode.py); above it, a few levels on average 0.16
(up to ~11 on single pixels of grainy photos), embeddings within cosine 0.998 of a plain
resize. JPEG draft mode moves them more (cosine 0.994), and always has
(bench/decode_speed.py measures speed and memory).
"""
import hashlib
import io
import warnings

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

# How much longer than the shorter side the copy may be: absurd aspect ratios (a 20000x1
# strip) would otherwise make a gigantic copy. Only images longer than 8:1 are squeezed.
MAX_ASPECT = 8
# Box-reduce first only while the image stays this many times larger than the copy: 2 makes a
# 1600x1200 PNG or WebP reduce by 2 (its resize 7.6 -> 4.8 ms); 3 would leave it as is.
REDUCING_GAP = 2.0
HIGH_DEPTH = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
STRIP_BYTES = 1 << 20  # high-depth -> 8-bit conversion, a strip of rows of about this many bytes at a time
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


# The only Pillow plug-ins that ever see a file, the collection's or an upload: EPS, PS and PDF
# hand the bytes to Ghostscript where it is installed, and the rarer plug-ins are attack
# surface nobody's photos need. Image.open(..., formats=FORMATS) never tries the others.
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
ACCEPTED = "JPEG, PNG, BMP, GIF, TIFF or WebP"


def open_image(source):
    """Image.open limited to FORMATS (a path or a file object)."""
    return Image.open(source, formats=FORMATS)


class ImageDecodeError(Exception):
    """The file is not an image we can use; the message is the one-line reason stored in the DB."""


class TooManyPixelsError(ImageDecodeError):
    """Over the decompression-bomb limit; ``limit`` lets a caller word its own advice."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} pixels (decompression-bomb limit; raise IR_MAX_IMAGE_PIXELS "
                         f"and run main.py --retry-errors)")
        self.limit = limit


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
                image = open_image(io.BytesIO(data))
                if image.format == "JPEG":
                    image.draft("RGB", _draft_request(image.size, side))
                image.load()
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
                return shared_copy(image, side, TRANSPOSE.get(orientation))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixelsError(max_pixels) from None
    except UnidentifiedImageError:
        raise ImageDecodeError(f"not an image this app reads (accepted: {ACCEPTED})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageDecodeError(f"cannot decode: {what}") from None


class limit_pixels:
    """Temporarily set Pillow's global decompression-bomb limit."""

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        self.saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, self.limit

    def __exit__(self, *exc):
        Image.MAX_IMAGE_PIXELS = self.saved


def _draft_request(size, side):
    """The size to ask JPEG draft mode for, so that it picks the largest DCT scale (8, 4, 2
    or 1) that keeps the shorter side >= ``side``: Pillow takes the largest power of two
    <= min(width // w, height // h)."""
    width, height = size
    scale = next(s for s in (8, 4, 2, 1) if min(width, height) // s >= side or s == 1)
    return (max(1, width // scale), max(1, height // scale))


def shared_copy(image, side, transpose=None):
    """A loaded image at any resolution -> the RGB copy with shorter side ``side``, after
    ``transpose`` (an Image.Transpose, or None for an upright image: no copy made)."""
    if image.mode in HIGH_DEPTH:
        image = _eight_bit(image)
    if transpose is not None:  # before resizing, so a rotated file resamples exactly like its upright copy
        image = image.transpose(transpose)
    if _has_alpha(image):  # flattened before resampling, a strip at a time (each pixel on its own)
        image = _flatten(image)
    elif image.mode not in ("RGB", "L"):  # palette, CMYK ...: true colours before resampling
        image = to_rgb(image)
    return to_rgb(resize_shorter_side(image, side))  # a greyscale copy becomes RGB only once small


def to_rgb(image):
    """Any Pillow mode -> RGB, transparency flattened on white, 16-bit scaled to 8-bit."""
    if image.mode in HIGH_DEPTH:
        image = _eight_bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def _has_alpha(image):
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)


def _flatten(image):
    """to_rgb of a transparent image, a strip of rows at a time: the RGB result and one strip are
    all the memory it takes beside the decoded image (not four full-size RGBA copies)."""
    width, height = image.size
    out = Image.new("RGB", image.size)
    rows = max(1, STRIP_BYTES // (4 * width))
    for top in range(0, height, rows):
        out.paste(to_rgb(image.crop((0, top, width, min(height, top + rows)))), (0, top))
    return out


def _eight_bit(image):
    """A 16/32-bit integer or float greyscale image -> mode L (one byte per pixel), a strip
    of rows at a time so that no full-resolution wider copy is ever made. Integer images
    that use more than 8 bits are scaled by 1/257 (65535 -> 255) and rounded."""
    peak = image.getextrema()[1] if image.mode != "F" else 0
    divisor = 257.0 if peak > 255 else 1.0
    width, height = image.size
    out = np.empty((height, width), dtype=np.uint8)
    rows = max(1, STRIP_BYTES // (4 * width))
    for top in range(0, height, rows):
        strip = np.asarray(image.crop((0, top, width, min(height, top + rows))), dtype=np.float32)
        np.rint(np.divide(strip, divisor, out=strip), out=strip)
        out[top:top + strip.shape[0]] = np.clip(strip, 0, 255, out=strip)
    return Image.fromarray(out, "L")


def resize_shorter_side(image, side):
    """torchvision ``Resize(side)`` on a PIL image (bilinear, antialiased), long side capped;
    large images are box-reduced first (REDUCING_GAP)."""
    width, height = image.size
    if width <= height:
        new_w, new_h = side, min(int(side * height / width), side * MAX_ASPECT)
    else:
        new_w, new_h = min(int(side * width / height), side * MAX_ASPECT), side
    if (new_w, new_h) == (width, height):
        return image
    return image.resize((new_w, new_h), Image.BILINEAR, reducing_gap=REDUCING_GAP)
