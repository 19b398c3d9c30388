"""Next token: temperature, top-k and top-p on the model's real distribution, then generation one step
at a time (top token, sample, undo) with a timeline that keeps every step's distribution."""

from __future__ import annotations

import streamlit as st

from explainer import defaults, exports, links, snippets, ui
from explainer import generation as gen
from explainer.compare import next_token_change
from explainer.errors import ExplainerError
from explainer.figures.common import show_token
from explainer.figures.compare import probability_change, prompt_label
from explainer.figures.sampling import (
    distribution_chart,
    settings_text,
    shaded_tokens_html,
    shading_legend_html,
    survival_chart,
    timeline_chart,
)
from explainer.sampling import Settings, probabilities
from explainer.tokens import token_strings

ss = st.session_state
D = defaults.NEXT_TOKEN   # the page's defaults; the link overrides them

def _fresh_state(lm, tr, max_tokens: int) -> gen.StepState:
    # The cached trace already holds the prompt's logits: no extra model call until a token is taken.
    return gen.start(lm, tr.text, max_tokens, logits=tr.next_token_logits())


def _settings() -> Settings:
    return Settings(float(ss.nt_temp), int(ss.nt_top_k), float(ss.nt_top_p), float(ss.nt_min_p),
                    float(ss.nt_penalty))


def _link_steps(st_: gen.StepState) -> None:
    """The steps taken so far go in the link (as token ids), so the link replays the same text."""
    ui.update_link({"steps": links.join_ids(t.token_id for t in st_.steps) or None, "view": None})


def stepping_state(lm, tr, max_tokens: int) -> gen.StepState:
    """The session's stepping state for this prompt, with the link's steps replayed when they differ."""
    key = (lm.name, tr.text, max_tokens)
    if ss.get("nt_key") != key or "nt_state" not in ss:
        if "nt_key" in ss and not ui.link_is_new():
            ui.set_link("steps", None)  # a new prompt or model starts a new text (a new link brings its own steps)
        ss.nt_key, ss.nt_state = key, _fresh_state(lm, tr, max_tokens)
    state: gen.StepState = ss.nt_state
    # A link's steps that differ from the session's (a shared link, the back button): replay them.
    linked = links.token_ids("steps", ui.link_value("steps") or "", lm.vocab_size,
                             max(state.room + len(state.steps), 0))
    if linked.notice:
        ui.notice(linked.notice)
    if list(linked.value) != [t.token_id for t in state.steps]:
        state = ss.nt_state = _fresh_state(lm, tr, max_tokens)
        with st.spinner(f"Replaying the link's {len(linked.value)} steps…"):
            try:
                for t in linked.value:
                    gen.advance(lm, state, "given", Settings(), token=t)
            except ExplainerError as e:
                ui.notice(f"The link's steps stop early: {e}")
        _link_steps(state)
    return state


def _take(lm, state: gen.StepState, how: str) -> None:
    try:  # one forward pass over the new token only (tens of milliseconds): no spinner needed
        gen.advance(lm, state, how, _settings(), seed=int(ss.nt_seed))
    except ExplainerError as e:
        ss.nt_msg = str(e)
    _link_steps(state)


def _undo(state: gen.StepState) -> None:
    if gen.undo(state) is None:
        ss.nt_msg = "Nothing to undo: no token has been taken yet."
    _link_steps(state)


def _restart(lm, trace, max_tokens: int) -> None:
    ss.nt_state = _fresh_state(lm, trace(), max_tokens)   # the trace by name (ui.again)
    _link_steps(ss.nt_state)


def _continue_from_view(state: gen.StepState) -> None:
    gen.rewind(state, int(ss.nt_view))
    _link_steps(state)


@ui.section("grow", hidden=ui.SILENT)
def grow_text(lm, tr, state: gen.StepState, max_tokens: int) -> int:
    """The text so far and the step buttons; returns the point of the timeline the charts show
    (0 = right after the prompt, len(steps) = now)."""
    st.subheader("1 · Grow the text one token at a time")
    prompt_text = lm.tokenizer.decode(list(state.prompt_ids))
    st.markdown(shaded_tokens_html([s.token for s in state.steps], [s.prob for s in state.steps],
                                   [s.token_id for s in state.steps], prefix=prompt_text), unsafe_allow_html=True)
    if state.steps:
        st.markdown(shading_legend_html(), unsafe_allow_html=True)
    b1, b2, b3, b4, b5 = st.columns([2, 2, 1.3, 1.3, 1.6])
    b1.button("⬆ Take the top token", key="nt_top", on_click=_take, args=(lm, state, "top"), width="stretch",
              help="Greedy: the most likely token after the filters.")
    b2.button("⚄ Sample a token", key="nt_sample", on_click=_take, args=(lm, state, "sample"), width="stretch",
              help="Draw at random with the probabilities below (after temperature, top-k, top-p).")
    b3.button("↩ Undo", key="nt_undo", on_click=_undo, args=(state,), width="stretch", disabled=not state.steps)
    b4.button("⟲ Start over", key="nt_restart", on_click=_restart, args=(lm, ui.again(tr, max_tokens), max_tokens),
              width="stretch", disabled=not state.steps)
    ui.number("seed", "Seed", 0, 2**31 - 1, D["seed"], key="nt_seed", where=b5,
              help="Same seed and the same clicks give the same tokens, so a demo repeats exactly.")
    if "nt_msg" in ss:
        st.warning(ss.pop("nt_msg"))
    st.markdown(f"{state.n_tokens:,} of {lm.n_ctx:,} tokens in the context window. Every step after the first "
                "runs the model on the new token only, thanks to the " + ui.term("KV cache") + " (the first step "
                "reads the prompt once more, to fill it).")
    n_steps = len(state.steps)
    return ui.linked_number("view", 0, n_steps, n_steps)


