"""Attention: every head at once, one head up close, Q·K step by step, what a head writes, word order, and what
heads are for."""

from __future__ import annotations

from functools import partial

import streamlit as st

from explainer import ExplainerError, compare, exports, heads, links, snippets, ui
from explainer.figures import attention as fa
from explainer.figures import compare as fc
from explainer.figures.common import axis_labels, show_token
from explainer.positions import Learned, positions

ss = st.session_state


def set_head(layer: int, head: int, note: str | None = None) -> None:
    ui.update_link({"layer": str(int(layer)), "head": str(int(head))})
    if note:
        ss._att_note = note


def on_row_pick() -> None:
    """A click on a cell of the head's map selects its row's token (the link's `token`, on every page)."""
    row = fa.picked_row(ss["att_head_map"].selection.get("points"))
    if row is not None:
        ui.set_link("token", str(row))


def on_pick(key: str) -> None:
    """A click on a head tile or a role-map cell opens that head."""
    pick = fa.picked_head(ss[key].selection.get("points"))
    if pick is not None:
        set_head(*pick, note=f"Opened layer {pick[0]}, head {pick[1]}.")


def role_scores(lm) -> dict | None:
    """Head-role scores (measured once per model), or None with a warning when they cannot be."""
    with st.spinner("Measuring what every head does (once per model)…"):
        try:
            return ui.head_roles(lm.name)
        except (ExplainerError, ValueError) as e:
            st.warning(f"Head roles could not be measured for this model: {e}")
            return None


@ui.section("overview")
def all_heads(lm, tr, shown: tuple[int, int], scores) -> None:
    L, H = lm.n_layers, lm.n_heads
    st.subheader(f"1 · All {L * H} heads at once")
    if ui.reading_only():
        st.write(f"{L} layers × {H} heads. Each tile is one head's attention pattern on your prompt: rows are the "
                 "tokens doing the looking (queries), columns the tokens looked at (keys); dark = much attention. "
                 "**Click a tile** to open that head below.")
    ui.chart(fa.overview(tr.attn, tr.tokens, shown, n_kv_heads=lm.n_kv_heads, scores=scores),
             key="att_overview", on_select=partial(on_pick, "att_overview"), selection_mode="points")
    if tr.n_tokens > 16:
        st.caption(f"Your prompt has {tr.n_tokens} tokens, so each tile is shrunk to 16 × 16 blocks showing the "
                   "largest weight in each block. The view below shows every token.")
    layer, head = shown
    if not ui.reading_only():       # the presenter view: the overview alone
        return
    st.markdown(f"**Zoomed in: the {H} heads of layer {layer}**, the layer of the head that is open below. Each "
                "small square is one query looking at one key. Click a tile above to zoom into its layer, or a "
                "tile here to open that head.")
    ui.chart(fa.layer_tiles(tr.attn, tr.tokens, layer, head, n_kv_heads=lm.n_kv_heads, scores=scores),
             key="att_layer_zoom", on_select=partial(on_pick, "att_layer_zoom"), selection_mode="points")


ZOOM_OVER = 40   # a longer prompt's pattern has cells under 8 px at 1280 px: add a zoomed view
ZOOM_SIZE = 20


def head_zoom(tr, layer: int, head: int) -> tuple[int, int]:
    """A window of the open head's pattern, for prompts whose cells are too small to read; returns it (first,
    last), which the Q·K steps show too."""
    T = tr.n_tokens
    lo, hi = ui.range_slider("att_window", "Zoom into positions", 0, T - 1, (T - ZOOM_SIZE, T - 1),
                             key="att_window", help="Queries and keys from the first to the last position chosen, "
                                                    "up close. Drag either end to move the window.")
    share = heads.window_share(tr.attn[layer, head], lo, hi)
    ui.chart(fa.head_zoom(tr.attn[layer, head], tr.tokens, lo, hi, f"Zoomed in: positions {lo} to {hi}"),
             key="att_head_zoom")
    rest = "; the rest goes to earlier tokens, left of it" if share < 0.995 else ""
    st.caption(f"These queries put {share:.0%} of their weight, on average, on keys inside the window{rest}. The "
               "row sums in the hover count the window only.")
    return lo, hi


