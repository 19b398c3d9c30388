"""The model map (`explainer.model_map`) against the real model: its parts' parameters add up to the model's
unique parameters and to anatomy's formula, and each part's shape is the shape of the tensor seen at that
place, caught with forward hooks the test registers itself on the real modules (written out by hand per
family below, not taken from the map or the family records).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import explainer as ex
from explainer.anatomy import count_parameters
from explainer.model_map import PAGES, part_values
from explainer.sites import capture_sites
from tests.conftest import EIFFEL

PROMPT = "The quick brown fox jumps over the lazy dog because it"

# Where each part's tensor is, by hand: (module path, "in" | "out", tuple index). Block parts are relative to
# the block; None: the family has no such part. "qkv" names a fused projection split into thirds.
ROOT = {
    "gpt2": {"embed": "transformer.wte", "pos": "transformer.wpe", "final_norm": "transformer.ln_f",
             "rotary": None, "block": "transformer.h"},
    "llama": {"embed": "model.embed_tokens", "pos": None, "final_norm": "model.norm", "rotary": "model.rotary_emb",
              "block": "model.layers"},
    "gptj": {"embed": "transformer.wte", "pos": None, "final_norm": "transformer.ln_f",
             "rotary": "transformer.rotary_emb", "block": "transformer.h"},
    "gpt_neox": {"embed": "gpt_neox.embed_in", "pos": None, "final_norm": "gpt_neox.final_layer_norm",
                 "rotary": "gpt_neox.rotary_emb", "block": "gpt_neox.layers"},
}
BLOCK = {
    "gpt2": {"attn_norm": ("ln_1", "out", None), "qkv": ("attn.c_attn", "out", None),
             "attn.z": ("attn.c_proj", "in", None), "attn.pattern": ("attn", "out", 1),
             "attn.out": ("attn", "out", 0), "add_attn": ("ln_2", "in", None), "mlp_norm": ("ln_2", "out", None),
             "mlp.up": ("mlp.c_fc", "out", None), "mlp.act": ("mlp.c_proj", "in", None),
             "mlp.down": ("mlp", "out", None), "add_mlp": ("", "out", 0)},
    "llama": {"attn_norm": ("input_layernorm", "out", None), "attn.q": ("self_attn.q_proj", "out", None),
              "attn.k": ("self_attn.k_proj", "out", None), "attn.v": ("self_attn.v_proj", "out", None),
              "attn.z": ("self_attn.o_proj", "in", None), "attn.pattern": ("self_attn", "out", 1),
              "attn.out": ("self_attn", "out", 0), "add_attn": ("post_attention_layernorm", "in", None),
              "mlp_norm": ("post_attention_layernorm", "out", None), "mlp.gate": ("mlp.gate_proj", "out", None),
              "mlp.up": ("mlp.up_proj", "out", None), "mlp.act": ("mlp.down_proj", "in", None),
              "mlp.down": ("mlp", "out", None), "add_mlp": ("", "out", 0)},
    "gptj": {"attn_norm": ("ln_1", "out", None), "attn.q": ("attn.q_proj", "out", None),
             "attn.k": ("attn.k_proj", "out", None), "attn.v": ("attn.v_proj", "out", None),
             "attn.z": ("attn.out_proj", "in", None), "attn.pattern": ("attn", "out", 1),
             "attn.out": ("attn", "out", 0), "mlp.up": ("mlp.fc_in", "out", None),
             "mlp.act": ("mlp.fc_out", "in", None), "mlp.down": ("mlp", "out", None), "add_mlp": ("", "out", 0)},
    "gpt_neox": {"attn_norm": ("input_layernorm", "out", None), "qkv": ("attention.query_key_value", "out", None),
                 "attn.z": ("attention.dense", "in", None), "attn.pattern": ("attention", "out", 1),
                 "attn.out": ("attention", "out", 0), "mlp_norm": ("post_attention_layernorm", "out", None),
                 "mlp.up": ("mlp.dense_h_to_4h", "out", None), "mlp.act": ("mlp.dense_4h_to_h", "in", None),
                 "mlp.down": ("mlp", "out", None), "add_mlp": ("", "out", 0)},
}
PARALLEL = {"gpt2": False, "llama": False, "gptj": True, "gpt_neox": True}
HEADS = ("q", "k", "v", "z")   # kinds shown split into heads: [T, n, dh] of a [T, n·dh] tensor


def _unique_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {p.data_ptr(): p for p in model.parameters()}.values())


def _seen(lm, ids: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """One forward pass with the test's own hooks: the shape (batch axis dropped) of every tensor in the
    hand tables, keyed as the map keys its parts."""
    family, model = lm.arch.family, lm.model
    root = ROOT[family]
    got: dict[str, tuple[int, ...]] = {}
    handles = []

    def watch(key: str, module: torch.nn.Module, io: str, index: int | None, split: bool = False):
        def keep(t: torch.Tensor):
            if isinstance(t, (tuple, list)):                    # an element of a tuple output (the first by default)
                t = t[index or 0]
            if split:                                           # fused q, k, v: three equal thirds
                third = t.shape[-1] // 3
                for name in ("q", "k", "v"):
                    got[key.replace("qkv", f"attn.{name}")] = (*t.shape[1:-1], third)
            else:
                got.setdefault(key, tuple(t.shape[1:]))
        if io == "in":
            handles.append(module.register_forward_pre_hook(
                lambda m, args, kwargs: keep(args[0] if args else kwargs["hidden_states"]), with_kwargs=True))
        else:
            handles.append(module.register_forward_hook(lambda m, args, out: keep(out)))

    for key in ("embed", "pos", "final_norm"):
        if root[key]:
            watch(key, model.get_submodule(root[key]), "out", None)
    watch("unembed", model.get_output_embeddings(), "out", None)
    blocks = model.get_submodule(root["block"])
    for layer, block in enumerate(blocks):
        if root["rotary"]:   # computed once per forward pass, before the blocks, and used by every block
            watch(f"blocks.{layer}.attn.rotary", model.get_submodule(root["rotary"]), "out", 0)
        for key, (path, io, index) in BLOCK[family].items():
            watch(f"blocks.{layer}.{key}", block.get_submodule(path), io, index, split=key == "qkv")
    try:
        with torch.inference_mode():
            model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    got["tokens"] = (ids.shape[1],)
    got["softmax"] = got["unembed"]
    return got


def _check_map(lm, text: str) -> ex.ModelMap:
    tr = ex.trace(lm, text)
    mm = ex.model_map(lm, tr)
    ids = torch.tensor(tr.token_ids, dtype=torch.long)[None]
    seen = _seen(lm, ids)

    # parameters: every part owns its own, tied ones once
    assert mm.total_params == _unique_params(lm.model)
    assert mm.total_params == count_parameters(lm.config).total
    assert all(p.params >= 0 for p in mm)

    # shapes: each part's equals the tensor at that place
    keys = [p.key for p in mm]
    assert len(set(keys)) == len(keys)
    assert set(keys) == set(seen), (set(keys) ^ set(seen))
    cfg = lm.config
    n_heads = cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_heads
    for p in mm:
        want = seen[p.key]
        if p.kind in HEADS:
            assert (p.shape[0], p.shape[1] * p.shape[2]) == (want[0], math.prod(want[1:])), p.key
            assert p.shape[1] == (n_kv if p.kind in ("k", "v") else n_heads), p.key
        else:
            assert p.shape == want, (p.key, p.shape, want)

    # hook names: every named site exists, and its value has the part's shape
    hooked = [p for p in mm if p.hook]
    values = capture_sites(lm, ids, [p.hook for p in hooked])
    for p in hooked:
        assert tuple(values[p.hook].shape[1:]) == p.shape, p.key

    # order and structure
    assert keys[0] == "tokens" and keys[1] == "embed" and keys[-3:] == ["final_norm", "unembed", "softmax"]
    layers = [p.layer for p in mm if p.layer is not None]
    assert layers == sorted(layers) and set(layers) == set(range(lm.n_layers))
    assert all(p.page in PAGES.values() for p in mm)
    return mm


def test_tiny_models_map(tiny):
    mm = _check_map(tiny, PROMPT)
    family = tiny.arch.family
    assert mm.parallel is PARALLEL[family]
    assert all(p.parallel is PARALLEL[family] for p in mm if p.layer is not None)
    assert not any(p.parallel for p in mm if p.layer is None)
    block = [p.key.split(".", 2)[2] for p in mm.block(0)]
    if PARALLEL[family]:   # one add at the end, both branches reading the block input
        assert "add_attn" not in block and block[-1] == "add_mlp"
    else:
        assert block.index("attn.out") < block.index("add_attn") < block.index("mlp_norm") < block.index("add_mlp")
    assert ("pos" in [p.key for p in mm]) is (family == "gpt2")
    assert any(p.kind == "rotary" for p in mm) is (family != "gpt2")
    assert mm.tied is (family in ("gpt2", "llama"))


def test_every_box_id_is_a_link_value(tiny):
    from explainer import lessons
    from explainer.figures.model_map import BLOCK_BOX, box_id
    ids = {box_id(p) for p in ex.model_map(tiny, ex.trace(tiny, PROMPT))} | {BLOCK_BOX}
    assert ids <= set(lessons.RULES["box"].options)


def test_bundled_model_map(bundled):
    mm = _check_map(bundled, EIFFEL)
    assert not mm.parallel and mm.tied and mm.n_layers == 30
    assert mm.get("embed").params == 49152 * 576 and mm.get("unembed").params == 0
    assert mm.get("blocks.0.attn.k").shape[1:] == (3, 64) and mm.get("blocks.0.attn.q").shape[1:] == (9, 64)
    assert mm.get("blocks.0.mlp.act").shape[1] == 1536


def test_part_values_are_the_models_own(tiny_gpt2):
    lm = tiny_gpt2
    tr = ex.trace(lm, PROMPT)
    mm = ex.model_map(lm, tr)
    ids = torch.tensor(tr.token_ids)[None]
    pos = 3
    ref = capture_sites(lm, ids, ["blocks.1.hook_resid_pre", "blocks.0.hook_attn_out", "blocks.0.hook_resid_pre",
                                  "blocks.1.attn.hook_q"])
    np.testing.assert_allclose(part_values(lm, tr, mm.get("blocks.0.add_attn"), pos),
                               (ref["blocks.0.hook_resid_pre"] + ref["blocks.0.hook_attn_out"])[0, pos], atol=1e-5)
    np.testing.assert_allclose(part_values(lm, tr, mm.get("blocks.0.add_mlp"), pos),
                               ref["blocks.1.hook_resid_pre"][0, pos], atol=1e-5)
    np.testing.assert_allclose(part_values(lm, tr, mm.get("blocks.1.attn.q"), pos),
                               ref["blocks.1.attn.hook_q"][0, pos], atol=1e-6)
    for p in mm:
        v = part_values(lm, tr, p, pos)
        if p.kind == "pattern":
            assert v.shape == (p.shape[0], p.shape[2])
            np.testing.assert_allclose(v.sum(-1), 1.0, atol=1e-5)
        elif p.kind != "tokens":
            assert v.shape == p.shape[1:], p.key
    np.testing.assert_allclose(part_values(lm, tr, mm.get("softmax"), pos).sum(), 1.0, atol=1e-9)
    with pytest.raises(ex.RangeError):
        part_values(lm, tr, mm.get("embed"), tr.n_tokens)


def test_the_zoomed_strip_holds_the_largest_numbers_by_size_in_dimension_order():
    from explainer.figures import model_map as fm

    rng = np.random.default_rng(5)
    v = rng.normal(0, 1, 576).astype(np.float32)
    v[[7, 300, 511]] = [-40.0, 25.0, 30.0]
    heat = fm.vector_zoom(v, 24).data[0]
    ref = sorted(range(576), key=lambda d: -abs(float(v[d])))[:24]          # by hand: sort by size, keep 24
    assert list(heat.x) == [f"d{d}" for d in sorted(ref)]
    np.testing.assert_array_equal(np.asarray(heat.z)[0], v[sorted(ref)])
    assert heat.zmin == -40.0 and heat.zmax == 40.0                        # the full strip's colour range
    assert {"d7", "d300", "d511"} <= set(heat.x)


def test_the_page_zooms_into_the_embedding_of_the_last_token(offline, bundled):
    """The Model map page opens on the token embedding, a strip of 576 cells of about 1 px on a projector; the
    zoomed strip under it holds that vector's 24 largest numbers, read here from the model's embedding table."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import chart, page_ok, plotly_array

    at = AppTest.from_file("../pages/0_Model_map.py", default_timeout=180).run()
    page_ok(at)
    last = bundled.tokenizer(at.session_state._prompt)["input_ids"][-1]
    row = bundled.model.get_input_embeddings().weight[last].detach().float().numpy()        # [576]
    top = sorted(sorted(range(row.shape[0]), key=lambda d: -abs(float(row[d])))[:24])
    heat = chart(at, "mm_values_zoom")["data"][0]
    assert heat["x"] == [f"d{d}" for d in top]
    np.testing.assert_allclose(plotly_array(heat["z"])[0], row[top], rtol=1e-6)
    assert "no larger in size than any of these" in " ".join(c.value for c in at.caption)
