"""The MLP neurons, logit lens and interventions pages in Streamlit's AppTest: defaults, main widgets moved,
and what they show checked against the engine computed here independently."""

from __future__ import annotations

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from explainer import interventions as iv
from explainer import lens, mlp, words
from explainer.figures.common import show_token
from explainer.sampling import softmax
from tests.conftest import charts, page_ok, plotly_array

# offline and tr (the bundled model's trace of the pages' default prompt) come from conftest.py


def _text(at) -> str:
    return " ".join(x.value for kind in ("markdown", "caption", "subheader") for x in getattr(at, kind))


def test_mlp_page(offline, bundled, tr):
    at = AppTest.from_file("../pages/3_MLP_neurons.py", default_timeout=180).run()
    page_ok(at)
    layer = at.slider(key="mlp_layer").value
    ns = mlp.top_neurons(tr, layer, 20, skip_first=True)
    assert any(f"The 20 most active neurons of layer {layer}" in s.value for s in at.subheader)
    neuron = at.selectbox(key="mlp_neuron").value
    assert neuron == int(ns.neurons[0])                          # starts on the layer's strongest neuron
    acts = tr.mlp[layer, :, neuron]                              # the chips carry this neuron's activations
    md = _text(at)
    assert all(f"<small>{a:+.2f}</small>" in md for a in acts)
    assert len(charts(at)) == 4

    at.slider(key="mlp_layer").set_value(11).run()               # a layer with a huge first-token activation
    page_ok(at)
    assert at.selectbox(key="mlp_neuron").value == int(mlp.top_neurons(tr, 11, 20, skip_first=True).neurons[0])
    at.toggle(key="mlp_skip").set_value(False).run()
    page_ok(at)
    sb = at.selectbox(key="mlp_neuron")                          # the first token's giant now leads the list;
    assert sb.options[0] == f"L11.N{int(mlp.top_neurons(tr, 11, 20).neurons[0])}"
    assert sb.value == int(mlp.top_neurons(tr, 11, 20, skip_first=True).neurons[0])  # the neuron shown stays
    at.selectbox(key="mlp_pos").set_value(3).run()
    page_ok(at)
    tn = mlp.top_neurons_at(tr, 11, 3, n=10)
    other = int(tn.neurons[-1])
    at.selectbox(key="mlp_neuron").set_value(other).run()
    page_ok(at)
    md = _text(at)
    assert f"L11.N{other}" in md
    assert all(f"<small>{a:+.2f}</small>" in md for a in tr.mlp[11, :, other])
    at.slider(key="mlp_n").set_value(40).run()
    page_ok(at)
    assert any("The 40 most active neurons of layer 11" in s.value for s in at.subheader)


def test_logit_lens_page(offline, bundled, tr):
    at = AppTest.from_file("../pages/4_Logit_lens.py", default_timeout=300).run()
    page_ok(at)
    res = lens.logit_lens(bundled, tr)
    settled = res.settled_layer()
    md = _text(at)
    assert "predicts '␣Paris'" in md and f"after block {settled - 1}" in md
    grid = next(s for s in charts(at).values() if s["data"][0]["type"] == "heatmap")
    cells = grid["data"][0]["text"]
    assert len(cells) == bundled.n_layers + 1 and len(cells[0]) == tr.n_tokens
    assert cells[-1][-1] == "<b>␣Paris</b>"                      # the model's output row, last position
    np.testing.assert_allclose(plotly_array(grid["data"][0]["z"]), res.probs[:, :, 0], rtol=1e-5)
    # the bottom row's echo, counted here from the embeddings through the final norm and the unembedding
    x = torch.from_numpy(np.array(tr.resid[0]))                  # a writable copy
    with torch.inference_mode():
        first = bundled.model.lm_head(bundled.model.model.norm(x)).argmax(-1).numpy()
    echo, n = int((first == tr.token_ids).sum()), tr.n_tokens
    said = (f"mostly repeats the input token itself (at {echo} of the {n} positions shown)" if 2 * echo > n else
            f"repeats the input token itself at {echo} of the {n} positions shown" if echo else
            f"repeats the input token at none of the {n} positions shown")
    assert said in md, (echo, n)

    at.text_input(key="lens_word").set_value("London").run()     # track another city
    page_ok(at)
    london = words.choose_token(bundled, "London")
    tj = lens.token_trajectory(bundled, tr, london.token_id)
    assert f"ends at rank {int(tj.ranks[-1, -1]) + 1:,} of" in _text(at)
    at.text_input(key="lens_word").set_value("").run()
    at.selectbox(key="lens_pos").set_value(3).run()               # after ' Tower'
    page_ok(at)
    top = int(np.argmax(softmax(tr.logits[3])))
    assert at.selectbox(key="lens_track").value == top

    at.number_input(key="max_tokens").set_value(64).run()
    at.text_area(key="prompt_widget").set_value("one two three four five six seven eight nine ten " * 3).run()
    page_ok(at)
    lo, hi = at.slider(key="lens_window").value                  # more than 16 tokens: a window of positions
    assert hi - lo + 1 == 16
    at.slider(key="lens_window").set_value((0, 9)).run()
    page_ok(at)
    grid = next(s for s in charts(at).values() if s["data"][0]["type"] == "heatmap")
    assert len(grid["data"][0]["text"][0]) == 10


