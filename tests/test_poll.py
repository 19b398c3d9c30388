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
