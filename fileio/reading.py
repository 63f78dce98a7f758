"""Reading back what fileio wrote, where a missing or damaged file means "not there"."""
from __future__ import annotations

import json


def read_json(path):
    """The JSON value in ``path``, or None if the file is missing, unreadable or not JSON
    (a cache's stamp or sidecar that does not open is treated as absent, never trusted)."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
