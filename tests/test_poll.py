"""The class poll (explainer/poll.py, pages/11_Join.py, the player's poll): the store on its own (an exact tally
with 40 students at once, one guess per student, the teacher's secret, bounds, rate, expiry, caps), then the
student's page and the teacher's panel in Streamlit's AppTest."""

from __future__ import annotations

import threading

import pytest

from explainer import poll
from explainer.errors import ExplainerError
from explainer.poll import GuessRefused, NoSuchRoom, NotTeacher, PollFull, PollStore, RoomExpired


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def store():
    return PollStore()


def _asked(store, text="Which token comes next?"):
    code, secret = store.open_room()
    store.set_question(code, secret, "how-a-gpt-writes", 2, text)
    return code, secret


# -- the store ------------------------------------------------------------------------------------------------

def test_a_room_code_is_short_and_unambiguous(store):
    codes = {store.open_room()[0] for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert len(code) == 5 and set(code) <= set(poll.ALPHABET) and not set(code) & set("IO01")
    assert poll.clean_code(" ab-cd e ") == "ABCDE"
    with pytest.raises(NoSuchRoom, match="not a room code"):
        poll.clean_code("AB1O")


def test_forty_students_at_once_give_the_exact_tally(store):
    code, secret = _asked(store)
    guesses = {f"student-{i}": ["Paris", " paris ", "LONDON", "rome", "the  city\tof lights"][i % 5]
               for i in range(40)}
    start = threading.Barrier(40)
    errors = []

    def one(sid, guess):
        try:
            start.wait()
            store.submit(code, sid, guess)
        except Exception as e:  # noqa: BLE001 - collected, the test fails on any
            errors.append(e)

    threads = [threading.Thread(target=one, args=kv) for kv in guesses.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.tally(code, secret) == [("paris", 16), ("london", 8), ("rome", 8), ("the city of lights", 8)]
    assert store.view(code).guesses == 40


def test_a_students_later_guess_replaces_the_earlier(store):
    code, secret = _asked(store)
    assert store.submit(code, "amy", "London") == "london"
    store.submit(code, "ben", "Paris")
    assert store.submit(code, "amy", "Paris") == "paris"
    assert store.tally(code, secret) == [("paris", 2)]
    assert store.guess_of(code, "amy") == "paris" and store.guess_of(code, "cat") is None


def test_only_the_secret_runs_the_room(store):
    code, secret = _asked(store)
    store.submit(code, "amy", "paris")
    other_code, other_secret = store.open_room()
    for bad in (None, "", "guess", secret[:-1], other_secret):
        with pytest.raises(NotTeacher, match="Only the teacher"):
            store.set_question(code, bad, "x", 1, "Changed?")
        with pytest.raises(NotTeacher):
            store.advance(code, bad, "x", 1, "Changed?")
        with pytest.raises(NotTeacher):
            store.reveal(code, bad)
        with pytest.raises(NotTeacher):
            store.tally(code, bad)           # before the reveal the tally is the teacher's alone
        with pytest.raises(NotTeacher):
            store.close(code, bad)
    v = store.view(code)
    assert (v.question.text, v.round, v.revealed, v.guesses) == ("Which token comes next?", 1, False, 1)
    assert isinstance(NotTeacher("x"), ExplainerError)


def test_reveal_closes_guesses_and_opens_the_tally(store):
    code, secret = _asked(store)
    store.submit(code, "amy", "paris")
    store.reveal(code, secret)
    with pytest.raises(GuessRefused, match="already revealed"):
        store.submit(code, "ben", "rome")
    assert store.tally(code) == [("paris", 1)]          # anyone's now
    # the same question again is no new round; another question (or advance) is, with no guesses
    assert store.set_question(code, secret, "how-a-gpt-writes", 2, "Which token comes next?").revealed
    v = store.set_question(code, secret, "how-a-gpt-writes", 3, "How many tokens?")
    assert (v.round, v.revealed, v.guesses) == (2, False, 0)
    assert store.advance(code, secret, "how-a-gpt-writes", 3, "How many tokens?").round == 3
    store.set_question(code, secret, "how-a-gpt-writes", 4, None)        # a step that asks nothing
    with pytest.raises(GuessRefused, match="no question open"):
        store.submit(code, "amy", "9")


@pytest.mark.parametrize("raw,why", [("x" * 100_000, "100,000 characters"), ("y" * 61, "61 characters"),
                                     ("   \t\n ", "empty"), ("\x00\x07\u200b", "empty")])
def test_oversized_and_empty_guesses_are_refused(store, raw, why):
    code, secret = _asked(store)
    with pytest.raises(GuessRefused, match=why):
        store.submit(code, "amy", raw)
    assert store.tally(code, secret) == []


def test_guesses_are_normalised_data():
    assert poll.normalise("  The\tCity \n of  LIGHTS ") == "the city of lights"
    assert poll.normalise("<script>alert(1)</script>") == "<script>alert(1)</script>"   # kept, shown as text
    assert poll.normalise("pa\u200bris\x1b[31m") == "paris[31m"                          # control/format chars out
    assert poll.normalise("Straße") == "strasse"
    assert poll.normalise("z" * 60) == "z" * 60


def test_the_rate_limit(store):
    clock = Clock()
    store = PollStore(clock=clock)
    code, _ = _asked(store)
    for i in range(poll.RATE_COUNT):
        store.submit(code, "amy", f"guess {i}")
        clock.t += 0.5
    with pytest.raises(GuessRefused, match="Too fast"):
        store.submit(code, "amy", "one more")
    store.submit(code, "ben", "another student is not slowed")
    clock.t += poll.RATE_SECONDS
    assert store.submit(code, "amy", "later") == "later"


def test_an_idle_room_expires(store):
    clock = Clock()
    store = PollStore(clock=clock, idle_seconds=3600)
    code, secret = _asked(store)
    clock.t += 3000
    store.submit(code, "amy", "paris")                # activity keeps it open
    clock.t += 3000
    store.view(code)                                  # a student's page polling does not
    clock.t += 700
    with pytest.raises(RoomExpired, match="nobody used it"):
        store.view(code)
    with pytest.raises(RoomExpired):
        store.reveal(code, secret)
    with pytest.raises(NoSuchRoom, match="no room"):
        store.view("ZZZZZ" if code != "ZZZZZ" else "YYYYY")


def test_the_caps_on_rooms_and_students():
    clock = Clock()
    store = PollStore(clock=clock, max_rooms=3, max_students=4, idle_seconds=100)
    rooms = [store.open_room() for _ in range(3)]
    with pytest.raises(PollFull, match="3 class polls open"):
        store.open_room()
    store.close(*rooms[0])
    code, secret = store.open_room()                  # a closed room's place is free again
    clock.t += 101
    assert len(store) == 0                             # idle rooms make room too
    code, secret = _asked(store)
    for i in range(4):
        store.submit(code, f"s{i}", "a")
    with pytest.raises(PollFull, match="4 students"):
        store.submit(code, "s4", "a")
    store.advance(code, secret, "l", 3, "Next?")      # a new round: students with no guess and quiet make way
    clock.t += poll.RATE_SECONDS
    store.submit(code, "s4", "b")
    assert store.tally(code, secret) == [("b", 1)]


# -- the student's page and the teacher's panel (AppTest) --------------------------------------------------------

def _join(query: dict[str, str]):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../pages/11_Join.py", default_timeout=120)
    at.query_params.update(query)
    return at.run()


def _submit(at, guess: str):
    box = next(t for t in at.text_input if t.key and t.key.startswith("join_box_"))
    box.set_value(guess)          # as a websocket client may send it: the server does not enforce max_chars
    next(b for b in at.button if b.label == "Submit").click()
    return at.run()


def _markdown(at) -> list[str]:
    return [m.value for m in at.markdown]


def test_a_students_page_shows_the_question_and_never_the_teachers_controls():
    from tests.conftest import page_ok

    code, secret = poll.STORE.open_room()
    try:
        at = _join({"room": code.lower()})
        page_ok(at)
        assert any("Waiting for the teacher" in i.value for i in at.info)
        poll.STORE.set_question(code, secret, "how-a-gpt-writes", 1, "How many tokens?")
        at.run()
        page_ok(at)
        assert "**Question:** How many tokens?" in _markdown(at)
        at = _submit(at, "  Nine ")
        page_ok(at)
        assert "Your guess: **nine**" in _markdown(at)
        at = _submit(at, "9")                                           # replaces it
        assert "Your guess: **9**" in _markdown(at) and poll.STORE.tally(code, secret) == [("9", 1)]
        assert not [b for b in at.button if b.key and b.key.startswith("player_")]
        assert not {"Reveal (R)", "Open a class poll", "Close the poll", "Next ▶"} & {b.label for b in at.button}
        assert "_poll_teacher" not in at.session_state and "_poll_student" in at.session_state
        assert secret not in repr(at.session_state)                   # every key and value the session holds
        poll.STORE.reveal(code, secret)
        at.run()
        page_ok(at)
        assert any("answer is on the projector" in s.value for s in at.success)
        assert not [t for t in at.text_input if t.key and t.key.startswith("join_box_")]    # guesses closed
    finally:
        poll.STORE.close(code, secret)


def test_a_student_who_reloads_keeps_one_guess():
    """A reload is a new Streamlit session: the id in the page's link (`me`) keeps the student one guess."""
    from tests.conftest import page_ok

    code, secret = poll.STORE.open_room()
    try:
        poll.STORE.set_question(code, secret, "x", 1, "Guess?")
        first = _submit(_join({"room": code}), "paris")
        me = first.query_params["me"]
        me = me[0] if isinstance(me, list) else me
        assert me == first.session_state["_poll_student"] and len(me) == 16
        again = _join({"room": code, "me": me})                       # the same link, a new session
        page_ok(again)
        assert "Your guess: **paris**" in _markdown(again)
        again = _submit(again, "rome")                                 # replaces it: still one student
        assert poll.STORE.tally(code, secret) == [("rome", 1)]
        other = _join({"room": code, "me": "<b>not-an-id</b>"})      # a mangled id: a fresh one, no error
        page_ok(other)
        assert other.session_state["_poll_student"] != me and not any(m.startswith("Your guess") for m in
                                                                       _markdown(other))
        _submit(other, "paris")
        assert poll.STORE.tally(code, secret) == [("paris", 1), ("rome", 1)]
    finally:
        poll.STORE.close(code, secret)


def test_html_and_oversized_guesses_are_text_and_bounded():
    from explainer import ui
    from tests.conftest import page_ok

    code, secret = poll.STORE.open_room()
    try:
        poll.STORE.set_question(code, secret, "x", 1, "Guess?")
        at = _submit(_join({"room": code}), "<script>alert(1)</script>")
        shown = [m for m in at.markdown if m.value.startswith("Your guess")]
        assert len(shown) == 1 and shown[0].value == "Your guess: **" + ui.md_escape("<script>alert(1)</script>") + "**"
        assert shown[0].value == r"Your guess: **\<script\>alert\(1\)\</script\>**"
        assert not shown[0].proto.allow_html                          # Markdown with HTML off, the tags escaped
        box = next(t for t in at.text_input if t.key and t.key.startswith("join_box_"))
        assert box.proto.max_chars == poll.MAX_GUESS                   # a browser cannot even type more
        assert poll.STORE.tally(code, secret) == [("<script>alert(1)</script>", 1)]
        at = _submit(at, "x" * 100_000)      # sent past the box: Streamlit's server keeps max_chars of it
        page_ok(at)
        assert poll.STORE.tally(code, secret) == [("x" * poll.MAX_GUESS, 1)]
        assert f"Your guess: **{'x' * poll.MAX_GUESS}**" in _markdown(at)
        with pytest.raises(GuessRefused, match="100,000 characters"):    # and the store refuses it on its own
            poll.STORE.submit(code, "past-the-page", "x" * 100_000)
        assert _join({"room": "NOPE1"}).error[0].value.startswith("“NOPE1” is not a room code")
        assert "There is no room" in _join({"room": "ZZZZZ" if code != "ZZZZZ" else "YYYYY"}).error[0].value
    finally:
        poll.STORE.close(code, secret)


def test_the_teachers_panel_opens_a_poll_and_shows_the_tally(offline):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import page_ok

    at = AppTest.from_file("../pages/8_Anatomy.py", default_timeout=600)
    at.query_params.update({"lesson": "two-files", "step": "1"})
    at.run()
    page_ok(at)
    at.button(key="player_poll_open").click().run()
    page_ok(at)
    room = at.session_state["_poll_teacher"]
    code, secret = room["code"], room["secret"]
    try:
        assert any(f"Room <b>{code}</b>" in m for m in _markdown(at))
        assert len(at.get("image")) == 1                                  # the QR code
        assert any(m.startswith("Join at `http://localhost:8501/Join` ") for m in _markdown(at))  # no browser: the
        # fallback, as a code span (Markdown escapes showed as "127\\.0\\.0\\.1" in the browser)
        v = poll.STORE.view(code)
        assert (v.question.lesson, v.question.step, v.revealed) == ("two-files", 1, False)
        assert v.question.text.startswith("How many parameters")
        for i, g in enumerate(["135m", "135M", "100 million", "<b>1</b>"]):
            poll.STORE.submit(code, f"s{i}", g)
        at.run()
        page_ok(at)
        md = _markdown(at)
        assert "135m · **2**" in md and "100 million · **1**" in md and r"\<b\>1\</b\> · **1**" in md
        assert any("4 students, live" in m for m in md)
        at.button(key="player_reveal").click().run()
        page_ok(at)
        assert poll.STORE.view(code).revealed
        assert at.success and at.success[0].value.startswith("**Answer:**")
        assert any("4 students, closed" in m for m in _markdown(at))
        at.button(key="player_next").click().run()                       # the next step's question: a new round
        page_ok(at)
        v = poll.STORE.view(code)
        assert (v.question.step, v.revealed, v.guesses) == (2, False, 0)
        at.button(key="player_poll_close").click().run()
        assert "_poll_teacher" not in at.session_state
        with pytest.raises(NoSuchRoom):
            poll.STORE.view(code)
    finally:
        try:
            poll.STORE.close(code, secret)
        except NoSuchRoom:
            pass
