"""The residual stream and the logit lens: watch the prediction form, layer by layer."""

from __future__ import annotations

import streamlit as st

from explainer import compare, defaults, exports, heads, residual, snippets, ui, words
from explainer.errors import ExplainerError
from explainer.figures import compare as fc
from explainer.figures import lens as figs
from explainer.figures.common import axis_labels, show_token
from explainer.sampling import softmax, top_k
from explainer.tokens import token_strings

WINDOW = defaults.LENS_WINDOW  # positions shown at once in the grid by default


def _row_name(row: int) -> str:
    return "already in the embeddings" if row == 0 else f"after block {row - 1}"


def _positions(tr) -> range:
    """The positions the grid shows: all of them, or the window the user chose on a long prompt."""
    T = tr.n_tokens
    if T <= WINDOW:
        return range(T)
    lo, hi = ui.range_slider("window", "Positions shown", 0, T - 1, defaults.lens_window(T), key="lens_window",
                             help="The grid shows a window of positions; drag it to see other parts of the prompt.")
    return range(lo, hi + 1)


def _lens(lm, tr, max_tokens: int, positions: range):
    return _lens_by_name(lm.name, tr.text, max_tokens, positions, tr.n_tokens)


def _lens_by_name(name: str, text: str, max_tokens: int, positions: range, n_tokens: int):
    return ui.lens_of(name, text, max_tokens, defaults.LENS_TOP, tuple(sorted({*positions, n_tokens - 1})))


def _guesses_hidden(lm, tr, max_tokens: int):
    """What guesses returns when the grid is not drawn (the presenter view of another section)."""
    positions = _positions(tr)
    return _lens(lm, tr, max_tokens, positions), positions


@ui.section("grid", hidden=_guesses_hidden)
def guesses(lm, tr, max_tokens: int):
    """The grid of every layer's guess; returns the lens (decoded for the positions shown, and the last one)
    and the positions the user chose to show."""
    st.subheader("1 · The model's guess after every block")
    if ui.reading_only():    # the presenter view: the step's narration says it
        st.write(
            "Each cell takes the residual stream of one token after one block, puts it through the model's **final "
            "norm and unembedding** (what normally happens only at the very end), and writes the most likely next "
            "token. The colour is its probability. The top row is the model's real output; the bottom row reads the "
            "raw token embeddings. Rows are named by the " + ui.term("layer", "block (layer)") + " they come after.")
    positions = _positions(tr)
    with st.spinner("Decoding every layer…"):
        res = _lens(lm, tr, max_tokens, positions)
    ui.chart(figs.lens_grid(res, tr.tokens, positions), key="lens_grid")
    name, text, tokens = lm.name, tr.text, list(tr.tokens)    # by name: the button outlives the run
    ui.table_download("Download the grid (CSV)", lambda: exports.lens_grid(
        _lens_by_name(name, text, max_tokens, positions, len(tokens)), tokens, list(positions)),
        "lens grid", key="lens_csv")
    ui.code_expander("Every layer's top guess at each position shown.", snippets.lens_grid(lm, tr, positions))
    final = res.strings[-1, -1, 0]
    shown = list(positions)
    echo = residual.embedding_echo(res.ids[:, shown], [tr.token_ids[p] for p in shown])
    n = len(shown)
    repeats = (f"mostly repeats the input token itself (at {echo} of the {n} positions shown)" if 2 * echo > n else
               f"repeats the input token itself at {echo} of the {n} positions shown" if echo else
               f"repeats the input token at none of the {n} positions shown")
    st.caption(f"**Bold**: the guess already equals the model's final prediction at that position. After the last "
               f"token the model predicts '{show_token(final)}' ({res.probs[-1, -1, 0]:.1%}); it is the top guess "
               f"{_row_name(res.settled_layer(-1))} and stays there. The bottom row, the embeddings read straight "
               f"back, {repeats}: nothing has been computed yet. Hover a cell for the top 5 and the entropy.")
    return res, positions


