"""The feature matrices the search runs on, loaded once per process and cached beside the DB.

The API: ``load(conn, mode)`` -> Loaded (the matrix, its ids and paths); ``publish`` and
``publish_when_due`` (the extraction brings the cache up to date for query processes);
``forget`` (drop what this process holds); ``cache_root`` (the folder the cache lives in).

- loader: what to load, from memory, the disk cache or SQLite, in one snapshot
- folders: the cache's folders on disk, written atomically, found by their stamps, tidied
- column_reader: a mode's column streamed out of SQLite as search rows
"""
from search.matrix_cache.folders import cache_root
from search.matrix_cache.loader import Loaded, forget, load, publish, publish_when_due

__all__ = ["Loaded", "cache_root", "forget", "load", "publish", "publish_when_due"]
