"""Word order (explainer/positions.py): the rotary picture uses the model's own frequencies (its rotary module's
inv_freq, equal to the config's 1/base^(2i/rot)), and GPT-2's learned positions come from its wpe table."""

from __future__ import annotations

import numpy as np
import pytest

import explainer as ex
from explainer.figures import attention as fa
from explainer.positions import Learned, Rotary, positions


def _by_hand(sim_dh: int, rot: int, theta: np.ndarray, d: np.ndarray) -> np.ndarray:
    """q·k of the all-ones vector at distance d over its value at 0: each turned pair gives 2·cos(d·θ), each
    unturned number 1."""
    return (2 * np.cos(d[:, None] * theta[None]).sum(axis=1) + (sim_dh - rot)) / sim_dh


def _check_rotary(lm, base: float, rot: int, interleaved: bool) -> Rotary:
    pos = positions(lm)
    assert isinstance(pos, Rotary) and (pos.rot_dims, pos.interleaved, pos.base) == (rot, interleaved, base)
    want = 1.0 / base ** (np.arange(0, rot, 2) / rot)                                # [rot/2] from the config
    np.testing.assert_allclose(pos.config_inv_freq, want, rtol=1e-12)
    np.testing.assert_allclose(pos.inv_freq, want, rtol=2e-6)
    assert pos.matches_config
    np.testing.assert_allclose(pos.similarity, _by_hand(lm.d_head, rot, want, pos.distances.astype(float)),
                               atol=2e-5)
    assert pos.similarity[0] == pytest.approx(1.0)
    # the figure draws exactly these speeds, fastest pair first
    fig = fa.rotary_speeds(pos.degrees_per_token, [pos.pair(i) for i in range(pos.n_pairs)])
    np.testing.assert_allclose(np.asarray(fig.data[0].y, dtype=float), np.degrees(pos.inv_freq), rtol=1e-6)
    assert np.all(np.diff(fig.data[0].y) < 0)
    return pos


def test_bundled_rotary_uses_the_models_own_frequencies(bundled):
    pos = _check_rotary(bundled, 100000.0, 64, interleaved=False)
    buf = bundled.model.model.rotary_emb.inv_freq.double().numpy()
    np.testing.assert_array_equal(pos.inv_freq, buf)                                  # read, not recomputed
    assert pos.source == "rotary_emb.inv_freq" and pos.pair(0) == (0, 32) and pos.pair(31) == (31, 63)
    assert pos.degrees_per_token[0] == pytest.approx(np.degrees(1.0))
    assert pos.wavelength[-1] == pytest.approx(2 * np.pi * 100000 ** (62 / 64))
    assert len(pos.distances) == 1024


@pytest.mark.parametrize("family, base, rot, interleaved", [
    ("llama", 10000.0, 16, False),        # tiny: d_head 16, every number turned
    ("gpt_neox", 10000.0, 4, False),      # rotary_pct 0.25 of 16
    ("gptj", 10000.0, 8, True),           # rotary_dim 8, neighbours paired
])
def test_tiny_rotary_families_use_their_own_frequencies(family, base, rot, interleaved):
    lm = ex.tiny_model(family, seed=0)
    pos = _check_rotary(lm, base, rot, interleaved)
    if family != "gptj":
        np.testing.assert_array_equal(pos.inv_freq, lm.arch.base_model(lm.model).rotary_emb.inv_freq.double().numpy())


def test_gpt2_shows_its_learned_position_vectors(tiny_gpt2):
    pos = positions(tiny_gpt2)
    assert isinstance(pos, Learned)
    w = tiny_gpt2.model.transformer.wpe.weight.detach().double().numpy()[:pos.shown]   # [P, D]
    cos = (w @ w.T) / np.outer(np.linalg.norm(w, axis=1), np.linalg.norm(w, axis=1))
    np.testing.assert_allclose(pos.similarity, cos, atol=1e-12)
    assert (pos.n_ctx, pos.d_model, pos.shown) == (128, 64, 64)
    assert pos.mean_similarity(1) == pytest.approx(np.mean([cos[i, i + 1] for i in range(pos.shown - 1)]))
    fig = fa.position_similarity(pos.similarity)
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), cos, atol=5e-4)


def test_value_figures_are_readable_and_rounded():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(20, 64))
    fig = fa.vector_rows(v, [f"t{i}" for i in range(20)], "V", lim=4.0)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert fig.data[0].zmin == -4.0 and fig.data[0].zmax == 4.0
    np.testing.assert_allclose(z, v, atol=8 / 256 / 2)
    bars = fa.head_parts(np.array([1.0, 3.0, 2.0]), 2, "parts")
    assert list(bars.data[0].marker.color) == [fa.OTHER_HEADS, fa.OTHER_HEADS, fa.PICK]
    for f in (fig, bars, fa.rotary_distance(np.arange(5), np.ones(5))):
        assert f.layout.font.size >= 14
    assert bars.data[0].textfont.size >= 14


def test_step_ratio_is_base_to_the_minus_two_over_rot(bundled):
    from explainer.positions import positions

    pos = positions(bundled)
    assert pos.step_ratio == pytest.approx(pos.base ** (-2 / pos.rot_dims), rel=1e-5)
