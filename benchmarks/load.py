"""A class at once: the real server, many concurrent sessions, over Streamlit's own websocket protocol.

    python benchmarks/load.py [--sessions 30] [--seconds 120] [--memory-gb 4] [--long 3]

Starts `streamlit run streamlit_app.py --server.headless true --server.port N` with EXPLAINER_MEMORY_GB set,
then drives `--sessions` sessions, each its own websocket client speaking the browser's protocol (BackMsg
rerun requests with widget states; ForwardMsg deltas back), each with its own prompt: it opens Attention,
moves the layer and head sliders, changes its prompt, goes to MLP neurons and Next token and moves their
sliders, for a bounded time. `--long N` of them use a 4,096-token prompt of their own (each ends
differently) with the token limit at 4,096.

Why not 30 headless Chromium contexts: on the project's two shared cores 30 browsers' own rendering would
be the load measured, not the server's. The protocol is the same one the browser speaks (it is what a tab
sends and receives); what is not exercised is the front end's drawing.

Prints p50/p95 rerun latency (request sent to script finished) for slider moves and prompt changes, the
exceptions and errors the pages showed, peak RSS of the server process against the budget, and whether
every session's figures (plotly specs and metrics, hashed per step) equal a sequential replay of the same
steps in one session alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from _bench import ROOT, streamlit_server

SENTENCES = [
    "The Eiffel Tower is in the city of", "My favourite fruit is the", "The capital of Japan is",
    "Once upon a time there was a little", "The cat sat on the", "Water boils at a temperature of",
    "The opposite of hot is", "In the morning I like to drink", "The largest planet in our solar system is",
    "She opened the door and saw a",
]


def prompt_of(i: int) -> str:
    return f"Student {i} writes: {SENTENCES[i % len(SENTENCES)]}"


@dataclass
class Step:
    kind: str                      # "open", "slider", "prompt", "page"
    page: str
    widget: str | None = None
    value: object = None


def plan(i: int, n_steps: int, long_prompt: str | None) -> list[Step]:
    """Session i's steps (seeded by i): the same list is replayed alone afterwards."""
    rng = random.Random(i)
    steps = [Step("open", "Attention")]
    page = "Attention"
    for k in range(n_steps):
        if k % 6 == 5:
            page = {"Attention": "MLP_neurons", "MLP_neurons": "Next_token", "Next_token": "Attention"}[page]
            steps.append(Step("page", page))
        elif k % 6 == 3 and long_prompt is None:
            steps.append(Step("prompt", page, "prompt_widget", f"{prompt_of(i)} and then number {k}"))
        elif page == "Attention":
            w = rng.choice(["att_layer", "att_head"])
            steps.append(Step("slider", page, w, rng.randrange(0, 29 if w == "att_layer" else 9)))
        elif page == "MLP_neurons":
            steps.append(Step("slider", page, "mlp_layer", rng.randrange(0, 29)))
        else:
            steps.append(Step("slider", page, "nt_temp", round(rng.uniform(0.2, 2.0), 1)))
    return steps


@dataclass
class Result:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"slider": [], "prompt": [], "page": [],
                                                                       "open": []})
    digests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    steps_done: int = 0


class Session:
    """One browser tab's worth of protocol."""

    def __init__(self, url: str, query: dict[str, str]):
        self.url, self.query = url, query
        self.widgets: dict[str, str] = {}       # user key -> widget id
        self.pages: dict[str, str] = {}         # url pathname -> page script hash
        self.page_hash = ""
        self.last_status = 0

    async def __aenter__(self):
        import websockets

        self.ws = await websockets.connect(self.url.replace("http", "ws") + "/_stcore/stream",
                                           subprotocols=["streamlit"], max_size=None, open_timeout=60,
                                           ping_interval=None)
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    async def rerun(self, page_name: str = "", widgets: list | None = None, timeout: float = 600):
        """Send one rerun request; wait for the script to finish. Returns (seconds, digest, problems)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = urlencode(self.query)
        cs.page_script_hash = self.page_hash
        cs.page_name = page_name
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        t = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        _, digest, problems = await self.rerun_wait(timeout)
        return time.perf_counter() - t, digest, problems

    async def rerun_wait(self, timeout: float = 600):
        """Read one script run's messages, up to its `script_finished` (its status kept in `last_status`: 2 means
        the run stopped for another, as st.switch_page does). Returns (seconds, digest, problems)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        t = time.perf_counter()
        charts, problems = {}, []
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in fm.navigation.app_pages}
                self.page_hash = fm.navigation.page_script_hash or self.page_hash
            elif kind == "page_info_changed":
                self.query = dict(pair.split("=", 1) if "=" in pair else (pair, "")
                                  for pair in fm.page_info_changed.query_string.split("&") if pair)
                from urllib.parse import unquote_plus

                self.query = {unquote_plus(k): unquote_plus(v) for k, v in self.query.items()}
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                etype = el.WhichOneof("type")
                inner = getattr(el, etype)
                wid = getattr(inner, "id", "")
                if wid and "-" in wid:
                    self.widgets[wid.rsplit("-", 1)[-1]] = wid
                if etype == "plotly_chart":
                    charts[inner.id] = inner.spec
                elif etype == "metric":
                    charts[f"metric:{inner.label}"] = inner.body
                elif etype == "exception":
                    problems.append(f"exception: {inner.type}: {inner.message[:200]}")
                elif etype == "alert" and inner.format == 1:          # st.error
                    problems.append(f"error: {inner.body[:200]}")
            elif kind == "script_finished":
                self.last_status = fm.script_finished
                break
        seconds = time.perf_counter() - t
        h = hashlib.sha256()
        for k in sorted(charts):
            h.update(k.rsplit("-", 1)[-1].encode())
            h.update(charts[k].encode())
        return seconds, h.hexdigest()[:16], problems

    def state(self, key: str, value) -> object:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        w = WidgetState(id=self.widgets[key])
        if isinstance(value, str):
            w.string_value = value
        else:
            w.double_array_value.data.append(float(value))
        return w


