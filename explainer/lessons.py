"""Lessons: a teacher's path through the app, one TOML file per lesson under `assets/lessons/`.

Parsing and validation are pure Python (`tomllib`); answers are computed live from the model with the
engine's own functions, so a lesson stays right on another model. No Streamlit here.

The format (every field is required unless marked optional)::

    title = "How a GPT writes, one token at a time"
    summary = "One line for the lesson picker."
    level = "ages 14–18"                # free text: "ages 14–18", "first-year university", "advanced"
    minutes = 40                        # 1 to 240
    model = "bundled"                   # the model the lesson was written for: bundled, a Hub id or a folder
    order = 1                           # optional: place in the lesson picker (then by file name)

    [[steps]]
    title = "Text becomes tokens"
    view = "Home"                       # a page's URL name: Home, Attention, Next_token, ... (VIEWS)
    section = "tokens"                  # optional: the part of the page the presenter view shows (SECTIONS),
                                        # or a list of parts: section = ["choose", "before_after"]
    controls = ["prompt"]               # optional: the controls it shows there (default: the state's, but the prompt)
    narration = \"\"\"What the teacher says: Markdown, 2 to 6 sentences.\"\"\"
    state = { prompt = "The Eiffel Tower is in the city of", layer = 5 }   # optional: URL parameters
    try = ["Type your own sentence."]   # optional: "try this" suggestions

    [steps.question]                    # optional: asked before the reveal
    text = "Which word comes next?"
    kind = "next_token"                 # what to compute (QUESTION_KINDS); its inputs beside it:
    prompt = "The Eiffel Tower is in the city of"

A step's `state` is the whole link of the step, in the URL contract's names (`explainer/links.py`): a name
left out takes the page's default, as in a link (the prompt: `content.DEFAULT_PROMPT`). Values may be
written as TOML strings, whole numbers, decimals or booleans; they are checked with the same menders the
pages apply to a link, but strictly: a value a page would have to mend is an error here. A view accepts
only the names its page reads (`VIEW_PARAMS`), plus `max_tokens` from the sidebar. `model` is the lesson's
field, never a step's; `steps`, `view` and `track` hold token ids or step numbers of one model, so a
lesson cannot use them. What depends on the model (a layer below its number of layers, a head, a neuron, a
token position within the prompt, a word the analogy can read) is checked by `validate_for(lesson, lm)`.

`section` names the part of the page a step is about: in the presenter view only that part is drawn (with the
controls in `controls`, by default the names the state sets but the prompt and the tab), beside the narration,
which is what fits a projector's screen without scrolling. Write it so it also reads in the normal view (never
"scroll down" or "at the bottom").

A question names what to compute (`kind`), never the answer. Its inputs default to the step's state where
the view shows the same thing (the prompt, the analogy's words, the heads switched off, the sampling
settings), so the reveal matches the screen. `answer(question, lm)` returns an `Answer`: the text to reveal
and the numbers behind it.

Limits: a file of at most 64 KB (`MAX_FILE_BYTES`), 1 to 30 steps, titles of 100 characters, narration of
1,500, 8 suggestions per step. Every problem raises `LessonError`, whose message names the file, the step
(number and title) and the field; `load_all(folder)` collects them so that one bad file does not stop the
others.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from . import anatomy, content, generation, heads, interventions, lens, links, makemore, sampling, vectors, words
from .capture import trace
from .errors import ExplainerError, LessonError
from .figures.common import show_token
from .models import LoadedModel
from .tokens import encode, token_strings

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "assets" / "lessons"
APP = ROOT / "streamlit_app.py"

MAX_FILE_BYTES = 64 * 1024
MIN_STEPS, MAX_STEPS = 1, 30
MAX_TITLE_CHARS, MAX_SUMMARY_CHARS, MAX_LEVEL_CHARS = 100, 200, 60
MAX_NARRATION_CHARS, MAX_QUESTION_CHARS = 1500, 300
MAX_TRIES, MAX_TRY_CHARS = 8, 200
MAX_MINUTES = 240
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")   # a lesson's file stem: it goes in the URL


# -- the views: the app's page URLs, read from the tour table without importing Streamlit ---------------------

def _tour_views(app: Path = APP) -> tuple[str, ...]:
    """"Home" and the URL name of every page in streamlit_app.py's TOUR table (the file name without its
    number, the rule its navigation applies), read from the file's syntax: importing it would run Streamlit."""
    tree = ast.parse(app.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TOUR" for t in node.targets):
            rows = [e.elts[0].value for e in node.value.elts]    # each row's first item: the page's file
            return ("Home", *(Path(p).stem.split("_", 1)[1] for p in rows))
    raise RuntimeError(f"{app} has no TOUR table")


VIEWS: tuple[str, ...] = _tour_views()

# The link names each view's page reads (tests/test_lessons.py checks these against the pages' own calls).
_SIDEBAR = frozenset({"max_tokens"})
VIEW_PARAMS: dict[str, frozenset[str]] = {
    "Home": frozenset({"prompt"}),
    "Model_map": frozenset({"prompt", "compare", "open_block", "layer", "token", "box"}),
    "Embeddings": frozenset({"tab", "map_preset", "map_words", "map_dims", "map_align", "an_preset", "an_a", "an_b",
                             "an_c", "an_k", "an_variants", "an_vs", "nb_word", "dir_preset", "dir_axis", "dir_words",
                             "sim_words", "ctx_preset", "ctx_word", "ctx_sentences", "ctx_center"}),
    "Attention": frozenset({"prompt", "compare", "layer", "head", "token", "att_window"}),
    "MLP_neurons": frozenset({"prompt", "layer", "mlp_n", "skip_first", "token", "neuron"}),
    "Logit_lens": frozenset({"prompt", "compare", "window", "token", "word", "space"}),
    "Next_token": frozenset({"prompt", "compare", "seed", "temperature", "top_k", "top_p", "min_p",
                             "repetition_penalty", "show"}),
    "Generate": frozenset({"template", "gen_text", "max_new", "temperature", "top_k", "top_p", "min_p",
                           "repetition_penalty", "stop", "seed",
                           "batch", "pad_side"}),
    "Interventions": frozenset({"prompt", "ablate_heads", "ablate_neurons"}),
    "Anatomy": frozenset(),
    "Tiny_LM_lab": frozenset({"lab_block", "lab_embd", "lab_hidden", "lab_seed", "lab_lr", "lab_steps", "lab_every",
                              "lab_batch", "lab_n", "lab_temp", "lab_sample_seed", "lab_prefix", "lab_of_names",
                              "lab_of_hidden"}),
    "Glossary": frozenset(),
}
VIEW_TABS: dict[str, tuple[str, ...]] = {"Embeddings": ("map", "analogies", "directions", "similarity", "context")}
# The sections of each view's page, in the order the page draws them (each is a `@ui.section(name)` function of
# the page; tests/test_lessons.py checks the two agree). A step that names one is drawn alone in the presenter
# view: its chart or charts and the controls the step names, which is what fits a projector without scrolling.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Home": ("tokens", "prediction"),
    "Model_map": ("map", "part", "compare"),
    "Embeddings": ("map", "analogies", "neighbours", "directions", "similarity", "context"),
    "Attention": ("overview", "head", "compare", "qk", "values", "order", "roles", "induction"),
    "MLP_neurons": ("job", "top", "token", "all"),
    "Logit_lens": ("grid", "follow", "norms"),
    "Next_token": ("grow", "distribution", "timeline"),
    "Generate": ("controls", "output", "batch"),
    "Interventions": ("experiment", "choose", "before_after", "attribution"),
    "Anatomy": ("counts", "bytes", "files", "scale"),
    "Tiny_LM_lab": ("data", "lr", "train", "sample", "overfit"),
    "Glossary": (),
}
# Names a lesson cannot set, and why.
FORBIDDEN = {
    "model": "the model is the lesson's own `model` field, not a step's",
    "steps": "it holds token ids of one model; ask a `sample_with_seed` or `next_token` question instead",
    "view": "it is a step number of a text made by clicking on Next token",
    "track": "it holds a token id of one model; use `word` to follow a word instead",
    "lesson": "it is the lesson player's own: the lesson is the file itself",
    "step": "it is the lesson player's own: the step is the step's place in the file",
    "present": "it is the lesson player's own: the teacher switches the presenter view",
    "room": "it is a class poll's room code, which lives only while the teacher's poll is open",
    "me": "it is a student's anonymous id on a class poll's page",
}


