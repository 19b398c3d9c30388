"""The word-vectors page in Streamlit's AppTest: defaults, every preset of every tab, and bad input.
What the page shows is checked against the engine run directly on the same model."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explainer as ex
from explainer import content, residual, vectors, wordmaps, words
from explainer.figures.common import show_token
from tests.conftest import chart, page_ok, plotly_array


@pytest.fixture(scope="module")
def app():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # a classroom without network
        at = AppTest.from_file("../pages/1_Embeddings.py", default_timeout=300)
        at.run()
        yield at


def _texts(fig: dict) -> list[str]:
    return [t for d in fig["data"] for t in (d.get("text") or []) if isinstance(t, str) and t]


def _analogy_header(at) -> str:
    heads = [m.value for m in at.markdown if m.value.startswith("### ") and "≈" in m.value]
    assert len(heads) == 1
    return heads[0]


def test_defaults_show_every_tab(app, bundled):
    page_ok(app)
    assert any("input embedding matrix" in i.value and "tied" in i.value for i in app.info)
    # word map: every word of the default preset is a labelled point; 7 arrows
    wm = wordmaps.word_map(bundled, content.MAP_PRESETS[app.session_state.emb_map_preset])
    fig = chart(app, "emb_map_chart")
    assert sorted(_texts(fig)) == sorted(w.label for w in wm.vectors.words)
    assert len(fig["layout"]["annotations"]) == len(wm.arrows) == 7
    # analogy: king − man + woman ≈ ␣queen, the same answer as the engine's, and GloVe beside it
    assert "king − man + woman" in _analogy_header(app) and f"`{show_token(' queen')}`" in _analogy_header(app)
    bars = chart(app, "emb_an_bars")["data"][0]["y"]
    assert bars[-1].endswith("␣queen")  # best match drawn on top (last category)
    assert chart(app, "emb_an_glove")["data"][0]["y"][-1] == "1. queen"
    assert "the computed point" in [d["name"] for d in chart(app, "emb_an_map")["data"]]
    # directions, similarity, in context
    assert _texts(chart(app, "emb_dir_chart"))
    assert [d["type"] for d in chart(app, "emb_sim_heat")["data"]] == ["heatmap", "heatmap"]
    traj = chart(app, "emb_ctx_traj")
    _, sentences = content.CONTEXT_PRESETS[app.session_state.emb_ctx_preset]
    assert len(traj["data"]) == len(sentences)
    assert all(len(d["customdata"]) == bundled.n_layers + 1 for d in traj["data"])  # one point per boundary


@pytest.mark.parametrize("preset", list(content.MAP_PRESETS))
def test_each_map_preset(app, bundled, preset):
    app.selectbox(key="emb_map_preset").set_value(preset).run()
    page_ok(app)
    assert app.session_state.emb_map_words == content.MAP_PRESETS[preset]
    wm = wordmaps.word_map(bundled, content.MAP_PRESETS[preset])
    fig = chart(app, "emb_map_chart")
    assert sorted(_texts(fig)) == sorted(w.label for w in wm.vectors.words)
    assert len(fig["layout"].get("annotations", [])) == len(wm.arrows)


def test_map_in_3d_with_aligned_axes_and_a_free_list(app, bundled):
    app.radio(key="emb_map_dims").set_value("3-D").run()
    app.checkbox(key="emb_map_align").check().run()
    app.text_area(key="emb_map_words").set_value("man → woman, king → queen, table, naïve").run()
    page_ok(app)
    fig = chart(app, "emb_map_chart")
    assert {d["type"] for d in fig["data"]} >= {"scatter3d", "cone"}
    assert "average arrow" in fig["layout"]["scene"]["xaxis"]["title"]["text"]
    assert "naïve*" in _texts(fig)  # a word of several tokens, marked as a mean of its pieces
    assert any("mean of its pieces" in c.value for c in app.caption)
    app.text_area(key="emb_map_words").set_value("   ").run()  # an empty list: a message, not a traceback
    page_ok(app)
    assert any("empty" in i.value for i in app.info)
    assert app.session_state.emb_map_words == "   "
    app.radio(key="emb_map_dims").set_value("2-D").run()
    app.checkbox(key="emb_map_align").uncheck().run()


@pytest.mark.parametrize("preset", list(content.ANALOGY_PRESETS))
def test_each_analogy_preset(app, bundled, preset):
    app.selectbox(key="emb_an_preset").set_value(preset).run()
    page_ok(app)
    a, b, c = content.ANALOGY_PRESETS[preset]
    ref = vectors.analogy(bundled, [a, c], [b], k=10, exclude_variants=True)
    head = _analogy_header(app)
    assert ref.expression in head and f"`{show_token(ref.best.text)}`" in head
    assert len(chart(app, "emb_an_bars")["data"][0]["y"]) == app.session_state.emb_an_k
    assert chart(app, "emb_an_glove")  # GloVe knows every preset word


def test_nearest_neighbours_of_a_word(app, bundled):
    _, ref = vectors.neighbours(bundled, app.session_state.emb_nb_word, k=10)
    assert chart(app, "emb_nb_bars")["data"][0]["y"][-1] == f"1. {show_token(ref[0].text)}"
    app.text_input(key="emb_nb_word").set_value("queen").run()
    page_ok(app)
    _, ref = vectors.neighbours(bundled, "queen", k=10)
    bars = chart(app, "emb_nb_bars")["data"][0]
    assert bars["y"][::-1] == [f"{r + 1}. {show_token(n.text)}" for r, n in enumerate(ref)]
    assert chart(app, "emb_nb_glove")["data"][0]["y"][-1].startswith("1. ")
    app.text_input(key="emb_nb_word").set_value("").run()
    page_ok(app)
    assert any("empty" in i.value for i in app.info)
    app.text_input(key="emb_nb_word").set_value("Paris").run()


def test_analogy_bad_input_keeps_what_was_typed(app):
    app.text_input(key="emb_an_b").set_value("").run()
    page_ok(app)
    assert any("empty" in i.value for i in app.info)
    app.text_input(key="emb_an_b").set_value("man").run()
    app.text_input(key="emb_an_c").set_value("zzqxw").run()  # GloVe does not know it; the model splits it
    page_ok(app)
    assert any("400,000" in i.value for i in app.info)  # GloVe's side says so
    assert any("zzqxw" in c.value and "mean of its pieces" in c.value for c in app.caption)
    assert app.session_state.emb_an_c == "zzqxw"


@pytest.mark.parametrize("preset", list(content.DIRECTION_PRESETS))
def test_each_direction_preset(app, bundled, preset):
    app.selectbox(key="emb_dir_preset").set_value(preset).run()
    page_ok(app)
    axis, placed = content.DIRECTION_PRESETS[preset]
    pairs = words.parse_items(axis).pairs
    wv = vectors.word_vectors(bundled, [*words.split_words(placed), *(w for p in pairs for w in p)])
    proj = wordmaps.project(wordmaps.direction(bundled, pairs), wv.vectors, wv.words)
    fig = chart(app, "emb_dir_chart")
    order = sorted(range(len(wv.words)), key=lambda i: proj.position[i])
    assert fig["data"][0]["text"] == [wv.words[i].label for i in order]  # sorted by position along the axis


def test_similarity_words(app):
    app.text_area(key="emb_sim_words").set_value("king, queen, the").run()
    page_ok(app)
    assert chart(app, "emb_sim_heat")["data"][0]["x"] == ["king", "queen", "the"]
    app.text_area(key="emb_sim_words").set_value("king").run()
    page_ok(app)
    assert any("at least two" in i.value for i in app.info)


@pytest.mark.parametrize("preset", list(content.CONTEXT_PRESETS))
def test_each_context_preset(app, bundled, preset):
    app.selectbox(key="emb_ctx_preset").set_value(preset).run()
    page_ok(app)
    word, sentences = content.CONTEXT_PRESETS[preset]
    md = " ".join(m.value for m in app.markdown)
    assert all(s.split()[0] in md for s in sentences) and f"<u>{word}</u>" in md
    traj = chart(app, "emb_ctx_traj")
    assert len(traj["data"]) == len(sentences)
    assert all(len(d["customdata"]) == bundled.n_layers + 1 for d in traj["data"])
    cos = chart(app, "emb_ctx_cos")
    assert len(cos["data"]) == len(sentences) * (len(sentences) - 1) // 2


def test_context_layer_slider_redraws_the_table(app, bundled):
    app.selectbox(key="emb_ctx_preset").set_value(list(content.CONTEXT_PRESETS)[0]).run()
    L = bundled.n_layers
    word, sentences = content.CONTEXT_PRESETS[app.session_state.emb_ctx_preset]
    max_tokens = int(app.session_state.max_tokens)
    ca = residual.in_context(bundled, [ex.trace(bundled, s, max_tokens) for s in sentences], word,
                        centered=app.session_state.emb_ctx_center)
    for layer in (0, L // 2, L):
        app.slider(key=f"emb_ctx_layer_{L}").set_value(layer).run()
        page_ok(app)
        z = plotly_array(chart(app, "emb_ctx_matrix")["data"][0]["z"])
        np.testing.assert_allclose(z, ca.cosine[layer], atol=1e-6)
    assert np.allclose(ca.cosine[0], 1.0, atol=1e-6)  # every sentence starts from the same embedding row


def test_context_word_missing_from_a_sentence(app):
    app.text_input(key="emb_ctx_word").set_value("zebra").run()
    page_ok(app)
    assert any("does not appear" in i.value for i in app.info)
    app.text_area(key="emb_ctx_sentences").set_value("only one sentence with a zebra").run()
    page_ok(app)
    assert any("at least two sentences" in i.value for i in app.info)

