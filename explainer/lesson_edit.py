"""A teacher's own lessons, made in the app: a view's link becomes a step, steps are edited, moved and
deleted, and the lesson is written back to the TOML format of `explainer/lessons.py`. No Streamlit here.

Every edit goes through the file: the lesson is written as TOML (`dumps`, with tomli-w) and read back with
`lessons.parse`, so an edit that a file could not hold raises the same `LessonError` a file would (naming
the file, the step and the field), and the editor can never produce a file the app refuses. The lesson
returned is exactly what its file gives (`Lesson.text` is that file), so the player, the handout and the
lesson-file download take it as they take a built-in one.

A step keeps what its view reads (`lessons.VIEW_PARAMS`, plus the sidebar's `max_tokens`) from the link it
was added from: never the player's names, the model (the lesson's own field), nor anything another page
left in the link. Long prompts, compressed in a link (`links.encode_prompt`), are stored as the text they
are, as the lesson files store them.

A lesson made here is named `my-...` (`PREFIX`): the app keeps it in one browser session only (several
users share a server, so nothing is written to its disk), and its link works only in that session.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from . import content, defaults, interventions, links
from .lessons import (
    _SIDEBAR,
    COMPRESSED,
    FORBIDDEN,
    NAME_RE,
    QUESTION_KINDS,
    RULES,
    SECTIONS,
    VIEW_PARAMS,
    VIEW_TABS,
    VIEWS,
    Lesson,
    Loaded,
    Question,
    Step,
    check_value,
    parse,
    written,
)

PREFIX = "my-"                   # a lesson made or uploaded in the app: looked up in the session first
NEW_NAME = "my-lesson"
HEADER = ('# A lesson for the "Inside a GPT" app, written by its lesson editor.\n'
          '# Format: explainer/lessons.py (and ARCHITECTURE.md, "Lessons").\n')
NEW_LESSON = {"title": "My lesson", "summary": "A lesson made in the app, one view at a time.", "level": "any",
              "minutes": 20}
NARRATION = "Say here what the class should look at in this view, and why it matters."
# A question's text when a kind is picked before any is written: what the kind computes, as a question.
DEFAULT_QUESTIONS = {
    "next_token": "Which token is most likely next, and how sure is the model?",
    "tokens_kept": "How many tokens can still be drawn with these settings?",
    "prompt_tokens": "How many tokens is this prompt?",
    "analogy": "Where does the analogy land?",
    "induction_head": "Which head is the strongest induction head?",
    "strongest_head": "Which head does this job most strongly?",
    "lens_settles": "After which block does the top guess for the next token settle?",
    "ablation_effect": "What happens to the prediction when these parts are switched off?",
    "sample_with_seed": "What text do this seed and these settings give?",
    "parameter_count": "How many parameters does the model have?",
    "model_size": "How big is this part of the model?",
    "char_model_params": "How many parameters does the character model have?",
    "uniform_loss": "What loss does guessing uniformly among the 27 symbols give?",
}
# Names a view reads that a lesson cannot hold (lessons.FORBIDDEN says why): said when a step leaves them out.
UNKEPT = {"steps": "Next_token", "view": "Next_token", "track": "Logit_lens"}


def is_own(name: str) -> bool:
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class WithOwn(Loaded):
    """The app's lessons and this session's own: `get` finds an own lesson first (the player's lookup)."""

    own: Mapping[str, Lesson] = field(default_factory=dict)

    def get(self, name: str) -> Lesson | None:
        return self.own.get(name) or super().get(name)


# -- a view's link → a step's state ---------------------------------------------------------------------------

def view_state(view: str, link: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """(state, notes): what `view` reads of `link`, as a step's `state` stores it (prompts decompressed), and a
    note for each value the view reads that the step cannot keep. Names the view does not read, the player's
    names and the model are left out silently: they do not change what the view shows."""
    if view not in VIEWS:
        raise ValueError(f"{view!r} is not a view of the app")
    allowed = VIEW_PARAMS[view] | _SIDEBAR
    state: dict[str, str] = {}
    notes: list[str] = []
    for name, raw in link.items():
        if UNKEPT.get(name) == view:
            notes.append(f"`{name}` is not kept: {FORBIDDEN[name]}.")
            continue
        if name not in allowed or name in FORBIDDEN or name not in RULES:
            continue
        value = raw
        if name in COMPRESSED:
            value, damaged = links.decode_prompt(raw)
            if damaged:
                notes.append(f"`{name}` is not kept: {damaged}")
                continue
        if name == "tab" and value not in VIEW_TABS.get(view, ()):
            continue                           # another page's tab: this view shows its first
        problem = check_value(name, value)
        if problem:
            notes.append(f"`{name}` is not kept: its value {problem}; the step takes the page's default.")
            continue
        state[name] = value
    return state, tuple(notes)


def describe_state(state: Mapping[str, str], width: int = 40) -> str:
    """A step's state in one line: `layer 5 · prompt “The Eiffel…”` (empty: the page's defaults)."""
    parts = []
    for k, v in state.items():
        shown = v if len(v) <= width else v[: width - 1] + "…"
        parts.append(f"{k} “{shown}”" if RULES[k].kind == "text" else f"{k} {shown}")
    return " · ".join(parts)


def describe_inputs(q: Question, skip: Collection[str] = ()) -> str:
    """A question's inputs in one line, as `describe_state` writes a state (heads and neurons as labels)."""
    spec = QUESTION_KINDS[q.kind].inputs
    parts = []
    for k, v in q.inputs.items():
        if k in skip:
            continue
        v = _input_value(spec[k].kind, v)
        if isinstance(v, list):
            v = ", ".join(v) or "none"
        if isinstance(v, str) and spec[k].kind == "text":
            v = f"“{v if len(v) <= 40 else v[:39] + '…'}”"
        parts.append(f"{k} {str(v).lower() if isinstance(v, bool) else v}")
    return " · ".join(parts)


# -- a lesson → its TOML file ---------------------------------------------------------------------------------

def _state_value(name: str, raw: str) -> Any:
    """A state value as TOML writes it: a number or true/false where the link's text is exactly how that value
    is written (so parsing it gives the same text back), else the text itself."""
    rule = RULES.get(name)
    if rule is None or rule.kind in ("text", "range", "heads", "neurons") or name == "tab":
        return raw
    if rule.kind == "flag":
        return {"1": True, "0": False}.get(raw, raw)
    ints = [int(raw)] if re.fullmatch(r"-?[0-9]+", raw) and abs(int(raw)) < 2**63 else []
    try:
        floats = [float(raw)] if math.isfinite(float(raw)) else []
    except ValueError:
        floats = []
    candidates = floats + ints if rule.kind == "number" and not rule.integer else ints + floats
    return next((c for c in candidates if written(c) == raw), raw)


def _input_value(kind: str, v: Any) -> Any:
    """A question input as TOML writes it: heads and neurons as their labels (L3.H5, L15.N1274)."""
    if kind == "heads" and not isinstance(v, str):
        return [interventions.head_label(*p) for p in v]
    if kind == "neurons" and not isinstance(v, str):
        return [interventions.neuron_label(*p) for p in v]
    return v


def _question_doc(q: Question) -> dict[str, Any]:
    doc: dict[str, Any] = {"text": q.text, "kind": q.kind}
    spec = QUESTION_KINDS[q.kind].inputs
    for name in spec:                                   # only what the file wrote; the rest follows the state
        if name in q.given:
            doc[name] = _input_value(spec[name].kind, q.inputs[name])
    return doc


def step_doc(step: Step) -> dict[str, Any]:
    doc: dict[str, Any] = {"title": step.title, "view": step.view}
    if step.section:                                    # the part of its page the presenter view shows
        doc["section"] = step.section[0] if len(step.section) == 1 else list(step.section)
    if step.controls is not None:                       # the controls it shows there
        doc["controls"] = list(step.controls)
    if step.state:
        doc["state"] = {k: _state_value(k, v) for k, v in step.state.items()}
    doc["narration"] = step.narration + ("\n" if "\n" in step.narration else "")   # the closing quotes on a line
    if step.tries:
        doc["try"] = list(step.tries)
    if step.question is not None:
        doc["question"] = _question_doc(step.question)
    return doc


def to_doc(lesson: Lesson) -> dict[str, Any]:
    """The lesson as the TOML document its file holds."""
    doc: dict[str, Any] = {"title": lesson.title, "summary": lesson.summary, "level": lesson.level,
                           "minutes": lesson.minutes, "model": lesson.model}
    if lesson.order != 100:
        doc["order"] = lesson.order
    doc["steps"] = [step_doc(s) for s in lesson.steps]
    return doc


def dumps(lesson: Lesson | Mapping[str, Any]) -> str:
    """The lesson's TOML file (`lessons.parse` reads it back to an equal lesson)."""
    doc = to_doc(lesson) if isinstance(lesson, Lesson) else lesson
    return HEADER + "\n" + tomli_w.dumps(doc, multiline_strings=True)


def checked(doc: Mapping[str, Any], name: str, source: str) -> Lesson:
    """The lesson a document gives once written as a file and read back: raises LessonError as that file
    would (the editor's one check)."""
    return parse(dumps(doc), name, source)


# -- edits: each returns the new lesson, checked as a file; a LessonError leaves the old one as it was ----------

def _doc_step(lesson: Lesson, doc: dict, number: int) -> dict:
    if not 1 <= number <= len(doc["steps"]):
        raise IndexError(f"{lesson.name} has no step {number}")
    return doc["steps"][number - 1]


def _view_title(view: str) -> str:
    return view.replace("_", " ")


def new_lesson(view: str, link: Mapping[str, str], *, model: str = "bundled", title: str | None = None,
               taken: Collection[str] = ()) -> tuple[Lesson, tuple[str, ...]]:
    """A lesson of one step, the view as `link` has it; (lesson, notes of what the step could not keep)."""
    name = unique_name(NEW_NAME, taken)
    doc = {**NEW_LESSON, "model": model or "bundled", "steps": []}
    state, notes = view_state(view, link)
    doc["steps"].append(_new_step(view, state, title))
    return checked(doc, name, f"{name}.toml"), notes


def _new_step(view: str, state: Mapping[str, str], title: str | None) -> dict[str, Any]:
    step = {"title": (title or "").strip() or _view_title(view), "view": view,
            "state": {k: _state_value(k, v) for k, v in state.items()}, "narration": NARRATION}
    if state.get("tab") in SECTIONS.get(view, ()):     # a page's tab is its section: the projector shows that tab
        step["section"] = state["tab"]
    if not step["state"]:
        del step["state"]
    return step


def add_view(lesson: Lesson, view: str, link: Mapping[str, str], title: str | None = None
             ) -> tuple[Lesson, tuple[str, ...]]:
    """The lesson with one more step at the end: `view` as `link` has it. (lesson, notes)."""
    doc = to_doc(lesson)
    state, notes = view_state(view, link)
    doc["steps"].append(_new_step(view, state, title))     # a 31st step: the file's own check refuses it
    return checked(doc, lesson.name, lesson.source), notes


def edit_step(lesson: Lesson, number: int, *, title: str | None = None, narration: str | None = None,
              tries: Sequence[str] | None = None, section: Sequence[str] | None = None) -> Lesson:
    """Step `number` with a new title, narration, "try this" suggestions or sections its presenter view shows
    (an empty `section`: the whole page; None: as it was)."""
    doc = to_doc(lesson)
    step = _doc_step(lesson, doc, number)
    if section is not None:          # in the page's order; a name that is none of its sections: the file's error
        order = SECTIONS.get(step["view"], ())
        names = sorted(dict.fromkeys(section), key=lambda x: order.index(x) if x in order else len(order))
        step.pop("section", None)
        if names:
            step["section"] = names[0] if len(names) == 1 else names
    if title is not None:
        step["title"] = title
    if narration is not None:
        step["narration"] = narration
    if tries is not None:
        kept = [t.strip() for t in tries if t.strip()]
        step.pop("try", None)
        if kept:
            step["try"] = kept
    return checked(doc, lesson.name, lesson.source)


def choice_inputs(kind: str) -> dict[str, tuple[str, ...]]:
    """The inputs of a question kind that are a choice (a head's role, a part of the model): {name: options}.
    Its other inputs follow the step's state."""
    return {n: inp.options for n, inp in QUESTION_KINDS[kind].inputs.items() if inp.kind == "choice"}


def shown_settings(view: str, state: Mapping[str, str]) -> dict[str, Any]:
    """The sampling settings a view shows for the names `state` leaves out: its page's defaults (Generate's
    temperature is its template's); views without them show Next token's, which their questions then use."""
    if view == "Generate":
        shown = dict(defaults.GENERATE)
        template = state.get("template", shown["template"])
        if template in content.TEMPLATES:
            shown["temperature"] = content.TEMPLATES[template].temperature
        return shown
    return {**defaults.GENERATE, **defaults.NEXT_TOKEN}


def set_question(lesson: Lesson, number: int, kind: str | None, text: str | None = None,
                 inputs: Mapping[str, Any] | None = None) -> Lesson:
    """Step `number`'s question: `kind` None removes it. The inputs the file gave that the kind also takes are
    kept, `inputs` are set, and the rest default from the step's state as a file's do (a choice with no default,
    such as a head's role, takes its first option; a sampling setting the step leaves to its page takes what the page
    shows, `shown_settings`). `text` None keeps the question's text (a new question: the
    kind's default question); a text that was the old kind's default becomes the new kind's."""
    doc = to_doc(lesson)
    step = _doc_step(lesson, doc, number)
    if kind is None:
        step.pop("question", None)
        return checked(doc, lesson.name, lesson.source)
    if kind not in QUESTION_KINDS:
        step["question"] = {"text": text or "?", "kind": kind}    # the file's check names it
        return checked(doc, lesson.name, lesson.source)
    old = lesson.steps[number - 1].question
    spec = QUESTION_KINDS[kind].inputs
    q: dict[str, Any] = {}
    if old is not None:
        q = {k: v for k, v in _question_doc(old).items() if k in spec}
    for name, v in (inputs or {}).items():
        q[name] = _input_value(spec[name].kind, v) if name in spec else v
    for name, options in choice_inputs(kind).items():
        if name not in q and spec[name].default is None and not spec[name].state:
            q[name] = options[0]
    state = lesson.steps[number - 1].state
    shown = shown_settings(lesson.steps[number - 1].view, state)
    for name, inp in spec.items():     # a setting the step leaves to its page: what the page shows, written down
        if name not in q and inp.default is None and inp.state in shown and inp.state not in state:
            q[name] = shown[inp.state]
    if text is None:
        text = old.text if old is not None else None
    if text is None or (old is not None and old.kind != kind and text.strip() == DEFAULT_QUESTIONS.get(old.kind)):
        text = DEFAULT_QUESTIONS[kind]
    step["question"] = {"text": text, "kind": kind, **q}
    return checked(doc, lesson.name, lesson.source)


def move_step(lesson: Lesson, number: int, delta: int) -> Lesson:
    """Step `number` moved up (delta −1) or down (+1); at either end it stays."""
    doc = to_doc(lesson)
    _doc_step(lesson, doc, number)
    to = max(1, min(number + delta, len(doc["steps"])))
    steps = doc["steps"]
    steps.insert(to - 1, steps.pop(number - 1))
    return checked(doc, lesson.name, lesson.source)


def delete_step(lesson: Lesson, number: int) -> Lesson:
    """The lesson without step `number` (a lesson keeps at least one step: the file's check says so)."""
    doc = to_doc(lesson)
    _doc_step(lesson, doc, number)
    del doc["steps"][number - 1]
    return checked(doc, lesson.name, lesson.source)


def edit_info(lesson: Lesson, *, title: str | None = None, summary: str | None = None, level: str | None = None,
              minutes: int | None = None) -> Lesson:
    """The lesson's own fields (None: as it was)."""
    doc = to_doc(lesson)
    for key, v in (("title", title), ("summary", summary), ("level", level), ("minutes", minutes)):
        if v is not None:
            doc[key] = v
    return checked(doc, lesson.name, lesson.source)


# -- an uploaded file -------------------------------------------------------------------------------------------

def unique_name(stem: str, taken: Collection[str]) -> str:
    """`stem` as an own lesson's name: `my-` in front, only the characters a link takes, not one of `taken`."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "lesson"
    base = (base if is_own(base) else PREFIX + base)[:56].rstrip("-_")
    name, n = base, 2
    while name in taken or not NAME_RE.match(name):
        name, n = f"{base}-{n}", n + 1
    return name


def from_upload(data: bytes, filename: str, taken: Collection[str] = ()) -> Lesson:
    """A lesson from an uploaded file's bytes, checked exactly as a lesson file is (the size limit first);
    its messages name the file as it was uploaded. Named `my-<its stem>`, not one of `taken`."""
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem[:-5] if stem.lower().endswith(".toml") else stem
    return parse(data, unique_name(stem, taken), filename)
