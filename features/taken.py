"""When a photo was taken, from its EXIF header (DateTimeOriginal), without decoding pixels.

Why: the duplicate finder keeps the original of a group, and a camera's original is the
oldest shot; file times change with every copy, backup and edit, the EXIF date does not.
Only the header is read (Pillow parses the metadata on open and decodes pixels lazily), so
reading it for the members of duplicate groups costs little.
"""
from __future__ import annotations

import calendar
import logging
import time

from features.decode import open_image

log = logging.getLogger(__name__)

EXIF_IFD = 0x8769  # the Exif sub-IFD, where DateTimeOriginal lives
DATE_TIME_ORIGINAL = 36867
DATE_TIME = 306  # IFD0's DateTime: a fallback some editors keep
EXIF_FORMAT = "%Y:%m:%d %H:%M:%S"


def date_taken_ns(path: str) -> int | None:
    """DateTimeOriginal (else IFD0's DateTime) as nanoseconds since the epoch, the clock time
    read as UTC (EXIF has no zone; files of one camera compare right); None when the file has
    no usable date or cannot be read."""
    try:
        with open_image(path) as image:
            exif = image.getexif()
            text = exif.get_ifd(EXIF_IFD).get(DATE_TIME_ORIGINAL) or exif.get(DATE_TIME)
    except Exception as exc:  # noqa: BLE001 - any unreadable header just means "no date"
        log.debug("no EXIF date from %s: %s", path, exc)
        return None
    return parse_exif_date(text)


def parse_iso_date(text) -> int | None:
    """'YYYY-MM-DDTHH:MM:SS' (as db.exif stores it) -> ns since the epoch (read as UTC), or None."""
    if not isinstance(text, str):
        return None
    try:
        return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000
    except ValueError:
        return None


def parse_exif_date(text) -> int | None:
    """'YYYY:MM:DD HH:MM:SS' (NUL-padded or with trailing fractions) -> ns since the epoch, or None."""
    if not isinstance(text, str):
        return None
    text = text.strip("\x00 ")[:19]
    try:
        parsed = time.strptime(text, EXIF_FORMAT)
    except ValueError:
        return None
    if parsed.tm_year < 1900:  # "0000:00:00 00:00:00" and other placeholders
        return None
    return calendar.timegm(parsed) * 1_000_000_000
