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


def visit(b, base: str, path: str, shot: Path | None = None, width: int = 1600, height: int = 1000,
          also: tuple[tuple[Path, int, int], ...] = ()):
    """Open one page, wait for it, screenshot it (and again at each (shot, width, height) of `also`, the
    same page resized); return (exception texts, error texts)."""
    page = b.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(f"{base}/{path}", wait_until="domcontentloaded")
        wait_idle(page)
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
