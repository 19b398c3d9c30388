"""The whole forward pass as a list of parts: what the Model map page draws, generated from the family record.

`model_map(lm, trace)` walks the loaded model in the order its forward pass runs:

    tokens → token embedding (+ learned positions: GPT-2's wpe) → per block
      [norm → attention (queries, keys, values, rotary where the family has it, pattern, heads' outputs,
       output projection) → add → norm → MLP (up / gate, activation, down) → add]
    → final norm → unembedding → softmax

GPT-J and GPT-NeoX blocks read the same block input in both branches and add both at the end
(`arch.parallel`); their block parts say so (`Part.parallel`) and have one add, not two.

Each part carries its hook name (the TransformerLens-style name of `explainer/sites.py`, None where there is
no site), the live tensor shape for this trace (the batch axis left out), the parameters it owns, the module
whose output it is, and the page that explains it. Parameters are counted from the modules themselves,
tied weights once (the unembedding owns only what it does not share with the token embedding), so the
parts add up to the model's unique parameter count. `part_values` reads one part's real values for one
token, from the trace where it holds them and from one extra forward pass where it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import RangeError
from .models import LoadedModel
from .sampling import softmax
from .sites import capture_sites, hooks
from .trace import Trace

# kind -> the page (its URL name, as in streamlit_app.py's TOUR) that explains it
PAGES = {
    "tokens": "Home", "embed": "Embeddings", "pos": "Attention", "norm": "Logit_lens",
    "q": "Attention", "k": "Attention", "v": "Attention", "rotary": "Attention", "pattern": "Attention",
    "z": "Attention", "attn_out": "Attention", "add": "Logit_lens", "mlp_in": "MLP_neurons",
    "mlp_up": "MLP_neurons", "act": "MLP_neurons", "mlp_out": "MLP_neurons", "final_norm": "Logit_lens",
    "unembed": "Logit_lens", "softmax": "Next_token",
}


@dataclass(frozen=True)
class Part:
    """One step of the forward pass."""

    key: str                      # unique: "embed", "blocks.3.attn.q", "blocks.3.add_mlp", "softmax", ...
    name: str                     # what the diagram writes: "Queries", "Output projection", ...
    kind: str                     # a key of PAGES: what sort of step (the colour and the values shown)
    hook: str | None              # TransformerLens-style hook site name (sites.py), None where there is none
    shape: tuple[int, ...]        # live shape for the trace, batch axis left out: (T, D), (H, T, T), ...
    params: int                   # parameters this part owns (0 for parameter-free steps; tied ones once)
    layer: int | None             # block index, None outside the blocks
    branch: str                   # "attn" or "mlp" inside a block, "" on the residual path
    parallel: bool                # inside a block whose attention and MLP read the same input (GPT-J, NeoX)
    page: str                     # URL name of the page that explains it
    module: str | None = None     # dotted path (from the CausalLM) of the module whose output this is
    note: str = ""                # one short line: "9 heads", "shared by 3 query heads each", ...


@dataclass(frozen=True)
class ModelMap:
    family: str
    n_layers: int
    parallel: bool                # the blocks run attention and MLP side by side
    tied: bool                    # the unembedding is the token embedding
    parts: tuple[Part, ...]

    def __iter__(self):
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    @property
    def total_params(self) -> int:
        return sum(p.params for p in self.parts)

    def block(self, layer: int) -> tuple[Part, ...]:
        return tuple(p for p in self.parts if p.layer == layer)

    @property
    def before(self) -> tuple[Part, ...]:
        """The parts before the first block."""
        first = next(i for i, p in enumerate(self.parts) if p.layer is not None)
        return self.parts[:first]

    @property
    def after(self) -> tuple[Part, ...]:
        """The parts after the last block."""
        last = max(i for i, p in enumerate(self.parts) if p.layer is not None)
        return self.parts[last + 1:]

    def get(self, key: str) -> Part:
        for p in self.parts:
            if p.key == key:
                return p
        raise KeyError(key)


def _numel(m: nn.Module | None) -> int:
    return 0 if m is None else sum(p.numel() for p in m.parameters())


def _path(model: nn.Module, module: nn.Module) -> str:
    for name, m in model.named_modules():
        if m is module:
            return name
    raise KeyError(type(module).__name__)


def _rotary_width(lm: LoadedModel) -> int | None:
    """Width of the cos/sin table the base model's rotary module hands the attention (None: no rotary)."""
    rot = getattr(lm.arch.base_model(lm.model), "rotary_emb", None)
    if rot is None:
        return None
    x = torch.zeros(1, 1, lm.d_model, device=lm.device, dtype=lm.dtype)
    with torch.inference_mode():
        cos, _ = rot(x, position_ids=torch.zeros(1, 1, dtype=torch.long, device=lm.device))
    return int(cos.shape[-1])


