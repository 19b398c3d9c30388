"""One record per model family: everything the engine knows about an architecture, in one place.

A family's record (`Arch`) says where its parts live (embeddings, blocks, attention, MLP, final norm),
how its attention turns a block's input into queries and keys, where each named hook site sits
(TransformerLens vocabulary: `blocks.3.attn.hook_pattern`), its MLP activation, whether attention and
MLP run in parallel, its parameter-count formula and its tiny test configuration.

Supported families (transformers `model_type`): GPT-2, Llama (and its look-alikes Mistral, Qwen2,
SmolLM), GPT-J and GPT-NeoX (Pythia). Adding a family means adding one record to `FAMILIES` below
(docs_engine_notes.md walks through it); capture, heads, interventions, the lens, anatomy and the tiny
test models all read it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class SiteSpec:
    """Where one named hook site lives in a family's modules and how to read its tensor.

    Hooked sites are the module's input or (an element of) its output, possibly seen through `view`;
    a view shares memory with that tensor, so an intervention can replace the site's value. Derived
    sites (`derive` set) are computed from the hooked tensor (queries and keys after rotary) and are
    read-only.
    """

    module: str                   # dotted path: from the block for blocks.{l}.* sites, else from the CausalLM
    io: str                       # "in": the module's first input; "out": its output
    index: int = 0                # element of a tuple output (attention returns (output, pattern))
    shape: str = ""               # the value's axes, e.g. "[B, T, H, dh]"
    view: Callable[[torch.Tensor, int], torch.Tensor] | None = None  # (raw, d_head) -> value, a view of raw
    derive: Callable[[nn.Module, int, torch.Tensor], torch.Tensor] | None = None  # (model, layer, raw) -> value
    writable: bool = True         # replacing the value changes the forward pass (not so for a derived
                                  # value, nor for a pattern the attention returns after using it)

    @property
    def hooked(self) -> bool:
        return self.derive is None


@dataclass(frozen=True)
class BlockParams:
    """A family's parameter-count formula, evaluated on one config: per block and outside the blocks."""

    d_mlp: int
    n_kv_heads: int
    d_head: int
    positional: int               # learned position table (0 with rotary positions)
    attn: int                     # one block's attention: projections and biases
    attn_mats: int                # ... of which 2-D matrices
    mlp: int                      # one block's MLP
    mlp_mats: int
    norms: int                    # one block's norm parameters
    final_norm: int
    lm_head_bias: int = 0         # GPT-J's unembedding has a bias


