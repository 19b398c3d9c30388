"""The class poll: rooms a teacher opens, one guess per student per question, the live tally. No Streamlit.

    store = PollStore()
    code, secret = store.open_room()                      # "KXQRM", a secret only the teacher's session holds
    store.set_question(code, secret, "how-a-gpt-writes", 3, "Which token is most likely next?")
    store.submit(code, student_id, "  Paris ")            # → "paris"; a later guess replaces the earlier one
    store.tally(code, secret)                             # [("paris", 31), ("london", 6), ...]
    store.reveal(code, secret)                            # guesses close; the tally is public from now on

Rooms live in this one process (`STORE`): every session of one Streamlit server sees them, several server
processes would not (they would need an external store, e.g. Redis). Everything is bounded: a room code is
5 letters of `ALPHABET` (no I, O, 0 or 1 to misread), at most `MAX_ROOMS` rooms, `MAX_STUDENTS` students a
room, `MAX_GUESS` characters a guess, `RATE_COUNT` submissions per `RATE_SECONDS` per student; a room nobody
has used for `IDLE_SECONDS` is gone. One lock guards the store: each call is a few dictionary operations.

A guess is normalised (control and format characters removed, runs of white space made one space, stripped,
casefolded) so "Paris", " paris" and "PARIS" count as one; it is data, and the app shows it as text only.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import ExplainerError

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"   # no I or O (nor digits): read off a projector without doubt
CODE_LENGTH = 5                          # 24**5 ≈ 8 million codes
MAX_GUESS = 60                           # characters, after normalising
MAX_RAW = 10_000                         # a longer submission is refused before it is even normalised
MAX_STUDENT_ID = 64
MAX_ROOMS = 200
MAX_STUDENTS = 300                       # students a room keeps (guesses and rate-limit records)
RATE_COUNT, RATE_SECONDS = 5, 10.0       # at most 5 submissions per 10 s per student
IDLE_SECONDS = 2 * 3600                  # a room unused this long is gone
_EXPIRED_KEPT = 1000                     # codes remembered as expired, to say so rather than "no such room"
_CODE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
_SPACE = re.compile(r"\s+")


class PollError(ExplainerError):
    """A class-poll request that cannot be done as it is."""


class NoSuchRoom(PollError):
    """No room has this code (mistyped, or closed by the teacher)."""


class RoomExpired(PollError):
    """The room was closed because nobody used it for IDLE_SECONDS."""


class NotTeacher(PollError):
    """A teacher's action (set the question, reveal, read the tally early, close) without the room's secret."""


class GuessRefused(PollError):
    """A guess that is empty, too long, too fast, or comes when no question is open."""


class PollFull(PollError):
    """The server's cap on rooms, or a room's cap on students, is reached."""


@dataclass(frozen=True)
class Question:
    lesson: str
    step: int
    text: str | None          # None: the step asks nothing; students wait


@dataclass(frozen=True)
class RoomView:
    """What anyone with the code may see: the question, its round (a new question is a new round), whether
    the answer is revealed, and how many students have guessed."""

    code: str
    question: Question | None
    round: int
    revealed: bool
    guesses: int


@dataclass
class _Room:
    code: str
    secret: str
    last_active: float
    question: Question | None = None
    round: int = 0
    revealed: bool = False
    guesses: dict[str, str] = field(default_factory=dict)          # student id -> normalised guess
    recent: dict[str, deque] = field(default_factory=dict)         # student id -> times of their last submissions


def normalise(guess: str) -> str:
    """A guess as it is counted: control and format characters out, white space runs one space, stripped,
    casefolded. Refuses (GuessRefused) an empty guess and one over MAX_GUESS characters."""
    if not isinstance(guess, str):
        raise GuessRefused("A guess must be text.", "Type a word or a number.")
    if len(guess) > MAX_RAW:
        raise GuessRefused(f"That guess is {len(guess):,} characters long; a guess has at most {MAX_GUESS}.",
                           "Type a shorter one.")
    text = _SPACE.sub(" ", guess)
    text = "".join(c for c in text if not unicodedata.category(c).startswith("C"))
    text = _SPACE.sub(" ", text).strip().casefold()
    if not text:
        raise GuessRefused("That guess is empty.", "Type a word or a number.")
    if len(text) > MAX_GUESS:
        raise GuessRefused(f"That guess is {len(text):,} characters long; a guess has at most {MAX_GUESS}.",
                           "Type a shorter one.")
    return text


def clean_code(raw: str) -> str:
    """A typed room code as the store spells it (upper case, spaces out); PollError when it cannot be one."""
    code = re.sub(r"[\s-]", "", str(raw or "")).upper()
    if not _CODE.fullmatch(code):
        raise NoSuchRoom(f"“{code[:12]}” is not a room code.",
                         f"A room code is {CODE_LENGTH} letters, as the projector shows it.")
    return code


class PollStore:
    """Every room of this server process, behind one lock. `clock` (seconds, monotonic) is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_rooms: int = MAX_ROOMS,
                 max_students: int = MAX_STUDENTS, idle_seconds: float = IDLE_SECONDS):
        self._clock = clock
        self._lock = threading.Lock()
        self._rooms: dict[str, _Room] = {}
        self._expired: deque[str] = deque(maxlen=_EXPIRED_KEPT)
        self.max_rooms, self.max_students, self.idle_seconds = max_rooms, max_students, idle_seconds

    # -- the teacher ------------------------------------------------------------------------------------------

    def open_room(self) -> tuple[str, str]:
        """A new room: (its code, the teacher's secret). The secret is the only way to run the room."""
        with self._lock:
            now = self._clock()
            self._sweep(now)
            if len(self._rooms) >= self.max_rooms:
                raise PollFull(f"This server already has {len(self._rooms)} class polls open, its limit.",
                               "Close a poll you no longer use, or wait: an idle poll closes after "
                               f"{self.idle_seconds / 3600:g} hours.")
            while True:
                code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
                if code not in self._rooms:
                    break
            secret = secrets.token_urlsafe(24)
            self._rooms[code] = _Room(code, secret, now)
            return code, secret

    def set_question(self, code: str, secret: str, lesson: str, step: int, text: str | None) -> RoomView:
        """Ask a question (text None: the step asks nothing). The same question again changes nothing, so the
        teacher's page may call this on every rerun; a different one starts a new round (no guesses yet)."""
        with self._lock:
            room = self._teacher(code, secret)
            q = Question(str(lesson), int(step), None if text is None else str(text))
            if room.question != q:
                self._new_round(room, q)
            return self._view(room)

    def advance(self, code: str, secret: str, lesson: str, step: int, text: str | None) -> RoomView:
        """Ask a question as a new round even if it is the one already asked (ask the class again)."""
        with self._lock:
            room = self._teacher(code, secret)
            self._new_round(room, Question(str(lesson), int(step), None if text is None else str(text)))
            return self._view(room)

    def reveal(self, code: str, secret: str) -> RoomView:
        """The answer is out: no more guesses this round, and the tally is anyone's to see."""
        with self._lock:
            room = self._teacher(code, secret)
            room.revealed = True
            return self._view(room)

    def close(self, code: str, secret: str) -> None:
        with self._lock:
            self._teacher(code, secret)
            del self._rooms[code]

    # -- students, and anyone with the code -------------------------------------------------------------------

    def submit(self, code: str, student_id: str, guess: str) -> str:
        """A student's guess for the open question, normalised; a later one replaces theirs. Returns it."""
        if not isinstance(student_id, str) or not 0 < len(student_id) <= MAX_STUDENT_ID:
            raise GuessRefused("This browser has no student id.", "Reload the page.")
        text = normalise(guess)                      # outside the lock: the heaviest part, and pure
        with self._lock:
            now = self._clock()
            room = self._room(code, now)
            if room.question is None or room.question.text is None:
                raise GuessRefused("There is no question open yet.", "Wait for the teacher's next question.")
            if room.revealed:
                raise GuessRefused("The answer is already revealed: guesses for this question are closed.",
                                   "Wait for the next question.")
            times = room.recent.get(student_id)
            if times is None:
                if len(room.recent) >= self.max_students:
                    self._forget_quiet(room, now)
                if len(room.recent) >= self.max_students:
                    raise PollFull(f"This room already has {self.max_students} students, its limit.",
                                   "Ask the teacher to open a second poll.")
                times = room.recent[student_id] = deque(maxlen=RATE_COUNT)
            if len(times) == RATE_COUNT and now - times[0] < RATE_SECONDS:
                wait = RATE_SECONDS - (now - times[0])
                raise GuessRefused(f"Too fast: at most {RATE_COUNT} guesses in {RATE_SECONDS:g} seconds.",
                                   f"Try again in {wait:.0f} s.")
            times.append(now)
            room.guesses[student_id] = text
            room.last_active = now
            return text

    def view(self, code: str) -> RoomView:
        """The room as a student's page shows it (reading does not keep a room alive)."""
        with self._lock:
            return self._view(self._room(code, self._clock()))

    def guess_of(self, code: str, student_id: str) -> str | None:
        """This student's guess for the question open now (None: none yet)."""
        with self._lock:
            return self._room(code, self._clock()).guesses.get(student_id)

    def tally(self, code: str, secret: str | None = None) -> list[tuple[str, int]]:
        """(guess, students) most first, then alphabetically. Before the reveal only the teacher may read it
        (a tally on a student's screen would sway the rest of the class)."""
        with self._lock:
            now = self._clock()
            room = self._room(code, now)
            if not room.revealed:
                self._check(room, secret)
                room.last_active = now                # the projector showing it is the room in use
            counts: dict[str, int] = {}
            for g in room.guesses.values():
                counts[g] = counts.get(g, 0) + 1
            return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self._clock())
            return len(self._rooms)

    # -- inside the lock --------------------------------------------------------------------------------------

    def _room(self, code: str, now: float) -> _Room:
        code = clean_code(code)
        room = self._rooms.get(code)
        if room is not None and now - room.last_active > self.idle_seconds:
            self._expire(code)
            room = None
        if room is None:
            if code in self._expired:
                raise RoomExpired(f"Room {code} has closed: nobody used it for {self.idle_seconds / 3600:g} "
                                  "hours.", "Ask the teacher to open a new poll.")
            raise NoSuchRoom(f"There is no room {code} (the teacher may have closed it).",
                             "Check the code on the projector.")
        return room

    def _teacher(self, code: str, secret: str) -> _Room:
        now = self._clock()
        room = self._room(code, now)
        self._check(room, secret)
        room.last_active = now
        return room

    @staticmethod
    def _check(room: _Room, secret: str | None) -> None:
        if not isinstance(secret, str) or not hmac.compare_digest(secret.encode(), room.secret.encode()):
            raise NotTeacher(f"Only the teacher who opened room {room.code} can do that.",
                             "Open your own poll from the lesson player.")

    @staticmethod
    def _new_round(room: _Room, q: Question) -> None:
        room.question, room.round, room.revealed = q, room.round + 1, False
        room.guesses.clear()

    def _forget_quiet(self, room: _Room, now: float) -> None:
        """Drop rate-limit records of students who have no guess this round and no recent submission."""
        quiet = [s for s, t in room.recent.items()
                 if s not in room.guesses and (not t or now - t[-1] >= RATE_SECONDS)]
        for sid in quiet:
            del room.recent[sid]

    def _expire(self, code: str) -> None:
        del self._rooms[code]
        self._expired.append(code)

    def _sweep(self, now: float) -> None:
        for code in [c for c, r in self._rooms.items() if now - r.last_active > self.idle_seconds]:
            self._expire(code)

    @staticmethod
    def _view(room: _Room) -> RoomView:
        return RoomView(room.code, room.question, room.round, room.revealed, len(room.guesses))


STORE = PollStore()      # the server process's rooms: the one piece of shared mutable state
