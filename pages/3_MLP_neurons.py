"""MLP neurons: which of a layer's neurons fire on the prompt, where, and how strongly."""

from __future__ import annotations

import streamlit as st

from explainer import defaults, mlp, snippets, ui
from explainer.errors import ExplainerError
from explainer.figures import mlp as figs
from explainer.figures.common import axis_labels, show_token

ss = st.session_state


def intro(lm, tr) -> None:
    L, _, M = tr.mlp.shape
    if lm.arch.family == "llama":
        how = "SiLU(gate) × up, a gated MLP, so it can be positive or negative"
    else:
        how = "GELU of the up-projection: mostly ≥ 0, with a small negative dip"
    st.write(
        f"Each of the {L} layers has **{M:,} neurons**. A neuron's *activation* is one number per token — here "
        f"{how}. The MLP then adds activation × (that neuron's output direction) to the token's vector, so a "
        "neuron that fires writes its own little message into the residual stream.")


@ui.section("job")
def neuron_with_a_job(lm) -> None:
    """A curated, interpretable neuron of the bundled model, shown on its own example sentence."""
    cn = ui.curated_neuron(lm.name)
    if cn is None:
        return
    layer, neuron, rep = cn["layer"], cn["neuron"], cn["report"]
    st.subheader(f"Meet a neuron with a job: L{layer}.N{neuron} fires on {cn['label']}")
    peak = float(abs(cn["acts"][1:]).max()) or 1.0
    ui.token_chips(cn["tokens"], [f"{a:+.1f}" for a in cn["acts"]], figs.neuron_colors(cn["acts"], peak),
                   figs.neuron_titles(cn["tokens"], cn["acts"], layer, neuron))
    st.markdown(
        f"Most neurons are hard to name, but some have a clear job. Neuron {neuron} of block {layer} was found by "
        f"a search: of all {lm.n_layers * lm.d_mlp:,} neurons, it is one of the three whose activation best "
        f"separates number tokens from the other tokens of a dozen sentences. On sentences the search never saw, "
        f"it averages "
        f"**{rep.mean_members:+.2f} on the {rep.n_members} number tokens** and {rep.mean_rest:+.2f} on the "
        f"rest, and {rep.precision:.0%} of its {rep.n_members} strongest tokens are numbers.")
    st.button(f"Look at L{layer}.N{neuron} on your prompt", key="mlp_curated",
              on_click=ui.update_link, args=({"layer": str(layer), "neuron": str(neuron)},))
    ui.code_expander(f"L{layer}.N{neuron}'s activation on its example sentence.", cn["code"])


def controls(tr) -> tuple[int, int, bool]:
    """The layer, how many neurons to rank, and whether the first token is left out."""
    L, T, _ = tr.mlp.shape
    c1, c2, c3 = st.columns([5, 4, 5])   # the toggle's label needs the room at 1280 px
    layer = ui.slider("layer", "Layer", 0, L - 1, defaults.mlp_layer(L), key="mlp_layer", where=c1,
                      resets=("neuron",))  # a new layer starts on its strongest neuron
    n_show = ui.slider("mlp_n", "Neurons shown", 5, 40, defaults.MLP["mlp_n"], step=5, key="mlp_n", where=c2)
    skip = ui.flag("skip_first", "Leave out the first token", defaults.MLP["skip_first"], key="mlp_skip", where=c3,
                   disabled=T < 2,
                   help="Many models park huge activations on the very first token, which would crowd out "
                        "everything else in the ranking and the colours.")
    return layer, n_show, skip


@ui.section("top", hidden=lambda lm, tr, layer, n_show, skip: mlp.top_neurons(tr, layer, n_show, skip_first=skip))
def most_active(lm, tr, layer: int, n_show: int, skip: bool) -> mlp.NeuronSet:
    ns = mlp.top_neurons(tr, layer, n_show, skip_first=skip)
    st.subheader(f"1 · The {len(ns.neurons)} most active neurons of layer {layer}")
    ui.chart(figs.neurons_heatmap(tr.tokens, ns), key="mlp_heat")
    st.caption("Ranked by their largest |activation| anywhere in the prompt"
               + (" (first token left out)" if ns.skipped_first else "")
               + ". Red: positive, blue: negative. Hover a cell for the exact value.")
    ui.code_expander(f"Layer {layer}'s {len(ns.neurons)} most active neurons, with §4's histogram and every "
                     "layer's strongest activation.", snippets.mlp_layer(lm, tr, layer, len(ns.neurons), skip))
    return ns