# -- the values: the pages' ranges and choices, checked with links' menders -----------------------------------

@dataclass(frozen=True)
class Rule:
    """How a link value is checked without a model. kind: number, choice, flag, text, index (a whole number
    ≥ 0 whose upper bound depends on the model), range (first,last positions), heads, neurons."""

    kind: str
    lo: float = 0
    hi: float = 0
    integer: bool = False
    options: tuple[str, ...] = ()
    max_chars: int = links.MAX_VALUE_CHARS


def _num(lo, hi, integer=True) -> Rule:
    return Rule("number", lo, hi, integer)


def _choice(options) -> Rule:
    return Rule("choice", options=tuple(str(o) for o in options))


_TEXT, _FLAG, _INDEX = Rule("text"), Rule("flag"), Rule("index")
RULES: dict[str, Rule] = {
    "prompt": _TEXT, "compare": _TEXT, "max_tokens": _num(8, 4096), "layer": _INDEX, "head": _INDEX, "neuron": _INDEX,
    "token": _INDEX, "temperature": _num(0.0, 5.0, False), "top_k": _num(0, 10_000_000),
    "top_p": _num(0.0, 1.0, False), "min_p": _num(0.0, 1.0, False), "repetition_penalty": _num(1.0, 3.0, False),
    "seed": _num(0, 2**31 - 1), "tab": _choice(sorted(links.TAB_NAMES)),
    # Word vectors
    "map_preset": _choice(content.MAP_PRESETS), "map_words": _TEXT, "map_dims": _choice(["2-D", "3-D"]),
    "map_align": _FLAG, "an_preset": _choice(content.ANALOGY_PRESETS), "an_a": _TEXT, "an_b": _TEXT, "an_c": _TEXT,
    "an_k": _num(3, 20), "an_variants": _FLAG, "an_vs": _TEXT, "nb_word": _TEXT,
    "dir_preset": _choice(content.DIRECTION_PRESETS),
    "dir_axis": _TEXT, "dir_words": _TEXT, "sim_words": _TEXT, "ctx_preset": _choice(content.CONTEXT_PRESETS),
    "ctx_word": _TEXT, "ctx_sentences": _TEXT, "ctx_center": _FLAG,
    # Model map: every box id of every family (tests/test_model_map.py checks the maps' ids are among them)
    "open_block": _FLAG,
    "box": _choice(["tokens", "embed", "pos", "block", "final_norm", "unembed", "softmax", "attn_norm", "attn.q",
                    "attn.k", "attn.v", "attn.rotary", "attn.pattern", "attn.z", "attn.out", "add_attn", "mlp_norm",
                    "mlp.gate", "mlp.up", "mlp.act", "mlp.down", "add_mlp"]),
    # MLP neurons, Logit lens, Next token
    "mlp_n": _num(5, 40), "skip_first": _FLAG, "window": Rule("range"), "att_window": Rule("range"), "word": _TEXT,
    "space": _FLAG,
    "show": _num(5, 40),
    # Generate
    "template": _choice([*content.TEMPLATES, "shared"]), "gen_text": _TEXT, "max_new": _num(1, 256), "stop": _TEXT,
    "batch": _TEXT, "pad_side": _choice(["left", "right"]),
    # Interventions
    "ablate_heads": Rule("heads"), "ablate_neurons": Rule("neurons"),
    # Tiny LM lab
    "lab_block": _num(1, 8), "lab_embd": _choice([2, 3, 4, 5, 6, 8, 10, 16, 24]),
    "lab_hidden": _choice([10, 25, 50, 100, 200, 300, 500]), "lab_seed": _num(0, 10_000),
    "lab_lr": _choice(f"{r:g}" for r in [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]),
    "lab_steps": _num(10, 50_000), "lab_every": _num(10, 5000), "lab_batch": _choice([8, 16, 32, 64, 128, 256]),
    "lab_n": _num(5, 40), "lab_temp": _num(0.1, 2.0, False), "lab_sample_seed": _num(0, 10_000),
    "lab_prefix": Rule("text", max_chars=20), "lab_of_names": _num(10, 400),
    "lab_of_hidden": _choice([50, 100, 200, 300, 500]),
}
COMPRESSED = frozenset({"prompt", "compare", "gen_text", "batch"})   # written in a link by links.encode_prompt


