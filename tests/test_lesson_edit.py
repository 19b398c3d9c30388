"""A teacher's own lessons (explainer/lesson_edit.py, ui.own_lesson_sidebar / own_lesson_editor): every built-in
lesson survives the editor's writer, a view's link becomes a step with the right view and state, edits are checked
as a file is, a malformed upload names its file, step and field, and in AppTest a step added on a page is edited at
home, downloaded, and an uploaded file runs in the player."""

from __future__ import annotations

import dataclasses
import re

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from explainer import lesson_edit, lessons, links, player
from explainer.errors import LessonError
from tests.conftest import page_ok
from tests.test_player import _check_step, _url

BUILTIN = lessons.load_all()
LONG = ("Once upon a time, in a village at the edge of a great forest, there lived a girl who kept bees. " * 8).strip()
assert len(LONG) > links.PLAIN_PROMPT_CHARS            # so the link compresses it

GOOD = b'''
title = "A class demo"
summary = "Two steps."
level = "ages 14-18"
minutes = 15
model = "bundled"

[[steps]]
title = "Warmer"
view = "Next_token"
state = { prompt = "The Eiffel Tower is in the city of", temperature = 0.7, top_k = 5 }
narration = "Temperature reshapes the bars."

[steps.question]
text = "Which token wins?"
kind = "next_token"

[[steps]]
title = "Back home"
view = "Home"
narration = "The prompt again."
'''


def _one_step(view: str = "Attention", link: dict | None = None) -> lessons.Lesson:
    lesson, notes = lesson_edit.new_lesson(view, link or {"layer": "3", "head": "2"}, title="First")
    assert notes == ()
    return lesson


# -- the writer: lessons.parse reads it back to an equal lesson ------------------------------------------------------

@pytest.mark.parametrize("name", [lesson.name for lesson in BUILTIN.lessons])
def test_every_built_in_lesson_round_trips_through_the_writer(name):
    lesson = BUILTIN.get(name)
    text = lesson_edit.dumps(lesson)
    back = lessons.parse(text, lesson.name, lesson.source)
    assert back == lesson
    assert back.text == text and lesson_edit.dumps(back) == text          # stable: written once, the same again
    assert lesson_edit.checked(lesson_edit.to_doc(lesson), lesson.name, lesson.source) == lesson


def test_numbers_and_flags_are_written_as_toml_values_and_read_back_as_the_same_link_text():
    lesson = BUILTIN.get("temperature-top-k-top-p")
    text = lesson_edit.dumps(lesson)
    assert "temperature = 1.0\n" in text and "top_k = 0\n" in text and 'prompt = "The Eiffel' in text
    # a link's own spelling (0.70, true) stays text, so the step reads back exactly as the link had it
    lesson, _ = lesson_edit.new_lesson("Next_token", {"temperature": "0.70", "top_k": "5", "top_p": "0.9"})
    lesson, _ = lesson_edit.add_view(lesson, "MLP_neurons", {"skip_first": "true", "mlp_n": "12"})
    lesson, _ = lesson_edit.add_view(lesson, "Embeddings", {"an_variants": "1", "tab": "analogies"})
    text = lesson.text
    assert 'temperature = "0.70"' in text and "top_k = 5\n" in text and "top_p = 0.9\n" in text
    assert 'skip_first = "true"' in text and "mlp_n = 12\n" in text and "an_variants = true" in text
    assert [dict(s.state) for s in lesson.steps] == [{"temperature": "0.70", "top_k": "5", "top_p": "0.9"},
                                                     {"skip_first": "true", "mlp_n": "12"},
                                                     {"an_variants": "1", "tab": "analogies"}]


