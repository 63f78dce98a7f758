"""Writing files so that a crash, a kill or a full disk never leaves a half-written file in place,
and reading back a JSON file that may be missing or damaged, or whether a folder is empty."""
from fileio.atomic import atomic_path, atomic_write, remove_dead_temporaries, write_with
from fileio.reading import is_empty_folder, read_json

__all__ = ["atomic_path", "atomic_write", "is_empty_folder", "read_json", "remove_dead_temporaries", "write_with"]
