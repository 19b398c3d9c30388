"""Values, weighted sums, concatenation and the output projection (explainer/attention_out.py) against the
model's own attention output, captured here with a plain forward hook on the output projection module
(named by hand per family, not taken from the family record), for every family and the bundled model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explainer as ex
from explainer.attention_out import head_outputs
from explainer.errors import RangeError
from explainer.sites import capture_sites
from tests.conftest import OUT_PROJ

PROMPT = "The quick brown fox jumps over the lazy dog because it"


def _model_own(lm, ids: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """(input, output) of block `layer`'s output projection in a plain forward pass.  # [T, H·dh], [T, D]"""
    got = {}
    mod = OUT_PROJ[lm.arch.family](lm.model, layer)
    h = mod.register_forward_hook(lambda m, args, out: got.update(z=args[0][0].clone(), out=out[0].clone()))
    try:
        with torch.no_grad():
            lm.model(input_ids=torch.tensor(ids)[None], use_cache=False)
    finally:
        h.remove()
    return got["z"].float().numpy(), got["out"].float().numpy()


def _check(lm, tr, layer: int, atol: float) -> None:
    ho = head_outputs(lm, tr, layer)
    T, H, Hkv, dh, D = tr.n_tokens, lm.n_heads, lm.n_kv_heads, lm.d_head, lm.d_model
    assert ho.values.shape == (Hkv, T, dh) and ho.z.shape == (H, T, dh)
    assert ho.concat.shape == (T, H * dh) and ho.out.shape == (T, D) and ho.parts.shape == (H, T, D)
    assert ho.w_o_shape == (H * dh, D)
    z_ref, out_ref = _model_own(lm, tr.token_ids, layer)
    # the weighted sums side by side are the output projection's input, and its output is the model's own
    np.testing.assert_allclose(ho.concat, z_ref, atol=atol, rtol=1e-4)
    np.testing.assert_allclose(ho.out, out_ref, atol=atol, rtol=1e-4)
    np.testing.assert_allclose(ho.model_out, out_ref, atol=1e-6)
    assert ho.max_error <= atol * 10
    # each head's z is its pattern times the values of its key/value head (hook_v from the sites)
    v_site = capture_sites(lm, torch.tensor(tr.token_ids)[None], [f"blocks.{layer}.attn.hook_v"])
    v_ref = next(iter(v_site.values()))[0].transpose(0, 1).float().numpy()       # [Hkv, T, dh]
    np.testing.assert_allclose(ho.values, v_ref, atol=atol, rtol=1e-4)
    for h in range(H):
        kv = h // (H // Hkv)
        np.testing.assert_array_equal(ho.value(h), ho.values[kv])
        np.testing.assert_allclose(ho.z[h], tr.attn[layer, h].astype(np.float64) @ v_ref[kv], atol=atol, rtol=1e-4)
    # the heads' parts plus the bias add up to the output, and a head's part is its z through its rows of W_O
    np.testing.assert_allclose(ho.parts.sum(axis=0) + ho.bias, out_ref, atol=atol * 10, rtol=1e-4)
    assert ho.sum_error <= atol * 10
    mod = OUT_PROJ[lm.arch.family](lm.model, layer)
    W = mod.weight.detach().float().numpy()
    W = W if type(mod).__name__ == "Conv1D" else W.T                            # [H·dh, D]
    b = np.zeros(D) if mod.bias is None else mod.bias.detach().float().numpy()
    np.testing.assert_allclose(ho.bias, b, atol=1e-7)
    for h in (0, H - 1):
        np.testing.assert_allclose(ho.parts[h], ho.z[h] @ W[h * dh:(h + 1) * dh], atol=atol, rtol=1e-4)
    np.testing.assert_allclose(ho.part_norms(-1), np.linalg.norm(ho.parts[:, -1], axis=-1), rtol=1e-5)


def test_values_weighted_sum_and_projection_equal_the_models_own_output_tiny(tiny):
    tr = ex.trace(tiny, PROMPT)
    for layer in range(tiny.n_layers):
        _check(tiny, tr, layer, atol=1e-5)


def test_values_weighted_sum_and_projection_equal_the_models_own_output_bundled(bundled):
    tr = ex.trace(bundled, "The Eiffel Tower is in the city of Paris, and the Colosseum is in")
    assert (bundled.n_heads, bundled.n_kv_heads, bundled.d_head) == (9, 3, 64)
    for layer in (0, 7, 28):
        _check(bundled, tr, layer, atol=1e-4)


def test_layer_out_of_range(tiny_gpt2):
    tr = ex.trace(tiny_gpt2, PROMPT)
    with pytest.raises(RangeError):
        head_outputs(tiny_gpt2, tr, tiny_gpt2.n_layers)
    ho = head_outputs(tiny_gpt2, tr, 0, check=False)
    assert ho.model_out is None and ho.max_error is None
