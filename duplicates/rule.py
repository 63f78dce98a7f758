"""Which pairs of pictures are copies: the measured thresholds, the pHash rule and the alignment.

The finder (duplicates.finder) searches pairs within a Rule's radius and cuts groups with it; the
benchmarks apply the same Rule to synthetic rows (bench/bench_duplicates.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from config import InvalidInputError
from duplicates.alignment import COPY, UNKNOWN, Aligner
from duplicates.candidates import Pairs
from duplicates.hashes import hamming, oriented_rows
from duplicates.rows import RowReader
from search.modes import MODES, get_mode

# Measured on the near-duplicate and look-alike sets (bench/quality_duplicates.py, docs/duplicates.md)
# with star groups, on the unit rows of the stored embeddings (whole-picture framing; not the
# centred search vectors, see find_duplicates). Without alignment 0.18 is the largest threshold
# whose pair precision stays >= 0.98 (0.981; recall 0.849); with it, 0.18 is the cut for pairs
# the keypoints cannot tell (ALIGN_REACH below).
DEFAULT_THRESHOLDS = {"cosine": 0.18, "hamming": 4}
THRESHOLD_RANGES = {"cosine": (0.0, 1.0), "hamming": (0, 16)}
# Embeddings mode also joins two images whose pHashes are within HASH_BITS of 64 bits while
# their embeddings stay within HASH_GUARD: heavy resizing, JPEG at quality 20 and greyscale
# move an embedding by up to 0.3-0.5, but leave the pHash (computed on grey pixels) nearly
# unchanged; the guard keeps flat, blank pictures with equal hashes apart. 7 bits rather
# than 8: the same recall here (duplicates.hashes.plan then probes 68 keys per row at 500k rows).
SUPPORT_HASH = "phash"
HASH_BITS = 7
HASH_GUARD = 0.5

# Pairs up to this cosine distance are aligned (duplicates.alignment): a copy turned by 5 degrees
# or captioned lies up to ~0.4 from its original; farther, the alignment finds few more copies.
ALIGN_REACH = 0.40
GUARD_CHUNK = 1 << 16  # pairs checked at once


def duplicate_metric(mode: str) -> str:
    """'cosine' for unit-vector modes, 'hamming' for hashes; a ValueError listing the valid
    modes for anything else (a colour histogram ignores layout: it cannot tell a copy)."""
    usable = [name for name, m in MODES.items() if m.is_hash or m.unit_rows]
    if mode not in usable:
        why = "it ignores layout, so it cannot tell copies from look-alikes" if mode in MODES else "unknown mode"
        raise InvalidInputError(f"mode {mode!r}: {why}; valid modes for duplicates: {', '.join(usable)}")
    return "hamming" if get_mode(mode).is_hash else "cosine"


def check_threshold(metric: str, threshold) -> float | int:
    """The metric's default for None; else the value, if it lies in the metric's range."""
    if threshold is None:
        return DEFAULT_THRESHOLDS[metric]
    low, high = THRESHOLD_RANGES[metric]
    integral = metric == "hamming"
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or \
            not (low <= threshold <= high) or (integral and float(threshold) != int(threshold)):
        kind = "a whole number of bits" if integral else "a cosine distance"
        raise InvalidInputError(f"threshold for {metric} must be {kind} from {low} to {high}, got {threshold!r}")
    return int(threshold) if integral else float(threshold)


@dataclass(frozen=True)
class Rule:
    """What counts as a copy: the distance cut, in embeddings mode the pHash rule, and with an
    aligner the keypoints' verdict on every pair within ``reach``.

    Without an aligner a pair is a copy when the cut or the pHash rule says so. With one, every
    pair within ``reach`` (or the pHash rule) is aligned (duplicates.alignment): COPY links it,
    APART keeps it apart, and UNKNOWN (too few keypoints) leaves it to the cut and the pHash rule."""
    metric: str  # "cosine" (unit rows) or "hamming" (packed hashes)
    threshold: float | int
    kind: str | None = None  # the hash mode, for "hamming"
    any_orientation: bool = False
    hash_bits: int = 0  # pHash bits for the pHash rule (0: off)
    reach: float = 0.0  # with an aligner: the cosine distance up to which pairs are aligned
    aligner: Aligner | None = field(default=None, compare=False, repr=False)

    @property
    def radius(self) -> float | int:
        """How far apart two rows may be and still be compared: pairs are searched within it."""
        return max(self.reach, self.threshold) if self.aligner is not None else self.threshold

    def compare(self, matrix: np.ndarray, hashes: np.ndarray | None, left: np.ndarray,
                right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(linked, distance) matrices of the cut and the pHash rule between rows ``left`` and rows
        ``right`` (a group's rows: small; or one row against many); no alignment."""
        linked, _, dist = self.measure(matrix, hashes, left, right)
        return linked, dist

    def measure(self, matrix, hashes, left, right) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(linked by the cut and pHash rule, within the radius, distance) between ``left`` and ``right``."""
        if self.metric == "hamming":
            dist = _hamming_matrix(np.asarray(matrix[left]), np.asarray(matrix[right]), self.kind,
                                   self.any_orientation)
            return dist <= self.threshold, dist <= self.radius, dist.astype(float)
        a = np.asarray(matrix[left], dtype=np.float32)
        b = a if left is right else np.asarray(matrix[right], dtype=np.float32)
        dist = np.maximum(1.0 - a @ b.T, 0.0)
        linked, within = dist <= self.threshold, dist <= self.radius
        if hashes is not None and self.hash_bits:
            near = _hamming_matrix(np.asarray(hashes[left]), np.asarray(hashes[right]), SUPPORT_HASH,
                                   self.any_orientation) <= self.hash_bits
            near &= dist <= HASH_GUARD
            linked |= near
            within |= near
        return linked, within, dist

    def confirm(self, row: int, others: np.ndarray, linked: np.ndarray, within: np.ndarray) -> np.ndarray:
        """Matrix row ``row`` against rows ``others``: the links after alignment (``linked`` and
        ``within`` from measure). Without an aligner, ``linked``."""
        if self.aligner is None:
            return linked
        out = linked.copy()
        ask = np.flatnonzero(within)
        if len(ask):
            said = self.aligner.verdicts(int(row), np.asarray(others)[ask])
            out[ask] = np.where(said == UNKNOWN, linked[ask], said == COPY)
        return out

    def linked(self, matrix: np.ndarray, hashes: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
        """The boolean matrix of the cut and pHash rule among ``rows`` (no alignment)."""
        return self.compare(matrix, hashes, rows, rows)[0]


def guarded(unit: np.ndarray, block: Pairs, guard: float) -> Pairs:
    """The pairs of ``block`` whose cosine distance is within ``guard``, with that distance."""
    dist = np.empty(len(block.left))
    with RowReader(unit) as reader:
        for start in range(0, len(dist), GUARD_CHUNK):
            a, b = block.left[start:start + GUARD_CHUNK], block.right[start:start + GUARD_CHUNK]
            sims = np.einsum("ij,ij->i", reader.take(a).astype(np.float32), reader.take(b).astype(np.float32))
            dist[start:start + len(a)] = 1.0 - sims
    keep = dist <= guard
    return Pairs(block.left[keep], block.right[keep], np.maximum(dist[keep], 0.0))


def _hamming_matrix(left, right, kind, any_orientation):
    variants = oriented_rows(left, kind) if any_orientation else [left]
    return np.min([hamming(v[:, None, :], right[None, :, :]) for v in variants], axis=0)