@dataclass(frozen=True)
class Arch:
    family: str                                   # "gpt2" | "llama" | "gptj" | "gpt_neox"
    model_types: tuple[str, ...]                  # transformers model_type values this record serves
    base: str                                     # attribute of the CausalLM holding the base model
    embed: str                                    # attribute of the base model: the token embedding
    blocks: str                                   # attribute of the base model holding the blocks
    attn: str                                     # attribute of a block holding its attention
    attn_norm: str                                # attribute of a block: the norm before attention
    mlp: str                                      # attribute of a block holding its MLP
    mlp_in: str                                   # attribute of the MLP: the projection into the activation
                                                  # (the gate for SwiGLU): its output is mlp.hook_pre
    mlp_up: str | None                            # SwiGLU's up projection (mlp.hook_pre_linear); None ungated
    mlp_down: str                                 # attribute of the MLP: the down-projection
    final_norm: str                               # attribute of the base model: the final norm
    pos_embed: str | None                         # attribute of the base model: learned positions
    parallel: bool                                # attention and MLP read the same block input
    qk: Callable[..., tuple[torch.Tensor, torch.Tensor]]  # (model, layer, x_normed) -> q, k
    attn_out: str                                 # attribute of the attention: the output projection,
                                                  # whose input is the heads' outputs side by side [B, T, H·dh]
    v_site: SiteSpec                              # where the values are (block-relative)
    act_attr: str                                 # config attribute naming the MLP activation
    tiny: Callable[[int], object]                 # vocab_size -> a 2-layer, d_model 64 test config
    params: Callable[[object], BlockParams]       # config -> parameter counts
    q_site: SiteSpec | None = None                # hooked queries/keys where there is no rotary (GPT-2);
    k_site: SiteSpec | None = None                # None: derived from the attention norm's output via `qk`

    # -- parts ----------------------------------------------------------------------------------

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

    # -- the rest of the record -----------------------------------------------------------------

    @property
    def gated(self) -> bool:
        """SwiGLU: the activation is act(gate) · up, not act(up)."""
        return self.mlp_up is not None

    def activation(self, config) -> str:
        """The MLP activation's name as the config gives it ("gelu_new", "silu", "gelu", ...)."""
        return str(getattr(config, self.act_attr))

    def tiny_config(self, vocab_size: int = 50257):
        return self.tiny(vocab_size)

    @cached_property
    def sites(self) -> dict[str, SiteSpec]:
        """Every named hook site of the family: `hook_embed`-style names at model level, `blocks.{l}.`
        names relative to a block (the `{l}` is left out of the keys here)."""
        b, a, m = f"{self.base}.", self.attn, self.mlp
        derived = {which: SiteSpec(self.attn_norm, "out", shape=shape, derive=_derived_qk(self.qk, i),
                                  writable=False)
                   for i, (which, shape) in enumerate((("q", "[B, T, H, dh]"), ("k", "[B, T, Hkv, dh]")))}
        table = {
            "hook_embed": SiteSpec(b + self.embed, "out", shape="[B, T, D]"),
            "hook_pos_embed": SiteSpec(b + self.pos_embed, "out", shape="[B, T, D]") if self.pos_embed else None,
            "ln_final.hook_normalized": SiteSpec(b + self.final_norm, "out", shape="[B, T, D]"),
            "hook_resid_pre": SiteSpec("", "in", shape="[B, T, D]"),
            "attn.hook_q": self.q_site or derived["q"],
            "attn.hook_k": self.k_site or derived["k"],
            "attn.hook_v": self.v_site,
            "attn.hook_z": SiteSpec(f"{a}.{self.attn_out}", "in", shape="[B, T, H, dh]", view=to_heads),
            "attn.hook_pattern": SiteSpec(a, "out", index=1, shape="[B, H, T, T]", writable=False),
            "hook_attn_out": SiteSpec(a, "out", index=0, shape="[B, T, D]"),
            "mlp.hook_pre": SiteSpec(f"{m}.{self.mlp_in}", "out", shape="[B, T, M]"),
            "mlp.hook_pre_linear": SiteSpec(f"{m}.{self.mlp_up}", "out", shape="[B, T, M]") if self.mlp_up else None,
            "mlp.hook_post": SiteSpec(f"{m}.{self.mlp_down}", "in", shape="[B, T, M]"),
            "hook_mlp_out": SiteSpec(m, "out", shape="[B, T, D]"),
            "hook_resid_post": SiteSpec("", "out", index=0, shape="[B, T, D]"),
        }
        return {name: spec for name, spec in table.items() if spec is not None}


GLOBAL_SITES = ("hook_embed", "hook_pos_embed", "ln_final.hook_normalized")  # the rest are blocks.{l}.*


# -- views and derived values of hook sites ---------------------------------------------------------

def to_heads(raw: torch.Tensor, d_head: int) -> torch.Tensor:
    """[B, T, n·dh] -> [B, T, n, dh], a view."""
    return raw.unflatten(-1, (-1, d_head))


def _fused_gpt2(i: int):
    """GPT-2's c_attn output is q, k, v side by side: [B, T, 3·D] -> part i as [B, T, H, dh], a view."""
    def view(raw: torch.Tensor, d_head: int) -> torch.Tensor:
        return raw.chunk(3, dim=-1)[i].unflatten(-1, (-1, d_head))
    return view


def _fused_neox_v(raw: torch.Tensor, d_head: int) -> torch.Tensor:
    """NeoX's query_key_value output is, per head, q, k, v: [B, T, H·3·dh] -> v as [B, T, H, dh], a view."""
    return raw.unflatten(-1, (-1, 3 * d_head))[..., 2 * d_head:]


def _derived_qk(qk: Callable, which: int):
    """Queries (0) or keys (1) after rotary, computed from the attention norm's output.  # [B, T, n, dh]"""
    def derive(model: nn.Module, layer: int, x: torch.Tensor) -> torch.Tensor:
        return qk(model, layer, x)[which].transpose(1, 2)
    return derive


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


# -- tiny test configurations (2 layers, d_model 64, 4 heads) ---------------------------------------

def _gpt2_tiny(vocab_size: int):
    from transformers import GPT2Config
    return GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=vocab_size,
                      tie_word_embeddings=True)


def _llama_tiny(vocab_size: int):
    from transformers import LlamaConfig
    return LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                       intermediate_size=96, max_position_embeddings=128, vocab_size=vocab_size,
                       tie_word_embeddings=True)