def test_a_steps_section_and_controls_are_written_and_read_back():
    step = _one_step().steps[0]
    assert "section" not in lesson_edit.step_doc(step) and "controls" not in lesson_edit.step_doc(step)
    one = dataclasses.replace(step, section=("head",), controls=())
    doc = lesson_edit.step_doc(one)
    assert doc["section"] == "head" and doc["controls"] == [] and list(doc)[:4] == ["title", "view", "section",
                                                                                        "controls"]
    two = dataclasses.replace(step, view="Next_token", state={}, section=("grow", "distribution"),
                              controls=("temperature",))
    assert lesson_edit.step_doc(two)["section"] == ["grow", "distribution"]
    lesson = dataclasses.replace(_one_step(), steps=(one, dataclasses.replace(two, number=2)))
    back = lessons.parse(lesson_edit.dumps(lesson), "back")
    assert [(s.section, s.controls) for s in back.steps] == [(("head",), ()), (("grow", "distribution"),
                                                                                ("temperature",))]


def test_the_sections_a_projector_shows_are_edited_in_the_pages_order():
    lesson = lesson_edit.edit_step(_one_step(), 1, section=["roles", "head", "head"])     # Attention
    assert lesson.steps[0].section == ("head", "roles")                # the page draws head before roles
    assert lessons.parse(lesson.text, lesson.name) == lesson
    assert lesson_edit.edit_step(lesson, 1, section=[]).steps[0].section is None      # the whole page again
    assert lesson_edit.edit_step(lesson, 1, title="T").steps[0].section == ("head", "roles")   # None: kept
    with pytest.raises(lessons.LessonError, match=r"`section`: 'grid' is not a section of Attention"):
        lesson_edit.edit_step(lesson, 1, section=["grid"])


def test_a_view_added_on_a_tab_shows_that_tab_on_the_projector():
    lesson, _ = lesson_edit.add_view(_one_step(), "Embeddings", {"tab": "analogies"})
    assert lesson.steps[-1].section == ("analogies",)
    lesson, _ = lesson_edit.add_view(lesson, "Attention", {"layer": "3"})       # no tab: the whole page
    assert lesson.steps[-1].section is None


# -- a view's link becomes a step ---------------------------------------------------------------------------------

def test_a_views_link_becomes_its_state_without_the_players_names_the_model_or_other_pages_names():
    link = {"model": "gpt2", "lesson": "how-a-gpt-writes", "step": "2", "present": "1", "layer": "5", "head": "2",
            "prompt": links.encode_prompt(LONG), "temperature": "3", "map_words": "king,queen", "max_tokens": "128",
            "tab": "analogies"}
    assert link["prompt"].startswith("zlib:")
    state, notes = lesson_edit.view_state("Attention", link)
    assert state == {"layer": "5", "head": "2", "prompt": LONG, "max_tokens": "128"} and notes == ()
    state, _ = lesson_edit.view_state("Next_token", link)
    assert state == {"prompt": LONG, "temperature": "3", "max_tokens": "128"}
    assert lesson_edit.view_state("Embeddings", link)[0] == {"map_words": "king,queen", "tab": "analogies",
                                                              "max_tokens": "128"}
    assert lesson_edit.view_state("Anatomy", link)[0] == {"max_tokens": "128"}


def test_what_a_step_cannot_keep_is_said():
    state, notes = lesson_edit.view_state("Next_token", {"prompt": "Hi", "steps": "1,2,3", "temperature": "9"})
    assert state == {"prompt": "Hi"}
    assert any("`steps` is not kept" in n for n in notes) and any("`temperature` is not kept" in n for n in notes)
    state, notes = lesson_edit.view_state("Home", {"prompt": "zlib:broken!"})
    assert state == {} and "damaged" in notes[0]


def test_a_new_lesson_from_a_long_compressed_prompt_opens_the_same_view():
    link = {"prompt": links.encode_prompt(LONG), "layer": "4", "model": "bundled", "lesson": "x", "step": "1"}
    lesson, notes = lesson_edit.new_lesson("Logit_lens", link, title="", taken={"my-lesson"})
    assert notes == () and lesson.name == "my-lesson-2" and lesson.source == "my-lesson-2.toml"
    step = lesson.steps[0]
    assert (step.view, step.title, dict(step.state)) == ("Logit_lens", "Logit lens", {"prompt": LONG})
    assert LONG in lesson.text and "zlib:" not in lesson.text        # stored as the text it is, as the files do
    assert player.step_link(lesson, 1) == {"prompt": links.encode_prompt(LONG), "lesson": "my-lesson-2", "step": "1"}
    lesson, _ = lesson_edit.add_view(lesson, "Attention", link, "Heads")
    assert [(s.view, s.title, dict(s.state)) for s in lesson.steps][1] == \
        ("Attention", "Heads", {"prompt": LONG, "layer": "4"})