def written(value: Any) -> str:
    """A TOML value as a link writes it: numbers as plain decimals, flags as 1/0, text as it is."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    raise TypeError(type(value).__name__)


def check_value(name: str, raw: str) -> str | None:
    """Why link value `raw` of `name` is not one a page would take as it is (None: it is), without a model."""
    rule = RULES[name]
    if rule.kind == "number":
        m = links.number(name, raw, rule.lo, rule.hi, rule.lo, rule.integer)
        if m.notice:
            kind = "a whole number" if rule.integer else "a number"
            lo, hi = (str(int(x)) if rule.integer else f"{x:g}" for x in (rule.lo, rule.hi))
            return f"{raw!r} is not {kind} from {lo} to {hi}"
        return None
    if rule.kind == "choice":
        if links.choice(name, raw, rule.options, None).notice:
            return f"{raw!r} is not one of: {', '.join(rule.options)}"
        return None
    if rule.kind == "flag":
        return None if links.flag(name, raw, False).notice is None else f"{raw!r} is not a flag (true/false, 1/0)"
    if rule.kind == "text":
        if links.text(name, raw).notice or len(raw) > rule.max_chars:
            return f"is {len(raw):,} characters long; at most {rule.max_chars:,}"
        if name in ("prompt", "gen_text") and not raw.strip():
            return "is empty"
        return None
    if rule.kind == "index":
        return None if raw.isdigit() else f"{raw!r} is not a whole number 0 or more"
    if rule.kind == "range":
        m = links.int_range(name, raw, 0, 10**9, (0, 0))
        return f"{raw!r} is not two positions, first,last" if m.notice else None
    try:
        (interventions.parse_heads if rule.kind == "heads" else interventions.parse_neurons)(raw)
    except ExplainerError as e:
        return str(e)
    return None


# -- the lesson records -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A question's answer, computed from the model: the text to reveal, and the numbers behind it."""

    kind: str
    text: str
    numbers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    text: str
    kind: str
    inputs: Mapping[str, Any]       # every input the kind needs, defaults from the step's state filled in
    given: frozenset[str] = frozenset()   # the inputs the file itself wrote


@dataclass(frozen=True)
class Step:
    number: int                     # 1-based
    title: str
    view: str
    state: Mapping[str, str]        # URL parameters as written, except that prompts are not compressed
    narration: str
    question: Question | None = None
    tries: tuple[str, ...] = ()
    section: tuple[str, ...] | None = None  # the sections of its page the presenter view draws (SECTIONS)
    controls: tuple[str, ...] | None = None  # the controls the presenter view shows; None: the state's, but the prompt

    @property
    def shown_controls(self) -> frozenset[str]:
        """The link names whose controls the presenter view draws: `controls`, else every name the step sets
        except the prompt (the charts show its tokens; a teacher who wants to type leaves the presenter view)
        and the tab (its section is drawn alone)."""
        if self.controls is not None:
            return frozenset(self.controls)
        return frozenset(self.state) - {"prompt", "tab"}     # the tab: the section shows it

    def link(self) -> dict[str, str]:
        """The step's URL parameters exactly as the page reads them (long prompts compressed)."""
        return {k: links.encode_prompt(v) if k in COMPRESSED else v for k, v in self.state.items()}

    @property
    def prompt(self) -> str:
        """The prompt the view shows (Generate: its own prompt, from its template unless given)."""
        return shown_prompt(self.view, self.state)


@dataclass(frozen=True)
class Lesson:
    name: str                       # the file's stem: `lesson=` in a link
    source: str                     # where it was read from (for messages)
    title: str
    summary: str
    level: str
    minutes: int
    model: str
    steps: tuple[Step, ...]
    order: int = 100
    text: str = field(default="", repr=False, compare=False)   # the TOML source as loaded (to download)

    def step(self, number: int) -> Step:
        """Step `number` (1-based), clamped to the lesson's steps."""
        return self.steps[max(1, min(int(number), len(self.steps))) - 1]


def shown_prompt(view: str, state: Mapping[str, str]) -> str:
    if view == "Generate":
        if "gen_text" in state:
            return state["gen_text"]
        template = state.get("template", "qa")
        if template != "shared":
            return content.TEMPLATES[template].text
    return state.get("prompt", content.DEFAULT_PROMPT)


# -- question kinds ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Input:
    """One input of a question kind: its type, its default (None: required) and the state name it follows."""

    kind: str                       # "text", "int", "float", "bool", "heads", "neurons", or "choice"
    default: Any = None
    state: str | None = None        # the step's link name whose value is the default
    lo: float = -math.inf
    hi: float = math.inf
    options: tuple[str, ...] = ()


_PROMPT = Input("text", state="prompt")
_SETTINGS = {"temperature": Input("float", state="temperature", lo=0.0, hi=5.0),
             "top_k": Input("int", state="top_k", lo=0, hi=10_000_000),
             "top_p": Input("float", state="top_p", lo=0.0, hi=1.0)}


@dataclass(frozen=True)
class Kind:
    inputs: Mapping[str, Input]
    compute: Callable[[LoadedModel, Mapping[str, Any], MutableMapping], Answer]
    help: str


def _memo(memo: MutableMapping, key: tuple, make: Callable[[], Any]) -> Any:
    if key not in memo:
        memo[key] = make()
    return memo[key]


def _quote(token: str) -> str:
    return f"“{show_token(token)}”"


