"""The home page in Streamlit's AppTest: default state, bad prompts, a model that fails to load."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import explainer as ex


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # like a classroom without network: Hub ids must fail fast
    at = AppTest.from_file("../streamlit_app.py", default_timeout=180)
    return at.run()


def test_home_shows_tokens_and_prediction(app, bundled):
    assert not app.exception
    assert not app.error
    assert app.session_state.model_name == "bundled"
    md = " ".join(m.value for m in app.markdown)
    tr = ex.trace(bundled, app.session_state._prompt)
    for tok, i in zip(tr.tokens, tr.token_ids):  # every token chip with its id
        assert f"<small>{i}</small>" in md and tok.strip().replace("&", "&amp;") in md
    assert any("predicts" in s.value for s in app.subheader)


def test_empty_prompt_gets_a_message_not_a_traceback(app):
    app.text_area(key="prompt_widget").set_value("   ").run()
    assert not app.exception
    assert any("empty" in i.value for i in app.info)
    assert app.session_state._prompt == "   "  # what the user typed is kept


def test_long_prompt_is_truncated_with_a_visible_notice(app):
    app.number_input(key="max_tokens").set_value(16).run()
    app.text_area(key="prompt_widget").set_value("word " * 100).run()
    assert not app.exception
    assert any("only its last 16 tokens" in w.value for w in app.warning)


def test_failed_model_load_keeps_the_model_it_had(app):
    app.selectbox(key="model_pick").set_value("gpt2").run()  # offline: the download fails
    assert not app.exception
    assert app.session_state.model_name == "bundled"
    assert app.session_state.model_pick == "bundled"
    assert any("gpt2" in e.value and "bundled" in e.value for e in app.sidebar.error)
    assert any("predicts" in s.value for s in app.subheader)  # the page still works on the old model