# -- edits ----------------------------------------------------------------------------------------------------------

def test_edits_title_narration_and_suggestions():
    lesson = _one_step()
    lesson = lesson_edit.edit_step(lesson, 1, title=" Looking back ", narration="Line one.\nLine two.",
                                   tries=["Move the layer.", "", "  Pick a head. "])
    s = lesson.steps[0]
    assert (s.title, s.narration) == ("Looking back", "Line one.\nLine two.")
    assert s.tries == ("Move the layer.", "Pick a head.")
    assert lessons.parse(lesson.text, lesson.name) == lesson
    assert lesson_edit.edit_step(lesson, 1, tries=[]).steps[0].tries == ()


def test_a_question_takes_its_inputs_from_the_steps_state_as_a_file_does():
    lesson, _ = lesson_edit.new_lesson("Next_token", {"prompt": "Hello there", "temperature": "0.5", "top_k": "7"})
    lesson = lesson_edit.set_question(lesson, 1, "tokens_kept")
    q = lesson.steps[0].question
    assert q.text == lesson_edit.DEFAULT_QUESTIONS["tokens_kept"]
    assert dict(q.inputs) == {"prompt": "Hello there", "temperature": 0.5, "top_k": 7, "top_p": 0.9}
    assert q.given == {"top_p"}         # the page's top-p (the step leaves it out), written into the question
    lesson = lesson_edit.set_question(lesson, 1, "tokens_kept", text="How many are left?")
    lesson = lesson_edit.set_question(lesson, 1, "next_token")     # a text of the teacher's own stays
    assert lesson.steps[0].question.text == "How many are left?"
    lesson = lesson_edit.set_question(lesson, 1, "strongest_head", text=lesson_edit.DEFAULT_QUESTIONS["next_token"])
    q = lesson.steps[0].question
    assert (q.kind, q.inputs["role"]) == ("strongest_head", "previous_token")   # a choice with no default: the first
    lesson = lesson_edit.set_question(lesson, 1, "strongest_head", inputs={"role": "induction"})
    assert lesson.steps[0].question.inputs["role"] == "induction"
    assert lesson_edit.set_question(lesson, 1, None).steps[0].question is None
    assert 'role = "induction"' in lesson.text and lessons.parse(lesson.text, lesson.name) == lesson


def test_the_inputs_a_file_gave_are_kept_when_the_kind_changes():
    text = GOOD.replace(b'kind = "next_token"', b'kind = "next_token"\nprompt = "Paris is the capital of"')
    lesson = lesson_edit.from_upload(text, "demo.toml")
    lesson = lesson_edit.set_question(lesson, 1, "lens_settles")
    assert lesson.steps[0].question.inputs == {"prompt": "Paris is the capital of"}
    heads = lesson_edit.set_question(lesson, 1, "ablation_effect", inputs={"heads": ((3, 1), (5, 0))})
    assert heads.steps[0].question.inputs["heads"] == ((3, 1), (5, 0)) and '"L3.H1"' in heads.text


@pytest.mark.parametrize("kind", list(lessons.QUESTION_KINDS))
def test_every_question_kind_can_be_set_from_the_editor(kind):
    assert set(lesson_edit.DEFAULT_QUESTIONS) == set(lessons.QUESTION_KINDS)
    for view in ("Next_token", "Generate", "Embeddings", "Tiny_LM_lab"):
        q = lesson_edit.set_question(_one_step(view, {}), 1, kind).steps[0].question
        assert q.kind == kind and q.text == lesson_edit.DEFAULT_QUESTIONS[kind]
        if "temperature" in q.inputs and "temperature" in q.given:      # what the page shows when the step is silent
            assert q.inputs["temperature"] == (0.3 if view == "Generate" else 1.0)   # Generate: its qa template's


