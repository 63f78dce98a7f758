"""The duplicate finder: groups of copies of one picture, and which copy to keep.

Above search/ (it loads the matrices through search.matrix_cache and uses search.modes),
beside cleanup/ (which moves the copies it names).

- finder: find_duplicates, the rules and thresholds, the whole run
- candidates: pairs of rows close enough to compare (blocked brute force or faiss)
- hashes: pairs by perceptual hash, in every orientation
- groups: pairs -> groups (union-find), and the keeper of each group
- rows: rows read on demand from the loaded matrices
"""
from duplicates.finder import DEFAULT_THRESHOLDS, find_duplicates

__all__ = ["DEFAULT_THRESHOLDS", "find_duplicates"]
