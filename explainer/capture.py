"""Hooks -> Trace. One forward pass, every internal captured, hooks always removed.

The Trace's fields are named hook sites (`sites.site`): hook_embed, hook_pos_embed,
blocks.0.hook_resid_pre, blocks.{l}.hook_resid_post, blocks.{l}.attn.hook_pattern and
blocks.{l}.mlp.hook_post. The sites are resolved once per model, before the forward pass; each hook
only reads its tensor and copies it.

Concurrency: the model is shared between Streamlit sessions. Each capture registers its own hooks,
and every hook ignores calls made from other threads, so two sessions tracing different prompts at
the same time each record only their own forward pass. Hooks are removed in `finally`, also when the
forward pass raises.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import budget as _budget
from .errors import RangeError
from .models import LoadedModel
from .sites import Hook, hooks, site
from .tokens import encode
from .trace import Trace, readonly


class HostBuffers:
    """Recycles the memory of traces nobody holds any more, the way torch's allocator recycles a
    forward pass's activations.

    A long prompt's capture owns hundreds of MB (at 512 tokens the bundled model's attention alone is
    30 × 9 × 512² floats = 283 MB). Memory fresh from the OS costs a page fault per 4 KB page on first
    write, about 0.25 s for that much: a quarter of the forward pass it is captured from. So large
    arrays are views of pooled byte blocks, and a block whose views have all been dropped (its trace
    evicted from the results cache, say) is handed out again instead of new memory.

    Whether a block is free is read from its reference count: every view of a numpy array keeps a
    reference to the array that owns the data (numpy points a view of a view at the owner), so a block
    that only the pool refers to has no live view. That reading is checked once, when the pool is made
    (`refcounts_work`): on a Python whose reference counts do not move that way (PyPy, builds with
    deferred or immortal counting) the pool is off and every array is plain `np.empty`, which is
    always safe, only slower to fault in.

    Bounds (both tied to the memory budget by default, `explainer.budget`): idle blocks beyond
    `max_idle_bytes` are let go whenever an array is taken, and the pool never holds more than
    `max_pool_bytes` in all; past that, arrays are plain `np.empty`, freed with their trace.
    """

    MIN_BYTES = 1 << 20  # smaller arrays are cheap to fault in: plain np.empty

    def __init__(self, max_idle_bytes: int | Callable[[], int] | None = None,
                 max_pool_bytes: int | Callable[[], int] | None = None) -> None:
        self._max_idle = max_idle_bytes if max_idle_bytes is not None else _budget.pool_idle_cap
        self._max_pool = max_pool_bytes if max_pool_bytes is not None else _budget.room
        self._blocks: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.pooling = self.refcounts_work()

    @staticmethod
    def _value(v: int | Callable[[], int]) -> int:
        return int(v() if callable(v) else v)

    @property
    def max_idle_bytes(self) -> int:
        return self._value(self._max_idle)

    @property
    def max_pool_bytes(self) -> int:
        return self._value(self._max_pool)

    def _free(self, blocks: list[np.ndarray], i: int) -> bool:
        return sys.getrefcount(blocks[i]) == 2  # the list + getrefcount's argument

    def refcounts_work(self) -> bool:
        """Whether `_free` tells a block with a live view from one without, on this Python."""
        try:
            blocks = [np.empty(64, dtype=np.uint8)]
            free_alone = self._free(blocks, 0)
            view = blocks[0][:16].view(np.float32)
            sub = view[1:]                       # a view of a view: numpy points it at the owner
            del view
            held = not self._free(blocks, 0)
            del sub
            return free_alone and held and self._free(blocks, 0)
        except Exception:  # noqa: BLE001 - no sys.getrefcount, say: no pool
            return False

    def _idle(self) -> list[int]:
        return [i for i in range(len(self._blocks)) if self._free(self._blocks, i)]

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised, writeable float32 array of `shape`."""
        nbytes = int(np.prod(shape)) * 4
        if nbytes < self.MIN_BYTES or not self.pooling:
            return np.empty(shape, dtype=np.float32)
        with self._lock:
            idle = self._idle()
            fits = [i for i in idle if nbytes <= self._blocks[i].nbytes <= 2 * nbytes]
            chosen = min(fits, key=lambda i: self._blocks[i].nbytes) if fits else None
            block = self._blocks[chosen] if chosen is not None else None
            rest = [i for i in idle if i != chosen]
            spare = sum(self._blocks[i].nbytes for i in rest)
            held = sum(b.nbytes for b in self._blocks) + (0 if block is not None else nbytes)
            max_idle, max_pool = self.max_idle_bytes, self.max_pool_bytes
            drop = set()
            for i in sorted(rest, key=lambda i: -self._blocks[i].nbytes):  # biggest go first
                if spare <= max_idle and held <= max_pool:
                    break
                spare -= self._blocks[i].nbytes
                held -= self._blocks[i].nbytes
                drop.add(i)
            self._blocks = [b for i, b in enumerate(self._blocks) if i not in drop]
            if block is None:
                if held > max_pool:              # the pool is full of live traces: not pooled
                    return np.empty(shape, dtype=np.float32)
                block = np.empty(nbytes, dtype=np.uint8)
                self._blocks.append(block)
            return block[:nbytes].view(np.float32).reshape(shape)  # holds a reference to block

    def trim(self) -> None:
        """Let go of idle blocks beyond `max_idle_bytes` now (after the budget shrank, say)."""
        with self._lock:
            idle = self._idle()
            spare, drop = sum(self._blocks[i].nbytes for i in idle), set()
            for i in sorted(idle, key=lambda i: -self._blocks[i].nbytes):
                if spare <= self.max_idle_bytes:
                    break
                spare -= self._blocks[i].nbytes
                drop.add(i)
            self._blocks = [b for i, b in enumerate(self._blocks) if i not in drop]

    def held_bytes(self) -> tuple[int, int]:
        """(bytes in blocks some trace still uses, bytes in idle blocks)."""
        with self._lock:
            idle = set(self._idle())
            return (sum(b.nbytes for i, b in enumerate(self._blocks) if i not in idle),
                    sum(self._blocks[i].nbytes for i in idle))


