"""Named hook sites, as TransformerLens names its HookPoints: `site(lm, "blocks.3.attn.hook_pattern")`.

Each family's record (`arch.Arch.sites`) says where every site lives: which module, its input or its
output, which element of a tuple output, and how the tensor is seen (heads split out, a slice of a
fused q·k·v projection). This module turns a name into a `HookSite` bound to the model's module, which
reads the value from a hook's (args, kwargs, out) and, for hooked sites, replaces it. Capture, heads,
interventions, attribution and the lens ask for sites by name; none of them works out `out[1]` or
args-versus-kwargs for itself.

Hooks are registered through `hooks`: only for the calling thread, always removed.
"""

from __future__ import annotations

import re
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from .arch import GLOBAL_SITES, SiteSpec
from .errors import ExplainerError

Hook = tuple[nn.Module, str, Callable]   # (module, "pre" | "post", fn) for `hooks`


@contextmanager
def hooks(pairs: Iterable[Hook]) -> Iterator[None]:
    """Register (module, kind, fn) hooks for the calling thread only; always remove them.

    kind: "pre" (fn(module, args, kwargs) -> None | (args, kwargs)) or "post" (fn(module, args, out)
    -> None | new_out). Calls from other threads pass straight through.
    """
    owner = threading.get_ident()
    handles = []

    def mine(fn, pre: bool):
        if pre:
            # torch registers a with_kwargs pre-hook in two steps; a forward pass in another thread
            # that runs in between calls it without kwargs. Such calls are never the owner's.
            def hook(mod, args, kwargs=None):
                if threading.get_ident() == owner and kwargs is not None:
                    return fn(mod, args, kwargs)
        else:
            def hook(mod, args, out):
                if threading.get_ident() == owner:
                    return fn(mod, args, out)
        return hook

    try:
        for module, kind, fn in pairs:
            if kind == "pre":
                handles.append(module.register_forward_pre_hook(mine(fn, True), with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(mine(fn, False)))
        yield
    finally:
        for h in handles:
            h.remove()


# -- a module's first input and its output, in whichever way it was called ---------------------------

def _input_key(kwargs: dict) -> str:
    return "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))


def read_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """A module's first input: positional, or `hidden_states` (else the first keyword) when called by keyword."""
    return args[0] if args else kwargs[_input_key(kwargs)]


def replace_input(args: tuple, kwargs: dict, x: torch.Tensor) -> tuple[tuple, dict]:
    """What a pre-hook returns to run the module on `x` instead of its first input."""
    if args:
        return (x, *args[1:]), kwargs
    return args, {**kwargs, _input_key(kwargs): x}


def _output_reader(index: int) -> Callable:
    def read(out):
        return out[index] if isinstance(out, (tuple, list)) else out
    return read


def _output_replacer(index: int) -> Callable:
    def replace(out, x):
        if isinstance(out, (tuple, list)):
            return type(out)((*out[:index], x, *out[index + 1:]))
        return x
    return replace


@dataclass(frozen=True, eq=False)
class HookSite:
    """One named site bound to one model: the module, where its tensor is, how the value is seen."""

    name: str                     # e.g. "blocks.3.attn.hook_pattern"
    module: nn.Module
    io: str                       # "in" (a forward pre-hook) or "out" (a forward hook)
    index: int                    # element of a tuple output
    hooked: bool                  # False: derived from the hooked tensor (read-only)
    writable: bool                # an editor's value reaches the rest of the forward pass
    shape: str                    # the value's axes
    value_of: Callable[[torch.Tensor], torch.Tensor] | None  # raw tensor -> value (None: the raw tensor)

    @property
    def kind(self) -> str:
        return "pre" if self.io == "in" else "post"

    def raw(self, args: tuple, kwargs: dict | None = None, out=None) -> torch.Tensor:
        """The tensor the site is hooked at: the module's first input, or (an element of) its output."""
        return read_input(args, kwargs or {}) if self.io == "in" else _output_reader(self.index)(out)

    def read(self, args: tuple, kwargs: dict | None = None, out=None) -> torch.Tensor:
        """The site's value from a hook's arguments (pre-hook: args, kwargs; forward hook: args, out)."""
        x = self.raw(args, kwargs, out)
        return x if self.value_of is None else self.value_of(x)

    def reader(self, fn: Callable[[torch.Tensor], None]) -> Hook:
        """A hook for `hooks` that calls fn(value) on every forward pass of the module."""
        value_of = self.value_of
        if self.io == "in":
            def pre(mod, args, kwargs):
                x = read_input(args, kwargs)
                fn(x if value_of is None else value_of(x))
            return self.module, "pre", pre
        get = _output_reader(self.index)

        def post(mod, args, out):
            x = get(out)
            fn(x if value_of is None else value_of(x))
        return self.module, "post", post

    def editor(self, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> Hook:
        """A hook for `hooks` that replaces the site's value by fn(value).

        fn gets a copy of the value (the model's own tensor is never written to); it may change it in
        place and return None, or return a new tensor of the same shape (which then carries gradients).
        """
        if not self.hooked:
            raise ExplainerError(f"Hook site '{self.name}' is derived (computed from the hooked tensor), "
                                 "so it can be read but not replaced.",
                                 "Edit the hooked site it is computed from, or a hooked site such as attn.hook_z.")
        if not self.writable:
            raise ExplainerError(f"Hook site '{self.name}' can be read but not replaced: the attention hands "
                                 "its pattern back after it has used it, so a new value would change nothing.",
                                 "Edit attn.hook_z (the heads' outputs) or the queries and keys instead.")
        value_of = self.value_of

        def edited(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            v = x if value_of is None else value_of(x)               # a view into the copy
            new = fn(v)
            if new is None or new is v:
                return x
            if value_of is None:
                return new
            v.copy_(new)                                             # write through the view
            return x

        if self.io == "in":
            def pre(mod, args, kwargs):
                return replace_input(args, kwargs, edited(read_input(args, kwargs)))
            return self.module, "pre", pre
        get, put = _output_reader(self.index), _output_replacer(self.index)

        def post(mod, args, out):
            return put(out, edited(get(out)))
        return self.module, "post", post


# -- names -> sites ---------------------------------------------------------------------------------

_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")
# model -> {name: HookSite}. Sites hold submodules and no strong reference to the model itself, so a model
# nobody holds any more is freed and its entry goes with it.
_resolved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def site_names(lm) -> tuple[str, ...]:
    """Every site name of this model, model-level ones first, then block by block."""
    specs = lm.arch.sites
    top = tuple(n for n in GLOBAL_SITES if n in specs)
    per_block = [n for n in specs if n not in GLOBAL_SITES]
    return top + tuple(f"blocks.{layer}.{n}" for layer in range(lm.n_layers) for n in per_block)


def _unknown(lm, name: str) -> ExplainerError:
    specs = lm.arch.sites
    valid = [n for n in GLOBAL_SITES if n in specs] + [f"blocks.{{l}}.{n}" for n in specs if n not in GLOBAL_SITES]
    return ExplainerError(f"There is no hook site '{name}' in {lm.name} ({lm.arch.family}).",
                          f"Valid sites: {', '.join(valid)}, with l from 0 to {lm.n_layers - 1}.")


def _bind(lm, name: str, spec: SiteSpec, layer: int | None) -> HookSite:
    root = lm.model if layer is None else lm.arch.block_list(lm.model)[layer]
    module = root.get_submodule(spec.module)
    if spec.derive is not None:
        model, derive = weakref.ref(lm.model), spec.derive             # weak: the cache must not keep models alive
        value_of = lambda x: derive(model(), layer, x)                 # noqa: E731
    elif spec.view is not None:
        view, dh = spec.view, lm.d_head
        value_of = lambda x: view(x, dh)                               # noqa: E731
    else:
        value_of = None
    return HookSite(name=name, module=module, io=spec.io, index=spec.index, hooked=spec.hooked,
                    writable=spec.writable, shape=spec.shape, value_of=value_of)


def site(lm, name: str) -> HookSite:
    """The named hook site of a loaded model, e.g. `site(lm, "blocks.3.attn.hook_pattern")`.

    Raises ExplainerError naming the valid sites for a name the family does not have, and the valid
    layers for a block that does not exist. Resolved once per model and name, then reused.
    """
    cache = _resolved.get(lm.model)
    if cache is None:
        cache = _resolved.setdefault(lm.model, {})
    hit = cache.get(name)
    if hit is not None:
        return hit
    specs = lm.arch.sites
    if name in GLOBAL_SITES:
        if name not in specs:
            raise _unknown(lm, name)
        found = _bind(lm, name, specs[name], None)
    else:
        m = _BLOCK.fullmatch(name)
        if m is None or m.group(2) not in specs or m.group(2) in GLOBAL_SITES:
            raise _unknown(lm, name)
        layer = int(m.group(1))
        if layer >= lm.n_layers:
            raise ExplainerError(f"Hook site '{name}': {lm.name} has no block {layer}.",
                                 f"Blocks go from 0 to {lm.n_layers - 1}.")
        found = _bind(lm, name, specs[m.group(2)], layer)
    cache[name] = found
    return found


def capture_sites(lm, ids: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Run token ids [B, T] through the model once and return a detached copy of every named site's value
    (TransformerLens' run_with_cache, for the sites asked for)."""
    resolved = [site(lm, n) for n in names]                             # unknown names fail before running
    got: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable:
        return lambda x: got.__setitem__(name, x.detach().clone())
    with hooks([s.reader(keep(s.name)) for s in resolved]), torch.inference_mode():
        lm.model(input_ids=ids.to(lm.device), use_cache=False)
    return got