def _one_head_hidden(lm, tr, default: tuple[int, int], scores) -> tuple[int, int, tuple[int, int] | None]:
    """What one_head returns when it is not drawn (the presenter view of another section): the link's head."""
    T = tr.n_tokens
    layer = ui.linked_number("layer", 0, lm.n_layers - 1, default[0])
    head = ui.linked_number("head", 0, lm.n_heads - 1, default[1])
    if T <= ZOOM_OVER:
        return layer, head, None
    raw = ui.link_value("att_window")
    first = (T - ZOOM_SIZE, T - 1)
    return layer, head, links.int_range("att_window", raw, 0, T - 1, first).value if raw else first


@ui.section("head", hidden=_one_head_hidden)
def one_head(lm, tr, default: tuple[int, int], scores) -> tuple[int, int, tuple[int, int] | None]:
    """The head the user chose (layer, head), drawn up close, and the zoomed window of a long prompt (or None)."""
    L, H = lm.n_layers, lm.n_heads
    st.subheader("2 · One head up close")
    T = tr.n_tokens
    labels = axis_labels(tr.tokens)
    c1, c2, c3 = st.columns(3)
    with c1:
        layer = ui.slider("layer", "Layer", 0, L - 1, default[0], key="att_layer")
    with c2:
        head = ui.slider("head", "Head", 0, H - 1, default[1], key="att_head")
    with c3:   # the selected token of every page (MLP neurons, the logit lens, the map): here, the query row
        pos = ui.select("token", "Query token (row)", range(T), T - 1, format_func=lambda p: labels[p],
                        key="att_pos", help="The token whose row is outlined and read out beside the chart; it "
                                            "stays selected on the MLP, logit-lens and map pages.")
    reading = ui.reading_only()   # the presenter view: the chart, and the outlined row read out beside it
    left, right = st.columns([3, 2] if reading else [5, 2], gap="large")
    with left:
        ui.chart(fa.head_heatmap(tr.attn[layer, head], tr.tokens, f"Layer {layer}, head {head}", row=pos,
                                 pickable=True),
                 key="att_head_map", on_select=on_row_pick, selection_mode="points")
        trace, tokens = ui.again(tr), list(tr.tokens)      # by name: the button outlives the run
        ui.table_download("Download this pattern (CSV)",
                          lambda: exports.pattern(trace().attn[layer, head], tokens, layer, head),
                          f"layer {layer} head {head} pattern", key="att_csv")
        window = head_zoom(tr, layer, head) if tr.n_tokens > ZOOM_OVER else None
    with right:
        if reading:
            st.markdown("**How to read it.** Row = a token asking *“which earlier tokens matter to me?”*; its "
                        "weights over the columns add up to 1. Grey cells are the future: a GPT cannot look ahead.")
        top = heads.top_attended(tr.attn[layer, head, pos], 3)             # the selected token's row
        lines = "\n".join(f"- {w:.0%} on {fa.token_label(tr.tokens, j)}" for j, w in top)
        who = "The last token" if pos == T - 1 else f"Token {pos}"
        st.markdown(f"{who}, “{show_token(tr.tokens[pos])}” (the outlined row), puts\n{lines}")
        if scores is not None and reading:
            st.markdown("**Its role scores** (0 – 1, on random text): "
                        + ", ".join(f"{r.replace('_', '-')} **{scores[r][layer, head]:.2f}**" for r in heads.ROLES))
        if lm.n_kv_heads != H and reading:
            kv, group = heads.kv_group(H, lm.n_kv_heads, head)
            st.markdown("This model uses " + ui.term("grouped-query attention") + f": {H} query heads share "
                        f"{lm.n_kv_heads} "
                        f"key/value heads. Head {head} reads key/value head **{kv}**, together with query heads "
                        f"{', '.join(str(h) for h in group if h != head)}.")
    ui.code_expander(f"Layer {layer}, head {head}'s pattern.", snippets.attention_head(lm, tr, layer, head))
    return layer, head, window


