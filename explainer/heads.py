"""Attention heads: the Q·K steps of one head, and what each head does (its role).

Roles are measured on a *repeated random token sequence* `prefix + R + R`: R is `n` distinct random
token ids (seeded), `prefix` is whatever the tokenizer puts before any text (a BOS token, or nothing).
Random tokens carry no meaning, so a head that still attends in a fixed way there does so by position
or by copying, not by content:

- previous_token[l, h] = mean over query positions i = 2 … T-1 of A[l, h, i, i-1]
- first_token[l, h]    = mean over query positions i = 2 … T-1 of A[l, h, i, 0]   (attention sinks)
- induction[l, h]      = mean over the second copy's query positions i = P+n … P+2n-1 of A[l, h, i, i-n+1]:
                         the query's token first appeared at i-n; an induction head looks at the token
                         that came right after it (and so predicts that the sequence repeats).

Queries 0 and 1 are left out of the first two scores: there the first and the previous token coincide.
Every score is an average attention weight, so it lies in [0, 1]; the scores are also averaged over
`batch` random sequences. `score_patterns` scores any attention patterns, e.g. hand-built ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .capture import causal_softmax, queries_keys
from .errors import RangeError
from .models import LoadedModel
from .sites import hooks, site
from .tokens import token_strings
from .trace import Trace, readonly

ROLES = ("previous_token", "first_token", "induction")
ROLE_LABELS = {
    "previous_token": "Previous-token heads",
    "first_token": "First-token heads (attention sinks)",
    "induction": "Induction heads",
}
ROLE_HELP = {
    "previous_token": "How much each token attends to the token just before it.",
    "first_token": "How much each token attends to the very first token: a 'sink' where heads park "
                   "attention when nothing else is relevant.",
    "induction": "On a random sequence repeated twice: how much a token in the second copy attends to the "
                 "token that followed it in the first copy — the head's guess that history repeats.",
}


# -- scoring ---------------------------------------------------------------------------------------

def _layer_scores(a: np.ndarray, period: int | None, prefix: int) -> dict[str, np.ndarray]:
    """Role scores of one layer's heads from patterns a: [B, H, T, T] -> each [H]."""
    T = a.shape[-1]
    if T < 3:
        raise ValueError(f"Role scores need at least 3 tokens (got {T}).")
    i = np.arange(2, T)                                                # [T-2] query positions
    out = {
        "previous_token": a[..., i, i - 1].mean(axis=(0, -1)),       # [B, H, T-2] -> [H]
        "first_token": a[..., i, 0].mean(axis=(0, -1)),              # [B, H, T-2] -> [H]
    }
    if period:
        if prefix + 2 * period > T:
            raise ValueError(f"A repeated sequence of period {period} after {prefix} prefix tokens needs "
                             f"{prefix + 2 * period} tokens, but the patterns have {T}.")
        j = np.arange(prefix + period, prefix + 2 * period)           # [n] second-copy queries
        out["induction"] = a[..., j, j - period + 1].mean(axis=(0, -1))  # [B, H, n] -> [H]
    return out


def score_patterns(attn: np.ndarray, period: int | None = None, prefix: int = 0) -> dict[str, np.ndarray]:
    """Role scores from attention patterns (see the module docstring for the exact definitions).

    attn: [L, H, T, T] or [B, L, H, T, T] (averaged over B); rows = queries, columns = keys.
    period, prefix: the layout `prefix + R + R` with len(R) = period; without a period there is no
    "induction" key. Returns {role: [L, H]}.
    """
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim == 4:
        a = a[None]                                                   # [1, L, H, T, T]
    if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"Expected patterns [L, H, T, T] or [B, L, H, T, T], got shape {a.shape}.")
    per_layer = [_layer_scores(a[:, layer], period, prefix) for layer in range(a.shape[1])]
    return {role: np.stack([s[role] for s in per_layer]) for role in per_layer[0]}  # {role: [L, H]}


@dataclass(frozen=True)
class RepeatedSequence:
    """`prefix + R + R` for each of B rows: R is `period` distinct random token ids."""

    ids: np.ndarray   # [B, P + 2n] int64
    prefix: int       # P: tokens the tokenizer puts before any text (e.g. BOS); 0 for many models
    period: int       # n = len(R)


def _prefix_ids(tokenizer) -> list[int]:
    try:
        return [int(i) for i in tokenizer("", add_special_tokens=True)["input_ids"]]
    except Exception:  # noqa: BLE001 - a tokenizer that cannot encode "" adds nothing we need to copy
        return []