def _top_list(lm, probs: np.ndarray, n: int = 5) -> list[dict]:
    ids = [int(i) for i in sampling.top_k(probs, n)]
    return [{"token": t, "id": i, "prob": float(probs[i])} for t, i in zip(token_strings(lm.tokenizer, ids), ids)]


def _next_token(lm, q, memo) -> Answer:
    enc = encode(lm, q["prompt"])
    logits = _memo(memo, ("next_logits", enc.ids), lambda: generation.next_logits(lm, enc.ids))
    dist = sampling.probabilities(logits, q["temperature"], q["top_k"], q["top_p"])
    best = dist.argmax
    token = token_strings(lm.tokenizer, [best])[0]
    p = float(dist.probs[best])
    return Answer("next_token", f"{_quote(token)}, with probability {p:.0%}",
                  {"token": token, "token_id": best, "prob": p, "top": _top_list(lm, dist.probs),
                   "n_tokens": len(enc.ids)})


def _tokens_kept(lm, q, memo) -> Answer:
    enc = encode(lm, q["prompt"])
    logits = _memo(memo, ("next_logits", enc.ids), lambda: generation.next_logits(lm, enc.ids))
    dist = sampling.probabilities(logits, q["temperature"], q["top_k"], q["top_p"])
    n = int(dist.n_kept)
    return Answer("tokens_kept", f"{n:,} of the {dist.vocab_size:,} tokens can still be drawn",
                  {"n_kept": n, "vocab_size": int(dist.vocab_size), "mass_cut": float(dist.mass_cut),
                   "top_prob": float(dist.probs[dist.argmax]), "entropy_bits": float(dist.entropy)})


def _prompt_tokens(lm, q, memo) -> Answer:
    enc = encode(lm, q["prompt"])
    shown = " · ".join(show_token(t) for t in enc.tokens)
    return Answer("prompt_tokens", f"{len(enc.ids)} tokens: {shown}",
                  {"n_tokens": len(enc.ids), "tokens": list(enc.tokens), "ids": list(enc.ids),
                   "n_ctx": int(lm.n_ctx)})


def _analogy(lm, q, memo) -> Answer:
    res = vectors.analogy(lm, [q["a"], q["c"]], [q["b"]], k=5, exclude_inputs=True,
                          exclude_variants=q["exclude_variants"])
    best = res.best
    return Answer("analogy", f"{res.expression} ≈ {_quote(best.text)} (cosine {best.cosine:.2f})",
                  {"token": best.text, "token_id": best.id, "cosine": best.cosine,
                   "top": [{"token": n.text, "id": n.id, "cosine": n.cosine} for n in res.neighbours]})


def _head_scores(lm, memo) -> dict:
    return _memo(memo, ("head_scores",), lambda: heads.head_scores(lm))


def _strongest_head(lm, q, memo) -> Answer:
    role = q["role"]
    top = heads.top_heads(_head_scores(lm, memo)[role], k=3)
    best = top[0]
    label = role.replace("_", "-")
    return Answer(q.get("_kind", "strongest_head"),
                  f"layer {best.layer}, head {best.head} (its {label} score: {best.score:.2f} of 1)",
                  {"layer": best.layer, "head": best.head, "score": best.score, "role": role,
                   "top": [{"layer": t.layer, "head": t.head, "score": t.score} for t in top]})


def _induction_head(lm, q, memo) -> Answer:
    return _strongest_head(lm, {**q, "role": "induction", "_kind": "induction_head"}, memo)


def _row_name(row: int, n_layers: int) -> str:
    if row == 0:
        return "already in the embeddings, before block 0"
    return f"after block {row - 1}" + (" (the last block: only at the very end)" if row == n_layers else
                                       f" of {n_layers} (blocks 0 to {n_layers - 1})")


def _lens(lm, prompt, memo):
    return _memo(memo, ("lens", prompt), lambda: lens.logit_lens(lm, trace(lm, prompt)))


def _lens_settles(lm, q, memo) -> Answer:
    res = _lens(lm, q["prompt"], memo)
    row = res.settled_layer(-1)
    L = res.ids.shape[0] - 1
    token = str(res.strings[-1, -1, 0])
    return Answer("lens_settles", f"{_quote(token)} becomes the top guess {_row_name(row, L)} and stays there",
                  {"row": row, "block": row - 1, "n_layers": L, "token": token,
                   "prob": float(res.probs[-1, -1, 0])})


def _ablation(lm, q, memo) -> Answer:
    prompt = q["prompt"]
    hs = q["heads"]
    if hs == "suggested":    # what the Interventions page suggests (and shows when the link names no heads)
        tr = _memo(memo, ("trace", prompt), lambda: trace(lm, prompt))
        attr = _memo(memo, ("attribution", prompt), lambda: interventions.attribution(lm, tr))
        hs = attr.top_heads(int(q["n_suggested"]))
    elif hs == "induction":  # the model's strongest induction heads, whichever they are
        hs = [(t.layer, t.head) for t in heads.top_heads(_head_scores(lm, memo)["induction"], int(q["n_suggested"]))]
    ns = q["neurons"]
    res = interventions.ablate(lm, prompt, hs, ns)
    cmp = interventions.compare(lm, res)
    b, a = cmp.top_before, cmp.top_after
    pb, pa, pba = cmp.prob_before(b), cmp.prob_after(a), cmp.prob_after(b)
    parts = ", ".join([interventions.head_label(*h) for h in res.heads] +
                      [interventions.neuron_label(*n) for n in res.neurons]) or "nothing"
    if a == b:
        text = (f"with {parts} off, the prediction stays {_quote(cmp.token(b))}: {pb:.0%} before, {pba:.0%} after")
    else:
        text = (f"with {parts} off, the prediction changes from {_quote(cmp.token(b))} ({pb:.0%}) to "
                f"{_quote(cmp.token(a))} ({pa:.0%}); {_quote(cmp.token(b))} falls to {pba:.1%}")
    return Answer("ablation_effect", text,
                  {"heads": [list(h) for h in res.heads], "neurons": [list(n) for n in res.neurons],
                   "before": cmp.token(b), "before_id": b, "prob_before": pb, "after": cmp.token(a), "after_id": a,
                   "prob_after": pa, "prob_before_token_after": pba, "changed": a != b, "kl_bits": cmp.kl_bits})


