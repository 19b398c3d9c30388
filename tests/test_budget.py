"""One memory budget (explainer/budget.py): the app's own caches stay within EXPLAINER_MEMORY_GB, a prompt the
budget cannot hold is limited with a message, the host-buffer pool is capped, and the lab's thread count is
restored however sessions overlap."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from explainer import budget
from explainer.capture import HostBuffers
from tests.conftest import run_concurrently

GB = 1 << 30


@pytest.fixture
def two_gb(monkeypatch):
    """A 2 GB budget and empty shared caches (before and after: other tests share the process)."""
    monkeypatch.setenv(budget.ENV, "2")
    budget.RESULTS.clear()
    budget.MODELS.clear()
    yield budget.budget()
    budget.RESULTS.clear()
    budget.MODELS.clear()


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class _PeakRSS:
    """The process's largest RSS while the block runs, sampled every 20 ms."""

    def __enter__(self):
        self.peak, self._stop = _rss(), threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())


def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(budget.ENV, "1.5")
    assert budget.budget().total == int(1.5 * GB) and "EXPLAINER_MEMORY_GB=1.5" in budget.budget().describe()
    for bad in ("", "abc", "-2", "0", "nan", "inf"):
        monkeypatch.setenv(budget.ENV, bad)
        b = budget.budget()
        assert b.total == int(budget.machine_ram() * budget.DEFAULT_SHARE) and "half of this machine" in b.source


def test_a_cached_file_weighs_its_bytes():
    """A result that is a file (the lesson handout's HTML) is weighed by its length, each object once."""
    import numpy as np

    html = b"<p>" * 1000
    assert budget.nbytes_of(html) == 3000
    assert budget.nbytes_of((html, [html], {"a": np.zeros(10, np.float32)})) == 3000 + 40


def test_the_size_of_a_trace_is_known_before_tracing(bundled):
    import explainer as ex

    for text in ("The cat sat.", "word " * 300):
        tr = ex.trace(bundled, text)
        exact = budget.nbytes_of(tr)
        # the estimate counts the positional buffer a rotary model does not return: at most T·D floats more
        assert exact <= budget.trace_bytes(bundled, tr.n_tokens) <= exact + 4 * tr.n_tokens * bundled.d_model


def test_app_caches_stay_within_a_2gb_budget(two_gb):
    """One 2,048-token prompt, then 12 different 512-token prompts, through ui.get_trace: the process grows by
    less than the budget (the model included), and the long prompt is limited with a message saying why."""
    from explainer import ui
    from explainer.capture import host_buffers

    base = _rss()
    with _PeakRSS() as peak:
        lm = ui.get_model("bundled")
        limit = budget.token_limit(lm)
        assert 256 <= limit < 2048
        long = " ".join(f"w{i}" for i in range(2048))                    # more than 2,048 tokens
        tr = ui.get_trace("bundled", long, 4096)
        assert tr.n_tokens == limit and tr.n_tokens_in_text >= 2048
        assert "memory budget 2.0 GB" in tr.notice and f"at most {limit:,} tokens" in tr.notice
        del tr
        for i in range(12):
            tr = ui.get_trace("bundled", f"Prompt number {i}: " + "the cat sat on the mat " * 120, 512)
            assert tr.n_tokens == min(512, limit)     # half the results cache: 357 tokens at 2 GB
        del tr
    assert budget.RESULTS.held_bytes() <= budget.results_cap()
    # idle pool blocks: at most the pool's cap, plus the trace evicted last (its run had not ended yet)
    assert host_buffers.held_bytes()[1] <= budget.pool_idle_cap() + budget.work_cap()
    counted = budget.MODELS.held_bytes() + budget.RESULTS.held_bytes() + host_buffers.held_bytes()[1]
    assert counted <= two_gb.total
    assert peak.peak - base <= two_gb.total, f"grew {(peak.peak - base) / GB:.2f} GB"
    assert _rss() - base <= two_gb.total