host_buffers = HostBuffers()
_budget.before_work(host_buffers.trim)


def trace(lm: LoadedModel, text: str, max_tokens: int | None = None) -> Trace:
    """Run `text` through the model once and capture its internals.

    A prompt longer than `max_tokens` (or the context window) keeps its last tokens, and the Trace
    carries a notice saying so. An empty prompt raises `PromptError`.

    Each hook copies its tensor straight into one preallocated float32 buffer per field, so the
    model's own activations are freed as usual and nothing is stacked (and copied again) at the end.
    """
    enc = encode(lm, text, max_tokens)
    arch, model = lm.arch, lm.model
    blocks = arch.block_list(model)
    L, T, D, H, M = len(blocks), len(enc.ids), lm.d_model, lm.n_heads, lm.d_mlp
    host = {name: host_buffers.take(shape) for name, shape in {
        "embed": (T, D),
        "pos": (T, D),
        "resid": (L + 1, T, D),
        "attn": (L, H, T, T),
        "mlp": (L, T, M),
    }.items()}
    on_cpu = lm.device.type == "cpu"  # hooks write straight into the host arrays; else into device buffers
    buf = {k: torch.from_numpy(v) if on_cpu else torch.empty(v.shape, dtype=torch.float32, device=lm.device)
           for k, v in host.items()}
    seen: set[tuple[str, int]] = set()

    def put(name: str, i: int | None, x: torch.Tensor) -> None:
        (buf[name] if i is None else buf[name][i]).copy_(x.detach()[0])
        seen.add((name, -1 if i is None else i))

    def into(name: str, i: int | None):
        return lambda x: put(name, i, x)

    pairs: list[Hook] = [
        site(lm, "hook_embed").reader(into("embed", None)),                            # [1, T, D]
        site(lm, "blocks.0.hook_resid_pre").reader(into("resid", 0)),                  # [1, T, D]
    ]
    if "hook_pos_embed" in arch.sites:  # learned positions (GPT-2)
        pairs.append(site(lm, "hook_pos_embed").reader(into("pos", None)))             # [1, T, D]
    for i in range(L):
        pairs += [
            site(lm, f"blocks.{i}.hook_resid_post").reader(into("resid", i + 1)),      # [1, T, D]
            site(lm, f"blocks.{i}.attn.hook_pattern").reader(into("attn", i)),         # [1, H, T, T]
            site(lm, f"blocks.{i}.mlp.hook_post").reader(into("mlp", i)),              # [1, T, M]
        ]

    ids = torch.tensor([enc.ids], device=lm.device)                # [1, T]
    with hooks(pairs), torch.inference_mode():
        out = model(input_ids=ids, use_cache=False)
    expected = {("embed", -1), *((f, i) for f, n in (("resid", L + 1), ("attn", L), ("mlp", L)) for i in range(n))}
    if missing := expected - seen:  # a family whose modules did not fire as the adapter expects
        raise RuntimeError(f"capture incomplete for {lm.name}: nothing recorded for {sorted(missing)[:3]}")

    if not on_cpu:
        for k, v in buf.items():
            torch.from_numpy(host[k]).copy_(v)
    np_ = {k: readonly(v) for k, v in host.items()}
    return Trace(
        model_name=lm.name,
        text=text,
        tokens=enc.tokens,
        token_ids=readonly(np.asarray(enc.ids, dtype=np.int64)),
        embed=np_["embed"],
        pos_embed=np_["pos"] if ("pos", -1) in seen else None,
        resid=np_["resid"],                                         # [L+1, T, D]
        attn=np_["attn"],                                           # [L, H, T, T]
        mlp=np_["mlp"],                                             # [L, T, M]
        logits=readonly(out.logits[0].float().cpu().numpy()),      # [T, V]
        n_tokens_in_text=enc.n_total,
        notice=enc.notice,
    )


