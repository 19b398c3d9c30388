"""Turning logits into a next-token distribution: temperature, top-k, top-p, sampling, entropy.

`probabilities` follows the order Hugging Face transformers uses when it samples
(`TemperatureLogitsWarper` -> `TopKLogitsWarper` -> `TopPLogitsWarper` -> softmax) and keeps what
each stage did, so a page can show which tokens every filter removed. Everything is numpy in
float64; the model is never called here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import ExplainerError
from .trace import readonly


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


def entropy(probs: np.ndarray, base: float = 2.0) -> float:
    """Shannon entropy of a distribution, in bits by default (0 * log 0 = 0)."""
    p = np.asarray(probs, dtype=np.float64)
    nz = p[p > 0]
    return max(0.0, float(-(nz * np.log(nz)).sum() / math.log(base)))  # never -0.0


def kl_divergence(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """KL(p ‖ q): how far distribution q is from p, in bits by default (0 = identical). Terms where
    p is 0 count 0; a q of 0 where p is not is floored at 1e-30 rather than giving infinity."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    nz = p > 0
    return max(0.0, float((p[nz] * (np.log(p[nz]) - np.log(np.maximum(q[nz], 1e-30)))).sum() / math.log(base)))


# -- settings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """How to turn logits into a distribution. top_k None/0 and top_p None/1 mean "off";
    temperature 0 means greedy (always the most likely token)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None                # None/0 = off
    repetition_penalty: float | None = None   # None/1 = off

    def checked(self, vocab_size: int) -> tuple[Settings, tuple[str, ...]]:
        """Validated, normalised settings plus notes for the user. Raises ExplainerError on nonsense."""
        notes: list[str] = []
        t = float(self.temperature)
        if not math.isfinite(t) or t < 0:
            raise ExplainerError(f"Temperature must be 0 or more (got {self.temperature}).",
                                 "Use 0 for greedy, 1 for the model's own distribution, higher for more random.")
        k = self.top_k
        if k is not None:
            if isinstance(k, float) and not k.is_integer():
                raise ExplainerError(f"top-k must be a whole number (got {k}).", "Use 0 to switch top-k off.")
            k = int(k)
            if k < 0:
                raise ExplainerError(f"top-k must be 0 (off) or more (got {k}).", "Use 0 to switch top-k off.")
            if k == 0:
                k = None
            elif k >= vocab_size:
                if k > vocab_size:
                    notes.append(f"top-k {k:,} is larger than the vocabulary ({vocab_size:,} tokens), "
                                 "so it keeps every token.")
                k = None
        p = self.top_p
        if p is not None:
            p = float(p)
            if not math.isfinite(p) or p < 0 or p > 1:
                raise ExplainerError(f"top-p must be between 0 and 1 (got {self.top_p}).",
                                     "Use 1 to switch top-p off; 0 keeps only the most likely token.")
            if p >= 1:
                p = None
            elif p == 0:
                notes.append("top-p 0 keeps only the most likely token (like greedy).")
        m = self.min_p
        if m is not None:
            m = float(m)
            if not math.isfinite(m) or m < 0 or m > 1:
                raise ExplainerError(f"min-p must be between 0 and 1 (got {self.min_p}).",
                                     "Use 0 to switch min-p off; 0.1 keeps tokens at least a tenth as likely as "
                                     "the most likely one.")
            if m == 0:
                m = None
        r = self.repetition_penalty
        if r is not None:
            r = float(r)
            if not math.isfinite(r) or r <= 0:
                raise ExplainerError(f"The repetition penalty must be more than 0 (got {self.repetition_penalty}).",
                                     "Use 1 to switch it off; 1.2 makes tokens already in the text less likely.")
            if r == 1:
                r = None
        if t == 0:
            notes.append("Temperature 0 means greedy: the most likely token always wins.")
        return Settings(t, k, p, m, r), tuple(notes)