@ui.section("follow")
@ui.fragment
def follow_token(lm, tr, max_tokens: int, tr_b=None) -> None:
    st.subheader("2 · Follow one token through the layers")
    T, L = tr.n_tokens, tr.n_layers
    labels = axis_labels(tr.tokens)
    c1, c2, c3 = st.columns([2, 2, 2])
    pos = ui.select("token", "After the token", range(T), T - 1, format_func=lambda p: labels[p], key="lens_pos",
                    where=c1, resets=("track",))
    probs = softmax(tr.logits[pos])                                    # [V]
    top = [int(i) for i in top_k(probs, 5)]
    names = token_strings(lm.tokenizer, top)
    # A token of the position's top 5 (a new position starts on its prediction).
    pick = ui.select("track", "Track", top, top[0], where=c2, key="lens_track",
                     format_func=lambda i: f"{show_token(names[top.index(i)])}  ({probs[i]:.1%} at the end)",
                     help="The model's final top 5 at this position.")
    word = ui.text("word", "…or type a word", key="lens_word", where=c3, placeholder="e.g. London",
                   help="A word the tokenizer splits is tracked by its first token.")
    space = ui.flag("space", "with a leading space", defaults.LENS["space"], key="lens_space", where=c3,
                    help="Inside a sentence a word's token starts with a space: ' London', not 'London'.")
    token_id = pick
    if word.strip():
        try:
            choice = words.choose_token(lm, word, leading_space=space)
        except ExplainerError as e:
            st.info(str(e))
            return
        if choice.notice:
            st.caption(choice.notice)
        token_id = choice.token_id
    tj = ui.trajectory_of(lm.name, tr.text, max_tokens, int(token_id), int(pos))   # the position shown only
    ui.chart(figs.trajectory(tj, tr.tokens, pos), key="lens_traj")
    first = tj.first_top_row(pos)
    when = f"first becomes the top guess {_row_name(first)}" if first is not None else "is never the top guess"
    st.caption(f"'{show_token(tj.token)}' after {labels[pos]}: its probability and rank read from the stream "
               f"after every block (−1 = the embeddings, {L - 1} = after the last block: the model's output). It "
               f"{when} and ends at rank "
               f"{int(tj.ranks[-1, pos]) + 1:,} of {lm.vocab_size:,}.")
    if tr_b is not None:
        follow_in_both(lm, tr, tr_b, tj, pos, int(token_id), max_tokens)
    ui.code_expander(f"The logit lens after {labels[pos]}, and how likely “{show_token(tj.token)}” is at every layer.",
                     snippets.logit_lens(lm, tr, pos, int(token_id)))


def follow_in_both(lm, tr, tr_b, tj, pos: int, token_id: int, max_tokens: int) -> None:
    """Compare mode: the same token followed through the layers after the second prompt (its last token for the
    first prompt's last, else the same position)."""
    pos_b = compare.aligned_position(pos, tr.n_tokens, tr_b.n_tokens)
    tj_b = ui.trajectory_of(lm.name, tr_b.text, max_tokens, token_id, pos_b)
    label_a = f"after {axis_labels(tr.tokens)[pos]} in the first prompt"
    label_b = f"after {axis_labels(tr_b.tokens)[pos_b]} in the second"
    st.markdown(f"**Side by side:** “{ui.md_escape(show_token(tj.token))}” after each prompt, layer by layer.")
    ui.chart(fc.trajectories(tj, pos, tj_b, pos_b, label_a, label_b), key="lens_compare", present_height=420)
    end_a, end_b = float(tj.probs[-1, pos]), float(tj_b.probs[-1, pos_b])
    first_b = tj_b.first_top_row(pos_b)
    when = f"first becomes the top guess {_row_name(first_b)}" if first_b is not None else "is never the top guess"
    st.caption(f"At the output: {end_a:.1%} after the first prompt, {end_b:.1%} after the second "
               f"({(end_b - end_a) * 100:+.1f} percentage points). After the second prompt it {when} and ends at "
               f"rank {int(tj_b.ranks[-1, pos_b]) + 1:,} of {lm.vocab_size:,}.")


@ui.section("norms")
def stream_size(lm, res, tr, positions: range) -> None:
    st.subheader("3 · How big the residual stream grows")
    ui.chart(figs.residual_norms(res, tr.tokens, positions), key="lens_norm")
    med = residual.median_norms(res.resid_norm)                       # [L+1]
    text = (f"The length (L2 norm) of each token's vector after every block, on a log scale. Every block adds its "
            f"output to the stream: here the median token's vector goes from {med[0]:,.1f} in the embeddings to "
            f"{med[-1]:,.0f} after the last block (the final norm rescales it before the unembedding).")
    if tr.n_tokens > 2:
        ratio, row = residual.first_token_ratio(res.resid_norm)
        sinks = heads.sink_heads(tr.attn)                              # [L, H]
        if ratio >= 10:
            text += (f" Here the first token's vector grows to {ratio:,.0f}× the median length of the others "
                     f"({_row_name(row)})")
            text += (f", and {int(sinks.sum())} of the {sinks.size} heads put more than half of the later tokens' "
                     "attention on it: a resting place for heads with nothing to look up (an 'attention sink')."
                     if sinks.any() else ".")
    st.caption(text)
    ui.code_expander("The residual stream's length after every block.", snippets.residual_norms(lm, tr))


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    lm, tr = ui.traced_page(
        "Residual stream & logit lens",
        "A model does not jump to its answer at the end: you can watch it form. Every block adds its contribution "
        "to the " + ui.term("residual stream") + ". Decode that stream after each block as if it were the last "
        "(the " + ui.term("logit lens") + ") and watch the prediction take shape.",
        icon="🔭",
        compare=True,
    )
    tr_b = ui.compare_trace(lm)
    max_tokens = int(st.session_state.max_tokens)
    try:
        res, positions = guesses(lm, tr, max_tokens)
    except ExplainerError as e:
        st.info(str(e))
        st.stop()
    follow_token(lm, tr, max_tokens, tr_b)
    stream_size(lm, res, tr, positions)


main()
