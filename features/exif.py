"""The EXIF facts people sort and filter photos by: date taken, camera, GPS position, orientation.

Why from the header only: Image.open reads the header and stops, so the facts of a file cost a
few kB of reading, not a decode; the viewer asks for one file at a time and a back-fill of a
large collection reads nothing else. Only the FORMATS of features.decode are ever opened.
"""
from __future__ import annotations

import io
import warnings
from datetime import datetime
from typing import NamedTuple

from PIL import ExifTags, Image, UnidentifiedImageError

from db.exif import camera_name  # noqa: F401  (features.exif.camera_name: the web app's import)
from features.decode import open_image

GPS_IFD = 0x8825
EXIF_IFD = 0x8769


class Exif(NamedTuple):
    taken: str | None  # ISO 8601, local time of the camera as EXIF stores it (no zone)
    make: str | None
    model: str | None
    latitude: float | None
    longitude: float | None
    orientation: int | None


NO_EXIF = Exif(None, None, None, None, None, None)


def exif_of(source) -> Exif:
    """The facts of a path, bytes or file object; NO_EXIF when it has none or cannot be read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_image(source) as image:
                exif = image.getexif()
                return _facts(exif)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            KeyError, ZeroDivisionError, Image.DecompressionBombError):
        return NO_EXIF


def _facts(exif: Image.Exif) -> Exif:
    if not exif:
        return NO_EXIF
    sub = exif.get_ifd(EXIF_IFD)
    taken = _date(sub.get(ExifTags.Base.DateTimeOriginal) or sub.get(ExifTags.Base.DateTimeDigitized)
                  or exif.get(ExifTags.Base.DateTime))
    gps = exif.get_ifd(GPS_IFD)
    latitude = _degrees(gps.get(2), gps.get(1), "S")
    longitude = _degrees(gps.get(4), gps.get(3), "W")
    orientation = exif.get(ExifTags.Base.Orientation)
    return Exif(taken, _text(exif.get(ExifTags.Base.Make)), _text(exif.get(ExifTags.Base.Model)), latitude, longitude,
                int(orientation) if isinstance(orientation, int) and 1 <= orientation <= 8 else None)


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).replace("\x00", "").strip() if value is not None else ""
    return value[:100] or None


def _date(value) -> str | None:
    """"2021:07:14 18:03:22" -> "2021-07-14T18:03:22"; None for blanks and nonsense."""
    text = _text(value)
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _degrees(dms, ref, negative: str) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    if not (0 <= value <= 180):
        return None
    return round(-value if _text(ref) == negative else value, 7)
