"""Attention heads: Q·K steps against the model's own pattern, role scores on hand-built patterns and on
the real model, and the figures' click plumbing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import explainer as ex
from explainer import heads
from explainer.figures import attention as fa
from tests.conftest import tiles_of

PROMPT = "The quick brown fox jumps over the lazy dog because it"


def _model_attentions(lm: ex.LoadedModel, ids: np.ndarray) -> np.ndarray:
    """Reference: the model's own `output_attentions`, no hooks of ours.  # [B, L, H, T, T]"""
    with torch.no_grad():
        out = lm.model(torch.tensor(np.atleast_2d(ids)), output_attentions=True, use_cache=False)
    return torch.stack(out.attentions, dim=1).float().numpy()


def _by_hand(q: np.ndarray, k: np.ndarray, d_head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q·k, ÷√d_head, mask, softmax written out independently of the engine.  # [T, T] each"""
    raw = q.astype(np.float64) @ k.astype(np.float64).T
    scaled = raw / math.sqrt(d_head)
    T = raw.shape[0]
    masked = scaled.copy()
    masked[np.triu_indices(T, k=1)] = -np.inf
    pattern = torch.softmax(torch.from_numpy(masked), dim=-1).numpy()
    return raw, scaled, pattern


# -- Q·K step by step ----------------------------------------------------------------------------

def _check_qk_steps(lm: ex.LoadedModel, tr: ex.Trace, layers) -> None:
    Hkv = lm.n_kv_heads
    for layer in layers:
        qk = ex.queries_keys(lm, tr, layer)
        for h in range(lm.n_heads):
            s = heads.qk_steps(lm, tr, layer, h)
            T = tr.n_tokens
            assert s.raw.shape == s.scaled.shape == s.masked.shape == s.pattern.shape == (T, T)
            assert s.n_kv_heads == Hkv and s.group == lm.n_heads // Hkv
            assert s.kv_head == h // (lm.n_heads // Hkv)               # transformers' repeat_kv order
            assert h in s.kv_siblings and len(s.kv_siblings) == s.group
            assert s.scale == pytest.approx(1 / math.sqrt(s.d_head), rel=1e-6)
            # the steps, recomputed by hand from the head's own q and kv head's k
            raw, scaled, pattern = _by_hand(qk.q[h], qk.k[s.kv_head], s.d_head)
            tol = 1e-6 * np.abs(raw).max()                              # q·k is summed in float32
            np.testing.assert_allclose(s.raw, raw, rtol=1e-5, atol=tol)
            np.testing.assert_allclose(s.scaled, scaled, rtol=1e-5, atol=tol)
            future = np.triu(np.ones((T, T), dtype=bool), k=1)
            assert np.all(np.isneginf(s.masked[future]))
            np.testing.assert_allclose(s.masked[~future], scaled[~future], rtol=1e-5, atol=tol)
            np.testing.assert_allclose(s.pattern.sum(axis=1), 1.0, atol=1e-9)
            np.testing.assert_allclose(s.pattern, pattern, atol=1e-5)  # float32 q·k and scale
            # ...and they equal the pattern the model itself computed
            np.testing.assert_allclose(s.pattern, tr.attn[layer, h], atol=2e-5)
            assert s.max_error <= 2e-5


def test_qk_steps_reproduce_captured_pattern_tiny(tiny):
    tr = ex.trace(tiny, PROMPT)
    ref = _model_attentions(tiny, tr.token_ids)[0]                    # [L, H, T, T]
    np.testing.assert_allclose(tr.attn, ref, atol=1e-6)
    _check_qk_steps(tiny, tr, range(tiny.n_layers))


def test_qk_steps_reproduce_captured_pattern_bundled(bundled):
    tr = ex.trace(bundled, "The Eiffel Tower is in the city of Paris, and the Colosseum is in")
    assert bundled.n_heads == 9 and bundled.n_kv_heads == 3           # grouped-query attention
    np.testing.assert_allclose(tr.attn, _model_attentions(bundled, tr.token_ids)[0], atol=1e-5)
    _check_qk_steps(bundled, tr, range(bundled.n_layers))


def test_qk_steps_refuses_a_head_that_does_not_exist(tiny_gpt2):
    tr = ex.trace(tiny_gpt2, PROMPT)
    with pytest.raises(ex.RangeError, match="Head 4"):
        heads.qk_steps(tiny_gpt2, tr, 0, tiny_gpt2.n_heads)
    with pytest.raises(ex.RangeError, match="Layer"):
        heads.qk_steps(tiny_gpt2, tr, tiny_gpt2.n_layers, 0)


# -- role scores on hand-built patterns ----------------------------------------------------------------

def _uniform(T: int) -> np.ndarray:
    a = np.tril(np.ones((T, T)))
    return a / a.sum(axis=1, keepdims=True)                           # [T, T]


def _hand_built(prefix: int, n: int) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """Three layers × three heads, all uniform except one clean head per role."""
    T = prefix + 2 * n
    L, H = 3, 3
    attn = np.broadcast_to(_uniform(T), (L, H, T, T)).copy()
    prev = np.zeros((T, T))
    prev[0, 0] = 1
    prev[np.arange(1, T), np.arange(T - 1)] = 1                      # every token on the one before
    first = np.zeros((T, T))
    first[:, 0] = 1                                                   # every token on token 0
    ind = first.copy()
    for i in range(prefix + n, T):                                    # second copy: the token after the first
        ind[i] = 0                                                    # occurrence of the query's own token
        ind[i, i - n + 1] = 1
    where = {"previous_token": (1, 2), "first_token": (2, 0), "induction": (0, 1)}
    attn[where["previous_token"]] = prev
    attn[where["first_token"]] = first
    attn[where["induction"]] = ind
    return attn, where


@pytest.mark.parametrize("prefix", [0, 1])
def test_hand_built_patterns_give_the_expected_heads(prefix):
    n = 7
    attn, where = _hand_built(prefix, n)
    T = attn.shape[-1]
    s = heads.score_patterns(attn, period=n, prefix=prefix)
    assert set(s) == set(heads.ROLES)
    for role, (layer, head) in where.items():
        assert s[role].shape == (3, 3)
        best = heads.top_heads(s[role], k=1)[0]
        assert (best.layer, best.head) == (layer, head), role
        assert s[role][layer, head] == pytest.approx(1.0)
    # a uniform head, by hand: A[i, i-1] = A[i, 0] = 1/(i+1) over queries 2..T-1; induction over the second copy
    i = np.arange(2, T)
    j = np.arange(prefix + n, T)
    assert s["previous_token"][0, 0] == pytest.approx(np.mean(1 / (i + 1)))
    assert s["first_token"][0, 0] == pytest.approx(np.mean(1 / (i + 1)))
    assert s["induction"][0, 0] == pytest.approx(np.mean(1 / (j + 1)))
    # the clean heads score 0 on the other roles where they never look there
    assert s["induction"][where["previous_token"]] == pytest.approx(0.0)
    assert s["previous_token"][where["first_token"]] == pytest.approx(0.0)


def test_batches_are_averaged_and_bad_shapes_refused():
    attn, _ = _hand_built(0, 5)
    other = np.broadcast_to(_uniform(10), attn.shape)
    both = heads.score_patterns(np.stack([attn, other]), period=5)
    a, b = heads.score_patterns(attn, period=5), heads.score_patterns(other, period=5)
    for role in heads.ROLES:
        np.testing.assert_allclose(both[role], (a[role] + b[role]) / 2)
    assert "induction" not in heads.score_patterns(attn)             # no period: no induction score
    with pytest.raises(ValueError, match="needs 12 tokens"):
        heads.score_patterns(attn, period=6)
    with pytest.raises(ValueError, match="Expected patterns"):
        heads.score_patterns(attn[0, 0])


def test_top_heads_and_looking_back_head():
    rng = np.random.default_rng(3)
    sc = rng.random((4, 5))
    top = heads.top_heads(sc, k=4)
    assert [t.score for t in top] == sorted(sc.ravel(), reverse=True)[:4]
    assert all(sc[t.layer, t.head] == t.score for t in top)
    T = 6
    attn = np.broadcast_to(np.eye(T), (3, 2, T, T)).copy()           # every head looks at itself
    attn[0, 1, -1] = 0
    attn[0, 1, -1, 0] = 1                                            # a sink: does not count
    attn[2, 0, -1] = 0
    attn[2, 0, -1, 1] = 1                                            # furthest real look back
    assert heads.looking_back_head(attn) == (2, 0)


# -- the real model ------------------------------------------------------------------------------------

def test_repeated_tokens_layout(tiny_gpt2):
    seq = heads.repeated_tokens(tiny_gpt2, n=20, batch=3, seed=5)
    assert seq.ids.shape == (3, seq.prefix + 40)
    for row in seq.ids:
        r = row[seq.prefix:seq.prefix + 20]
        np.testing.assert_array_equal(r, row[seq.prefix + 20:])
        assert len(set(r.tolist())) == 20
    np.testing.assert_array_equal(seq.ids, heads.repeated_tokens(tiny_gpt2, n=20, batch=3, seed=5).ids)
    assert not np.array_equal(seq.ids, heads.repeated_tokens(tiny_gpt2, n=20, batch=3, seed=6).ids)


def test_head_scores_equal_scores_of_the_models_own_attentions(tiny):
    s = heads.head_scores(tiny, n=12, batch=2, seed=0)
    seq = heads.repeated_tokens(tiny, n=12, batch=2, seed=0)
    ref = heads.score_patterns(_model_attentions(tiny, seq.ids), period=seq.period, prefix=seq.prefix)
    for role in heads.ROLES:
        assert s[role].shape == (tiny.n_layers, tiny.n_heads)
        np.testing.assert_allclose(s[role], ref[role], atol=1e-6)
    np.testing.assert_allclose(heads.attention_for_ids(tiny, seq.ids), _model_attentions(tiny, seq.ids), atol=1e-6)


def test_strongest_induction_head_of_bundled_really_does_induction(bundled):
    s = heads.head_scores(bundled)
    best = heads.top_heads(s["induction"], k=1)[0]
    assert best.score > 0.5
    # a fresh sequence (other seed, other length), checked on the model's own output_attentions
    seq = heads.repeated_tokens(bundled, n=25, batch=1, seed=12345)
    P, n = seq.prefix, seq.period
    a = _model_attentions(bundled, seq.ids)[0, best.layer, best.head]   # [T, T]
    q = np.arange(P + n + 1, P + 2 * n)                                   # second copy (first query has no history)
    target = q - n + 1
    assert np.mean(a[q].argmax(axis=1) == target) >= 0.8                  # its favourite key is the induction one
    assert a[q, target].mean() > 0.5
    # control: on random tokens that do not repeat, the same offset gets little attention
    rng = np.random.default_rng(777)
    plain = seq.ids.copy()
    plain[0, P + n:] = rng.choice(np.setdiff1d(np.arange(1000, 40000), seq.ids), size=n, replace=False)
    c = _model_attentions(bundled, plain)[0, best.layer, best.head]     # [T, T]
    assert c[q, target].mean() < 0.2


def test_induction_demo_cells_and_hit_against_a_hand_computation(tiny):
    demo = heads.induction_demo(tiny, n=8, seed=3)
    seq = heads.repeated_tokens(tiny, n=8, batch=1, seed=3)
    P, n = seq.prefix, seq.period
    assert demo.attn.shape == (tiny.n_layers, tiny.n_heads, P + 2 * n, P + 2 * n)
    assert not demo.attn.flags.writeable
    np.testing.assert_allclose(demo.attn, _model_attentions(tiny, seq.ids)[0], atol=1e-6)
    assert demo.cells == tuple((P + n + j, P + j + 1) for j in range(n))   # query -> the token after its twin
    ref = heads.score_patterns(demo.attn, period=n, prefix=P)["induction"]  # [L, H]
    for layer in range(tiny.n_layers):
        for head in range(tiny.n_heads):
            by_hand = np.mean([demo.attn[layer, head, q, k] for q, k in demo.cells])
            assert demo.hit(layer, head) == pytest.approx(by_hand)
            assert demo.hit(layer, head) == pytest.approx(ref[layer, head])
            rest = np.mean([demo.attn[layer, head, q, 0] for q in range(1, P + n)])   # first copy, by hand
            assert demo.first_copy_rest(layer, head) == pytest.approx(rest)


def test_first_copy_rest_on_a_hand_built_pattern():
    # prefix 1, period 2: T = 5; first-copy queries 1 and 2 put 0.25 and 0.75 on key 0
    a = np.zeros((1, 1, 5, 5))
    a[0, 0, 0, 0] = 1.0
    a[0, 0, 1, :2] = (0.25, 0.75)
    a[0, 0, 2, :3] = (0.75, 0.0, 0.25)
    a[0, 0, 3, 3] = a[0, 0, 4, 4] = 1.0
    demo = heads.InductionDemo(tokens=("a",) * 5, attn=a, prefix=1, period=2)
    assert demo.first_copy_rest(0, 0) == pytest.approx(0.5)


def test_kv_group_and_top_attended():
    assert heads.kv_group(9, 3, 4) == (1, (3, 4, 5))
    assert heads.kv_group(12, 12, 7) == (7, (7,))
    row = np.array([0.1, 0.5, 0.1, 0.3])
    assert heads.top_attended(row, 3) == [(1, 0.5), (3, 0.3), (0, 0.1)]   # ties: the earlier key first


def test_range_errors_are_not_prompt_errors():
    assert issubclass(ex.RangeError, ex.ExplainerError) and not issubclass(ex.RangeError, ex.PromptError)
    assert issubclass(ex.SettingError, ex.ExplainerError) and not issubclass(ex.SettingError, ex.PromptError)


# -- figures --------------------------------------------------------------------------------------------

def test_figures_show_tokens_mask_future_and_click_back():
    tokens = ("The", " cat", " sat", " down")
    T = len(tokens)
    pat = _uniform(T)
    fig = fa.head_heatmap(pat, tokens, "t")
    hm = fig.data[0]
    assert list(hm.x) == list(hm.y) == ["0:The", "1:␣cat", "2:␣sat", "3:␣down"]
    z = np.array(hm.z, dtype=float)
    assert np.isnan(z[np.triu_indices(T, k=1)]).all()
    np.testing.assert_allclose(z[np.tril_indices(T)], pat[np.tril_indices(T)], atol=5e-4 + 1e-7)  # 3 decimals
    assert "weight %{z:.3f}" in hm.hovertemplate and "row sum 1.000" in hm.hovertemplate  # one template
    assert hm.customdata is None

    attn = np.broadcast_to(pat, (3, 2, T, T))
    ov = fa.overview(attn, tokens, (1, 1), n_kv_heads=1)
    assert [t.type for t in ov.data] == ["image", "heatmap", "scatter"]
    marks = ov.data[2]
    assert len(marks.customdata) == 6
    for cd in marks.customdata:
        assert fa.picked_head([{"customdata": list(cd)}]) == (int(cd[0]), int(cd[1]))
    assert fa.picked_head([]) is None and fa.picked_head(None) is None
    # what the browser sends for a row of a numpy customdata array (seen in Chromium): an object keyed "0", "1", ...
    assert fa.picked_head([{"customdata": {"0": 2, "1": 5, "2": 0.31}}]) == (2, 5)
    assert fa.picked_row([{"customdata": {"0": 2, "1": 1, "2": 0.168}}]) == 2
    assert fa.picked_row([{"customdata": {"0": 2}}]) is None and fa.picked_row(None) is None
    assert "layer %{customdata[0]} · head %{customdata[1]}" in marks.hovertemplate

    masked = np.where(np.tril(np.ones((T, T), dtype=bool)), 1.0, -np.inf)
    mf = fa.qk_step(masked, tokens, "masked")
    assert mf.data[0].text[0][3] == "−∞"
    with pytest.raises(ValueError, match="Unknown step"):
        fa.qk_step(masked, tokens, "nope")

    sc = np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.0]])               # [L, H]
    rm = fa.role_map(sc, "Previous-token", top=2)
    text = np.array(rm.data[0].text)                                   # [H, L]
    assert text[1, 0] == "#1" and text[0, 1] == "#2" and (text == "").sum() == 4
    cd = np.array(rm.data[1].customdata)                               # [L·H, 3] layer, head, score
    np.testing.assert_allclose(cd[:, 2], sc[cd[:, 0].astype(int), cd[:, 1].astype(int)])


