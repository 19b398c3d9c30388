"""A word's vector soaking in its context: the residual stream at one word, followed through the layers of
several sentences. It reads the same `Trace.resid` as the logit lens (explainer.lens) beside it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import ExplainerError
from .wordmaps import pca
from .words import EmptyWordError, WordError, _encode, word_ids


@dataclass(frozen=True, eq=False)
class WordInContext:
    sentence: str
    position: int                 # token index in the trace
    pieces: tuple[str, ...]       # the token(s) of the word in this sentence
    vectors: np.ndarray           # [L+1, D] residual stream at the word's (last) token


@dataclass(frozen=True, eq=False)
class ContextAnalysis:
    word: str
    contexts: tuple[WordInContext, ...]
    coords: np.ndarray                    # [C, L+1, 2] PCA trajectory of each context through the layers
    explained_variance_ratio: np.ndarray  # [2]
    cosine: np.ndarray                    # [L+1, C, C] cosine between contexts at each layer boundary
    centered: bool                        # each layer's mean over all tokens of the sentences removed first
    pairs: tuple[tuple[int, int], ...] = field(default=())

    @property
    def n_points(self) -> int:
        return self.coords.shape[1]

    @property
    def same_start(self) -> bool:
        """Whether the followed word is the same token in every sentence (its last piece, whose vector is
        followed), so that every trajectory starts at the same embedding row."""
        return len({c.pieces[-1] for c in self.contexts}) == 1

    def pair_cosines(self) -> np.ndarray:
        """Cosine of each pair of contexts at each layer.  # [L+1, P]"""
        return np.stack([self.cosine[:, i, j] for i, j in self.pairs], axis=1) if self.pairs else \
            np.zeros((self.cosine.shape[0], 0))


def _token_spans(lm, tr) -> list[tuple[int, int]] | None:
    """Character span of each token of the trace in `tr.text` (None when the tokenizer cannot say)."""
    try:
        enc = lm.tokenizer(tr.text, add_special_tokens=True, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):
        return None
    ids, offs = list(enc["input_ids"]), list(enc["offset_mapping"])
    shift = len(ids) - tr.n_tokens
    if shift < 0 or [int(i) for i in ids[shift:]] != [int(i) for i in tr.token_ids]:
        return None
    return [(int(a), int(b)) for a, b in offs[shift:]]


def find_word(lm, tr, word: str) -> tuple[int, tuple[str, ...]]:
    """Token position of the first whole-word occurrence of `word` (any case) in the trace's text:
    the last token of the word, which has seen all of its pieces. Returns (position, pieces)."""
    w = " ".join(str(word or "").split())
    if not w:
        raise EmptyWordError("The word to follow is empty.", "Type a word that appears in every sentence, e.g. bank.")
    matches = list(re.finditer(rf"(?<!\w){re.escape(w)}(?!\w)", tr.text, flags=re.IGNORECASE))
    spans = _token_spans(lm, tr)
    if spans is not None:
        for m in matches:
            hit = [t for t, (a, b) in enumerate(spans) if b > a and a < m.end() and b > m.start()]
            if hit:
                return hit[-1], tuple(tr.tokens[t] for t in hit)
    else:  # no offsets: look for the word's own tokens in the trace
        for ids in (word_ids(lm, w), _encode(lm.tokenizer, w), _encode(lm.tokenizer, w.capitalize())):
            n = len(ids)
            for t in range(tr.n_tokens - n + 1):
                if [int(i) for i in tr.token_ids[t:t + n]] == ids:
                    return t + n - 1, tuple(tr.tokens[t:t + n])
    short = tr.text if len(tr.text) < 70 else tr.text[:67] + "…"
    raise WordError(f"“{w}” does not appear in the sentence “{short}”"
                    + (" (or only in the part cut off by the token limit)." if tr.truncated else "."),
                    "Use the word in every sentence, as a whole word.")