@ui.section("compare")
def head_compare(lm, tr, tr_b, layer: int, head: int) -> None:
    """Compare mode: the same head on the second prompt, and the change cell by cell when the positions line up."""
    st.subheader(f"Side by side: layer {layer}, head {head} on the second prompt")
    left, right = st.columns(2, gap="large")
    with left:
        ui.chart(fa.head_heatmap(tr_b.attn[layer, head], tr_b.tokens, f"On {fc.prompt_label(tr_b.text)}"),
                 key="att_compare_map", present_height=520)
    diff = compare.attention_difference(tr.attn[layer, head], tr_b.attn[layer, head])
    with right:
        if diff is None:
            st.info(f"The two prompts have {tr.n_tokens} and {tr_b.n_tokens} tokens, so their positions do not line "
                    "up cell by cell: compare the two patterns by eye, or make the second prompt the same length.")
            return
        ui.chart(fc.attention_change(diff, tr_b.tokens, "Second prompt − first"), key="att_compare_diff",
                 present_height=520)
    q, k = compare.largest_change(diff)
    differ = compare.differing_positions(tr.tokens, tr_b.tokens)
    where = (f"The prompts differ at position{'s' if len(differ) > 1 else ''} "
             f"{', '.join(str(i) for i in differ)}" if differ else "The two prompts have the same tokens")
    st.markdown(f"{where}. The largest change is in row {q} (“{ui.md_escape(show_token(tr_b.tokens[q]))}”) on key "
                f"{k} (“{ui.md_escape(show_token(tr_b.tokens[k]))}”): {tr.attn[layer, head, q, k]:.2f} → "
                f"{tr_b.attn[layer, head, q, k]:.2f}. Red: the second prompt puts more weight there; blue: less.")


@ui.section("qk")
def qk_step_by_step(lm, tr, layer: int, head: int, window: tuple[int, int] | None = None) -> None:
    H = lm.n_heads
    st.subheader("3 · Where the weights come from: Q·K, step by step")
    try:
        steps = heads.qk_steps(lm, tr, layer, head)
    except ExplainerError as e:
        st.info(str(e))
        return
    st.markdown(
        "Each token's vector is turned into a " + ui.term("query, key and value") + f"; each is {steps.d_head} "
        "numbers long in this head. The head's weights compare every query *q* with every key *k*: "
        r"$\mathrm{softmax}\big(\mathrm{mask}(q\cdot k\,/\sqrt{d_\text{head}})\big)$ — here are the four steps, "
        f"computed from layer {layer}'s real queries and keys.")
    g_left, g_right = st.columns([2, 3], gap="large")
    with g_left:
        ui.chart(fa.gqa_diagram(H, steps.n_kv_heads, head), key="att_gqa")
    with g_right:
        if steps.group > 1:
            others = [h for h in steps.kv_siblings if h != head]
            st.markdown(
                f"**Grouped-query attention.** Keys and values take memory for every token the model has seen, "
                f"so this model computes only **{steps.n_kv_heads} key/value heads** and lets **{steps.group} "
                f"query heads share each one** ({H} query heads in all). Query head {head} compares its queries "
                f"with the keys of **key/value head {steps.kv_head}**, the same keys that query heads "
                f"{' and '.join(map(str, others))} use. Their patterns still differ because their queries differ.")
        else:
            st.markdown(f"Every one of the {H} query heads has its own key/value head (no grouping).")
    lo, hi = window or (0, tr.n_tokens - 1)
    if window:
        st.markdown(f"Your prompt has {tr.n_tokens} tokens, too many to read as cells: the four steps show positions "
                    f"{lo} to {hi}, the window zoomed into above. Each row's weights add up to 1 over all "
                    f"{tr.n_tokens} keys, those left of the window included.")

    def shown(m):
        return m[lo:hi + 1, lo:hi + 1]

    s1, s2 = st.columns(2)
    with s1:
        ui.chart(fa.qk_step(shown(steps.raw), tr.tokens[lo:hi + 1], "raw", first=lo), key="att_step_raw")
        st.caption("Every query is compared with every key, even later ones: a big positive number means "
                   "“this key answers my question”.")
        ui.chart(fa.qk_step(shown(steps.masked), tr.tokens[lo:hi + 1], "masked", first=lo), key="att_step_masked")
        st.caption("A token may not look at the future: scores above the diagonal become −∞, which softmax turns "
                   "into 0.")
    with s2:
        ui.chart(fa.qk_step(shown(steps.scaled), tr.tokens[lo:hi + 1], "scaled",
                            f"2 · Scaled: × 1/√{steps.d_head} = {steps.scale:.4g}", first=lo), key="att_step_scaled")
        raw_sd, scaled_sd = steps.score_spread
        st.caption(f"A dot product adds up d_head = {steps.d_head} products, so for random vectors it grows like "
                   f"√{steps.d_head} = {steps.d_head ** 0.5:g}. Dividing by √d_head undoes that, so a wide head does "
                   "not push softmax into giving one key everything. Here the scores' spread goes from "
                   f"{raw_sd:.2f} to {scaled_sd:.2f}.")
        ui.chart(fa.qk_step(shown(steps.pattern), tr.tokens[lo:hi + 1], "pattern", first=lo), key="att_step_pattern")
        st.caption(f"softmax(x)ᵢ = eˣⁱ / Σⱼ eˣʲ along each row: every row sums to 1 (largest deviation "
                   f"{steps.row_sum_error:.1e}). This equals the pattern the model itself used to within "
                   f"{steps.max_error:.1e}.")
    ui.code_expander(f"Layer {layer}, head {head}: the four steps from its queries and keys.",
                     snippets.qk_steps(lm, tr, layer, head))


