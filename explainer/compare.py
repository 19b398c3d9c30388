"""Compare mode: two prompts side by side, aligned, with the differences worked out (no Streamlit).

A second prompt (the link's `compare`) is traced like the first, through the same cached, budgeted path, so
each side is exactly its own trace; this module only lines the two up:
- `next_token_change`: the next-token distributions after each prompt, on the union of both top lists, with
  each token's probability change;
- `attention_difference`: one head's two patterns, cell by cell, when the two prompts have the same number of
  tokens (else None: the positions do not line up);
- `aligned_position`: where a position of the first prompt sits in the second (the last token stays the last);
- `vector_change`: how far a vector at a token turned and grew between the prompts (the model map);
- `pair_prompt`: a starting second prompt for a first one (he ↔ she, his ↔ her, ...), the issue's
  "The doctor said that he" / "…she".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .sampling import Distribution

# Word swaps for a starting second prompt, both ways; whole words only, case kept.
SWAPS = {"he": "she", "his": "her", "him": "her", "man": "woman", "men": "women", "king": "queen",
         "boy": "girl", "father": "mother", "son": "daughter", "brother": "sister", "mr": "mrs"}
_BACK = {v: k for k, v in SWAPS.items() if v != "her"} | {"her": "his"}
_WORD = re.compile(r"\b(" + "|".join(sorted({*SWAPS, *_BACK}, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def pair_prompt(text: str) -> str:
    """The prompt with its gendered words swapped (the last one only: "The doctor said that he" → "…she"), or
    the prompt itself when it has none (the user edits it)."""
    hits = list(_WORD.finditer(text))
    if not hits:
        return text
    m = hits[-1]
    word = m.group(0)
    low = word.lower()
    swap = SWAPS.get(low) or _BACK[low]
    if word.isupper() and len(word) > 1:
        swap = swap.upper()
    elif word[0].isupper():
        swap = swap[0].upper() + swap[1:]
    return text[:m.start()] + swap + text[m.end():]


@dataclass(frozen=True)
class Change:
    """Tokens of both top lists, largest change first: ids, each side's probability (after the same settings),
    and the change (b − a)."""

    ids: np.ndarray        # [n] int64
    p_a: np.ndarray        # [n] float64
    p_b: np.ndarray        # [n] float64

    @property
    def delta(self) -> np.ndarray:
        return self.p_b - self.p_a


def next_token_change(a: Distribution, b: Distribution, k: int = 10) -> Change:
    """The union of each distribution's top `k` tokens, less those the filters removed after both prompts,
    ordered by how much their probability (the one a draw uses) changes from a to b, largest first (ties: the
    id, smaller first)."""
    if a.probs.shape != b.probs.shape:
        raise ValueError(f"distributions over different vocabularies ({a.probs.size:,} and {b.probs.size:,})")
    ids = np.union1d(a.top(k), b.top(k)).astype(np.int64)
    ids = ids[(a.probs[ids] > 0) | (b.probs[ids] > 0)]          # a token no draw can take after either: left out
    pa, pb = a.probs[ids].astype(np.float64), b.probs[ids].astype(np.float64)
    order = np.lexsort((ids, -np.abs(pb - pa)))
    return Change(ids[order], pa[order], pb[order])


def attention_difference(pattern_a: np.ndarray, pattern_b: np.ndarray) -> np.ndarray | None:
    """b − a for one head's two [T, T] patterns (the future NaN), or None when T differs."""
    a, b = np.asarray(pattern_a, dtype=np.float64), np.asarray(pattern_b, dtype=np.float64)
    if a.shape != b.shape:
        return None
    T = a.shape[0]
    return np.where(np.tril(np.ones((T, T), dtype=bool)), b - a, np.nan)


def largest_change(diff: np.ndarray) -> tuple[int, int]:
    """(query, key) of the cell of an attention difference that changed most (either way)."""
    q, k = np.unravel_index(np.nanargmax(np.abs(diff)), diff.shape)
    return int(q), int(k)


def differing_positions(tokens_a, tokens_b) -> list[int]:
    """Positions where two prompts of the same length have different tokens."""
    return [i for i, (x, y) in enumerate(zip(tokens_a, tokens_b)) if x != y]


@dataclass(frozen=True)
class VectorChange:
    cosine: float          # cosine similarity of the two vectors (1: the same direction)
    norm_a: float
    norm_b: float


def vector_change(a: np.ndarray, b: np.ndarray) -> VectorChange | None:
    """How one part's vector at a token differs between the two prompts (None: different shapes, or no vector)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        return None
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = float(a @ b / (na * nb)) if na and nb else float("nan")
    return VectorChange(cos, na, nb)


def aligned_position(position: int, n_a: int, n_b: int) -> int:
    """Position `position` of a prompt of n_a tokens in one of n_b: the last stays the last, others keep their
    index where the second prompt has it (else its last)."""
    if position == n_a - 1 or position >= n_b:
        return n_b - 1
    return position
