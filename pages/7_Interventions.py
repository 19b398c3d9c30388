"""Interventions: switch off attention heads or MLP neurons and see how the prediction changes."""

from __future__ import annotations

import streamlit as st

from explainer import defaults, snippets, ui
from explainer import interventions as iv
from explainer.errors import ExplainerError
from explainer.figures import interventions as figs
from explainer.figures.common import show_token

ss = st.session_state
N_SUGGEST = defaults.N_SUGGEST


def _set(name: str, value: str) -> None:
    ui.set_link(name, value)


@ui.section("experiment")
def named_experiment(lm) -> None:
    """Switch off the copying heads: the experiment that shows what induction heads are for."""
    st.subheader("A named experiment: switch off the heads that copy")
    try:
        with st.spinner("Switching off the strongest induction heads on a repeated random sequence…"):
            ko = ui.knockout(lm.name)
    except (ExplainerError, ValueError) as e:
        st.info(f"The experiment cannot run on this model: {e}")
        return
    names = ", ".join(iv.head_label(*h) for h in ko.heads)
    rand = sorted(ko.without_random)
    below = ko.without_induction < rand[0]                      # lower than every random knockout
    st.markdown(
        f"Give the model {ko.period} random tokens, then the same {ko.period} again. In the second copy it can "
        f"predict every next token by copying from the first: the right token gets **{ko.copying:.1%}** of the "
        f"probability on average, where a guess among {lm.vocab_size:,} tokens would give "
        f"{1 / lm.vocab_size:.4%}. The {len(ko.heads)} strongest "
        + ui.term("induction head", "induction heads") + f" ({names}) are the obvious suspects: switch them off "
        f"and it falls to **{ko.without_induction:.1%}**. Switching off {len(ko.heads)} other heads at random instead "
        f"leaves between {rand[0]:.1%} and {rand[-1]:.1%} ({len(rand)} tries)"
        + (f": switching off these few heads out of {lm.n_layers * lm.n_heads} hurts the copying more than any "
           "random choice did." if below else
           f": here random heads can matter as much, so these {len(ko.heads)} are not the whole story."))
    st.button(f"Switch {names} off on your prompt", key="abl_named", on_click=_set,
              args=("ablate_heads", ",".join(iv.head_label(*h) for h in ko.heads)))
    ui.code_expander(f"Copying on random tokens repeated twice: as is, without {names}, and without random heads.",
                     snippets.knockout(lm, ko.heads))


@ui.section("choose", hidden=ui.SILENT)
def choose_parts(lm, attr) -> tuple[list, str]:
    """The heads chosen (labels) and the neurons typed."""
    L, H = lm.n_layers, lm.n_heads
    labels = [iv.head_label(layer, h) for layer in range(L) for h in range(H)]
    suggested_heads = [iv.head_label(*x) for x in attr.top_heads(N_SUGGEST)]
    suggested_neurons = ", ".join(iv.neuron_label(*x) for x in attr.top_neurons(N_SUGGEST))

    st.subheader("1 · Choose what to switch off")
    if ui.reading_only():
        st.write(
            "Switching off (zeroing) a **head** removes what it writes into the residual stream, at every "
            "position; switching off a **neuron** sets its activation to zero. The model itself is not changed: "
            "the zeroing happens in hooks on this one forward pass, which are removed afterwards."
        )
    c_heads, c_neurons = st.columns(2, gap="large")
    with c_heads:
        # Unless the link says otherwise, start with something worth seeing: the suggested heads.
        chosen_heads = ui.many("ablate_heads", "Attention heads (layer.head)", labels, suggested_heads, key="abl_heads",
                               help=f"{L} layers × {H} heads. Heads are numbered from 0.")
        b1, b2 = st.columns(2)
        b1.button(f"Suggest {N_SUGGEST} heads", key="abl_suggest_heads", on_click=_set,
                  args=("ablate_heads", ",".join(suggested_heads)), width="stretch")
        b2.button("No heads", key="abl_clear_heads", on_click=_set, args=("ablate_heads", ""), width="stretch")
    with c_neurons:
        typed_neurons = ui.text("ablate_neurons", "MLP neurons (layer.neuron)", key="abl_neurons",
                                placeholder="e.g. L15.N1274, L20.N7",
                                help=f"Neurons of layer l are L{{l}}.N0 … L{{l}}.N{lm.d_mlp - 1}; separate them with "
                                     "commas.")
        if not ui.control_shown("ablate_neurons"):     # the presenter view of the heads alone
            return chosen_heads, typed_neurons
        b3, b4 = st.columns(2)
        b3.button(f"Suggest {N_SUGGEST} neurons", key="abl_suggest_neurons", on_click=_set,
                  args=("ablate_neurons", suggested_neurons), width="stretch")
        b4.button("No neurons", key="abl_clear_neurons", on_click=_set, args=("ablate_neurons", ""),
                  width="stretch")
    return chosen_heads, typed_neurons