def repeated_period(lm: LoadedModel, n: int) -> int:
    """The length of R that `repeated_tokens(lm, n)` uses: n, shrunk so that `prefix + R + R` fits the context."""
    return max(2, min(int(n), (lm.n_ctx - len(_prefix_ids(lm.tokenizer))) // 2))


def repeated_tokens(lm: LoadedModel, n: int = 40, batch: int = 4, seed: int = 0) -> RepeatedSequence:
    """B random sequences `prefix + R + R`, R drawn without replacement from the ordinary (non-special)
    token ids; n shrinks so that the sequence fits the context window."""
    prefix = _prefix_ids(lm.tokenizer)
    n = repeated_period(lm, n)
    special = set(getattr(lm.tokenizer, "all_special_ids", None) or [])
    vocab = min(lm.vocab_size, len(lm.tokenizer))
    candidates = np.array([i for i in range(vocab) if i not in special], dtype=np.int64)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(batch):
        r = rng.choice(candidates, size=n, replace=False)            # [n]
        rows.append(np.concatenate([np.asarray(prefix, dtype=np.int64), r, r]))
    return RepeatedSequence(ids=np.stack(rows), prefix=len(prefix), period=n)


def _forward_attention(lm: LoadedModel, ids: np.ndarray, on_layer) -> None:
    """Run ids [B, T] through the model; on_layer(layer, pattern [B, H, T, T] float32 numpy) per layer."""
    def grab(layer):
        return lambda a: on_layer(layer, a.detach().float().cpu().numpy())  # [B, H, T, T]

    pairs = [site(lm, f"blocks.{i}.attn.hook_pattern").reader(grab(i)) for i in range(lm.n_layers)]
    x = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=lm.device)   # [B, T]
    with hooks(pairs), torch.inference_mode():
        lm.model(input_ids=x, use_cache=False)


def attention_for_ids(lm: LoadedModel, ids: np.ndarray) -> np.ndarray:
    """Attention patterns of every layer and head for token ids [B, T].  # [B, L, H, T, T]"""
    ids = np.atleast_2d(ids)
    B, T = ids.shape
    out = np.zeros((B, lm.n_layers, lm.n_heads, T, T), dtype=np.float32)
    _forward_attention(lm, ids, lambda layer, a: out.__setitem__((slice(None), layer), a))
    return out


def head_scores(lm: LoadedModel, n: int = 40, batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Role scores of every head, {"previous_token", "first_token", "induction"} -> [L, H] in [0, 1].

    Measured on `repeated_tokens(lm, n, batch, seed)`; definitions in the module docstring. Each layer
    is scored as its attention is computed, so only one layer's [B, H, T, T] patterns exist at a time.
    """
    seq = repeated_tokens(lm, n=n, batch=batch, seed=seed)
    per_layer: dict[int, dict[str, np.ndarray]] = {}
    _forward_attention(lm, seq.ids, lambda layer, a: per_layer.__setitem__(
        layer, _layer_scores(a, seq.period, seq.prefix)))
    return {role: readonly(np.stack([per_layer[i][role] for i in range(lm.n_layers)])) for role in ROLES}  # [L, H]


@dataclass(frozen=True, eq=False)
class InductionDemo:
    """Every head's pattern on one fresh random sequence repeated twice (`prefix + R + R`), and the
    cells an induction head attends to: in the second copy, query i looks at key i - period + 1, the
    token that came *after* the first occurrence of token i."""

    tokens: tuple[str, ...]
    attn: np.ndarray              # [L, H, T, T] read-only
    prefix: int
    period: int

    @property
    def cells(self) -> tuple[tuple[int, int], ...]:
        """(query, key) of every induction cell, one per second-copy query."""
        start = self.prefix + self.period
        return tuple((i, i - self.period + 1) for i in range(start, start + self.period))

    def hit(self, layer: int, head: int) -> float:
        """The head's mean weight on the induction cells (its induction score on this one sequence)."""
        q, k = np.array(self.cells).T
        return float(self.attn[layer, head, q, k].mean())

    def first_copy_rest(self, layer: int, head: int) -> float:
        """The head's mean weight on the first token (key 0) from the first copy's queries after it
        (positions 1 … prefix + period - 1), where there is nothing yet to copy."""
        return float(self.attn[layer, head, 1:self.prefix + self.period, 0].mean())


def induction_demo(lm: LoadedModel, n: int = 16, seed: int = 1) -> InductionDemo:
    """One random sequence of n tokens, repeated, and every head's attention on it."""
    seq = repeated_tokens(lm, n=n, batch=1, seed=seed)
    return InductionDemo(tokens=token_strings(lm.tokenizer, seq.ids[0]),
                         attn=readonly(attention_for_ids(lm, seq.ids)[0]), prefix=seq.prefix, period=seq.period)


def window_share(pattern: np.ndarray, lo: int, hi: int) -> float:
    """The mean weight that queries lo..hi of a pattern [T, T] put on keys lo..hi: how much of what they look at
    a zoomed window shows (1 when none of them looks further back)."""
    p = np.asarray(pattern, dtype=np.float64)
    return float(p[lo:hi + 1, lo:hi + 1].sum(axis=-1).mean())


def top_attended(row: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The k keys a query row attends to most, as (position, weight), largest first."""
    order = np.argsort(-np.asarray(row), kind="stable")[:k]
    return [(int(j), float(row[j])) for j in order]


def kv_group(n_heads: int, n_kv_heads: int, head: int) -> tuple[int, tuple[int, ...]]:
    """Grouped-query attention: the key/value head that query head `head` reads, and every query head
    that shares it (consecutive groups of n_heads / n_kv_heads, as transformers' repeat_kv lays them out)."""
    group = n_heads // n_kv_heads
    kv = head // group
    return kv, tuple(range(kv * group, (kv + 1) * group))


def sink_heads(attn: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Heads that rest on the first token: True where the mean weight that queries 1.. put on key 0 is
    above `threshold` (the 'attention sink' of Xiao et al., 2023). attn: [L, H, T, T] -> [L, H] bool;
    all False for a one-token prompt."""
    if attn.shape[-1] < 2:
        return np.zeros(attn.shape[:2], dtype=bool)
    return attn[:, :, 1:, 0].mean(axis=-1) > threshold                 # [L, H]


@dataclass(frozen=True)
class HeadScore:
    layer: int
    head: int
    score: float


def top_heads(scores: np.ndarray, k: int = 5) -> list[HeadScore]:
    """The k highest-scoring heads of scores [L, H], best first."""
    flat = np.asarray(scores).ravel()
    H = scores.shape[1]
    order = np.argsort(-flat, kind="stable")[:k]
    return [HeadScore(int(o // H), int(o % H), float(flat[o])) for o in order]


def looking_back_head(attn: np.ndarray) -> tuple[int, int]:
    """A head worth showing first: the one where the last token's attention reaches furthest back into
    the prompt, i.e. the largest Σ_j A[l, h, T-1, j]·(T-1-j) over keys j ≥ 1. The first token is left
    out, because many heads park their attention there (a sink) without reading it.

    attn: [L, H, T, T]. Returns (layer, head); (0, 0) for a one-token prompt.
    """
    T = attn.shape[-1]
    distance = (T - 1 - np.arange(T)).astype(np.float64)              # [T] how far back each key is
    distance[0] = 0.0
    reach = attn[:, :, -1, :] @ distance                              # [L, H]
    layer, head = np.unravel_index(int(np.argmax(reach)), reach.shape)
    return int(layer), int(head)


# -- Q·K step by step ------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class QKSteps:
    """How one head turns queries and keys into its attention pattern, every stage kept."""

    layer: int
    head: int
    kv_head: int          # the key/value head this query head reads
    group: int            # query heads per key/value head (1 without grouped-query attention)
    n_kv_heads: int
    d_head: int
    scale: float          # the model's factor on q·k (1/√d_head)
    raw: np.ndarray       # [T, T] q·k for every query/key pair, future included
    scaled: np.ndarray    # [T, T] raw × scale
    masked: np.ndarray    # [T, T] scaled, −inf above the diagonal (keys after the query)
    pattern: np.ndarray   # [T, T] softmax of each row: every row sums to 1
    captured: np.ndarray  # [T, T] the pattern the model itself computed (Trace.attn)

    @property
    def max_error(self) -> float:
        """Largest difference between the recomputed and the model's own pattern."""
        return float(np.abs(self.pattern - self.captured).max())

    @property
    def score_spread(self) -> tuple[float, float]:
        """Standard deviation of the scores a query may use (key ≤ query), before and after the scale."""
        i, j = np.tril_indices(self.raw.shape[0])
        return float(self.raw[i, j].std()), float(self.scaled[i, j].std())

    @property
    def row_sum_error(self) -> float:
        """Largest deviation of a row of the recomputed pattern from summing to 1."""
        return float(np.abs(self.pattern.sum(axis=1) - 1).max())

    @property
    def kv_siblings(self) -> tuple[int, ...]:
        """The query heads that share this head's key/value head (itself included)."""
        return tuple(range(self.kv_head * self.group, (self.kv_head + 1) * self.group))


def qk_steps(lm: LoadedModel, tr: Trace, layer: int, head: int) -> QKSteps:
    """Recompute one head's pattern from its real queries and keys: q·k -> × scale -> mask -> softmax."""
    if not 0 <= head < lm.n_heads:
        raise RangeError(f"Head {head} does not exist.", f"Choose a head from 0 to {lm.n_heads - 1}.")
    qk = queries_keys(lm, tr, layer)
    raw = qk.scores(head).astype(np.float64)                         # [T, T]
    masked, pattern = causal_softmax(raw, qk.scale)                  # [T, T] each (float64)
    return QKSteps(layer=layer, head=head, kv_head=qk.kv_head(head), group=qk.group, n_kv_heads=qk.k.shape[0],
                   d_head=qk.q.shape[-1], scale=qk.scale, raw=raw, scaled=raw * qk.scale, masked=masked,
                   pattern=pattern, captured=np.asarray(tr.attn[layer, head]))

