"""One query over a long list of values, one statement per chunk of them: SQLite binds a limited
number of parameters per statement (999 in older builds), and one statement per value would be
thousands of round trips. Every ``... IN (...)`` lookup of the db package goes through here.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence

CHUNK = 500  # values per statement: well under SQLite's 999 bound parameters


def select_in(conn: sqlite3.Connection, sql: str, values: Iterable, before: Sequence = (),
              after: Sequence = ()) -> Iterator[tuple]:
    """The rows of ``sql`` for all of ``values``. ``sql`` holds ``IN ({marks})`` once, filled with
    one chunk of values per statement; ``before`` / ``after`` are parameters bound before / after
    the chunk. Rows come in statement order (callers that need one order sort or key them)."""
    values = list(values)
    for start in range(0, len(values), CHUNK):
        chunk = values[start:start + CHUNK]
        yield from conn.execute(sql.replace("{marks}", ", ".join("?" * len(chunk))), [*before, *chunk, *after])