def test_rows_that_do_not_sum_alike_carry_their_own_sums():
    z = np.array([[1.0, np.nan], [0.25, 0.5]])
    hm = fa.token_matrix(z, ["a", "b"], row_sums=True).data[0]
    assert "%{customdata:.3f}" in hm.hovertemplate
    np.testing.assert_allclose(np.array(hm.customdata, dtype=float), [[1.0, 1.0], [0.75, 0.75]])


def test_values_are_rounded_no_coarser_than_the_colour_scale():
    assert fa.decimals_for(1.0) == 3 and fa.decimals_for(90.0) == 1 and fa.decimals_for(2000.0) == 0
    for span in (0.01, 0.7, 1.0, 13.0, 90.0, 2000.0):
        assert 10.0 ** -fa.decimals_for(span) <= span / 256       # one step of the rounding ≤ one colour step
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 15, (40, 40))
    fig = fa.qk_step(raw, [f"t{i}" for i in range(40)], "raw")
    lim = np.abs(raw).max()
    z = np.array(fig.data[0].z, dtype=float)
    assert np.abs(z - raw).max() <= 2 * lim / 256 / 2                 # within half a colour step
    assert f"%{{z:.{fa.decimals_for(2 * lim)}f}}" in fig.data[0].hovertemplate


def test_overview_pools_long_prompts():
    T = 40
    attn = np.broadcast_to(np.eye(T), (2, 3, T, T))
    Z = tiles_of(fa.overview(attn, [f"t{i}" for i in range(T)], max_tile=16))
    assert Z.shape == (3 * 17 - 1, 2 * 17 - 1)
    tile = Z[:16, :16]
    np.testing.assert_allclose(np.diag(tile), 1.0)                    # the diagonal survives max-pooling
    assert np.isnan(Z[16, :]).all() and np.isnan(Z[:, 16]).all()       # white between tiles
    assert np.isnan(tile[np.triu_indices(16, k=1)]).all()              # and in the future


