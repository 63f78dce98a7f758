"""Reading rows of a memory-mapped matrix without mapping them into the process.

Why: for every page a process touches in a file mapping, Linux also maps the neighbouring
pages already in the page cache ("fault-around", 64 KB), so gathering rows scattered over
a 2.6 GB matrix (500k x 1280 floats) soon counts all of it in the process's resident
memory, though those pages are only cache, and madvise cannot stop it. Reading the rows
with pread puts just the rows asked for in ordinary memory, freed after use. An array that
is not a file map is indexed as usual.
"""
from __future__ import annotations

import os

import numpy as np

READ_CHUNK = 1 << 28  # bytes per pread of a slice (well below the 2 GB a single read may return)


class RowReader:
    """``take(rows)`` and ``slice(start, stop)`` of a matrix, by pread when it is a file map.

    With ``subset`` (sorted row numbers) the reader shows only those rows, renumbered 0..n-1.
    """

    def __init__(self, matrix: np.ndarray, subset: np.ndarray | None = None):
        self.matrix = matrix
        self.subset = None if subset is None else np.asarray(subset, dtype=np.int64)
        self._row_bytes = matrix.shape[1] * matrix.itemsize if matrix.ndim == 2 else 0
        located = _file_of(matrix)
        self._fd = os.open(located[0], os.O_RDONLY) if located and self._row_bytes else None
        self._offset = located[1] if located else 0

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        return len(self.matrix) if self.subset is None else len(self.subset)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows at ``rows`` (any order), as a new array."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.subset is not None:
            rows = self.subset[rows]
        if self._fd is None:
            return np.asarray(self.matrix[rows])
        out = np.empty((len(rows), self.matrix.shape[1]), dtype=self.matrix.dtype)
        if not len(rows):
            return out
        view, size = memoryview(out).cast("B"), self._row_bytes
        # Runs of consecutive rows are read at once.
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        firsts = np.concatenate([[0], breaks]).tolist()
        lasts = np.concatenate([breaks, [len(rows)]]).tolist()
        for first, last, row in zip(firsts, lasts, rows[firsts].tolist()):
            self._read(view[first * size:last * size], self._offset + row * size)
        return out

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, as a new array."""
        if self.subset is not None:
            return self.take(np.arange(start, min(stop, len(self))))
        if self._fd is None:
            return np.asarray(self.matrix[start:stop])
        stop = min(stop, len(self.matrix))
        out = np.empty((max(0, stop - start), self.matrix.shape[1]), dtype=self.matrix.dtype)
        view = memoryview(out).cast("B")
        for begin in range(0, len(view), READ_CHUNK):
            self._read(view[begin:begin + READ_CHUNK], self._offset + start * self._row_bytes + begin)
        return out

    def _read(self, view, offset):
        while len(view):
            got = os.preadv(self._fd, [view], offset)
            if got <= 0:
                raise OSError(f"short read from the matrix file at byte {offset}")
            view, offset = view[got:], offset + got


def _file_of(matrix):
    """(file, byte offset of matrix[0, 0]) when ``matrix`` is a C-contiguous view of a np.memmap."""
    if not matrix.flags.c_contiguous:
        return None
    base = matrix
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    if base is None or not getattr(base, "filename", None):
        return None
    start = matrix.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return base.filename, base.offset + start
