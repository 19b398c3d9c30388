"""The Attention page in Streamlit's AppTest: defaults, moving the head, what the head writes, word order, opening a
role's top head, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explainer as ex
from explainer import heads
from explainer.attention_out import head_outputs
from explainer.positions import positions
from tests.conftest import chart, chart_bytes, page_ok, plotly_array, tiles_of, title_text

LONG_TEXT = ("The history of the transformer begins with attention. Each token looks back at the tokens before it, "
             "mixes what it finds, and passes the result up the residual stream. ")


def _text_of(lm, n_tokens: int) -> str:
    ids = lm.tokenizer(LONG_TEXT * (n_tokens // 10 + 2))["input_ids"][:n_tokens]
    text = lm.tokenizer.decode(ids)
    assert len(lm.tokenizer(text)["input_ids"]) == n_tokens
    return text


def _causal_block_max(attn: np.ndarray, size: int) -> np.ndarray:
    """Reference for the all-heads tiles, cell by cell: the largest weight of each block over keys ≤ query,
    NaN for blocks wholly in the future.  # [L, H, T, T] -> [L, H, size, size]"""
    T = attn.shape[-1]
    e = np.linspace(0, T, size + 1).round().astype(int)
    out = np.full(attn.shape[:2] + (size, size), np.nan)
    for bq in range(size):
        for bk in range(bq + 1):
            q = np.arange(e[bq], e[bq + 1])[:, None]
            k = np.arange(e[bk], e[bk + 1])[None, :]
            block = np.where(k <= q, attn[..., e[bq]:e[bq + 1], e[bk]:e[bk + 1]], -np.inf)
            out[..., bq, bk] = block.max(axis=(-2, -1))
    return out


@pytest.fixture(scope="module")
def app():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file("../pages/2_Attention.py", default_timeout=180)
    yield at.run()
    mp.undo()


def test_defaults_show_every_section(app, bundled):
    page_ok(app)
    subs = [s.value for s in app.subheader]
    assert subs[0] == f"1 · All {bundled.n_layers * bundled.n_heads} heads at once"
    assert any(s.startswith("3 · ") for s in subs) and any(s.startswith("4 · ") for s in subs)
    # the default head is the one whose last token looks furthest back, from an independent trace
    tr = ex.trace(bundled, app.session_state._prompt)
    assert (app.slider(key="att_layer").value, app.slider(key="att_head").value) == heads.looking_back_head(tr.attn)
    md = " ".join(m.value for m in app.markdown)
    assert "grouped-query attention" in md and "key/value head" in md
    caps = " ".join(c.value for c in app.caption)
    assert "every row sums to 1" in caps and "equals the pattern the model itself used" in caps
    # one button per strongest head of each role
    for role in heads.ROLES:
        assert len([b for b in app.button if b.key.startswith(f"att_view_{role}_")]) == 5


def test_moving_layer_and_head_updates_the_view(app, bundled):
    app.slider(key="att_layer").set_value(4).run()
    app.slider(key="att_head").set_value(7).run()
    page_ok(app)
    kv = 7 // (bundled.n_heads // bundled.n_kv_heads)
    md = " ".join(m.value for m in app.markdown)
    assert f"Head 7 reads key/value head **{kv}**" in md
    assert title_text(chart(app, "att_head_map")) == "Layer 4, head 7"
    # the zoomed view of the overview follows the open head: layer 4's nine tiles, exact for a short prompt
    tr = ex.trace(bundled, app.session_state._prompt)
    T = tr.n_tokens
    zoom, down = tiles_of(chart(app, "att_layer_zoom")), T + 3
    for h in range(bundled.n_heads):
        c, r = h % 3, h // 3
        got = zoom[r * down: r * down + T, c * (T + 1): c * (T + 1) + T]
        np.testing.assert_allclose(got[np.tril_indices(T)], tr.attn[4, h][np.tril_indices(T)], atol=0.5 / 254 + 1e-6)
    assert "the 9 heads of layer 4" in md