def test_score_spread_by_hand(tiny_gpt2):
    tr = ex.trace(tiny_gpt2, PROMPT)
    s = heads.qk_steps(tiny_gpt2, tr, 0, 1)
    T = tr.n_tokens
    allowed = [s.raw[q, k] for q in range(T) for k in range(q + 1)]
    assert s.score_spread == pytest.approx((np.std(allowed), np.std(allowed) * s.scale))


def test_layer_zoom_shows_that_layers_tiles_as_the_overview_does_and_opens_a_head():
    """The zoomed view of one layer: every head's tile equals the overview's tile of the same head (read back
    from both images), laid out 3 × 3 for 9 heads with label rows between; clicks open (layer, head)."""
    rng = np.random.default_rng(3)
    L, H, T = 4, 9, 7
    raw = rng.random((L, H, T, T))
    attn = np.tril(raw) / np.tril(raw).sum(-1, keepdims=True)          # causal, rows sum to 1
    tokens = [f"t{i}" for i in range(T)]
    over = tiles_of(fa.overview(attn, tokens))                          # [H·8-1, L·8-1]
    zf = fa.layer_tiles(attn, tokens, 2, 5, n_kv_heads=3)
    zoom = tiles_of(zf)
    step, down = T + 1, T + fa.ZOOM_ROW_GAP
    assert zoom.shape == (3 * down - fa.ZOOM_ROW_GAP, 3 * step - 1)
    for h in range(H):
        c, r = h % 3, h // 3
        mine = zoom[r * down: r * down + T, c * step: c * step + T]
        np.testing.assert_array_equal(mine, over[h * step: h * step + T, 2 * step: 2 * step + T])
        np.testing.assert_allclose(mine[np.tril_indices(T)], attn[2, h][np.tril_indices(T)], atol=1 / 254)
    assert np.isnan(zoom[T:down, :]).all()                             # the label rows are white
    marks = zf.data[2]
    assert [fa.picked_head([{"customdata": list(cd)}]) for cd in marks.customdata] == [(2, h) for h in range(H)]
    assert "uses key/value head %{customdata[2]}" in marks.hovertemplate
    assert [cd[2] for cd in marks.customdata] == [h // 3 for h in range(H)]
    (box,) = zf.layout.shapes                                          # head 5: column 2, row 1
    assert (box.x0, box.y0) == (2 * step - 0.9, down - 0.9)
    assert [a.text for a in zf.layout.annotations] == [f"head {h}" for h in range(H)]
    with pytest.raises(ValueError, match="outside"):
        fa.layer_tiles(attn, tokens, L)


def test_layer_zoom_cells_are_large_on_screen():
    """Each cell of the zoomed tiles gets ZOOM_CELL_PX ≥ 8 px of the chart's height (the overview's cells are
    2 px at a 1280-px window), whatever the number of heads."""
    for H in (9, 12, 16):
        attn = np.broadcast_to(np.eye(20), (2, H, 20, 20))
        fig = fa.layer_tiles(attn, [f"t{i}" for i in range(20)], 0)
        units = abs(fig.layout.yaxis.range[0] - fig.layout.yaxis.range[1])
        plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
        assert plot_px / units >= 8, (H, plot_px / units)


def test_head_zoom_is_the_block_on_the_diagonal_with_real_positions():
    rng = np.random.default_rng(4)
    T = 50
    raw = np.tril(rng.random((T, T)))
    pat = raw / raw.sum(-1, keepdims=True)
    tokens = [f"w{i}" for i in range(T)]
    hm = fa.head_zoom(pat, tokens, 30, 49, "z").data[0]
    assert list(hm.x) == list(hm.y) == [f"{i}:w{i}" for i in range(30, 50)]
    z = np.array(hm.z, dtype=float)                                    # [20, 20]
    assert np.isnan(z[np.triu_indices(20, k=1)]).all()
    np.testing.assert_allclose(z[np.tril_indices(20)], pat[30:, 30:][np.tril_indices(20)], atol=5e-4 + 1e-7)
    # by hand: the weight query q puts on keys 30..q, averaged over the 20 queries
    want = sum(sum(pat[q, k] for k in range(30, q + 1)) for q in range(30, 50)) / 20
    assert heads.window_share(pat, 30, 49) == pytest.approx(want)
    assert heads.window_share(pat, 0, T - 1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="outside"):
        fa.head_zoom(pat, tokens, 40, 50)