def model_map(lm: LoadedModel, tr: Trace) -> ModelMap:
    """The parts of `lm`'s forward pass for the trace `tr`, in the order they run."""
    arch, model = lm.arch, lm.model
    T, D, H, Hkv, dh, M, V = tr.n_tokens, lm.d_model, lm.n_heads, lm.n_kv_heads, lm.d_head, lm.d_mlp, lm.vocab_size
    base = arch.base_model(model)
    embed = model.get_input_embeddings()
    parts: list[Part] = []

    def add(key, name, kind, hook, shape, params, layer=None, branch="", parallel=False, module=None, note=""):
        parts.append(Part(key=key, name=name, kind=kind, hook=hook, shape=tuple(int(s) for s in shape),
                          params=int(params), layer=layer, branch=branch, parallel=parallel, page=PAGES[kind],
                          module=None if module is None else _path(model, module), note=note))

    add("tokens", "Tokens", "tokens", None, (T,), 0, note=f"ids in a vocabulary of {V:,}")
    add("embed", "Token embedding", "embed", "hook_embed", (T, D), _numel(embed), module=embed,
        note=f"one row of {V:,} per token")
    pos = arch.pos_embed_module(model)
    if pos is not None:
        add("pos", "Learned positions", "pos", "hook_pos_embed", (T, D), _numel(pos), module=pos,
            note=f"one row of {pos.weight.shape[0]:,} per position, added")
    rot_width = _rotary_width(lm)

    for layer, block in enumerate(arch.block_list(model)):
        b = f"blocks.{layer}"
        par = arch.parallel
        attn, mlp = arch.attention(block), arch.mlp_module(block)
        attn_norm = getattr(block, arch.attn_norm)
        # every other child of the block that owns parameters is the MLP's own norm (ln_2,
        # post_attention_layernorm); GPT-J has none: its MLP reads the attention's norm too
        known = {id(attn), id(mlp), id(attn_norm)}
        mlp_norms = [m for m in block.children() if id(m) not in known and _numel(m)]

        def at(key, name, kind, hook, shape, params, branch, module=None, note="", _b=b, _l=layer, _p=par):
            add(f"{_b}.{key}", name, kind, hook and f"{_b}.{hook}", shape, params, layer=_l, branch=branch,
                parallel=_p, module=module, note=note)

        at("attn_norm", "Norm" + (" (shared)" if par and not mlp_norms else ""), "norm", None, (T, D),
           _numel(attn_norm), "" if par and not mlp_norms else "attn", module=attn_norm)
        # queries, keys, values: separate projections, or thirds of one fused projection (GPT-2, NeoX)
        out_proj = arch.attn_out_proj(block)
        v_mod = block.get_submodule(arch.v_site.module)
        q_mod, k_mod = getattr(attn, "q_proj", None), getattr(attn, "k_proj", None)
        qkv = _numel(attn) - _numel(out_proj)
        if q_mod is None:                         # fused: q, k and v in one matrix, split by their heads
            q_p, k_p = qkv * H // (H + 2 * Hkv), qkv * Hkv // (H + 2 * Hkv)
            v_p = qkv - q_p - k_p
            q_mod = k_mod = v_mod
        else:
            q_p, k_p, v_p = _numel(q_mod), _numel(k_mod), qkv - _numel(q_mod) - _numel(k_mod)
        share = f", each shared by {H // Hkv} query heads" if Hkv < H else ""
        rotated = " (rotary)" if rot_width else ""
        at("attn.q", "Queries", "q", "attn.hook_q", (T, H, dh), q_p, "attn", q_mod,
           f"{H} heads × {dh}{rotated}")
        at("attn.k", "Keys", "k", "attn.hook_k", (T, Hkv, dh), k_p, "attn", k_mod,
           f"{Hkv} key/value heads × {dh}{rotated}")
        at("attn.v", "Values", "v", "attn.hook_v", (T, Hkv, dh), v_p, "attn", v_mod,
           f"{Hkv} key/value heads × {dh}{share}")
        if rot_width:
            at("attn.rotary", "Rotary positions", "rotary", None, (T, rot_width), 0, "attn", base.rotary_emb,
               "turns queries and keys by position")
        at("attn.pattern", "Attention pattern", "pattern", "attn.hook_pattern", (H, T, T), 0, "attn", None,
           "softmax(q·k / √d_head), causal")
        at("attn.z", "Weighted values", "z", "attn.hook_z", (T, H, dh), 0, "attn", None,
           "pattern · values, heads side by side")
        at("attn.out", "Output projection", "attn_out", "hook_attn_out", (T, D), _numel(out_proj), "attn", attn)
        if not par:
            at("add_attn", "Add to the residual", "add", None, (T, D), 0, "", None, "residual + attention")
        for i, norm in enumerate(mlp_norms):
            at("mlp_norm" if i == 0 else f"mlp_norm{i}", "Norm", "norm", None, (T, D), _numel(norm),
               "mlp", norm)
        mlp_in, mlp_down = getattr(mlp, arch.mlp_in), arch.mlp_down_proj(block)
        up = getattr(mlp, arch.mlp_up) if arch.mlp_up else None
        act = arch.activation(lm.config)
        in_p = _numel(mlp) - _numel(up) - _numel(mlp_down)
        if up is not None:
            at("mlp.gate", "Gate", "mlp_in", "mlp.hook_pre", (T, M), in_p, "mlp", mlp_in, f"{M:,} neurons")
            at("mlp.up", "Up", "mlp_up", "mlp.hook_pre_linear", (T, M), _numel(up), "mlp", up, f"{M:,} neurons")
            at("mlp.act", f"{act}(gate) × up", "act", "mlp.hook_post", (T, M), 0, "mlp", None,
               "the neurons' activations")
        else:
            at("mlp.up", "Up", "mlp_in", "mlp.hook_pre", (T, M), in_p, "mlp", mlp_in, f"{M:,} neurons")
            at("mlp.act", act, "act", "mlp.hook_post", (T, M), 0, "mlp", None, "the neurons' activations")
        at("mlp.down", "Down", "mlp_out", "hook_mlp_out", (T, D), _numel(mlp_down), "mlp", mlp)
        at("add_mlp", "Add to the residual", "add", "hook_resid_post", (T, D), 0, "", block,
           "residual + attention + MLP" if par else "residual + MLP")

    final = arch.final_norm_module(model)
    add("final_norm", "Final norm", "final_norm", "ln_final.hook_normalized", (T, D), _numel(final), module=final)
    head = model.get_output_embeddings()
    shared = {p.data_ptr() for p in embed.parameters()}
    own = sum(p.numel() for p in head.parameters() if p.data_ptr() not in shared)
    tied = own < _numel(head)
    add("unembed", "Unembedding", "unembed", None, (T, V), own, module=head,
        note="the token embedding, reused" if tied else f"one row of {D} per token")
    add("softmax", "Softmax", "softmax", None, (T, V), 0, note="probabilities of the next token")
    return ModelMap(family=arch.family, n_layers=lm.n_layers, parallel=arch.parallel, tied=tied, parts=tuple(parts))


