"""The duplicate finder: groups of copies of one picture, and which copy to keep.

Above search/ (it loads the matrices through search.matrix_cache and uses search.modes),
beside cleanup/ (which moves the copies it names).

- finder: find_duplicates, the whole run, groups cut without chains
- rule: which pairs are copies (thresholds, the pHash rule, alignment)
- alignment: is one picture an edit of the other (keypoints, one transform)
- plain: pictures too plain for keypoints, told apart by tiny copies
- report: what the finder returns (groups, members, kinds)
- candidates: pairs of rows close enough to compare (blocked brute force or faiss)
- hashes: pairs by perceptual hash, in every orientation
- matrix_groups: rows of a matrix -> pairs within a rule's radius -> groups without chains
- groups: pairs -> groups (union-find), and the keeper of each group
- rows: rows read on demand from the loaded matrices
"""
from duplicates.finder import find_duplicates
from duplicates.rule import DEFAULT_THRESHOLDS

__all__ = ["DEFAULT_THRESHOLDS", "find_duplicates"]
