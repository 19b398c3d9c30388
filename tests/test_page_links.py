"""Every page's controls live in its link (Streamlit AppTest): a URL parameter sets the widget, moving the
widget writes the URL, page switches keep every control, and bad URL values give a notice, never an exception.
The names are the contract in explainer/links.py (and ARCHITECTURE.md)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import explainer as ex
from explainer import generation as gen
from tests.conftest import EIFFEL, chart, page_ok

# page -> [(URL name, widget kind, widget key, value in a URL, what the widget then shows, a new widget
#           value, how the URL then writes it)]
PARAMS = {
    "0_Model_map": [
        ("layer", "slider", "mm_layer", "5", 5, 6, "6"),
        ("token", "selectbox", "mm_pos", "2", 2, 3, "3"),
        ("box", "selectbox", "mm_box", "attn.q", "attn.q", "mlp.act", "mlp.act"),
        ("open_block", "toggle", "mm_open", "1", True, False, "0"),
    ],
    "5_Next_token": [
        ("temperature", "slider", "nt_temp", "2.5", 2.5, 0.3, "0.3"),
        ("top_k", "number_input", "nt_top_k", "0", 0, 5, "5"),
        ("top_p", "slider", "nt_top_p", "1", 1.0, 0.5, "0.5"),
        ("seed", "number_input", "nt_seed", "7", 7, 9, "9"),
        ("show", "slider", "nt_show", "20", 20, 30, "30"),
        ("min_p", "slider", "nt_min_p", "0.1", 0.1, 0.05, "0.05"),
        ("repetition_penalty", "slider", "nt_penalty", "1.3", 1.3, 1.5, "1.5"),
        ("max_tokens", "number_input", "max_tokens", "128", 128, 192, "192"),
    ],
    "2_Attention": [
        ("layer", "slider", "att_layer", "5", 5, 6, "6"),
        ("head", "slider", "att_head", "3", 3, 2, "2"),
        ("token", "selectbox", "att_pos", "2", 2, 3, "3"),
    ],
    "3_MLP_neurons": [
        ("layer", "slider", "mlp_layer", "5", 5, 6, "6"),
        ("mlp_n", "slider", "mlp_n", "10", 10, 15, "15"),
        ("skip_first", "toggle", "mlp_skip", "0", False, True, "1"),
        ("token", "selectbox", "mlp_pos", "2", 2, 3, "3"),
        ("neuron", "selectbox", "mlp_neuron", "100", 100, None, None),  # any neuron, not only the top ones
    ],
    "4_Logit_lens": [
        ("token", "selectbox", "lens_pos", "3", 3, 4, "4"),
        ("word", "text_input", "lens_word", "London", "London", "Rome", "Rome"),
        ("space", "toggle", "lens_space", "0", False, True, "1"),
    ],
    "1_Embeddings": [
        ("map_dims", "radio", "emb_map_dims", "3-D", "3-D", "2-D", "2-D"),
        ("map_align", "checkbox", "emb_map_align", "1", True, False, "0"),
        ("map_words", "text_area", "emb_map_words", "cat, dog", "cat, dog", "sun, moon", "sun, moon"),
        ("an_a", "text_input", "emb_an_a", "Paris", "Paris", "Rome", "Rome"),
        ("an_b", "text_input", "emb_an_b", "France", "France", "Italy", "Italy"),
        ("an_c", "text_input", "emb_an_c", "Japan", "Japan", "Spain", "Spain"),
        ("an_k", "slider", "emb_an_k", "5", 5, 7, "7"),
        ("an_variants", "checkbox", "emb_an_variants", "0", False, True, "1"),
        ("an_vs", "selectbox", "emb_an_vs", "gpt2", "gpt2", "glove", "glove"),   # gpt2 offline: a message
        ("nb_word", "text_input", "emb_nb_word", "queen", "queen", "river", "river"),
        ("dir_words", "text_area", "emb_dir_words", "boy, girl", "boy, girl", "man", "man"),
        ("sim_words", "text_area", "emb_sim_words", "cat, dog", "cat, dog", "sun, moon", "sun, moon"),
        ("ctx_word", "text_input", "emb_ctx_word", "bank", "bank", "bat", "bat"),
        ("ctx_center", "checkbox", "emb_ctx_center", "0", False, True, "1"),
    ],
    "6_Generate": [
        ("template", "selectbox", "gen_template", "code", "code", "story", "story"),
        ("max_new", "slider", "gen_max_new", "12", 12, 20, "20"),
        ("temperature", "slider", "gen_temp", "1.5", 1.5, 0.5, "0.5"),
        ("top_k", "number_input", "gen_top_k", "7", 7, 8, "8"),
        ("top_p", "slider", "gen_top_p", "0.8", 0.8, 0.7, "0.7"),
        ("min_p", "slider", "gen_min_p", "0.1", 0.1, 0.2, "0.2"),
        ("repetition_penalty", "slider", "gen_penalty", "1.2", 1.2, 1.4, "1.4"),
        ("stop", "text_input", "gen_stop", "END", "END", "STOP", "STOP"),
        ("seed", "number_input", "gen_seed", "3", 3, 4, "4"),
        ("pad_side", "radio", "gen_pad_side", "right", "right", "left", "left"),
        ("batch", "text_area", "gen_batch", "Hi\nHello there", "Hi\nHello there", "A\nB", "A\nB"),
    ],
    "7_Interventions": [
        ("ablate_heads", "multiselect", "abl_heads", "L1.H3,L2.H0", ["L1.H3", "L2.H0"], ["L4.H1"], "L4.H1"),
        ("ablate_neurons", "text_input", "abl_neurons", "L15.N7", "L15.N7", "L3.N2", "L3.N2"),
    ],
    "9_Tiny_LM_lab": [
        ("lab_block", "slider", "lab_block", "4", 4, 2, "2"),
        ("lab_embd", "select_slider", "lab_embd", "3", 3, 4, "4"),
        ("lab_hidden", "select_slider", "lab_hidden", "50", 50, 25, "25"),
        ("lab_seed", "number_input", "lab_seed", "5", 5, 6, "6"),
        ("lab_lr", "select_slider", "lab_lr", "0.2", 0.2, 0.05, "0.05"),
        ("lab_steps", "number_input", "lab_steps", "500", 500, 1000, "1000"),
        ("lab_batch", "select_slider", "lab_batch", "64", 64, 16, "16"),
        ("lab_n", "slider", "lab_n", "10", 10, 12, "12"),
        ("lab_temp", "slider", "lab_temp", "0.5", 0.5, 0.7, "0.7"),
        ("lab_prefix", "text_input", "lab_prefix", "ma", "ma", "jo", "jo"),
        ("lab_of_names", "slider", "lab_of_names", "100", 100, 50, "50"),
    ],
}


def _app(page: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(f"../pages/{page}.py", default_timeout=300)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _home(at: AppTest) -> AppTest:
    """AppTest.switch_page takes page files only; Home is a function page, the navigation's default, which a
    run with no page asked for opens."""
    at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("page_name") == "Home")
    return at


def _widget(at: AppTest, kind: str, key: str):
    return getattr(at, kind)(key=key)


def _url(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


@pytest.mark.parametrize("page", list(PARAMS))
def test_url_sets_every_control_and_every_control_sets_the_url(offline, page):
    rows = PARAMS[page]
    at = _app(page, {name: raw for name, _, _, raw, *_ in rows})
    page_ok(at)
    assert not at.warning, [w.value for w in at.warning]          # good values: no notice
    for name, kind, key, raw, shown, _, _ in rows:
        assert _widget(at, kind, key).value == shown, (name, raw)
    for name, kind, key, _, _, new, written in rows:
        if new is None:
            continue
        _widget(at, kind, key).set_value(new).run()
        page_ok(at)
        assert _url(at)[name] == written, (name, _url(at))
        assert _widget(at, kind, key).value == new


def test_prompt_and_model_in_the_url(offline):
    at = _app("2_Attention", {"prompt": "The cat sat on the mat", "model": "bundled"})
    page_ok(at)
    assert at.text_area(key="prompt_widget").value == "The cat sat on the mat"
    long = "Once upon a time " * 60                                   # over 500 characters: compressed
    at.text_area(key="prompt_widget").set_value(long).run()
    page_ok(at)
    assert _url(at)["prompt"].startswith("zlib:") and len(_url(at)["prompt"]) < len(long)
    again = _app("2_Attention", {"prompt": _url(at)["prompt"]})        # the link opens the same prompt
    assert again.text_area(key="prompt_widget").value == long


def test_embeddings_tab_from_the_url(offline):
    at = _app("1_Embeddings", {"tab": "analogies"})
    page_ok(at)
    assert at.session_state["tab"] == "Analogies" and not at.warning
    other = _app("1_Embeddings", {"tab": "nonsense"})
    page_ok(other)
    assert any("not a tab here" in w.value for w in other.warning) and other.session_state["tab"] == "Word map"


def test_next_token_steps_replay_the_same_text(offline, bundled):
    at = _app("5_Next_token", {"prompt": EIFFEL})
    for _ in range(2):
        at.button(key="nt_top").click().run()
    at.button(key="nt_sample").click().run()
    page_ok(at)
    steps = _url(at)["steps"]
    ids = [int(i) for i in steps.split(",")]
    assert len(ids) == 3
    assert [s.token_id for s in at.session_state.nt_state.steps] == ids
    ref = gen.start(bundled, EIFFEL, 256)                             # the same text, built independently
    for t in ids:
        gen.advance(bundled, ref, "given", token=t)
    replay = _app("5_Next_token", {"prompt": EIFFEL, "steps": steps})
    page_ok(replay)
    assert replay.session_state.nt_state.ids == ref.ids
    assert replay.session_state.nt_state.frontier.tolist() == pytest.approx(ref.frontier.tolist(), abs=1e-4)


def test_controls_survive_page_switches(offline):
    at = AppTest.from_file("../streamlit_app.py", default_timeout=300)
    at.switch_page("pages/5_Next_token.py").run()
    at.slider(key="nt_temp").set_value(2.5).run()
    at.number_input(key="nt_top_k").set_value(0).run()
    at.number_input(key="nt_seed").set_value(7).run()
    at.switch_page("pages/2_Attention.py").run()
    page_ok(at)
    at.slider(key="att_layer").set_value(5).run()
    at.switch_page("pages/5_Next_token.py").run()
    page_ok(at)
    assert (at.slider(key="nt_temp").value, at.number_input(key="nt_top_k").value,
            at.number_input(key="nt_seed").value) == (2.5, 0, 7)
    at.switch_page("pages/3_MLP_neurons.py").run()
    assert at.slider(key="mlp_layer").value == 5                      # `layer` means the same on every page
    at.slider(key="mlp_layer").set_value(11).run()
    at.toggle(key="mlp_skip").set_value(False).run()
    at.selectbox(key="mlp_pos").set_value(3).run()
    at.slider(key="mlp_n").set_value(30).run()
    _home(at).run()
    page_ok(at)
    assert [t.value for t in at.title] == ["Inside a GPT"]
    at.switch_page("pages/3_MLP_neurons.py").run()
    page_ok(at)
    assert (at.slider(key="mlp_layer").value, at.toggle(key="mlp_skip").value, at.selectbox(key="mlp_pos").value,
            at.slider(key="mlp_n").value) == (11, False, 3, 30)


def test_one_selected_token_follows_the_user_across_pages(offline, bundled):
    """Pick a token on MLP neurons: it is the query row on Attention (outlined, and read out), the position on the
    logit lens and on the model map; moved on the lens, it is moved everywhere."""
    at = AppTest.from_file("../streamlit_app.py", default_timeout=300)
    at.switch_page("pages/3_MLP_neurons.py").run()
    at.selectbox(key="mlp_pos").set_value(3).run()                     # ' Tower'
    assert _url(at)["token"] == "3"
    at.switch_page("pages/2_Attention.py").run()
    page_ok(at)
    assert at.selectbox(key="att_pos").value == 3
    layer, head = at.slider(key="att_layer").value, at.slider(key="att_head").value
    tr = ex.trace(bundled, at.session_state._prompt)
    j = int(np.argmax(tr.attn[layer, head, 3]))                        # by hand: where row 3 looks most
    md = " ".join(m.value for m in at.markdown)
    assert f"Token 3, “{tr.tokens[3].replace(' ', '␣')}” (the outlined row), puts\n- " \
           f"{tr.attn[layer, head, 3, j]:.0%} on" in md
    box = chart(at, "att_head_map")["layout"]["shapes"][-1]
    assert (box["y0"], box["y1"], box["x1"]) == (2.5, 3.5, 3.5)
    at.switch_page("pages/4_Logit_lens.py").run()
    assert at.selectbox(key="lens_pos").value == 3
    at.selectbox(key="lens_pos").set_value(5).run()
    at.switch_page("pages/0_Model_map.py").run()
    assert at.selectbox(key="mm_pos").value == 5
    at.switch_page("pages/2_Attention.py").run()
    assert at.selectbox(key="att_pos").value == 5


# Bad values on every page: a notice each, the control on a sensible value, never an exception.
BAD = {"layer": "999", "head": "-1", "neuron": "abc", "token": "9999", "temperature": "abc", "top_k": "-5",
       "top_p": "7", "seed": "1e99", "steps": "1,2,99999999", "max_tokens": "0", "tab": "<b>x</b>",
       "word": "<script>alert(1)</script>", "map_dims": "4-D", "an_k": "1000", "template": "nope",
       "pad_side": "up", "ablate_heads": "L99.H99", "lab_block": "80", "lab_lr": "7", "mlp_n": "3.5",
       "utm_source": "newsletter", "prompt": "zlib:@@@", "open_block": "maybe", "box": "<i>x</i>",
       "min_p": "2", "repetition_penalty": "-1"}
PAGES = ["streamlit_app", *PARAMS, "8_Anatomy"]
PROMPT_PAGES = {"streamlit_app", "0_Model_map", "2_Attention", "3_MLP_neurons", "4_Logit_lens", "5_Next_token",
                "7_Interventions"}


@pytest.mark.parametrize("page", PAGES)
def test_bad_url_values_give_notices_not_exceptions(offline, page):
    path = "../streamlit_app.py" if page == "streamlit_app" else f"../pages/{page}.py"
    at = AppTest.from_file(path, default_timeout=300)
    for k, v in BAD.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    notes = " ".join(w.value for w in at.warning)
    assert "`utm_source`" in notes and "damaged" in notes              # every page: unknown names, the prompt
    if page in PROMPT_PAGES:                                           # a damaged prompt: the default one
        assert at.text_area(key="prompt_widget").value == EIFFEL
    used = {name for name, *_ in PARAMS.get(page, [])} - {"word"}   # free text: kept as typed, shown escaped
    for name in used & set(BAD):
        assert f"`{name}=" in notes or f"`{name}`" in notes, (page, name, notes)