# -- the distribution ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Distribution:
    """The next-token distribution and what each stage did to it. Arrays are [V] float64 / bool."""

    logits: np.ndarray          # [V] raw logits from the model
    tempered: np.ndarray        # [V] softmax(logits / T): after temperature only (one-hot when T = 0)
    after_top_k: np.ndarray     # [V] renormalised over the tokens top-k kept
    probs: np.ndarray           # [V] final: renormalised over the tokens both filters kept
    removed_top_k: np.ndarray   # [V] bool: cut by top-k
    removed_top_p: np.ndarray   # [V] bool: survived top-k, cut by top-p
    removed_greedy: np.ndarray  # [V] bool: cut because temperature 0 keeps only the top token
    settings: Settings          # normalised (top-k beyond the vocabulary -> None, top-p 1 -> None)
    notes: tuple[str, ...] = field(default=())
    removed_min_p: np.ndarray | None = None  # [V] bool: survived top-k and top-p, cut by min-p (None: min-p off)
    penalised: np.ndarray | None = None      # [V] the logits after the repetition penalty (None: no penalty);
                                             # temperature and the filters work on these

    @property
    def vocab_size(self) -> int:
        return self.logits.shape[-1]

    @property
    def greedy(self) -> bool:
        return self.settings.temperature == 0

    @cached_property
    def kept(self) -> np.ndarray:
        """[V] bool: tokens that can be sampled."""
        return self.probs > 0

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def n_after_top_k(self) -> int:
        return int((~self.removed_top_k).sum())

    @cached_property
    def entropy(self) -> float:
        """Entropy of the final distribution in bits: 0 = certain, log2(V) = uniform."""
        return entropy(self.probs)

    @property
    def mass_cut(self) -> float:
        """Probability (after temperature) of every token the filters removed; the survivors share it."""
        return float(1.0 - self.tempered[self.kept].sum())

    @cached_property
    def entropy_model(self) -> float:
        """Entropy of the model's own distribution (temperature 1, no filters), in bits."""
        return entropy(softmax(self.logits))

    def top(self, n: int) -> np.ndarray:
        """The n tokens with the largest logits, largest first.  # [n]"""
        return top_k(self.logits, n)

    def fate(self, token_id: int) -> str:
        """'kept', 'top-k', 'top-p' or 'greedy': what happened to one token."""
        if self.removed_greedy[token_id]:
            return "greedy"
        if self.removed_top_k[token_id]:
            return "top-k"
        if self.removed_top_p[token_id]:
            return "top-p"
        if self.removed_min_p is not None and self.removed_min_p[token_id]:
            return "min-p"
        return "kept"

    @property
    def n_penalised(self) -> int:
        """How many tokens the repetition penalty changed (0 when it is off)."""
        return 0 if self.penalised is None else int((self.penalised != self.logits).sum())

    @property
    def argmax(self) -> int:
        return int(np.argmax(self.probs))


def _check_logits(logits) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ExplainerError(f"Expected one row of logits, got shape {x.shape}.", "Pass the logits of one position.")
    if np.isnan(x).any():
        raise ExplainerError("The logits contain NaN.", "The model produced invalid numbers; try another prompt.")
    if np.isposinf(x).any():
        raise ExplainerError("The logits contain +inf.", "The model produced invalid numbers; try another prompt.")
    if not np.isfinite(x).any():
        raise ExplainerError("Every logit is -inf: no token is possible.", "Check the logits processors in use.")
    return x


