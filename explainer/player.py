"""The lesson player's logic, without Streamlit: which lesson and step a link names (and what is wrong with
it), the link that opens a step, the page file each view is, and the steps around the current one.

A running lesson lives in the link like every other control (the URL contract, `explainer/links.py`):
`lesson` is the lesson file's stem, `step` its 1-based step number, `present` the presenter view (1/0).
A step's link is its whole `state` (a name left out takes the page's default, as in any link) plus these
three, and the model in use. `explainer/ui.py` only renders what this module decides.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import links
from .lesson_edit import is_own
from .lessons import APP, Lesson, Loaded, Step

PARAMS = ("lesson", "step", "present")       # the player's own link names (links.SHARED)


def view_files(app: Path = APP) -> dict[str, str | None]:
    """{view: its page file relative to the app} from streamlit_app.py's TOUR table (read from the file's
    syntax: importing it would run Streamlit); "Home" is the navigation's default page (None: no file)."""
    tree = ast.parse(app.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TOUR" for t in node.targets):
            files = [e.elts[0].value for e in node.value.elts]
            return {"Home": None, **{Path(f).stem.split("_", 1)[1]: f for f in files}}
    raise RuntimeError(f"{app} has no TOUR table")


VIEW_FILES = view_files()


def view_of_file(path: str | Path) -> str:
    """The view a script is: "Home" for the app itself, else its page's URL name."""
    p = Path(path)
    return "Home" if p.name == APP.name else p.stem.split("_", 1)[-1]


@dataclass(frozen=True)
class Position:
    """Where a link is in a lesson: the lesson (None: no lesson running), its step number (1-based), the
    presenter view, and a notice for each bad value the link had (the bad value is then left out or mended)."""

    lesson: Lesson | None = None
    number: int = 1
    present: bool = False
    notices: tuple[str, ...] = ()

    @property
    def running(self) -> bool:
        return self.lesson is not None

    @property
    def step(self) -> Step:
        assert self.lesson is not None
        return self.lesson.step(self.number)

    @property
    def total(self) -> int:
        return len(self.lesson.steps) if self.lesson else 0

    def has_next(self) -> bool:
        return self.running and self.number < self.total

    def has_back(self) -> bool:
        return self.running and self.number > 1

    def mended(self) -> dict[str, str | None]:
        """The player's names as the link should now write them (None: leave the name out)."""
        if not self.running:
            return {"lesson": None, "step": None, "present": "1" if self.present else None}
        return {"lesson": self.lesson.name, "step": str(self.number), "present": "1" if self.present else None}


def position(loaded: Loaded, link: Mapping[str, str]) -> Position:
    """The lesson and step a link names. A lesson that is not there (or failed to load), a step that is not a
    step number of it, a `present` that is not 1/0: a notice each, never an exception."""
    notes: list[str] = []
    present = False
    if "present" in link:
        m = links.flag("present", link["present"], False)
        present, note = bool(m.value), m.notice
        if note:
            notes.append(note)
    raw = link.get("lesson")
    if raw is None:
        if "step" in link:
            notes.append(f"{_say('step', link['step'])} names no lesson (`lesson=` is missing): left out.")
        return Position(None, 1, present, tuple(notes))
    lesson = loaded.get(raw)
    if lesson is None:
        failed = next((e for e in loaded.errors if Path(e.source).stem == raw), None)
        if failed is not None:
            notes.append(f"The lesson in this link, {_say('lesson', raw)}, could not be loaded: {failed}")
        elif is_own(raw):
            notes.append(f"{_say('lesson', raw)} is a lesson made in the app: it lives in the browser session that "
                         "made it, and its link works only there. Download its file there and upload it on the home "
                         "page here.")
        else:
            have = ", ".join(lesson.name for lesson in loaded.lessons[:8]) or "none"
            notes.append(f"{_say('lesson', raw)} is not a lesson of this app (its lessons: {have}): no lesson "
                         "is running. Pick one on the home page.")
        return Position(None, 1, present, tuple(notes))
    number = 1
    if "step" in link:
        m = links.number("step", link["step"], 1, len(lesson.steps), 1, True)
        number = int(m.value)
        if m.notice:
            notes.append(m.notice.replace("is out of range", f"is not a step of “{lesson.title}”")
                         if "out of range" in m.notice else m.notice)
    return Position(lesson, number, present, tuple(notes))


def _say(name: str, raw: str) -> str:
    shown = raw if len(raw) <= 40 else raw[:37] + "…"
    return f"`{name}={shown!r}`" if any(c in shown for c in "`\n") else f"`{name}={shown}`"


def step_link(lesson: Lesson, number: int, present: bool = False, model: str | None = None) -> dict[str, str]:
    """The link that opens step `number` of `lesson`: the step's whole state as the page reads it, the
    player's names, and `model` (the model in use; None: the default)."""
    step = lesson.step(number)
    link = dict(step.link())
    if model:
        link["model"] = model
    link.update(lesson=lesson.name, step=str(step.number))
    if present:
        link["present"] = "1"
    return link


def start_model(lesson: Lesson, current: str | None) -> str | None:
    """The model a lesson opens with from the picker: the lesson's own unless it is the default (bundled),
    then the one in use."""
    return current if lesson.model == "bundled" else lesson.model


def only_player(link: Mapping[str, str]) -> bool:
    """Whether a link names nothing but a lesson position (and the model): a link to the step as it is written,
    to be opened with the step's state; a link with more carries its own state (a step's view as changed)."""
    return set(link) <= {*PARAMS, "model"}


def page_file(view: str) -> str | None:
    return VIEW_FILES[view]