async def run_session(url: str, steps: list[Step], query: dict[str, str], deadline: float,
                      think: float = 0.0, seed: int = 0) -> Result:
    """Run the steps in order; between steps, a pause of `think` seconds on average (a student reading)."""
    res = Result()
    rng = random.Random(seed)
    try:
        async with Session(url, dict(query)) as s:
            for step in steps:
                if time.perf_counter() > deadline:
                    break
                if step.kind == "open":
                    sec, dig, probs = await s.rerun(page_name=step.page)
                elif step.kind == "page":
                    s.page_hash = s.pages.get(step.page, s.page_hash)
                    s.widgets = {}
                    sec, dig, probs = await s.rerun(page_name=step.page)
                else:
                    sec, dig, probs = await s.rerun(widgets=[s.state(step.widget, step.value)])
                res.latencies[step.kind].append(sec)
                res.digests.append(dig)
                res.problems += probs
                res.steps_done += 1
                if think:
                    await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
    except Exception as e:  # noqa: BLE001 - counted, the run goes on
        res.problems.append(f"client: {type(e).__name__}: {e}")
    return res


def watch_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    import psutil

    p = psutil.Process(pid)
    while not stop.wait(0.2):
        try:
            out.append(sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]))
        except psutil.Error:
            break


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=120, help="bounded time of the concurrent phase")
    ap.add_argument("--steps", type=int, default=12, help="steps per session (stops early at --seconds)")
    ap.add_argument("--memory-gb", type=float, default=4.0, help="EXPLAINER_MEMORY_GB for the server")
    ap.add_argument("--long", type=int, default=0, help="sessions with a 4,096-token prompt")
    ap.add_argument("--think", type=float, default=0.0,
                    help="mean pause between one session's steps, in seconds (0: every session as fast as it can)")
    ap.add_argument("--no-replay", action="store_true", help="skip the sequential replay check")
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()

    log = open(ROOT / "artifacts" / "load-server.log", "w") if (ROOT / "artifacts").is_dir() else subprocess.DEVNULL
    with streamlit_server(args.port, {"EXPLAINER_MEMORY_GB": f"{args.memory_gb:g}"}, log) as (url, server):
        rss: list[int] = []
        stop = threading.Event()
        threading.Thread(target=watch_rss, args=(server.pid, stop, rss), daemon=True).start()

        long_prompt = " ".join(f"w{i}" for i in range(3000))[:20_000] if args.long else None   # > 4,096 tokens
        queries, plans = [], []
        for i in range(args.sessions):
            is_long = i < args.long
            mine = f"{long_prompt[:19_900]} written by student {i}" if is_long else None   # each its own (its end kept)
            q = {"prompt": mine if is_long else prompt_of(i)}
            if is_long:
                q["max_tokens"] = "4096"
            queries.append(q)
            plans.append(plan(i, args.steps, mine))

        # warm-up: the model loads once (not a student's latency)
        t = time.perf_counter()
        asyncio.run(run_session(url, [Step("open", "Attention")], {"prompt": "Warm up"}, time.perf_counter() + 600))
        print(f"server up, model loaded and first page drawn in {time.perf_counter() - t:.1f} s")

        async def everyone():
            deadline = time.perf_counter() + args.seconds
            return await asyncio.gather(*(run_session(url, p, q, deadline, args.think, i)
                                          for i, (p, q) in enumerate(zip(plans, queries))))

        t = time.perf_counter()
        results = asyncio.run(everyone())
        wall = time.perf_counter() - t
        peak_concurrent = max(rss, default=0)

        mismatched = []
        if not args.no_replay:
            for i, (p, q, r) in enumerate(zip(plans, queries, results)):
                alone = asyncio.run(run_session(url, p[: r.steps_done], q, time.perf_counter() + 3600))
                if alone.digests != r.digests:
                    first = next((k for k, (a, b) in enumerate(zip(alone.digests, r.digests)) if a != b), None)
                    mismatched.append((i, first, p[first] if first is not None else None))
        stop.set()

    lat = {k: [x for r in results for x in r.latencies[k]] for k in ("slider", "prompt", "page", "open")}
    problems = [p for r in results for p in r.problems]
    print(f"{args.sessions} sessions ({args.long} with a 4,096-token prompt) for {wall:.0f} s, "
          f"EXPLAINER_MEMORY_GB={args.memory_gb:g}, mean pause {args.think:g} s; "
          f"steps done: {sum(r.steps_done for r in results)} ({sum(r.steps_done for r in results) / wall:.2f}/s)")
    for k, xs in lat.items():
        if xs:
            print(f"  {k:7s} n={len(xs):4d}  p50 {statistics.median(xs):6.2f} s  p95 {pct(xs, 0.95):6.2f} s  "
                  f"max {max(xs):6.2f} s")
    print(f"  exceptions and errors shown: {len(problems)}")
    for p in sorted(set(problems))[:10]:
        print(f"    {p}")
    gb = 1 << 30
    print(f"  peak server RSS: {peak_concurrent / gb:.2f} GB during the concurrent phase, "
          f"{max(rss, default=0) / gb:.2f} GB overall (budget {args.memory_gb:g} GB, plus the interpreter and "
          "libraries)")
    if not args.no_replay:
        print(f"  sessions whose figures differ from a sequential replay: {len(mismatched)} of {len(results)}")
        for m in mismatched[:5]:
            print(f"    session {m[0]} first differs at step {m[1]}: {m[2]}")


if __name__ == "__main__":
    main()