@ui.section("token")
@ui.fragment
def token_and_neuron(lm, tr, layer: int, ns: mlp.NeuronSet) -> None:
    _, T, M = tr.mlp.shape
    left, right = st.columns(2, gap="large")
    labels = axis_labels(tr.tokens)
    with left:
        st.subheader("2 · Which neurons fire on one token?")
        pos = ui.select("token", "Token", range(T), T - 1, format_func=lambda p: labels[p], key="mlp_pos")
        tn = mlp.top_neurons_at(tr, layer, pos, n=10)
        ui.chart(figs.top_neurons_bar(tn, tr.tokens[pos]), key="mlp_bar")
        ui.code_expander(f"The {len(tn.neurons)} neurons of layer {layer} firing hardest at {labels[pos]}.",
                         snippets.mlp_token(lm, tr, layer, pos, len(tn.neurons)))
    with right:
        st.subheader("3 · One neuron across the prompt")
        choices = list(dict.fromkeys([int(n) for n in ns.neurons] + [int(n) for n in tn.neurons]))
        last_layer, last = ss.get("_mlp_shown", (None, None))
        default = last if last_layer == layer and last in choices else choices[0]  # the neuron shown stays
        linked = ui.linked_number("neuron", 0, M - 1, default)
        if linked not in choices:                  # a link may name any neuron of the layer
            choices.insert(0, linked)
        neuron = ui.select("neuron", "Neuron", choices, default, key="mlp_neuron",
                           format_func=lambda n: f"L{layer}.N{n}", help="The layer's most active neurons, "
                           "then the ones firing hardest on the token chosen on the left.")
        ss._mlp_shown = (layer, neuron)
        acts = mlp.neuron_activation(tr, layer, neuron)                 # [T]
        peak = mlp.peak(acts, skip_first=ns.skipped_first)
        ui.token_chips(tr.tokens, [f"{a:+.2f}" for a in acts],
                       figs.neuron_colors(acts, abs(float(acts[peak])) or 1.0),
                       figs.neuron_titles(tr.tokens, acts, layer, neuron))
        st.caption(f"Each token coloured by L{layer}.N{neuron}'s activation (the number under it): "
                   f"red positive, blue negative, white zero. Strongest at "
                   f"'{show_token(tr.tokens[peak])}' (position {peak}): {acts[peak]:+.3f}.")
        ui.code_expander(f"L{layer}.N{neuron}'s activation at every token.",
                         snippets.mlp_neuron(lm, tr, layer, neuron))


@ui.section("all")
def whole_layer(tr, layer: int, skip: bool) -> None:
    st.subheader(f"4 · All of layer {layer}'s activations, and where every layer fires")
    h_col, a_col = st.columns(2, gap="large")
    with h_col:
        hist = mlp.activation_histogram(tr, layer, skip_first=skip)
        ui.chart(figs.activation_histogram(hist), key="mlp_hist")
        left_out = " (first token left out)" if skip and tr.n_tokens > 1 else ""
        big = max(abs(hist.min), abs(hist.max))
        shape = ("most neurons are near zero for most tokens, and a few fire hard: activity here is sparse"
                 if hist.sparse else "in this layer many neurons are active at once")
        st.caption(f"{int(hist.counts.sum()):,} values{left_out}: mean {hist.mean:+.3f}, "
                   f"spread (std) {hist.std:.3f}, {hist.frac_positive:.0%} positive, range {hist.min:+.2f} … "
                   f"{hist.max:+.2f}. {hist.frac_small:.0%} are smaller than a tenth of the largest "
                   f"(|activation| under {0.1 * big:.2f}): {shape}. The count axis is logarithmic.")
    with a_col:
        activity = mlp.layer_activity(tr, skip_first=skip)              # [L, T]
        ui.chart(figs.layer_activity_heatmap(tr.tokens, activity, layer), key="mlp_layers")
        st.caption("The strongest neuron's |activation| in every layer at every token. The outlined row is the "
                   "layer shown above.")


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    lm, tr = ui.traced_page(
        "MLP neurons",
        "Much of what a model knows (that Paris is in France, say) is thought to sit in its MLPs. After attention "
        "has mixed information between tokens, each block's " + ui.term("MLP") + " transforms every token's vector. "
        "Its " + ui.term("neuron", "neurons") + " each respond to particular patterns.",
        icon="🧩",
    )
    if ui.reading_only():    # the presenter view: the step's narration says it
        intro(lm, tr)
    neuron_with_a_job(lm)
    layer, n_show, skip = controls(tr)
    ns = most_active(lm, tr, layer, n_show, skip)
    try:
        token_and_neuron(lm, tr, layer, ns)
    except ExplainerError as e:
        st.info(str(e))
    whole_layer(tr, layer, skip)


main()
