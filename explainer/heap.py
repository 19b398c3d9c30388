"""Keep Python's cyclic garbage collector off the server's long-lived heap.

Streamlit collects every generation after each script run (`runner.postScriptGC`, on by default), so that
memory does not build up between reruns. With torch, transformers, plotly and a model loaded, that heap is
about half a million tracked objects, and one full collection takes 250-300 ms of a core while holding the
GIL: on a class server every slider move, every page and every 2-s poll tick of every session paid it, and
forty phones on the poll page made the server spend most of its time in the collector (BENCHMARKS.md, the
class poll).

`gc.freeze()` moves every object alive now into a permanent generation that collections skip. What lives
for the process (modules, functions, classes, the loaded models) is frozen; what a session makes later
(its widgets and deltas, a rerun's garbage) is still collected after every run. Freezing changes nothing
for reference counting: a frozen object dropped is freed at once, as before; only a frozen *cycle* that
becomes garbage waits, until `release()` (called when a model is evicted) collects the frozen generation.
"""

from __future__ import annotations

import gc
import sys
import threading

_LOCK = threading.Lock()
_frozen_at = {"modules": -1}     # len(sys.modules) at the last freeze: a new import means new long-lived objects


def settle(force: bool = False) -> bool:
    """Collect, then freeze what is alive, if modules were imported since the last call (or `force`: after a
    model loads). Cheap when nothing changed (one comparison); returns whether it froze."""
    with _LOCK:
        n = len(sys.modules)
        if not force and n == _frozen_at["modules"]:
            return False
        gc.collect()          # nothing already dead is frozen
        gc.freeze()
        _frozen_at["modules"] = n
        return True


def release() -> None:
    """A long-lived object was dropped (a model evicted): collect the frozen generation once, so cycles in what
    was dropped are freed too, and freeze what remains."""
    with _LOCK:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
