"""The lesson player (explainer/player.py, ui._player) in Streamlit's AppTest: every step of every built-in
lesson opens on its page with its state in the widgets, Reveal shows the answer the lesson engine computes on
the bundled model, the link carries lesson/step/present, and bad values give a notice, never an exception."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explainer import lessons, player
from tests.conftest import page_ok

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = lessons.load_all()
TITLES = {"Home": "Inside a GPT", "Model_map": "Model map", "Embeddings": "Word vectors", "Attention": "Attention",
          "MLP_neurons": "MLP neurons", "Logit_lens": "Residual stream & logit lens", "Next_token": "Next token",
          "Generate": "Generation playground", "Interventions": "Interventions", "Anatomy": "Anatomy of a model",
          "Tiny_LM_lab": "Tiny language model lab", "Glossary": "Glossary"}
WIDGET_KINDS = ("slider", "select_slider", "number_input", "selectbox", "radio", "toggle", "checkbox", "text_input",
                "text_area", "multiselect")


# -- the engine ---------------------------------------------------------------------------------------------

def test_view_files_are_the_tour_pages():
    assert player.VIEW_FILES["Home"] is None
    assert player.VIEW_FILES["Attention"] == "pages/2_Attention.py"
    assert set(player.VIEW_FILES) == set(lessons.VIEWS)
    for view, f in player.VIEW_FILES.items():
        assert f is None or (ROOT / f).is_file(), view
        assert player.view_of_file(ROOT / (f or "streamlit_app.py")) == view


def test_the_player_names_are_shared_and_no_lesson_can_set_them():
    from explainer import links

    assert set(player.PARAMS) <= set(links.SHARED)
    assert set(player.PARAMS) <= set(lessons.FORBIDDEN)
    text = (ROOT / "tests" / "test_lessons.py").read_text(encoding="utf-8")
    good = text.split("GOOD = '''", 1)[1].split("'''", 1)[0]
    for name, value in (("lesson", '"x"'), ("step", "2"), ("present", "1")):
        with pytest.raises(lessons.LessonError, match=f"`state.{name}`: cannot be set by a lesson"):
            lessons.parse(good.replace("layer = 1", f"{name} = {value}"), "x")


def test_a_position_from_a_link_and_its_notices():
    one = BUILTIN.lessons[0]
    n = len(one.steps)
    pos = player.position(BUILTIN, {"lesson": one.name, "step": "2", "present": "1"})
    assert (pos.lesson, pos.number, pos.present, pos.notices) == (one, 2, True, ())
    assert pos.has_next() and pos.has_back() and pos.step is one.steps[1]
    for raw, want in (("0", 1), ("999", n), ("abc", 1), ("2.5", 1), ("-3", 1)):
        pos = player.position(BUILTIN, {"lesson": one.name, "step": raw})
        assert pos.number == want and len(pos.notices) == 1 and "`step=" in pos.notices[0], raw
        assert pos.mended()["step"] == str(want)
    for raw in ("nope", "../etc/passwd", "<b>x</b>", ""):
        pos = player.position(BUILTIN, {"lesson": raw, "step": "1"})
        assert not pos.running and "`lesson=" in pos.notices[0], raw
        assert pos.mended() == {"lesson": None, "step": None, "present": None}
    assert "`present=maybe`" in player.position(BUILTIN, {"lesson": one.name, "present": "maybe"}).notices[0]
    assert "names no lesson" in player.position(BUILTIN, {"step": "3"}).notices[0]


def test_a_step_link_is_the_steps_whole_state_and_the_player_names():
    one = BUILTIN.lessons[0]
    s = one.steps[2]
    link = player.step_link(one, 3, present=True, model="gpt2")
    assert link == {**s.link(), "lesson": one.name, "step": "3", "present": "1", "model": "gpt2"}
    assert "present" not in player.step_link(one, 3) and "model" not in player.step_link(one, 3)
    assert player.step_link(one, 99)["step"] == str(len(one.steps))          # clamped
    assert player.only_player({"lesson": "x", "step": "1", "present": "1", "model": "m"})
    assert not player.only_player({"lesson": "x", "prompt": "hi"})


def test_a_failed_lesson_is_named_with_its_message(tmp_path):
    (tmp_path / "broken.toml").write_text('title = "x"', encoding="utf-8")
    pos = player.position(lessons.load_all(tmp_path), {"lesson": "broken"})
    assert not pos.running and "could not be loaded" in pos.notices[0] and "broken.toml" in pos.notices[0]


# -- AppTest ------------------------------------------------------------------------------------------------

def _keys() -> dict[str, dict[str, str]]:
    """{view: {link name: widget key}} read from the pages' ui.<widget>("name", ..., key=...) calls."""
    sources = {"Home": ROOT / "streamlit_app.py",
               **{v: ROOT / f for v, f in player.VIEW_FILES.items() if f is not None}}
    out: dict[str, dict[str, str]] = {}
    for view, path in sources.items():
        found = {"prompt": "prompt_widget"}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "ui" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                kw = {k.arg: k.value for k in node.keywords}
                key = kw["key"].value if isinstance(kw.get("key"), ast.Constant) else node.args[0].value
                found.setdefault(node.args[0].value, key)
        if view == "Embeddings":      # its presets go through the page's own _preset(name, ...): key emb_NAME
            for name in ("map_preset", "an_preset", "dir_preset", "ctx_preset"):
                found[name] = f"emb_{name}"
        out[view] = found
    return out


