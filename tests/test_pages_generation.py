"""The next-token page and the generation playground in Streamlit's AppTest: defaults, sliders moved,
step buttons clicked, bad input shown as a message. Results are checked against the engine itself."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from explainer import content
from explainer import generation as gen
from explainer.figures.common import show_token
from explainer.sampling import probabilities
from explainer.tokens import encode
from tests.conftest import page_metrics, page_ok

# the offline fixture comes from conftest.py


def test_next_token_page_sliders_steps_and_undo(offline, bundled):
    at = AppTest.from_file("../pages/5_Next_token.py", default_timeout=180).run()
    page_ok(at)
    prompt = at.session_state._prompt
    logits = gen.next_logits(bundled, encode(bundled, prompt, int(at.session_state.max_tokens)).ids)  # [V]
    d = probabilities(logits, 1.0, 10, 0.9)  # the page's defaults
    m = page_metrics(at)
    assert m["Entropy"] == f"{d.entropy:.2f} bits"
    assert m["Tokens kept"] == f"{d.n_kept:,}"
    assert m["Top token"] == show_token(bundled.tokenizer.decode([d.argmax]))
    assert any("No steps yet" in i.value for i in at.info)

    # Temperature 0: greedy, one survivor, zero entropy (redrawn from cached logits).
    at.slider(key="nt_temp").set_value(0.0).run()
    page_ok(at)
    m = page_metrics(at)
    assert m["Tokens kept"] == "1" and m["Entropy"] == "0.00 bits"
    at.slider(key="nt_temp").set_value(3.0).run()
    at.slider(key="nt_top_p").set_value(1.0).run()
    at.number_input(key="nt_top_k").set_value(0).run()
    page_ok(at)
    hot = probabilities(logits, 3.0)
    assert page_metrics(at)["Entropy"] == f"{hot.entropy:.2f} bits"
    at.number_input(key="nt_top_k").set_value(10_000_000).run()  # beyond the vocabulary: a note, all kept
    page_ok(at)
    assert page_metrics(at)["Tokens kept"] == f"{bundled.vocab_size:,}"
    assert any("larger than the vocabulary" in c.value for c in at.caption)

    # Steps: the top token at temperature 0 equals a greedy generate; then a seeded sample; then undo.
    at.slider(key="nt_temp").set_value(0.0).run()
    at.button(key="nt_top").click().run()
    page_ok(at)
    state = at.session_state.nt_state
    assert [s.token_id for s in state.steps] == [int(np.argmax(logits))]
    at.slider(key="nt_temp").set_value(1.0).run()
    at.number_input(key="nt_top_k").set_value(50).run()
    at.button(key="nt_sample").click().run()
    at.button(key="nt_top").click().run()
    page_ok(at)
    state = at.session_state.nt_state
    assert [s.how for s in state.steps] == ["top", "sample", "top"]
    assert state.steps[1].seed == 42 and state.steps[1].settings.top_k == 50
    taken = [s.token_id for s in state.steps]
    assert len(at.get("plotly_chart")) == 3  # distribution, survivors, timeline

    # Scrub back: the distribution of step 0 comes back (its own, kept with the step).
    at.slider(key="nt_view").set_value(0).run()
    page_ok(at)
    assert any("step 0" in s.value for s in at.subheader)
    assert at.session_state.nt_state.steps[0].logits is state.steps[0].logits
    at.button(key="nt_undo").click().run()
    page_ok(at)
    assert [s.token_id for s in at.session_state.nt_state.steps] == taken[:2]

    # The same seed and the same clicks repeat the demo exactly.
    at.button(key="nt_restart").click().run()
    at.slider(key="nt_temp").set_value(0.0).run()
    at.button(key="nt_top").click().run()
    at.slider(key="nt_temp").set_value(1.0).run()
    at.button(key="nt_sample").click().run()
    page_ok(at)
    assert [s.token_id for s in at.session_state.nt_state.steps] == taken[:2]


def test_next_token_page_bad_prompt_is_a_message(offline):
    at = AppTest.from_file("../pages/5_Next_token.py", default_timeout=180).run()
    at.text_area(key="prompt_widget").set_value("  ").run()
    assert not at.exception
    assert any("empty" in i.value for i in at.info)
    assert at.session_state._prompt == "  "


def test_generate_page_streams_stops_and_pads(offline, bundled):
    at = AppTest.from_file("../pages/6_Generate.py", default_timeout=180).run()
    page_ok(at)
    text = at.session_state.gen_text
    assert text == content.TEMPLATES["qa"].text
    enc = encode(bundled, text)
    md = " ".join(m.value for m in at.markdown)
    assert all(f"<small>{i}</small>" in md for i in enc.ids)  # token chips with ids
    # Padding: the table's batch predictions agree with running each prompt alone.
    rows = at.table[0].value
    assert len(rows) == 3 and all(str(v).startswith("same") for v in rows["run alone"])
    # st.table renders Markdown: tokens go in code spans (a lone '-' would otherwise become a bullet).
    assert all(str(v).startswith("`") and str(v).endswith("`") for v in rows["next token (batch)"])

    at.slider(key="gen_temp").set_value(0.0).run()
    at.button(key="gen_go").click().run()
    page_ok(at)
    out = at.session_state.gen_out[1]
    ref = gen.generate(bundled, text, gen.GenConfig(max_new_tokens=40, temperature=0, stop=("\n",)))
    assert [t.token_id for t in out.tokens] == [t.token_id for t in ref.tokens]
    assert out.reason == ref.reason == "stop" and out.text == ref.text
    assert any(out.why in c.value for c in at.caption)

    # Another template, the right padding side, and an empty prompt: no traceback, a message.
    at.selectbox(key="gen_template").set_value("code").run()
    page_ok(at)
    assert at.session_state.gen_text == content.TEMPLATES["code"].text
    at.radio(key="gen_pad_side").set_value("right").run()
    page_ok(at)
    at.text_area(key="gen_text").set_value("   ").run()
    assert not at.exception
    assert any("empty" in i.value for i in at.info)
    at.text_area(key="gen_batch").set_value("\n \n").run()
    assert not at.exception
    assert any("no prompts" in i.value for i in at.info)


def test_generate_page_chat_turn(offline, bundled):
    at = AppTest.from_file("../pages/6_Generate.py", default_timeout=180).run()
    at.selectbox(key="gen_template").set_value("chat").run()
    page_ok(at)
    at.slider(key="gen_max_new").set_value(12).run()
    at.chat_input(key="gen_chat_in").set_value("What is the capital of France?").run()
    page_ok(at)
    log = at.session_state.gen_chat
    assert [m["role"] for m in log] == ["user", "assistant"]
    ids, stops, _ = gen.chat_ids(bundled, log[:1])
    ref = gen.generate(bundled, ids, gen.GenConfig(max_new_tokens=12, temperature=0.3, top_k=50, top_p=0.95,
                                                   stop=stops, seed=0))
    assert log[1]["content"] == ref.text.strip()
    assert any("What the model actually reads" in e.label for e in at.expander)
