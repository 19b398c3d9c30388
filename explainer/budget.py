"""One memory budget for everything the app holds between reruns (no Streamlit here).

`EXPLAINER_MEMORY_GB` (default: half of this machine's RAM) bounds, in bytes:

- the models held (`MODELS`, at most `MAX_MODELS`, their parameters and buffers counted; together at most
  `MODEL_SHARE` of the budget),
- every cached result shared by the sessions (`RESULTS`: traces, compare traces, lens grids, attributions,
  ablations, the lab's sweeps), a byte-bounded LRU: Streamlit's `cache_resource` bounds entries, not bytes,
- the host-memory pool that traces are views of (`capture.host_buffers`: its idle blocks),
- the transient memory of the computations in flight (`working`: a computation reserves its estimate
  before it runs, and waits while others hold the rest).

What is left after the models (`room`) is split: half for computations in flight, half for the results
cache and the pool's idle blocks. So a single trace (its arrays plus its forward pass) may take at most
`room / 2`, and its arrays half the results cache (so that two long prompts' traces are kept for their pages'
next reruns);
`token_limit` works out, from the model's shape alone, how many tokens that allows (attention, L·H·T² floats,
dominates), and `ui.get_trace` keeps only that many, saying so. The interpreter and the
libraries (about 0.5 GB of RSS with torch, transformers and Streamlit) come on top of the budget.

The split is exact for what is counted; a result evicted while a session is still drawing it stays alive
until that run ends (a few seconds), which is why computations only get half of the room. Nothing a session
keeps after its run (callbacks, fragments, downloads made on the click, the page's globals) holds a result:
those name it and ask the cache again (`ui.fragment`, `ui.again`; tests/test_pins.py), or one idle session
per trace would keep traces alive that the cache had let go.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from . import heap
from .errors import ModelLoadError

ENV = "EXPLAINER_MEMORY_GB"
DEFAULT_SHARE = 0.5          # of the machine's RAM, when EXPLAINER_MEMORY_GB is not set
MODEL_SHARE = 0.5            # of the budget: the most all models held may take together
MAX_MODELS = 3
GB = 1 << 30
T = TypeVar("T")


def machine_ram() -> int:
    """Total physical memory of this machine, in bytes."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: psutil (Streamlit depends on it)
        import psutil

        return int(psutil.virtual_memory().total)


def available_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


@dataclasses.dataclass(frozen=True)
class Budget:
    total: int          # bytes
    source: str         # where the figure came from, for messages

    def describe(self) -> str:
        return f"memory budget {self.total / GB:.1f} GB ({self.source})"


_warned: set[str] = set()


def budget() -> Budget:
    """The budget now (read from the environment every call, so tests and servers can set it)."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            gb = float(raw)
            if not gb > 0 or gb != gb or gb == float("inf"):
                raise ValueError(raw)
            return Budget(int(gb * GB), f"{ENV}={raw}")
        except ValueError:
            if raw not in _warned:
                _warned.add(raw)
                print(f"[explainer] {ENV}={raw!r} is not a positive number of GB: using the default.", flush=True)
    ram = machine_ram()
    return Budget(int(ram * DEFAULT_SHARE), f"half of this machine's {ram / GB:.0f} GB RAM; set {ENV} to change it")


def announce() -> str:
    """The start-up line (printed once per process by the app)."""
    line = f"[explainer] {budget().describe()}"
    if line not in _warned:
        _warned.add(line)
        print(line, flush=True)
    return line


# -- what things weigh ------------------------------------------------------------------------------

def arrays_in(x: Any) -> Iterator[Any]:
    """Every numpy array, torch tensor and bytes object reachable from x (dataclass fields, items of tuples,
    lists and dicts), each object once: what a cached result holds (`nbytes_of`) and what sharing it must freeze
    (bytes are immutable already)."""
    seen: set[int] = set()
    todo = [x]
    while todo:
        v = todo.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, (np.ndarray, bytes)) or (type(v).__module__.startswith("torch")
                                                  and hasattr(v, "untyped_storage")):
            yield v
        elif isinstance(v, dict):
            todo.extend(v.values())
        elif isinstance(v, (tuple, list)):
            todo.extend(v)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            todo.extend(getattr(v, f.name) for f in dataclasses.fields(v))


def nbytes_of(x: Any) -> int:
    """Bytes of every numpy array, torch tensor and bytes object reachable from x (dataclass fields, tuples,
    lists, dicts), each buffer counted once."""
    seen_buf: set[tuple[int, int]] = set()
    total = 0
    for v in arrays_in(x):
        if isinstance(v, bytes):
            key = (id(v), len(v))
        elif isinstance(v, np.ndarray):
            key = (v.__array_interface__["data"][0], v.nbytes)
        else:
            key = (v.data_ptr(), v.nelement() * v.element_size())
        if key not in seen_buf:
            seen_buf.add(key)
            total += key[1]
    return total


def model_bytes(lm) -> int:
    """Parameters and buffers of a loaded model (tied weights counted once)."""
    seen, total = set(), 0
    for t in [*lm.model.parameters(), *lm.model.buffers()]:
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.nelement() * t.element_size()
    return total


def _shape(lm) -> tuple[int, int, int, int, int]:
    return lm.n_layers, lm.n_heads, lm.d_model, lm.d_mlp, lm.vocab_size


def trace_bytes(lm, n_tokens: int) -> int:
    """The arrays of one trace of `n_tokens` tokens (float32), from the model's shape alone."""
    L, H, D, M, V = _shape(lm)
    t = int(n_tokens)
    return 4 * (2 * t * D + (L + 1) * t * D + L * H * t * t + L * t * M + t * V)


