"""The trace's export: Trace.to_dict() keyed by the hook names, and the .npz bytes read back by plain numpy."""

from __future__ import annotations

import io

import numpy as np
import torch

import explainer as ex
from explainer.trace import LOGITS, TOKEN_IDS, load_npz

from .conftest import EIFFEL


def test_to_dict_is_keyed_by_hook_names(bundled, tr):
    d = tr.to_dict()
    L = bundled.n_layers
    assert set(d) == {TOKEN_IDS, "hook_embed", LOGITS, *(f"blocks.{i}.{s}" for i in range(L) for s in (
        "hook_resid_pre", "hook_resid_post", "attn.hook_pattern", "mlp.hook_post"))}
    assert d["blocks.3.attn.hook_pattern"].shape == (bundled.n_heads, tr.n_tokens, tr.n_tokens)
    np.testing.assert_array_equal(d["blocks.4.hook_resid_pre"], d["blocks.3.hook_resid_post"])
    np.testing.assert_array_equal(d[f"blocks.{L - 1}.hook_resid_post"], tr.resid[L])
    np.testing.assert_array_equal(d["blocks.5.mlp.hook_post"], tr.mlp[5])
    # the names are the engine's own sites: reading them through capture_sites gives the same values
    ids = torch.from_numpy(np.array(tr.token_ids))[None]
    names = ["hook_embed", "blocks.2.hook_resid_pre", "blocks.2.attn.hook_pattern", "blocks.2.mlp.hook_post"]
    caught = ex.capture_sites(bundled, ids, names)
    for n in names:
        np.testing.assert_allclose(caught[n][0].float().numpy(), d[n], atol=1e-5)


def test_to_dict_has_learned_positions_where_the_model_has_them(tiny_gpt2):
    tr = ex.trace(tiny_gpt2, EIFFEL)
    assert tr.to_dict()["hook_pos_embed"].shape == (tr.n_tokens, tiny_gpt2.d_model)


def test_npz_round_trip(bundled, tr):
    back = load_npz(tr.to_npz())
    d = tr.to_dict()
    assert set(back) == set(d) | {"tokens", "prompt", "model"}
    for name, a in d.items():
        assert back[name].dtype == a.dtype and back[name].shape == a.shape, name
        np.testing.assert_array_equal(back[name], a, err_msg=name)
    assert list(back["tokens"]) == list(tr.tokens)
    assert str(back["prompt"]) == tr.text and str(back["model"]) == tr.model_name
    with np.load(io.BytesIO(tr.to_npz())) as z:         # plain numpy, no pickle needed
        assert z["blocks.0.attn.hook_pattern"].shape == tr.attn[0].shape
