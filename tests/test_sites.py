"""Named hook sites against independent references, for every family: a plain forward pass with
output_hidden_states / output_attentions, or the module's arithmetic done by hand from its weights.

The per-family facts the references need (which norm feeds the MLP, the projection weights, the
activation) are written out here by hand, not taken from the family records under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.activations import ACT2FN

import explainer as ex
from explainer.arch import ARCHS, FAMILIES
from explainer.errors import ExplainerError
from explainer.models import TINY_FAMILIES
from explainer.sites import capture_sites, hooks, site, site_names
from tests.conftest import hook_keys

PROMPT = "The quick brown fox jumps over the lazy dog because it"

# block l -> module, by hand per family
BLOCK = {
    "gpt2": lambda m, i: m.transformer.h[i],
    "llama": lambda m, i: m.model.layers[i],
    "gptj": lambda m, i: m.transformer.h[i],
    "gpt_neox": lambda m, i: m.gpt_neox.layers[i],
}
ATTN_NORM = {"gpt2": "ln_1", "llama": "input_layernorm", "gptj": "ln_1", "gpt_neox": "input_layernorm"}
OUT_PROJ = {"gpt2": "attn.c_proj", "llama": "self_attn.o_proj", "gptj": "attn.out_proj",
            "gpt_neox": "attention.dense"}
# (MLP input from (block, resid_pre, attn_out), input projection(s), down projection, activation)
MLP = {
    "gpt2": (lambda b, x, a: b.ln_2(x + a), ("mlp.c_fc",), "mlp.c_proj", "gelu_new"),
    "llama": (lambda b, x, a: b.post_attention_layernorm(x + a), ("mlp.gate_proj", "mlp.up_proj"),
              "mlp.down_proj", "silu"),
    "gptj": (lambda b, x, a: b.ln_1(x), ("mlp.fc_in",), "mlp.fc_out", "gelu_new"),          # parallel
    "gpt_neox": (lambda b, x, a: b.post_attention_layernorm(x), ("mlp.dense_h_to_4h",), "mlp.dense_4h_to_h",
                 "gelu"),                                                                   # parallel
}
PARALLEL = {"gpt2": False, "llama": False, "gptj": True, "gpt_neox": True}


def _lin(mod: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A projection by hand: nn.Linear stores [out, in], GPT-2's Conv1D [in, out]."""
    W = mod.weight
    y = x @ W if type(mod).__name__ == "Conv1D" else x @ W.T
    return y if mod.bias is None else y + mod.bias


