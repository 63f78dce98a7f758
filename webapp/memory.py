"""Keeping a long-running server's memory where its work is, not where its peaks were.

Why at most one decode per core: a decode already keeps a core busy, so more at once only
adds full-resolution pixel buffers side by side (a 9.4-megapixel RGBA PNG holds ~38 MB while
it is flattened) without answering sooner. Further uploads wait for a slot.

Why a fixed mmap threshold: glibc serves a large allocation with mmap, but after the first
such block is freed it raises its threshold (up to 32 MB), so Pillow's 16 MB image blocks
then come from the per-thread malloc arenas, and a burst of parallel uploads leaves hundreds
of MB there that the process never gives back (measured: +381 MB after 50 uploads of such
a PNG, six at a time; tests/test_webapp_uploads.py). A fixed threshold keeps every block of
1 MB or more in its own mapping, returned to the system when freed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1 << 20

DECODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


def return_large_blocks_to_the_system() -> bool:
    """Fix glibc's mmap threshold for this process; False (and nothing changed) elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator keeps its own policy
        log.debug("mallopt is not available here; large blocks follow the allocator's own policy")
        return False
