"""What the benchmark scripts share: the repository on sys.path, timing, memory, and test texts.

Imported as `from _bench import ...` by scripts run as `python benchmarks/<name>.py`.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def seconds(fn, *args, **kw) -> float:
    """Wall time of one call."""
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def median_seconds(fn, repeats: int, warmup: bool = True) -> float:
    """Median wall time of fn() over `repeats` calls, after one warm-up call."""
    if warmup:
        fn()
    return statistics.median(seconds(fn) for _ in range(repeats))


def median_ms(fn, repeats: int) -> float:
    return median_seconds(fn, repeats) * 1000


def rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def text_of(lm, n_tokens: int) -> str:
    """A natural English text of n_tokens tokens for this model's tokenizer."""
    base = ("The history of the transformer begins with attention. Each token looks back at the "
            "tokens before it, mixes what it finds, and passes the result up the residual stream. ")
    ids = lm.tokenizer(base * (n_tokens // 10 + 2))["input_ids"][:n_tokens]
    text = lm.tokenizer.decode(ids)
    assert len(lm.tokenizer(text)["input_ids"]) == n_tokens, "round-trip changed the token count"
    return text


@contextmanager
def streamlit_server(port: int, env: dict[str, str] | None = None, log=subprocess.DEVNULL):
    """The app served offline on 127.0.0.1:port (extra `env` for the server), ready when this yields
    (url, process); stopped on exit, killed if it does not stop within 20 s."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the server exited") from None
                time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
