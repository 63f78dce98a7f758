"""Pictures too plain for keypoints (gradients, skies, flat drawings), told apart at a glance by
their tiny colour copies (features.keypoints.TINY): never called copies this way, only kept apart
when their layouts of light or colour plainly disagree (duplicates.alignment.verdict).
"""
from __future__ import annotations

import numpy as np

# Plain pictures (too few keypoints): tiny copies whose light correlates below PLAIN_LIGHT, or, both
# colourful (channels COLOURFUL apart on average, of 255), whose colours correlate below PLAIN_COLOUR,
# are apart. Among the copies set's plain pairs no upright copy fell below either (lowest: 0.67
# light, 0.78 colour; measured on 240-px copies); the demo's colour wheel quarters did (0.10 light;
# mirrored, 0.58 colour).
PLAIN_LIGHT = 0.5
PLAIN_COLOUR = 0.7
COLOURFUL = 12.0


def plainly_different(a: np.ndarray, b: np.ndarray, any_orientation: bool = False) -> bool:
    """True when two tiny colour copies' layouts of light (or, both being colourful, of colour)
    disagree at a glance. False says nothing: gradients and skies also look alike when they are
    different pictures, so the embeddings decide those."""
    variants = _orientations(b) if any_orientation else [b]
    if max(_correlation(_luma(a), _luma(v)) for v in variants) < PLAIN_LIGHT:
        return True
    return _colourful(a) and _colourful(b) and max(_correlation(a, v) for v in variants) < PLAIN_COLOUR


def _orientations(tiny: np.ndarray) -> list[np.ndarray]:
    """The 8 turns and mirrors of a square tiny copy (a squashed picture turns with its squash)."""
    return [np.rot90(t, k) for t in (tiny, tiny[:, ::-1]) for k in range(4)]


def _luma(tiny: np.ndarray) -> np.ndarray:
    return tiny.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _colourful(tiny: np.ndarray) -> bool:
    spread = tiny.max(axis=2).astype(np.float32) - tiny.min(axis=2)
    return float(spread.mean()) >= COLOURFUL


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of one shape; 1 when either is flat (nothing to compare)."""
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms > 1e-3 else 1.0