def in_context(lm, traces: Sequence, word: str, centered: bool = False) -> ContextAnalysis:
    """Follow `word` through the layers of several sentences (one Trace each).

    For each sentence, the residual stream at the word's token gives one vector per layer boundary
    (L+1 points: the embedding, then the output of every block). With `centered`, the mean over all
    tokens of all the sentences at that layer is subtracted first (it removes a large part shared by
    every token, so the differences between contexts show more clearly). Vectors are then scaled to
    length 1 (only direction matters: the next block normalises its input) for a 2-D PCA of all
    points together, and cosines between contexts are taken at each layer.
    """
    if len(traces) < 2:
        raise ExplainerError("Comparing contexts needs at least two sentences.", "Add another sentence.")
    ctx = []
    for tr in traces:
        pos, pieces = find_word(lm, tr, word)
        ctx.append(WordInContext(sentence=tr.text, position=pos, pieces=pieces,
                                 vectors=np.asarray(tr.resid[:, pos, :], np.float64)))  # [L+1, D]
    x = np.stack([c.vectors for c in ctx])                            # [C, L+1, D]
    if centered:
        # the first token of a sentence carries huge "attention sink" values; leave it out of the mean
        allv = np.concatenate([np.asarray(tr.resid[:, 1:] if tr.n_tokens > 1 else tr.resid, np.float64)
                               for tr in traces], axis=1)             # [L+1, N, D]
        x = x - allv.mean(axis=1)[None]                               # [C, L+1, D]
    n = np.linalg.norm(x, axis=-1, keepdims=True)                     # [C, L+1, 1]
    u = x / np.maximum(n, 1e-12)                                      # [C, L+1, D]
    cos = np.clip(np.einsum("ild,jld->lij", u, u), -1.0, 1.0)         # [L+1, C, C]
    c, lp1, d = u.shape
    p = pca(u.reshape(c * lp1, d), n_components=2)
    coords = p.coords.reshape(c, lp1, -1)                             # [C, L+1, 2]
    if coords.shape[-1] < 2:
        coords = np.concatenate([coords, np.zeros((c, lp1, 2 - coords.shape[-1]))], axis=-1)
    evr = np.pad(p.explained_variance_ratio, (0, 2 - p.explained_variance_ratio.size))
    pairs = tuple((i, j) for i in range(c) for j in range(i + 1, c))
    return ContextAnalysis(word=" ".join(word.split()), contexts=tuple(ctx), coords=coords,
                           explained_variance_ratio=evr, cosine=cos, centered=centered, pairs=pairs)


def first_token_ratio(resid_norm: np.ndarray) -> tuple[float, int]:
    """How much longer the first token's residual vector is than the others' median, at the row where the
    gap is largest: (ratio, row). resid_norm: [L+1, T] with T ≥ 2 (LensResult.resid_norm)."""
    norm = np.asarray(resid_norm, np.float64)
    if norm.shape[1] < 2:
        raise ExplainerError("Comparing the first token with the others needs at least two tokens.",
                             "Type a longer prompt.")
    ratio = norm[:, 0] / np.maximum(np.median(norm[:, 1:], axis=1), 1e-12)   # [L+1]
    row = int(np.argmax(ratio))
    return float(ratio[row]), row


def embedding_echo(lens_ids: np.ndarray, token_ids) -> int:
    """At how many positions the lens's bottom row (the raw embeddings read through the unembedding) guesses
    the input token itself. lens_ids: LensResult.ids [L+1, T, k]; token_ids: the trace's [T]."""
    return int((np.asarray(lens_ids)[0, :, 0] == np.asarray(token_ids)).sum())


def median_norms(resid_norm: np.ndarray) -> np.ndarray:
    """The median length of the residual vectors at each layer boundary, the first token left out when there
    are others (it is often an outlier).  # [L+1]"""
    n = np.asarray(resid_norm, np.float64)
    return np.median(n[:, 1:] if n.shape[1] > 1 else n, axis=1)
