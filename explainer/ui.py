"""The only module that imports streamlit: cached loaders, the sidebar, shared widgets.

Pages stay thin: `lm = ui.page("Title", "one-line intro")`, then widgets -> explainer calls ->
`ui.chart(fig)`. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import os
import re
import runpy
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

import explainer as ex
from explainer import (
    anatomy,
    attention_out,
    budget,
    defaults,
    generation,
    glove,
    handout,
    heads,
    heap,
    interventions,
    lens,
    lesson_edit,
    lessons,
    links,
    makemore,
    mlp,
    player,
    poll,
    snippets,
)
from explainer import compare as compare_mod
from explainer.content import DEFAULT_PROMPT, GLOSSARY  # noqa: F401  (pages and tests read ui.DEFAULT_PROMPT)
from explainer.figures.common import export_name, figure_title, preset_margins, show_token
from explainer.figures.palette import TOKEN_TINTS
from explainer.model_map import part_values
from explainer.models import BUNDLED, BUNDLED_LABEL, HUB_MODELS, ModelPolicy, bundled_ready, prepare_bundled
from explainer.tokens import encode

DEFAULT_MAX_TOKENS = defaults.MAX_TOKENS   # the sidebar's token limit
_OTHER = "Other: a Hub id or a local folder…"
APP = Path(__file__).resolve().parents[1] / "streamlit_app.py"
ss = st.session_state
_run = threading.local()  # per script run: the notice box (each run of a session is one thread)


# -- cached resources ----------------------------------------------------------------------------
# Everything the app holds between reruns is bounded by one memory budget (`explainer.budget`,
# EXPLAINER_MEMORY_GB): models in `budget.MODELS` (by their bytes, at most 3), every big shared result in
# `budget.RESULTS`, a byte-bounded LRU (Streamlit's cache_resource bounds entries, not bytes). Results are
# shared read-only by every session (`_frozen`), with no per-session copy. They chain by name, never by
# object: a cached function takes the model's name (and the prompt and max tokens) and asks get_model /
# get_trace for the objects, so every key is small and hashable, and a model or trace evicted is rebuilt
# on demand by whichever result needs it next.
#   get_model(name) ─┬─ get_trace(name, text, max_tokens) ─┬─ lens_of, trajectory_of       (Logit lens)
#                    │                                      ├─ attribution_of, ablation_of  (Interventions)
#                    │                                      ├─ head_outputs_of              (Attention)
#                    │                                      └─ model_map_of, map_values_of  (Model map)
#                    ├─ head_roles, induction_demo                                          (Attention)
#                    ├─ batch_check                                                         (Generate)
#                    └─ anatomy_files, scale_rows                                           (Anatomy)
#   names_data(block_size) ─ lr_sweep, overfit_run                                         (Tiny LM lab)
#   glove_vectors()                                                                         (Embeddings)

budget.announce()   # the start-up line: this process's memory budget


@st.cache_resource(show_spinner=False)
def _heap_watch() -> bool:
    """EXPLAINER_HEAP_REPORT=path: what holds the big arrays, appended to path every 15 s (explainer/heap.py)."""
    path = os.environ.get("EXPLAINER_HEAP_REPORT")
    if path:
        heap.watch(path)
    return bool(path)


_heap_watch()


def allowed_models() -> ModelPolicy:
    """What this server's picker may load (EXPLAINER_MODELS; local folders off when it listens beyond localhost)."""
    return ModelPolicy.from_env(st.get_option("server.address"))


def get_model(name: str, progress: Callable[[float, str], None] | None = None) -> ex.LoadedModel:
    """One shared model per name for every session (read-only), within the budget's share for models.
    Never draws anything itself (`progress` hears a Hub download's bytes). A load that fails leaves the models
    held as they were."""
    def load() -> ex.LoadedModel:
        lm = ex.load_model(name, max_bytes=budget.model_cap(), allowed=allowed_models(), progress=progress)
        heap.settle(force=True)      # held for every session: out of the collector's sight (explainer/heap.py)
        return lm
    lm = budget.MODELS.get(name, load)
    budget.RESULTS.shrink()          # a new model leaves less room for results
    return lm


@st.cache_resource(show_spinner=False)
def _convert_lock() -> threading.Lock:
    return threading.Lock()


def get_trace(model_name: str, text: str, max_tokens: int | None) -> ex.Trace:
    """A shared read-only trace, kept within the memory budget: a prompt longer than the budget allows for
    this model keeps its last tokens, and the trace's notice says why."""
    lm = get_model(model_name)
    asked = min(int(max_tokens), lm.n_ctx) if max_tokens else lm.n_ctx
    limit = budget.token_limit(lm)
    keep = min(asked, limit)

    def make() -> ex.Trace:
        n = encode(lm, text, keep)                      # cheap: the size before tracing
        with budget.working(budget.trace_bytes(lm, len(n.ids)) + budget.pass_bytes(lm, len(n.ids))):
            tr = ex.trace(lm, text, keep)
        if keep < asked and tr.n_tokens_in_text > keep:
            tr = dataclasses.replace(tr, notice=budget.limit_notice(lm, keep, tr.n_tokens_in_text))
        return tr
    return budget.RESULTS.get(("trace", model_name, text, keep), make)


def _frozen(x):
    """Mark every numpy array reachable from x (fields of dataclasses, items of tuples, lists and
    dicts) read-only, and return x: a shared cached result must not be changed by one session."""
    import numpy as np

    for a in budget.arrays_in(x):
        if isinstance(a, np.ndarray):              # torch tensors have no read-only flag
            a.flags.writeable = False
    return x


def _shared(key: tuple, make: Callable[[], Any], estimate: int | Callable[[], int] = 0):
    """A shared, read-only result in the budget's results cache (`estimate`: bytes its computation needs,
    or a callable asked only on a miss)."""
    return budget.cached(key, lambda: _frozen(make()), estimate)


def _pass_of(model_name: str, text: str, max_tokens: int) -> int:
    """What one more pass over this prompt's trace needs (attribution, ablation, the lens's chunks)."""
    tr = get_trace(model_name, text, max_tokens)
    lm = get_model(model_name)
    return budget.trace_bytes(lm, tr.n_tokens) // 2 + budget.pass_bytes(lm, tr.n_tokens)


def lens_of(model_name: str, text: str, max_tokens: int, k: int, positions: tuple[int, ...] | None = None):
    """The logit lens; with `positions`, only those positions are decoded (the window a page shows first)."""
    return _shared(("lens", model_name, text, max_tokens, k, positions),
                   lambda: lens.logit_lens(get_model(model_name), get_trace(model_name, text, max_tokens), k=k,
                                           positions=None if positions is None else list(positions)),
                   lambda: _pass_of(model_name, text, max_tokens))


def trajectory_of(model_name: str, text: str, max_tokens: int, token_id: int, position: int | None = None):
    """One token's probability and rank through the layers: at `position` only (what the page shows: one
    chunk of rows, not the whole grid's (L+1)·T), or at every position."""
    return _shared(("trajectory", model_name, text, max_tokens, token_id, position),
                   lambda: lens.token_trajectory(get_model(model_name), get_trace(model_name, text, max_tokens),
                                                 token_id, None if position is None else [position]),
                   lambda: _pass_of(model_name, text, max_tokens))


def attribution_of(model_name: str, text: str, max_tokens: int):
    return _shared(("attribution", model_name, text, max_tokens),
                   lambda: interventions.attribution(get_model(model_name), get_trace(model_name, text, max_tokens)),
                   lambda: 2 * _pass_of(model_name, text, max_tokens))


def ablation_of(model_name: str, text: str, max_tokens: int, head_set: tuple, neurons: tuple):
    return _shared(("ablation", model_name, text, max_tokens, head_set, neurons),
                   lambda: interventions.ablate(get_model(model_name), get_trace(model_name, text, max_tokens),
                                                head_set, neurons),
                   lambda: _pass_of(model_name, text, max_tokens))


def head_roles(model_name: str) -> dict:
    """Head-role scores, measured once per model on a repeated random sequence ({role: [L, H]})."""
    return _shared(("head_roles", model_name), lambda: heads.head_scores(get_model(model_name)))


def induction_demo(model_name: str):
    return _shared(("induction", model_name), lambda: heads.induction_demo(get_model(model_name)))


def head_outputs_of(model_name: str, text: str, max_tokens: int, layer: int):
    """One layer's values, weighted sums and output projection, checked against the model's own pass
    (about 15 MB at 512 tokens for the bundled model)."""
    return _shared(("head_outputs", model_name, text, max_tokens, layer),
                   lambda: attention_out.head_outputs(get_model(model_name), get_trace(model_name, text, max_tokens),
                                                      layer),
                   lambda: _pass_of(model_name, text, max_tokens))


def model_map_of(model_name: str, text: str, max_tokens: int):
    """The forward pass as parts, with this prompt's live shapes (Model map)."""
    return _shared(("model_map", model_name, text, max_tokens),
                   lambda: ex.model_map(get_model(model_name), get_trace(model_name, text, max_tokens)))


def map_values_of(model_name: str, text: str, max_tokens: int, key: str, position: int):
    """One part's real values at one token (Model map): from the trace, or one extra forward pass."""
    def make():
        mm = model_map_of(model_name, text, max_tokens)
        return part_values(get_model(model_name), get_trace(model_name, text, max_tokens), mm.get(key), position)
    return _shared(("map_values", model_name, text, max_tokens, key, position), make,
                   lambda: _pass_of(model_name, text, max_tokens))


def batch_check(model_name: str, prompts: tuple[str, ...], side: str):
    """Batched against alone; each prompt keeps at most the sidebar's token limit, and what the budget allows
    for a batch of this many."""
    lm = get_model(model_name)
    keep = min(budget.batch_token_limit(lm, max(1, len(prompts))), int(ss.get("max_tokens") or DEFAULT_MAX_TOKENS))
    return _shared(("batch", model_name, prompts, side, keep),
                   lambda: generation.compare_batch(lm, prompts, side, max_tokens=keep),
                   lambda: len(prompts) * budget.pass_bytes(lm, keep))


def anatomy_files(model_name: str):
    return _shared(("anatomy", model_name), lambda: anatomy.two_files(get_model(model_name)))


def scale_rows(model_name: str, label: str) -> tuple:
    return _shared(("scale", model_name, label), lambda: anatomy.scale_table({label: get_model(model_name).config}))


def names_data(block_size: int):
    """The names, split 80/10/10 by name, as (context -> next character) examples."""
    return _shared(("names", block_size), lambda: makemore.load_data(block_size, seed=42))


def lr_sweep(block_size: int, n_embd: int, n_hidden: int, batch_size: int):
    return _shared(("lr_sweep", block_size, n_embd, n_hidden, batch_size),
                   lambda: makemore.lr_finder(makemore.MLPConfig(block_size, n_embd, n_hidden),
                                              names_data(block_size), batch_size=batch_size))


def overfit_run(block_size: int, n_names: int, n_hidden: int):
    return _shared(("overfit", block_size, n_names, n_hidden),
                   lambda: makemore.overfit_demo(names_data(block_size), n_names=n_names, n_hidden=n_hidden))


def knockout(model_name: str):
    """The Interventions page's named experiment: copying with the strongest induction heads switched off."""
    return _shared(("knockout", model_name),
                   lambda: interventions.knockout_copying(get_model(model_name), head_roles(model_name)))