# -- queries and keys for the Q·K view --------------------------------------------------------------

@dataclass(frozen=True)
class QK:
    """One layer's queries and keys, exactly as its attention used them (after rotary)."""

    layer: int
    q: np.ndarray      # [H, T, dh]    hook_q
    k: np.ndarray      # [Hkv, T, dh]  hook_k (grouped-query models share each key head)
    scale: float       # multiplies q·k before the mask (1/sqrt(dh) for every supported family)

    @property
    def group(self) -> int:
        """Query heads per key/value head (1 without grouped-query attention)."""
        return self.q.shape[0] // self.k.shape[0]

    def kv_head(self, head: int) -> int:
        return head // self.group

    def scores(self, head: int) -> np.ndarray:
        """Raw, unscaled q·k for one query head.  # [T, T]"""
        return self.q[head] @ self.k[self.kv_head(head)].T


def queries_keys(lm: LoadedModel, tr: Trace, layer: int) -> QK:
    """Recompute one layer's queries and keys from the captured residual stream.

    Cheap (one layer, one norm and two projections) and exact: tests check that
    softmax(mask(scale · q·kᵀ)) reproduces the captured attention pattern for every family.
    """
    if not 0 <= layer < lm.n_layers:
        raise RangeError(f"Layer {layer} does not exist.", f"Choose a layer from 0 to {lm.n_layers - 1}.")
    attn = site(lm, f"blocks.{layer}.attn.hook_pattern").module
    x = torch.as_tensor(np.array(tr.resid[layer]), device=lm.device).to(lm.dtype)[None]  # [1, T, D]
    with torch.inference_mode():
        normed = lm.arch.block_list(lm.model)[layer].get_submodule(lm.arch.attn_norm)(x)  # [1, T, D]
        q, k = lm.arch.qk(lm.model, layer, normed)                  # [1, H, T, dh], [1, Hkv, T, dh]
    scale = getattr(attn, "scaling", None) or lm.d_head ** -0.5     # every supported family: 1/sqrt(dh)
    return QK(layer=layer, q=q[0].float().cpu().numpy(), k=k[0].float().cpu().numpy(), scale=float(scale))


def causal_softmax(scores: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The steps after q·k: scale, causal mask (−inf above the diagonal), softmax over keys.

    Returns (masked scaled scores, pattern).  # [T, T] each
    """
    s = scores * scale
    T = s.shape[-1]
    masked = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    m = masked.max(axis=-1, keepdims=True)
    e = np.exp(masked - m)
    return masked, e / e.sum(axis=-1, keepdims=True)
