"""Per-architecture adapters: where each model family keeps its embeddings, blocks, attention, MLP,
final norm and unembedding, and how its attention turns a block's input into queries and keys.

Supported families (transformers `model_type`): GPT-2, Llama (and its look-alikes Mistral, Qwen2,
SmolLM), GPT-J and GPT-NeoX (Pythia).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Arch:
    family: str                                   # "gpt2" | "llama" | "gptj" | "gpt_neox"
    base: str                                     # attribute of the CausalLM holding the base model
    blocks: str                                   # attribute of the base model holding the blocks
    attn: str                                     # attribute of a block holding its attention
    attn_norm: str                                # attribute of a block: the norm before attention
    mlp: str                                      # attribute of a block holding its MLP
    mlp_down: str                                 # attribute of the MLP: the down-projection
    final_norm: str                               # attribute of the base model: the final norm
    pos_embed: str | None                         # attribute of the base model: learned positions
    parallel: bool                                # attention and MLP read the same block input
    qk: Callable[..., tuple[torch.Tensor, torch.Tensor]]  # (lm, layer, x_normed) -> q, k
    attn_out: str                                 # attribute of the attention: the output projection,
                                                  # whose input is the heads' outputs side by side [B, T, H·dh]

    def base_model(self, model: nn.Module) -> nn.Module:
        return getattr(model, self.base)

    def block_list(self, model: nn.Module) -> nn.ModuleList:
        return getattr(self.base_model(model), self.blocks)

    def attention(self, block: nn.Module) -> nn.Module:
        return getattr(block, self.attn)

    def attn_out_proj(self, block: nn.Module) -> nn.Module:
        return getattr(self.attention(block), self.attn_out)

    def mlp_module(self, block: nn.Module) -> nn.Module:
        return getattr(block, self.mlp)

    def mlp_down_proj(self, block: nn.Module) -> nn.Module:
        return getattr(self.mlp_module(block), self.mlp_down)

    def final_norm_module(self, model: nn.Module) -> nn.Module:
        return getattr(self.base_model(model), self.final_norm)

    def pos_embed_module(self, model: nn.Module) -> nn.Module | None:
        return getattr(self.base_model(model), self.pos_embed) if self.pos_embed else None


# -- queries and keys, exactly as each family's attention computes them (after rotary) ------------
# Built from public pieces only: each attention's projection modules, the config's head counts and
# rotary settings, and (Llama, NeoX) the base model's `rotary_emb` module. No private transformers
# methods: they change between releases (GPT-J's `_split_heads` went in 5.24).

def _positions(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[1], device=x.device)[None]  # [1, T]


def _heads(y: torch.Tensor, head_dim: int) -> torch.Tensor:
    """[B, T, n·dh] -> [B, n, T, dh]."""
    return y.view(*y.shape[:-1], -1, head_dim).transpose(1, 2)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """NeoX/Llama rotary pairs dimension i with i + rot/2."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    """GPT-J rotary pairs neighbouring dimensions (2i, 2i+1)."""
    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rotate the first `cos.shape[-1]` dimensions of each head; the rest pass through.

    x [B, H, T, dh]; cos, sin [B, T, rot] laid out for the pairing (`interleaved`: GPT-J's neighbours,
    else NeoX/Llama's halves).
    """
    rot = cos.shape[-1]
    cos, sin = cos[:, None], sin[:, None]                            # [B, 1, T, rot]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    turn = _rotate_every_two(x_rot) if interleaved else _rotate_half(x_rot)
    return torch.cat([x_rot * cos + turn * sin, x_pass], dim=-1)