def test_move_and_delete_steps():
    lesson = _one_step()
    for view, title in (("Next_token", "Second"), ("Home", "Third")):
        lesson, _ = lesson_edit.add_view(lesson, view, {}, title)
    titles = lambda lesson: [s.title for s in lesson.steps]  # noqa: E731
    assert titles(lesson_edit.move_step(lesson, 3, -1)) == ["First", "Third", "Second"]
    assert titles(lesson_edit.move_step(lesson, 1, 1)) == ["Second", "First", "Third"]
    assert titles(lesson_edit.move_step(lesson, 1, -1)) == titles(lesson)        # at an end it stays
    assert titles(lesson_edit.move_step(lesson, 3, 1)) == titles(lesson)
    moved = lesson_edit.move_step(lesson, 3, -2)
    assert [s.number for s in moved.steps] == [1, 2, 3] and moved.steps[0].view == "Home"
    deleted = lesson_edit.delete_step(lesson, 2)
    assert titles(deleted) == ["First", "Third"] and deleted.steps[1].number == 2
    with pytest.raises(LessonError) as e:
        lesson_edit.delete_step(_one_step(), 1)                        # a lesson keeps one step, as a file must
    assert e.value.field == "steps" and "my-lesson.toml" in str(e.value)


def test_the_lessons_own_fields():
    lesson = lesson_edit.edit_info(_one_step(), title="Heads", summary="Which head looks where.", level="advanced",
                                   minutes=35)
    assert (lesson.title, lesson.summary, lesson.level, lesson.minutes) == ("Heads", "Which head looks where.",
                                                                            "advanced", 35)


@pytest.mark.parametrize("edit,field,fragment", [
    (lambda x: lesson_edit.edit_step(x, 1, title="  "), "title", "is empty"),
    (lambda x: lesson_edit.edit_step(x, 1, title="x" * 101), "title", "at most 100"),
    (lambda x: lesson_edit.edit_step(x, 1, narration="x" * 1501), "narration", "at most 1,500"),
    (lambda x: lesson_edit.edit_step(x, 1, tries=[f"try {i}" for i in range(9)]), "try", "at most 8"),
    (lambda x: lesson_edit.set_question(x, 1, "next_token", text=""), "question.text", "is empty"),
    (lambda x: lesson_edit.set_question(x, 1, "strongest_head", inputs={"role": "copying"}), "question.role",
     "not one of"),
    (lambda x: lesson_edit.edit_info(x, summary="two\nlines"), "summary", "one line"),
    (lambda x: lesson_edit.edit_info(x, minutes=0), "minutes", "from 1 to 240"),
])
def test_an_edit_a_file_could_not_hold_is_refused_with_the_files_message(edit, field, fragment):
    lesson = _one_step()
    with pytest.raises(LessonError) as e:
        edit(lesson)
    assert e.value.field == field and fragment in str(e.value), str(e.value)
    assert str(e.value).startswith("my-lesson.toml: ") and (e.value.step == 1 or field in ("summary", "minutes"))
    assert lessons.parse(lesson.text, lesson.name) == lesson                # the lesson itself is untouched


def test_a_31st_step_is_refused():
    lesson = _one_step()
    for i in range(lessons.MAX_STEPS - 1):
        lesson, _ = lesson_edit.add_view(lesson, "Home", {}, f"Step {i + 2}")
    with pytest.raises(LessonError, match="has 31 steps"):
        lesson_edit.add_view(lesson, "Home", {})


# -- uploads ----------------------------------------------------------------------------------------------------------