def _check_head_writes(app, bundled) -> None:
    """Section 4's charts carry the engine's V, z and per-head parts for the sliders' head; section 5's the
    model's own rotary speeds."""
    layer, head = app.slider(key="att_layer").value, app.slider(key="att_head").value
    tr = ex.trace(bundled, app.session_state._prompt)
    ho = head_outputs(bundled, tr, layer)
    kv = head // (bundled.n_heads // bundled.n_kv_heads)
    v_fig, z_fig, bars = chart(app, "att_values"), chart(app, "att_z"), chart(app, "att_parts")
    assert title_text(v_fig) == f"V: the values head {head} reads"
    assert title_text(bars).startswith(f"What each head of layer {layer} writes")
    lim = float(np.abs(ho.values[kv]).max())
    for fig, want in ((v_fig, ho.values[kv]), (z_fig, ho.z[head])):
        heat = fig["data"][0]
        assert heat["zmin"] == pytest.approx(-lim) and heat["zmax"] == pytest.approx(lim)
        np.testing.assert_allclose(plotly_array(heat["z"]), want, atol=2 * lim / 256 / 2 + 1e-6)
    norms = np.linalg.norm(ho.parts[:, -1].astype(np.float64), axis=-1)            # [H]
    np.testing.assert_allclose(plotly_array(bars["data"][0]["y"]), norms, atol=norms.max() / 256 / 2)  # rounded
    colours = bars["data"][0]["marker"]["color"]
    assert [i for i, c in enumerate(colours) if c == colours[head]] == [head]        # the chosen head stands out
    md = " ".join(m.value for m in app.markdown)
    T, dh = tr.n_tokens, bundled.d_head
    assert f"a {T} × {T} matrix times a {T} × {dh} one, which gives {T} × {dh}" in md
    assert f"{T} × (9 × 64) = {T} × 576 numbers" in md and "a 576 × 576 matrix" in md
    assert f"head {head}'s part has length {norms[head]:.2f}" in md
    assert "the output equals the one the model itself computed in this layer" in md
    rot = positions(bundled)
    np.testing.assert_allclose(plotly_array(chart(app, "att_rotary_speeds")["data"][0]["y"]),
                               np.degrees(bundled.model.model.rotary_emb.inv_freq.double().numpy()), rtol=1e-6)
    assert f"Pair 0 turns {rot.degrees_per_token[0]:.1f}° per token" in md


def test_what_the_head_writes_follows_the_sliders(app, bundled):
    page_ok(app)
    subs = [s.value for s in app.subheader]
    assert "4 · From weights to what the head writes: values, the weighted sum and the output projection" in subs
    assert "5 · How the model knows word order" in subs
    _check_head_writes(app, bundled)
    before = plotly_array(chart(app, "att_z")["data"][0]["z"])
    app.slider(key="att_layer").set_value(12).run()
    app.slider(key="att_head").set_value(1).run()
    page_ok(app)
    _check_head_writes(app, bundled)
    assert not np.array_equal(before, plotly_array(chart(app, "att_z")["data"][0]["z"]))

def test_button_opens_the_strongest_induction_head(app, bundled):
    best = heads.top_heads(heads.head_scores(bundled)["induction"], k=1)[0]
    app.button(key="att_view_induction_0").click().run()
    page_ok(app)
    assert (app.session_state.att_layer, app.session_state.att_head) == (best.layer, best.head)
    assert (app.slider(key="att_layer").value, app.slider(key="att_head").value) == (best.layer, best.head)
    cap = [c.value for c in app.caption if "Average weight on the outlined cells" in c.value]
    assert cap and int(cap[0].split(": ")[1].split("%")[0]) > 50


