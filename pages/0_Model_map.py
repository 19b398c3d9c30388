"""Model map: the loaded model's whole forward pass as one diagram, every box with its live shape, parameter
count and hook name; one block opened at a time; one box's real values for one token."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from explainer import ExplainerError, compare, defaults, mlp, snippets, ui
from explainer.figures import model_map as fm
from explainer.figures.common import axis_labels
from explainer.figures.mlp import top_neurons_bar
from explainer.figures.tokens import top_next_tokens
from explainer.sampling import softmax, top_k
from explainer.tokens import token_strings

ss = st.session_state
PAGES_DIR = Path(__file__).resolve().parent
KEY = "map_diagram"
ZOOM_OVER = 64   # a strip of more numbers than this has cells under 8 px on a projector: add a zoomed view
ZOOM_TOP = 24


def page_file(url_name: str) -> str | None:
    """pages/N_Name.py for a page's URL name, as streamlit_app.py's navigation names it (None for the home
    page, which is not a file of pages/)."""
    found = sorted(PAGES_DIR.glob(f"*_{url_name}.py"))
    return f"pages/{found[0].name}" if found else None


def on_click() -> None:
    """A click on a box picks it; a click on the stack of blocks opens one."""
    box = fm.picked_box(ss[KEY].selection.get("points"))
    if box == fm.BLOCK_BOX:
        ui.update_link({"open_block": "1", "box": "add_mlp"})
    elif box is not None:
        ui.set_link("box", box)


def controls(lm, tr) -> tuple[int | None, int]:
    """Which block is open (None: all collapsed) and the selected token."""
    L, T = lm.n_layers, tr.n_tokens
    c1, c2, c3 = st.columns([2, 3, 3])
    opened = ui.flag("open_block", "Open one block", defaults.MODEL_MAP["open_block"], key="mm_open", where=c1,
                     help="Draw one block's insides: its norm, attention and MLP.")
    layer = ui.slider("layer", "Block (layer)", 0, L - 1, defaults.MODEL_MAP["layer"], key="mm_layer", where=c2,
                      disabled=not opened,
                      help="Switch on “Open one block” to walk through the blocks.")
    labels = axis_labels(tr.tokens)
    pos = ui.select("token", "Token whose values are shown", range(T), T - 1, format_func=lambda p: labels[p],
                    key="mm_pos", where=c3)
    return (layer if opened else None), pos


@ui.section("map", hidden=ui.SILENT)
def diagram(mm, layer: int | None) -> str:
    """The diagram and the box picker; returns the picked box's id."""
    inside = {fm.box_id(p) for p in mm.block(0)}
    if layer is None and ui.link_value("box") in inside:   # a box inside a block, with the blocks now closed
        ui.set_link("box", None)
    boxes = [fm.box_id(p) for p in mm.before]
    boxes += [fm.box_id(p) for p in mm.block(layer)] if layer is not None else [fm.BLOCK_BOX]
    boxes += [fm.box_id(p) for p in mm.after]
    names = {fm.box_id(p): p.name for p in (*mm.before, *mm.after)}
    if layer is not None:
        names |= {fm.box_id(p): f"{p.name} (block {layer})" for p in mm.block(layer)}
    names[fm.BLOCK_BOX] = f"The {mm.n_layers} blocks"
    box = ui.select("box", "Box", boxes, defaults.MODEL_MAP["box"], key="mm_box", format_func=lambda b: names.get(b, b),
                    help="Or click a box in the diagram.")
    st.subheader("1 · The whole model, in the order it runs")
    ui.chart(fm.diagram(mm, layer, box), key=KEY, on_select=on_click, selection_mode="points")
    return box


def _part(mm, layer: int | None, box: str):
    if box == fm.BLOCK_BOX:
        return mm.block(mm.n_layers - 1)[-1]               # what the blocks hand on: the last block's output
    if layer is not None and box in {fm.box_id(p) for p in mm.block(layer)}:
        return mm.get(f"blocks.{layer}.{box}")
    return mm.get(box)


@ui.section("part")
def box_values(lm, tr, part, pos: int) -> None:
    where = fm.token_label(tr.tokens, pos)
    st.subheader(f"2 · {part.name}" + (f" in block {part.layer}" if part.layer is not None else "")
                 + f": its values at {where}")
    st.markdown(f"Shape **{fm.shape_text(part.shape)}**, {fm.params_text(part.params)}, hook "
                f"`{part.hook or 'none'}`" + (f", module `{part.module}`" if part.module else "")
                + (f". {part.note[0].upper()}{part.note[1:]}." if part.note else "."))
    values = ui.map_values_of(lm.name, tr.text, int(ss.max_tokens), part.key, pos)
    draw_values(lm, tr, part, values, pos, "mm_values")
    ui.code_expander(f"{part.name}" + (f" in block {part.layer}" if part.layer is not None else "")
                     + f" at {where}.", snippets.map_box(lm, tr, part, pos))
    target, title = page_file(part.page), part.page.replace("_", " ")
    try:
        if target is None:
            raise StreamlitPageNotFoundError(page=part.page, main_script_directory="", uses_pages_directory=False)
        st.markdown("Explained on this page:")
        st.page_link(target, icon=":material/arrow_forward:")   # labelled with the page's title in the sidebar
    except StreamlitPageNotFoundError:   # the home page; or a page run on its own, outside the app's navigation
        st.markdown(f"Explained on the **{title}** page.")


