"""One-line errors instead of tracebacks, and the logging set-up, for every script."""
import logging
import os
import sqlite3
import sys
from collections.abc import Callable

from config import InvalidInputError
from db.errors import DatabaseError
from extraction.errors import ExtractionError
from features.errors import WeightsError

# SQLite failures that are the storage's, not the code's: a one-line message, not a traceback.
STORAGE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY",
                  "SQLITE_CORRUPT", "SQLITE_CANTOPEN", "SQLITE_NOTADB")


class UsageError(Exception):
    """A problem with what the user asked for (missing folder, bad file); exit status 2."""


# The project's own errors: their messages are one line meant for a person. Anything else,
# a plain ValueError included, is a bug and keeps its traceback.
EXPECTED_ERRORS = (UsageError, InvalidInputError, DatabaseError, ExtractionError, WeightsError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


def run(main: Callable[[], int | None]) -> None:
    """Call ``main()``; expected failures become one line on stderr and a non-zero exit."""
    try:
        sys.exit(main() or 0)
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except sqlite3.Error as exc:
        if not (getattr(exc, "sqlite_errorname", None) or "").startswith(STORAGE_ERRORS):
            raise
        print(f"error: the database failed ({exc}); all finished work is saved: "
              f"fix the cause (disk space, permissions) and run the same command again", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # the reader went away (`... | head`): nothing left to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail again
        sys.exit(1)
    except KeyboardInterrupt:  # every write is one transaction: stopping loses nothing committed
        print("interrupted: run the same command again to finish", file=sys.stderr)
        sys.exit(130)