def gptj_cos_sin(config, head_dim: int, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GPT-J's fixed sinusoidal rotary (base 10000 over `rotary_dim` dimensions), each angle repeated
    for its pair of neighbouring dimensions.  # [B, T, rot] each"""
    rot = config.rotary_dim or head_dim
    inv_freq = 1.0 / (10000 ** (torch.arange(0, rot, 2, dtype=torch.int64) / rot))   # [rot/2]
    angles = positions.float()[..., None] * inv_freq.to(positions.device)            # [B, T, rot/2]
    return torch.cos(angles).repeat_interleave(2, dim=-1), torch.sin(angles).repeat_interleave(2, dim=-1)


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _gpt2_qk(model: nn.Module, layer: int, x: torch.Tensor):
    attn = model.transformer.h[layer].attn
    dh = _head_dim(model.config)
    q, k, _ = attn.c_attn(x).chunk(3, dim=2)                        # [B, T, D] each
    return _heads(q, dh), _heads(k, dh)                             # [B, H, T, dh]


def _rotary_qk(base: nn.Module, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, dh: int):
    """Split into heads, then rotate with the base model's own rotary module (it knows rope scaling)."""
    q, k = _heads(q, dh), _heads(k, dh)                             # [B, H, T, dh], [B, Hkv, T, dh]
    cos, sin = base.rotary_emb(x, position_ids=_positions(x))       # [B, T, rot] each
    return apply_rotary(q, cos, sin, False), apply_rotary(k, cos, sin, False)


def _llama_qk(model: nn.Module, layer: int, x: torch.Tensor):
    attn = model.model.layers[layer].self_attn
    return _rotary_qk(model.model, x, attn.q_proj(x), attn.k_proj(x), _head_dim(model.config))


def _neox_qk(model: nn.Module, layer: int, x: torch.Tensor):
    attn = model.gpt_neox.layers[layer].attention
    dh = _head_dim(model.config)
    qkv = attn.query_key_value(x).view(*x.shape[:-1], -1, 3 * dh)  # [B, T, H, 3·dh]: per head q, k, v
    q, k, _ = qkv.chunk(3, dim=-1)                                  # [B, T, H, dh] each
    return _rotary_qk(model.gpt_neox, x, q.flatten(-2), k.flatten(-2), dh)


def _gptj_qk(model: nn.Module, layer: int, x: torch.Tensor):
    attn = model.transformer.h[layer].attn
    dh = _head_dim(model.config)
    q, k = _heads(attn.q_proj(x), dh), _heads(attn.k_proj(x), dh)   # [B, H, T, dh]
    cos, sin = (a.to(q.dtype) for a in gptj_cos_sin(model.config, dh, _positions(x)))  # [1, T, rot]
    return apply_rotary(q, cos, sin, True), apply_rotary(k, cos, sin, True)


GPT2 = Arch("gpt2", "transformer", "h", "attn", "ln_1", "mlp", "c_proj", "ln_f", "wpe", False, _gpt2_qk, "c_proj")
LLAMA = Arch("llama", "model", "layers", "self_attn", "input_layernorm", "mlp", "down_proj", "norm", None,
             False, _llama_qk, "o_proj")
GPTJ = Arch("gptj", "transformer", "h", "attn", "ln_1", "mlp", "fc_out", "ln_f", None, True, _gptj_qk, "out_proj")
NEOX = Arch("gpt_neox", "gpt_neox", "layers", "attention", "input_layernorm", "mlp", "dense_4h_to_h",
            "final_layer_norm", None, True, _neox_qk, "dense")

ARCHS: dict[str, Arch] = {
    "gpt2": GPT2,
    "llama": LLAMA,
    "mistral": LLAMA,
    "qwen2": LLAMA,
    "gptj": GPTJ,
    "gpt_neox": NEOX,
}


def arch_for(model_type: str) -> Arch:
    try:
        return ARCHS[model_type]
    except KeyError:
        known = ", ".join(sorted(ARCHS))
        raise ValueError(
            f"Architecture '{model_type}' is not supported yet. Supported families: {known}. "
            "Pick a GPT-2, Llama, GPT-J or GPT-NeoX/Pythia model."
        ) from None