def draw_values(lm, tr, part, values, pos: int, key: str) -> None:
    """One part's values at one token, drawn by what they are (`key`: the charts' keys start with it)."""
    where = fm.token_label(tr.tokens, pos)
    kind = part.kind
    if kind == "tokens":
        ui.token_chips([tr.tokens[pos]], [int(values[0])])
        st.caption("The token's id: its row in the vocabulary, and in the embedding table.")
    elif kind == "pattern":
        ui.chart(fm.attention_row(values, tr.tokens, pos, f"How much {where} looks at each earlier token, "
                                                         "per head"), key=key)
        st.caption("One row of every head's attention pattern: each row adds up to 1.")
    elif kind in ("mlp_in", "mlp_up", "act"):
        tn = (mlp.top_neurons_at(tr, part.layer, pos, n=10) if kind == "act"
              else fm.top_values(values, 10, part.layer, pos))
        ui.chart(top_neurons_bar(tn, tr.tokens[pos], f"The 10 strongest of {values.shape[0]:,} neurons"), key=key)
        st.caption("Largest by size, positive (red) or negative (blue).")
    elif kind in ("unembed", "softmax"):
        logits = tr.logits[pos]
        probs = softmax(logits)
        top = top_k(probs, 10)
        ui.chart(top_next_tokens(list(token_strings(lm.tokenizer, top)), [int(i) for i in top], probs[top],
                                 logits[top], f"What the model predicts after {where}"), key=key)
        st.caption(f"The {values.shape[0]:,} logits through softmax: the 10 most likely next tokens.")
    else:
        title = (f"{values.shape[0]} heads × {values.shape[1]} numbers" if values.ndim == 2
                 else f"{values.shape[0]:,} numbers")
        ui.chart(fm.vector_strip(values, title), key=key)
        st.caption("One coloured cell per number: red positive, blue negative, white near zero. Hover for values.")
        if values.ndim == 1 and values.shape[0] > ZOOM_OVER:
            ui.chart(fm.vector_zoom(values, ZOOM_TOP, f"Zoomed in: its {ZOOM_TOP} largest numbers by size"),
                     key=f"{key}_zoom")
            st.caption(f"The same colours, one cell per number, in the order of their dimensions; the other "
                       f"{values.shape[0] - ZOOM_TOP:,} numbers are no larger in size than any of these.")


@ui.section("compare")
def box_compare(lm, tr, tr_b, part, pos: int) -> None:
    """Compare mode: the same box for the second prompt, at the matching token, and how far its numbers moved."""
    values = ui.map_values_of(lm.name, tr.text, int(ss.max_tokens), part.key, pos)   # the first prompt's (cached)
    pos_b = compare.aligned_position(pos, tr.n_tokens, tr_b.n_tokens)
    mm_b = ui.model_map_of(lm.name, tr_b.text, int(ss.max_tokens))
    part_b = mm_b.get(part.key)
    st.subheader(f"Side by side: {part.name} for the second prompt, at {fm.token_label(tr_b.tokens, pos_b)}")
    st.markdown(f"Shape **{fm.shape_text(part_b.shape)}** for {tr_b.n_tokens} tokens (the first prompt: "
                f"**{fm.shape_text(part.shape)}**). The model's parameters are the same for both prompts: only the "
                "numbers flowing through change.")
    values_b = ui.map_values_of(lm.name, tr_b.text, int(ss.max_tokens), part.key, pos_b)
    draw_values(lm, tr_b, part_b, values_b, pos_b, "mm_compare")
    moved = compare.vector_change(values, values_b) if part.kind not in ("tokens", "pattern") else None
    if moved is not None:
        st.markdown(f"Between the two prompts this vector turned: cosine similarity **{moved.cosine:.3f}** with the "
                    f"first prompt's (1 = the same direction); its length went from {moved.norm_a:,.2f} to "
                    f"{moved.norm_b:,.2f}.")


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    lm, tr = ui.traced_page(
        "Model map",
        "Every page explains one part of the model; this map shows how the parts fit together, so you always know "
        "where you are. The prompt's " + ui.term("token", "tokens") + " flow from left to right, each as a vector "
        "in the " + ui.term("residual stream") + ". Every box shows the " + ui.term("shape") + " of its numbers for "
        "this prompt, its " + ui.term("parameters") + " and its " + ui.term("hook site") + ".",
        icon="🗺️",
        compare=True,
    )
    tr_b = ui.compare_trace(lm)
    mm = ui.model_map_of(lm.name, tr.text, int(ss.max_tokens))
    layer, pos = controls(lm, tr)
    try:
        part = _part(mm, layer, diagram(mm, layer))
        box_values(lm, tr, part, pos)
        if tr_b is not None:
            box_compare(lm, tr, tr_b, part, pos)
    except ExplainerError as e:
        st.info(str(e))
    st.caption(f"{mm.total_params:,} parameters in all ({lm.label})"
               + (", the unembedding reusing the token embedding" if mm.tied else "") + ".")


main()
