"""The only module that imports streamlit: cached loaders, the sidebar, shared widgets.

Pages stay thin: `lm = ui.page("Title", "one-line intro")`, then widgets -> explainer calls ->
`ui.chart(fig)`. Nothing here imports torch.
"""

from __future__ import annotations

import html
import threading

import streamlit as st

import explainer as ex
from explainer.figures.common import show_token
from explainer.models import BUNDLED, BUNDLED_LABEL, HUB_MODELS, bundled_ready, prepare_bundled

DEFAULT_PROMPT = "The Eiffel Tower is in the city of"
DEFAULT_MAX_TOKENS = 256
_OTHER = "Other: a Hub id or a local folder…"
ss = st.session_state


# -- cached resources ----------------------------------------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=3)
def get_model(name: str) -> ex.LoadedModel:
    """One shared model per name for every session (read-only). Never draws anything: Streamlit replays
    the elements a cached function drew, which breaks for progress bars made outside it."""
    return ex.load_model(name)


@st.cache_resource(show_spinner=False)
def _convert_lock() -> threading.Lock:
    return threading.Lock()


@st.cache_resource(show_spinner=False, max_entries=32)
def get_trace(model_name: str, text: str, max_tokens: int | None) -> ex.Trace:
    """Traces are shared read-only (their arrays are not writeable), so no per-session copy is made."""
    return ex.trace(get_model(model_name), text, max_tokens)


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
    """Common page set-up: config, style, sidebar with the model picker. Returns the model in use,
    or None (with a message already shown) when no model could be loaded."""
    try:
        st.set_page_config(page_title=f"{title} · Inside a GPT", page_icon=icon, layout="wide")
    except st.errors.StreamlitAPIException:
        pass  # already set by an including page
    st.markdown(_CSS, unsafe_allow_html=True)
    st.title(title)
    if intro:
        st.caption(intro)
    return sidebar_model()


def traced_page(title: str, intro: str = "", icon: str = "🔎") -> tuple[ex.LoadedModel, ex.Trace]:
    """page(), then the shared prompt box and its trace: what every view of the prompt starts with.
    Stops the page (its message already shown) when there is no model or the prompt cannot be traced."""
    lm = page(title, intro, icon)
    if lm is None:
        st.stop()
    tr = current_trace(lm, prompt_box())
    if tr is None:
        st.stop()
    return lm, tr


def _init_state() -> None:
    if "model_name" not in ss:
        qp = st.query_params.get("model")
        ss.model_name = qp if qp else BUNDLED
    if "_prompt" not in ss:
        ss._prompt = st.query_params.get("prompt") or DEFAULT_PROMPT
    if "max_tokens" not in ss:
        ss.max_tokens = DEFAULT_MAX_TOKENS


def _keep_sidebar_values() -> None:
    """Streamlit drops a widget's value when a page without it runs; re-assigning it before the widget
    exists keeps it across pages. Must run before the sidebar widgets are created."""
    for key in ("model_pick", "max_tokens"):
        if key in ss:
            ss[key] = ss[key]


def sidebar_model() -> ex.LoadedModel | None:
    """Model picker. A failed load shows why and keeps the model the session had."""
    _init_state()
    _keep_sidebar_values()
    choices = [BUNDLED, *HUB_MODELS, _OTHER]
    current = ss.model_name
    if "_pick_reset" in ss:  # undo a pick that failed to load (allowed before the widget exists)
        ss.model_pick = ss.pop("_pick_reset")
    if "model_pick" not in ss:
        ss.model_pick = current if current in choices else _OTHER
    with st.sidebar:
        st.markdown("### Model")
        pick = st.selectbox("Model", choices, key="model_pick", label_visibility="collapsed",
                            format_func=lambda n: n if n == _OTHER else model_label(n))
        wanted = pick
        if pick == _OTHER:
            wanted = st.text_input("Hub id or local folder", value="" if current in choices else current,
                                   placeholder="e.g. EleutherAI/pythia-70m or /models/gpt2").strip()
            if not wanted:
                wanted = current
        st.number_input("Max tokens per prompt", min_value=8, max_value=4096, step=64, key="max_tokens",
                        help="Longer prompts keep their last tokens. Attention grows with tokens².")
    if "model_error" in ss:
        st.sidebar.error(ss.pop("model_error"))
    lm = _load_with_progress(wanted)
    if lm is None and wanted != current:
        ss.model_error = ss.get("_last_load_error", "That model could not be loaded.")
        ss._pick_reset = current if current in choices else _OTHER
        st.rerun()
    if lm is not None and wanted != current:
        ss.model_name = wanted
        st.query_params["model"] = wanted
    if lm is not None:
        with st.sidebar:
            dev = f"{lm.device.type}, {str(lm.dtype).removeprefix('torch.')}"
            st.caption(f"{lm.n_layers} layers · {lm.n_heads} heads · d_model {lm.d_model} · "
                       f"vocab {lm.vocab_size:,} · context {lm.n_ctx:,} · {dev}")
    return lm


def _load_with_progress(name: str) -> ex.LoadedModel | None:
    box = st.empty()
    try:
        if name == BUNDLED and not bundled_ready():  # first run on this machine: ~40 s, show progress
            bar = box.progress(0.0, "Preparing the bundled model…")
            with _convert_lock():  # one conversion even when several sessions start at once
                prepare_bundled(lambda frac, msg: bar.progress(min(max(frac, 0.0), 1.0), msg))
        with st.spinner(f"Loading {model_label(name)}…"):
            return get_model(name)
    except ex.ExplainerError as e:
        ss._last_load_error = str(e)
        return None
    finally:
        box.empty()


# -- the prompt ---------------------------------------------------------------------------------

def _sync_prompt() -> None:
    ss._prompt = ss.prompt_widget


def prompt_box(label: str = "Prompt", height: int = 90, help: str | None = None) -> str:
    """One prompt shared by every page (and the URL)."""
    _init_state()
    ss.prompt_widget = ss._prompt
    st.text_area(label, key="prompt_widget", height=height, on_change=_sync_prompt, help=help)
    if st.query_params.get("prompt") != ss._prompt and len(ss._prompt) < 500:
        st.query_params["prompt"] = ss._prompt
    return ss._prompt


def current_trace(lm: ex.LoadedModel, text: str | None = None) -> ex.Trace | None:
    """Trace the (shared) prompt; show a clear message and return None on bad input."""
    text = ss._prompt if text is None else text
    try:
        with st.spinner("Running the model…"):
            tr = get_trace(lm.name, text, int(ss.max_tokens))
    except ex.ExplainerError as e:
        st.info(str(e))
        return None
    if tr.notice:
        st.warning(tr.notice)
    return tr


# -- shared display helpers -------------------------------------------------------------------------

def chart(fig, key: str | None = None, **kw) -> None:
    st.plotly_chart(fig, width="stretch", key=key, **kw)


def token_chips(tokens, ids=None, colors=None, titles=None) -> None:
    """Tokens as coloured chips with their ids underneath (hover shows the title)."""
    palette = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d7f4f0", "#fce1c9"]
    parts = []
    for i, t in enumerate(tokens):
        bg = colors[i] if colors else palette[i % len(palette)]
        sub = f"<small>{ids[i]}</small>" if ids is not None else ""
        tip = html.escape(titles[i] if titles else f"position {i}", quote=True)
        parts.append(f'<span class="tok" style="background:{bg}" title="{tip}">'
                     f"{html.escape(show_token(t))}{sub}</span>")
    st.markdown(f'<div class="tok-row">{"".join(parts)}</div>', unsafe_allow_html=True)
