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

def _positions(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[1], device=x.device)[None]  # [1, T]


def _gpt2_qk(model: nn.Module, layer: int, x: torch.Tensor):
    attn = model.transformer.h[layer].attn
    q, k, _ = attn.c_attn(x).split(attn.split_size, dim=2)          # [B, T, D] each
    shape = (*x.shape[:-1], -1, attn.head_dim)
    return q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2)  # [B, H, T, dh]


def _llama_qk(model: nn.Module, layer: int, x: torch.Tensor):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    attn = model.model.layers[layer].self_attn
    shape = (*x.shape[:-1], -1, attn.head_dim)
    q = attn.q_proj(x).view(shape).transpose(1, 2)                   # [B, H, T, dh]
    k = attn.k_proj(x).view(shape).transpose(1, 2)                   # [B, Hkv, T, dh]
    cos, sin = model.model.rotary_emb(x, position_ids=_positions(x))
    return apply_rotary_pos_emb(q, k, cos, sin)


def _neox_qk(model: nn.Module, layer: int, x: torch.Tensor):
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb

    attn = model.gpt_neox.layers[layer].attention
    qkv = attn.query_key_value(x).view(*x.shape[:-1], -1, 3 * attn.head_size).transpose(1, 2)
    q, k, _ = qkv.chunk(3, dim=-1)                                   # [B, H, T, dh]
    cos, sin = model.gpt_neox.rotary_emb(x, position_ids=_positions(x))
    return apply_rotary_pos_emb(q, k, cos, sin)


def _gptj_qk(model: nn.Module, layer: int, x: torch.Tensor):
    from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb

    attn = model.transformer.h[layer].attn
    q = attn._split_heads(attn.q_proj(x), attn.num_attention_heads, attn.head_dim, True)  # [B, T, H, dh]
    k = attn._split_heads(attn.k_proj(x), attn.num_attention_heads, attn.head_dim, True)  # [B, T, H, dh]
    pos = _positions(x)
    sincos = attn._get_embed_positions(pos)[:, : x.shape[1]].to(k.dtype)  # [1, T, rot]
    sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
    rot = attn.rotary_dim or attn.head_dim
    q = torch.cat([apply_rotary_pos_emb(q[..., :rot], sin, cos), q[..., rot:]], dim=-1)
    k = torch.cat([apply_rotary_pos_emb(k[..., :rot], sin, cos), k[..., rot:]], dim=-1)
    return q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3)             # [B, H, T, dh]


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
