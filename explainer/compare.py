"""Compare mode: two prompts side by side, aligned, with the differences worked out (no Streamlit).

A second prompt (the link's `compare`) is traced like the first, through the same cached, budgeted path, so
each side is exactly its own trace; this module only lines the two up:
- `next_token_change`: the next-token distributions after each prompt, on the union of both top lists, with
  each token's probability change;
- `attention_difference`: one head's two patterns, cell by cell, when the two prompts have the same number of
  tokens (else None: the positions do not line up);
- `aligned_position`: where a position of the first prompt sits in the second (the last token stays the last);
- `vector_change`: how far a vector at a token turned and grew between the prompts (the model map);
- `align_analogy`: one analogy in two vector spaces (the model's input embeddings and GloVe, or two models),
  each answer's rank in both (`lm_space`, `glove_space` give the sides);
- `pair_prompt`: a starting second prompt for a first one (he ↔ she, his ↔ her, ...), the issue's
  "The doctor said that he" / "…she".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import glove, vectors
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


# -- one analogy in two vector spaces -------------------------------------------------------------------

def word_key(text: str) -> str:
    """A token or word as a plain word, to line two spaces up: " Queen", "queen" and "QUEEN" are "queen"."""
    return text.strip().lower()


@dataclass(frozen=True, eq=False)
class Space:
    """One side of an analogy compare: the cosine of every row of its matrix with its computed point (rows left
    out of its ranking: -inf), its own best answers, and the rows a plain word can be there."""

    label: str
    scores: np.ndarray                       # [V] cosine with the computed point; -inf: left out
    top: tuple[str, ...]                     # its own answers as texts, best first
    rows: Callable[[str], Sequence[int]]     # a plain word -> the rows that spell it there (none: it has no row)


def lm_space(lm, res: vectors.AnalogyResult, label: str | None = None) -> Space:
    """A model's side: every token's cosine with the analogy's computed point, its inputs left out as `res` left
    them out; a word is any single token spelling it (with or without the leading space, any case)."""
    mat = vectors.embedding_matrix(lm)
    scores = vectors.cosines(mat.weight, mat.norms, res.target, res.excluded)
    listed: dict[str, set[int]] = {}        # its answers' own rows too (a token its text does not encode back to)
    for n in res.neighbours:
        listed.setdefault(word_key(n.text), set()).add(n.id)
    return Space(label or lm.label, scores, tuple(n.text for n in res.neighbours),
                 lambda w: sorted(vectors.variant_ids(lm, w) | listed.get(w, set())))


def glove_space(g: glove.Glove, ga: glove.GloveAnalogy) -> Space:
    """GloVe's side: every word's cosine with its computed point, the input words left out; one row a word."""
    excluded = [g.index[w] for w in (*ga.positive, *ga.negative)]
    scores = vectors.cosines(g.vectors, g.norms, ga.target, excluded)
    return Space(glove.LABEL, scores, tuple(n.text for n in ga.neighbours),
                 lambda w: [g.index[w]] if w in g.index else [])


@dataclass(frozen=True)
class Placing:
    rank: int        # 1 = its best answer; 0 = the word has no row there, or only rows left out
    cosine: float    # nan when rank is 0


def placing(space: Space, word: str) -> Placing:
    """Where a plain word ranks in a space: its best-scoring row, counted against every row not left out."""
    rows = [int(r) for r in space.rows(word)]
    if not rows:
        return Placing(0, float("nan"))
    best = float(space.scores[rows].max())
    if not np.isfinite(best):
        return Placing(0, float("nan"))
    return Placing(1 + int(np.count_nonzero(space.scores > best)), best)


@dataclass(frozen=True)
class AnalogyAlignment:
    """The answers of both spaces' top lists, as plain words, with each word's placing in both."""

    label_a: str
    label_b: str
    words: tuple[str, ...]
    a: tuple[Placing, ...]
    b: tuple[Placing, ...]

    def both(self, k: int) -> tuple[str, ...]:
        """The words in both top-k lists."""
        return tuple(w for w, pa, pb in zip(self.words, self.a, self.b) if 0 < pa.rank <= k and 0 < pb.rank <= k)


def align_analogy(a: Space, b: Space, k: int = 10) -> AnalogyAlignment:
    """The first `k` distinct plain words of each side's answers, each placed in both spaces, ordered by its
    better rank (ties: its rank in a)."""
    words: list[str] = []
    for side in (a, b):
        own = list(dict.fromkeys(w for w in map(word_key, side.top) if w))[:k]
        words += [w for w in own if w not in words]
    pa = [placing(a, w) for w in words]
    pb = [placing(b, w) for w in words]
    big = 1 << 62

    def order(i: int) -> tuple[int, int]:
        ra, rb = pa[i].rank or big, pb[i].rank or big
        return (min(ra, rb), ra)

    idx = sorted(range(len(words)), key=order)
    return AnalogyAlignment(a.label, b.label, tuple(words[i] for i in idx), tuple(pa[i] for i in idx),
                            tuple(pb[i] for i in idx))
