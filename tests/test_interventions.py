"""Ablations against independent references: the same head or neuron zeroed in the weights of a deep copy
of the model; hooks removed (also after an error); the shared model untouched; threads kept apart."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import explainer as ex
from explainer import interventions as iv
from explainer.capture import hooks
from explainer.sampling import softmax
from tests.conftest import OUT_PROJ, hook_keys, run_concurrently

PROMPT = "The Eiffel Tower is in the city of"

# Written out by hand per family (not taken from the code under test): the MLP down-projection, whose input
# is the neurons (the attention output projection, OUT_PROJ, is shared from conftest).
DOWN_PROJ = {
    "gpt2": lambda m, i: m.transformer.h[i].mlp.c_proj,
    "llama": lambda m, i: m.model.layers[i].mlp.down_proj,
    "gptj": lambda m, i: m.transformer.h[i].mlp.fc_out,
    "gpt_neox": lambda m, i: m.gpt_neox.layers[i].mlp.dense_4h_to_h,
}


def _zero_inputs(module: torch.nn.Module, cols) -> None:
    """Zero the weights that read the given input features: nn.Linear is [out, in], GPT-2's Conv1D [in, out]."""
    with torch.no_grad():
        if type(module).__name__ == "Conv1D":
            module.weight[cols, :] = 0
        else:
            module.weight[:, cols] = 0


def _logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([[int(i) for i in ids]]), use_cache=False).logits[0].float().numpy()  # [T, V]


def _reference(lm, heads=(), neurons=()) -> np.ndarray:
    """Logits of a deep copy whose weights zero the given heads and neurons."""
    model = copy.deepcopy(lm.model)
    fam, dh = lm.arch.family, lm.d_head
    for layer, h in heads:
        _zero_inputs(OUT_PROJ[fam](model, layer), slice(h * dh, (h + 1) * dh))
    for layer, n in neurons:
        _zero_inputs(DOWN_PROJ[fam](model, layer), [n])
    ids = lm.tokenizer(PROMPT)["input_ids"]
    return _logits(model, ids)




