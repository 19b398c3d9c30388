"""The residual stream and the logit lens: decode every layer's residual as if it were the last.

`resid[l]` goes through the model's own final norm and unembedding, giving the next-token distribution
the model "would" predict if it stopped after block l-1. The last row (l = L) is exactly the model's
prediction. The vocabulary can be large (50k tokens), so the [L+1, T, V] logits are never held at once:
rows of the flattened [(L+1)·T, D] residual are decoded in chunks of at most `CHUNK_ELEMENTS` logits,
and only the top-k, entropy and the tracked tokens' probabilities of each chunk are kept. The product with
the unembedding is most of the cost (6.3 bare forward passes of arithmetic for the bundled model at 128
tokens); the rest is a few passes over each chunk's logits, in buffers allocated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .errors import PromptError, RangeError, SettingError
from .models import LoadedModel
from .sites import site
from .tokens import token_strings
from .trace import Trace, readonly

CHUNK_ELEMENTS = 1 << 22  # logits decoded at once: 4M floats = 16 MB in float32 (read at call time)


@dataclass(frozen=True, eq=False)
class LensResult:
    """The logit lens of one trace. Row l decodes resid[l]; row L is the model's own prediction."""

    ids: np.ndarray             # [L+1, T, k] int64   top-k token ids, most likely first
    probs: np.ndarray           # [L+1, T, k] float32 their probabilities
    strings: np.ndarray         # [L+1, T, k] object  their text
    entropy: np.ndarray         # [L+1, T]    float32 entropy of the whole distribution, in nats
    final_prob: np.ndarray      # [L+1, T]    float32 probability of the model's final top-1 token
    resid_norm: np.ndarray      # [L+1, T]    float32 L2 norm of the residual stream
    layers: np.ndarray | None = None     # [l]  int64 the rows decoded (all unless asked; other rows hold -1, "", NaN)
    positions: np.ndarray | None = None  # [t]  int64 the positions decoded (all unless asked)

    @property
    def k(self) -> int:
        return self.ids.shape[2]

    def settled_layer(self, position: int = -1) -> int:
        """First row from which the top-1 token equals the final prediction and stays so."""
        same = self.ids[:, position, 0] == self.ids[-1, position, 0]   # [L+1]
        row = len(same) - 1
        while row > 0 and same[row - 1]:
            row -= 1
        return row


@dataclass(frozen=True, eq=False)
class TokenTrajectory:
    """One token's probability and rank at every layer and position."""

    token_id: int
    token: str
    probs: np.ndarray           # [L+1, T] float32 (NaN at a position not decoded)
    ranks: np.ndarray           # [L+1, T] int64 (0 = most likely; -1 at a position not decoded)

    def first_top_row(self, position: int) -> int | None:
        """The first row at which the token is the top guess at `position` (None if it never is)."""
        rows = np.flatnonzero(self.ranks[:, position] == 0)
        return int(rows[0]) if rows.size else None


def _decoder(lm: LoadedModel):
    """decode(x): [n, D] residual rows -> [n, V] float32 logits, written into one buffer that is reused by the
    next call (so a lens allocates its logits once, not once per chunk)."""
    norm = site(lm, "ln_final.hook_normalized").module              # the final norm
    unembed = lm.model.get_output_embeddings()
    norm_dev = _device_of(norm, lm.device)
    unembed_dev = _device_of(unembed, lm.device)  # differs from norm_dev only for models spread over devices
    weight = getattr(unembed, "weight", None)
    bias = getattr(unembed, "bias", None)
    direct = isinstance(unembed, torch.nn.Linear) and weight.dtype == torch.float32
    buf: list[torch.Tensor] = []

    def decode(x: torch.Tensor) -> torch.Tensor:       # [n, D] -> [n, V] logits
        h = norm(x.to(norm_dev)).to(unembed_dev)                       # [n, D]
        n = h.shape[0]
        if not buf or buf[0].shape[0] < n:
            buf[:] = [torch.empty(n, lm.vocab_size, dtype=torch.float32, device=unembed_dev)]
        out = buf[0][:n]                                               # [n, V]
        if direct and h.dtype == torch.float32:
            if bias is None:
                torch.mm(h, weight.t(), out=out)
            else:
                torch.addmm(bias, h, weight.t(), out=out)
        else:                                                          # half precision, or not a Linear
            out.copy_(unembed(h))
        return out

    return decode


