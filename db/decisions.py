"""A reviewer's duplicate decisions: "not duplicates" and "keep this one instead".

Why content hashes: a decision is about pictures, not rows or paths. A rescan gives a moved
or renamed file a new row, main.py --reset-features re-extracts, --move-to and --undo take
rows out and put them back; the bytes, and so the hash, stay. Every change bumps the DB
generation so the web app's cached groups are computed again.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from itertools import combinations
from typing import NamedTuple

from db.batched import select_in
from db.meta import bump_generation

APART, KEEP = "apart", "keep"


class Decisions(NamedTuple):
    apart: frozenset  # {(hash, hash)} with the smaller first: never in one group
    keep: frozenset  # {hash}: the keeper of whatever group it is in
    apart_hashes: frozenset = frozenset()  # every hash in ``apart``


class Decision(NamedTuple):
    decision: str
    a: bytes
    b: bytes | None
    decided_ns: int


def load_decisions(conn: sqlite3.Connection) -> Decisions:
    apart, keep = set(), set()
    for decision, a, b in conn.execute("SELECT decision, a, b FROM duplicate_decisions"):
        if decision == APART:
            apart.add((bytes(a), bytes(b)))
        elif decision == KEEP:
            keep.add(bytes(a))
    return Decisions(frozenset(apart), frozenset(keep), frozenset(h for pair in apart for h in pair))


def list_decisions(conn: sqlite3.Connection) -> list[Decision]:
    return [Decision(d, bytes(a), bytes(b) or None, t) for d, a, b, t in conn.execute(
        "SELECT decision, a, b, decided_ns FROM duplicate_decisions ORDER BY decided_ns, decision, a, b")]


def mark_apart(conn: sqlite3.Connection, hashes: Iterable[bytes], others: Iterable[bytes] | None = None) -> int:
    """"Not duplicates": every pair of ``hashes`` (a whole group), or with ``others`` every pair
    of one of ``hashes`` and one of ``others`` (one member against the rest). Returns the pairs stored."""
    hashes = sorted({bytes(h) for h in hashes})
    if others is None:
        pairs = list(combinations(hashes, 2))
    else:
        pairs = sorted({tuple(sorted((h, bytes(o)))) for h in hashes for o in others if bytes(o) != h})
    now = time.time_ns()
    with conn:
        conn.executemany("INSERT OR REPLACE INTO duplicate_decisions(decision, a, b, decided_ns) VALUES (?, ?, ?, ?)",
                         [(APART, a, b, now) for a, b in pairs])
        bump_generation(conn)
    return len(pairs)


def mark_keep(conn: sqlite3.Connection, chosen: bytes, group: Iterable[bytes] = ()) -> None:
    """"Keep this one instead": ``chosen`` is the keeper; the other members of its ``group``
    lose a keep decision they had (one keeper per group)."""
    with conn:
        conn.executemany("DELETE FROM duplicate_decisions WHERE decision = ? AND a = ?",
                         [(KEEP, bytes(h)) for h in group if bytes(h) != bytes(chosen)])
        conn.execute("INSERT OR REPLACE INTO duplicate_decisions(decision, a, b, decided_ns) VALUES (?, ?, x'', ?)",
                     (KEEP, bytes(chosen), time.time_ns()))
        bump_generation(conn)


def forget_decisions(conn: sqlite3.Connection) -> int:
    """Every decision gone; returns how many there were."""
    with conn:
        count = conn.execute("DELETE FROM duplicate_decisions").rowcount
        if count:
            bump_generation(conn)
    return count


def paths_by_hash(conn: sqlite3.Connection, hashes: Iterable[bytes]) -> dict[bytes, list[str]]:
    """{content hash: paths of the images that have it now} (relative to the dataset root)."""
    found: dict[bytes, list[str]] = {}
    for digest, path in select_in(conn, "SELECT content_hash, path FROM images WHERE content_hash IN ({marks})"
                                        " ORDER BY path", sorted({bytes(h) for h in hashes})):
        found.setdefault(bytes(digest), []).append(path)
    return found