def test_ablating_nothing_changes_nothing(tiny):
    plain = _logits(tiny.model, tiny.tokenizer(PROMPT)["input_ids"])
    res = iv.ablate(tiny, PROMPT)
    np.testing.assert_allclose(res.logits_before, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(res.logits_after, res.logits_before)
    assert not res.changed and iv.ablation_hooks(tiny) == []
    # hooks that zero nothing at all leave the forward pass exactly as it was
    with hooks([(iv.attn_out_proj(tiny, 0), "pre", iv._zero_columns([]))]):
        np.testing.assert_array_equal(_logits(tiny.model, res.token_ids), _logits(tiny.model, res.token_ids))
        np.testing.assert_allclose(_logits(tiny.model, res.token_ids), plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("heads", [[(1, 2)], [(0, 0), (1, 3), (1, 1)]])
def test_ablating_heads_equals_zeroing_their_output_weights(tiny, heads):
    before = hook_keys(tiny.model)
    res = iv.ablate(tiny, PROMPT, heads=heads)
    ref = _reference(tiny, heads=heads)
    assert res.changed and np.abs(res.logits_after - res.logits_before).max() > 1e-3
    np.testing.assert_allclose(res.logits_after, ref, rtol=1e-4, atol=1e-5)
    assert hook_keys(tiny.model) == before


def test_ablating_neurons_equals_zeroing_their_down_projection_weights(tiny):
    neurons = [(0, 5), (1, 17), (1, 40)]
    res = iv.ablate(tiny, PROMPT, neurons=neurons)
    ref = _reference(tiny, neurons=neurons)
    assert np.abs(res.logits_after - res.logits_before).max() > 1e-4
    np.testing.assert_allclose(res.logits_after, ref, rtol=1e-4, atol=1e-5)


def test_heads_and_neurons_together_on_the_bundled_model(bundled):
    tr = ex.trace(bundled, PROMPT)
    heads, neurons = [(3, 4), (20, 8)], [(11, 100), (28, 7)]
    res = iv.ablate(bundled, tr, heads=heads, neurons=neurons)          # "before" comes from the trace
    np.testing.assert_array_equal(res.logits_before, tr.logits)
    np.testing.assert_allclose(res.logits_after, _reference(bundled, heads, neurons), rtol=1e-4, atol=2e-4)
    cmp = iv.compare(bundled, res, k=5)
    assert cmp.tokens[0] == " Paris" and cmp.top_before == int(np.argmax(tr.logits[-1]))
    np.testing.assert_allclose(cmp.after, res.probs_after[cmp.ids])
    assert set(np.argsort(-res.probs_after)[:5].tolist()) <= set(cmp.ids.tolist())
    pb, pa = res.probs_before.astype(np.float64), res.probs_after.astype(np.float64)
    keep = pb > 0
    assert cmp.kl_bits == pytest.approx(float((pb[keep] * np.log2(pb[keep] / pa[keep])).sum()), rel=1e-6)
    assert cmp.top_after == int(np.argmax(pa)) and cmp.prob_after(cmp.top_after) == pytest.approx(pa.max())
    assert cmp.token(cmp.top_before) == " Paris" and cmp.prob_before(cmp.top_before) == pytest.approx(pb.max())


def test_shared_model_untouched_and_hooks_removed_after_an_error(tiny_gpt2):
    lm = tiny_gpt2
    state = {k: v.clone() for k, v in lm.model.state_dict().items()}
    tr = ex.trace(lm, PROMPT)
    before = hook_keys(lm.model)
    boom = lm.model.transformer.ln_f.register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            iv.ablate(lm, tr, heads=[(0, 1)], neurons=[(1, 3)])        # fails inside the ablated pass
    finally:
        boom.remove()
    assert hook_keys(lm.model) == before
    iv.ablate(lm, tr, heads=[(0, 1), (1, 0)], neurons=[(1, 3)])
    assert hook_keys(lm.model) == before
    after = lm.model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    np.testing.assert_allclose(_logits(lm.model, tr.token_ids), tr.logits, rtol=1e-5, atol=1e-5)


def test_two_threads_ablating_differently_get_their_own_results(tiny_gpt2):
    lm = tiny_gpt2
    tr = ex.trace(lm, PROMPT)
    before = hook_keys(lm.model)
    jobs = {"a": dict(heads=[(0, 0)]), "b": dict(neurons=[(1, 9), (0, 3)]), "c": dict(heads=[(1, 2), (1, 3)])}
    alone = {name: iv.ablate(lm, tr, **kw).logits_after for name, kw in jobs.items()}
    results, errors = run_concurrently(
        lambda name: [iv.ablate(lm, tr, **jobs[name]).logits_after for _ in range(5)], jobs)
    assert not errors, errors
    for name, got in zip(jobs, results, strict=True):
        assert len(got) == 5
        for logits in got:
            np.testing.assert_allclose(logits, alone[name], rtol=1e-5, atol=1e-5)
    assert hook_keys(lm.model) == before


def test_attribution_matches_a_finite_difference(tiny_gpt2):
    """The estimate for a head is d log p / d(scale of its output) at scale 1, negated: check it numerically."""
    lm = tiny_gpt2
    tr = ex.trace(lm, PROMPT)
    attr = iv.attribution(lm, tr)
    target = int(np.argmax(tr.logits[-1]))
    assert attr.target_id == target
    dh, eps = lm.d_head, 1e-2

    def logp(scale_head=None, scale_neuron=None):
        def scaled(cols, s):
            def fn(mod, args, kwargs):
                x = args[0].clone()
                x[..., cols] *= s
                return (x, *args[1:]), kwargs
            return fn
        pairs = []
        if scale_head:
            (layer, h), s = scale_head
            pairs.append((OUT_PROJ["gpt2"](lm.model, layer), "pre", scaled(slice(h * dh, (h + 1) * dh), s)))
        if scale_neuron:
            (layer, n), s = scale_neuron
            pairs.append((DOWN_PROJ["gpt2"](lm.model, layer), "pre", scaled([n], s)))
        with hooks(pairs), torch.no_grad():
            z = lm.model(torch.tensor([tr.token_ids.tolist()]), use_cache=False).logits[0, -1].double()
        return float(torch.log_softmax(z, -1)[target])

    base = logp()
    assert attr.logprob == pytest.approx(base, abs=1e-4)
    for hd in attr.top_heads(2):
        fd = (logp(scale_head=(hd, 1 - eps)) - logp(scale_head=(hd, 1 + eps))) / 2  # ≈ −grad·x · eps
        assert attr.heads[hd] * eps == pytest.approx(fd, rel=0.05, abs=1e-6)
    for nn_ in attr.top_neurons(2):
        fd = (logp(scale_neuron=(nn_, 1 - eps)) - logp(scale_neuron=(nn_, 1 + eps))) / 2
        assert attr.neurons[nn_] * eps == pytest.approx(fd, rel=0.05, abs=1e-6)
    assert attr.heads[attr.top_heads(1)[0]] == attr.heads.min() < 0


def test_labels_parse_and_bad_parts_raise_prompt_errors(tiny_gpt2):
    assert iv.parse_heads("L3.H5, 4.2") == [(3, 5), (4, 2)]
    assert iv.parse_heads(["L0.H1"]) == [(0, 1)]
    assert iv.parse_neurons("L15.N1274 20.7") == [(15, 1274), (20, 7)]
    assert iv.parse_neurons("") == []
    for bad in ("L3", "L3.Hx", "three.four"):
        with pytest.raises(ex.PromptError):
            iv.parse_heads(bad)
    with pytest.raises(ex.RangeError):
        iv.ablate(tiny_gpt2, PROMPT, heads=[(2, 0)])                     # the tiny model has 2 layers
    with pytest.raises(ex.RangeError):
        iv.ablate(tiny_gpt2, PROMPT, neurons=[(0, tiny_gpt2.d_mlp)])


def _copy_weights_zeroed(lm, heads):
    model = copy.deepcopy(lm.model)
    for layer, h in heads:
        _zero_inputs(OUT_PROJ[lm.arch.family](model, layer), slice(h * lm.d_head, (h + 1) * lm.d_head))
    return model


def test_knockout_copying_against_models_with_zeroed_weights(tiny_gpt2):
    from explainer import heads as hd

    scores = hd.head_scores(tiny_gpt2, n=12, batch=1, seed=0)
    ko = iv.knockout_copying(tiny_gpt2, scores, k=2, n=10, seed=3, trials=2)
    seq = hd.repeated_tokens(tiny_gpt2, n=10, batch=1, seed=3)
    ids, P, n = seq.ids[0], seq.prefix, seq.period
    q = np.arange(P + n, P + 2 * n - 1)

    def copying(model) -> float:
        p = softmax(_logits(model, ids.tolist()))                          # [T, V] a plain forward pass
        return float(np.mean([p[i, ids[i + 1]] for i in q]))

    assert ko.heads == tuple((h.layer, h.head) for h in hd.top_heads(scores["induction"], 2))
    assert ko.copying == pytest.approx(copying(tiny_gpt2.model), abs=1e-6)
    assert ko.without_induction == pytest.approx(copying(_copy_weights_zeroed(tiny_gpt2, ko.heads)), abs=1e-6)
    assert len(ko.without_random) == 2


def test_switching_off_the_induction_heads_stops_copying_on_the_bundled_model(bundled):
    from explainer import heads as hd

    ko = iv.knockout_copying(bundled, hd.head_scores(bundled))
    # what the Interventions page says: copying falls far below what random heads leave
    assert ko.without_induction < ko.copying / 5 and ko.without_induction < min(ko.without_random) / 2
