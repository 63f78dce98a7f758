"""Which member of a group is kept: the original, by a documented rule, with the reason.

The rule, in order (README "Find every duplicate"):
0. the picture a reviewer chose ("keep this one instead", stored in the DB by content hash);
1. files under a --prefer folder first (the first such folder given wins);
2. the most pixels (an edit rarely adds pixels; resizing and cropping remove them);
3. the oldest date taken (EXIF DateTimeOriginal, else the file's mtime): copies come later;
4. a name without copy marks ("copy", "(1)", "-1", "edited", "_small", ...);
5. the largest file (re-compression usually shrinks it);
6. the path that sorts first.
Why not the largest file first: a brightened or re-saved copy is often larger than the camera's
original, and keeping it would move the original out.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import NamedTuple

# Marks tools and people put in the names of copies (the name's stem, lower case).
COPY_MARKS = re.compile(
    r"(copy|kopie|copie|edited|bearbeitet|_small|_thumb|_resized|\(\d+\)$|[-_ ]\d{1,2}$|~\d*$)", re.IGNORECASE)


class KeeperFacts(NamedTuple):
    """What the rule looks at for one file (path relative to the collection or absolute)."""
    path: str
    width: int | None
    height: int | None
    size: int
    mtime_ns: int
    taken_ns: int | None = None  # EXIF DateTimeOriginal, when known
    chosen: bool = False  # a reviewer's "keep this one instead"


def has_copy_mark(path: str) -> bool:
    """True when the file name (without extension) carries a mark of a copy."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return bool(COPY_MARKS.search(stem))


def preferred_rank(path: str, prefer: Sequence[str]) -> int:
    """Index of the first --prefer folder holding ``path`` (same form: both relative or both
    absolute), or len(prefer) when none does."""
    for rank, folder in enumerate(prefer):
        folder = folder.rstrip("/" + os.sep)
        if path == folder or path.startswith(folder + "/") or path.startswith(folder + os.sep):
            return rank
    return len(prefer)


def keeper_key(facts: KeeperFacts, prefer: Sequence[str] = ()) -> tuple:
    """Sort key of the rule above: the smallest key is the keeper."""
    return (not facts.chosen, preferred_rank(facts.path, prefer), -((facts.width or 0) * (facts.height or 0)),
            facts.taken_ns if facts.taken_ns is not None else facts.mtime_ns, has_copy_mark(facts.path),
            -facts.size, facts.path)


def keeper_order(candidates: Sequence[KeeperFacts], prefer: Sequence[str] = ()) -> list[int]:
    """Indices of ``candidates``, best keeper first."""
    return sorted(range(len(candidates)), key=lambda k: keeper_key(candidates[k], prefer))


def choose_keeper(candidates: Sequence[KeeperFacts], prefer: Sequence[str] = ()) -> int:
    """Index of the keeper among ``candidates``."""
    return keeper_order(candidates, prefer)[0]


REASONS = ("chosen by a reviewer", "under a --prefer folder", "more pixels", "older (date taken, else mtime)",
           "name without copy marks",
           "larger file", "path sorts first")


def keeper_reason(keeper: KeeperFacts, other: KeeperFacts, prefer: Sequence[str] = ()) -> str:
    """Why ``keeper`` is kept rather than ``other``: the first rule that tells them apart."""
    for reason, a, b in zip(REASONS, keeper_key(keeper, prefer), keeper_key(other, prefer)):
        if a != b:
            return reason
    return "identical facts"