def _others(group, head: int) -> str:
    return " and ".join(str(h) for h in group if h != head)


@ui.section("values")
def head_writes(lm, tr, layer: int, head: int, max_tokens: int) -> None:
    st.subheader("4 · From weights to what the head writes: values, the weighted sum and the output projection")
    try:
        with st.spinner("Working out what the heads write…"):
            ho = ui.head_outputs_of(lm.name, tr.text, max_tokens, layer)
    except ExplainerError as e:
        st.info(str(e))
        return
    T, H, dh, D = ho.n_tokens, ho.n_heads, ho.d_head, ho.d_model
    kv, group = heads.kv_group(H, ho.n_kv_heads, head)
    shared = (f" Head {head} reads the values of key/value head {kv}, the same values that query heads "
              f"{_others(group, head)} read." if len(group) > 1 else "")
    st.markdown(
        "The weights only say *where* a token looks. What it takes from the tokens it looks at is their "
        f"**value** *v*: a third vector made from each token, besides its query and key, {dh} numbers long in "
        f"this head.{shared}")
    j, w = heads.top_attended(tr.attn[layer, head, -1], 1)[0]
    st.markdown(
        f"**The weighted sum.** The head's output at each token, *z*, is the values added up with that token's row "
        f"of the pattern as weights: z = A · V, a {T} × {T} matrix times a {T} × {dh} one, which gives {T} × {dh}. "
        f"The last token, “{show_token(tr.tokens[-1])}”, puts {w:.0%} on {fa.token_label(tr.tokens, j)}, so its "
        f"row of z is {w:.0%} that token's value plus smaller shares of the others.")
    v, z = ho.value(head), ho.z[head]                                 # [T, dh] each
    lim = float(abs(v).max())
    # one above the other, each as wide as the page: side by side, a number's cell is under 8 px on a projector
    ui.chart(fa.vector_rows(v, tr.tokens, f"V: the values head {head} reads", lim=lim), key="att_values")
    ui.chart(fa.vector_rows(z, tr.tokens, f"z = A · V: head {head}'s output", lim=lim), key="att_z")
    st.caption(f"Both maps use the same colours, ±{lim:.2f}. Each number of z is a weighted average of its "
               "column of V, so it is never further from 0 than that column's value furthest from 0.")
    bias = f", plus a bias of {D} numbers" if ho.has_bias else ""
    st.markdown(
        f"**Side by side, then one matrix.** All {H} heads of layer {layer} do this at once. Their outputs z are put "
        f"side by side, {T} × ({H} × {dh}) = {T} × {H * dh} numbers, and the output projection W_O "
        f"(`{lm.arch.attn_out}` in the model's code), a {ho.w_o_shape[0]} × {ho.w_o_shape[1]} matrix, turns each "
        f"row into {D} numbers{bias}: the size of the residual stream, to which the result is added.")
    norms = ho.part_norms(-1)                                         # [H] at the last token
    top = int(norms.argmax())
    rank = (f", the longest of the {H}" if top == head
            else f"; head {top} writes the longest part ({norms[top]:.2f})")
    if ho.max_error is None:
        err = ""
    else:
        err = " exactly" if ho.max_error == 0 else f" to within {ho.max_error:.1e}"
        err = (" Worked out this way from the real values and weights, the output equals the one the model itself "
               f"computed in this layer{err}.")
    st.markdown(
        f"Each head's {dh} numbers meet only their own {dh} rows of W_O, so the output is a sum of one part per "
        f"head{' and the bias' if ho.has_bias else ''} (they add up to it to within {ho.sum_error:.1e}). At the "
        f"last token head {head}'s part has length {norms[head]:.2f}{rank}.{err}")
    ui.chart(fa.head_parts(norms, head, f"What each head of layer {layer} writes at the last token, "
                                        f"“{show_token(tr.tokens[-1])}”"), key="att_parts")
    ui.code_expander(f"Layer {layer}, head {head}: its values, z = A · V, and what every head writes.",
                     snippets.head_writes(lm, tr, layer, head))