def curated_neuron(model_name: str):
    """The MLP page's curated neuron for this model, with its activations on the example sentence and its
    report on sentences its search never saw; None when the model has none."""
    import re

    from explainer import content

    found = content.CURATED_NEURON.get(model_name)
    if found is None:
        return None
    layer, neuron, label, example = found

    def make():
        lm = get_model(model_name)
        is_number = lambda t: re.fullmatch(content.NUMBER_PATTERN, t) is not None   # noqa: E731
        tr = ex.trace(lm, example)
        return {"layer": layer, "neuron": neuron, "label": label, "tokens": tr.tokens,
                "acts": mlp.neuron_activation(tr, layer, neuron), "code": snippets.mlp_neuron(lm, tr, layer, neuron),
                "report": mlp.neuron_report(lm, layer, neuron, content.NUMBER_CHECK, is_number)}
    return _shared(("curated_neuron", model_name), make)


def glove_vectors():
    if ("glove",) not in budget.RESULTS:
        with st.spinner("Loading the GloVe word vectors (once)…"):
            return _shared(("glove",), glove.load)
    return _shared(("glove",), glove.load)


def model_label(name: str) -> str:
    if name == BUNDLED:
        return BUNDLED_LABEL
    return f"{HUB_MODELS[name]} — {name} · needs a download" if name in HUB_MODELS else name


# -- page scaffold ------------------------------------------------------------------------------

_CSS = """
<style>
  html, body, [class*="css"] { font-size: 18px; }
  .tok-row { line-height: 2.6; }
  .tok { display: inline-block; padding: 2px 6px; margin: 2px; border-radius: 6px;
         font-family: ui-monospace, Menlo, monospace; white-space: pre; border: 1px solid #0002; }
  .tok small { display: block; font-size: 0.65em; color: #555; text-align: center; line-height: 1.1; }
</style>
"""


def page(title: str, intro: str = "", icon: str = "🔎") -> ex.LoadedModel | None:
    """Common page set-up: the app's own navigation, the link's state, config, style, sidebar with the
    model picker. Returns the model in use, or None (with a message already shown) when no model loaded."""
    _through_app_navigation()
    heap.settle()          # a page's first run imported modules: freeze them (explainer/heap.py)
    try:
        st.set_page_config(page_title=f"{title} · Inside a GPT", page_icon=icon, layout="wide")
    except st.errors.StreamlitAPIException:
        pass  # already set by an including page
    st.markdown(_CSS, unsafe_allow_html=True)
    top = st.container()                     # the lesson player and the title
    _run.box, _run.said = st.container(), set()
    for message in ss.get("_notices", []):   # still shown after a rerun, until the user moves a control
        notice(message)
    link_in()
    pos = _run.position = _lesson_position()
    if shown_section() is not None:
        # The presenter view of one section: the player on the left, the section on the right, where every
        # later element of this run goes (Streamlit starts each run on the main area again).
        panel, right = top.columns([5, 7], gap="medium")
        right.__enter__()
        st.container(key="present_section").__enter__()    # scaled to the screen's height by _FIT_JS
        heading = st.container()
    else:
        panel = top.container()              # the lesson player, above the title, when a lesson runs
        heading = top.container()
    with heading:
        if reading_only():
            st.title(title)       # the presenter view of a section: the step's title says it
        ss._page_title = title    # names the files a chart or table is saved as
        if intro and not pos.present:        # presenter view: the step's narration says what the page is for
            st.markdown(intro)   # body text, not a grey caption: the class reads it from the back of the room
    lm = sidebar_model()
    own_lesson_sidebar(lm)                   # "Add this view as a step" (a lesson of the teacher's own)
    if lm is not None and getattr(lm, "notice", None):   # e.g. a read-only cache: the model runs from memory
        st.warning(lm.notice)
    if pos.running:
        _player(panel, lm, pos)
    return lm


def _through_app_navigation() -> None:
    """Every way into the app goes through streamlit_app.py's navigation.

    Until some run has called st.navigation, a Streamlit server whose main script has a pages/ folder
    beside it serves a deep link (/MLP_neurons as the first request) by running that file on its own,
    under a file-name navigation ("streamlit app", "Embeddings", ...). Then run the app's navigation here
    instead: it replaces that one, runs this same page by its URL, and this run stops."""
    if PagesManager.uses_pages_directory:
        runpy.run_path(str(APP), run_name="__main__")
        st.stop()


def traced_page(title: str, intro: str = "", icon: str = "🔎", compare: bool = False
                ) -> tuple[ex.LoadedModel, ex.Trace]:
    """page(), then the shared prompt box and its trace: what every view of the prompt starts with (with
    `compare`, the page has a compare mode: its switch under the prompt). Stops the page (its message already
    shown) when there is no model or the prompt cannot be traced."""
    lm = page(title, intro, icon)
    if lm is None:
        st.stop()
    tr = current_trace(lm, prompt_box(compare=compare))
    if tr is None:
        st.stop()
    trace_download(tr, int(ss.max_tokens))
    return lm, tr


def _init_state() -> None:
    """The session's model and prompt, from the link (or the defaults)."""
    link = _link()
    name = links.text("model", link["model"]).value.strip() if "model" in link else ""
    ss.model_name = name or BUNDLED
    own = ss.get("_prompt")
    ss._prompt = DEFAULT_PROMPT
    if "prompt" in link and own is not None and link["prompt"] == links.encode_prompt(own):
        ss._prompt = own    # what this session typed, which it wrote to the link: kept whole (no URL limit)
    elif "prompt" in link:
        m = links.prompt("prompt", link["prompt"], DEFAULT_PROMPT)
        ss._prompt = m.value
        if m.notice:
            notice(m.notice)
            update_link({"prompt": None if m.value == DEFAULT_PROMPT else links.encode_prompt(m.value)})


def _model_picked() -> None:
    ss._other_open = ss.model_pick == _OTHER
    if not ss._other_open:
        ss._model_wanted = ss.model_pick


def _model_typed() -> None:
    if ss.model_other.strip():
        ss._model_wanted = ss.model_other.strip()


def sidebar_model() -> ex.LoadedModel | None:
    """Model picker, restricted to what this server offers (EXPLAINER_MODELS). A failed load shows why and
    keeps the model the session had (and what was typed)."""
    _init_state()
    policy = allowed_models()
    offered = list(policy.choices)
    fallback = offered[0] if offered else BUNDLED
    if "model" not in _link() and ss.model_name == BUNDLED and BUNDLED not in offered:
        ss.model_name = fallback
    choices = [*offered, _OTHER] if policy.typing_allowed else offered
    current = ss.model_name
    wanted = ss.pop("_model_wanted", current)
    other = policy.typing_allowed and (ss.get("_other_open", False) or wanted not in choices)
    ss.model_pick = _OTHER if other else (wanted if wanted in choices else fallback)
    with st.sidebar:
        st.markdown("### Model")
        st.selectbox("Model", choices, key="model_pick", label_visibility="collapsed", on_change=_model_picked,
                     format_func=lambda n: n if n == _OTHER else model_label(n))
        if other:
            if wanted not in choices:
                ss.model_other = wanted
            st.text_input("Hub id or local folder", key="model_other", on_change=_model_typed,
                          placeholder="e.g. EleutherAI/pythia-70m or /models/gpt2")
        advanced = st.expander("Advanced", expanded=False)   # developer details, out of the class's sight
        tokens_box = advanced.container()
        _run.advanced = advanced.container()   # traced pages add the trace's download here (trace_download)
    if "model_error" in ss:
        st.sidebar.error(ss.pop("model_error"))
    lm = _load_with_progress(wanted)
    if lm is None and wanted != current:
        ss.model_error = ss.get("_last_load_error", "That model could not be loaded.")
        st.rerun()
    if lm is None and current != fallback:  # the link's model cannot be loaded here
        notice(f"The model in this link, {current!r}, could not be loaded: "
               f"{ss.get('_last_load_error', 'unknown error')} Showing {model_label(fallback)} instead.")
        set_link("model", None)
        ss.model_name = fallback
        lm = _load_with_progress(fallback)
    if lm is not None and wanted != current:
        ss.model_name = wanted
        set_link("model", None if wanted == BUNDLED else wanted)
    _max_tokens_box(tokens_box, lm)
    if lm is not None:
        dev = f"{lm.device.type}, {str(lm.dtype).removeprefix('torch.')}"
        advanced.caption(f"{lm.n_layers} layers · {lm.n_heads} heads · d_model {lm.d_model} · "
                         f"vocab {lm.vocab_size:,} · context {lm.n_ctx:,} · {dev}")
    return lm


MAX_TOKENS_CAP = 4096


