"""A lesson as a handout: one self-contained HTML file, and the lesson's own file to download.

`build(lesson, lm)` writes one HTML document: the lesson's title, summary, level and length, the model the
figures come from, then per step its title, narration (Markdown, raw HTML escaped), question, answer
(`lessons.answer`), "try this" suggestions and the step's interactive figure. Plotly's JavaScript is inlined
once in the head, so the file opens with no network and asks nothing from outside.

`step_figure(lm, step)` is the main chart of the step's view for the step's state, built with the engine calls
and figure functions that page uses and the page's defaults (`explainer.defaults`) for the names the state
leaves out. `lesson_file(lesson)` is the lesson's TOML source as it was loaded. No Streamlit here.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from markdown_it import MarkdownIt
from plotly.offline import get_plotlyjs

from . import (
    anatomy,
    content,
    defaults,
    generation,
    heads,
    interventions,
    lens,
    lessons,
    links,
    makemore,
    mlp,
    residual,
    sampling,
    vectors,
    wordmaps,
    words,
)
from .capture import trace
from .errors import ExplainerError
from .figures import anatomy as f_anatomy
from .figures import attention as f_att
from .figures import embeddings as f_emb
from .figures import interventions as f_iv
from .figures import lens as f_lens
from .figures import makemore as f_mm
from .figures import mlp as f_mlp
from .figures import model_map as f_map
from .figures.common import show_token
from .figures.sampling import distribution_chart, settings_text
from .figures.tokens import top_next_tokens
from .model_map import model_map
from .models import LoadedModel
from .tokens import encode, token_strings

# The Generate page's chat template starts from the user's first message; a handout has none, so the chat
# step shows the first token of the reply to this one.
CHAT_EXAMPLE = "What is the capital of France?"

_MD = MarkdownIt("commonmark", {"html": False})   # raw HTML in a lesson is shown as text, never run


# -- reading a step's state: the link's text, or the page's default ------------------------------------------

def _num(state: Mapping[str, str], name: str, default: float, integer: bool = False) -> float | int:
    raw = state.get(name)
    if raw is None:
        return default
    return int(float(raw)) if integer else float(raw)


def _flag(state: Mapping[str, str], name: str, default: bool) -> bool:
    raw = state.get(name)
    return default if raw is None else links.flag(name, raw, default).value


def _max_tokens(state: Mapping[str, str]) -> int:
    return int(_num(state, "max_tokens", defaults.MAX_TOKENS, True))


def _memo(memo: MutableMapping, key: tuple, make: Callable[[], Any]) -> Any:
    key = ("handout", *key)
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _trace(lm: LoadedModel, text: str, max_tokens: int, memo: MutableMapping):
    return _memo(memo, ("trace", text, max_tokens), lambda: trace(lm, text, max_tokens))


# -- one figure per view ---------------------------------------------------------------------------------

def _home(lm, step, memo) -> go.Figure:
    tr = _trace(lm, step.prompt, _max_tokens(step.state), memo)
    logits = tr.next_token_logits()
    probs = sampling.softmax(logits)
    top = sampling.top_k(probs, 10)
    return top_next_tokens(list(token_strings(lm.tokenizer, top)), [int(i) for i in top], probs[top], logits[top])


def _distribution(lm, dist: sampling.Distribution, show: int, title: str) -> go.Figure:
    ids = [int(i) for i in dist.top(show)]
    return distribution_chart(dist, ids, token_strings(lm.tokenizer, ids), title=title)


def _next_token(lm, step, memo) -> go.Figure:
    st, d = step.state, defaults.NEXT_TOKEN
    tr = _trace(lm, step.prompt, _max_tokens(st), memo)
    dist = sampling.probabilities(tr.next_token_logits(), _num(st, "temperature", d["temperature"]),
                                  _num(st, "top_k", d["top_k"], True), _num(st, "top_p", d["top_p"]),
                                  _num(st, "min_p", d["min_p"]), _num(st, "repetition_penalty",
                                                                      d["repetition_penalty"]),
                                  tuple(int(i) for i in tr.token_ids))
    return _distribution(lm, dist, int(_num(st, "show", d["show"], True)),
                         f"Probabilities · {settings_text(dist, per_line=2)}")


def _generate(lm, step, memo) -> go.Figure:
    st, d = step.state, defaults.GENERATE
    template = st.get("template", d["template"])
    tmpl = content.TEMPLATES.get(template)
    if tmpl is not None and tmpl.chat:
        ids = generation.chat_ids(lm, [{"role": "user", "content": CHAT_EXAMPLE}])[0]
        what = f"The reply's first token, to “{CHAT_EXAMPLE}”"
    else:
        ids = encode(lm, step.prompt, _max_tokens(st)).ids
        what = "The first token written"
    temperature = _num(st, "temperature", tmpl.temperature if tmpl is not None else d["temperature"])
    logits = _memo(memo, ("next_logits", tuple(ids)), lambda: generation.next_logits(lm, ids))
    dist = sampling.probabilities(logits, temperature, _num(st, "top_k", d["top_k"], True),
                                  _num(st, "top_p", d["top_p"]), _num(st, "min_p", d["min_p"]),
                                  _num(st, "repetition_penalty", d["repetition_penalty"]), tuple(ids))
    return _distribution(lm, dist, defaults.NEXT_TOKEN["show"], f"{what} · {settings_text(dist, per_line=2)}")


def _attention(lm, step, memo) -> go.Figure:
    tr = _trace(lm, step.prompt, _max_tokens(step.state), memo)
    default = heads.looking_back_head(tr.attn)
    layer = int(_num(step.state, "layer", default[0], True))
    head = int(_num(step.state, "head", default[1], True))
    return f_att.head_heatmap(tr.attn[layer, head], tr.tokens, f"Layer {layer}, head {head}")


def _mlp(lm, step, memo) -> go.Figure:
    st = step.state
    tr = _trace(lm, step.prompt, _max_tokens(st), memo)
    layer = int(_num(st, "layer", defaults.mlp_layer(tr.mlp.shape[0]), True))
    ns = mlp.top_neurons(tr, layer, int(_num(st, "mlp_n", defaults.MLP["mlp_n"], True)),
                         skip_first=_flag(st, "skip_first", defaults.MLP["skip_first"]))
    return f_mlp.neurons_heatmap(tr.tokens, ns)


def _logit_lens(lm, step, memo) -> go.Figure:
    st = step.state
    tr = _trace(lm, step.prompt, _max_tokens(st), memo)
    T = tr.n_tokens
    positions = range(T)
    if T > defaults.LENS_WINDOW:
        lo, hi = (links.int_range("window", st["window"], 0, T - 1, defaults.lens_window(T)).value
                  if "window" in st else defaults.lens_window(T))
        positions = range(lo, hi + 1)
    res = lens.logit_lens(lm, tr, k=defaults.LENS_TOP, positions=sorted({*positions, T - 1}))
    return f_lens.lens_grid(res, tr.tokens, positions)


def _interventions(lm, step, memo) -> go.Figure:
    st = step.state
    tr = _trace(lm, step.prompt, _max_tokens(st), memo)
    if "ablate_heads" in st:
        hs = interventions.parse_heads(st["ablate_heads"])
    else:   # the page starts with the heads it suggests
        attr = _memo(memo, ("attribution", tr.text, tr.n_tokens), lambda: interventions.attribution(lm, tr))
        hs = attr.top_heads(defaults.N_SUGGEST)
    ns = interventions.parse_neurons(st.get("ablate_neurons", ""))
    cmp = interventions.compare(lm, interventions.ablate(lm, tr, hs, ns), k=8)
    what = (f"{len(hs)} head{'s' * (len(hs) != 1)} and {len(ns)} neuron{'s' * (len(ns) != 1)} off"
            f" ({', '.join([interventions.head_label(*h) for h in hs] + [interventions.neuron_label(*n) for n in ns])})"
            if hs or ns else "nothing off")
    return f_iv.before_after(cmp, what)


def _anatomy(lm, step, memo) -> go.Figure:
    return f_anatomy.param_treemap(anatomy.count_parameters(lm.config), lm.label)


def _model_map(lm, step, memo) -> go.Figure:
    st, d = step.state, defaults.MODEL_MAP
    tr = _trace(lm, step.prompt, _max_tokens(st), memo)
    opened = _flag(st, "open_block", d["open_block"])
    layer = int(_num(st, "layer", d["layer"], True)) if opened else None
    return f_map.diagram(model_map(lm, tr), layer, st.get("box", d["box"]))


def _preset(st: Mapping[str, str], name: str, presets: Mapping) -> Any:
    return presets[st.get(name, next(iter(presets)))]


def _embeddings(lm, step, memo) -> go.Figure:
    st, d = step.state, defaults.EMBEDDINGS
    tab = st.get("tab", d["tab"])
    if tab == "map":
        text = st.get("map_words", _preset(st, "map_preset", content.MAP_PRESETS))
        wm = wordmaps.word_map(lm, text, 3 if st.get("map_dims", d["map_dims"]) == "3-D" else 2,
                               align_arrows=_flag(st, "map_align", d["map_align"]))
        what = "the average arrow and principal components" if wm.pca.names else "their first principal components"
        return f_emb.word_map(wm, f"{len(wm.vectors.words)} words on {what}")
    if tab == "analogies":
        preset = _preset(st, "an_preset", content.ANALOGY_PRESETS)
        a, b, c = (st.get(f"an_{x}", preset[i]) for i, x in enumerate("abc"))
        res = vectors.analogy(lm, [a, c], [b], k=int(_num(st, "an_k", d["an_k"], True)), exclude_inputs=True,
                              exclude_variants=_flag(st, "an_variants", d["an_variants"]))
        return f_emb.neighbour_bars(res.neighbours, f"{res.expression}: {lm.label}'s input embeddings")
    if tab == "directions":
        preset = _preset(st, "dir_preset", content.DIRECTION_PRESETS)
        pairs = words.parse_items(st.get("dir_axis", preset[0])).pairs
        if not pairs:
            raise ExplainerError("The axis has no pairs.", "Write at least one pair, such as `man → woman`.")
        dirn = wordmaps.direction(lm, pairs)
        axis_words = [w for p in pairs for w in p]
        wv = vectors.word_vectors(lm, [*words.split_words(st.get("dir_words", preset[1])), *axis_words])
        proj = wordmaps.project(dirn, wv.vectors, wv.words)
        frm = ", ".join(x for x, _ in pairs[:2]) + ("…" if len(pairs) > 2 else "")
        to = ", ".join(y for _, y in pairs[:2]) + ("…" if len(pairs) > 2 else "")
        return f_emb.direction_strip(proj, dirn.name, f"−1: {frm}", f"+1: {to}",
                                     axis_words=frozenset(" ".join(w.split()) for w in axis_words))
    if tab == "similarity":
        wv = vectors.word_vectors(lm, words.split_words(st.get("sim_words", d["sim_words"])), max_words=30)
        return f_emb.similarity_heatmaps(wv.labels, vectors.similarity(wv.vectors))
    if tab == "context":
        preset = _preset(st, "ctx_preset", content.CONTEXT_PRESETS)
        word = st.get("ctx_word", preset[0])
        sentences = [" ".join(s.split()) for s in st.get("ctx_sentences", "\n".join(preset[1])).splitlines()
                     if s.strip()][:8]
        traces = [_trace(lm, s, _max_tokens(st), memo) for s in sentences]
        ca = residual.in_context(lm, traces, word, centered=_flag(st, "ctx_center", d["ctx_center"]))
        return f_emb.context_trajectories(ca, f"“{ca.word}” through {ca.n_points - 1} blocks")
    raise ExplainerError(f"The Embeddings view has no tab {tab!r}.", "Use map, analogies, directions, similarity "
                                                                     "or context.")


# -- the Tiny LM lab: its own tiny model, trained once per configuration ------------------------------------

_LAB_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _names(block_size: int) -> makemore.Dataset:
    return makemore.load_data(block_size, seed=42)      # the page's split (ui.names_data)


@lru_cache(maxsize=16)
def lab_run(block: int, embd: int, hidden: int, seed: int, lr: float, steps: int, batch: int, every: int):
    """(history, model) of the lab page's training run with these settings, as the page's Train button makes
    it (a fresh model, curves from step 0); remembered per configuration, a few seconds each."""
    with _LAB_LOCK:
        data = _names(block)
        model = makemore.CharMLP(makemore.MLPConfig(block, embd, hidden), seed=seed)
        hist = [makemore.snapshot(model, data)]
        hist += [p for p in makemore.train(model, data, steps=steps, lr=lr, batch_size=batch, eval_every=every,
                                           seed=seed) if p.step > 0]
        return tuple(hist), model


@lru_cache(maxsize=8)
def _overfit(block: int, n_names: int, n_hidden: int) -> makemore.OverfitResult:
    with _LAB_LOCK:
        return makemore.overfit_demo(_names(block), n_names=n_names, n_hidden=n_hidden)


_LAB_SAMPLING = frozenset({"lab_n", "lab_temp", "lab_sample_seed", "lab_prefix"})


def _lab(lm, step, memo) -> go.Figure:
    st, d = step.state, defaults.LAB
    block = int(_num(st, "lab_block", d["lab_block"], True))
    if any(k.startswith("lab_of_") for k in st):          # the overfitting section
        return f_mm.overfit_curves(_overfit(block, int(_num(st, "lab_of_names", d["lab_of_names"], True)),
                                            int(_num(st, "lab_of_hidden", d["lab_of_hidden"], True))))
    n = {k: int(_num(st, k, d[k], True)) for k in ("lab_embd", "lab_hidden", "lab_seed", "lab_steps", "lab_batch",
                                                    "lab_every")}
    hist, model = lab_run(block, n["lab_embd"], n["lab_hidden"], n["lab_seed"], float(_num(st, "lab_lr", d["lab_lr"])),
                          n["lab_steps"], n["lab_batch"], n["lab_every"])
    if _LAB_SAMPLING & set(st):                            # making up names: the next-letter bars
        prefix = st.get("lab_prefix", d["lab_prefix"])
        return f_mm.next_char_bars(makemore.next_char_probs(model, prefix), prefix)
    return f_mm.loss_curves(list(hist), n["lab_steps"])


FIGURES: dict[str, Callable[[LoadedModel, lessons.Step, MutableMapping], go.Figure]] = {
    "Home": _home, "Model_map": _model_map, "Embeddings": _embeddings, "Attention": _attention,
    "MLP_neurons": _mlp, "Logit_lens": _logit_lens, "Next_token": _next_token, "Generate": _generate,
    "Interventions": _interventions, "Anatomy": _anatomy, "Tiny_LM_lab": _lab,
}


def step_figure(lm: LoadedModel, step: lessons.Step, memo: MutableMapping | None = None) -> go.Figure | None:
    """The main chart of `step`'s view for its state (None for a view without one: the Glossary). `memo`, a
    dict kept for one model, shares traces between steps (and with `lessons.answer`)."""
    make = FIGURES.get(step.view)
    return None if make is None else make(lm, step, {} if memo is None else memo)


# -- the document -------------------------------------------------------------------------------------------

def lesson_file(lesson: lessons.Lesson) -> bytes:
    """The lesson's TOML source as it was loaded, to download and edit."""
    return lesson.text.encode("utf-8")