BAD_UPLOADS = [
    ("syntax error", b'title = "A lesson\n', "`file`: is not valid TOML"),
    ("unknown view", GOOD.replace(b'view = "Home"', b'view = "Kitchen"'),
     "step 2 (“Back home”), `view`: 'Kitchen' is not a view of the app"),
    ("out-of-range value", GOOD.replace(b"temperature = 0.7", b"temperature = 9.0"),
     "step 1 (“Warmer”), `state.temperature`: '9' is not a number from 0 to 5"),
    ("over the size limit", GOOD + b"#" * lessons.MAX_FILE_BYTES,
     "`file`: is 65 KB; a lesson file may be at most 64 KB"),
]


@pytest.mark.parametrize("case,data,fragment", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_a_malformed_upload_names_the_file_the_step_and_the_field(case, data, fragment):
    with pytest.raises(LessonError) as e:
        lesson_edit.from_upload(data, "Class demo (1).toml")
    assert str(e.value).startswith("Class demo (1).toml: ") and fragment in str(e.value), str(e.value)


def test_an_upload_is_named_for_a_link_and_never_over_another():
    assert lesson_edit.from_upload(GOOD, "Class demo (1).toml").name == "my-Class-demo-1"
    assert lesson_edit.from_upload(GOOD, "my-lesson.toml", taken={"my-lesson"}).name == "my-lesson-2"
    assert lesson_edit.from_upload(GOOD, "!!.toml").name == "my-lesson"
    assert all(lessons.NAME_RE.match(lesson_edit.unique_name(s, ())) for s in ("ü" * 90, "a b", "-x-", "x" * 80))
    assert not [lesson.name for lesson in BUILTIN.lessons if lesson_edit.is_own(lesson.name)]   # never shadowed


def test_the_player_finds_an_own_lesson_and_says_where_one_from_another_session_lives():
    own = lesson_edit.from_upload(GOOD, "demo.toml")
    loaded = lesson_edit.WithOwn(BUILTIN.lessons, BUILTIN.errors, own={own.name: own})
    pos = player.position(loaded, {"lesson": own.name, "step": "2"})
    assert pos.running and pos.step.title == "Back home" and not pos.notices
    assert loaded.get(BUILTIN.lessons[0].name) == BUILTIN.lessons[0]
    pos = player.position(BUILTIN, {"lesson": own.name})
    assert not pos.running and "works only there" in pos.notices[0]


# -- AppTest ----------------------------------------------------------------------------------------------------------

def _follow_the_app(at: AppTest) -> None:
    """AppTest.switch_page pins its page for every later run, so the app's own st.switch_page (the sidebar's "Edit it
    on the home page") could not take it anywhere; unpinned, each run starts where the last one finished, as a
    browser's does."""
    at._page_hash = ""


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """Every file a download button was given in the run, by file name (Streamlit's own MediaFileManager.add)."""
    seen: dict[str, bytes] = {}
    original = MediaFileManager.add

    def add(self, data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        seen[file_name] = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return original(self, data, mimetype, coordinates, file_name=file_name,
                        is_for_static_download=is_for_static_download)
    monkeypatch.setattr(MediaFileManager, "add", add)
    return seen


def test_add_a_view_edit_it_at_home_and_download_it(offline, downloads):
    at = AppTest.from_file("../streamlit_app.py", default_timeout=600).run()
    page_ok(at)
    assert any("No lesson of your own yet" in i.value for i in at.info)
    at.switch_page("pages/2_Attention.py").run()
    _follow_the_app(at)
    at.slider(key="att_layer").set_value(3).run()
    at.slider(key="att_head").set_value(2).run()
    at.sidebar.text_input(key="own_add_title").set_value("Looking back").run()
    at.sidebar.button(key="own_add").click().run()
    page_ok(at)
    assert [s.value for s in at.sidebar.success] == ["Step 1 of “My lesson”: Looking back."]
    assert at.sidebar.text_input(key="own_add_title").value == ""
    at.sidebar.button(key="own_edit").click().run()                  # the sidebar's way home
    page_ok(at)
    assert [t.value for t in at.title] == ["Inside a GPT"]
    sid = at.session_state["_own_ids"]["my-lesson"][0]
    at.text_input(key=f"own_{sid}_title").set_value("Which head looks where").run()
    at.text_input(key="own_my-lesson_title").set_value("Heads at work").run()
    at.selectbox(key=f"own_{sid}_qkind").set_value("strongest_head").run()
    at.selectbox(key=f"own_{sid}_q_role").set_value("induction").run()
    page_ok(at)
    lesson = lessons.parse(downloads["my-lesson.toml"], "my-lesson")
    assert lesson == at.session_state["_own_lessons"]["my-lesson"]
    assert lesson.title == "Heads at work" and len(lesson.steps) == 1
    s = lesson.steps[0]
    assert (s.title, s.view, dict(s.state)) == ("Which head looks where", "Attention", {"layer": "3", "head": "2"})
    assert (s.question.kind, s.question.inputs["role"]) == ("strongest_head", "induction")
    assert s.section is None                                          # added from a page: the whole page
    at.multiselect(key=f"own_{sid}_section").set_value(["head"]).run()
    page_ok(at)
    assert lessons.parse(downloads["my-lesson.toml"], "my-lesson").steps[0].section == ("head",)

    at.text_input(key=f"own_{sid}_title").set_value("   ").run()        # refused: the box keeps it, the lesson too
    assert [e.value for e in at.error] == ["my-lesson.toml: step 1 (“   ”), `title`: is empty."]
    assert at.text_input(key=f"own_{sid}_title").value == "   "
    assert at.session_state["_own_lessons"]["my-lesson"].steps[0].title == "Which head looks where"
    at.text_input(key=f"own_{sid}_title").set_value("Heads").run()
    page_ok(at)
    assert lessons.parse(downloads["my-lesson.toml"], "my-lesson").steps[0].title == "Heads"

    at.button(key="own_run").click().run()                           # the player finds the session's lesson
    page_ok(at)
    assert [t.value for t in at.title] == ["Attention"]
    assert "Step 1 of 1 · Heads" in " ".join(m.value for m in at.markdown)
    assert (at.slider(key="att_layer").value, at.slider(key="att_head").value) == (3, 2)
    assert _url(at) == {"layer": "3", "head": "2", "lesson": "my-lesson", "step": "1"}


def test_upload_a_file_and_run_its_first_step_and_a_bad_one_is_named(offline):
    at = AppTest.from_file("../streamlit_app.py", default_timeout=600)
    at.query_params.update({"lesson": "my-class-demo", "step": "1"})  # another session's lesson: a notice
    at.run()
    assert not at.exception
    assert any("works only there" in w.value for w in at.warning), [w.value for w in at.warning]
    for case, data, fragment in BAD_UPLOADS:
        uploader = next(u for u in at.get("file_uploader") if u.proto.label.startswith("Upload a lesson file"))
        uploader.set_value(("class-demo.toml", data, "application/toml")).run()
        assert not at.exception, case
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and errors[0].startswith("class-demo.toml: ") and fragment in errors[0], (case, errors)
        assert any("predicts" in s.value for s in at.subheader), case        # the app keeps working
    uploader = next(u for u in at.get("file_uploader") if u.proto.label.startswith("Upload a lesson file"))
    uploader.set_value(("class-demo.toml", GOOD, "application/toml")).run()
    page_ok(at)
    assert any("“A class demo”, 2 steps" in s.value for s in at.success), [s.value for s in at.success]
    lesson = at.session_state["_own_lessons"]["my-class-demo"]
    assert lesson == lessons.parse(GOOD, "my-class-demo", "class-demo.toml")
    assert at.text_input(key="own_my-class-demo_title").value == "A class demo"     # ready to edit
    at.button(key="own_run").click().run()
    _check_step(at, lesson, lesson.steps[0], present=False)
    assert at.slider(key="nt_temp").value == 0.7 and _url(at)["top_k"] == "5"
    assert re.search(r"Step 1 of 2", " ".join(m.value for m in at.markdown))
