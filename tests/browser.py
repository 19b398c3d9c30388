"""Drive the running app in a real headless Chromium (Debian's package) with Playwright.

Used by tests/test_e2e.py, and by hand for screenshots:
    python -m tests.browser            # every page -> artifacts/screenshots/*.png
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def chromium_path() -> str | None:
    for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if p and Path(p).exists():
            return p
    return None


def pages() -> list[tuple[str, str]]:
    """(name, url path) for the home page and every file in pages/, in the app's order."""
    out = [("home", "")]
    for f in sorted((ROOT / "pages").glob("*.py")):
        stem = re.sub(r"^\d+_", "", f.stem)
        out.append((stem, stem))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(port: int | None = None, env: dict[str, str] | None = None):
    port = port or _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import urllib.request

        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise RuntimeError("streamlit exited:\n" + out) from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def wait_idle(page, timeout_ms: int = 240_000) -> None:
    """Wait until the script has finished running (and stays finished)."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_timeout(1500)
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def _full_shot(page, shot: Path, width: int, height: int) -> None:
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(1000)
    # Streamlit scrolls inside its own container, so a "full page" shot stops at the viewport:
    # grow the viewport to the content's height (capped) and shoot that.
    tall = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], section.main')]"
        ".map(e => e.scrollHeight), 0)")
    if tall > height:
        page.set_viewport_size({"width": width, "height": min(int(tall) + 40, 9000)})
        page.wait_for_timeout(1500)
    page.screenshot(path=str(shot), full_page=True)


# The smallest cell of every heatmap and image on the page, in screen pixels, per chart: the chart is named by
# its Streamlit key (the `st-key-…` class of its container), else by its position on the page. A cell's edges
# are read from plotly's own calculated data (heatmap bricks, image pixels) through the axes' pixel mapping.
CELLS_JS = """() => {
  const out = [];
  document.querySelectorAll('.js-plotly-plot').forEach((gd, n) => {
    const holder = gd.closest('[class*="st-key-"]');
    const key = holder ? [...holder.classList].find(c => c.startsWith('st-key-')).slice(7) : 'chart-' + n;
    const L = gd._fullLayout; if (!L || !gd.calcdata) return;
    let smallest = Infinity;
    gd.calcdata.forEach((cd, i) => {
      const t = gd._fullData[i]; if (!t || t.visible !== true) return;
      const xa = L[(t.xaxis || 'x').replace('x', 'xaxis')], ya = L[(t.yaxis || 'y').replace('y', 'yaxis')];
      if (!xa || !ya) return;
      const seen = (ax, a, b) => { const r = ax.range.map(ax.r2c || (v => v));
        const lo = Math.min(...r), hi = Math.max(...r); return Math.max(a, b) > lo && Math.min(a, b) < hi; };
      const span = (ax, edges) => { let m = Infinity;
        for (let k = 0; k + 1 < edges.length; k++) if (seen(ax, edges[k], edges[k + 1]))
          m = Math.min(m, Math.abs(ax.c2p(edges[k + 1]) - ax.c2p(edges[k])));
        return m; };
      if (t.type === 'heatmap' && cd[0] && cd[0].x && cd[0].y && cd[0].z && cd[0].z.length * cd[0].z[0].length > 1) {
        smallest = Math.min(smallest, span(xa, cd[0].x), span(ya, cd[0].y));
      } else if (t.type === 'image') {
        smallest = Math.min(smallest, Math.abs(xa.c2p(t.x0 + t.dx) - xa.c2p(t.x0)),
                            Math.abs(ya.c2p(t.y0 + t.dy) - ya.c2p(t.y0)));
      }
    });
    if (smallest < Infinity) out.push([key, Math.round(smallest * 10) / 10]);
  });
  return out;
}"""


def cell_sizes(page) -> dict[str, float]:
    """{chart: its smallest heatmap or image cell in pixels} for every such chart on the page."""
    return dict(page.evaluate(CELLS_JS))


# Text the page cut short with an ellipsis (a metric's label or number, or a control's label, in a column too
# narrow for it): any element inside a metric or a widget label whose content is wider than its box.
TRUNCATED_JS = """() => [...document.querySelectorAll(
    '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *, [data-testid="stMetricLabel"] *, '
    + '[data-testid="stWidgetLabel"] *')]
  .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.trim())
  .filter((t, i, all) => t && all.indexOf(t) === i)"""


def truncated_text(page) -> list[str]:
    """The metric labels and numbers and the control labels shown cut short on the page, in full."""
    return page.evaluate(TRUNCATED_JS)


def visit(b, base: str, path: str, shot: Path | None = None, width: int = 1600, height: int = 1000,
          also: tuple[tuple[Path, int, int], ...] = (), inspect=None):
    """Open one page, wait for it, call `inspect(page)` if given (at width × height), screenshot it (and again at
    each (shot, width, height) of `also`, the same page resized); return (exception texts, error texts)."""
    page = b.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(f"{base}/{path}", wait_until="domcontentloaded")
        wait_idle(page)
        if inspect:
            inspect(page)
        if shot:
            _full_shot(page, shot, width, height)
        for extra, w, h in also:
            _full_shot(page, extra, w, h)
        exceptions = page.locator("[data-testid='stException']").all_inner_texts()
        errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
        return exceptions, errors
    finally:
        page.close()


if __name__ == "__main__":
    only = sys.argv[1:]
    with running_app() as base, browser() as b:
        for name, path in pages():
            if only and name not in only:
                continue
            exc, err = visit(b, base, path, SHOTS / f"{name}.png")
            print(f"{name:28s} exceptions={len(exc)} errors={len(err)} {exc[:1]}{err[:1]}")