# -- 2 · the distribution: sliders redraw only this fragment, from logits already computed ------------
@ui.section("distribution", hidden=ui.SILENT)   # its settings are the ones a Sample press uses
@ui.fragment
def explorer(lm, state: gen.StepState, view: int, prompt: str, tr_b=None) -> None:
    n_steps = len(state.steps)
    st.subheader("2 · The next-token distribution" if view == n_steps
                 else f"2 · The distribution at step {view} (looking back)")
    c1, c2, c3, c4 = st.columns(4)
    ui.slider("temperature", "Temperature", 0.0, 5.0, D["temperature"], step=0.01, key="nt_temp", where=c1,
              help="Logits are divided by it. Below 1 sharpens, above 1 flattens; 0 is greedy.")
    ui.number("top_k", "Top-k (0 = off)", 0, 10_000_000, D["top_k"], key="nt_top_k", where=c2,
              help="Keep only the k most likely tokens.")
    ui.slider("top_p", "Top-p (1 = off)", 0.0, 1.0, D["top_p"], step=0.01, key="nt_top_p", where=c3,
              help="After temperature and top-k: keep the smallest set of most likely tokens whose probabilities "
                   "add up to at least p.")
    ui.slider("show", "Tokens shown", 5, 40, D["show"], key="nt_show", where=c4)
    c5, c6, _ = st.columns([1, 1, 2])
    ui.slider("min_p", "Min-p (0 = off)", 0.0, 1.0, D["min_p"], step=0.01, key="nt_min_p", where=c5,
              help="After top-p: drop every token less likely than min-p × the top token's probability.")
    ui.slider("repetition_penalty", "Repetition penalty (1 = off)", 1.0, 3.0, D["repetition_penalty"], step=0.05,
              key="nt_penalty",
              where=c6, help="Before everything else: tokens already in the text get their logit divided by it "
                             "(multiplied, if negative), so repeating is less likely.")
    so_far = state.ids[:len(state.prompt_ids) + view]             # the text before the step looked at
    try:
        dist = probabilities(state.logits_at(view), float(ss.nt_temp), int(ss.nt_top_k), float(ss.nt_top_p),
                             float(ss.nt_min_p), float(ss.nt_penalty), so_far)
    except ExplainerError as e:
        st.info(str(e))
        return
    for note in dist.notes:
        st.caption(f"ℹ️ {note}")
    ids = [int(i) for i in dist.top(int(ss.nt_show))]
    strings = token_strings(lm.tokenizer, ids)
    best = dist.argmax
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Entropy", f"{dist.entropy:.2f} bits", help="0 bits: certain. Every bit doubles the number of "
              f"equally likely choices. The model's own (temperature 1, no filters): {dist.entropy_model:.2f} bits.")
    m2.metric("Tokens kept", f"{dist.n_kept:,}", help=f"the tokens that can still be drawn, of {dist.vocab_size:,} "
              "in the vocabulary")
    m3.metric("Top token", show_token(token_strings(lm.tokenizer, [best])[0]), f"{dist.probs[best]:.1%}",
              delta_color="off")
    m4.metric("Mass cut off", f"{dist.mass_cut:.1%}",
              help="Probability (after the repetition penalty and temperature) of all the tokens the filters "
                   "(top-k, top-p and min-p) removed; the survivors share it.")
    if dist.removed_min_p is not None or dist.penalised is not None:
        cut = 0 if dist.removed_min_p is None else int(dist.removed_min_p.sum())
        st.markdown(f"Min-p cut **{cut:,}** more tokens; the repetition penalty lowered **{dist.n_penalised:,}** "
                    "tokens already in the text.")
    chosen = state.steps[view].token_id if view < n_steps else None
    left, right = st.columns(2, gap="large")
    with left:
        ui.chart(distribution_chart(dist, ids, strings, chosen=chosen,
                                    title=f"Probabilities · {settings_text(dist, per_line=2)}"), key="nt_dist",
                 present_height=440)
        ui.table_download("Download these probabilities (CSV)", lambda: exports.distribution(dist, ids, strings),
                          "next-token probabilities", key="nt_csv")
    with right:
        ui.chart(survival_chart(dist, ids, strings), key="nt_survive", present_height=440)
    st.caption("Pale bars: probability after temperature alone (and the repetition penalty, when it is on). Solid "
               "bars: what a draw uses after top-k, top-p and min-p; a token the filters removed has no solid bar "
               "and is labelled with the filter that cut it (“cut by top-k”, “cut by top-p”, “cut by min-p”). "
               "Hover a bar for the token id and its logit.")
    if tr_b is not None:
        side_by_side(lm, state, prompt, tr_b)
    ui.code_expander("This distribution, its seeded draw, and the same step as a model.generate(...) call.",
                     snippets.next_token(lm, prompt, float(ss.nt_temp),
                                         int(ss.nt_top_k), float(ss.nt_top_p), float(ss.nt_min_p),
                                         float(ss.nt_penalty), steps=so_far[len(state.prompt_ids):],
                                         seed=int(ss.nt_seed), draw=state.draws if view == n_steps else None,
                                         keep=len(state.prompt_ids)))