KEYS = _keys()


def _widget(at: AppTest, key: str):
    for kind in WIDGET_KINDS:
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise AssertionError(f"no widget with key {key!r}")


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    return lessons.written(value)


def _url(at: AppTest) -> dict[str, str]:
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def _root(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file("../streamlit_app.py", default_timeout=600)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _check_step(at: AppTest, lesson: lessons.Lesson, s: lessons.Step, present: bool) -> None:
    where = (lesson.name, s.number, s.title)
    page_ok(at)
    alone = present and s.section is not None      # the presenter view of the step's section: no page title
    assert [t.value for t in at.title] == ([] if alone else [TITLES[s.view]]), where
    assert not at.warning, (where, [w.value for w in at.warning])
    head = " ".join(m.value for m in at.markdown)
    assert f"Step {s.number} of {len(lesson.steps)}" in head, where
    assert _url(at) == {**s.link(), "lesson": lesson.name, "step": str(s.number),
                        **({"present": "1"} if present else {})}, where
    for name, raw in s.state.items():
        if name == "tab":
            labels = {"map": "Word map", "analogies": "Analogies", "directions": "Directions",
                      "similarity": "Dot vs cosine", "context": "In context"}
            assert at.session_state["tab"] == labels[raw], where
            continue
        if name == "max_tokens":
            assert at.number_input(key="max_tokens").value == int(raw), where
            continue
        key = KEYS[s.view][name]
        if alone and name not in s.shown_controls:   # not drawn there: the value the step set, in the session
            with pytest.raises(AssertionError):
                _widget(at, key)
            held = at.session_state["_prompt"] if name == "prompt" else at.session_state[key]   # the shared prompt
            assert _shown(held) == raw, (where, name, key)
            continue
        assert _shown(_widget(at, key).value) == raw, (where, name, key)


def _check_reveal(at: AppTest, s: lessons.Step, bundled, memo) -> None:
    if s.question is None:
        assert not [b for b in at.button if b.key == "player_reveal"]
        return
    assert not at.success
    at.button(key="player_reveal").click().run()
    page_ok(at)
    want = lessons.answer(s.question, bundled, memo).text
    got = [re.sub(r"\\(.)", r"\1", x.value) for x in at.success]    # Markdown's escapes read back as the text
    assert got == [f"**Answer:** {want}"], (s.number, got, want)


@pytest.mark.parametrize("name", [lesson.name for lesson in BUILTIN.lessons])
def test_every_step_of_a_lesson_from_step_one_by_next(offline, bundled, name):
    """From the app's root with ?lesson=NAME&step=1&present=1, Next through every step: the step's page, its
    state in every widget it names, the link; Reveal shows lessons.answer's text on the bundled model."""
    lesson = BUILTIN.get(name)
    memo: dict = {}
    at = _root({"lesson": name, "step": "1", "present": "1"})
    for s in lesson.steps:
        _check_step(at, lesson, s, present=True)
        _check_reveal(at, s, bundled, memo)
        nxt = at.button(key="player_next")
        if s.number == len(lesson.steps):
            assert nxt.disabled
        else:
            nxt.click().run()


def test_a_link_to_a_later_step_opens_it_and_back_and_next_keep_the_link(offline):
    lesson = BUILTIN.lessons[0]
    s = next(s for s in lesson.steps[2:] if s.view != "Home")
    at = _root({"lesson": lesson.name, "step": str(s.number)})       # the root: the step's own page opens
    _check_step(at, lesson, s, present=False)
    at.button(key="player_back").click().run()
    _check_step(at, lesson, lesson.steps[s.number - 2], present=False)
    at.toggle(key="player_present").set_value(True).run()
    assert _url(at)["present"] == "1"
    at.button(key="player_next").click().run()
    _check_step(at, lesson, s, present=True)
    at.toggle(key="player_present").set_value(False).run()
    at.button(key="player_next").click().run()
    _check_step(at, lesson, lesson.steps[s.number], present=False)


def test_moving_a_control_then_back_to_the_steps_settings(offline):
    lesson = BUILTIN.get("temperature-top-k-top-p")
    s = lesson.steps[0]
    at = _root({"lesson": lesson.name, "step": "1"})
    _check_step(at, lesson, s, present=False)
    assert not [b for b in at.button if b.key == "player_restore"]
    at.slider(key="nt_temp").set_value(3.0).run()                   # the page's controls stay live
    page_ok(at)
    assert _url(at)["temperature"] == "3" and _url(at)["step"] == "1"
    at.button(key="player_restore").click().run()
    _check_step(at, lesson, s, present=False)
    assert at.slider(key="nt_temp").value == 1.0


def test_end_lesson_leaves_the_page_as_it_is(offline):
    lesson = BUILTIN.lessons[0]
    at = _root({"lesson": lesson.name, "step": "2", "present": "1"})
    at.button(key="player_end").click().run()
    page_ok(at)
    assert not {"lesson", "step", "present"} & set(_url(at))
    assert not [b for b in at.button if b.key == "player_next"]
    assert any(s.value == "Lessons for a class" for s in at.subheader)  # the home page's picker is back


def test_the_picker_lists_every_lesson_and_the_ones_that_failed(offline, tmp_path, monkeypatch):
    for f in (ROOT / "assets" / "lessons").glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "broken.toml").write_text('title = "Half a lesson"\n', encoding="utf-8")
    monkeypatch.setenv("EXPLAINER_LESSONS", str(tmp_path))
    at = _root({})
    page_ok(at)
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    for lesson in BUILTIN.lessons:
        assert lesson.title in text and lesson.level in text and f"{lesson.minutes} min" in text, lesson.name
        assert lesson.summary in text
    assert any("broken.toml" in w.value and "could not be loaded" in w.value for w in at.warning)
    assert any("predicts" in s.value for s in at.subheader)          # the app still works
    labels = [b.label for b in at.get("download_button")]            # each lesson's handout and file to take home
    assert labels.count("Download the handout (HTML)") == labels.count("Download the lesson file (.toml)") \
        == len(BUILTIN.lessons)
    first = BUILTIN.lessons[0]
    at.button(key=f"present_{first.name}").click().run()
    _check_step(at, first, first.steps[0], present=True)