def rows_per_chunk(vocab_size: int) -> int:
    """Residual rows decoded together so that one chunk holds at most CHUNK_ELEMENTS logits."""
    return max(1, CHUNK_ELEMENTS // int(vocab_size))


def _rows(lm: LoadedModel, tr: Trace, layers, positions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The flattened residual rows to decode: (row indices into [(L+1)·T], layers, positions), sorted."""
    if tr.resid.shape[0] != lm.n_layers + 1 or tr.resid.shape[2] != lm.d_model:
        raise PromptError("This trace was made with a different model.", "Trace the prompt again with this model.")
    L1, T, _ = tr.resid.shape
    pick = []
    for what, given, size in (("layer row", layers, L1), ("position", positions, T)):
        idx = np.arange(size) if given is None else np.unique(np.asarray(list(given), dtype=np.int64))
        if idx.size == 0 or idx.min() < 0 or idx.max() >= size:
            raise PromptError(f"No {what}s to decode, or one outside 0 to {size - 1} (got {given!r}).",
                              f"Pick {what}s from 0 to {size - 1}.")
        pick.append(idx)
    rows = (pick[0][:, None] * T + pick[1][None, :]).ravel()          # [n] row-major over (layer, position)
    return rows, pick[0], pick[1]


def _chunks(lm: LoadedModel, tr: Trace, rows: np.ndarray | None = None) -> Iterator[tuple[slice, torch.Tensor]]:
    """Logits of the flattened residual rows (all, or `rows`), a chunk at a time: never [L+1, T, V] at once.
    Each chunk's logits live in one reused buffer: use them before asking for the next chunk."""
    if rows is None:
        rows = _rows(lm, tr, None, None)[0]
    flat = tr.resid.reshape(-1, tr.resid.shape[-1])                  # [(L+1)·T, D]
    step = rows_per_chunk(lm.vocab_size)
    decode = _decoder(lm)
    x_all = torch.from_numpy(np.ascontiguousarray(flat[rows]))       # [n, D] (a copy: the trace is read-only)
    with torch.inference_mode():
        x_all = x_all.to(lm.device, lm.dtype)
        for start in range(0, len(rows), step):
            sl = slice(start, min(start + step, len(rows)))
            yield sl, decode(x_all[sl])                              # [n, V]


def logit_lens(lm: LoadedModel, tr: Trace, k: int = 5, layers=None, positions=None) -> LensResult:
    """Top-k next-token guesses of every layer's residual, decoded with the final norm and unembedding.

    `layers` (rows 0..L) and `positions` (0..T-1) limit the work to those cells, e.g. the window of positions
    a page shows first; the result keeps its full [L+1, T, ...] shape, and cells not decoded hold id -1,
    text "" and NaN (`LensResult.positions` / `.layers` say which were). Cost: one [n, D] x [D, V] product
    per chunk of n rows, then per row one max, one exp, two sums and one top-k over the vocabulary.
    """
    L1, T, _ = tr.resid.shape
    if int(k) < 1:
        raise SettingError(f"k must be at least 1 (got {k}).", "Ask for one or more guesses per cell.")
    k = min(int(k), lm.vocab_size)
    rows, layer_idx, pos_idx = _rows(lm, tr, layers, positions)
    n = len(rows)
    ids = np.empty((n, k), dtype=np.int64)
    probs = np.empty((n, k), dtype=np.float32)
    entropy = np.empty(n, dtype=np.float32)
    final_prob = np.empty(n, dtype=np.float32)
    final_top = torch.as_tensor(np.argmax(tr.logits, axis=-1))      # [T]
    target = final_top[torch.as_tensor(rows % T)]                    # [n] the final top-1 at each row's position
    exps: list[torch.Tensor] = []
    with torch.inference_mode():
        for sl, logits in _chunks(lm, tr, rows):
            m = logits.amax(-1, keepdim=True)                            # [c, 1]
            z = logits.sub_(m)                                           # [c, V] shifted logits, <= 0 (in place)
            top = z.topk(k, dim=-1)                                      # [c, k]
            c = z.shape[0]
            if not exps or exps[0].shape[0] < c:
                exps[:] = [torch.empty_like(z)]
            e = torch.exp(z, out=exps[0][:c])                            # [c, V] exp(z), reused buffer
            total = e.sum(-1)                                            # [c] sum of exp(z)
            dot = e.mul_(z).sum(-1)                                      # [c] sum of exp(z)·z (in place; a
            # cascade sum: a plain dot product, e.g. bmm, accumulates 49k terms in one float and is 4e-4 off)
            log_total = total.log()                                      # [c] logsumexp(logits) - max
            ids[sl] = top.indices.cpu().numpy()
            probs[sl] = (top.values - log_total[:, None]).exp().cpu().numpy()
            picked = z.gather(1, target[sl, None].to(z.device))[:, 0]    # [c]
            final_prob[sl] = (picked - log_total).exp().cpu().numpy()
            entropy[sl] = (log_total - dot / total).cpu().numpy()        # H = log Σe - Σ e·z / Σe (nats)
    uniq = np.unique(ids)
    text = dict(zip(uniq.tolist(), token_strings(lm.tokenizer, uniq), strict=True))
    strings = np.array([text[i] for i in ids.ravel().tolist()], dtype=object)
    full = n == L1 * T

    def grid(a: np.ndarray, fill) -> np.ndarray:                     # [n, ...] -> [L+1, T, ...]
        if full:
            return readonly(a.reshape(L1, T, *a.shape[1:]))
        out = np.full((L1 * T, *a.shape[1:]), fill, dtype=a.dtype)
        out[rows] = a
        return readonly(out.reshape(L1, T, *a.shape[1:]))

    return LensResult(
        ids=grid(ids, -1),
        probs=grid(probs, np.nan),
        strings=grid(strings.reshape(n, k), ""),
        entropy=grid(entropy, np.nan),
        final_prob=grid(final_prob, np.nan),
        resid_norm=residual_norm(tr),
        layers=readonly(layer_idx),
        positions=readonly(pos_idx),
    )


def residual_norm(tr: Trace) -> np.ndarray:
    """L2 norm of the residual stream at every layer and position.  # [L+1, T]"""
    return readonly(np.linalg.norm(tr.resid, axis=-1).astype(np.float32))


def token_trajectory(lm: LoadedModel, tr: Trace, token_id: int, positions=None) -> TokenTrajectory:
    """Probability and rank of one token at every layer and position ("when does it settle on ' Paris'?").

    `positions` (0..T-1) decodes only those positions, every layer (the Logit lens page shows one): the result
    keeps its [L+1, T] shape, with NaN probabilities and rank -1 at the positions not decoded. A cell decoded
    gets the same numbers either way: each row's logits are its own product (tests/test_lens.py)."""
    token_id = int(token_id)
    if not 0 <= token_id < lm.vocab_size:
        raise RangeError(f"Token id {token_id} is not in the vocabulary.",
                          f"Choose an id from 0 to {lm.vocab_size - 1}.")
    L1, T, _ = tr.resid.shape
    rows = _rows(lm, tr, None, positions)[0]
    probs = np.full(L1 * T, np.nan, dtype=np.float32)
    ranks = np.full(L1 * T, -1, dtype=np.int64)
    with torch.inference_mode():
        for sl, logits in _chunks(lm, tr, rows):
            mine = logits[:, token_id]                                   # [n]
            probs[rows[sl]] = (mine - torch.logsumexp(logits, dim=-1)).exp().cpu().numpy()
            ranks[rows[sl]] = (logits > mine[:, None]).sum(-1).cpu().numpy()
    return TokenTrajectory(token_id=token_id, token=token_strings(lm.tokenizer, [token_id])[0],
                           probs=readonly(probs.reshape(L1, T)), ranks=readonly(ranks.reshape(L1, T)))


def _device_of(module: torch.nn.Module, default: torch.device) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else default