def part_values(lm: LoadedModel, tr: Trace, part: Part, position: int) -> np.ndarray:
    """A part's real values at one token position (the batch and position axes gone): [D] for the
    residual-like parts, [n, dh] for queries, keys, values and the weighted values, [H, T] (that token's
    attention rows, one per head) for the pattern, [M] for the MLP's neurons, [V] for the logits and the
    probabilities, [1] (the token id) for the tokens, [rot] (the cos table) for rotary positions."""
    T = tr.n_tokens
    if not 0 <= position < T:
        raise RangeError(f"There is no token {position}: the prompt has {T} tokens.",
                         f"Pick a position from 0 to {T - 1}.")
    kind, layer = part.kind, part.layer
    if kind == "tokens":
        return np.asarray(tr.token_ids[position:position + 1])
    if kind == "embed":
        return np.asarray(tr.embed[position])
    if kind == "pos":
        return np.asarray(tr.pos_embed[position])
    if kind == "pattern":
        return np.asarray(tr.attn[layer, :, position, :])                # [H, T]
    if kind == "act":
        return np.asarray(tr.mlp[layer, position])
    if kind == "add" and part.hook:
        return np.asarray(tr.resid[layer + 1, position])
    if kind == "unembed":
        return np.asarray(tr.logits[position])
    if kind == "softmax":
        return softmax(tr.logits[position])
    ids = torch.tensor(np.array(tr.token_ids), dtype=torch.long)[None]  # [1, T]
    if kind == "add":                                                  # after attention: no site of its own
        pre, attn = f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.hook_attn_out"
        got = capture_sites(lm, ids, [pre, attn])
        return (got[pre][0, position] + got[attn][0, position]).float().cpu().numpy()
    if part.hook:
        return capture_sites(lm, ids, [part.hook])[part.hook][0, position].float().cpu().numpy()
    module = lm.model.get_submodule(part.module)
    got: list[torch.Tensor] = []

    def keep(mod, args, out):
        got.append((out[0] if isinstance(out, tuple) else out).detach().clone())

    with hooks([(module, "post", keep)]), torch.inference_mode():
        lm.model(input_ids=ids.to(lm.device), use_cache=False)
    return got[-1][0, position].float().cpu().numpy()