@ui.section("order")
def word_order(lm) -> None:
    st.subheader("5 · How the model knows word order")
    pos = positions(lm)
    if isinstance(pos, Learned):
        st.markdown(
            "q·k on its own does not say where two tokens are. This model (GPT-2 family) adds a learned "
            f"**position vector** to each token's embedding before the first block: row p of a table of "
            f"{pos.n_ctx} × {pos.d_model} numbers (`wpe`) goes to the token at position p.")
        far = min(10, pos.shown - 1)
        ui.chart(fa.position_similarity(pos.similarity, f"How alike the first {pos.shown} position vectors are"),
                 key="att_positions")
        st.caption(f"Cosine similarity between position vectors: neighbours {pos.mean_similarity(1):.2f} on "
                   f"average, positions {far} apart {pos.mean_similarity(far):.2f}.")
        ui.code_expander(f"The cosine between the first {pos.shown} position vectors.", snippets.word_order(lm, pos))
        return
    deg, turn = pos.degrees_per_token, pos.wavelength
    pairing = ("neighbouring numbers (0 and 1, 2 and 3, …)" if pos.interleaved
               else f"number i with number i + {pos.n_pairs}")
    st.markdown(
        "q·k on its own does not say where two tokens are. This model uses **rotary positions**: before q·k, "
        f"each query and key is cut into {pos.n_pairs} pairs of numbers ({pairing}) and each pair is turned by an "
        "angle that grows with the token's position. A query and a key then meet at an angle set by how far "
        "apart they are, so q·k can tell near from far. GPT-2 does it differently: it adds a learned position "
        "vector to each token's embedding before the first block.")
    partial = (f" Only the first {pos.rot_dims} of each head's {pos.d_head} numbers are turned; the other "
               f"{pos.d_head - pos.rot_dims} carry no position." if pos.rot_dims < pos.d_head else "")
    source = (f"equal 1 / {pos.base:,.0f}^(2i / {pos.rot_dims}) for pair i, from its configuration"
              if pos.matches_config
              else f"differ from the plain formula because its configuration asks for “{pos.rope_type}” scaling")
    steady = (f" Each pair turns {pos.step_ratio:.3f} times as fast as the one before, set by the base "
              f"{pos.base:,.0f}." if pos.step_ratio is not None else "")
    st.markdown(
        f"Pair 0 turns {deg[0]:.1f}° per token (a full turn every {turn[0]:.1f} tokens); the last pair turns "
        f"{deg[-1]:.2g}° per token (a full turn every {turn[-1]:,.0f} tokens).{steady} Fast pairs tell "
        f"neighbours apart, slow pairs long distances.{partial} These speeds are read from the model's own "
        f"rotary module and {source}.")
    c1, c2 = st.columns(2, gap="large")
    with c1:
        ui.chart(fa.rotary_speeds(deg, [pos.pair(i) for i in range(pos.n_pairs)],
                                  "How fast each pair turns"), key="att_rotary_speeds")
    with c2:
        ui.chart(fa.rotary_distance(pos.distances, pos.similarity, "The same vector as query and key, "
                                                                   "further and further apart"),
                 key="att_rotary_distance")
    at = [d for d in (10, 100, 1000) if d < len(pos.similarity)]
    falls = ", ".join(f"{pos.similarity[d]:.2f} at distance {d}" for d in at)
    st.caption(f"A vector whose {pos.d_head} numbers are all 1, as a query and as a key: q·k, as a share of its "
               f"value at distance 0, is {falls}. Real queries and keys differ, so this shows the rotation's own "
               "effect only.")
    ui.code_expander("How fast each pair turns, and q·k against distance.", snippets.word_order(lm, pos))


