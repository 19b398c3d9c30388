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
import inspect
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


# -- a diagnostic: what holds the big arrays -----------------------------------------------------------

def _describe(o) -> str:
    import types

    if isinstance(o, dict):
        if "__name__" in o and "__builtins__" in o:
            return f"module {o['__name__']}.__dict__"
        keys = [repr(k)[:40] for k in list(o)[:6]]
        return f"dict({len(o)}) keys {', '.join(keys)}"
    if isinstance(o, types.FrameType):
        return f"frame {o.f_code.co_name} {o.f_code.co_filename.rsplit('/', 2)[-1]}:{o.f_lineno}"
    if isinstance(o, (list, tuple, set)):
        return f"{type(o).__name__}({len(o)})"
    if isinstance(o, types.FunctionType):
        return f"function {o.__qualname__}"
    if isinstance(o, types.CellType):
        return "cell"
    return f"{type(o).__module__}.{type(o).__qualname__}"


def report(min_bytes: int = 64 << 20, chains: int = 2, depth: int = 9) -> str:
    """Every numpy array and torch tensor reachable from a tracked container, grouped by the memory they are
    views of (a block), with the total against this process's RSS, and for each block of `min_bytes` or more
    `chains` paths of referrers up from its views. Slow (seconds, the GIL held): for `watch`, a debugging aid
    behind EXPLAINER_HEAP_REPORT, never on in a class."""
    import os

    import numpy as np
    import psutil

    with _LOCK:
        gc.unfreeze()
        gc.collect()
        try:
            objs = gc.get_objects()
            holders: dict[int, list] = {}
            found: dict[int, object] = {}
            for o in objs:
                for r in gc.get_referents(o):
                    if issubclass(type(r), np.ndarray):
                        found[id(r)] = r
                        holders.setdefault(id(r), []).append(o)
            blocks: dict[int, dict] = {}
            for a in found.values():
                root = a
                while isinstance(getattr(root, "base", None), np.ndarray):
                    root = root.base
                size = root.nbytes if isinstance(root, np.ndarray) else a.nbytes
                b = blocks.setdefault(id(root), {"size": size, "views": [], "root": root})
                b["views"].append(a)
            tensors = {}
            torch = sys.modules.get("torch")
            for o in objs if torch is not None else ():
                if issubclass(type(o), torch.Tensor):
                    try:
                        s = o.untyped_storage()
                        tensors[s.data_ptr()] = max(tensors.get(s.data_ptr(), 0), s.nbytes())
                    except Exception:  # noqa: BLE001 - meta tensors and the like
                        pass
            rss = psutil.Process(os.getpid()).memory_info().rss
            held = sum(b['size'] for b in blocks.values())
            lines = [f"rss {rss / GB_:.2f} GB; numpy blocks reachable {held / GB_:.2f} GB in {len(blocks)};"
                     f" torch storages {sum(tensors.values()) / GB_:.2f} GB in {len(tensors)}"]
            mine = {id(objs), id(holders), id(found), id(blocks), *map(id, holders.values()),
                    *(id(b["views"]) for b in blocks.values())}
            frame = inspect.currentframe()
            for b in sorted(blocks.values(), key=lambda b: -b["size"]):
                if b["size"] < min_bytes:
                    break
                lines.append(f"block {b['size'] / (1 << 20):.0f} MB ({type(b['root']).__name__}), "
                             f"{len(b['views'])} views")
                for v in b["views"][:chains]:
                    lines.append(f"    view {v.shape} {v.dtype}")
                    _tree(holders.get(id(v), []), mine | {id(frame)}, lines, depth, "      ")
            return "\n".join(lines)
        finally:
            del objs
            gc.freeze()


GB_ = 1 << 30


def _tree(up: list, mine: set, lines: list, depth: int, indent: str, breadth: int = 5) -> None:
    """Referrers of what holds an array, as an indented tree (`breadth` per level, `depth` levels). `mine`: ids
    of the walk's own lists, never shown."""
    import types

    mine.add(id(up))
    up = [r for r in up if id(r) not in mine and type(r).__name__ != "list_iterator"
          and not (isinstance(r, types.FrameType) and r.f_code.co_filename == __file__)]
    mine.add(id(up))
    for o in up[:breadth]:
        lines.append(indent + "<- " + _describe(o))
        if depth <= 1 or isinstance(o, types.FrameType) or (
                isinstance(o, dict) and "__builtins__" in o and o.get("__name__") != "__main__"):
            continue
        _tree(gc.get_referrers(o), mine, lines, depth - 1, indent + "  ", breadth)
    if len(up) > breadth:
        lines.append(indent + f"<- ... {len(up) - breadth} more")


def watch(path: str, every: float = 15.0) -> None:
    """Append `report()` to `path` every `every` seconds, from a daemon thread (EXPLAINER_HEAP_REPORT)."""
    import time

    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                text = report(min_bytes=1000 << 20, chains=1, depth=7)
            except Exception as e:  # noqa: BLE001 - a diagnostic never takes the server down
                text = f"report failed: {type(e).__name__}: {e}"
            with open(path, "a") as f:
                f.write(f"--- {time.strftime('%H:%M:%S')}\n{text}\n")

    threading.Thread(target=loop, daemon=True, name="heap-report").start()