def _gptj_tiny(vocab_size: int):
    from transformers import GPTJConfig
    return GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, n_positions=128, vocab_size=vocab_size,
                      tie_word_embeddings=False)


def _neox_tiny(vocab_size: int):
    from transformers import GPTNeoXConfig
    return GPTNeoXConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                         max_position_embeddings=128, rotary_pct=0.25, vocab_size=vocab_size,
                         tie_word_embeddings=False)


# -- parameter-count formulas (checked against the transformers 5 modeling files) -------------------

def config_value(config, *names, default=None):
    """The first of `names` the config sets (families spell the same setting differently)."""
    for n in names:
        v = getattr(config, n, None)
        if v is not None:
            return v
    return default


def _gpt2_params(config) -> BlockParams:
    """Learned token and position embeddings; per block ln_1, c_attn (q,k,v in one Conv1D, with bias),
    c_proj, ln_2, c_fc, c_proj (all with bias); ln_f; lm_head tied to the token embedding by default."""
    d = int(config.hidden_size)
    d_mlp = int(config.n_inner or 4 * d)
    attn = (d * 3 * d + 3 * d) + (d * d + d)                          # c_attn, c_proj (Conv1D, bias)
    attn_mats, norms = 2, 2 * 2 * d                                   # ln_1, ln_2: weight and bias
    if getattr(config, "add_cross_attention", False):
        attn += (d * 2 * d + 2 * d) + (d * d + d) + (d * d + d)       # c_attn (k, v), q_attn, c_proj
        attn_mats += 3
        norms += 2 * d                                                # ln_cross_attn
    n_ctx = int(config_value(config, "n_positions", "max_position_embeddings", default=0))
    return BlockParams(d_mlp=d_mlp, n_kv_heads=int(config.num_attention_heads),
                       d_head=d // int(config.num_attention_heads), positional=n_ctx * d, attn=attn,
                       attn_mats=attn_mats, mlp=(d * d_mlp + d_mlp) + (d_mlp * d + d), mlp_mats=2,
                       norms=norms, final_norm=2 * d)