def _gen_config(q) -> generation.GenConfig:
    return generation.GenConfig(max_new_tokens=q["max_new"], temperature=q["temperature"], top_k=q["top_k"],
                                top_p=q["top_p"], stop=generation.parse_stop(q["stop"]), seed=q["seed"])


def _sample(lm, q, memo) -> Answer:
    out = generation.generate(lm, q["prompt"], _gen_config(q))
    mean_p = sum(t.prob for t in out.tokens) / max(len(out.tokens), 1)
    return Answer("sample_with_seed", f"“{out.text}”",
                  {"text": out.text, "n_tokens": len(out.tokens), "reason": out.reason,
                   "token_ids": [t.token_id for t in out.tokens], "mean_prob": mean_p,
                   "lowest_prob": min((t.prob for t in out.tokens), default=0.0)})


HEAD_SETS = ("suggested", "induction")   # heads named by what they do, found on whichever model runs the lesson
PARTS = ("total", "embedding", "attention", "mlp", "norms", "per_layer", "blocks")


def _parameter_count(lm, q, memo) -> Answer:
    pc = anatomy.count_parameters(lm.config)
    part = q["part"]
    n = {"total": pc.total, "embedding": pc.embedding, "attention": pc.attention, "mlp": pc.mlp, "norms": pc.norms,
         "per_layer": pc.per_layer, "blocks": pc.per_layer * pc.n_layers}[part]
    what = {"total": "parameters", "embedding": "parameters in the token embedding",
            "attention": "parameters in attention (all blocks)", "mlp": "parameters in the MLPs (all blocks)",
            "norms": "parameters in the norms", "per_layer": "parameters per block",
            "blocks": "parameters in the blocks"}[part]
    prec = q["precision"]
    numbers = {"count": n, "share": n / pc.total, "total": pc.total, "n_layers": pc.n_layers}
    text = f"{n:,} {what} (about {anatomy.human_count(n)}" + (
        ")" if part == "total" else f", {n / pc.total:.0%} of all {pc.total:,})")
    if prec:
        nbytes = int(math.ceil(n * anatomy.BYTES_PER_PARAM[prec]))
        numbers["bytes"] = nbytes
        text += f": {anatomy.human_bytes(nbytes)} at {prec}"
    return Answer("parameter_count", text, numbers)


SIZES = {"layers": ("n_layers", "blocks (layers)"), "heads": ("n_heads", "attention heads per block"),
         "d_model": ("d_model", "numbers in every token's vector (d_model)"),
         "d_mlp": ("d_mlp", "neurons in every block's MLP"), "vocab": ("vocab_size", "tokens in the vocabulary"),
         "context": ("n_ctx", "tokens in the context window")}


def _model_size(lm, q, memo) -> Answer:
    attr, what = SIZES[q["what"]]
    n = int(getattr(lm, attr))
    return Answer("model_size", f"{n:,} {what}", {"value": n})


def _char_params(lm, q, memo) -> Answer:
    cfg = makemore.MLPConfig(q["block"], q["embd"], q["hidden"])
    n = cfg.n_params
    return Answer("char_model_params", f"{n:,} parameters",
                  {"count": n, "embedding_table": makemore.VOCAB * cfg.n_embd})


def _uniform_loss(lm, q, memo) -> Answer:
    v = makemore.UNIFORM_LOSS
    return Answer("uniform_loss", f"ln {makemore.VOCAB} ≈ {v:.2f}", {"loss": v, "n_symbols": makemore.VOCAB})


_GEN = {"prompt": _PROMPT, "seed": Input("int", state="seed", lo=0, hi=2**31 - 1), **_SETTINGS,
        "max_new": Input("int", state="max_new", lo=1, hi=256), "stop": Input("text", "", state="stop")}
_LAB = {"block": Input("int", 3, state="lab_block", lo=1, hi=8), "embd": Input("int", 2, state="lab_embd", lo=1, hi=64),
        "hidden": Input("int", 100, state="lab_hidden", lo=1, hi=1000)}
QUESTION_KINDS: dict[str, Kind] = {
    "next_token": Kind({"prompt": _PROMPT, "temperature": Input("float", 1.0, lo=0.0, hi=5.0),
                        "top_k": Input("int", 0, lo=0, hi=10_000_000), "top_p": Input("float", 1.0, lo=0.0, hi=1.0)},
                       _next_token, "the most likely next token and its probability (temperature 1, no filters "
                                    "unless given)"),
    "tokens_kept": Kind({"prompt": _PROMPT, **_SETTINGS}, _tokens_kept,
                        "how many tokens can still be drawn after temperature, top-k and top-p"),
    "prompt_tokens": Kind({"prompt": _PROMPT}, _prompt_tokens, "how many tokens the prompt is, and which"),
    "analogy": Kind({"a": Input("text", state="an_a"), "b": Input("text", state="an_b"),
                     "c": Input("text", state="an_c"), "exclude_variants": Input("bool", True, state="an_variants")},
                    _analogy, "where a − b + c lands: the nearest token by cosine, the inputs left out"),
    "induction_head": Kind({}, _induction_head, "the strongest induction head (on repeated random tokens)"),
    "strongest_head": Kind({"role": Input("choice", options=heads.ROLES)}, _strongest_head,
                           "the strongest head of a role: previous_token, first_token or induction"),
    "lens_settles": Kind({"prompt": _PROMPT}, _lens_settles,
                         "the block after which the logit lens's top guess for the next token settles"),
    "ablation_effect": Kind({"prompt": _PROMPT, "heads": Input("heads", "suggested", state="ablate_heads"),
                             "neurons": Input("neurons", (), state="ablate_neurons"),
                             "n_suggested": Input("int", 3, lo=1, hi=10)}, _ablation,
                            "the prediction and its probability before and after switching heads or neurons off "
                            "(heads = \"suggested\": the page's suggested heads; \"induction\": the strongest "
                            "induction heads)"),
    "sample_with_seed": Kind(_GEN, _sample, "the text a seed and the sampling settings give"),
    "parameter_count": Kind({"part": Input("choice", "total", options=PARTS),
                             "precision": Input("choice", "", options=("", *anatomy.BYTES_PER_PARAM))},
                            _parameter_count, "how many parameters (of one part), and the bytes at a precision"),
    "model_size": Kind({"what": Input("choice", options=tuple(SIZES))}, _model_size,
                       "one number of the model's shape: layers, heads, d_model, d_mlp, vocab or context"),
    "char_model_params": Kind(_LAB, _char_params, "the parameters of the Tiny LM lab's character model"),
    "uniform_loss": Kind({}, _uniform_loss, "the loss of guessing uniformly among the lab's 27 symbols"),
}