@ui.section("before_after")
def before_and_after(lm, tr, res) -> None:
    cmp = iv.compare(lm, res, k=8)
    st.subheader("2 · Before and after")
    parts = [f"{len(res.heads)} head{'s' * (len(res.heads) != 1)}", f"{len(res.neurons)} neuron"
             f"{'s' * (len(res.neurons) != 1)}"]
    what = " and ".join(parts) + " off"
    m1, m2, m3 = st.columns(3)
    before_tok, after_tok = show_token(cmp.token(cmp.top_before)), show_token(cmp.token(cmp.top_after))
    m1.metric("Prediction before", f"'{before_tok}'", f"{cmp.prob_before(cmp.top_before):.1%}", delta_color="off",
              delta_arrow="off")
    m2.metric("Prediction after", f"'{after_tok}'", f"{cmp.prob_after(cmp.top_after):.1%}", delta_color="off",
              delta_arrow="off")
    m3.metric(f"p('{before_tok}')", f"{cmp.prob_after(cmp.top_before):.1%}",
              f"{(cmp.prob_after(cmp.top_before) - cmp.prob_before(cmp.top_before)) * 100:+.1f} points")
    if not res.heads and not res.neurons:
        st.info("Nothing is switched off yet, so before and after are the same. Pick heads or neurons above, or "
                "press a Suggest button.")
    ui.chart(figs.before_after(cmp, what), key="abl_before_after", present_height=400)
    if not ui.reading_only():       # the presenter view: before and after; the changes are in the normal view
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        ui.chart(figs.probability_changes(cmp, "Change in probability"), key="abl_changes")
    with right:
        st.markdown(
            f"**What changed.** The tokens most likely before the intervention, plus any that entered the top 8 "
            f"after it. The prediction {'changed' if cmp.prediction_changed else 'stayed the same'}. "
            f"How far the new distribution is from the unmodified model's (KL divergence): **{cmp.kl_bits:.3f} bits** "
            "(0 = no change at all)."
        )
        st.caption("Zeroing is a blunt tool: a model can route around a missing part, and a part can matter for "
                   "one prompt but not another. Try the same heads on a different prompt.")
    ui.code_expander(f"The prediction with {what}.", snippets.ablation(lm, tr, res.heads, res.neurons))



@ui.section("attribution")
def which_heads_matter(lm, tr, attr, heads) -> None:
    st.subheader("3 · Which heads matter for this prediction? (an estimate)")
    ui.chart(figs.attribution_heatmap(attr.heads, attr.target, heads), key="abl_attr")
    top_list = ", ".join(f"{iv.head_label(*x)} ({attr.heads[x]:+.2f})" for x in attr.top_heads(8))
    top_neur = ", ".join(f"{iv.neuron_label(*x)} ({attr.neurons[x]:+.2f})" for x in attr.top_neurons(5))
    st.caption(
        f"For every head at once: roughly how much log p('{show_token(attr.target)}') would change if that head "
        f"were switched off (gradient × activation, from one forward and one backward pass). Red-orange: "
        f"switching it off should hurt the prediction; blue: it should help. It is a first-order estimate; the "
        f"before/after above is the real effect. "
        f"Chosen heads are outlined. Strongest heads: {top_list}. Strongest neurons: {top_neur}."
    )
    ui.code_expander(f"Gradient × activation for log p('{show_token(attr.target)}') at every head and neuron.",
                     snippets.attribution(lm, tr, attr.target_id))


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    lm, tr = ui.traced_page(
        "Interventions",
        "To find out what a part of a model does, researchers break it on purpose and watch what changes. An "
        + ui.term("ablation") + " is a direct test of whether a head or a neuron matters for this prediction (with "
        "limits: a zeroed part is an input the model never saw, and other parts can make up for it).",
        icon="✂️",
    )
    max_tokens = int(ss.max_tokens)
    try:
        with st.spinner("Estimating which heads and neurons matter (one forward and one backward pass)…"):
            attr = ui.attribution_of(lm.name, tr.text, max_tokens)
    except ExplainerError as e:
        st.info(str(e))
        st.stop()

    named_experiment(lm)
    chosen_heads, typed_neurons = choose_parts(lm, attr)
    heads = iv.parse_heads(chosen_heads)
    try:
        neurons = iv.parse_neurons(typed_neurons)
        with st.spinner("Running the model with those parts switched off…"):
            res = ui.ablation_of(lm.name, tr.text, max_tokens, tuple(heads), tuple(neurons))
    except ExplainerError as e:
        st.warning(str(e))
        st.stop()

    before_and_after(lm, tr, res)
    which_heads_matter(lm, tr, attr, heads)


main()