def _max_tokens_box(where, lm: ex.LoadedModel | None) -> None:
    """The sidebar's token limit, drawn once the model is known: its maximum is what the memory budget allows
    for this model (a link asking for more is clamped, with a notice)."""
    hi, why = MAX_TOKENS_CAP, "Longer prompts keep their last tokens. Attention grows with tokens²."
    if lm is not None:
        limit = budget.token_limit(lm)
        if limit < MAX_TOKENS_CAP:
            hi = max(8, limit // 64 * 64 if limit >= 72 else limit)
            why += (f" This server's {budget.budget().describe()} allows at most {hi:,} tokens of this model.")
            raw = _link().get("max_tokens")
            try:
                over = raw is not None and float(raw) > hi
            except ValueError:
                over = False
            if over:
                notice(f"This server's {budget.budget().describe()} allows prompts of at most {hi:,} tokens of "
                       f"{lm.label} (attention grows with tokens²): the token limit is {hi:,}, not {raw}.")
    with where:
        number("max_tokens", "Max tokens per prompt", 8, hi, min(DEFAULT_MAX_TOKENS, hi), step=64, help=why)


def _onto(bar) -> Callable[[float, str], None]:
    """An engine's progress callback drawn on a Streamlit progress bar (its fraction kept within 0 and 1)."""
    return lambda frac, msg: bar.progress(min(max(frac, 0.0), 1.0), msg)


def _load_with_progress(name: str) -> ex.LoadedModel | None:
    box = st.empty()
    try:
        if name == BUNDLED and not bundled_ready():  # first run on this machine: a few seconds, with progress
            bar = box.progress(0.0, "Preparing the bundled model…")
            with _convert_lock():  # one conversion even when several sessions start at once
                prepare_bundled(_onto(bar))
        if name != BUNDLED and name not in budget.MODELS:   # a Hub model: its size, then its download's bytes
            bar = box.progress(0.0, f"Loading {model_label(name)}…")
            return get_model(name, progress=_onto(bar))
        with st.spinner(f"Loading {model_label(name)}…"):
            return get_model(name)
    except ex.ExplainerError as e:
        ss._last_load_error = str(e)
        return None
    finally:
        box.empty()


# -- the prompt ---------------------------------------------------------------------------------

PROMPT_BOUND = ("token", "window", "steps", "view")   # positions and steps of the old prompt mean nothing now


def _prompt_moved() -> None:
    ss._notices = []
    ss._prompt = ss.prompt_widget
    update_link({"prompt": None if ss._prompt == DEFAULT_PROMPT else links.encode_prompt(ss._prompt),
                 **dict.fromkeys(PROMPT_BOUND)})


def prompt_box(label: str = "Prompt", height: int = 90, help: str | None = None, compare: bool = False) -> str:
    """One prompt shared by every page and the link (long prompts are compressed there); with `compare`, the
    page's compare mode switch and its second prompt under it (compare_box)."""
    if not control_shown("prompt"):
        return ss._prompt
    ss.prompt_widget = ss._prompt
    st.text_area(label, key="prompt_widget", height=height, on_change=_prompt_moved, help=help)
    if compare:
        compare_box()
    return ss._prompt


# -- compare mode: a second prompt beside the first (explainer/compare.py), in the link as `compare` -----------

def _compare_switched() -> None:
    ss._notices = []
    update_link({"compare": links.encode_prompt(compare_mod.pair_prompt(ss._prompt)) if ss.compare_on else None})


def compare_prompt() -> str | None:
    """The second prompt of compare mode (None: compare mode is off), as the link has it."""
    raw = _link().get("compare")
    return None if raw is None else links.prompt("compare", raw, "").value


def compare_box() -> str | None:
    """The switch for compare mode and, when it is on, the second prompt (it starts as the first with he ↔ she,
    his ↔ her, … swapped). Returns the second prompt, or None."""
    on = "compare" in _link()
    if control_shown("compare"):
        ss.compare_on = on
        st.toggle("Compare with a second prompt", key="compare_on", on_change=_compare_switched,
                  help="Side by side: the same views for a second prompt, lined up with the first, and what "
                       "changed between them (“The doctor said that he” against “…she”).")
    if not on:
        return None
    return text("compare", "Second prompt", "", area=True, key="compare_widget", compress=True, height=68,
                help="Compared with the prompt above on this page's views; it stays as you move between pages.")


def compare_trace(lm: ex.LoadedModel) -> ex.Trace | None:
    """The second prompt's trace (cached and counted in the memory budget like the first), or None when compare
    mode is off or the second prompt cannot be traced (its message shown)."""
    text_b = compare_prompt()
    if text_b is None:
        return None
    try:
        with st.spinner("Running the model on the second prompt…"):
            tr = get_trace(lm.name, text_b, int(ss.max_tokens))
    except ex.ExplainerError as e:
        st.info(f"The second prompt: {e}")
        return None
    if tr.notice:
        st.warning(f"The second prompt: {tr.notice}")
    return tr


def current_trace(lm: ex.LoadedModel, text: str | None = None) -> ex.Trace | None:
    """Trace the (shared) prompt; show a clear message and return None on bad input."""
    text = ss._prompt if text is None else text
    try:
        with st.spinner("Running the model…"):
            tr = get_trace(lm.name, text, int(ss.max_tokens))  # max_tokens: the sidebar's linked control
    except ex.ExplainerError as e:
        st.info(str(e))
        return None
    if tr.notice:
        st.warning(tr.notice)
    return tr


# -- shared display helpers -------------------------------------------------------------------------

EXPORT_SCALE = 3   # a chart's camera button saves a PNG at 3× its size on screen: sharp on a handout or a slide


def code_expander(title: str, code: str) -> None:
    """The code behind a view (`explainer.snippets`): plain torch + transformers to paste into a notebook. Written
    for reading alone: the presenter view of a section (the projector) leaves it out."""
    if not reading_only():
        return
    with st.expander("The code behind this view"):
        st.markdown(f"**{title}** Plain PyTorch and transformers, with this view's settings filled in: paste it "
                    "into a notebook and it computes the numbers shown here.")
        st.code(code, language="python")


def trace_download(tr: ex.Trace, max_tokens: int) -> None:
    """'Download this trace (.npz)' in the sidebar's Advanced expander: every array of the trace under its hook
    name (Trace.to_npz), to carry on in a notebook, TransformerLens or CircuitsVis. The file is made on the
    click (it is large: about 0.6 MB a token for the bundled model), from the trace cache by name."""
    where = getattr(_run, "advanced", None) or st.sidebar
    trace = again(tr, max_tokens)
    help_ = ("Every array of this prompt's trace, under TransformerLens's hook names: "
             "`d = numpy.load('trace.npz')`, then `d['blocks.3.attn.hook_pattern']` ([heads, T, T]), "
             "`d['blocks.3.mlp.hook_post']`, `d['logits']`, `list(d['tokens'])`. CircuitsVis: "
             "`attention_patterns(tokens=list(d['tokens']), attention=d['blocks.3.attn.hook_pattern'])`.")
    label = "Download this trace (.npz)"
    file_name = f"trace-{len(tr.tokens)}-tokens.npz"
    # the data is a callable, run on the click (Streamlit ≥ 1.52): a 256-token trace is 155 MB
    where.download_button(label, lambda: trace().to_npz(), file_name=file_name,
                          mime="application/zip", key="trace_download", on_click="ignore", help=help_)

def handout_download(lesson, lm: ex.LoadedModel, key: str | None = None) -> None:
    """"Download the handout (HTML)": the lesson as one self-contained HTML file (`explainer.handout.build`:
    every step's text, question, answer and interactive figure, plotly.js inside, so it opens with no network).
    The file is built on the click (Streamlit ≥ 1.52 runs the callable then; Streamlit commands inside it are
    ignored, so the button's own busy state is the progress shown), once per lesson and model, within the
    memory budget."""
    name, text = lm.name, lesson.text

    def make() -> bytes:
        return _shared(("handout", name, lesson.name, text),
                       lambda: handout.build(lesson, get_model(name)).encode("utf-8"))   # weighed by its length

    st.download_button("Download the handout (HTML)", make, file_name=f"{lesson.name}-handout.html",
                       mime="text/html", key=key or f"handout_{lesson.name}", icon=":material/download:",
                       on_click="ignore",
                       help=f"One HTML file with every step of “{lesson.title}”: the narration, the questions with "
                            "their answers, and each step's chart, interactive, computed with "
                            f"{lm.label}. It opens offline in any browser and prints one step a page. Building it "
                            "runs every step (up to half a minute).")


def lesson_download(lesson, key: str | None = None) -> None:
    """"Download the lesson file (.toml)": the lesson's source as it was loaded, to edit and load again."""
    st.download_button("Download the lesson file (.toml)", handout.lesson_file(lesson), file_name=f"{lesson.name}.toml",
                       mime="application/toml", key=key or f"lesson_file_{lesson.name}", icon=":material/download:",
                       on_click="ignore", help="The lesson as a TOML file: edit it in any text editor "
                                               "(the format is in explainer/lessons.py) and share it.")


def chart(fig, key: str | None = None, present_height: int = 0, **kw) -> None:
    """A plotly chart as wide as its column; its camera button saves `<page>-<title>.png` at EXPORT_SCALE. In the
    presenter view of a section it is at most PRESENT_CHART_HEIGHT (or `present_height`) high."""
    config = {"toImageButtonOptions": {"format": "png", "scale": EXPORT_SCALE,
                                       "filename": export_name(_page_name(), figure_title(fig), key)},
              "displaylogo": False}
    cap = present_height or PRESENT_CHART_HEIGHT
    if shown_section() is not None and (fig.layout.height or 450) > cap:
        fig.update_layout(height=cap)       # the presenter view: the chart fits beside the narration
    preset_margins(fig)                     # drawn once in the browser, not again to make room for its labels
    st.plotly_chart(fig, width="stretch", key=key, config=config, **kw)


def _page_name() -> str:
    """The running page's title, as `page()` set it."""
    return str(ss.get("_page_title", "Inside a GPT"))


def table_download(label: str, make: Callable[[], str], name: str, key: str) -> None:
    """The data behind a chart as a CSV file, `<page>-<name>.csv`; `make` builds it only when the button is
    pressed (a 512-token pattern is 131,000 rows), and pressing it does not rerun the page."""
    st.download_button(label, make, file_name=f"{export_name(_page_name(), name, None)}.csv", mime="text/csv",
                       key=key, icon=":material/download:", on_click="ignore")


def term(name: str, shown: str | None = None) -> str:
    """A technical term in bold with its plain definition in brackets, for the place where a page first uses
    it (a class on a projector cannot see a hover). `name` is a key of content.GLOSSARY; `shown` the words
    as they read in the sentence (a plural, say)."""
    return f"**{shown or name}** ({GLOSSARY[name]})"


def token_chips(tokens, ids=None, colors=None, titles=None) -> None:
    """Tokens as coloured chips with their ids underneath (hover shows the title)."""
    palette = TOKEN_TINTS
    parts = []
    for i, t in enumerate(tokens):
        bg = colors[i] if colors else palette[i % len(palette)]
        sub = f"<small>{ids[i]}</small>" if ids is not None else ""
        tip = html.escape(titles[i] if titles else f"position {i}", quote=True)
        parts.append(f'<span class="tok" style="background:{bg}" title="{tip}">'
                     f"{html.escape(show_token(t))}{sub}</span>")
    st.markdown(f'<div class="tok-row">{"".join(parts)}</div>', unsafe_allow_html=True)


# -- the link: every control that changes what a page shows lives in the URL -------------------------
# One mechanism for every page. The session's link state, ss["_link"] ({name: value as written in the
# URL}), is the source of truth: a control reads its value from it before it is drawn, and its on_change
# callback writes the new value back (and to the URL) before the rerun. A name absent from the link means
# "the page's default", so defaults that depend on the prompt still follow it. Streamlit's own
# bind="query-params" is not used: it keys bindings by page, so `layer` on Attention and on MLP neurons
# would be two parameters, it drops every parameter on a page switch, and it discards a bad value
# silently, where the contract wants one name across pages, parameters kept for the next page and a notice
# for every value that had to be mended (measured with Streamlit 1.67; see ARCHITECTURE.md).

def _link() -> dict[str, str]:
    if "_link" not in ss:
        ss._link = {}
    return ss._link


def link_in() -> None:
    """At the top of every run: adopt a link that came from outside (the first request, a pasted URL, the
    browser's back button), or put the session's link back after a page switch cleared the URL."""
    qp = _url()
    written = ss.get("_link_written")
    _run.new_link = False
    if written is not None and (qp == written or not qp):
        _write_link()           # nothing new (or a page switch emptied the URL): the session's link stays
        return
    _run.new_link = True
    unknown = [k for k in qp if k not in links.NAMES]
    ss._link = {k: v for k, v in qp.items() if k in links.NAMES}
    if note := links.unknown_notice(unknown):
        notice(note)
    _write_link()


def _url() -> dict[str, str]:
    """The URL's parameters as they are now (the last value of a repeated one)."""
    return {k: st.query_params.get(k) for k in st.query_params}


def _write_link() -> None:
    link = dict(_link())
    ss._link_written = link
    if _url() != link:
        st.query_params.from_dict(link)


def update_link(changes: dict[str, str | None]) -> None:
    """Set parameters of the session's link (None drops one), then write the URL once."""
    link = _link()
    for name, value in changes.items():
        if value is None:
            link.pop(name, None)
        else:
            link[name] = value
    _write_link()


def set_link(name: str, value: str | None) -> None:
    """Set (or, with None, drop) one parameter of the session's link and the URL."""
    update_link({name: value})


def linked_number(name: str, lo: int, hi: int, default: int) -> int:
    """The link's whole number `name` (clamped), or `default`, without drawing a widget: for what a page needs
    before the control that sets it is drawn (that control shows any notice)."""
    raw = _link().get(name)
    return default if raw is None else links.number(name, raw, lo, hi, default, True).value


def link_is_new() -> bool:
    """Whether this run adopted a link from outside (so page state derived from the old link must yield)."""
    return getattr(_run, "new_link", False)


def link_value(name: str) -> str | None:
    return _link().get(name)


def notice(message: str) -> None:
    """A visible note at the top of the page (once per run), e.g. for a link value that had to be mended."""
    said = getattr(_run, "said", None)
    if said is None or message in said:
        return
    said.add(message)
    kept = ss.setdefault("_notices", [])
    if message not in kept:
        kept.append(message)
    try:
        _run.box.warning(message, icon=":material/link:")
    except Exception:  # noqa: BLE001 - a fragment rerun cannot write to the page's box: write in place
        st.warning(message, icon=":material/link:")


def _moved(name: str, key: str, show: Callable[[Any], str], resets: Sequence[str]) -> None:
    ss._notices = []   # the user has acted: the link's notices have been read
    update_link({name: show(ss[key]), **dict.fromkeys(resets)})


def _bound(name: str, key: str | None, draw: Callable[..., Any], mend: Callable[[str], links.Mended],
           default: Any, show: Callable[[Any], str] = str, resets: Sequence[str] = (), typed: bool = False) -> Any:
    """Draw one widget whose value is the link's `name` (or `default`), mended with a notice when the link's
    value is bad; moving it writes the link and drops the parameters in `resets` (which depend on it).

    `typed` (free text): when the link holds exactly what this session's box wrote, the box keeps its own
    value unmended, so a text longer than a link may carry (links.MAX_VALUE_CHARS) is not cut under the user's
    hands; the same link opened elsewhere is still mended. (Not for ranges: their bounds move with the prompt.)"""
    key = key or name
    raw = _link().get(name)
    value = default
    drawn = control_shown(name)
    own = ss.get(key) if typed else None
    if raw is not None and isinstance(own, str) and "\x00" not in own and show(own) == raw:
        value = own
    elif raw is not None:
        m = mend(raw)
        value = m.value
        if m.notice:
            notice(m.notice)
            set_link(name, None if value == default else show(value))
    ss[key] = value
    if not drawn:        # the presenter view of a section that does not name it: the value without the control
        return value
    return draw(key=key, on_change=_moved, args=(name, key, show, tuple(resets)))


def _where(where):
    return where if where is not None else st


def _num_show(integer: bool) -> Callable[[Any], str]:
    return (lambda v: str(int(v))) if integer else (lambda v: f"{float(v):g}")


def slider(name: str, label: str, lo: float, hi: float, default: float, *, step: float | None = None,
           key: str | None = None, where=None, resets: Sequence[str] = (), **kw: Any) -> Any:
    integer = all(isinstance(v, int) for v in (lo, hi, default))
    return _bound(name, key, lambda **a: _where(where).slider(label, lo, hi, step=step, **a, **kw),
                  lambda raw: links.number(name, raw, lo, hi, default, integer), default, _num_show(integer),
                  resets)


def range_slider(name: str, label: str, lo: int, hi: int, default: tuple[int, int], *, key: str | None = None,
                 where=None, **kw: Any) -> tuple[int, int]:
    """A two-handled slider over whole numbers, written `first,last` in the link."""
    return _bound(name, key, lambda **a: _where(where).slider(label, lo, hi, **a, **kw),
                  lambda raw: links.int_range(name, raw, lo, hi, default), tuple(default),
                  lambda v: f"{int(v[0])},{int(v[1])}")


def number(name: str, label: str, lo: float, hi: float, default: float, *, step: float = 1,
           key: str | None = None, where=None, **kw: Any) -> Any:
    integer = all(isinstance(v, int) for v in (lo, hi, default, step))
    return _bound(name, key, lambda **a: _where(where).number_input(label, min_value=lo, max_value=hi, step=step,
                                                                     **a, **kw),
                  lambda raw: links.number(name, raw, lo, hi, default, integer), default, _num_show(integer))


def select(name: str, label: str, options: Sequence[Any], default: Any, *, widget: str = "selectbox",
           key: str | None = None, where=None, show: Callable[[Any], str] = str, resets: Sequence[str] = (),
           **kw: Any) -> Any:
    """A selectbox, radio or select_slider (`widget`) over `options`, written in the link by `show`."""
    options = list(options)
    return _bound(name, key, lambda **a: getattr(_where(where), widget)(label, options, **a, **kw),
                  lambda raw: links.choice(name, raw, options, default, show), default, show, resets)


def flag(name: str, label: str, default: bool, *, widget: str = "toggle", key: str | None = None, where=None,
         **kw: Any) -> bool:
    return _bound(name, key, lambda **a: getattr(_where(where), widget)(label, **a, **kw),
                  lambda raw: links.flag(name, raw, default), default, lambda v: str(int(bool(v))))


def text(name: str, label: str, default: str = "", *, area: bool = False, key: str | None = None, where=None,
         compress: bool = False, **kw: Any) -> str:
    """A text input (or area); `compress` writes long texts in the link as a prompt is written."""
    draw = (_where(where).text_area if area else _where(where).text_input)

    def mend(raw: str) -> links.Mended:
        m = links.prompt(name, raw, default) if compress else links.text(name, raw)
        limit = kw.get("max_chars")
        if limit and len(m.value) > limit:
            return links.Mended(m.value[:limit], f"`{name}` is limited to {limit} characters here: kept the first "
                                                 f"{limit}.")
        return m

    return _bound(name, key, lambda **a: draw(label, **a, **kw), mend, default,
                  links.encode_prompt if compress else str, typed=True)


def many(name: str, label: str, options: Sequence[Any], default: Sequence[Any] = (), *, key: str | None = None,
         where=None, show: Callable[[Any], str] = str, **kw: Any) -> list:
    options = list(options)
    return _bound(name, key, lambda **a: _where(where).multiselect(label, options, **a, **kw),
                  lambda raw: links.many(name, raw, options, show), list(default),
                  lambda v: ",".join(show(o) for o in v))


def tabs(labels: dict[str, str], name: str = "tab") -> Sequence:
    """st.tabs whose open tab is the link's `tab`, written as the short names that key `labels`. A short
    name of another page's tabs stays in the link for that page, without a notice."""
    short = {v: k for k, v in labels.items()}
    first = next(iter(labels.values()))

    def mend(raw: str) -> links.Mended:
        if raw in labels:
            return links.Mended(labels[raw])
        if raw in links.TAB_NAMES:
            return links.Mended(first)
        return links.Mended(first, f"`{name}={raw[:40]}` is not a tab here: showing “{first}”.")

    if shown_section() is not None:      # the presenter view of one tab's section: that one, with no tab bar
        _bound(name, None, lambda **a: None, mend, first, lambda v: short[v])   # the link's tab, mended
        return [st.container()] * len(labels)
    return _bound(name, None, lambda **a: st.tabs(list(labels.values()), **a), mend, first, lambda v: short[v])


# -- the lesson player: a running lesson in the link (`lesson`, `step`, `present`), drawn above the page ------
# The logic (which lesson and step a link names, the link that opens a step, each view's page file) is
# explainer/player.py; this only renders it. Moving to a step puts the step's link in the URL, so the next run
# adopts it as a link from outside: every control shows the step's value, names left out take the page's
# default, and a step on another page is opened there with st.switch_page.

_LESSONS: dict[str, Any] = {}
_LESSONS_LOCK = threading.Lock()
PLAYER_KEYS = {"player_next": ("ArrowRight", "PageDown"), "player_back": ("ArrowLeft", "PageUp"),
               "player_reveal": ("r", "R")}


def lessons_folder() -> Path:
    """The lessons' folder: assets/lessons/, or EXPLAINER_LESSONS."""
    import os

    return Path(os.environ.get("EXPLAINER_LESSONS") or lessons.LESSONS_DIR)


def lessons_loaded() -> lessons.Loaded:
    """Every lesson of the folder (and the errors of those that did not load), parsed again only when a file
    changes (its name, size or time)."""
    folder = lessons_folder()
    try:
        sig = (str(folder), *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.toml"))))
    except OSError:
        sig = (str(folder), "unreadable")
    with _LESSONS_LOCK:
        if _LESSONS.get("sig") != sig:
            _LESSONS.update(sig=sig, loaded=lessons.load_all(folder))
        loaded = _LESSONS["loaded"]
    return lesson_edit.WithOwn(loaded.lessons, loaded.errors, own=_own_in_session())   # this session's own too


def lesson_answer(model_name: str, lesson_name: str, number: int) -> lessons.Answer:
    """A step's answer, computed live from the model and shared like every other result, per (model, lesson,
    step); the head-role scores are the Attention page's own cached ones."""
    step = lessons_loaded().get(lesson_name).step(number)
    q = step.question

    def make() -> lessons.Answer:
        memo: dict = {}
        if q.kind in ("induction_head", "strongest_head") or (q.kind == "ablation_effect" and
                                                              q.inputs.get("heads") == "induction"):
            memo[("head_scores",)] = head_roles(model_name)
        return lessons.answer(q, get_model(model_name), memo)
    return _shared(("answer", model_name, lesson_name, number, repr(q)), make)


def lesson_problems(model_name: str, lesson_name: str) -> tuple:
    """What of the lesson the model in use does not have (lessons.validate_for), once per model and lesson."""
    lesson = lessons_loaded().get(lesson_name)
    return _shared(("lesson_fit", model_name, lesson_name, repr(lesson.steps)),
                   lambda: lessons.validate_for(lesson, get_model(model_name)))


def in_navigation(pages: dict[str, Any], current: str) -> None:
    """Called by streamlit_app.py's navigation before it runs a page: the pages by view, and the view running."""
    _run.nav = (pages, current)


def current_view() -> str:
    """The view this run draws: the navigation's page, or the page file run on its own (as AppTest runs one)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    main = Path(ctx.main_script_path) if ctx is not None else APP
    if main.name == APP.name and getattr(_run, "nav", None):
        return _run.nav[1]
    return player.view_of_file(main)


def _lesson_position() -> player.Position:
    """The link's lesson position, its bad values mended with a notice; a link from outside that names a step
    opens it: on its own page with the step's state (a link naming only the step), or there with st.switch_page."""
    link = _link()
    if not any(n in link for n in player.PARAMS):
        return player.Position()
    pos = player.position(lessons_loaded(), link)
    for message in pos.notices:
        notice(message)
    mended = pos.mended()
    if any(link.get(k) != v for k, v in mended.items()):
        update_link(mended)
    if pos.running and link_is_new():
        view, target = current_view(), pos.step.view
        if view != target or player.only_player(_link()):
            _open_step(pos, pos.number, view)
    return pos


def _open_step(pos: player.Position, number: int, view: str | None = None) -> None:
    """Put step `number`'s link in place: this run's link when the step is on this page, else switch there."""
    link = player.step_link(pos.lesson, number, pos.present, model=_link().get("model"))
    target = pos.lesson.step(number).view
    view = view or current_view()
    if target == view:
        ss._link = link
        _write_link()
        _run.new_link = True
        return
    pages = getattr(_run, "nav", None)
    if pages and target in pages[0]:
        ss._link_written = None             # whatever the next page's URL holds is a link from outside
        st.switch_page(pages[0][target], query_params=link)
    ss._player_elsewhere = target           # a page run on its own cannot switch: say where the step is


def _go(number: int) -> None:
    """Next, Back, or the step's own settings again: the step's link in the URL, adopted by the next run."""
    pos = player.position(lessons_loaded(), _link())
    if not pos.running:
        return
    ss._notices = []
    ss._player_shown = None
    st.query_params.from_dict(player.step_link(pos.lesson, number, pos.present, model=_link().get("model")))


def _end_lesson() -> None:
    ss._notices = []
    _close_poll()
    update_link(dict.fromkeys(player.PARAMS))


def _reveal(key: tuple) -> None:
    ss._player_shown = key
    room = ss.get(_POLL_KEY)
    if room is not None:
        try:
            poll.STORE.reveal(room["code"], room["secret"])
        except poll.PollError:
            pass          # the panel's next run says what happened to the room


_PRESENT_CSS = """
<style>
  /* Presenter view: no sidebar, large type, the step at the top. 20 px body text at 1280 px, 24 px from 1600 px. */
  [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
  header[data-testid="stHeader"] { display: none !important; }
  html, body, [class*="css"] { font-size: 20px; }
  @media (min-width: 1600px) { html, body, [class*="css"] { font-size: 24px; } }
  [data-testid="stMainBlockContainer"] { padding: 0.5rem 1.5rem 2rem 1.5rem; max-width: 100%; }
  [data-testid="stElementContainer"]:has([data-testid="stMarkdownContainer"] > style):not(:has(p)) { display: none; }
  [data-testid="stMain"] h1 { font-size: 1.6rem; padding: 0.2rem 0 0.2rem 0; }
  .st-key-player [data-testid="stMarkdownContainer"] p { margin-bottom: 0.2rem; }
  .st-key-player { gap: 0.5rem; }
  [data-testid="stMain"] textarea, [data-testid="stMain"] input { font-size: 1rem; }
  [data-testid="stWidgetLabel"] p { font-size: 0.9rem; }
</style>
"""

_SECTION_CSS = """
<style>
  /* The presenter view of one section: the narration says what the page's own explanations say (captions,
     headings, notes), and what is for working alone (the code, the CSV files) waits for the normal view. */
  [data-testid="stMain"] [class*="st-key-section-"] [data-testid="stCaptionContainer"],
  [data-testid="stMain"] [class*="st-key-section-"] [data-testid="stHeading"],
  [data-testid="stMain"] [class*="st-key-section-"] [data-testid="stExpander"],
  [data-testid="stMain"] [class*="st-key-section-"] [data-testid="stDownloadButton"],
  [data-testid="stMain"] [class*="st-key-section-"] hr { display: none; }
  [data-testid="stMain"] [class*="st-key-section-"] [data-testid="stElementContainer"]:has(
      > [data-testid="stCaptionContainer"], > [data-testid="stHeading"], > [data-testid="stExpander"],
      > [data-testid="stDownloadButton"], > div > hr) { display: none; }
  [class*="st-key-section-silent-"] { display: none; }
  [data-testid="stMain"] [data-testid="stMetricValue"] { font-size: 1.6rem; }
  [data-testid="stMainBlockContainer"] { padding-top: 0.6rem; padding-bottom: 0.4rem; }
</style>
"""

_PLAYER_CSS = """
<style>
  .st-key-player_keys { display: none; }
  .player-lesson { color: #555; font-size: 0.85em; display: inline-block; margin-bottom: 0.3rem; }
  .poll-code { font-size: 2.2rem; line-height: 1.2; }
  .poll-code b { font-size: 3.4rem; letter-spacing: 0.18em; font-family: ui-monospace, Menlo, monospace; }
</style>
"""

_KEYS_JS = """
<script>
(() => {
  if (window.__lessonKeys) return;
  window.__lessonKeys = true;
  const KEYS = %s;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const button = Object.keys(KEYS).find(k => KEYS[k].includes(e.key));
    if (!button) return;
    const t = e.target;
    // keys typed into a box or moving a slider stay theirs (a toggle or checkbox keeps the focus: not those)
    if (t && t.closest && t.closest('input:not([type="checkbox"]):not([type="radio"]), textarea, select, ' +
        '[contenteditable="true"], [role="slider"], [role="combobox"], [role="listbox"], [role="spinbutton"]')) return;
    const b = document.querySelector(`.st-key-${button} button`);
    if (!b || b.disabled) return;
    e.preventDefault();
    b.click();
  }, true);
})();
</script>
"""


# The presenter view of a section fits the screen's height like a slide: when the section is taller than the
# room under its top, it is scaled down (CSS zoom) to fit, never below FIT_FLOOR; the sections are laid out so
# that on the built-in steps it rarely needs to (tests/test_e2e.py measures the scale of every step).
FIT_FLOOR = 0.6
_FIT_JS = """
<script>
(() => {
  if (window.__presentFit) return;
  window.__presentFit = true;
  const FLOOR = %s;
  let busy = false, seen = '', ceiling = 2;
  const fit = () => {
    const el = document.querySelector('.st-key-present_section');
    if (!el || busy) return;
    busy = true;
    const zoom = parseFloat(el.style.zoom || '1');
    const box = el.getBoundingClientRect();
    // the zoomed box can end above its own content (a list in a column ran 15 px past it): scrollHeight has it all
    const natural = Math.max(box.height / zoom, el.scrollHeight), room = window.innerHeight - box.top - 24;
    // Text laid out at a smaller zoom wraps into fewer lines, so a zoom that fits can make a larger one look
    // as if it fits too, which then overflows: it swung between the two (0.73 and 0.76 at 1300 x 700, the page
    // scrolling 15 px half the time). A zoom seen to overflow is a ceiling until the screen or the text changes.
    const now = window.innerWidth + 'x' + window.innerHeight + ':' + el.innerText.length;
    if (now !== seen) { seen = now; ceiling = 2; }
    if (natural * zoom > room + 1) ceiling = Math.min(ceiling, zoom);
    let want = Math.max(FLOOR, Math.min(1, room / natural));
    if (want > zoom) want = Math.max(zoom, Math.min(want, ceiling - 0.02));
    if (Math.abs(want - zoom) > 0.01) { el.style.zoom = String(want); el.dataset.fit = want.toFixed(2); }
    else el.dataset.fit = zoom.toFixed(2);
    busy = false;
  };
  new ResizeObserver(fit).observe(document.body);
  new MutationObserver(() => requestAnimationFrame(fit)).observe(document.body, {childList: true, subtree: true});
  setInterval(fit, 500);
})();
</script>
"""


def _player(panel, lm: ex.LoadedModel | None, pos: player.Position) -> None:
    """The running lesson's panel: where we are, Back / Next, the narration, the question and its reveal, the
    suggestions, the presenter toggle and End lesson. Compact: the step's page comes right below it."""
    import json

    lesson, step = pos.lesson, pos.step
    view = current_view()
    elsewhere = ss.pop("_player_elsewhere", None) or (step.view if step.view != view else None)
    shown_key = (lesson.name, step.number)
    with panel, st.container(key="player_keys"):    # hidden (display: none): the styles and the script take no room
        st.markdown(_PLAYER_CSS + (_PRESENT_CSS if pos.present else "")
                    + (_SECTION_CSS if shown_section() is not None else ""), unsafe_allow_html=True)
        st.html(_KEYS_JS % json.dumps(PLAYER_KEYS), unsafe_allow_javascript=True)
        if shown_section() is not None:
            st.html(_FIT_JS % FIT_FLOOR, unsafe_allow_javascript=True)
    with panel, st.container(border=True, key="player"):
        # one row that wraps: the step's name takes what the buttons (at their own width) leave; beside a
        # section, the name above the buttons
        title = st.container() if shown_section() is not None else None
        row = st.container(horizontal=True, vertical_alignment="center", gap="small")
        (title or row).markdown(f"**Step {step.number} of {pos.total} · {html.escape(step.title)}**  \n"
                                f'<span class="player-lesson">{html.escape(lesson.title)}</span>',
                                unsafe_allow_html=True, width="stretch")
        back = nxt = pres = end = row
        back.button("◀ Back", key="player_back", disabled=not pos.has_back(), on_click=_go,
                    args=(step.number - 1,), help="Previous step (← or Page Up)")
        nxt.button("Next ▶", key="player_next", disabled=not pos.has_next(), on_click=_go, args=(step.number + 1,),
                   type="primary", help="Next step (→ or Page Down)")
        flag("present", "Presenter view", False, key="player_present", where=pres,
             help="For a projector: no sidebar, large type. Keys: → next, ← back, R reveals.")
        end.button("End lesson", key="player_end", on_click=_end_lesson)
        st.markdown(step.narration)
        if elsewhere:
            st.info(f"This step is on the {_view_title(elsewhere)} page.", icon=":material/info:")
        if lm is not None:
            for problem in lesson_problems(lm.name, lesson.name):
                if problem.step == step.number:
                    st.warning(str(problem))
        q, tail = step.question, []
        narrow = shown_section() is not None      # the player beside a section: buttons under the question
        if q is not None:
            if narrow:
                qcol, rcol = st.container(), st.container(horizontal=True, gap="small")
            else:
                qcol, rcol = st.columns([6, 1.6], vertical_alignment="center")
            qcol.markdown(f"**Question:** {q.text}")
            rcol.button("Reveal (R)", key="player_reveal", on_click=_reveal, args=(shown_key,),
                        width="content" if narrow else "stretch",
                        disabled=ss.get("_player_shown") == shown_key or lm is None)
            if ss.get(_POLL_KEY) is None:
                rcol.button("Open a class poll", key="player_poll_open", on_click=_open_poll,
                            width="content" if narrow else "stretch",
                            icon=":material/how_to_vote:",
                            help="Students join on their phones by a code or a QR code and guess; the tally "
                                 "shows here, and beside the answer after Reveal.")
            shown = ss.get("_player_shown") == shown_key and lm is not None
            answer_at, tally_at = st.container(), None
            if shown and ss.get(_POLL_KEY):      # the answer beside the class's guesses (narrow: under them)
                answer_at, tally_at = (st.container(), st.container()) if narrow else st.columns([1, 1])
            if shown:
                try:
                    with answer_at, st.spinner("Working out the answer on this model…"):
                        a = lesson_answer(lm.name, lesson.name, step.number)
                    answer_at.success(f"**Answer:** {md_escape(a.text)}")   # model text: as it is, not as Markdown
                except ex.ExplainerError as e:
                    answer_at.info(f"This model cannot answer that: {e}")
        if ss.get(_POLL_KEY) is not None:
            _poll_panel(lesson.name, step.number, q.text if q is not None else None,
                        revealed=q is not None and ss.get("_player_shown") == shown_key,
                        tally_at=tally_at if q is not None else None)
        if step.tries:
            tail.append("**Try this:** " + " · ".join(step.tries))
        if tail:
            st.markdown("  \n".join(tail))
        if _step_changed(pos) or elsewhere:
            st.button("Back to the step's settings", key="player_restore", on_click=_go, args=(step.number,),
                      icon=":material/restart_alt:")


# -- the class poll (explainer/poll.py): the teacher's side in the player, the student's page (pages/11_Join.py) ---
# The room's secret lives only in the teacher's session (ss[_POLL_KEY]); a student's page holds a random id of its
# own and the room code from its link, never the secret. Both sides poll the store with a run_every fragment.

_POLL_KEY = "_poll_teacher"          # {"code": ..., "secret": ...}: the teacher's session only
_STUDENT_KEY = "_poll_student"       # a random id per browser session: anonymous, no account
POLL_EVERY = 2                       # seconds between the fragments' reads of the store
TALLY_ROWS = 10                      # guesses listed; the rest are counted on one line


def _open_poll() -> None:
    try:
        code, secret = poll.STORE.open_room()
    except poll.PollError as e:
        ss._poll_error = str(e)
        return
    ss[_POLL_KEY] = {"code": code, "secret": secret}


def _close_poll() -> None:
    room = ss.pop(_POLL_KEY, None)
    if room is not None:
        try:
            poll.STORE.close(room["code"], room["secret"])
        except poll.PollError:
            pass           # already gone (expired): nothing to close


def app_base_url() -> str:
    """The app's address as the browser sees it (scheme, host, port, any base path), without the page's path:
    st.context.url (Streamlit ≥ 1.45) where there is a browser, else the Host header, else localhost."""
    url = None
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no script context (a test): the fallbacks below
        url = None
    if url:
        url = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        view = current_view()
        if view != "Home" and url.endswith("/" + view):
            url = url[: -len(view) - 1]
        return url
    try:
        host = st.context.headers.get("Host")
    except Exception:  # noqa: BLE001
        host = None
    return f"http://{host or 'localhost:%s' % st.get_option('server.port')}"


def join_url(code: str) -> str:
    return f"{app_base_url()}/Join?room={code}"


_QR_CACHE: dict[str, bytes] = {}
_QR_LOCK = threading.Lock()


def qr_png(url: str) -> bytes:
    """A QR code of `url` as PNG bytes (segno: pure Python), a few per process kept."""
    import io

    import segno

    with _QR_LOCK:
        if url not in _QR_CACHE:
            buf = io.BytesIO()
            segno.make(url, error="m").save(buf, kind="png", scale=8, border=2)
            if len(_QR_CACHE) > 32:
                _QR_CACHE.clear()
            _QR_CACHE[url] = buf.getvalue()
        return _QR_CACHE[url]


def _poll_panel(lesson_name: str, number: int, question: str | None, revealed: bool, tally_at=None) -> None:
    """The teacher's poll in the player: the room code in large type, the join link's QR code, the live tally
    (beside the answer once revealed). The step's question is put to the room on every run (the same one again
    changes nothing; the next step's starts a new round)."""
    room = ss[_POLL_KEY]
    code, secret = room["code"], room["secret"]
    try:
        poll.STORE.set_question(code, secret, lesson_name, number, question)
        if revealed:
            poll.STORE.reveal(code, secret)
    except poll.PollError as e:
        ss.pop(_POLL_KEY, None)
        st.warning(f"The class poll has closed: {e}", icon=":material/how_to_vote:")
        return
    url = join_url(code)
    left, right = st.columns([1, 2], vertical_alignment="top")
    with left, st.container(key="poll_room"):
        st.image(qr_png(url), width=200, caption="Scan to join")
    with right:
        st.markdown(f'<div class="poll-code">Room <b>{html.escape(code)}</b></div>', unsafe_allow_html=True)
        join = url.split("?", 1)[0].replace("`", "")   # a code span: shown as is, no Markdown escapes in sight
        st.markdown(f"Join at `{join}` with the code, or scan the QR code. "
                    "One guess each; a new guess replaces yours.")
        host = url.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if host in ("localhost", "127.0.0.1", "::1"):
            st.caption("Phones cannot open localhost: start the server with `--server.address 0.0.0.0` and open "
                       "the app by this computer's network address.")
        st.button("Close the poll", key="player_poll_close", on_click=_close_poll, icon=":material/close:")
    if question is None:
        st.caption("This step asks nothing: students see “wait for the next question”.")
        return
    where = tally_at if tally_at is not None else st.container()
    with where:
        _teacher_tally(code, secret)


@st.fragment(run_every=POLL_EVERY)
def _teacher_tally(code: str, secret: str) -> None:
    try:
        rows = poll.STORE.tally(code, secret)
        view = poll.STORE.view(code)
    except poll.PollError as e:
        st.warning(str(e))
        return
    st.markdown(f"**The class's guesses** ({view.guesses} {'student' if view.guesses == 1 else 'students'}"
                f"{', closed' if view.revealed else ', live'})")
    tally_rows(rows)


def tally_rows(rows: Sequence[tuple[str, int]]) -> None:
    """A tally as text (a guess is data: escaped, never Markdown or HTML), with a bar each."""
    if not rows:
        st.caption("No guesses yet.")
        return
    total = sum(n for _, n in rows)
    for guess, n in rows[:TALLY_ROWS]:
        a, b = st.columns([3, 2], vertical_alignment="center")
        a.markdown(f"{md_escape(guess)} · **{n}**")
        b.progress(n / total)
    rest = rows[TALLY_ROWS:]
    if rest:
        st.caption(f"…and {len(rest)} other guesses ({sum(n for _, n in rest)} students).")


def student_page(title: str, icon: str = "🗳️") -> None:
    """A page for a student's phone: the app's navigation and the link, no model, no sidebar picker, no player."""
    _through_app_navigation()
    heap.settle()
    try:
        st.set_page_config(page_title=f"{title} · Inside a GPT", page_icon=icon, layout="centered")
    except st.errors.StreamlitAPIException:
        pass
    st.markdown(_CSS, unsafe_allow_html=True)
    _run.box, _run.said = st.container(), set()
    link_in()
    st.title(title)


_STUDENT_ID = re.compile(r"[A-Za-z0-9_-]{16}")


def student_id() -> str:
    """This browser's anonymous id: random, and kept in the page's link (`me`) as well as the session, so a
    student who reloads the page (a new session) keeps one guess, and sees it, instead of counting twice."""
    import secrets

    if _STUDENT_KEY not in ss:
        mine = link_value("me") or ""
        ss[_STUDENT_KEY] = mine if _STUDENT_ID.fullmatch(mine) else secrets.token_urlsafe(12)
    if link_value("me") != ss[_STUDENT_KEY]:
        set_link("me", ss[_STUDENT_KEY])
    return ss[_STUDENT_KEY]


def join_room_box() -> None:
    """No room in the link: a box for the code the projector shows."""
    with st.form("join_code", border=False):
        typed = st.text_input("Room code", max_chars=12, placeholder="five letters, as on the projector")
        if st.form_submit_button("Join", type="primary"):
            try:
                set_link("room", poll.clean_code(typed))
                st.rerun()
            except poll.PollError as e:
                st.error(str(e))


def student_room(code: str) -> None:
    """The room's question, a box for one guess, and the student's guess; a fragment watches for a new question
    or the reveal and redraws the page then (the box is not redrawn under the student's fingers meanwhile)."""
    sid = student_id()
    try:
        view = poll.STORE.view(code)
    except poll.PollError as e:
        st.error(str(e))
        return
    ss._join_seen = (code, view.round, view.revealed)
    q = view.question
    if q is None or q.text is None:
        st.info("Waiting for the teacher's question…", icon=":material/hourglass_top:")
    else:
        st.markdown(f"**Question:** {q.text}")       # the lesson's own text, as the player shows it
        if view.revealed:
            st.success("The answer is on the projector.")
            tally_rows(poll.STORE.tally(code))
        else:
            with st.form(f"join_guess_{view.round}", clear_on_submit=True, border=False):
                guess = st.text_input("Your guess", max_chars=poll.MAX_GUESS, key=f"join_box_{view.round}")
                sent = st.form_submit_button("Submit", type="primary", key=f"join_send_{view.round}")
            if sent:
                try:
                    poll.STORE.submit(code, sid, guess)
                except poll.PollError as e:
                    st.error(str(e))
        mine = poll.STORE.guess_of(code, sid)
        if mine:
            st.markdown(f"Your guess: **{md_escape(mine)}**")
    _student_watch(code)


@st.fragment(run_every=POLL_EVERY)
def _student_watch(code: str) -> None:
    try:
        view = poll.STORE.view(code)
    except poll.PollError:
        if (ss.get("_join_seen") or (None,))[0] == code:
            ss._join_seen = None
            st.rerun(scope="app")
        return
    if ss.get("_join_seen") != (code, view.round, view.revealed):
        st.rerun(scope="app")
    st.caption(f"Room {code} · {view.guesses} {'guess' if view.guesses == 1 else 'guesses'} in")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!$<>|~])")


