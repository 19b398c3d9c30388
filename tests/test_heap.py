"""The long-lived heap out of the collector's sight (explainer/heap.py): what lives when it settles is frozen,
what is made later is still collected, a frozen cycle dropped is freed by release(), and a model evicted from
the shared cache triggers that release."""

from __future__ import annotations

import gc
import sys
import types
import weakref

import pytest

from explainer import budget, heap


class _Node:
    """A cycle: collected only by the cyclic collector, never by reference counting alone."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def thawed():
    yield
    heap.release()         # leave the process as the other tests expect it: nothing dead kept frozen


def test_settle_freezes_what_lives_and_later_garbage_is_still_collected():
    heap.settle(force=True)
    frozen = gc.get_freeze_count()
    assert frozen > 1000                 # this process's modules, functions and classes
    later = _Node()
    dead = weakref.ref(later)
    del later
    gc.collect()                         # what Streamlit runs after every script run
    assert dead() is None                # made after the freeze: collected as before
    assert gc.get_freeze_count() == frozen


def test_a_frozen_cycle_dropped_waits_for_release():
    kept = _Node()
    dead = weakref.ref(kept)
    heap.settle(force=True)
    del kept
    gc.collect()
    assert dead() is not None            # frozen: the collector after a rerun does not look at it
    heap.release()
    assert dead() is None                # release collects the frozen generation once


def test_settle_freezes_again_only_after_an_import():
    heap.settle(force=True)
    assert heap.settle() is False        # nothing imported since: one comparison, no collection
    name = "_explainer_test_heap_module"
    sys.modules[name] = types.ModuleType(name)
    try:
        assert heap.settle() is True     # a page's first run imported something: freeze it too
        assert heap.settle() is False
    finally:
        del sys.modules[name]


def test_a_model_evicted_from_the_shared_cache_releases_the_frozen_heap(monkeypatch):
    assert budget.MODELS._on_evict is heap.release     # the app's model cache is wired to it
    released = []
    monkeypatch.setattr(heap, "release", lambda: released.append(True))
    lru = budget.ByteLRU(lambda: 100, max_entries=1, size=lambda v: 10, on_evict=heap.release)
    lru.put("a", "model a")
    assert released == []
    lru.put("b", "model b")              # one entry at most: "a" goes
    assert released == [True] and lru.keys() == ["b"]
    lru.shrink()                         # nothing over the cap: nothing evicted, no release
    assert released == [True]
    lru.clear()
    assert released == [True, True]


class _Holder:
    """Something a session might keep: an object whose attribute is a view of a big block."""


def test_the_heap_report_names_each_big_block_and_what_holds_its_views():
    import numpy as np

    block = np.zeros(3 << 20, dtype=np.uint8)          # 3 MB, owned here
    keeper = _Holder()
    keeper.view = block[1024:].view(np.float32)[:10]     # a view of a view: numpy points it at the block
    held = {"kept_by_the_test": keeper}
    frozen = gc.get_freeze_count()
    text = heap.report(min_bytes=2 << 20, chains=2, depth=3)
    lines = text.splitlines()
    assert lines[0].startswith("rss ") and "numpy blocks reachable" in lines[0]
    blocks = "\n".join(lines[1:]).split("\nblock ")          # one section per block, biggest first
    mine = [b for b in blocks if "view (10,) float32" in b]
    assert len(mine) == 1, text
    assert mine[0].removeprefix("block ").startswith("3 MB (ndarray)"), mine[0]
    assert "_Holder" in mine[0] and "'kept_by_the_test'" in mine[0], mine[0]
    assert gc.get_freeze_count() >= frozen               # the report leaves the heap frozen as it found it
    assert held["kept_by_the_test"] is keeper
