"""More like this / less like this: one query row from the pictures marked + and those marked −.

The query becomes the + pictures (the original query counts as one of them), pushed away from
the − pictures. One rule per kind of feature:

- unit vectors (embeddings): normalise(mean(+) − λ·mean(−)), every row unit-length first;
- histograms (rgb): max(mean(+) − λ·mean(−), 0), rescaled to the mass of mean(+): a histogram
  cannot hold negative counts, so the colours of the − pictures are taken out of the query's
  and what is left keeps its proportions;
- hashes: a vote per bit. Each + hash votes for its bit's value, each − hash votes against its
  own with weight λ; a bit is set where the votes for 1 outweigh those for 0 (mean(+) −
  λ·mean(−) > (1 − λ)/2 on the bits), a tie keeps the + majority. With no − hash this is the
  majority vote that combines several queries (features.hashes.majority_bits).

λ (WEIGHTS, one per rule) was chosen on the quality sets by ``python -m bench.feedback`` (one
round of + and − from the top 10 of every labelled query, P@10 before and after, for several λ).
"""
from __future__ import annotations

import numpy as np

from search.metrics import unit_rows

# λ per rule, the best of 0, 0.25, 0.5, 0.75, 1 by bench.feedback (EfficientNet-Lite0, Tux Paint labelled set,
# one round from the top 10): P@10 embeddings 0.714 -> 0.812, rgb 0.282 -> 0.407, phash 0.170 -> 0.272 (λ = 0:
# pushing hashes away from the − pictures did not help; the − ones are still left out of the results).
WEIGHTS = {"unit": 0.25, "histogram": 0.5, "bits": 0.0}


def _unit(positives, negatives, weight):
    pos = unit_rows(np.asarray(positives, dtype=np.float32)).mean(axis=0)
    if len(negatives):
        pos = pos - weight * unit_rows(np.asarray(negatives, dtype=np.float32)).mean(axis=0)
    return unit_rows(pos[None, :])[0]


def _histogram(positives, negatives, weight):
    pos = np.asarray(positives, dtype=np.float32).mean(axis=0)
    if not len(negatives):
        return pos
    kept = np.maximum(pos - weight * np.asarray(negatives, dtype=np.float32).mean(axis=0), 0)
    total = kept.sum()
    return pos if total <= 0 else (kept * (pos.sum() / total)).astype(np.float32)


def _bits(positives, negatives, weight):
    pos = np.unpackbits(np.asarray(positives, dtype=np.uint8), axis=1).mean(axis=0)
    neg = np.unpackbits(np.asarray(negatives, dtype=np.uint8), axis=1).mean(axis=0) if len(negatives) else None
    score = pos * 2 - 1 if neg is None else (pos * 2 - 1) - weight * (neg * 2 - 1)
    bits = np.where(score == 0, pos * 2 > 1, score > 0)
    return np.packbits(bits.astype(np.uint8))


RULES = {"unit": _unit, "histogram": _histogram, "bits": _bits}


def kind_of(mode) -> str:
    """Which rule a Mode's rows follow."""
    return "bits" if mode.is_hash else "unit" if mode.unit_rows else "histogram"


def steered(mode, positives, negatives=(), weight: float | None = None) -> np.ndarray:
    """(1, d): the query row of a Mode from its + rows (at least one) and − rows; weight None: WEIGHTS'."""
    if not len(positives):
        raise ValueError("at least one picture must be marked + (the query itself counts)")
    kind = kind_of(mode)
    return RULES[kind](positives, negatives, WEIGHTS[kind] if weight is None else weight).reshape(1, -1)