def md_escape(text: str) -> str:
    """Text as Streamlit's Markdown shows it literally (a sampled `*`, `#` or `$…$` is not formatting)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _step_changed(pos: player.Position) -> bool:
    """Whether the link's state differs from the step's own (a control moved during the step)."""
    want = player.step_link(pos.lesson, pos.number, pos.present, model=_link().get("model"))
    return {k: v for k, v in _link().items() if k != "present"} != {k: v for k, v in want.items() if k != "present"}


def _view_title(view: str) -> str:
    pages = getattr(_run, "nav", None)
    if pages and view in pages[0]:
        return pages[0][view].title
    return view.replace("_", " ")


def lesson_picker(lm: ex.LoadedModel | None = None) -> None:
    """The home page's lessons: title, level, minutes, summary, Start and Present, and (with a model) the
    handout and the lesson file to take home; files that failed to load are listed with their message (the
    others still work)."""
    loaded = lessons_loaded()
    st.subheader("Lessons for a class")
    st.write("A guided path through the pages, step by step: what to say, a question for the class, and the "
             "answer worked out live on the model. Presenter view is for a projector.")
    cols = st.columns(3)
    for i, lesson in enumerate(loaded.lessons):
        with cols[i % 3], st.container(border=True):
            st.markdown(f"**{html.escape(lesson.title)}**  \n{html.escape(lesson.level)} · {lesson.minutes} min · "
                        f"{len(lesson.steps)} steps")
            st.caption(lesson.summary)
            a, b = st.columns(2)
            a.button("Start", key=f"start_{lesson.name}", on_click=_start, args=(lesson.name, False),
                     width="stretch", type="primary")
            b.button("Present", key=f"present_{lesson.name}", on_click=_start, args=(lesson.name, True),
                     width="stretch", help="Start in presenter view (for a projector)")
            with st.popover("Handout and lesson file", icon=":material/download:", width="stretch"):
                if lm is not None:
                    handout_download(lesson, lm)
                lesson_download(lesson)
    if not loaded.lessons:
        st.info(f"No lessons found in {lessons_folder()}.")
    for e in loaded.errors:
        st.warning(f"A lesson could not be loaded: {e}", icon=":material/error:")


def _start(name: str, present: bool) -> None:
    lesson = lessons_loaded().get(name)
    if lesson is None:
        return
    ss._notices = []
    ss._player_shown = None
    link = player.step_link(lesson, 1, present, model=player.start_model(lesson, _link().get("model")))
    st.query_params.from_dict(link)


def lesson_running() -> bool:
    """Whether a lesson is running in this run (ui.page has read the link)."""
    return getattr(_run, "position", player.Position()).running


def presenting() -> bool:
    """Whether this run draws the presenter view (a lesson running with present=1)."""
    pos = getattr(_run, "position", player.Position())
    return pos.running and pos.present


# -- the presenter view draws one section: the step's chart or charts and the controls it names -------------
# A page's sections are its `@section(name)` functions (names in lessons.SECTIONS). In the presenter view of a
# step that names a section of this page, only that one runs and the others are not drawn (nor computed); its
# controls are drawn only where the step names them (Step.shown_controls), the rest keep the step's values;
# explanations written for reading alone (captions, the sections' headings) give way to the step's narration;
# charts are at most PRESENT_CHART_HEIGHT high. Together that fits a projector's 1280 × 720 without scrolling.

PRESENT_CHART_HEIGHT = 600


def shown_section() -> tuple[str, ...] | None:
    """The sections this run draws: the step's, in the presenter view of a step on this page; else None
    (every section)."""
    pos = getattr(_run, "position", player.Position())
    if not (pos.running and pos.present) or pos.step.section is None or pos.step.view != current_view():
        return None
    return pos.step.section


SILENT = "silent"


@dataclasses.dataclass(frozen=True)
class _TraceName:
    """A trace by name, for what a session keeps after its run: the trace is asked of the cache again."""
    model_name: str
    text: str


def again(tr: ex.Trace, max_tokens: int | None = None) -> Callable[[], ex.Trace]:
    """This trace asked of the cache again, by name (at `max_tokens`, default the session's token limit, which
    made it): for what outlives the run (a download made on the click, a button's callback), which must not
    hold the trace itself (`fragment`)."""
    name, text = tr.model_name, tr.text
    max_tokens = int(ss.max_tokens) if max_tokens is None else int(max_tokens)
    return lambda: get_trace(name, text, max_tokens)


def fragment(fn: Callable) -> Callable:
    """st.fragment, with every trace argument held by name. Streamlit keeps a fragment's arguments for the
    session's later fragment reruns; a trace held there would stay alive after the results cache let it go, one
    per idle session, outside the memory budget (tests/test_pins.py). The rerun asks `get_trace` for it again
    (at the session's token limit, which a fragment rerun cannot change): a cache hit, or a new trace."""
    def named(v: Any) -> Any:
        return _TraceName(v.model_name, v.text) if isinstance(v, ex.Trace) else v

    def traced(v: Any) -> Any:
        return get_trace(v.model_name, v.text, int(ss.max_tokens)) if isinstance(v, _TraceName) else v

    @st.fragment
    @functools.wraps(fn)
    def inner(*args: Any, **kw: Any) -> Any:
        return fn(*map(traced, args), **{k: traced(v) for k, v in kw.items()})

    @functools.wraps(fn)
    def outer(*args: Any, **kw: Any) -> Any:
        return inner(*map(named, args), **{k: named(v) for k, v in kw.items()})
    return outer


def section(name: str, hidden: Callable[..., Any] | str | None = None) -> Callable:
    """Mark a page function as its section `name`: drawn inside a container keyed `section-<name>`, and not run
    at all in a presenter view that shows another section; then it returns `hidden(*args)` (default None), so a
    later section still gets what it needs from it (a layer and head chosen in the link, say). `hidden=SILENT`
    (for a section of settings that later ones read from the session): run it, with no control drawn, in a
    container nobody sees."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args: Any, **kw: Any) -> Any:
            shown = shown_section()
            if shown is not None and name not in shown:
                if hidden == SILENT:
                    _run.silent = True
                    try:
                        with st.container(key=f"section-silent-{name}"):
                            return fn(*args, **kw)
                    finally:
                        _run.silent = False
                return hidden(*args, **kw) if hidden is not None else None
            with st.container(key=f"section-{name}"):
                return fn(*args, **kw)
        run.section = name
        return run
    return wrap


def control_shown(name: str) -> bool:
    """Whether the control of link name `name` is drawn: always, except in the presenter view of a section,
    which draws only the controls its step names."""
    if getattr(_run, "silent", False):
        return False
    if name in player.PARAMS or shown_section() is None:
        return True
    return name in _run.position.step.shown_controls


def divider() -> None:
    """st.divider() between sections, except in the presenter view of one section."""
    if reading_only():
        st.divider()


def reading_only() -> bool:
    """Whether to draw what is written for reading alone (the page's own explanations), not for a projector
    where the teacher narrates: False in the presenter view of a section."""
    return shown_section() is None


# -- a teacher's own lessons (explainer/lesson_edit.py): made in the app, kept in this browser session only -----------
# Several users share a server, so an own lesson is never written to its disk: it lives in this session's state
# (ss[_OWN]: {name: Lesson}, each exactly what its file gives), and the player finds it through lessons_loaded()
# (lesson_edit.WithOwn). Every step has an id that stays with it (ss[_OWN_IDS][name]), so the editor's boxes follow a
# step that moves. An edit that a file could not hold is refused with the file's own message, and the box keeps
# what was typed (ss[_OWN_ERR]: {widget key: (message, typed value)}, kept even if the box is not drawn for a while).

_OWN, _OWN_IDS, _OWN_CUR, _OWN_ERR = "_own_lessons", "_own_ids", "_own_current", "_own_errors"
_NO_QUESTION = "(no question)"


def _own_in_session() -> dict[str, lessons.Lesson]:
    try:
        return dict(ss.get(_OWN) or {})
    except Exception:  # noqa: BLE001 - outside a script run (a download built on its click): no session
        return {}


def own_lessons() -> dict[str, lessons.Lesson]:
    """This session's own lessons, by name (`my-...`)."""
    return ss.setdefault(_OWN, {})


def _own_ids(name: str) -> list[str]:
    return ss.setdefault(_OWN_IDS, {}).setdefault(name, [])


def _own_new_id() -> str:
    ss._own_next = ss.get("_own_next", 0) + 1
    return f"s{ss._own_next}"


def _own_current() -> lessons.Lesson | None:
    own = own_lessons()
    name = ss.get(_OWN_CUR)
    if name not in own:
        name = next(iter(own), None)
        ss[_OWN_CUR] = name
    return own.get(name) if name else None


def _own_store(lesson: lessons.Lesson, ids: list[str]) -> None:
    own_lessons()[lesson.name] = lesson
    ss.setdefault(_OWN_IDS, {})[lesson.name] = ids
    ss[_OWN_CUR] = lesson.name


def _own_forget_keys(prefix: str) -> None:
    for k in [k for k in ss if isinstance(k, str) and k.startswith(prefix)]:
        del ss[k]
    errors = ss.setdefault(_OWN_ERR, {})
    for k in [k for k in errors if k.startswith(prefix)]:
        del errors[k]


def own_lesson_sidebar(lm: ex.LoadedModel | None) -> None:
    """The sidebar's "My lesson": the view on screen, as its link has it, becomes the next step of this session's
    own lesson (a new one the first time). The editor is on the home page."""
    view = current_view()
    if view not in lessons.VIEWS:
        return
    cur = _own_current()
    with st.sidebar.expander("My lesson", icon=":material/playlist_add:"):
        st.caption(f"Adds to “{md_escape(cur.title)}” ({len(cur.steps)} step{'s' * (len(cur.steps) != 1)})."
                   if cur else "Make a lesson of your own from the app's views, kept in this browser session.")
        st.text_input("Step title", key="own_add_title", placeholder=_view_title(view),
                      max_chars=lessons.MAX_TITLE_CHARS)
        st.button("Add this view as a step", key="own_add", icon=":material/add:", width="stretch",
                  on_click=_own_add, args=(view, _view_title(view), lm.name if lm is not None else BUNDLED),
                  help="This page with its settings as they are now (the prompt, the layer, the sliders) becomes a "
                       "step: the lesson opens it just like this.")
        said = ss.pop("_own_said", None)
        if said is not None:
            kind, text, notes = said
            (st.success if kind == "ok" else st.error)(text)
            for note in notes:
                st.caption(note)
        pages = getattr(_run, "nav", None)
        if cur is not None and pages and "Home" in pages[0] and view != "Home":
            if st.button("Edit it on the home page", key="own_edit", icon=":material/edit:", type="tertiary"):
                st.switch_page(pages[0]["Home"])      # (the link state crosses with the session, as any page switch)


def _own_add(view: str, title: str, model: str) -> None:
    own = own_lessons()
    cur = _own_current()
    title = (ss.get("own_add_title") or "").strip() or title
    try:
        if cur is None:
            lesson, notes = lesson_edit.new_lesson(view, _link(), model=model, title=title, taken=own)
            ids = []
        else:
            lesson, notes = lesson_edit.add_view(cur, view, _link(), title)
            ids = list(_own_ids(cur.name))
    except lessons.LessonError as e:
        ss._own_said = ("error", str(e), ())
        return
    _own_store(lesson, [*ids, _own_new_id()])
    ss.own_add_title = ""
    ss._own_said = ("ok", f"Step {len(lesson.steps)} of “{lesson.title}”: {lesson.steps[-1].title}.", notes)


def _own_apply(name: str, key: str, edit: Callable[[lessons.Lesson], lessons.Lesson]) -> lessons.Lesson | None:
    """Apply one edit to own lesson `name`: the new lesson, or None with the message kept beside the box `key`."""
    lesson = own_lessons().get(name)
    if lesson is None:
        return None
    errors = ss.setdefault(_OWN_ERR, {})
    try:
        new = edit(lesson)
    except (lessons.LessonError, IndexError, ValueError) as e:
        errors[key] = (str(e), ss.get(key))
        return None
    errors.pop(key, None)
    own_lessons()[name] = new
    return new


def _own_number(name: str, sid: str) -> int:
    return _own_ids(name).index(sid) + 1


def _own_step_field(name: str, sid: str, fld: str) -> None:
    key = f"own_{sid}_{fld}"
    value = ss.get(key)

    def edit(lesson: lessons.Lesson) -> lessons.Lesson:
        n = _own_number(name, sid)
        if fld in ("title", "narration"):
            return lesson_edit.edit_step(lesson, n, **{fld: value or ""})
        if fld == "tries":
            return lesson_edit.edit_step(lesson, n, tries=(value or "").splitlines())
        if fld == "section":
            return lesson_edit.edit_step(lesson, n, section=list(value or ()))
        q = lesson.steps[n - 1].question
        if fld == "qtext":
            return lesson_edit.set_question(lesson, n, q.kind, text=value or "")
        return lesson_edit.set_question(lesson, n, q.kind, inputs={fld.removeprefix("q_"): value})
    _own_apply(name, key, edit)


def _own_kind(name: str, sid: str) -> None:
    key = f"own_{sid}_qkind"
    kind = None if ss.get(key) == _NO_QUESTION else ss.get(key)
    text = (ss.get(f"own_{sid}_qtext") or "").strip() or None
    new = _own_apply(name, key, lambda lesson: lesson_edit.set_question(lesson, _own_number(name, sid), kind, text))
    if new is not None:                 # the question's own boxes start again from what the lesson now holds
        _own_forget_keys(f"own_{sid}_q_")
        _own_forget_keys(f"own_{sid}_qtext")
        q = new.steps[_own_number(name, sid) - 1].question
        if q is not None:
            ss[f"own_{sid}_qtext"] = q.text


def _own_move(name: str, sid: str, delta: int) -> None:
    n = _own_number(name, sid)
    if _own_apply(name, f"own_{sid}_move", lambda lesson: lesson_edit.move_step(lesson, n, delta)) is not None:
        ids = _own_ids(name)
        ids.insert(max(0, min(n - 1 + delta, len(ids) - 1)), ids.pop(n - 1))


def _own_delete(name: str, sid: str) -> None:
    n = _own_number(name, sid)
    if _own_apply(name, f"own_{sid}_delete", lambda lesson: lesson_edit.delete_step(lesson, n)) is not None:
        _own_ids(name).remove(sid)
        _own_forget_keys(f"own_{sid}_")


def _own_info(name: str, fld: str) -> None:
    key = f"own_{name}_{fld}"
    _own_apply(name, key, lambda lesson: lesson_edit.edit_info(lesson, **{fld: ss.get(key)}))


def _own_remove(name: str) -> None:
    own_lessons().pop(name, None)
    for sid in ss.setdefault(_OWN_IDS, {}).pop(name, []):
        _own_forget_keys(f"own_{sid}_")
    _own_forget_keys(f"own_{name}_")
    ss[_OWN_CUR] = next(iter(own_lessons()), None)


def _own_pick() -> None:
    ss[_OWN_CUR] = ss.own_pick


def _own_open(name: str, number: int, present: bool) -> None:
    """Run own lesson `name` from step `number` (Run, Present, a step's Open): its link in the URL, as Start does."""
    lesson = own_lessons().get(name)
    if lesson is None:
        return
    ss._notices = []
    ss._player_shown = None
    st.query_params.from_dict(player.step_link(lesson, number, present,
                                               model=player.start_model(lesson, _link().get("model"))))


def _own_uploaded(key: str) -> None:
    f = ss.get(key)
    if f is None:
        ss.pop("_own_upload_error", None)
        return
    try:
        lesson = lesson_edit.from_upload(f.getvalue(), f.name, taken=own_lessons())
    except lessons.LessonError as e:
        ss._own_upload_error = str(e)
        return
    ss.pop("_own_upload_error", None)
    _own_store(lesson, [_own_new_id() for _ in lesson.steps])
    ss._own_upload_n = ss.get("_own_upload_n", 0) + 1          # a fresh, empty uploader
    n = len(lesson.steps)
    ss._own_uploaded = f"{f.name}: “{lesson.title}”, {n} step{'s' * (n != 1)}, ready to run and to edit."


def _own_box(draw: Callable[..., Any], key: str, value: Any, **kw: Any) -> Any:
    """A box of the editor: the lesson's value the first time (or what was typed, if that was refused)."""
    if key not in ss:
        refused = ss.setdefault(_OWN_ERR, {}).get(key)
        ss[key] = refused[1] if refused is not None and refused[1] is not None else value
    return draw(key=key, **kw)


def _own_errors(prefix: str) -> None:
    for key, (message, _) in ss.setdefault(_OWN_ERR, {}).items():
        if key.startswith(prefix):
            st.error(message, icon=":material/error:")


def own_lesson_editor(lm: ex.LoadedModel | None) -> None:
    """The home page's editor of this session's own lessons: the lesson's fields, each step's title, narration,
    suggestions and question, ↑ ↓ and delete, Run and Present, the lesson file to download, and an upload."""
    own = own_lessons()
    st.subheader("Your own lesson")
    st.write("Make a lesson from the app's own views: set a page up as the class should see it, open **My lesson** "
             "in the sidebar and press **Add this view as a step**. Then write here what to say and what to ask, "
             "put the steps in order, and run it.")
    st.caption("It is kept in this browser session only, never on the server: reloading the page or pasting a link in "
               "the address bar starts a new session without it, and a link to one of its steps works only here. "
               "Download its file to keep it or share it, and upload the file here to run it again.")
    key = f"own_upload_{ss.get('_own_upload_n', 0)}"          # first: a file to run, even with no lesson yet
    st.file_uploader(f"Upload a lesson file (.toml, at most {lessons.MAX_FILE_BYTES // 1024} KB)", type=["toml"],
                     key=key, on_change=_own_uploaded, args=(key,), max_upload_size=1,
                     help=f"A lesson file of at most {lessons.MAX_FILE_BYTES // 1024} KB, checked as the app's own "
                          "lessons are. It runs in this browser session and can be edited here.")
    if error := ss.get("_own_upload_error"):
        st.error(error, icon=":material/error:")
    if message := ss.pop("_own_uploaded", None):
        st.success(f"Loaded {message}", icon=":material/upload_file:")
    if len(own) > 1:
        ss.own_pick = ss.get(_OWN_CUR) if ss.get(_OWN_CUR) in own else next(iter(own))
        st.selectbox("Lesson", list(own), key="own_pick", on_change=_own_pick,
                     format_func=lambda n: f"{own[n].title} ({n})")   # a selectbox shows text as it is
    cur = _own_current()
    if cur is None:
        st.info("No lesson of your own yet: add a view from the sidebar on any page, or upload a lesson file above.",
                icon=":material/playlist_add:")
    else:
        _own_lesson(cur, lm)


def _own_lesson(lesson: lessons.Lesson, lm: ex.LoadedModel | None) -> None:
    name = lesson.name
    ids = _own_ids(name)
    while len(ids) < len(lesson.steps):        # (a lesson stored without ids)
        ids.append(_own_new_id())
    with st.container(border=True, key="own_lesson"):
        a, b = st.columns([2, 3])
        _own_box(a.text_input, f"own_{name}_title", lesson.title, label="Lesson title",
                 max_chars=lessons.MAX_TITLE_CHARS, on_change=_own_info, args=(name, "title"))
        _own_box(b.text_input, f"own_{name}_summary", lesson.summary, label="Summary (one line, for the picker)",
                 max_chars=lessons.MAX_SUMMARY_CHARS, on_change=_own_info, args=(name, "summary"))
        a, b, c = st.columns([2, 1, 2], vertical_alignment="bottom")
        _own_box(a.text_input, f"own_{name}_level", lesson.level, label="Level (who it is for)",
                 max_chars=lessons.MAX_LEVEL_CHARS, on_change=_own_info, args=(name, "level"))
        _own_box(b.number_input, f"own_{name}_minutes", lesson.minutes, label="Minutes", min_value=1,
                 max_value=lessons.MAX_MINUTES, step=5, on_change=_own_info, args=(name, "minutes"))
        c.caption(f"`lesson={name}` · {len(lesson.steps)} step{'s' * (len(lesson.steps) != 1)} · written for "
                  f"{model_label(lesson.model)}")
        _own_errors(f"own_{name}_")
        row = st.container(horizontal=True, vertical_alignment="center")
        row.button("Run this lesson", key="own_run", type="primary", icon=":material/play_arrow:",
                   on_click=_own_open, args=(name, 1, False))
        row.button("Present", key="own_present", icon=":material/co_present:", on_click=_own_open,
                   args=(name, 1, True), help="Run it in presenter view (for a projector)")
        with row:
            lesson_download(lesson, key="own_download")
            if lm is not None:
                handout_download(lesson, lm, key="own_handout")
        with row.popover("Remove", icon=":material/delete:"):
            st.write(f"Remove “{md_escape(lesson.title)}” from this session? Download its file first to keep it.")
            st.button("Remove this lesson", key="own_remove", on_click=_own_remove, args=(name,))
    for step, sid in zip(lesson.steps, ids):
        _own_step(lesson, step, sid)


def _own_step(lesson: lessons.Lesson, step: lessons.Step, sid: str) -> None:
    name, n, total = lesson.name, step.number, len(lesson.steps)
    with st.container(border=True, key=f"own_step_{sid}"):
        head = st.container(horizontal=True, vertical_alignment="center", gap="small")
        shown = lesson_edit.describe_state(step.state) or "the page's defaults"
        head.markdown(f"**Step {n} of {total}** · {_view_title(step.view)}  \n"
                      f"<small>{html.escape(shown)}</small>", unsafe_allow_html=True, width="stretch")
        head.button("Up", key=f"own_{sid}_up", icon=":material/arrow_upward:", disabled=n == 1,
                    on_click=_own_move, args=(name, sid, -1), help="Move this step up")
        head.button("Down", key=f"own_{sid}_down", icon=":material/arrow_downward:", disabled=n == total,
                    on_click=_own_move, args=(name, sid, 1), help="Move this step down")
        head.button("Open", key=f"own_{sid}_open", icon=":material/open_in_new:", on_click=_own_open,
                    args=(name, n, False), help="Run the lesson from this step")
        head.button("Delete", key=f"own_{sid}_delete", icon=":material/delete:", disabled=total == 1,
                    on_click=_own_delete, args=(name, sid),
                    help="A lesson keeps at least one step: remove the lesson instead" if total == 1 else
                         "Delete this step")
        left, right = st.columns([3, 2])
        _own_box(left.text_input, f"own_{sid}_title", step.title, label="Step title",
                 max_chars=lessons.MAX_TITLE_CHARS, on_change=_own_step_field, args=(name, sid, "title"))
        _own_box(left.text_area, f"own_{sid}_narration", step.narration, label="Narration (what you say; Markdown)",
                 height=130, max_chars=lessons.MAX_NARRATION_CHARS, on_change=_own_step_field,
                 args=(name, sid, "narration"))
        if lessons.SECTIONS.get(step.view):
            _own_box(left.multiselect, f"own_{sid}_section", list(step.section or ()), label="The projector shows",
                     options=list(lessons.SECTIONS[step.view]), format_func=lambda x: x.replace("_", " and "),
                     placeholder="the whole page (it may need scrolling)", on_change=_own_step_field,
                     args=(name, sid, "section"),
                     help="In presenter view only these parts of the page are drawn, beside your narration, so the "
                          "step fits the screen without scrolling. None chosen: the whole page.")
        q = step.question
        kinds = [_NO_QUESTION, *lessons.QUESTION_KINDS]
        _own_box(right.selectbox, f"own_{sid}_qkind", q.kind if q else _NO_QUESTION, label="Question: what to work out",
                 options=kinds, on_change=_own_kind, args=(name, sid),
                 format_func=lambda k: k if k == _NO_QUESTION else f"{k.replace('_', ' ')}: "
                                                                   f"{lessons.QUESTION_KINDS[k].help}")
        if q is not None:
            _own_box(right.text_input, f"own_{sid}_qtext", q.text, label="Question text",
                     max_chars=lessons.MAX_QUESTION_CHARS, on_change=_own_step_field, args=(name, sid, "qtext"))
            for inp, options in lesson_edit.choice_inputs(q.kind).items():
                _own_box(right.selectbox, f"own_{sid}_q_{inp}", q.inputs[inp], label=inp.replace("_", " "),
                         options=list(options), format_func=lambda o: o or "(none)", on_change=_own_step_field,
                         args=(name, sid, f"q_{inp}"))
            rest = lesson_edit.describe_inputs(q, skip=lesson_edit.choice_inputs(q.kind))
            if rest:
                right.caption(f"Worked out on the model in use with {md_escape(rest)}.")
        _own_box(right.text_area, f"own_{sid}_tries", "\n".join(step.tries), label="Try this (one suggestion a line)",
                 height=80, on_change=_own_step_field, args=(name, sid, "tries"))
        _own_errors(f"own_{sid}_")