@ui.section("roles")
def head_roles(lm, scores, shown: tuple[int, int]) -> None:
    st.subheader("6 · What heads are for")
    reading = ui.reading_only()     # the presenter view: the three maps, full width, without the buttons
    if reading:
        st.write("Some heads do the same job whatever the text. We measure three jobs on a sequence of random "
                 "tokens repeated twice (random, so that no head can rely on meaning). **Click a cell** or a button "
                 "to open that head above.")
    for role in heads.ROLES:
        st.markdown(f"**{heads.ROLE_LABELS[role]}** — {heads.ROLE_HELP[role]}" if reading else
                    f"**{heads.ROLE_LABELS[role]}**")
        m_col, b_col = st.columns([4, 1], gap="medium") if reading else (st.container(), None)
        with m_col:
            ui.chart(fa.role_map(scores[role], heads.ROLE_LABELS[role], shown,
                                 help_text=heads.ROLE_HELP[role].split(":")[0]),
                     key=f"att_role_{role}", on_select=partial(on_pick, f"att_role_{role}"), selection_mode="points",
                     present_height=235)
        if b_col is None:
            continue
        with b_col:
            st.markdown("Strongest heads")
            for i, t in enumerate(heads.top_heads(scores[role], k=5)):
                st.button(f"Layer {t.layer} · head {t.head} ({t.score:.2f})", key=f"att_view_{role}_{i}",
                          on_click=set_head, args=(t.layer, t.head, f"Opened layer {t.layer}, head {t.head} "
                                                                  f"({heads.ROLE_LABELS[role].lower()})."),
                          width="stretch")
    ui.code_expander("The three role scores of every head, on random tokens repeated twice.",
                     snippets.head_roles(lm))


@ui.section("induction")
def induction_at_work(lm, scores) -> None:
    best = heads.top_heads(scores["induction"], k=1)[0]
    st.markdown("**An induction head at work.** An " + ui.term("induction head") + " is "
                f"easiest to see on random text. The strongest one, layer {best.layer} · head "
                f"{best.head}, on a fresh random sequence repeated twice. In the second copy each token looks at "
                "the token that came *after* its first occurrence (outlined), and so predicts that history "
                "repeats. This is how models copy names and phrases they have already seen in the prompt.")
    with st.spinner("Running a repeated random sequence…"):
        demo = ui.induction_demo(lm.name)
    ui.chart(fa.head_heatmap(demo.attn[best.layer, best.head], demo.tokens,
                             f"Layer {best.layer}, head {best.head} on random tokens, repeated",
                             highlight=list(demo.cells)), key="att_induction_demo")
    rest = demo.first_copy_rest(best.layer, best.head)
    st.caption(f"Average weight on the outlined cells: {demo.hit(best.layer, best.head):.0%}. In the first copy "
               "there is nothing to copy yet: "
               + (f"there the head rests on the first token ({rest:.0%} of its weight, on average)." if rest > 0.5
                  else f"there the head puts {rest:.0%} of its weight on the first token, on average."))
    ui.code_expander(f"Layer {best.layer}, head {best.head} on random tokens, repeated.",
                     snippets.induction(lm, best.layer, best.head))


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    lm, tr = ui.traced_page(
        "Attention",
        "Attention is how a model uses what came earlier: in “The animal didn't cross the street because it was "
        "tired”, it is what lets the model connect “it” to “animal”. In " + ui.term("attention") + ", every "
        + ui.term("block") + " does this with several " + ui.term("attention head", "heads") + ", "
        "each with its own idea of what is worth looking at.",
        icon="👀",
        compare=True,
    )
    tr_b = ui.compare_trace(lm)
    # Unless the link names one, start on a head worth looking at: the one where the last token looks furthest
    # back into the prompt.
    default = heads.looking_back_head(tr.attn)
    shown = (ui.linked_number("layer", 0, lm.n_layers - 1, default[0]),
             ui.linked_number("head", 0, lm.n_heads - 1, default[1]))
    if "_att_note" in ss:
        st.toast(ss.pop("_att_note"))
    scores = role_scores(lm)
    all_heads(lm, tr, shown, scores)
    layer, head, window = one_head(lm, tr, default, scores)
    if tr_b is not None:
        head_compare(lm, tr, tr_b, layer, head)
    qk_step_by_step(lm, tr, layer, head, window)
    head_writes(lm, tr, layer, head, int(ss.max_tokens))
    word_order(lm)
    if scores is not None:
        head_roles(lm, scores, (layer, head))
        induction_at_work(lm, scores)


main()