def narration_html(markdown: str) -> str:
    """A step's narration as HTML; raw HTML in it is escaped, not passed through."""
    return _MD.render(markdown)


CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --accent: #0969da; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 20px/1.55 system-ui, -apple-system, "Segoe UI",
       Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 32px 28px 64px; }
header.lesson h1 { font-size: 2.1em; line-height: 1.2; margin: 0 0 .3em; }
header.lesson .summary { font-size: 1.15em; margin: 0 0 .6em; }
.meta { color: var(--muted); font-size: .95em; margin: 0; }
.meta span + span::before { content: " · "; }
section.step { border-top: 3px solid var(--line); margin-top: 40px; padding-top: 20px; }
section.step h2 { font-size: 1.6em; margin: 0 0 .4em; }
section.step h2 .n { color: var(--accent); }
.narration p { margin: 0 0 .7em; }
.box { background: var(--soft); border-left: 6px solid var(--accent); border-radius: 6px; padding: 12px 18px;
       margin: 14px 0; }
.box h3 { font-size: .8em; letter-spacing: .06em; text-transform: uppercase; color: var(--muted); margin: 0 0 4px; }
.box p { margin: 0; }
.question p { font-weight: 600; }
details.answer summary { cursor: pointer; color: var(--accent); font-weight: 600; }
details.answer p { margin-top: 6px; }
.tries ul { margin: 4px 0 0; padding-left: 1.2em; }
figure { margin: 18px 0 0; }
figure figcaption { color: var(--muted); font-size: .85em; margin-top: 4px; }
.plot { border: 1px solid var(--line); border-radius: 6px; padding: 4px; }
.prompt h3 { font-size: .8em; letter-spacing: .06em; text-transform: uppercase; color: var(--muted);
            margin: 16px 0 6px; }
