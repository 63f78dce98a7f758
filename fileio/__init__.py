"""Writing files so that a crash, a kill or a full disk never leaves a half-written file in place."""
from fileio.atomic import atomic_path, atomic_write, remove_dead_temporaries, write_with

__all__ = ["atomic_path", "atomic_write", "remove_dead_temporaries", "write_with"]