def side_by_side(lm, state: gen.StepState, prompt: str, tr_b) -> None:
    """Compare mode: the next token after each prompt (before any step taken), under the same settings."""
    st.subheader("Side by side: the next token after each prompt")
    args = (float(ss.nt_temp), int(ss.nt_top_k), float(ss.nt_top_p), float(ss.nt_min_p), float(ss.nt_penalty))
    try:
        a = probabilities(state.logits_at(0), *args, state.prompt_ids)
        b = probabilities(tr_b.next_token_logits(), *args, tr_b.token_ids)
    except ExplainerError as e:
        st.info(str(e))
        return
    change = next_token_change(a, b, k=min(int(ss.nt_show), 12))
    strings = token_strings(lm.tokenizer, [int(i) for i in change.ids])
    label_a, label_b = prompt_label(prompt), prompt_label(tr_b.text)
    ui.chart(probability_change(change, strings, label_a, label_b, f"After each prompt · {settings_text(a)}"),
             key="nt_compare", present_height=520)
    i = 0                                           # the largest change: the first row
    top_a, top_b = token_strings(lm.tokenizer, [a.argmax, b.argmax])
    st.markdown(f"With these settings the top token is “{ui.md_escape(show_token(top_a))}” "
                f"({a.probs[a.argmax]:.1%}) after the first "
                f"prompt and “{ui.md_escape(show_token(top_b))}” ({b.probs[b.argmax]:.1%}) after the second. The "
                f"largest change is “{ui.md_escape(show_token(strings[i]))}”: {change.p_a[i]:.1%} → "
                f"{change.p_b[i]:.1%} ({change.delta[i] * 100:+.1f} percentage points).")
    ui.table_download("Download the comparison (CSV)",
                      lambda: exports.next_token_change(change, strings, prompt, tr_b.text),
                      "next token after two prompts", key="nt_compare_csv")


@ui.section("timeline")
def timeline(lm, state: gen.StepState, view: int, prompt: str) -> None:
    st.subheader("3 · The timeline")
    n_steps = len(state.steps)
    if not n_steps:
        st.info("No steps yet. Press **Take the top token** or **Sample a token** above: each step appears here "
                "with the probability of the token taken and how unsure the model was (entropy).")
        return
    ui.slider("view", "Look back at step", 0, n_steps, n_steps, key="nt_view",
              help=f"0 = the prediction after the prompt; {n_steps} = now. Each step kept its own distribution.")
    if view < n_steps:
        st.button(f"Continue from step {view} (drop the {n_steps - view} later step(s))", key="nt_continue",
                  on_click=_continue_from_view, args=(state,))
    alts = sorted({int(a) for s in state.steps for a in s.dist.top(4)})
    names = dict(zip(alts, token_strings(lm.tokenizer, alts)))
    ui.chart(timeline_chart(state.steps, current=view, names=names), key="nt_timeline")
    ui.code_expander(f"The {n_steps} step{'s' if n_steps != 1 else ''} so far, each under its own settings.",
                     snippets.timeline(lm, prompt, state.steps, keep=len(state.prompt_ids)))


def main() -> None:
    """The page's run. Its results stay local: a callback or fragment the session keeps after the run holds
    the page's globals, so nothing big may live there (tests/test_pins.py)."""
    lm, tr = ui.traced_page(
        "Next token",
        "Your phone's autocomplete and ChatGPT both do this, over and over: score every possible next token and "
        "pick one. The model's output is a " + ui.term("logit") + " for every token in its vocabulary, turned into "
        "probabilities by " + ui.term("softmax") + ". Temperature, top-k and top-p reshape that distribution "
        "before one token is drawn; then the text grows by one token and it starts again.",
        icon="🎲",
        compare=True,
    )
    tr_b = ui.compare_trace(lm)
    max_tokens = int(ss.max_tokens)
    state = stepping_state(lm, tr, max_tokens)
    view = grow_text(lm, tr, state, max_tokens)
    explorer(lm, state, view, tr.text, tr_b)
    timeline(lm, state, view, tr.text)


main()