def answer(question: Question, lm: LoadedModel, memo: MutableMapping | None = None) -> Answer:
    """Compute a question's answer from `lm`. `memo` (a dict kept per model by the caller) shares work
    between questions: the head-role scores, traces, lenses and logits of a prompt."""
    q = dict(question.inputs)
    return QUESTION_KINDS[question.kind].compute(lm, q, {} if memo is None else memo)


# -- parsing ----------------------------------------------------------------------------------------------------

class _Where:
    """Builds LessonErrors that name the file, the step and the field."""

    def __init__(self, source: str):
        self.source = source
        self.step: tuple[int, str] | None = None

    def error(self, fld: str, what: str, fix: str = "") -> LessonError:
        at = f"{self.source}: "
        if self.step is not None:
            n, title = self.step
            at += f"step {n}" + (f" (“{title}”)" if title else "") + ", "
        return LessonError(f"{at}`{fld}`: {what}.", fix, source=self.source,
                           step=self.step[0] if self.step else None, field=fld)


def _text(w: _Where, table: Mapping, key: str, limit: int, prefix: str = "", required: bool = True) -> str | None:
    fld = prefix + key
    if key not in table:
        if required:
            raise w.error(fld, "missing", f"Add `{key} = \"...\"`.")
        return None
    v = table[key]
    if not isinstance(v, str):
        raise w.error(fld, f"should be text, not {type(v).__name__}", "Put the text in quotes.")
    if not v.strip():
        raise w.error(fld, "is empty")
    if len(v) > limit:
        raise w.error(fld, f"is {len(v):,} characters long; at most {limit:,}", "Shorten it.")
    if "\x00" in v:
        raise w.error(fld, "contains a NUL character")
    return v.strip()


def _unknown(w: _Where, table: Mapping, allowed, prefix: str = "") -> None:
    for k in table:
        if k not in allowed:
            raise w.error(prefix + k, "is not a field of a lesson" if not prefix else "is not a known field here",
                          f"Use one of: {', '.join(sorted(allowed))}.")


