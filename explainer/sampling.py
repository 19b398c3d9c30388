"""Turning logits into a next-token distribution."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries, largest first.  # [k]"""
    k = max(1, min(int(k), probs.shape[-1]))
    idx = np.argpartition(-probs, k - 1)[:k]
    return idx[np.argsort(-probs[idx], kind="stable")]