def _close(a: torch.Tensor, b: torch.Tensor, what: str, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(a.detach().float().numpy(), b.detach().float().numpy(), atol=atol, rtol=1e-4,
                               err_msg=what)


def _heads_mix(pattern: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z = A·v per head, each query head reading its key/value head.  # [B, T, H, dh]"""
    group = pattern.shape[1] // v.shape[2]
    v = v.repeat_interleave(group, dim=2)                                    # [B, T, H, dh]
    return torch.einsum("bhts,bshd->bthd", pattern, v)


def _pattern_from(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(mask(q·kᵀ / √dh)).  # [B, H, T, T]"""
    k = k.repeat_interleave(q.shape[2] // k.shape[2], dim=2)
    s = torch.einsum("bthd,bshd->bhts", q, k) * q.shape[-1] ** -0.5
    T = s.shape[-1]
    s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    return s.softmax(-1)


def _ids(lm, text=PROMPT) -> torch.Tensor:
    return torch.tensor([lm.tokenizer(text)["input_ids"]])                  # [1, T]


def _reference(lm, ids):
    with torch.no_grad():
        return lm.model(input_ids=ids, use_cache=False, output_hidden_states=True, output_attentions=True)


def _check_block(lm, got, ref, layer: int) -> None:
    fam, model = lm.arch.family, lm.model
    L = lm.n_layers
    b = BLOCK[fam](model, layer)
    s = lambda n: got[f"blocks.{layer}.{n}"]                                 # noqa: E731
    x = s("hook_resid_pre")
    _close(x, ref.hidden_states[layer], "resid_pre")
    if layer < L - 1:  # transformers' last hidden state is after the final norm
        _close(s("hook_resid_post"), ref.hidden_states[layer + 1], "resid_post")
    _close(s("attn.hook_pattern"), ref.attentions[layer], "pattern")
    q, k, v, z = s("attn.hook_q"), s("attn.hook_k"), s("attn.hook_v"), s("attn.hook_z")
    assert q.shape == z.shape == (1, x.shape[1], lm.n_heads, lm.d_head)
    assert k.shape == v.shape == (1, x.shape[1], lm.n_kv_heads, lm.d_head)
    _close(_pattern_from(q, k), ref.attentions[layer], "q, k reproduce the pattern")
    _close(z, _heads_mix(ref.attentions[layer], v), "z = pattern · v")
    with torch.no_grad():
        normed = b.get_submodule(ATTN_NORM[fam])(x)                          # [1, T, D]
        if fam == "gpt2":  # no rotary: q, k, v are plain slices of c_attn, by hand
            qkv = _lin(b.attn.c_attn, normed).chunk(3, -1)
            for name, part in zip(("q", "k", "v"), qkv):
                _close(s(f"attn.hook_{name}"), part.unflatten(-1, (-1, lm.d_head)), f"hook_{name} by hand")
        elif fam == "gpt_neox":  # per head q, k, v side by side
            _close(v, _lin(b.attention.query_key_value, normed).unflatten(-1, (-1, 3 * lm.d_head))[..., 2 * lm.d_head:],
                   "hook_v by hand")
        else:
            _close(v, _lin(b.get_submodule(OUT_PROJ[fam].split(".")[0]).v_proj, normed).unflatten(-1, (-1, lm.d_head)),
                   "hook_v by hand")
        a = s("hook_attn_out")
        _close(a, _lin(b.get_submodule(OUT_PROJ[fam]), z.flatten(-2)), "attn_out = out_proj(z) by hand")
        mlp_in, ins, down, act = MLP[fam]
        h = mlp_in(b, x, a)                                                  # [1, T, D]
        pre = _lin(b.get_submodule(ins[0]), h)                               # [1, T, M]
        _close(s("mlp.hook_pre"), pre, "mlp.hook_pre by hand")
        post = ACT2FN[act](pre)
        if len(ins) == 2:  # SwiGLU: act(gate) · up
            up = _lin(b.get_submodule(ins[1]), h)
            _close(s("mlp.hook_pre_linear"), up, "mlp.hook_pre_linear by hand")
            post = post * up
        _close(s("mlp.hook_post"), post, "mlp.hook_post by hand", atol=1e-4)
        _close(s("hook_mlp_out"), _lin(b.get_submodule(down), s("mlp.hook_post")), "mlp_out by hand")
        _close(s("hook_resid_post"), x + a + s("hook_mlp_out"), "resid_post = resid_pre + attn_out + mlp_out")


def test_every_site_equals_an_independent_reference(tiny):
    ids = _ids(tiny)
    before = hook_keys(tiny.model)
    names = site_names(tiny)
    got = capture_sites(tiny, ids, names)
    assert hook_keys(tiny.model) == before
    assert set(got) == set(names)
    ref = _reference(tiny, ids)
    L, T = tiny.n_layers, ids.shape[1]
    W_E = tiny.model.get_input_embeddings().weight
    _close(got["hook_embed"], W_E[ids], "hook_embed")
    if tiny.arch.family == "gpt2":
        _close(got["hook_pos_embed"], tiny.model.transformer.wpe.weight[:T][None], "hook_pos_embed")
        _close(got["blocks.0.hook_resid_pre"], got["hook_embed"] + got["hook_pos_embed"], "embed + pos")
    else:
        assert "hook_pos_embed" not in got
        _close(got["blocks.0.hook_resid_pre"], got["hook_embed"], "resid_pre[0] = embed")
    for layer in range(L):
        _check_block(tiny, got, ref, layer)
    normed = got["ln_final.hook_normalized"]
    _close(normed, ref.hidden_states[L], "ln_final = transformers' last hidden state")
    with torch.no_grad():
        _close(tiny.model.get_output_embeddings()(normed), ref.logits, "unembed(ln_final) = logits", atol=1e-4)


def test_trace_fields_are_the_named_sites(tiny):
    tr = ex.trace(tiny, PROMPT)
    got = capture_sites(tiny, torch.tensor(np.array(tr.token_ids))[None], site_names(tiny))
    L = tiny.n_layers
    np.testing.assert_allclose(tr.embed, got["hook_embed"][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(tr.resid[0], got["blocks.0.hook_resid_pre"][0].numpy(), atol=1e-6)
    for layer in range(L):
        np.testing.assert_allclose(tr.resid[layer + 1], got[f"blocks.{layer}.hook_resid_post"][0].numpy(), atol=1e-5)
        np.testing.assert_allclose(tr.attn[layer], got[f"blocks.{layer}.attn.hook_pattern"][0].numpy(), atol=1e-6)
        np.testing.assert_allclose(tr.mlp[layer], got[f"blocks.{layer}.mlp.hook_post"][0].numpy(), atol=1e-5)


def test_editing_a_site_reaches_the_output_and_an_identity_edit_changes_nothing(tiny):
    ids = _ids(tiny)
    with torch.no_grad():
        plain = tiny.model(input_ids=ids, use_cache=False).logits
    before = hook_keys(tiny.model)
    writable = [n for n in site_names(tiny) if site(tiny, n).writable]
    assert {"hook_embed", "blocks.1.attn.hook_z", "blocks.1.mlp.hook_post", "blocks.0.attn.hook_v"} <= set(writable)
    for name in writable:
        s = site(tiny, name)
        with hooks([s.editor(lambda v: v.clone())]), torch.no_grad():    # a new tensor, same values
            same = tiny.model(input_ids=ids, use_cache=False).logits
        _close(same, plain, f"identity edit of {name}")
        with hooks([s.editor(lambda v: v.mul_(0.5).add_(0.01))]), torch.no_grad():  # in place on the copy
            edited = tiny.model(input_ids=ids, use_cache=False).logits
        assert (edited - plain).abs().max() > 1e-4, f"editing {name} changed nothing"
    assert hook_keys(tiny.model) == before
    with torch.no_grad():
        _close(tiny.model(input_ids=ids, use_cache=False).logits, plain, "model untouched after the edits")


def test_read_only_sites_refuse_an_editor_and_say_why(tiny):
    with pytest.raises(ExplainerError, match="read but not replaced"):
        site(tiny, "blocks.0.attn.hook_pattern").editor(lambda v: v)
    q = site(tiny, "blocks.1.attn.hook_q")
    assert q.hooked == (tiny.arch.family == "gpt2")  # rotary families: derived after the rotation
    if not q.hooked:
        with pytest.raises(ExplainerError, match="derived"):
            q.editor(lambda v: v)


def test_unknown_site_names_the_valid_ones(tiny):
    with pytest.raises(ExplainerError) as e:
        site(tiny, "blocks.0.attn.hook_result")
    msg = str(e.value)
    assert "blocks.0.attn.hook_result" in msg
    for valid in ("hook_embed", "blocks.{l}.attn.hook_pattern", "blocks.{l}.mlp.hook_post", "ln_final.hook_normalized",
                  "from 0 to 1"):
        assert valid in msg, valid
    with pytest.raises(ExplainerError, match="Blocks go from 0 to 1"):
        site(tiny, "blocks.2.hook_resid_post")
    for bad in ("hook_resid_post", "blocks.x.hook_resid_post", "blocks.0.hook_embed", ""):
        with pytest.raises(ExplainerError, match="Valid sites"):
            site(tiny, bad)
    if tiny.arch.family != "gpt2":  # rotary positions: no position table, so no hook_pos_embed
        with pytest.raises(ExplainerError, match="no hook site 'hook_pos_embed'") as e:
            site(tiny, "hook_pos_embed")
        assert "hook_pos_embed" not in str(e.value).split("Valid sites:")[1]
    before = hook_keys(tiny.model)
    with pytest.raises(ExplainerError):
        capture_sites(tiny, _ids(tiny), ["blocks.0.hook_resid_pre", "blocks.0.nope"])  # refused before running
    assert hook_keys(tiny.model) == before


def test_family_records_hold_what_each_family_is():
    assert TINY_FAMILIES == tuple(a.family for a in FAMILIES) == ("gpt2", "llama", "gptj", "gpt_neox")
    assert {mt for a in FAMILIES for mt in a.model_types} == set(ARCHS)
    for a in FAMILIES:
        config = a.tiny_config(1000)
        assert ARCHS[config.model_type] is a and config.vocab_size == 1000
        assert a.activation(config) == MLP[a.family][3]
        assert a.parallel == PARALLEL[a.family]
        assert a.gated == (len(MLP[a.family][1]) == 2)
        # every site's module exists in a model built from the tiny config
        with torch.device("meta"):
            from transformers import AutoModelForCausalLM
            model = AutoModelForCausalLM.from_config(config)
        block = a.block_list(model)[0]
        for name, spec in a.sites.items():
            (model if name in ("hook_embed", "hook_pos_embed", "ln_final.hook_normalized") else block).get_submodule(
                spec.module)


# -- the bundled model (real weights) ----------------------------------------------------------------

def test_bundled_sites_equal_references(bundled):
    ids = _ids(bundled, "The Eiffel Tower is in the city of")
    layers = (0, 7, 28)
    names = [f"blocks.{i}.{n}" for i in layers for n in (
        "hook_resid_pre", "hook_resid_post", "attn.hook_pattern", "attn.hook_q", "attn.hook_k", "attn.hook_v",
        "attn.hook_z", "hook_attn_out", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out")]
    got = capture_sites(bundled, ids, names)
    ref = _reference(bundled, ids)
    for layer in layers:
        _check_block(bundled, got, ref, layer)
    assert got["blocks.7.attn.hook_k"].shape[2] == 3  # grouped-query: 3 key/value heads for 9 query heads