def _llama_params(config) -> BlockParams:
    """Token embedding only (rotary positions have no parameters); per block RMSNorm, q/k/v/o projections
    (k and v for the key/value heads only: grouped-query attention; biases per `attention_bias`, Qwen2:
    q/k/v always), RMSNorm, SwiGLU gate/up/down (biases per `mlp_bias`); final RMSNorm."""
    d, n_heads = int(config.hidden_size), int(config.num_attention_heads)
    d_mlp = int(config.intermediate_size)
    n_kv = int(config_value(config, "num_key_value_heads", default=n_heads))
    d_head = int(config_value(config, "head_dim", default=d // n_heads))
    q, kv = n_heads * d_head, n_kv * d_head
    qwen2 = getattr(config, "model_type", None) == "qwen2"
    qkv_bias = qwen2 or bool(getattr(config, "attention_bias", False))
    o_bias = not qwen2 and bool(getattr(config, "attention_bias", False))
    mlp_bias = bool(getattr(config, "mlp_bias", False))
    return BlockParams(d_mlp=d_mlp, n_kv_heads=n_kv, d_head=d_head, positional=0,
                       attn=d * q + 2 * d * kv + q * d + qkv_bias * (q + 2 * kv) + o_bias * d, attn_mats=4,
                       mlp=3 * d * d_mlp + mlp_bias * (2 * d_mlp + d), mlp_mats=3,  # gate, up, down (SwiGLU)
                       norms=2 * d, final_norm=d)                     # RMSNorms: weight only


def _gptj_params(config) -> BlockParams:
    """Token embedding, rotary positions; per block one ln_1 (attention and MLP read the same normalised
    input in parallel), bias-free q/k/v/out projections, fc_in and fc_out with bias; ln_f; lm_head with a
    bias, untied."""
    d, n_heads = int(config.hidden_size), int(config.num_attention_heads)
    d_mlp = int(config.n_inner or 4 * d)
    return BlockParams(d_mlp=d_mlp, n_kv_heads=n_heads, d_head=d // n_heads, positional=0,
                       attn=4 * d * d, attn_mats=4,                   # q, k, v, out: no bias
                       mlp=(d * d_mlp + d_mlp) + (d_mlp * d + d), mlp_mats=2,  # fc_in, fc_out
                       norms=2 * d, final_norm=2 * d, lm_head_bias=int(config.vocab_size))


def _neox_params(config) -> BlockParams:
    """Token embedding, rotary positions; per block two LayerNorms, one query_key_value matrix and a dense
    output (biases per `attention_bias`), dense_h_to_4h and dense_4h_to_h with bias; final LayerNorm."""
    d, n_heads = int(config.hidden_size), int(config.num_attention_heads)
    d_mlp = int(config.intermediate_size)
    bias = bool(getattr(config, "attention_bias", True))
    return BlockParams(d_mlp=d_mlp, n_kv_heads=n_heads, d_head=d // n_heads, positional=0,
                       attn=d * 3 * d + d * d + bias * (3 * d + d), attn_mats=2,  # query_key_value, dense
                       mlp=(d * d_mlp + d_mlp) + (d_mlp * d + d), mlp_mats=2,  # dense_h_to_4h, dense_4h_to_h
                       norms=2 * 2 * d, final_norm=2 * d)             # input_ and post_attention_layernorm


# -- the records ------------------------------------------------------------------------------------

GPT2 = Arch(
    family="gpt2", model_types=("gpt2",), base="transformer", embed="wte", blocks="h", attn="attn",
    attn_norm="ln_1", mlp="mlp", mlp_in="c_fc", mlp_up=None, mlp_down="c_proj", final_norm="ln_f",
    pos_embed="wpe", parallel=False, qk=_gpt2_qk, attn_out="c_proj",
    q_site=SiteSpec("attn.c_attn", "out", shape="[B, T, H, dh]", view=_fused_gpt2(0)),
    k_site=SiteSpec("attn.c_attn", "out", shape="[B, T, H, dh]", view=_fused_gpt2(1)),
    v_site=SiteSpec("attn.c_attn", "out", shape="[B, T, H, dh]", view=_fused_gpt2(2)),
    act_attr="activation_function", tiny=_gpt2_tiny, params=_gpt2_params,
)
LLAMA = Arch(
    family="llama", model_types=("llama", "mistral", "qwen2"), base="model", embed="embed_tokens",
    blocks="layers", attn="self_attn", attn_norm="input_layernorm", mlp="mlp", mlp_in="gate_proj",
    mlp_up="up_proj", mlp_down="down_proj", final_norm="norm", pos_embed=None, parallel=False, qk=_llama_qk,
    attn_out="o_proj", v_site=SiteSpec("self_attn.v_proj", "out", shape="[B, T, Hkv, dh]", view=to_heads),
    act_attr="hidden_act", tiny=_llama_tiny, params=_llama_params,
)
GPTJ = Arch(
    family="gptj", model_types=("gptj",), base="transformer", embed="wte", blocks="h", attn="attn",
    attn_norm="ln_1", mlp="mlp", mlp_in="fc_in", mlp_up=None, mlp_down="fc_out", final_norm="ln_f",
    pos_embed=None, parallel=True, qk=_gptj_qk, attn_out="out_proj",
    v_site=SiteSpec("attn.v_proj", "out", shape="[B, T, H, dh]", view=to_heads),
    act_attr="activation_function", tiny=_gptj_tiny, params=_gptj_params,
)
NEOX = Arch(
    family="gpt_neox", model_types=("gpt_neox",), base="gpt_neox", embed="embed_in", blocks="layers",
    attn="attention", attn_norm="input_layernorm", mlp="mlp", mlp_in="dense_h_to_4h", mlp_up=None,
    mlp_down="dense_4h_to_h", final_norm="final_layer_norm", pos_embed=None, parallel=True, qk=_neox_qk,
    attn_out="dense", v_site=SiteSpec("attention.query_key_value", "out", shape="[B, T, H, dh]", view=_fused_neox_v),
    act_attr="hidden_act", tiny=_neox_tiny, params=_neox_params,
)

FAMILIES: tuple[Arch, ...] = (GPT2, LLAMA, GPTJ, NEOX)

ARCHS: dict[str, Arch] = {model_type: a for a in FAMILIES for model_type in a.model_types}


def arch_for(model_type: str) -> Arch:
    try:
        return ARCHS[model_type]
    except KeyError:
        known = ", ".join(sorted(ARCHS))
        raise ValueError(
            f"Architecture '{model_type}' is not supported yet. Supported families: {known}. "
            "Pick a GPT-2, Llama, GPT-J or GPT-NeoX/Pythia model."
        ) from None
