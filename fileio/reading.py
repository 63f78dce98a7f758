"""Reading back: a JSON file where missing or damaged means "not there", and whether a folder is empty."""
from __future__ import annotations

import json
import os


def read_json(path):
    """The JSON value in ``path``, or None if the file is missing, unreadable or not JSON
    (a cache's stamp or sidecar that does not open is treated as absent, never trusted)."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def is_empty_folder(folder) -> bool:
    """True if ``folder`` has no entries. OSError if it cannot be listed. An empty mount point
    looks exactly like a collection whose files were all deleted: the scan and the extraction
    both ask this before they trust a folder (generator.py, extraction.local)."""
    with os.scandir(folder) as entries:
        return next(entries, None) is None
