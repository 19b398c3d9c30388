"""The lesson player's Next: how long from pressing Next (or →) to the next step drawn, on the real server.

    python benchmarks/player.py [--lessons how-a-gpt-writes,...] [--passes 2] [--present 1]

Starts `streamlit run streamlit_app.py` (bundled model), opens each built-in lesson at step 1 as a link does
(`/?lesson=NAME&step=1&present=1`), then presses Next through every step, over Streamlit's own websocket
protocol (benchmarks/load.py's client: the browser's rerun requests, the ForwardMsg deltas back). The time
is from the button's rerun request to the last script run finishing, the step on another page included
(the player opens it with st.switch_page: that run and the new page's run). Pass 1 is the lesson's first
time through on a fresh server (every step's page and computations new); pass 2 the same again (a teacher
who went through the lesson before the class came in). Steps are split by whether the step's prompt
differs from the one before: the target (issue 10) is under 1 s when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _bench import streamlit_server
from load import Session, pct

from explainer import lessons, player


class PlayerClient(Session):
    """A Session that presses buttons and waits for the last run of the request (switch_page runs twice)."""

    async def press(self, key: str, timeout: float = 600) -> tuple[float, list[str]]:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return await self.settle(widgets=[WidgetState(id=self.widgets[key], trigger_value=True)], timeout=timeout)

    async def settle(self, page_name: str = "", widgets: list | None = None,
                     timeout: float = 600) -> tuple[float, list[str]]:
        t = time.perf_counter()
        problems: list[str] = []
        sec, _, probs = await self.rerun(page_name=page_name, widgets=widgets, timeout=timeout)
        problems += probs
        while self.last_status == 2:            # FINISHED_EARLY_FOR_RERUN: st.switch_page, st.rerun
            self.widgets = {}
            _, _, probs = await self.rerun_wait(timeout)
            problems += probs
        return time.perf_counter() - t, problems


def prompts_of(lesson: lessons.Lesson) -> list[str]:
    """Each step's prompt as its page shows it (a step that names none has the default)."""
    return [lessons.shown_prompt(s.view, s.state) for s in lesson.steps]


async def run_lesson(url: str, lesson: lessons.Lesson, passes: int, present: bool) -> list[dict]:
    rows = []
    prompts = prompts_of(lesson)
    async with PlayerClient(url, player.step_link(lesson, 1, present)) as c:
        for p in range(1, passes + 1):
            c.query = player.step_link(lesson, 1, present)
            c.widgets = {}
            sec, problems = await c.settle()
            rows.append(dict(lesson=lesson.name, pass_=p, step=1, seconds=sec, same_prompt=None, problems=problems))
            for n in range(2, len(lesson.steps) + 1):
                sec, problems = await c.press("player_next")
                got = c.query.get("step")
                if got != str(n):
                    problems.append(f"after Next the link says step {got}, not {n}")
                rows.append(dict(lesson=lesson.name, pass_=p, step=n, seconds=sec,
                                 same_prompt=prompts[n - 1] == prompts[n - 2], view=lesson.step(n).view,
                                 problems=problems))
    return rows


def report(rows: list[dict], passes: int) -> None:
    for p in range(1, passes + 1):
        for same, label in ((True, "same prompt"), (False, "new prompt ")):
            xs = [r["seconds"] for r in rows if r["pass_"] == p and r["same_prompt"] is same]
            if xs:
                print(f"pass {p}, Next to a step with the {label}: n={len(xs):3d}  p50 {pct(xs, 0.5):6.2f} s  "
                      f"p95 {pct(xs, 0.95):6.2f} s  max {max(xs):6.2f} s")
        slow = sorted((r for r in rows if r["pass_"] == p and r["same_prompt"]), key=lambda r: -r["seconds"])[:5]
        print(f"pass {p}, slowest same-prompt steps: " +
              ", ".join(f"{r['lesson']}:{r['step']} ({r['view']}) {r['seconds']:.2f} s" for r in slow))
    problems = [(r["lesson"], r["step"], q) for r in rows for q in r["problems"]]
    print(f"errors and exceptions shown: {len(problems)} {problems[:5]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lessons", default="", help="comma-separated lesson names (default: every built-in one)")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--present", type=int, default=1, help="1: the presenter view (as on a projector)")
    ap.add_argument("--port", type=int, default=8767)
    args = ap.parse_args()
    loaded = lessons.load_all()
    chosen = [lsn for lsn in loaded.lessons if not args.lessons or lsn.name in args.lessons.split(",")]
    with streamlit_server(args.port) as (url, _):
        rows = []
        for lesson in chosen:
            t = time.perf_counter()
            got = asyncio.run(run_lesson(url, lesson, args.passes, bool(args.present)))
            print(f"{lesson.name}: {len(lesson.steps)} steps x {args.passes} passes in {time.perf_counter() - t:.1f} s")
            rows += got
    report(rows, args.passes)


if __name__ == "__main__":
    main()