@pytest.mark.parametrize("query,fragment", [
    ({"lesson": "no-such-lesson", "step": "1"}, "`lesson=no-such-lesson`"),
    ({"lesson": "how-a-gpt-writes", "step": "99"}, "`step=99`"),
    ({"lesson": "how-a-gpt-writes", "step": "two"}, "`step=two`"),
    ({"lesson": "how-a-gpt-writes", "present": "maybe"}, "`present=maybe`"),
    ({"step": "3"}, "names no lesson"),
])
def test_bad_player_values_in_the_link_give_a_notice(offline, query, fragment):
    at = _root(query)
    assert not at.exception, [e.message for e in at.exception]
    assert any(fragment in w.value for w in at.warning), [w.value for w in at.warning]


def test_a_link_with_its_own_state_keeps_it_on_the_steps_page(offline):
    """A shared link of a step as changed (temperature 3) keeps its state on the step's own page, with the way
    back to the step's settings; the same link opened at the root opens the step with the step's own state."""
    lesson = BUILTIN.get("temperature-top-k-top-p")
    s = lesson.steps[0]
    assert s.view == "Next_token" and s.state["temperature"] == "1"
    at = AppTest.from_file("../pages/5_Next_token.py", default_timeout=600)
    for k, v in {**s.link(), "lesson": lesson.name, "step": "1", "temperature": "3"}.items():
        at.query_params[k] = v
    at.run()
    page_ok(at)
    assert at.slider(key="nt_temp").value == 3.0 and _url(at)["temperature"] == "3"
    assert [b for b in at.button if b.key == "player_restore"]
    at.button(key="player_restore").click().run()
    page_ok(at)
    assert at.slider(key="nt_temp").value == 1.0
    _check_step(_root({"lesson": lesson.name, "step": "1", "temperature": "3"}), lesson, s, present=False)


def test_a_page_run_on_its_own_says_where_the_step_is(offline):
    lesson = BUILTIN.lessons[0]
    s = next(s for s in lesson.steps if s.view == "Next_token")
    at = AppTest.from_file("../pages/2_Attention.py", default_timeout=600)
    at.query_params.update({"lesson": lesson.name, "step": str(s.number)})
    at.run()
    page_ok(at)
    assert [t.value for t in at.title] == ["Attention"]
    assert any("on the Next token page" in i.value for i in at.info), [i.value for i in at.info]
