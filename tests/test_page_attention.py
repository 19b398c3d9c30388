"""The Attention page in Streamlit's AppTest: defaults, moving the head, opening a role's top head, bad input."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import explainer as ex
from explainer import heads
from tests.conftest import chart, page_ok, title_text


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