def pass_bytes(lm, n_tokens: int) -> int:
    """Transient memory of one forward pass (eager attention: scores and softmax of one layer at a time,
    the MLP's hidden activations, the hidden states) on top of what it captures. A backward pass for
    attribution keeps about one pattern per layer, which `trace_bytes` already covers."""
    L, H, D, M, V = _shape(lm)
    t = int(n_tokens)
    return 4 * (3 * H * t * t + 4 * t * M + 8 * t * D) + (64 << 20)


def models_held() -> int:
    return MODELS.held_bytes()


def room() -> int:
    """The budget left after the models held."""
    return max(0, budget().total - models_held())


def work_cap() -> int:
    return room() // 2


def pool_idle_cap() -> int:
    """Idle host-buffer blocks kept for reuse: an eighth of the room, at most 1 GB."""
    return min(GB, room() // 8)


def results_cap() -> int:
    return max(0, room() // 2 - pool_idle_cap())


def token_limit(lm) -> int:
    """The most tokens one trace of this model may have within the budget (at least 1, at most the model's
    context window): its forward pass within the working share, and the trace itself within half the results
    cache, so two long prompts (a teacher's and a student's, say) stay cached together. Without that bound a trace
    at the limit could never be kept (4 GB budget: 1,042 tokens, 1.54 GB against a 1.31 GB cache), so every rerun
    of its page, each slider move, traced the prompt again: 10-37 s a move (BENCHMARKS.md)."""
    work, keep = work_cap(), results_cap() // 2

    def fits(t: int) -> bool:
        return trace_bytes(lm, t) + pass_bytes(lm, t) <= work and trace_bytes(lm, t) <= keep

    lo, hi = 1, max(1, int(lm.n_ctx))
    if fits(hi):
        return hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def batch_token_limit(lm, n_prompts: int) -> int:
    """The most tokens each of `n_prompts` prompts may have when they run as one batch (plus once alone)."""
    cap, n = work_cap(), max(1, int(n_prompts))
    lo, hi = 1, max(1, int(lm.n_ctx))
    cost = lambda t: (n + 1) * (pass_bytes(lm, t) + 4 * t * lm.vocab_size)  # noqa: E731
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(mid) <= cap else (lo, mid - 1)
    return lo


def limit_notice(lm, limit: int, n_total: int) -> str:
    b = budget()
    return (f"The prompt has {n_total:,} tokens; this server's {b.describe()} holds traces of at most "
            f"{limit:,} tokens of {lm.label} (attention alone grows with tokens²), so only its last "
            f"{limit:,} tokens were used. Shorten the prompt, or ask whoever runs the server to raise {ENV}.")


# -- computations in flight ---------------------------------------------------------------------------

_before_work: list[Callable[[], None]] = []   # e.g. the host-buffer pool's trim, registered by capture


def before_work(fn: Callable[[], None]) -> None:
    """Call `fn` before each computation (the pool lets go of idle blocks beyond its cap there: blocks of a
    trace evicted earlier become idle only once the run that still drew it has ended)."""
    _before_work.append(fn)


class _Work:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.in_flight = 0
        self._mine = threading.local()      # what this thread holds already (a computation inside another)

    def held_here(self) -> int:
        return getattr(self._mine, "n", 0)

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold `nbytes` of the working share while the block runs; wait while others hold too much.
        A computation alone always runs (its size was limited before it got here). One inside another on
        the same thread (a lens that finds its trace evicted and traces it again) never waits: waiting
        there would be waiting for itself, or, with another thread doing the same, for each other."""
        n = int(max(0, nbytes))
        outer = self.held_here()
        if not outer:
            for fn in _before_work:
                fn()
        with self._cond:
            while not outer and self.in_flight and self.in_flight + n > work_cap():
                self._cond.wait(timeout=1.0)
            self.in_flight += n
        self._mine.n = outer + n
        try:
            yield
        finally:
            self._mine.n = outer
            with self._cond:
                self.in_flight -= n
                self._cond.notify_all()


_work = _Work()


def working(nbytes: int):
    return _work.reserve(nbytes)


# -- the byte-bounded caches ------------------------------------------------------------------------

class ByteLRU:
    """A process-wide cache bounded in bytes (and optionally in entries), least recently used out first.

    Results are shared read-only by every session. One key is computed once even when several sessions
    ask at the same time (the others wait for it). A result bigger than the whole cap is handed back but
    not kept. `on_evict` is called (outside the lock) after entries were dropped."""

    def __init__(self, cap: Callable[[], int], max_entries: int | None = None,
                 size: Callable[[Any], int] = nbytes_of, on_evict: Callable[[], None] | None = None) -> None:
        self._cap, self._max_entries, self._size, self._on_evict = cap, max_entries, size, on_evict
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            key_lock = self._making.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
            try:
                value = make()
            finally:
                with self._lock:
                    self._making.pop(key, None)
            self.put(key, value)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        n = self._size(value)
        with self._lock:
            self._items.pop(key, None)
            cap = self._cap()
            if n > cap:
                return
            self._items[key] = (value, n)
            dropped = self._shrink(cap)
        self._evicted(dropped)

    def _shrink(self, cap: int) -> int:
        total, dropped = sum(n for _, n in self._items.values()), 0
        while self._items and (total > cap or (self._max_entries and len(self._items) > self._max_entries)):
            _, (_, n) = self._items.popitem(last=False)
            total -= n
            dropped += 1
        return dropped

    def _evicted(self, dropped: int) -> None:
        if dropped and self._on_evict is not None:
            self._on_evict()

    def make_room(self, nbytes: int) -> None:
        """Evict until `nbytes` more would fit."""
        with self._lock:
            dropped = self._shrink(max(0, self._cap() - int(nbytes)))
        self._evicted(dropped)

    def shrink(self) -> None:
        with self._lock:
            dropped = self._shrink(self._cap())
        self._evicted(dropped)

    def held_bytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._items.values())

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            dropped = len(self._items)
            self._items.clear()
        self._evicted(dropped)


def model_cap() -> int:
    """The most bytes all models held may take together."""
    return int(budget().total * MODEL_SHARE)


RESULTS = ByteLRU(results_cap)
MODELS = ByteLRU(model_cap, max_entries=MAX_MODELS, size=model_bytes, on_evict=heap.release)  # a model is frozen


def cached(key: Hashable, make: Callable[[], T], estimate: int | Callable[[], int] = 0) -> T:
    """A shared result: from `RESULTS`, or made within the working share (`estimate` bytes reserved; a
    callable is asked only when the result has to be made, so a hit costs no estimate)."""
    def build() -> T:
        with working(estimate() if callable(estimate) else estimate):
            return make()
    return RESULTS.get(key, build)


def check_model_fits(name: str, nbytes: int) -> None:
    """Refuse a model that cannot be held within the budget, with the numbers."""
    b, cap = budget(), model_cap()
    if nbytes > cap:
        raise ModelLoadError(
            f"'{name}' needs about {nbytes / GB:.2f} GB for its weights, more than this server lets models take "
            f"({cap / GB:.2f} GB: half of its {b.describe()}).",
            f"Pick a smaller model, or ask whoever runs the server to raise {ENV}.")