def _within(seconds: float, fn):
    """fn() on a thread; its result, or a failure if it has not returned within `seconds` (a deadlock)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"still waiting after {seconds:.0f} s: a computation waits for the budget it holds itself"
    return out[0]


def test_a_result_of_a_trace_at_the_token_limit_does_not_wait_for_itself(two_gb):
    """What the Attention page's §4 and the logit lens ask for on a prompt at the token limit: the result reserves
    its pass, then asks for its trace, which may have to be traced (again) inside that reservation. Before,
    that inner reservation waited for the outer one to end: the page hung for ever."""
    from explainer import ui

    long = " ".join(f"w{i}" for i in range(2048))
    ho = _within(120, lambda: ui.head_outputs_of("bundled", long, 4096, 3))
    assert ho.n_tokens == budget.token_limit(ui.get_model("bundled"))
    budget.RESULTS.clear()                                  # the trace evicted between the estimate and the result
    _within(120, lambda: ui.lens_of("bundled", long, 4096, 5, (0, 1)))
    assert budget._work.in_flight == 0


def test_a_computation_inside_another_on_the_same_thread_does_not_wait(monkeypatch):
    monkeypatch.setattr(budget, "work_cap", lambda: 100)

    def nested():
        with budget.working(80), budget.working(80):         # 160 > 100, but it is one thread's work
            return budget._work.in_flight

    assert _within(10, nested) == 160 and budget._work.in_flight == 0
    other = threading.Event()

    def holder():
        with budget.working(80):
            other.set()
            time.sleep(0.3)
    t = threading.Thread(target=holder)
    t.start()
    other.wait(5)
    start = time.perf_counter()
    with budget.working(80):                                 # another thread's 80 + 80 > 100: this one waits
        waited = time.perf_counter() - start
    t.join()
    assert waited >= 0.2


def test_a_4096_token_prompt_gives_a_message_not_a_crash(two_gb, offline, bundled):
    """Through the app: a 4,096-token prompt with the token limit at 4,096 in the link."""
    from streamlit.testing.v1 import AppTest

    from explainer import links
    from explainer.tokens import encode
    from tests.conftest import page_ok

    text = " ".join(f"w{i}" for i in range(3000))[: links.MAX_VALUE_CHARS]   # what a link can carry
    assert encode(bundled, text).n_total >= 4096
    at = AppTest.from_file("../streamlit_app.py", default_timeout=300)
    at.query_params["prompt"] = links.encode_prompt(text)
    at.query_params["max_tokens"] = "4096"
    at.run()
    page_ok(at)
    said = " ".join(w.value for w in at.warning)
    assert "memory budget 2.0 GB" in said and "EXPLAINER_MEMORY_GB" in said
    assert at.number_input(key="max_tokens").value < 4096          # the limit itself is clamped, with the why
    assert at.text_area(key="prompt_widget").value == text          # nothing the user typed is lost


def test_results_cache_is_bounded_in_bytes_least_recent_out(monkeypatch):
    cache = budget.ByteLRU(lambda: 10 << 20)
    for i in range(5):
        cache.get(i, lambda: np.zeros(3 << 20, dtype=np.uint8))        # 3 MB each: 3 fit in 10 MB
    assert cache.keys() == [2, 3, 4] and cache.held_bytes() == 9 << 20
    cache.get(2, lambda: pytest.fail("kept: not rebuilt"))             # used: now the most recent
    cache.get(5, lambda: np.zeros(3 << 20, dtype=np.uint8))
    assert cache.keys() == [4, 2, 5]
    huge = cache.get("huge", lambda: np.zeros(11 << 20, dtype=np.uint8))  # bigger than the cap: not kept
    assert huge.nbytes == 11 << 20 and "huge" not in cache


def test_one_key_is_computed_once_when_sessions_ask_together():
    cache, calls = budget.ByteLRU(lambda: GB), []

    def make():
        calls.append(1)
        time.sleep(0.2)
        return np.ones(10)

    results, errors = run_concurrently(lambda _: cache.get("k", make), range(6))
    assert not errors and len(calls) == 1 and all(r is results[0] for r in results)


def test_computations_in_flight_share_the_working_room(monkeypatch):
    monkeypatch.setattr(budget, "work_cap", lambda: 100)
    inside, most = [0], [0]
    lock = threading.Lock()

    def job(_):
        with budget.working(60):                                         # two at once would be 120 > 100
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    _, errors = run_concurrently(job, range(4))
    assert not errors and most[0] == 1


def test_host_buffers_total_is_capped():
    pool = HostBuffers(max_idle_bytes=0, max_pool_bytes=2 << 20)
    a, b = pool.take((1 << 18,)), pool.take((1 << 18,))                # two 1 MB blocks: the whole pool
    c = pool.take((1 << 18,))                                           # over the cap: a plain array
    assert pool.held_bytes() == (2 << 20, 0) and c.base is None
    del a
    d = pool.take((1 << 18,))                                           # a's block, reused
    assert pool.held_bytes() == (2 << 20, 0) and d.base is not None
    assert not np.shares_memory(b, d) and not np.shares_memory(c, d)


def test_host_buffers_without_working_reference_counts_do_not_pool():
    class Odd(HostBuffers):      # a Python whose reference counts say every block is free
        def _free(self, blocks, i):
            return True

    pool = Odd()
    assert HostBuffers().pooling and not pool.pooling
    a = pool.take((1 << 20,))
    b = pool.take((1 << 20,))
    assert a.base is None and b.base is None and not np.shares_memory(a, b)   # never handed out twice


def test_overlapping_lab_sessions_restore_the_thread_count():
    from explainer import makemore as mm

    before = torch.get_num_threads()
    inside = threading.Barrier(4)

    def session(i):
        time.sleep(0.01 * i)
        with mm.cpu_threads(1):
            inside.wait(timeout=10)                                      # all four inside at once
            assert torch.get_num_threads() == 1
            time.sleep(0.01 * (4 - i))                                  # and leave in another order

    _, errors = run_concurrently(session, range(4))
    assert not errors
    assert torch.get_num_threads() == before
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert seen == [before]                                              # a new thread (a rerun) too