.toks { display: flex; flex-wrap: wrap; gap: 6px; }
.tok { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; background: #ddf4ff;
       border: 1px solid #b6e3ff; border-radius: 5px; padding: 1px 7px; white-space: pre; }
.missing { color: #9a6700; }
footer { color: var(--muted); font-size: .85em; margin-top: 48px; border-top: 1px solid var(--line);
         padding-top: 12px; }
@media print {
  body { font-size: 14pt; }
  main { max-width: none; padding: 0; }
  section.step { break-before: page; border-top: none; margin-top: 0; }
  figure, .box { break-inside: avoid; }
  details.answer summary { display: none; }
  .plot { border: none; }
}
"""

# Printing opens every answer (a closed <details> prints as its summary only).
_PRINT_JS = ("window.addEventListener('beforeprint',function(){document.querySelectorAll('details')"
             ".forEach(function(d){d.open=true;});});")
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "toImageButtonOptions": {"format": "png", "scale": 3}}


def _figure_html(fig: go.Figure, n: int) -> str:
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, config=PLOT_CONFIG, div_id=f"step-{n}-plot",
                       default_width="100%")


def _prompt_html(lm: LoadedModel, step: lessons.Step) -> str:
    """The text the step's figure reads, as the model's tokens (␣ for a leading space), or "" when none."""
    tmpl = content.TEMPLATES.get(step.state.get("template", defaults.GENERATE["template"]))
    if not ("prompt" in lessons.VIEW_PARAMS[step.view] or (step.view == "Generate" and not (tmpl and tmpl.chat))):
        return ""
    try:
        enc = encode(lm, step.prompt, _max_tokens(step.state))
    except ExplainerError:
        return ""
    chips = "".join(f'<span class="tok">{html.escape(show_token(t))}</span>' for t in enc.tokens)
    return (f'<div class="prompt"><h3>The text the model reads here: {len(enc.ids)} tokens</h3>'
            f'<div class="toks">{chips}</div></div>')


def _step_html(lm: LoadedModel, step: lessons.Step, memo: MutableMapping) -> str:
    e = html.escape
    parts = [f'<section class="step" id="step-{step.number}">',
             f'<h2><span class="n">Step {step.number}</span> · {e(step.title)}</h2>',
             f'<div class="narration">{narration_html(step.narration)}</div>']
    if step.question is not None:
        try:
            ans = lessons.answer(step.question, lm, memo).text
        except ExplainerError as err:
            ans = f"(could not be computed with {lm.label}: {err})"
        parts += ['<div class="box question"><h3>Question</h3>', f"<p>{e(step.question.text)}</p></div>",
                  '<details class="box answer"><summary>Show the answer</summary>',
                  f"<p>{e(ans)}</p></details>"]
    if step.tries:
        items = "".join(f"<li>{e(t)}</li>" for t in step.tries)
        parts.append(f'<div class="box tries"><h3>Try this</h3><ul>{items}</ul></div>')
    parts.append(_prompt_html(lm, step))
    try:
        fig = step_figure(lm, step, memo)
    except ExplainerError as err:
        parts.append(f'<p class="missing">The figure could not be drawn with {e(lm.label)}: {e(str(err))}</p>')
    else:
        if fig is not None:
            view = step.view.replace("_", " ")
            parts.append(f'<figure><div class="plot">{_figure_html(fig, step.number)}</div>'
                         f"<figcaption>From the app's {e(view)} view, with this step's settings. Hover for the "
                         "numbers; drag to zoom, double-click to reset.</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def build(lesson: lessons.Lesson, lm: LoadedModel, progress: Callable[[int, int], None] | None = None) -> str:
    """The lesson as one self-contained HTML document. `progress(done, total)` is called before each step and
    once at the end (done = total)."""
    e = html.escape
    memo: dict = {}
    n = len(lesson.steps)
    sections = []
    for i, step in enumerate(lesson.steps):
        if progress is not None:
            progress(i, n)
        sections.append(_step_html(lm, step, memo))
    if progress is not None:
        progress(n, n)
    meta = "".join(f"<span>{e(x)}</span>" for x in (lesson.level, f"{lesson.minutes} minutes", f"{n} steps",
                                                     f"model: {lm.label}"))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(lesson.title)}</title>", f"<style>{CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>', f"<script>{_PRINT_JS}</script>",
        "</head>", "<body><main>",
        '<header class="lesson">', f"<h1>{e(lesson.title)}</h1>", f'<p class="summary">{e(lesson.summary)}</p>',
        f'<p class="meta">{meta}</p>', "</header>",
        *sections,
        f"<footer>A lesson of “Inside a GPT”. Every figure and answer was computed with {e(lm.label)} when this "
        f"handout was made; the lesson file is {e(lesson.name)}.toml.</footer>",
        "</main></body></html>",
    ])
