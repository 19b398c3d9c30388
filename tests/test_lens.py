"""The logit lens against independent references: a plain forward pass, and the final norm and
unembedding recomputed by hand in numpy; chunked decoding that never holds [L+1, T, V] at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explainer as ex
from explainer import lens, words
from explainer.sampling import softmax

PROMPT = "The Eiffel Tower is in the city of"


def _plain_logits(lm: ex.LoadedModel, ids) -> np.ndarray:
    with torch.no_grad():
        return lm.model(torch.tensor([[int(i) for i in ids]]), use_cache=False).logits[0].float().numpy()  # [T, V]


def _hand_decode(lm: ex.LoadedModel, x: np.ndarray) -> np.ndarray:
    """Final norm and unembedding in float64 numpy, from the weights.  [..., D] -> [..., V] probabilities"""
    norm = lm.arch.final_norm_module(lm.model)
    x = x.astype(np.float64)
    w = norm.weight.detach().double().numpy()
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", None)
    if type(norm).__name__.endswith("RMSNorm"):
        h = x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w
    else:  # LayerNorm
        h = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w
        h = h + norm.bias.detach().double().numpy()
    head = lm.model.get_output_embeddings()
    logits = h @ head.weight.detach().double().numpy().T                   # [n, V]
    if getattr(head, "bias", None) is not None:
        logits = logits + head.bias.detach().double().numpy()
    return softmax(logits)


def _check_last_row_is_the_model(lm: ex.LoadedModel, tr: ex.Trace, res: lens.LensResult) -> None:
    probs = softmax(_plain_logits(lm, tr.token_ids))                      # [T, V] independent forward pass
    T = tr.n_tokens
    assert res.ids.shape == (lm.n_layers + 1, T, res.k)
    np.testing.assert_array_equal(res.ids[-1, :, 0], probs.argmax(-1))    # the prediction at every position
    ref = np.take_along_axis(probs, res.ids[-1], axis=-1)                  # [T, k]
    np.testing.assert_allclose(res.probs[-1], ref, rtol=1e-4, atol=1e-6)
    kth = np.sort(probs, axis=-1)[:, -res.k:][:, ::-1]                     # the true top-k values
    np.testing.assert_allclose(res.probs[-1], kth, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.final_prob[-1], probs.max(-1), rtol=1e-4)
    ent = -(probs * np.log(np.maximum(probs, 1e-300))).sum(-1)
    np.testing.assert_allclose(res.entropy[-1], ent, rtol=1e-3, atol=1e-4)


def test_last_row_equals_the_models_prediction_bundled(bundled):
    tr = ex.trace(bundled, PROMPT)
    res = lens.logit_lens(bundled, tr, k=5)
    _check_last_row_is_the_model(bundled, tr, res)
    assert res.strings[-1, -1, 0] == " Paris"  # the bundled model knows where the Eiffel Tower is


def test_last_row_equals_the_models_prediction_every_family(tiny):
    tr = ex.trace(tiny, "The quick brown fox jumps over the lazy dog because it")
    _check_last_row_is_the_model(tiny, tr, lens.logit_lens(tiny, tr, k=3))


@pytest.mark.parametrize("which", ["bundled", "tiny_gpt2"])
def test_every_row_equals_a_hand_computed_norm_and_unembedding(which, request):
    lm = request.getfixturevalue(which)           # RMSNorm (Llama) and LayerNorm with a bias (GPT-2)
    tr = ex.trace(lm, PROMPT)
    res = lens.logit_lens(lm, tr, k=4)
    p = _hand_decode(lm, tr.resid)                                         # [L+1, T, V] (fine for a test)
    top = -np.partition(-p, 3, axis=-1)[..., :4]
    top.sort(axis=-1)
    # the probabilities of the lens's ids, and the true top-4 values (robust to near-ties in the order)
    np.testing.assert_allclose(res.probs, np.take_along_axis(p, res.ids, -1), rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(res.probs, top[..., ::-1], rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(res.resid_norm, np.linalg.norm(tr.resid.astype(np.float64), axis=-1), rtol=1e-5)


@pytest.mark.parametrize("which, rows", [("tiny_gpt2", 7), ("bundled", 40)])
def test_never_decodes_all_layers_at_once_and_chunking_changes_nothing(which, rows, request, monkeypatch):
    lm = request.getfixturevalue(which)
    tr = ex.trace(lm, "word " * 40 if which == "tiny_gpt2" else PROMPT)
    L1, T, V = lm.n_layers + 1, tr.n_tokens, lm.vocab_size
    sizes: list[int] = []
    real = lens._decoder

    def spying_decoder(lm):
        decode = real(lm)

        def wrapped(x):
            out = decode(x)
            sizes.append(out.numel())
            return out
        return wrapped

    monkeypatch.setattr(lens, "_decoder", spying_decoder)
    full = lens.logit_lens(lm, tr, k=5)                          # the default chunk: far below [L+1, T, V]
    assert max(sizes) <= lens.CHUNK_ELEMENTS < L1 * T * V and len(sizes) > 1
    traj = lens.token_trajectory(lm, tr, int(full.ids[-1, -1, 0]))

    sizes.clear()
    monkeypatch.setattr(lens, "CHUNK_ELEMENTS", rows * V)        # `rows` residual rows at a time
    small = lens.logit_lens(lm, tr, k=5)
    assert max(sizes) == rows * V and len(sizes) == -(-L1 * T // rows)
    # other chunk sizes change only float rounding (the matrix products are blocked differently)
    np.testing.assert_allclose(small.probs, full.probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(small.entropy, full.entropy, rtol=1e-4, atol=1e-5)
    clear = full.probs[..., 0] > full.probs[..., 1] * (1 + 1e-3)  # [L+1, T] top-1 not a near-tie
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(small.ids[..., 0][clear], full.ids[..., 0][clear])
    small_traj = lens.token_trajectory(lm, tr, traj.token_id)
    np.testing.assert_allclose(small_traj.probs, traj.probs, rtol=1e-4, atol=1e-9)
    assert np.abs(small_traj.ranks - traj.ranks).max() <= 0.01 * V


def test_trajectory_matches_softmax_rank_by_hand(tiny_gpt2):
    tr = ex.trace(tiny_gpt2, PROMPT)
    tok = int(tr.token_ids[2])
    tj = lens.token_trajectory(tiny_gpt2, tr, tok)
    for layer in (0, tiny_gpt2.n_layers):
        p = _hand_decode(tiny_gpt2, tr.resid[layer])                       # [T, V]
        np.testing.assert_allclose(tj.probs[layer], p[:, tok], rtol=2e-4)
        # a random model's distribution is nearly flat: many tokens tie with ours within float32 rounding,
        # so the rank must lie between "clearly larger" and "larger or about equal"
        surely = (p > p[:, [tok]] * (1 + 1e-4)).sum(-1)                    # [T]
        maybe = (p > p[:, [tok]] * (1 - 1e-4)).sum(-1) - 1                 # [T] (minus the token itself)
        assert ((surely <= tj.ranks[layer]) & (tj.ranks[layer] <= maybe)).all()
        assert (maybe - surely).max() < 0.05 * tiny_gpt2.vocab_size       # a bracket tight enough to mean something


def test_settled_layer_and_choose_token(bundled):
    tr = ex.trace(bundled, PROMPT)
    res = lens.logit_lens(bundled, tr)
    row = res.settled_layer()
    top = res.ids[:, -1, 0]
    assert (top[row:] == top[-1]).all() and (row == 0 or top[row - 1] != top[-1])
    choice = words.choose_token(bundled, "Paris")                      # read mid-sentence: " Paris"
    assert choice.token_id == int(top[-1]) and choice.notice is None
    split = words.choose_token(bundled, "Ouagadougou")
    assert split.notice and split.token_id == bundled.tokenizer(" Ouagadougou", add_special_tokens=False)[
        "input_ids"][0]
    start = words.choose_token(bundled, "Paris", leading_space=False)  # at the start of a text: "Paris"
    assert start.token_id == bundled.tokenizer("Paris", add_special_tokens=False)["input_ids"][0]
    assert start.token_id != choice.token_id


@pytest.mark.parametrize("word", ["king", "Paris", "naïve", "Ouagadougou", "  queen "])
def test_one_rule_for_typed_words_on_the_lens_and_word_vector_pages(bundled, word):
    # The lens follows the first token of exactly the tokens the word-vector pages use for the word.
    assert words.choose_token(bundled, word).token_id == words.resolve(bundled, word).ids[0]


def test_bad_inputs_raise_clear_errors(bundled, tiny_gpt2):
    tr = ex.trace(bundled, PROMPT)
    with pytest.raises(words.EmptyWordError):
        words.choose_token(bundled, "   ")
    with pytest.raises(ex.RangeError):
        lens.token_trajectory(bundled, tr, bundled.vocab_size)
    with pytest.raises(ex.SettingError):
        lens.logit_lens(bundled, tr, k=0)
    with pytest.raises(ex.PromptError):                         # a trace of another model
        lens.logit_lens(tiny_gpt2, tr)


def test_grid_hover_gives_entropy_in_bits_as_the_next_token_page_does(bundled):
    from explainer import sampling
    from explainer.figures import lens as figs

    tr = ex.trace(bundled, PROMPT)
    res = lens.logit_lens(bundled, tr)
    hover = figs.lens_grid(res, tr.tokens, range(tr.n_tokens)).data[0].customdata   # [L+1][T]
    want = sampling.entropy(softmax(_plain_logits(bundled, tr.token_ids)[-1]))        # bits, the Next token page's
    assert f"entropy {want:.2f} bits" in hover[-1][-1]


def test_first_token_outlier_and_sink_heads_by_hand(bundled):
    from explainer import heads, residual

    tr = ex.trace(bundled, "The Eiffel Tower is in the city of Paris, and the Colosseum is in Rome.")
    norm = np.linalg.norm(tr.resid.astype(np.float64), axis=-1)                     # [L+1, T]
    ratios = [norm[r, 0] / np.median(norm[r, 1:]) for r in range(norm.shape[0])]
    ratio, row = residual.first_token_ratio(lens.logit_lens(bundled, tr).resid_norm)
    assert row == int(np.argmax(ratios)) and ratio == pytest.approx(ratios[row], rel=1e-4)
    assert ratio > 10                      # what the page's caption then says, checked on the real model
    sinks = heads.sink_heads(tr.attn)
    by_hand = [[tr.attn[li, h, 1:, 0].mean() > 0.5 for h in range(tr.n_heads)] for li in range(tr.n_layers)]
    assert sinks.tolist() == by_hand and sinks.any()


def test_embedding_echo_and_median_norms_by_hand(bundled):
    from explainer import residual

    tr = ex.trace(bundled, PROMPT)
    res = lens.logit_lens(bundled, tr)
    # the bottom row, recomputed: final norm + unembedding of the raw embeddings
    with torch.inference_mode():
        h = bundled.model.model.norm(torch.tensor(tr.resid[0]))
        top = (h @ bundled.model.get_output_embeddings().weight.T).argmax(-1).numpy()
    assert residual.embedding_echo(res.ids, tr.token_ids) == int((top == np.asarray(tr.token_ids)).sum())
    norms = np.linalg.norm(tr.resid.astype(np.float64), axis=-1)
    np.testing.assert_allclose(residual.median_norms(res.resid_norm), np.median(norms[:, 1:], axis=1), rtol=1e-5)

def _by_hand(lm: ex.LoadedModel, resid_l: np.ndarray) -> torch.Tensor:
    """One layer's rows through the final RMSNorm and the unembedding, then log_softmax, written out.  [T, V]
    The logits in float32, as the model computes them; the softmax in float64, because a float32
    -(p·log p).sum over 49k terms is itself 3e-5 nats off the exact entropy of those logits."""
    norm = lm.arch.final_norm_module(lm.model)
    w = lm.model.get_output_embeddings().weight
    x = torch.from_numpy(resid_l.copy())                                  # [T, D]
    h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight
    return torch.log_softmax((h @ w.T).double(), dim=-1)                  # [T, V]


def test_full_grid_equals_a_plain_log_softmax_per_layer(bundled):
    """The fused lens (one product, max, exp, sum, dot and top-k per chunk) against the plain computation:
    the same top-k ids, and probabilities and entropies (nats) within 1e-5."""
    tr = ex.trace(bundled, "The Eiffel Tower is in Paris. The Colosseum is in the city of")
    res = lens.logit_lens(bundled, tr, k=5)
    final_top = tr.logits.argmax(-1)                                       # [T]
    with torch.no_grad():
        for layer in range(bundled.n_layers + 1):
            logp = _by_hand(bundled, tr.resid[layer])                      # [T, V]
            top = logp.topk(5, dim=-1)
            np.testing.assert_array_equal(res.ids[layer], top.indices.numpy())
            np.testing.assert_allclose(res.probs[layer], top.values.exp().numpy(), rtol=0, atol=1e-6)
            entropy = -(logp.exp() * logp).sum(-1)                         # [T]
            np.testing.assert_allclose(res.entropy[layer], entropy.numpy(), rtol=0, atol=1e-5)
            fp = logp.gather(1, torch.as_tensor(final_top)[:, None])[:, 0].exp()
            np.testing.assert_allclose(res.final_prob[layer], fp.numpy(), rtol=0, atol=1e-6)
    assert (res.layers == np.arange(bundled.n_layers + 1)).all() and (res.positions == np.arange(tr.n_tokens)).all()


def test_some_positions_and_layers_only(bundled, tiny_gpt2):
    tr = ex.trace(bundled, PROMPT)
    full = lens.logit_lens(bundled, tr, k=5)
    T = tr.n_tokens
    part = lens.logit_lens(bundled, tr, k=5, positions=range(T - 3, T))
    assert part.ids.shape == full.ids.shape and list(part.positions) == [T - 3, T - 2, T - 1]
    np.testing.assert_array_equal(part.ids[:, -3:], full.ids[:, -3:])
    np.testing.assert_allclose(part.entropy[:, -3:], full.entropy[:, -3:], rtol=0, atol=1e-5)
    np.testing.assert_allclose(part.probs[:, -3:], full.probs[:, -3:], rtol=0, atol=1e-6)
    assert (part.ids[:, :-3] == -1).all() and np.isnan(part.entropy[:, :-3]).all()
    assert (part.strings[:, :-3] == "").all() and (part.strings[:, -3:] == full.strings[:, -3:]).all()
    assert part.settled_layer(-1) == full.settled_layer(-1)
    rows = lens.logit_lens(bundled, tr, k=2, layers=[0, bundled.n_layers], positions=[1])
    np.testing.assert_array_equal(rows.ids[[0, -1], 1], full.ids[[0, -1], 1, :2])
    assert (rows.ids[1:-1] == -1).all() and (rows.ids[:, 0] == -1).all()
    for bad in ({"positions": [T]}, {"positions": []}, {"layers": [-1]}):
        with pytest.raises(ex.PromptError):
            lens.logit_lens(bundled, tr, **bad)


def test_first_top_row_by_hand(bundled):
    tr = ex.trace(bundled, PROMPT)
    tj = lens.token_trajectory(bundled, tr, int(np.argmax(tr.logits[-1])))
    rows = [r for r in range(tj.ranks.shape[0]) if tj.ranks[r, -1] == 0]
    assert tj.first_top_row(tr.n_tokens - 1) == rows[0]
    never = lens.token_trajectory(bundled, tr, int(np.argmin(tr.logits[-1])))
    assert never.first_top_row(tr.n_tokens - 1) is None


def test_trajectory_of_one_position_is_the_full_one_there(bundled):
    # the Logit lens page decodes only the position it shows: the same numbers there, nothing elsewhere
    tr = ex.trace(bundled, PROMPT)
    T, tok = tr.n_tokens, int(np.argmax(tr.logits[-1]))
    full = lens.token_trajectory(bundled, tr, tok)
    for p in (0, 3, T - 1):
        one = lens.token_trajectory(bundled, tr, tok, positions=[p])
        np.testing.assert_allclose(one.probs[:, p], full.probs[:, p], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(one.ranks[:, p], full.ranks[:, p])
        assert one.first_top_row(p) == full.first_top_row(p)
        others = np.arange(T) != p
        assert np.isnan(one.probs[:, others]).all() and (one.ranks[:, others] == -1).all()
    for bad in ([T], []):
        with pytest.raises(ex.PromptError):
            lens.token_trajectory(bundled, tr, tok, positions=bad)
