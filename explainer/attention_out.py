"""What attention writes: the values, the weighted sum per head, the heads side by side, the output projection.

One layer, recomputed from the trace's residual stream with the model's own modules (as
`capture.queries_keys` does for q and k), and the trace's own attention pattern A:

    x        = attn_norm(resid[l])                 [T, D]
    v        = hook_v's module(x), as heads         [Hkv, T, dh]  GPT-2: c_attn's last third; NeoX: the last dh
                                                                  of each head's q,k,v in query_key_value
    z_h      = A_h · v_kv(h)                        [T, dh]       query head h reads key/value head kv(h)
    concat   = [z_0 | z_1 | … | z_H-1]              [T, H·dh]     blocks.l.attn.hook_z: the output projection's input
    out      = concat · W_O + b                     [T, D]        o_proj / c_proj / out_proj / dense
    part_h   = z_h · W_O[h·dh:(h+1)·dh, :]          [T, D]        what head h writes; Σ_h part_h + b = out

W_O is never read as a matrix (nn.Linear and GPT-2's Conv1D store it differently): each head's part is the
output projection applied to `concat` with every other head's slice zeroed, minus the bias (the projection
applied to zeros). `check=True` also runs the model once with a forward hook on the output projection, and
keeps what the model itself computed there, so that the page can say how closely the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import RangeError
from .heads import kv_group
from .models import LoadedModel
from .sites import hooks, site
from .trace import Trace, readonly


@dataclass(frozen=True, eq=False)
class HeadOutputs:
    """One layer's attention output, every step kept (numpy, float32, read-only)."""

    layer: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_model: int
    values: np.ndarray          # [Hkv, T, dh]  hook_v: each token's value, per key/value head
    z: np.ndarray               # [H, T, dh]    pattern × values, per query head
    out: np.ndarray             # [T, D]        the output projection of the heads side by side
    bias: np.ndarray            # [D]           the output projection's bias (zeros where it has none)
    parts: np.ndarray           # [H, T, D]     what each head writes: z_h through its slice of W_O
    model_z: np.ndarray | None = None    # [T, H·dh] the output projection's input in the model's own pass
    model_out: np.ndarray | None = None  # [T, D]    its output in the model's own pass (check=True)

    @property
    def n_tokens(self) -> int:
        return self.z.shape[1]

    @property
    def concat(self) -> np.ndarray:
        """The heads' z side by side, head 0 first.  # [T, H·dh]"""
        return self.z.transpose(1, 0, 2).reshape(self.n_tokens, -1)

    @property
    def w_o_shape(self) -> tuple[int, int]:
        """The output projection as a matrix acting on rows: (H·dh, D)."""
        return self.n_heads * self.d_head, self.d_model

    @property
    def has_bias(self) -> bool:
        return bool(np.any(self.bias != 0))

    def kv_head(self, head: int) -> int:
        return kv_group(self.n_heads, self.n_kv_heads, head)[0]

    def value(self, head: int) -> np.ndarray:
        """The values query head `head` reads (its key/value head's).  # [T, dh]"""
        return self.values[self.kv_head(head)]

    def part_norms(self, position: int = -1) -> np.ndarray:
        """The length of what each head writes at one position.  # [H]"""
        return np.linalg.norm(self.parts[:, position].astype(np.float64), axis=-1)

    @property
    def sum_error(self) -> float:
        """Largest difference between Σ_h part_h + bias and out (the parts add up to the output)."""
        return float(np.abs(self.parts.astype(np.float64).sum(axis=0) + self.bias - self.out).max())

    @property
    def max_error(self) -> float | None:
        """Largest difference between this output and the model's own (None without the check)."""
        if self.model_out is None:
            return None
        return float(np.abs(self.out.astype(np.float64) - self.model_out).max())


class _Reached(Exception):
    """Raised by the check's hook once it has what it needs, to end the forward pass there."""


def head_outputs(lm: LoadedModel, tr: Trace, layer: int, check: bool = True) -> HeadOutputs:
    """Values, weighted sums, concatenation and output projection of one layer (module docstring).

    Cheap: one norm, the value projection and the output projection of one layer; `check` adds one
    forward pass of the model up to this layer's output projection (the pass stops there: the blocks after it
    cannot change what it computed).
    """
    if not 0 <= layer < lm.n_layers:
        raise RangeError(f"Layer {layer} does not exist.", f"Choose a layer from 0 to {lm.n_layers - 1}.")
    H, Hkv, dh = lm.n_heads, lm.n_kv_heads, lm.d_head
    block = lm.arch.block_list(lm.model)[layer]
    v_site = site(lm, f"blocks.{layer}.attn.hook_v")
    proj = site(lm, f"blocks.{layer}.attn.hook_z").module                           # the output projection
    x = torch.as_tensor(np.array(tr.resid[layer]), device=lm.device).to(lm.dtype)[None]   # [1, T, D]
    a = torch.as_tensor(np.array(tr.attn[layer]), device=lm.device).to(lm.dtype)         # [H, T, T]
    T = x.shape[1]
    with torch.inference_mode():
        normed = block.get_submodule(lm.arch.attn_norm)(x)                        # [1, T, D]
        raw = v_site.module(normed)                                               # the module hook_v reads
        v = (v_site.value_of(raw) if v_site.value_of else raw.unflatten(-1, (-1, dh)))[0]   # [T, Hkv, dh]
        v = v.transpose(0, 1)                                                     # [Hkv, T, dh]
        z = a @ v.repeat_interleave(H // Hkv, dim=0)                              # [H, T, T] @ [H, T, dh]
        concat = z.transpose(0, 1).flatten(1)                                     # [T, H·dh]
        out = proj(concat[None])[0]                                               # [T, D]
        bias = proj(torch.zeros_like(concat[:1]))[0]                              # [D]
        alone = torch.zeros(H, T, H, dh, dtype=z.dtype, device=z.device)          # [H, T, H, dh]
        heads = torch.arange(H, device=z.device)
        alone[heads, :, heads] = z                                                # head h's slice only
        parts = proj(alone.flatten(2)) - bias                                     # [H, T, D]
    model_z = model_out = None
    if check:
        got: dict[str, torch.Tensor] = {}

        def keep(mod, args, output):
            got["in"], got["out"] = args[0].detach()[0].clone(), output.detach()[0].clone()
            raise _Reached    # the rest of the pass would only cost time (up to a whole forward's worth)

        ids = torch.tensor(np.asarray(tr.token_ids, dtype=np.int64), device=lm.device)[None]  # [1, T]
        try:
            with hooks([(proj, "post", keep)]), torch.inference_mode():
                lm.model(input_ids=ids, use_cache=False)
        except _Reached:
            pass
        model_z, model_out = (readonly(got[k].float().cpu().numpy()) for k in ("in", "out"))

    def np_(t: torch.Tensor) -> np.ndarray:
        return readonly(t.float().cpu().numpy())

    return HeadOutputs(layer=layer, n_heads=H, n_kv_heads=Hkv, d_head=dh, d_model=out.shape[-1],
                       values=np_(v), z=np_(z), out=np_(out), bias=np_(bias), parts=np_(parts),
                       model_z=model_z, model_out=model_out)