def _state(w: _Where, view: str, raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise w.error("state", "should be a table of URL parameters", "Write state = { prompt = \"...\" }.")
    out: dict[str, str] = {}
    allowed = VIEW_PARAMS[view] | _SIDEBAR
    for name, value in raw.items():
        fld = f"state.{name}"
        if name in FORBIDDEN:
            raise w.error(fld, f"cannot be set by a lesson: {FORBIDDEN[name]}")
        if name not in links.NAMES:
            raise w.error(fld, "is not a URL parameter of the app", "See ARCHITECTURE.md, “The URL contract”.")
        if name not in allowed:
            reads = ", ".join(sorted(allowed))
            raise w.error(fld, f"is not used by the {view} view", f"It reads: {reads}.")
        if isinstance(value, (list, tuple)) and name in ("ablate_heads", "ablate_neurons", "window"):
            value = ",".join(written(v) for v in value)
        try:
            v = written(value)
        except TypeError:
            raise w.error(fld, f"should be text, a number or true/false, not a TOML {type(value).__name__}") from None
        if name == "tab" and v not in VIEW_TABS.get(view, ()):
            tabs = VIEW_TABS.get(view)
            raise w.error(fld, f"{v!r} is not a tab of the {view} view",
                          f"Use one of: {', '.join(tabs)}." if tabs else "This view has no tabs.")
        problem = check_value(name, v)
        if problem:
            raise w.error(fld, problem)
        out[name] = v
    return out


def _coerce(w: _Where, fld: str, spec: Input, v: Any, from_state: bool) -> Any:
    """A question input as its kind wants it (state values arrive as link text)."""
    kind = spec.kind
    try:
        if kind == "text":
            if not isinstance(v, str):
                raise ValueError("should be text")
            if len(v) > links.MAX_VALUE_CHARS:
                raise ValueError(f"is longer than {links.MAX_VALUE_CHARS:,} characters")
            return v
        if kind == "bool":
            if isinstance(v, bool):
                return v
            if from_state:
                return links.flag(fld, v, True).value
            raise ValueError("should be true or false")
        if kind in ("int", "float"):
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ValueError("should be a number")
            x = float(v)
            if kind == "int" and x != int(x):
                raise ValueError("should be a whole number")
            x = int(x) if kind == "int" else x
            if not spec.lo <= x <= spec.hi:
                raise ValueError(f"is out of range ({spec.lo:g} to {spec.hi:g})")
            return x
        if kind == "choice":
            if v not in spec.options:
                raise ValueError(f"{v!r} is not one of: {', '.join(repr(o) for o in spec.options)}")
            return v
        if kind in ("heads", "neurons"):
            if kind == "heads" and v in HEAD_SETS:
                return v
            parse = interventions.parse_heads if kind == "heads" else interventions.parse_neurons
            return tuple(parse(v if isinstance(v, str) else [str(x) for x in v]))
    except ExplainerError as e:
        raise w.error(fld, str(e).rstrip(".")) from None
    except ValueError as e:
        raise w.error(fld, f"{v!r} " + str(e) if not str(e).startswith(repr(v)) else str(e)) from None
    raise AssertionError(kind)


def _question(w: _Where, raw: Any, view: str, state: Mapping[str, str]) -> Question:
    if not isinstance(raw, Mapping):
        raise w.error("question", "should be a table", "Write [steps.question] with text and kind.")
    text = _text(w, raw, "text", MAX_QUESTION_CHARS, "question.")
    kind = raw.get("kind")
    if kind is None:
        raise w.error("question.kind", "missing", f"Use one of: {', '.join(QUESTION_KINDS)}.")
    if kind not in QUESTION_KINDS:
        raise w.error("question.kind", f"{kind!r} is not a question kind",
                      f"Use one of: {', '.join(QUESTION_KINDS)}.")
    spec = QUESTION_KINDS[kind].inputs
    _unknown(w, raw, {"text", "kind", *spec}, "question.")
    inputs: dict[str, Any] = {}
    for name, inp in spec.items():
        fld = f"question.{name}"
        if name in raw:
            inputs[name] = _coerce(w, fld, inp, raw[name], False)
        elif name == "prompt":
            inputs[name] = shown_prompt(view, state)
        elif inp.state and inp.state in state:
            inputs[name] = _coerce(w, fld, inp, state[inp.state], True)
        elif name in ("a", "b", "c"):    # the analogy the Embeddings page shows: its preset's words
            preset = content.ANALOGY_PRESETS[state.get("an_preset", next(iter(content.ANALOGY_PRESETS)))]
            inputs[name] = preset["abc".index(name)]
        elif inp.default is not None:
            inputs[name] = inp.default
        else:
            where = f" or the step's `state.{inp.state}`" if inp.state else ""
            raise w.error(fld, "missing", f"Give it in the question{where}.")
    if kind in ("tokens_kept", "next_token", "sample_with_seed"):
        try:
            sampling.Settings(inputs["temperature"], inputs["top_k"], inputs["top_p"]).checked(10**9)
        except ExplainerError as e:
            raise w.error("question", str(e).rstrip(".")) from None
    return Question(text=text, kind=kind, inputs=inputs, given=frozenset(k for k in raw if k in spec))


STEP_FIELDS = {"title", "view", "section", "controls", "state", "narration", "question", "try"}
LESSON_FIELDS = {"title", "summary", "level", "minutes", "model", "order", "steps"}


def _step(w: _Where, n: int, raw: Any) -> Step:
    w.step = (n, "")
    if not isinstance(raw, Mapping):
        raise w.error("steps", "should be a table", "Start each step with [[steps]].")
    title = raw.get("title")
    w.step = (n, title[:60] if isinstance(title, str) else "")
    _unknown(w, raw, STEP_FIELDS, "")
    title = _text(w, raw, "title", MAX_TITLE_CHARS)
    view = raw.get("view")
    if view is None:
        raise w.error("view", "missing", f"Use one of: {', '.join(VIEWS)}.")
    if view not in VIEWS:
        raise w.error("view", f"{view!r} is not a view of the app", f"Use one of: {', '.join(VIEWS)}.")
    state = _state(w, view, raw.get("state", {}))
    section = raw.get("section")
    if section is not None:
        names = [section] if isinstance(section, str) else section
        if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
            raise w.error("section", "should be a section's name or a list of them", 'Write section = "head".')
        for x in names:
            if x not in SECTIONS[view]:
                raise w.error("section", f"{x!r} is not a section of {view}",
                              f"Use one of: {', '.join(SECTIONS[view])}." if SECTIONS[view]
                              else f"{view} has no sections.")
        section = tuple(names)
    controls = raw.get("controls")
    if controls is not None:
        if not isinstance(controls, list) or not all(isinstance(c, str) for c in controls):
            raise w.error("controls", "should be a list of link names", 'Write controls = ["temperature"].')
        bad = [c for c in controls if c not in VIEW_PARAMS[view] | _SIDEBAR]
        if bad:
            raise w.error("controls", f"{bad[0]!r} is not a control of {view}",
                          f"Use the names of its link: {', '.join(sorted(VIEW_PARAMS[view]))}.")
        controls = tuple(controls)
    narration = _text(w, raw, "narration", MAX_NARRATION_CHARS)
    question = _question(w, raw["question"], view, state) if "question" in raw else None
    tries = raw.get("try", [])
    if not isinstance(tries, list) or not all(isinstance(t, str) and t.strip() for t in tries):
        raise w.error("try", "should be a list of suggestions (text)", "Write try = [\"...\", \"...\"].")
    if len(tries) > MAX_TRIES:
        raise w.error("try", f"has {len(tries)} suggestions; at most {MAX_TRIES}")
    for t in tries:
        if len(t) > MAX_TRY_CHARS:
            raise w.error("try", f"a suggestion is {len(t)} characters long; at most {MAX_TRY_CHARS}")
    return Step(number=n, title=title, view=view, state=state, narration=narration, question=question,
                tries=tuple(t.strip() for t in tries), section=section, controls=controls)


def parse(data: bytes | str, name: str, source: str | None = None) -> Lesson:
    """A lesson from the text of a TOML file; `name` is its stem (the `lesson=` of a link), `source` how
    messages name it (the file name by default). Raises LessonError."""
    source = source or f"{name}.toml"
    w = _Where(source)
    if not NAME_RE.match(name):
        raise w.error("file name", f"{name!r} cannot go in a link",
                      "Name the file with letters, digits, - and _ only (at most 64), e.g. my-lesson.toml.")
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_FILE_BYTES:
        raise w.error("file", f"is {math.ceil(len(raw) / 1024)} KB; a lesson file may be at most "
                              f"{MAX_FILE_BYTES // 1024} KB", "Split it into two lessons.")   # rounded up
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise w.error("file", "is not UTF-8 text", "Save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as e:
        raise w.error("file", f"is not valid TOML ({e})", "Check the quotes and brackets on that line.") from None
    _unknown(w, doc, LESSON_FIELDS)
    title = _text(w, doc, "title", MAX_TITLE_CHARS)
    summary = _text(w, doc, "summary", MAX_SUMMARY_CHARS)
    if "\n" in summary:
        raise w.error("summary", "should be one line")
    level = _text(w, doc, "level", MAX_LEVEL_CHARS)
    model = _text(w, doc, "model", 200)
    minutes = doc.get("minutes")
    if minutes is None:
        raise w.error("minutes", "missing", "Add minutes = 45.")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        raise w.error("minutes", f"{minutes!r} is not a whole number of minutes from 1 to {MAX_MINUTES}")
    order = doc.get("order", 100)
    if isinstance(order, bool) or not isinstance(order, int):
        raise w.error("order", f"{order!r} is not a whole number")
    steps = doc.get("steps")
    if steps is None:
        raise w.error("steps", "missing", "Add at least one [[steps]] table.")
    if not isinstance(steps, list):
        raise w.error("steps", "should be a list of tables", "Start each step with [[steps]].")
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise w.error("steps", f"has {len(steps)} steps; a lesson has {MIN_STEPS} to {MAX_STEPS}",
                      "Split a long lesson into two." if steps else "Add a [[steps]] table.")
    parsed = tuple(_step(w, i + 1, s) for i, s in enumerate(steps))
    return Lesson(name=name, source=source, title=title, summary=summary, level=level, minutes=minutes,
                  model=model, steps=parsed, order=order, text=raw.decode("utf-8"))


def load(path: str | Path) -> Lesson:
    """One lesson file. Raises LessonError (an unreadable or oversized file too)."""
    p = Path(path)
    w = _Where(p.name)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise w.error("file", f"is {math.ceil(size / 1024)} KB; a lesson file may be at most "
                                  f"{MAX_FILE_BYTES // 1024} KB", "Split it into two lessons.")
        data = p.read_bytes()
    except OSError as e:
        raise w.error("file", f"cannot be read ({e.strerror or e})") from None
    return parse(data, p.stem, p.name)


@dataclass(frozen=True)
class Loaded:
    """Every lesson of a folder that loaded, in picker order, and the errors of those that did not."""

    lessons: tuple[Lesson, ...]
    errors: tuple[LessonError, ...]

    def get(self, name: str) -> Lesson | None:
        return next((lesson for lesson in self.lessons if lesson.name == name), None)


def load_all(folder: str | Path = LESSONS_DIR) -> Loaded:
    """Load every `*.toml` in `folder`; a bad file adds its LessonError and the others still load."""
    good, bad = [], []
    files = sorted(Path(folder).glob("*.toml")) if Path(folder).is_dir() else []
    for f in files:
        try:
            good.append(load(f))
        except LessonError as e:
            bad.append(e)
    good.sort(key=lambda lesson: (lesson.order, lesson.name))
    return Loaded(tuple(good), tuple(bad))


# -- what depends on the model ----------------------------------------------------------------------------------

def validate_for(lesson: Lesson, lm: LoadedModel) -> tuple[LessonError, ...]:
    """What in `lesson` the model `lm` does not have: a layer, head, neuron or token position out of its
    range, a prompt or a word it cannot read. Empty when every step and question fits (then every
    question can be answered). Model-independent checks were done when the lesson was parsed."""
    problems: list[LessonError] = []
    w = _Where(lesson.source)
    L, H, M = lm.n_layers, lm.n_heads, lm.d_mlp

    def check(fld: str, ok: bool, what: str, fix: str) -> None:
        if not ok:
            problems.append(w.error(fld, what, fix))

    for s in lesson.steps:
        w.step = (s.number, s.title[:60])
        st = s.state
        n_tokens = None
        if "prompt" in VIEW_PARAMS[s.view]:
            try:
                n_tokens = len(encode(lm, s.prompt, int(st["max_tokens"]) if "max_tokens" in st else 256).ids)
            except ExplainerError as e:
                problems.append(w.error("state.prompt", str(e).rstrip(".")))
        for name, n, what in (("layer", L, "layers"), ("head", H, "heads per layer"), ("neuron", M, "neurons")):
            if name in st:
                check(f"state.{name}", int(st[name]) < n, f"{st[name]} is out of range: {lm.label} has {n} {what}",
                      f"Use 0 to {n - 1}.")
        if n_tokens is not None and "token" in st:
            check("state.token", int(st["token"]) < n_tokens,
                  f"position {st['token']} is past the end of the prompt ({n_tokens} tokens here)",
                  f"Use 0 to {n_tokens - 1}.")
        for name in ("window", "att_window"):
            if n_tokens is not None and name in st:
                first, last = links.int_range(name, st[name], 0, 10**9, (0, 0)).value
                check(f"state.{name}", last < n_tokens, f"goes past the end of the prompt ({n_tokens} tokens here)",
                      f"Use positions 0 to {n_tokens - 1}.")
        for name in ("ablate_heads", "ablate_neurons"):
            if st.get(name):
                parse = interventions.parse_heads if name == "ablate_heads" else interventions.parse_neurons
                try:
                    interventions.ablation_hooks(lm, *((parse(st[name]), ()) if name == "ablate_heads"
                                                       else ((), parse(st[name]))))
                except ExplainerError as e:
                    problems.append(w.error(f"state.{name}", str(e).rstrip(".")))
        if s.question is not None:
            problems += [w.error(f"question.{fld}", what.rstrip("."))
                         for fld, what in _question_problems(lm, s.question)]
    return tuple(problems)


def _question_problems(lm: LoadedModel, q: Question) -> list[tuple[str, str]]:
    """(input, what is wrong) for each input of `q` that `lm` cannot take."""
    out: list[tuple[str, str]] = []
    inputs = q.inputs
    if "prompt" in inputs:
        try:
            encode(lm, inputs["prompt"])
        except ExplainerError as e:
            out.append(("prompt", str(e)))
    for name in ("a", "b", "c"):
        if name in inputs:
            try:
                words.resolve(lm, inputs[name])
            except ExplainerError as e:
                out.append((name, str(e)))
    for name in ("heads", "neurons"):
        v = inputs.get(name)
        if v and v not in HEAD_SETS:
            try:
                interventions.ablation_hooks(lm, *((v, ()) if name == "heads" else ((), v)))
            except ExplainerError as e:
                out.append((name, str(e)))
    return out