def _masked_softmax(z: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """softmax(z) over the kept entries, 0 elsewhere. z must have its maximum among the kept."""
    zk = np.where(keep, z, -np.inf)
    return softmax(zk)


def penalise(logits: np.ndarray, penalty: float, previous_ids) -> np.ndarray:
    """transformers' RepetitionPenaltyLogitsProcessor: every token already in `previous_ids` has its logit
    divided by `penalty` when positive, multiplied by it when negative (each token once, however often it
    came).  # [V]"""
    x = np.array(logits, dtype=np.float64)
    ids = np.unique(np.asarray(list(previous_ids), dtype=np.int64))
    if ids.size and (ids[0] < 0 or ids[-1] >= x.shape[0]):
        raise ExplainerError(f"Token id {int(ids[0] if ids[0] < 0 else ids[-1])} is not in the vocabulary of "
                             f"{x.shape[0]:,} tokens.", "Pass the ids of the text so far.")
    s = x[ids]
    x[ids] = np.where(s < 0, s * penalty, s / penalty)
    return x


def probabilities(logits, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, min_p: float | None = None, repetition_penalty: float | None = None,
                  previous_ids=()) -> Distribution:
    """The next-token distribution after the repetition penalty, temperature, top-k, top-p and min-p, in
    transformers' order.

    - repetition_penalty: logits of the tokens in `previous_ids` (the text so far) are divided by it when
      positive and multiplied by it when negative, before everything else; None/1 = off.
    - min_p: after top-p, remove the tokens less likely than min_p × the most likely one's probability;
      None/0 = off. Greedy (T = 0) has nothing left for it to do.

    - temperature: logits / T (T > 0); T = 0 is greedy (one-hot on the most likely token).
      Stable for any T > 0: the maximum is subtracted before dividing, so T = 0.001 with logits of
      ±1e4 gives finite probabilities that sum to 1.
    - top_k: keep the k largest (ties with the k-th are kept, as transformers does); None/0 = off;
      k at least the vocabulary size keeps everything.
    - top_p: keep the smallest set of most likely tokens whose probability (after top-k) reaches p,
      always at least one; None/1 = off; 0 keeps only the most likely token.
    """
    raw = _check_logits(logits)                                  # [V]
    v = raw.shape[0]
    settings, notes = Settings(temperature, top_k, top_p, min_p, repetition_penalty).checked(v)
    t, k, p = settings.temperature, settings.top_k, settings.top_p
    penalised = penalise(raw, settings.repetition_penalty, previous_ids) if settings.repetition_penalty else None
    x = raw if penalised is None else penalised                  # [V] what the warpers see
    m = float(np.max(x))
    none = np.zeros(v, dtype=bool)

    if t == 0:
        best = int(np.argmax(x))
        z = np.full(v, -np.inf)
        z[best] = 0.0                                            # [V] one-hot in log space
    else:
        z = (x - m) / t                                          # [V] <= 0, max 0: exp never overflows
    tempered = softmax(z)                                        # [V]

    # top-k: remove scores below the k-th largest (TopKLogitsWarper); order is temperature-invariant.
    if k is not None:
        kth = np.partition(x, v - k)[v - k]
        removed_k = x < kth                                      # [V]
    else:
        removed_k = none
    keep_k = ~removed_k
    after_k = _masked_softmax(z, keep_k) if k is not None else tempered  # [V]

    if t == 0:
        # Greedy: only the argmax survives; the top-p filter has nothing left to do.
        removed_g = ~np.isfinite(z) & keep_k
        removed_p = none
    else:
        removed_g = none
        if p is not None:
            # TopPLogitsWarper: sort ascending, cumulative probability, drop while <= 1 - p, keep the last.
            zk = np.where(keep_k, z, -np.inf)
            order = np.argsort(zk, kind="stable")                # [V] ascending
            cum = np.cumsum(after_k[order])                      # [V]
            drop = cum <= 1.0 - p
            drop[-1] = False
            removed_p = np.zeros(v, dtype=bool)
            removed_p[order] = drop
            removed_p &= keep_k
        else:
            removed_p = none

    keep = keep_k & ~removed_p & ~removed_g
    removed_m = None
    if settings.min_p is not None:
        # MinPLogitsWarper: softmax of what is left, remove below min_p × its largest (always kept).
        left = _masked_softmax(z, keep)                          # [V]
        removed_m = (left < settings.min_p * left.max()) & keep
        keep = keep & ~removed_m
    filtered = k is not None or p is not None or t == 0 or removed_m is not None
    probs = _masked_softmax(z, keep) if filtered else tempered  # [V]
    for a in (raw, x, tempered, after_k, probs, removed_k, removed_p, removed_g, removed_m):
        if a is not None:
            readonly(a)
    return Distribution(logits=raw, tempered=tempered, after_top_k=after_k, probs=probs, removed_top_k=removed_k,
                        removed_top_p=removed_p, removed_greedy=removed_g, settings=settings, notes=notes,
                        removed_min_p=removed_m, penalised=penalised)


# -- sampling ------------------------------------------------------------------------------------

def rng(seed: int | None, *stream: int) -> np.random.Generator:
    """A generator for `seed` (None = fresh entropy); extra integers pick an independent stream, so
    step 7 of a demo with seed 42 always draws the same number."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(s) & 0xFFFFFFFF for s in stream)])


def sample(dist: Distribution | np.ndarray, seed: int | None = None, *stream: int,
           generator: np.random.Generator | None = None) -> int:
    """Draw one token id from the distribution. Same seed (and stream), same token."""
    probs = dist.probs if isinstance(dist, Distribution) else np.asarray(dist, dtype=np.float64)
    g = generator or rng(seed, *stream)
    return int(_inverse_cdf(probs, g.random(1))[0])


def sample_many(dist: Distribution | np.ndarray, n: int, seed: int | None = None) -> np.ndarray:
    """n independent draws (with replacement), reproducible for a seed.  # [n]"""
    probs = dist.probs if isinstance(dist, Distribution) else np.asarray(dist, dtype=np.float64)
    return _inverse_cdf(probs, rng(seed).random(int(n)))


def _inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs)                                       # [V]
    idx = np.searchsorted(cdf, u * cdf[-1], side="right")        # [n]
    # cdf[idx] > u * total >= cdf[idx - 1], so probs[idx] > 0; only u * total rounding up to the total
    # can run past the end, and that draw belongs to the last token that has any probability.
    last = int(np.flatnonzero(probs > 0)[-1])
    return np.minimum(idx, last)


def choose(dist: Distribution, how: str, seed: int | None = None, *stream: int) -> int:
    """'top' -> the most likely token after the filters; 'sample' -> a seeded draw."""
    if how == "top":
        return dist.argmax
    if how == "sample":
        return sample(dist, seed, *stream)
    raise ExplainerError(f"Unknown way to choose a token: {how!r}.", "Use 'top' or 'sample'.")