def test_empty_prompt_gets_a_message(app):
    app.text_area(key="prompt_widget").set_value("  ").run()
    page_ok(app)
    assert any("empty" in i.value for i in app.info)
    assert app.session_state._prompt == "  "
    app.text_area(key="prompt_widget").set_value("The cat sat on the mat").run()
    page_ok(app)
    for key in ("att_head_map", "att_step_raw"):  # the new prompt's tokens label both axes
        heat = chart(app, key)["data"][0]
        assert heat["x"][5] == heat["y"][5] == "5:␣mat" and len(heat["x"]) == 6


def test_a_128_token_prompt_sends_every_head_in_under_a_megabyte(app, bundled):
    """Issue 13 item 4: the page's figures at 128 tokens are ≤ 1 MB as sent, and still carry every head's
    pattern: the all-heads image within one of its 255 colour levels of the trace's pooled tiles, the open
    head's matrix, its zoomed window and the Q·K steps over that window within half a colour step (the rounding
    explainer/figures/attention.py documents)."""
    app.text_area(key="prompt_widget").set_value(_text_of(bundled, 128)).run()
    page_ok(app)
    sizes = chart_bytes(app)
    assert sum(sizes.values()) <= 1_000_000, sizes
    tr = ex.trace(bundled, app.session_state._prompt)
    assert tr.n_tokens == 128
    tiles = tiles_of(chart(app, "att_overview"))                        # [H·17-1, L·17-1]
    ref = _causal_block_max(tr.attn, 16)                                # [L, H, 16, 16]
    for layer in range(bundled.n_layers):
        for head in range(bundled.n_heads):
            got = tiles[head * 17: head * 17 + 16, layer * 17: layer * 17 + 16]
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref[layer, head]))
            np.testing.assert_allclose(got, ref[layer, head], atol=0.5 / 254 + 1e-6, equal_nan=True)
    layer, head = app.slider(key="att_layer").value, app.slider(key="att_head").value
    T = tr.n_tokens
    lo, hi = app.slider(key="att_window").value                         # a long prompt gets a zoomed window
    assert (lo, hi) == (T - 20, T - 1)
    zoom = chart(app, "att_head_zoom")["data"][0]
    assert zoom["y"][0] == f"{lo}:{tr.tokens[lo]}".replace(" ", "␣")
    zz = plotly_array(zoom["z"])                                        # [20, 20]
    inside = np.tril(np.ones((20, 20), dtype=bool))
    np.testing.assert_allclose(zz[inside], tr.attn[layer, head, lo:, lo:][inside], atol=1 / 256 / 2)
    share = sum(tr.attn[layer, head, q, lo:q + 1].sum() for q in range(lo, T)) / 20
    assert f"These queries put {share:.0%} of their weight" in " ".join(c.value for c in app.caption)
    z = plotly_array(chart(app, "att_head_map")["data"][0]["z"])        # [T, T]
    past = np.tril(np.ones((T, T), dtype=bool))
    assert np.isnan(z[~past]).all()
    np.testing.assert_allclose(z[past], tr.attn[layer, head][past], atol=1 / 256 / 2)
    steps = heads.qk_steps(bundled, tr, layer, head)
    w = slice(lo, hi + 1)                    # a long prompt's Q·K steps show the zoomed window, on the diagonal
    for key, want, cells in (("att_step_raw", steps.raw, np.ones_like(inside)),
                             ("att_step_scaled", steps.scaled, np.ones_like(inside)),
                             ("att_step_masked", steps.masked, inside), ("att_step_pattern", steps.pattern, inside)):
        heat = chart(app, key)["data"][0]
        got = plotly_array(heat["z"])                                   # [20, 20]
        assert heat["y"][0] == zoom["y"][0] and len(heat["y"]) == hi - lo + 1
        assert np.isnan(got[~cells]).all()
        np.testing.assert_allclose(got[cells], want[w, w][cells], atol=(heat["zmax"] - heat["zmin"]) / 256 / 2)
    assert f"the four steps show positions {lo} to {hi}" in " ".join(m.value for m in app.markdown)