def test_interventions_page(offline, bundled, tr):
    at = AppTest.from_file("../pages/7_Interventions.py", default_timeout=300).run()
    page_ok(at)
    attr = iv.attribution(bundled, tr)
    suggested = [iv.head_label(*x) for x in attr.top_heads(3)]
    assert at.multiselect(key="abl_heads").value == suggested    # opens with something worth seeing
    metrics = {m.label: m for m in at.metric}
    assert metrics["Prediction before"].value == "'␣Paris'"
    res = iv.ablate(bundled, tr, heads=iv.parse_heads(suggested))
    p_after = res.probs_after[int(np.argmax(tr.logits[-1]))]
    assert metrics["p('␣Paris')"].value == f"{p_after:.1%}"
    pb, pa = res.probs_before.astype(np.float64), res.probs_after.astype(np.float64)
    kl_bits = float(np.sum(pb * np.log2(pb / np.maximum(pa, 1e-30)), where=pb > 0))   # by hand, in bits
    assert f"unmodified model's (KL divergence): **{kl_bits:.3f} bits**" in _text(at)

    at.button(key="abl_clear_heads").click().run()
    page_ok(at)
    assert any("Nothing is switched off" in i.value for i in at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prediction after"] == metrics["Prediction before"]

    at.text_input(key="abl_neurons").set_value("L11.N100, 28.7").run()
    page_ok(at)
    res = iv.ablate(bundled, tr, neurons=[(11, 100), (28, 7)])
    after = show_token(iv.compare(bundled, res).tokens[0])
    assert any(s.value.startswith("2 · Before and after") for s in at.subheader)
    assert {m.label: m.value for m in at.metric}["p('␣Paris')"] == f"{res.probs_after[attr.target_id]:.1%}"
    assert after

    at.text_input(key="abl_neurons").set_value("L11.banana").run()  # bad input: a message, what was typed kept
    page_ok(at)
    assert any("banana" in w.value for w in at.warning)
    assert at.text_input(key="abl_neurons").value == "L11.banana"

    at.button(key="abl_suggest_neurons").click().run()
    page_ok(at)
    assert at.text_input(key="abl_neurons").value == ", ".join(iv.neuron_label(*x) for x in attr.top_neurons(3))
    at.multiselect(key="abl_heads").select("L0.H0").run()
    page_ok(at)


def test_mlp_page_introduces_its_curated_neuron(offline, bundled):
    import re

    from explainer import content

    layer, neuron, _, _ = content.CURATED_NEURON["bundled"]
    rep = mlp.neuron_report(bundled, layer, neuron, content.NUMBER_CHECK,
                            lambda t: re.fullmatch(content.NUMBER_PATTERN, t) is not None)
    at = AppTest.from_file("../pages/3_MLP_neurons.py", default_timeout=180).run()
    page_ok(at)
    md = _text(at)
    assert f"L{layer}.N{neuron} fires on digits" in md
    assert f"**{rep.mean_members:+.2f} on the {rep.n_members} number tokens**" in md
    assert f"{rep.precision:.0%} of its {rep.n_members} strongest tokens are numbers" in md
    at.button(key="mlp_curated").click().run()
    page_ok(at)
    assert at.slider(key="mlp_layer").value == layer and at.selectbox(key="mlp_neuron").value == neuron
    assert at.query_params["layer"] == str(layer) and at.query_params["neuron"] == str(neuron)


def test_interventions_page_opens_with_its_named_experiment(offline, bundled):
    from explainer import heads

    ko = iv.knockout_copying(bundled, heads.head_scores(bundled))
    at = AppTest.from_file("../pages/7_Interventions.py", default_timeout=240).run()
    page_ok(at)
    md = _text(at)
    assert f"the right token gets **{ko.copying:.1%}** of the probability on average" in md
    assert f"switch them off and it falls to **{ko.without_induction:.1%}**" in md
    below = ko.without_induction < min(ko.without_random)      # the verdict is said only when it holds
    assert ("hurts the copying more than any random choice did" in md) == below
    assert ("are not the whole story" in md) != below
    names = ",".join(iv.head_label(*h) for h in ko.heads)
    at.button(key="abl_named").click().run()
    page_ok(at)
    assert at.query_params["ablate_heads"] == names
    assert sorted(at.multiselect(key="abl_heads").value) == sorted(names.split(","))
