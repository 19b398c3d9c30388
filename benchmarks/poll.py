"""The class poll with a class at once: 40 students submitting together, through the store and through the server.

    python benchmarks/poll.py [--students 40] [--rounds 2] [--no-server] [--port 8766]

1. The store (explainer/poll.py) on its own: `--students` threads released together by a barrier, each
   submitting `--rounds` guesses (the later replacing the earlier); p50/p95 of one `submit` call, and whether
   the tally is exactly what was sent.
2. The real server: `streamlit run streamlit_app.py`; a teacher's session (benchmarks/load.py's websocket
   protocol) opens lesson two-files, step 1, on Anatomy and presses "Open a class poll"; `--students` sessions
   open /Join?room=CODE, then all press Submit at once, `--rounds` times. Prints p50/p95 of a submit (request
   sent to script finished), then reads the tally from the teacher's panel and checks it is exact.

Not exercised: the browsers' 2-s fragment polls (the front end drives those timers, not the protocol), and
the front end's drawing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import threading
import time
from collections import Counter

from _bench import streamlit_server
from load import Session, pct

from explainer import poll

GUESSES = ["Paris", "paris ", "London", "Rome", "the city of lights", "<b>Berlin</b>", "Madrid", "9"]


def guess_of(i: int, r: int) -> str:
    return GUESSES[(i + 3 * r) % len(GUESSES)]


def want_tally(students: int, rounds: int) -> list[tuple[str, int]]:
    c = Counter(poll.normalise(guess_of(i, rounds - 1)) for i in range(students))
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def store_bench(students: int, rounds: int) -> None:
    store = poll.PollStore()
    code, secret = store.open_room()
    store.set_question(code, secret, "bench", 1, "Guess?")
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(students)

    def student(i: int) -> None:
        start.wait()
        for r in range(rounds):
            t = time.perf_counter()
            store.submit(code, f"student-{i}", guess_of(i, r))
            dt = time.perf_counter() - t
            with lock:
                times.append(dt)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    exact = store.tally(code, secret) == want_tally(students, rounds)
    print(f"store: {len(times)} submits by {students} threads at once: p50 {pct(times, 0.5) * 1e6:.0f} µs, "
          f"p95 {pct(times, 0.95) * 1e6:.0f} µs; tally exact: {exact}")


class Client(Session):
    """A Session that also keeps the Markdown bodies, errors and exceptions of its last rerun."""

    async def go(self, page_name: str = "", widgets: list | None = None, timeout: float = 600):
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = "&".join(f"{k}={v}" for k, v in self.query.items())
        cs.page_script_hash = self.page_hash
        cs.page_name = page_name
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        self.markdown, self.problems = [], []
        t = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = fm.WhichOneof("type")
            if kind == "navigation":
                self.page_hash = fm.navigation.page_script_hash or self.page_hash
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                etype = el.WhichOneof("type")
                inner = getattr(el, etype)
                wid = getattr(inner, "id", "")
                if wid and "-" in wid:
                    self.widgets[wid.rsplit("-", 1)[-1]] = wid
                if etype == "markdown":
                    self.markdown.append(inner.body)
                elif etype == "exception":
                    self.problems.append(f"exception: {inner.type}: {inner.message[:200]}")
                elif etype == "alert" and inner.format == 1:
                    self.problems.append(f"error: {inner.body[:200]}")
            elif kind == "script_finished":
                return time.perf_counter() - t

    def trigger(self, key: str):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return WidgetState(id=self.widgets[key], trigger_value=True)

    def text(self, key: str, value: str):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return WidgetState(id=self.widgets[key], string_value=value)


async def server_bench(url: str, students: int, rounds: int) -> None:
    async with Client(url, {"lesson": "two-files", "step": "1"}) as teacher:
        t = await teacher.go("Anatomy")
        print(f"server: the teacher's lesson page (model loaded) in {t:.1f} s")
        await teacher.go(widgets=[teacher.trigger("player_poll_open")])
        code = next(m for body in teacher.markdown if (m := re.search(r"Room <b>([A-Z]{5})</b>", body))).group(1)
        clients = [Client(url, {"room": code}) for _ in range(students)]
        for c in clients:
            await c.__aenter__()
        try:
            opened = await asyncio.gather(*(c.go("Join") for c in clients))
            print(f"server: {students} students opened /Join?room={code}: p50 {pct(opened, 0.5) * 1e3:.0f} ms, "
                  f"p95 {pct(opened, 0.95) * 1e3:.0f} ms")
            times: list[float] = []
            for r in range(rounds):
                async def submit(i: int, c: Client, r: int = r) -> float:
                    return await c.go(widgets=[c.text("join_box_1", guess_of(i, r)), c.trigger("join_send_1")])

                t0 = time.perf_counter()
                got = await asyncio.gather(*(submit(i, c) for i, c in enumerate(clients)))
                print(f"server: round {r + 1}: {students} submits at once done in {time.perf_counter() - t0:.2f} s")
                times += got
            problems = [p for c in clients for p in c.problems]
            shown = [m for c in clients for m in c.markdown if m.startswith("Your guess")]
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)
        print(f"server: {len(times)} submits by {students} sessions at once: p50 {pct(times, 0.5) * 1e3:.0f} ms, "
              f"p95 {pct(times, 0.95) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms; errors on the pages: "
              f"{len(problems)} {problems[:3]}; students shown their guess: {len(shown)}")
        await teacher.go()
        rows = [m for body in teacher.markdown for m in re.findall(r"^(.*) · \*\*(\d+)\*\*$", body)]
        tally = [(re.sub(r"\\(.)", r"\1", g), int(n)) for g, n in rows]
        print(f"server: the teacher's tally {tally}; exact: {tally == want_tally(students, rounds)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2, help="guesses per student (each replaces the one before)")
    ap.add_argument("--no-server", action="store_true", help="only the store")
    ap.add_argument("--port", type=int, default=8766)
    args = ap.parse_args()
    assert args.rounds <= poll.RATE_COUNT, "more would meet the rate limit"
    store_bench(args.students, args.rounds)
    if args.no_server:
        return
    with streamlit_server(args.port) as (url, _):
        asyncio.run(server_bench(url, args.students, args.rounds))


if __name__ == "__main__":
    main()
