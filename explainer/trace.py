"""The Trace: everything one forward pass revealed, as read-only numpy arrays.

Axis letters used throughout the project (TransformerLens vocabulary in the comments):
    T tokens, D d_model, L layers, H query heads, M MLP neurons, V vocabulary.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

LOGITS = "logits"          # the model's output, [T, V]: TransformerLens returns it beside its cache, not as a hook
TOKEN_IDS = "token_ids"    # the input ids, [T]


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

    def to_dict(self) -> dict[str, np.ndarray]:
        """Every array of the trace under its hook name (TransformerLens's names, `explainer.sites`), plus
        `token_ids` and `logits`. The batch axis is dropped: `blocks.3.attn.hook_pattern` is [H, T, T], what
        CircuitsVis's `attention_patterns(tokens, attention)` takes; TransformerLens's cache holds [1, H, T, T].
        The arrays are read-only views of the trace's own (no copy):

            token_ids [T] · hook_embed [T, D] · hook_pos_embed [T, D] (learned positions only)
            blocks.{l}.hook_resid_pre [T, D] · blocks.{l}.hook_resid_post [T, D] (resid_pre of l+1 is resid_post of l)
            blocks.{l}.attn.hook_pattern [H, T, T] · blocks.{l}.mlp.hook_post [T, M] · logits [T, V]
        """
        d: dict[str, np.ndarray] = {TOKEN_IDS: self.token_ids, "hook_embed": self.embed}
        if self.pos_embed is not None:
            d["hook_pos_embed"] = self.pos_embed
        for layer in range(self.n_layers):
            d[f"blocks.{layer}.hook_resid_pre"] = self.resid[layer]
            d[f"blocks.{layer}.attn.hook_pattern"] = self.attn[layer]
            d[f"blocks.{layer}.mlp.hook_post"] = self.mlp[layer]
            d[f"blocks.{layer}.hook_resid_post"] = self.resid[layer + 1]
        d[LOGITS] = self.logits
        return d

    def to_npz(self) -> bytes:
        """The trace as an `.npz` file's bytes (`np.savez_compressed`): `to_dict()`'s arrays, plus `tokens`
        (their text, a string array), `prompt` and `model` (0-d string arrays). Opens with plain numpy, no
        pickle: `d = np.load(path)`; `d["blocks.3.attn.hook_pattern"]`, `list(d["tokens"])`."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **self.to_dict(), tokens=np.array(self.tokens, dtype=str),
                            prompt=np.array(self.text, dtype=str), model=np.array(self.model_name, dtype=str))
        return buf.getvalue()


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    """`Trace.to_npz()`'s bytes back as {name: array} (strings come back as numpy string arrays)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
