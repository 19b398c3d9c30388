"""MLP neuron helpers against direct numpy on trace.mlp, and the activations against the model's own MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explainer as ex
from explainer import mlp
from tests.conftest import EIFFEL

# tr, the bundled model's trace of EIFFEL, comes from conftest.py


@pytest.mark.parametrize("skip_first", [False, True])
def test_top_neurons_by_hand(tr, skip_first):
    layer, n = 12, 15
    a = tr.mlp[layer].astype(np.float64)                                    # [T, M]
    score = np.abs(a[1:] if skip_first else a).max(0)                      # [M]
    want = sorted(range(a.shape[1]), key=lambda j: -score[j])[:n]
    ns = mlp.top_neurons(tr, layer, n, skip_first=skip_first)
    assert ns.layer == layer and ns.skipped_first == skip_first
    np.testing.assert_array_equal(ns.neurons, want)
    np.testing.assert_allclose(ns.score, score[want], rtol=1e-6)
    np.testing.assert_allclose(ns.acts, a[:, want], rtol=1e-6)
    assert (np.diff(ns.score) <= 0).all()


def test_skipping_the_first_token_changes_the_ranking(tr):
    # the bundled model parks huge activations on the first token in some layers: there the flag must matter
    peak = np.abs(tr.mlp).max(-1)                                          # [L, T]
    layer = int(np.argmax(peak[:, 0] / peak[:, 1:].max(-1)))
    assert peak[layer, 0] > 10 * peak[layer, 1:].max()
    with_first = mlp.top_neurons(tr, layer, 20).neurons
    without = mlp.top_neurons(tr, layer, 20, skip_first=True).neurons
    assert set(with_first.tolist()) != set(without.tolist())
    assert mlp.top_neurons(tr, layer, 20, skip_first=True).score.max() < peak[layer, 0]


def test_top_neurons_at_and_one_neuron_by_hand(tr):
    layer, pos = 20, tr.n_tokens - 1
    a = tr.mlp[layer, pos].astype(np.float64)                              # [M]
    want = np.argsort(-np.abs(a), kind="stable")[:10]
    tn = mlp.top_neurons_at(tr, layer, pos, n=10)
    np.testing.assert_array_equal(tn.neurons, want)
    np.testing.assert_allclose(tn.acts, a[want], rtol=1e-6)             # signed
    neuron = int(want[0])
    np.testing.assert_array_equal(mlp.neuron_activation(tr, layer, neuron), tr.mlp[layer, :, neuron])
    assert mlp.top_neurons_at(tr, -1, -1, n=3).position == pos           # negative indices count from the end


def test_histogram_and_layer_activity_by_hand(tr):
    h = mlp.activation_histogram(tr, 5, bins=40, skip_first=True)
    v = tr.mlp[5, 1:].ravel().astype(np.float64)
    counts, edges = np.histogram(v, bins=40)
    np.testing.assert_array_equal(h.counts, counts)
    np.testing.assert_allclose(h.edges, edges)
    assert h.counts.sum() == (tr.n_tokens - 1) * tr.mlp.shape[2]
    assert h.mean == pytest.approx(v.mean()) and h.std == pytest.approx(v.std())
    assert h.frac_positive == pytest.approx((v > 0).mean()) and (h.min, h.max) == (v.min(), v.max())
    small = sum(abs(x) < 0.1 * max(abs(v.min()), abs(v.max())) for x in v) / v.size   # counted one by one
    assert h.frac_small == pytest.approx(small) and h.sparse == (small >= 0.9)
    acts = tr.mlp[5, :, 3]
    assert mlp.peak(acts) == max(range(len(acts)), key=lambda t: abs(acts[t]))
    assert mlp.peak(acts, skip_first=True) == max(range(1, len(acts)), key=lambda t: abs(acts[t]))
    act = mlp.layer_activity(tr)
    np.testing.assert_allclose(act, np.abs(tr.mlp).max(-1))
    skipped = mlp.layer_activity(tr, skip_first=True)
    assert np.isnan(skipped[:, 0]).all() and np.array_equal(skipped[:, 1:], act[:, 1:])


def test_neurons_add_activation_times_their_output_column(tiny_gpt2):
    """The docstring's claim, from the weights: MLP output = Σ_n act_n · W_down[n] + bias."""
    lm = tiny_gpt2
    tr = ex.trace(lm, EIFFEL)
    block = lm.model.transformer.h[1]
    seen = {}
    def keep(m, a, out) -> None:  # a forward hook that returns a value would replace the MLP's output
        seen["out"] = out[0].detach().numpy()

    handle = block.mlp.register_forward_hook(keep)
    try:
        with torch.no_grad():                                              # a plain forward pass
            lm.model(torch.tensor([tr.token_ids.tolist()]), use_cache=False)
    finally:
        handle.remove()
    w = block.mlp.c_proj.weight.detach().numpy()                           # [M, D] (Conv1D: rows = neurons)
    b = block.mlp.c_proj.bias.detach().numpy()
    np.testing.assert_allclose(tr.mlp[1] @ w + b, seen["out"], rtol=1e-4, atol=1e-5)


def test_bad_indices_raise_range_errors(tr):
    L, T, M = tr.mlp.shape
    for call in (lambda: mlp.top_neurons(tr, L), lambda: mlp.top_neurons_at(tr, 0, T),
                 lambda: mlp.neuron_activation(tr, 0, M), lambda: mlp.neuron_activation(tr, 0, -1)):
        with pytest.raises(ex.RangeError):
            call()


def test_the_curated_neuron_is_what_its_search_finds_and_holds_on_new_sentences(bundled):
    import re

    from explainer import content

    layer, neuron, _, _ = content.CURATED_NEURON["bundled"]
    is_number = lambda t: re.fullmatch(content.NUMBER_PATTERN, t) is not None   # noqa: E731
    found = mlp.search_neurons(bundled, content.NUMBER_SEARCH, is_number, k=3)
    assert (layer, neuron) in [(s.layer, s.neuron) for s in found]
    rep = mlp.neuron_report(bundled, layer, neuron, content.NUMBER_CHECK, is_number)   # sentences never searched
    assert set(content.NUMBER_CHECK).isdisjoint(content.NUMBER_SEARCH)
    assert rep.n_members >= 10 and rep.precision >= 0.8 and rep.mean_members > 20 * abs(rep.mean_rest)
    # by hand for one sentence: the neuron's activation is its column of the trace
    tr = ex.trace(bundled, content.NUMBER_CHECK[0])
    acts = tr.mlp[layer, 1:, neuron]
    nums = [i for i, t in enumerate(tr.tokens[1:]) if is_number(t)]
    assert min(acts[nums]) > max(np.delete(acts, nums))                # every number beats every other token
