"""Every page in a real Chromium: the time from a prompt change to all of its charts drawn, and the bytes
the server sent for it, at 16 and 128 tokens (issue 13 item 6; target ≤ 2 s at 128 tokens, the lab's
training aside).

    python benchmarks/pages.py [--repeats 3] [--pages Attention Logit_lens ...]

For a page with a prompt box: open it once (its first visit loads the model, measured apart as "first
load"), then type a new prompt of 16 tokens and press Ctrl+Enter, as a teacher would, and time until the
script has finished and every plotly chart on the page is drawn; then the same with 128 tokens. Each prompt
is new (a different stretch of one text), so no result is cached. Pages without a prompt box (Anatomy,
Glossary, the Tiny LM lab) report their load time only. "Bytes" counts the websocket frames the browser
received during the change: the figures, and the rest of the page's elements.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _bench import ROOT  # noqa: F401  (puts the repository on sys.path)

from tests import browser as br

DRAWN_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].every(gd => gd._fullLayout && gd.calcdata)
  && !document.querySelector('[data-testid="stSkeleton"], [data-stale="true"]')"""
TEXT = ("The history of the transformer begins with attention. Each token looks back at the tokens before it, "
        "mixes what it finds, and passes the result up the residual stream. Layer after layer, the model turns "
        "a list of words into a guess about the next one, and every guess is a probability over the whole "
        "vocabulary. ")


class Prompts:
    """Prompts of exactly n tokens for the bundled model's tokenizer, each one new (each starts with its own
    number, so none is one the server has cached)."""

    def __init__(self) -> None:
        import explainer as ex

        self.tok = ex.load_model("bundled").tokenizer
        self.k = 0

    def next(self, n: int) -> str:
        while True:
            self.k += 1
            ids = self.tok(f"Run {self.k}. " + TEXT * (n // 40 + 2))["input_ids"][:n]
            text = self.tok.decode(ids)
            if len(self.tok(text)["input_ids"]) == n:
                return text


def _wait_drawn(page, timeout_s: float = 240) -> None:
    br.wait_idle(page, int(timeout_s * 1000))
    page.wait_for_function(DRAWN_JS, timeout=int(timeout_s * 1000))


def change_prompt(page, text: str, frames: list[int]) -> tuple[float, int]:
    """Type `text` into the prompt box and commit it; (seconds until drawn, bytes received)."""
    box = page.locator(".st-key-prompt_widget textarea")
    box.fill(text)
    frames.clear()
    t = time.perf_counter()
    box.press("Control+Enter")
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='running']", timeout=30_000)
    page.wait_for_selector(br.IDLE, timeout=240_000)
    page.wait_for_function(DRAWN_JS, timeout=240_000)
    took = time.perf_counter() - t
    return took, sum(frames)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pages", nargs="*")
    args = ap.parse_args()
    prompts = Prompts()
    print("time from a prompt change (Ctrl+Enter) to every chart drawn, median of "
          f"{args.repeats}; bytes the browser received for it")
    print(f"{'page':16s} {'first load':>10s} {'16 tokens':>10s} {'bytes':>9s} {'128 tokens':>11s} {'bytes':>9s}")
    with br.running_app() as base, br.browser() as b:
        for name, path in br.pages():
            if args.pages and name not in args.pages:
                continue
            page = b.new_page(viewport={"width": 1280, "height": 720})
            frames: list[int] = []
            page.on("websocket", lambda ws, frames=frames: ws.on("framereceived",
                                                                 lambda payload: frames.append(len(payload))))
            try:
                t = time.perf_counter()
                page.goto(f"{base}/{path}", wait_until="domcontentloaded")
                _wait_drawn(page)
                first = time.perf_counter() - t
                if page.locator(".st-key-prompt_widget textarea").count() == 0:
                    print(f"{name:16s} {first:>9.2f}s {'(no prompt box)':>22s}", flush=True)
                    continue
                row = []
                for n in (16, 128):
                    runs = [change_prompt(page, prompts.next(n), frames) for _ in range(args.repeats)]
                    row += [statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)]
                print(f"{name:16s} {first:>9.2f}s {row[0]:>9.2f}s {row[1] / 1e6:>7.2f}MB {row[2]:>10.2f}s "
                      f"{row[3] / 1e6:>7.2f}MB", flush=True)
            finally:
                page.close()


if __name__ == "__main__":
    main()
