"""The residual stream and the logit lens: decode every layer's residual as if it were the last.

`resid[l]` goes through the model's own final norm and unembedding, giving the next-token distribution
the model "would" predict if it stopped after block l-1. The last row (l = L) is exactly the model's
prediction. The vocabulary can be large (50k tokens), so the [L+1, T, V] logits are never held at once:
rows of the flattened [(L+1)·T, D] residual are decoded in chunks of at most `CHUNK_ELEMENTS` logits,
and only the top-k, entropy and the tracked tokens' probabilities of each chunk are kept.
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
    probs: np.ndarray           # [L+1, T] float32
    ranks: np.ndarray           # [L+1, T] int64 (0 = most likely)


def _decoder(lm: LoadedModel):
    norm = site(lm, "ln_final.hook_normalized").module              # the final norm
    unembed = lm.model.get_output_embeddings()
    norm_dev = _device_of(norm, lm.device)
    unembed_dev = _device_of(unembed, lm.device)  # differs from norm_dev only for models spread over devices

    def decode(x: torch.Tensor) -> torch.Tensor:       # [n, D] -> [n, V] log-probabilities
        h = norm(x.to(norm_dev)).to(unembed_dev)                       # [n, D]
        logits = unembed(h).float()                                    # [n, V]
        return logits.sub_(torch.logsumexp(logits, dim=-1, keepdim=True))  # [n, V] in place: one buffer

    return decode


def rows_per_chunk(vocab_size: int) -> int:
    """Residual rows decoded together so that one chunk holds at most CHUNK_ELEMENTS logits."""
    return max(1, CHUNK_ELEMENTS // int(vocab_size))


def _chunks(lm: LoadedModel, tr: Trace) -> Iterator[tuple[slice, torch.Tensor]]:
    """Log-probabilities of the flattened residual rows, a chunk at a time: never [L+1, T, V] at once."""
    if tr.resid.shape[0] != lm.n_layers + 1 or tr.resid.shape[2] != lm.d_model:
        raise PromptError("This trace was made with a different model.", "Trace the prompt again with this model.")
    flat = tr.resid.reshape(-1, tr.resid.shape[-1])                  # [(L+1)·T, D]
    rows = rows_per_chunk(lm.vocab_size)
    decode = _decoder(lm)
    with torch.inference_mode():
        for start in range(0, flat.shape[0], rows):
            sl = slice(start, min(start + rows, flat.shape[0]))
            x = torch.as_tensor(np.array(flat[sl]), device=lm.device).to(lm.dtype)  # [n, D]
            yield sl, decode(x)                                      # [n, V]


def logit_lens(lm: LoadedModel, tr: Trace, k: int = 5) -> LensResult:
    """Top-k next-token guesses of every layer's residual, decoded with the final norm and unembedding."""
    L1, T, _ = tr.resid.shape
    if int(k) < 1:
        raise SettingError(f"k must be at least 1 (got {k}).", "Ask for one or more guesses per cell.")
    k = min(int(k), lm.vocab_size)
    n = L1 * T
    ids = np.empty((n, k), dtype=np.int64)
    probs = np.empty((n, k), dtype=np.float32)
    entropy = np.empty(n, dtype=np.float32)
    final_prob = np.empty(n, dtype=np.float32)
    final_top = torch.as_tensor(np.argmax(tr.logits, axis=-1))      # [T]
    target = final_top.repeat(L1)                                    # [(L+1)·T] the final top-1 per row
    for sl, logp in _chunks(lm, tr):
        top = logp.topk(k, dim=-1)                                   # [n, k]
        ids[sl] = top.indices.cpu().numpy()
        probs[sl] = top.values.exp().cpu().numpy()
        final_prob[sl] = logp.gather(1, target[sl, None].to(logp.device))[:, 0].exp().cpu().numpy()
        p = logp.exp()                                               # [n, V]
        entropy[sl] = -p.mul_(logp).nan_to_num_().sum(-1).cpu().numpy()  # [n] (0·log 0 = 0)
    uniq = np.unique(ids)
    text = dict(zip(uniq.tolist(), token_strings(lm.tokenizer, uniq), strict=True))
    strings = np.array([text[i] for i in ids.ravel().tolist()], dtype=object)
    return LensResult(
        ids=readonly(ids.reshape(L1, T, k)),
        probs=readonly(probs.reshape(L1, T, k)),
        strings=readonly(strings.reshape(L1, T, k)),
        entropy=readonly(entropy.reshape(L1, T)),
        final_prob=readonly(final_prob.reshape(L1, T)),
        resid_norm=residual_norm(tr),
    )


def residual_norm(tr: Trace) -> np.ndarray:
    """L2 norm of the residual stream at every layer and position.  # [L+1, T]"""
    return readonly(np.linalg.norm(tr.resid, axis=-1).astype(np.float32))


def token_trajectory(lm: LoadedModel, tr: Trace, token_id: int) -> TokenTrajectory:
    """Probability and rank of one token at every layer and position ("when does it settle on ' Paris'?")."""
    token_id = int(token_id)
    if not 0 <= token_id < lm.vocab_size:
        raise RangeError(f"Token id {token_id} is not in the vocabulary.",
                          f"Choose an id from 0 to {lm.vocab_size - 1}.")
    L1, T, _ = tr.resid.shape
    probs = np.empty(L1 * T, dtype=np.float32)
    ranks = np.empty(L1 * T, dtype=np.int64)
    for sl, logp in _chunks(lm, tr):
        mine = logp[:, token_id]                                     # [n]
        probs[sl] = mine.exp().cpu().numpy()
        ranks[sl] = (logp > mine[:, None]).sum(-1).cpu().numpy()
    return TokenTrajectory(token_id=token_id, token=token_strings(lm.tokenizer, [token_id])[0],
                           probs=readonly(probs.reshape(L1, T)), ranks=readonly(ranks.reshape(L1, T)))


def _device_of(module: torch.nn.Module, default: torch.device) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else default
