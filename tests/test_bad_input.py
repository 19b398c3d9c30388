"""Bad input, everywhere (Streamlit AppTest): every text box and every text or number URL value on every page,
under a table of bad inputs. Each must give a clear message or a sensible result, never an exception or a
traceback, and keep what the user typed.

Run time is kept modest: one AppTest per page, and each bad input is typed into all of that page's boxes at
once (one rerun per input), then the same inputs go through the page's URL values in one run each."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from explainer import links

BAD = {
    "empty": "",
    "whitespace": "   \n\t  ",
    "100k characters": ("antidisestablishment, " * 4546)[:100_000],
    "emoji": "🙂 🐈‍⬛ 🇫🇷 👩🏽‍🔬",
    "right-to-left": "مرحبا بالعالم, שלום עולם",
    "combining marks": "e\u0301\u0302\u0303, Z\u0351\u0352\u0353\u0354, a\u0300",
    "NUL and control": "a\x00b\x01c\x1b[31m\x7f\u202e\u200bd",
    "HTML and script": "<script>alert(1)</script><b>x</b>&amp;<img src=x onerror=alert(2)>",
    "many tokens": "Pneumonoultramicroscopicsilicovolcanoconiosis, supercalifragilisticexpialidocious",
}

# page -> [(widget kind, key)]: every free-text box the page draws (the prompt box where the page has one)
BOXES = {
    "streamlit_app": [("text_area", "prompt_widget")],
    "1_Embeddings": [("text_area", "emb_map_words"), ("text_input", "emb_an_a"), ("text_input", "emb_an_b"),
                     ("text_input", "emb_an_c"), ("text_input", "emb_nb_word"), ("text_area", "emb_dir_axis"),
                     ("text_area", "emb_dir_words"), ("text_area", "emb_sim_words"), ("text_input", "emb_ctx_word"),
                     ("text_area", "emb_ctx_sentences")],
    "2_Attention": [("text_area", "prompt_widget")],
    "3_MLP_neurons": [("text_area", "prompt_widget")],
    "4_Logit_lens": [("text_area", "prompt_widget"), ("text_input", "lens_word")],
    "5_Next_token": [("text_area", "prompt_widget")],
    "6_Generate": [("text_area", "gen_text"), ("text_input", "gen_stop"), ("text_area", "gen_batch")],
    "7_Interventions": [("text_area", "prompt_widget"), ("text_input", "abl_neurons")],
    "8_Anatomy": [],
    "9_Tiny_LM_lab": [("text_input", "lab_prefix")],
}
# page -> the URL names of its free-text values
URL_TEXT = {
    "streamlit_app": ["prompt"], "2_Attention": ["prompt"], "3_MLP_neurons": ["prompt"], "5_Next_token": ["prompt"],
    "1_Embeddings": ["map_words", "an_a", "an_b", "an_c", "nb_word", "dir_axis", "dir_words", "sim_words",
                     "ctx_word", "ctx_sentences"],
    "4_Logit_lens": ["prompt", "word"], "6_Generate": ["gen_text", "stop", "batch"],
    "7_Interventions": ["prompt", "ablate_neurons"], "8_Anatomy": [], "9_Tiny_LM_lab": ["lab_prefix"],
}
# out-of-range and malformed numbers, every numeric URL value at once
NUMBERS = {"max_tokens": "99999999", "seed": "-1", "top_k": "1e12", "temperature": "-3", "top_p": "NaN",
           "layer": "-7", "head": "1e400", "neuron": "99999999", "token": "-1", "mlp_n": "0", "an_k": "-4",
           "max_new": "100000", "lab_steps": "5", "lab_every": "999999", "lab_seed": "-5",
           "lab_sample_seed": "3.5", "lab_n": "1e9", "lab_block": "0x10", "lab_of_names": "∞"}
# (lab_steps and lab_every go out of range on the cheap side: the lab trains on a first visit, so a link with
# lab_steps=50000&lab_every=10 draws 5,000 redraws, minutes of server time: a page matter, noted in the report)
# the lesson player's names (every page): a lesson that is not there, a step and a presenter flag that are not
# numbers or flags, with a real lesson so that the step is read
PLAYER = {"lesson": "how-a-gpt-writes", "step": "1e9", "present": "2"}
for _names in URL_TEXT.values():
    _names.append("lesson")       # free text as a lesson name: a notice that no such lesson is here
MAX_CHARS = {"lab_prefix": 20}
PAGES = list(BOXES)


def _path(page: str) -> str:
    return "../streamlit_app.py" if page == "streamlit_app" else f"../pages/{page}.py"


def _no_crash(at, where: str) -> None:
    assert not at.exception, (where, [e.message for e in at.exception])
    shown = [m.value for kind in ("error", "warning", "info", "markdown", "caption") for m in getattr(at, kind)]
    assert not any("Traceback (most recent call last)" in str(s) for s in shown), where


def _kept(typed: str, key: str) -> str:
    """What must still be in the box. The prompt box keeps everything. The other boxes keep what was typed, however
    long (the link holds what this session wrote, so it is not mended: test_a_long_text_typed_in_a_box_is_kept_whole),
    except a text with a NUL, which is mended as a link value is (NUL removed, at most links.MAX_VALUE_CHARS); a
    box with max_chars keeps that many."""
    if key == "prompt_widget":
        return typed
    kept = typed.replace("\x00", "")[: links.MAX_VALUE_CHARS] if "\x00" in typed else typed
    return kept[: MAX_CHARS[key]] if key in MAX_CHARS else kept


def _messages(at) -> str:
    return " ".join(str(m.value) for kind in ("error", "warning", "info") for m in getattr(at, kind))


def _present(at, boxes):
    return [(kind, key) for kind, key in boxes if any(getattr(w, "key", None) == key for w in getattr(at, kind))]


@pytest.mark.parametrize("page", [p for p in PAGES if BOXES[p]])
def test_bad_text_typed_in_every_box(offline, page):
    from tests.conftest import EIFFEL

    boxes = BOXES[page]
    at = AppTest.from_file(_path(page), default_timeout=300).run()
    _no_crash(at, "first run")
    assert _present(at, boxes) == boxes, _present(at, boxes)
    for name, typed in BAD.items():
        here = _present(at, boxes)
        for kind, key in here:
            getattr(at, kind)(key=key).set_value(typed)
        at.run()
        _no_crash(at, name)
        for kind, key in _present(at, here):
            assert getattr(at, kind)(key=key).value == _kept(typed, key), (name, key)
        if len(typed) > links.MAX_VALUE_CHARS and "\x00" not in typed:
            assert "kept the first" not in _messages(at), (name, _messages(at))   # typed, not cut
        if ("text_area", "prompt_widget") in boxes and not typed.strip():
            assert "prompt is empty" in _messages(at), (name, _messages(at))
            assert at.text_area(key="prompt_widget").value == typed            # kept, to be mended by the user
            at.text_area(key="prompt_widget").set_value(EIFFEL).run()           # the page's other boxes return
            _no_crash(at, name)


def test_a_long_text_typed_in_a_box_is_kept_whole(offline):
    at = AppTest.from_file(_path("1_Embeddings"), default_timeout=300).run()
    typed = BAD["100k characters"]
    at.text_area(key="emb_sim_words").set_value(typed).run()
    _no_crash(at, "100k")
    assert at.text_area(key="emb_sim_words").value == typed
    # the same link opened in a fresh session is mended (cut, with a notice), not trusted
    fresh = AppTest.from_file(_path("1_Embeddings"), default_timeout=300)
    fresh.query_params["sim_words"] = typed
    fresh.query_params["tab"] = "similarity"
    fresh.run()
    _no_crash(fresh, "100k link")
    assert fresh.text_area(key="emb_sim_words").value == typed[:links.MAX_VALUE_CHARS]


@pytest.mark.parametrize("page", PAGES)
def test_bad_text_and_numbers_in_the_url(offline, page):
    names = URL_TEXT[page]
    for label, value in BAD.items():
        if not names or label in ("empty", "whitespace", "many tokens"):   # an empty value means the default
            continue
        at = AppTest.from_file(_path(page), default_timeout=300)
        for n in names:
            at.query_params[n] = links.encode_prompt(value) if n in ("prompt", "gen_text", "batch") else value
        at.run()
        _no_crash(at, label)
    at = AppTest.from_file(_path(page), default_timeout=300)
    for n, v in {**NUMBERS, **PLAYER}.items():
        at.query_params[n] = v
    at.run()
    _no_crash(at, "numbers")
    assert not at.error, [e.value for e in at.error]
    notes = " ".join(w.value for w in at.warning)
    assert "`step=1e9`" in notes and "`present=2`" in notes, notes


def test_bad_model_names_typed_in_the_picker(offline):
    at = AppTest.from_file("../streamlit_app.py", default_timeout=300).run()
    at.selectbox(key="model_pick").set_value("Other: a Hub id or a local folder…").run()
    for name, typed in BAD.items():
        if not typed.strip():
            continue
        at.text_input(key="model_other").set_value(typed).run()
        _no_crash(at, name)
        assert at.session_state.model_name == "bundled", name            # the model in use stays
        assert at.text_input(key="model_other").value == typed, name     # and what was typed stays in the box
        assert any(e.value for e in at.sidebar.error), name              # with a message saying why
