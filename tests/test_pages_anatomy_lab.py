"""The anatomy page and the tiny LM lab in Streamlit's AppTest."""

from __future__ import annotations

import math

from streamlit.testing.v1 import AppTest

from explainer import anatomy, ui
from tests.conftest import page_metrics

# the offline fixture comes from conftest.py


def run_data(at):
    from explainer import makemore as mm
    return mm.load_data(at.session_state.lab_block, seed=42)


def test_anatomy_page_counts_the_loaded_model(offline, bundled):
    at = AppTest.from_file("../pages/8_Anatomy.py", default_timeout=180).run()
    assert not at.exception
    assert not at.error
    total = sum(p.numel() for p in bundled.model.parameters())
    assert any(f"{total:,} parameters" in s.value for s in at.subheader)
    m = page_metrics(at)
    assert m["Weight matrices"] == f"{sum(1 for p in bundled.model.parameters() if p.dim() == 2):,}"
    assert m["Layers (blocks)"] == str(bundled.n_layers) and m["d_model"] == f"{bundled.d_model:,}"
    assert m["Vocabulary"] == f"{bundled.vocab_size:,}" and m["Context window"] == f"{bundled.n_ctx:,}"
    assert m["float32"] == anatomy.human_bytes(4 * total)
    assert any(bundled.weights_path in c.value for c in at.code)
    assert any("class LlamaDecoderLayer" in c.value for c in at.code)
    table = at.dataframe[0].value
    rows = dict(zip(table["model"], table["parameters"]))
    assert rows["GPT-2 small"] == 124_439_808
    assert rows[f"▶ {bundled.label}"] == total
    assert {"GPT-2 medium", "GPT-2 large", "GPT-2 XL", "GPT-J 6B", "Llama 2 7B", "Llama 2 70B",
            "GPT-3 175B"} <= set(rows)


def test_anatomy_page_survives_a_failed_model_pick(offline):
    at = AppTest.from_file("../pages/8_Anatomy.py", default_timeout=180).run()
    at.selectbox(key="model_pick").set_value("gpt2").run()  # offline: cannot load, keeps the bundled model
    assert not at.exception
    assert at.session_state.model_name == "bundled"
    assert "Parameters" in page_metrics(at)


def test_lab_trains_samples_and_overfits(offline):
    at = AppTest.from_file("../pages/9_Tiny_LM_lab.py", default_timeout=180).run()
    assert not at.exception
    assert not at.error
    m = page_metrics(at)
    # a first model trains as the page opens (3,000 steps by default), from a uniform guess to well below it
    assert m["Steps trained"] == "3,000" and float(m["Dev loss"]) < math.log(27) - 0.7
    first = at.session_state.lab_run["hist"]
    assert abs(first[0].dev_loss - math.log(27)) < 0.05 and first[-1].step == 3000
    assert any("trained as the page opened" in c.value for c in at.caption)
    assert float(m["Suggested learning rate"]) > 0
    default_of = ui.overfit_run(*at.session_state.lab_of)  # the demo runs once with its defaults (kept by name)
    assert default_of.n_train_names == 60 and default_of.dev[-1] > default_of.dev.min() + 0.3

    at.number_input(key="lab_steps").set_value(600)
    at.number_input(key="lab_every").set_value(200)
    at.button(key="lab_train").click().run()
    assert not at.exception and not at.error
    m = page_metrics(at)
    assert m["Steps trained"] == "600"
    assert float(m["Dev loss"]) < math.log(27) - 0.4
    assert m["Test loss"] == "—"                     # the test names are looked at once, when asked
    run = at.session_state.lab_run
    at.button(key="lab_test").click().run()
    assert page_metrics(at)["Test loss"] == f"{run['model'].evaluate(run_data(at).test):.3f}"
    assert run["test"][0] == 600 and not at.button(key="lab_more").disabled
    assert [h.step for h in run["hist"]] == [0, 200, 400, 600]
    assert not any("trained as the page opened" in c.value for c in at.caption)

    # a rerun (another widget moved) keeps the trained model; same sampling seed, same names
    def chips():
        return [c.value for c in at.markdown if c.value.startswith('<div class="tok-row">')]

    names = chips()
    assert len(names) == 1 and names[0].count('class="tok"') == 20
    at.slider(key="lab_temp").set_value(1.0).run()
    assert page_metrics(at)["Steps trained"] == "600"
    assert chips() == names
    at.number_input(key="lab_sample_seed").set_value(7).run()
    assert chips() != names

    at.button(key="lab_more").click().run()
    assert page_metrics(at)["Steps trained"] == "1,200"

    # new settings: the old model stays until Train is pressed; a 10-d embedding is drawn by PCA
    at.select_slider(key="lab_embd").set_value(10).run()
    assert any("settings above changed" in i.value for i in at.info)
    assert at.button(key="lab_more").disabled
    at.number_input(key="lab_steps").set_value(100)
    at.button(key="lab_train").click().run()
    assert not at.exception and not at.error
    assert at.session_state.lab_run["cfg"].n_embd == 10 and page_metrics(at)["Steps trained"] == "100"

    at.text_input(key="lab_prefix").set_value("a1").run()
    assert not at.exception
    assert any("a–z" in i.value for i in at.info)
    assert at.text_input(key="lab_prefix").value == "a1"  # what the user typed is kept

    at.slider(key="lab_of_names").set_value(30)
    at.select_slider(key="lab_of_hidden").set_value(200)
    at.button(key="lab_overfit").click().run()
    assert not at.exception and not at.error
    assert at.session_state.lab_of[1:] == (30, 200)
    res = ui.overfit_run(*at.session_state.lab_of)
    assert res.n_train_names == 30 and res.dev[-1] > res.train[-1]
    assert any("parameters for" in c.value for c in at.markdown)
