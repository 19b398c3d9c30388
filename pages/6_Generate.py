"""Generation playground: the controls of a real LLM run (templates, max new tokens, temperature,
top-k, top-p, stop strings, seed), streamed token by token; a chat fed back turn by turn; and how a
batch of prompts is padded to one length with an attention mask."""

from __future__ import annotations

import streamlit as st

from explainer import content, defaults, snippets, ui
from explainer import generation as gen
from explainer.errors import ExplainerError
from explainer.figures.common import show_token
from explainer.figures.sampling import padding_chart, shaded_tokens_html, shading_legend_html
from explainer.tokens import encode

ss = st.session_state
SHARED = "shared"
CHOICES = [*content.TEMPLATES, SHARED]
D = defaults.GENERATE   # the page's defaults; a template or the link override them


def _md_escape(s: str) -> str:
    """Plain text for a Markdown cell (st.table renders Markdown: a lone '-' would become a bullet)."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>~" else c for c in s)


def _md_token(s: str) -> str:
    """A token as a code span in Markdown, so '-', '*' or '#' show as themselves."""
    s = show_token(s)
    return f"`` {s} ``" if "`" in s else f"`{s}`"


def _stop_text(stops) -> str:
    return "|".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in stops)


def _template_defaults(k: str) -> tuple[str, str, float]:
    """(prompt, stop strings, temperature) a template starts from."""
    if k == SHARED:
        return ss.get("_prompt") or ui.DEFAULT_PROMPT, "", D["temperature"]
    t = content.TEMPLATES[k]
    return t.text, _stop_text(t.stop), t.temperature


def _config(extra_stop: tuple[str, ...] = ()) -> gen.GenConfig:
    return gen.GenConfig(max_new_tokens=int(ss.gen_max_new), temperature=float(ss.gen_temp),
                         top_k=int(ss.gen_top_k), top_p=float(ss.gen_top_p), min_p=float(ss.gen_min_p),
                         repetition_penalty=float(ss.gen_penalty),
                         stop=gen.parse_stop(ss.gen_stop) + extra_stop, seed=int(ss.gen_seed))


def _show_tokens(box, toks, prefix: str = "") -> None:
    """Generated tokens (Steps) shaded by probability into `box`, after the plain `prefix`."""
    box.markdown(shaded_tokens_html([t.token for t in toks], [t.prob for t in toks], [t.token_id for t in toks],
                                    prefix=prefix), unsafe_allow_html=True)


def _stream_into(box, stream: gen.Stream, prefix: str = "") -> gen.GenOutcome:
    toks: list[gen.Step] = []
    for t in stream:
        toks.append(t)
        _show_tokens(box, toks, prefix)
    assert stream.outcome is not None
    return stream.outcome


def _summary(out: gen.GenOutcome) -> str:
    n = len(out.tokens)
    if not n:
        return out.why
    mean_p = sum(t.prob for t in out.tokens) / n
    speed = (f"reading the prompt {out.prefill_seconds * 1000:.0f} ms, then {out.seconds_per_token * 1000:.0f} ms "
             "per token with the KV cache" if out.n_decode else f"{out.seconds * 1000:.0f} ms")
    return f"{out.why} {n} tokens in {out.seconds:.2f} s ({speed}) · average probability of a token taken {mean_p:.0%}."


@ui.section("controls", hidden=ui.SILENT)
def prompt_and_controls():
    """The template, the prompt and the generation settings; returns the template chosen (None: the
    prompt from the other pages)."""
    st.subheader("1 · Prompt and controls")
    left, right = st.columns([3, 2], gap="large")
    with left:
        # Choosing a template drops the prompt, stop strings and temperature it fills in from the link.
        template = ui.select("template", "Start from a template", CHOICES, D["template"], key="gen_template",
                             resets=("gen_text", "stop", "temperature"),
                             format_func=lambda k: "Your prompt from the other pages" if k == SHARED
                             else content.TEMPLATES[k].label)
        if ss.get("_gen_template_shown") != template:
            ss.pop("gen_out", None)
            ss._gen_template_shown = template
        text0, stop0, temp0 = _template_defaults(template)
        tmpl = content.TEMPLATES.get(template)
        if tmpl is not None:
            st.caption(tmpl.blurb)
        if not (tmpl and tmpl.chat):
            ui.text("gen_text", "Prompt", text0, area=True, compress=True, key="gen_text", height=150)
        else:
            ss.gen_text = text0
    with right:
        a, b = st.columns(2)
        ui.slider("max_new", "Max new tokens", 1, 256, D["max_new"], key="gen_max_new", where=a)
        ui.slider("temperature", "Temperature", 0.0, 5.0, temp0, step=0.05, key="gen_temp", where=b,
                  help="0 = greedy: always the top token.")
        ui.number("top_k", "Top-k (0 = off)", 0, 10_000_000, D["top_k"], key="gen_top_k", where=a)
        ui.slider("top_p", "Top-p (1 = off)", 0.0, 1.0, D["top_p"], step=0.01, key="gen_top_p", where=b)
        ui.slider("min_p", "Min-p (0 = off)", 0.0, 1.0, D["min_p"], step=0.01, key="gen_min_p", where=a,
                  help="Drop every token less likely than min-p × the top token's probability.")
        ui.slider("repetition_penalty", "Repetition penalty (1 = off)", 1.0, 3.0, D["repetition_penalty"], step=0.05,
                  key="gen_penalty",
                  where=b, help="Tokens already in the text (prompt included) get their logit divided by it "
                                "(multiplied, if negative), so greedy text loops less.")
        ui.text("stop", "Stop at", stop0, key="gen_stop", where=a,
                help=r"Stop strings, separated by | ; write \n for a new line.")
        ui.number("seed", "Seed", 0, 2**31 - 1, D["seed"], key="gen_seed", where=b,
                  help="The same seed gives the same text. Next token, with the same prompt, settings and "
                       "seed, gives it too, one Sample press at a time.")
    return tmpl


@ui.section("output")
def chat(lm) -> None:
    st.subheader("2 · Chat, one turn at a time")
    log: list[dict] = ss.setdefault("gen_chat", [])
    for m in log:
        with st.chat_message(m["role"]):
            if m.get("tokens"):
                st.markdown(shaded_tokens_html(m["tokens"], m["probs"]), unsafe_allow_html=True)
            else:
                st.write(m["content"])
    with st.container():
        msg = st.chat_input("Message the model", key="gen_chat_in")
    if msg:
        log.append({"role": "user", "content": msg})
        with st.chat_message("user"):
            st.write(msg)
        try:
            ids, stops, _ = gen.chat_ids(lm, log)
            stream = gen.Stream(lm, ids, _config(stops))
        except ExplainerError as e:
            log.pop()
            st.info(str(e))
        else:
            with st.chat_message("assistant"):
                out = _stream_into(st.empty(), stream)
            shown = [t for t in out.tokens if not t.special]
            log.append({"role": "assistant", "content": out.text.strip(), "tokens": [t.token for t in shown],
                        "probs": [t.prob for t in shown]})
            st.caption(_summary(out))
    if log:
        st.button("Clear the chat", key="gen_chat_clear", on_click=lambda: ss.pop("gen_chat", None))
        with st.expander("What the model actually reads (the whole log, every turn)"):
            try:
                ids, _, raw = gen.chat_ids(lm, log + [{"role": "user", "content": "…"}])
                st.code(raw, language=None)
                st.caption(f"{len(ids):,} tokens of {lm.n_ctx:,}. The model has no memory between turns: the chat "
                           "template turns the whole conversation into one text, and it is fed in again each turn.")
            except ExplainerError as e:
                st.info(str(e))
        ui.code_expander("The last reply as one model.generate(...) call, with these settings.",
                         snippets.chat(lm, log, int(ss.gen_max_new), float(ss.gen_temp), int(ss.gen_top_k),
                                       float(ss.gen_top_p), float(ss.gen_min_p), float(ss.gen_penalty),
                                       int(ss.gen_seed), gen.parse_stop(ss.gen_stop)))
    else:
        st.info("Type a message in the box above. The reply streams in, each token shaded by its probability.")
    if log and log[-1]["role"] == "assistant":
        st.markdown(shading_legend_html(), unsafe_allow_html=True)


@ui.section("output")
def generate(lm, max_tokens: int) -> None:
    st.subheader("2 · Generate")
    text = ss.gen_text
    try:
        enc = encode(lm, text, max_tokens)
    except ExplainerError as e:
        st.info(str(e))
        enc = None
    if enc is not None:
        if enc.notice:
            st.warning(enc.notice)
        st.markdown(f"**The model reads {len(enc.ids)} tokens** (ids underneath). It writes one token at a time, "
                    "by " + ui.term("sampling") + " unless the temperature is 0.")
        ui.token_chips(enc.tokens, list(enc.ids))
        frac = len(enc.ids) / lm.n_ctx
        st.progress(min(frac, 1.0), f"Context window: {len(enc.ids):,} of {lm.n_ctx:,} tokens ({frac:.1%}); "
                                    f"room for {lm.n_ctx - len(enc.ids):,} more.")
    go = st.button("▶ Generate", key="gen_go", type="primary", disabled=enc is None)
    box = st.empty()
    prefix = lm.tokenizer.decode(list(enc.ids)) if enc is not None else ""
    if go and enc is not None:
        try:
            stream = gen.Stream(lm, list(enc.ids), _config())
        except ExplainerError as e:
            st.info(str(e))
        else:
            ss.gen_out = (text, _stream_into(box, stream, prefix))
    if "gen_out" in ss and ss.gen_out[0] == text:
        out = ss.gen_out[1]
        _show_tokens(box, out.tokens, prefix)
        st.markdown(shading_legend_html(), unsafe_allow_html=True)
        st.caption(_summary(out))
        if out.tokens:
            low = min(out.tokens, key=lambda t: t.prob)
            st.caption(f"Least likely choice: '{show_token(low.token)}' at {low.prob:.1%} (token {low.index + 1}). "
                       "Hover any token for its probability and id.")
    elif enc is not None:
        st.caption("Press **Generate**. Grey is your prompt; each new token is shaded by the probability it had.")
    if enc is not None:
        ui.code_expander("These settings as one model.generate(...) call, and where the app differs.",
                         snippets.generate(lm, text, int(ss.gen_max_new), float(ss.gen_temp), int(ss.gen_top_k),
                                           float(ss.gen_top_p), float(ss.gen_min_p), float(ss.gen_penalty),
                                           int(ss.gen_seed), gen.parse_stop(ss.gen_stop), keep=len(enc.ids)))


@ui.section("batch")
def batches(lm) -> None:
    st.subheader("3 · A batch: padding and the attention mask")
    st.write("A GPU runs many prompts at once, but a batch must be a rectangle. Shorter prompts are **padded** to the "
             "longest, and an **attention mask** (1 = real token, 0 = padding) tells the model to ignore the padding. "
             "For generation the padding goes on the **left**, so every prompt's last token sits in the same column.")
    c1, c2 = st.columns([3, 1])
    ui.text("batch", "Prompts, one per line", D["batch"], area=True, compress=True, key="gen_batch", where=c1,
            height=110)
    ui.select("pad_side", "Pad on the", ["left", "right"], D["pad_side"], widget="radio", key="gen_pad_side", where=c2,
              horizontal=True)
    prompts = tuple(p for p in ss.gen_batch.splitlines() if p.strip())
    try:
        with st.spinner("Running the batch…"):
            check = ui.batch_check(lm.name, prompts, ss.gen_pad_side)
    except ExplainerError as e:
        st.info(str(e))
    else:
        ui.chart(padding_chart(check.batch), key="gen_pad")
        st.caption(check.batch.note)
        st.table([{"prompt": _md_escape(r.prompt), "real tokens": r.n_tokens,
                   "next token (batch)": _md_token(r.top_token), "probability": f"{r.prob:.1%}",
                   "run alone": "same ✓" if r.same else f"differs: {_md_token(r.alone_token)}"} for r in check.rows])
        if all(r.same for r in check.rows):
            st.caption("One forward pass for the whole batch, with the mask and position ids that skip the "
                       "padding, gives each prompt the same top prediction as running it alone.")
        else:
            n_diff = sum(not r.same for r in check.rows)
            st.caption("One forward pass for the whole batch, with the mask and position ids that skip the "
                       f"padding; yet here {n_diff} of the {len(check.rows)} prompts get a different top prediction "
                       "than when run alone (see the table).")
        ui.code_expander(f"These {len(check.rows)} prompts as one padded batch, and each alone.",
                         snippets.batch(lm, check.batch))


lm = ui.page(
    "Generation playground",
    "This is what happens behind a chatbot's reply: the same next-token step, run again and again. The "
    "controls of a real LLM run: a prompt, how many tokens to write, how adventurous to be, and when to "
    "stop. The text streams out one token at a time, each shaded by the probability it had.",
    icon="✍️",
)
if lm is None:
    st.stop()
max_tokens = int(ss.max_tokens)
tmpl = prompt_and_controls()
if tmpl and tmpl.chat:
    chat(lm)
else:
    generate(lm, max_tokens)
batches(lm)
