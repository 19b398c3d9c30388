"""The Trace: everything one forward pass revealed, as read-only numpy arrays.

Axis letters used throughout the project (TransformerLens vocabulary in the comments):
    T tokens, D d_model, L layers, H query heads, M MLP neurons, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def readonly(a: np.ndarray) -> np.ndarray:
    """Mark `a` read-only and return it: traces and results are shared between sessions through caches."""
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Trace:
    model_name: str
    text: str                     # the prompt as given
    tokens: tuple[str, ...]       # [T] display strings (leading spaces kept)
    token_ids: np.ndarray         # [T] int64
    embed: np.ndarray             # [T, D]        hook_embed: token-embedding rows
    pos_embed: np.ndarray | None  # [T, D]        hook_pos_embed: learned positions (GPT-2); None for rotary models
    resid: np.ndarray             # [L+1, T, D]   resid[0] = block 0 input; resid[l+1] = blocks.l.hook_resid_post
    attn: np.ndarray              # [L, H, T, T]  blocks.l.attn.hook_pattern; rows = query, cols = key
    mlp: np.ndarray               # [L, T, M]     blocks.l.mlp.hook_post: input of the MLP down-projection
    logits: np.ndarray            # [T, V]        final logits
    n_tokens_in_text: int         # tokens the full prompt had before truncation
    notice: str | None = None     # user-facing note, e.g. that the prompt was truncated

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def truncated(self) -> bool:
        return self.n_tokens < self.n_tokens_in_text

    @property
    def n_layers(self) -> int:
        return self.attn.shape[0]

    @property
    def n_heads(self) -> int:
        return self.attn.shape[1]

    def next_token_logits(self) -> np.ndarray:
        """Logits for the token after the prompt.  # [V]"""
        return self.logits[-1]
