"""The URL contract: which parameters a link carries, how each value is written, and how a bad value is
mended. Pure Python (no Streamlit, no torch), so it is tested on its own; explainer/ui.py binds widgets to it.

The names are a public contract: lessons and shared links depend on them, and the same name means the
same thing on every page (`layer=5` opened on Attention, then MLP neurons, stays layer 5). ARCHITECTURE.md
lists them all.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Shared by every page that has the control.
SHARED = {
    "model": "the model in use: bundled, a Hub id, or a local folder",
    "prompt": "the prompt (long ones compressed, see encode_prompt)",
    "max_tokens": "longest prompt kept, in tokens",
    "layer": "block index, 0-based",
    "head": "attention head index within the block, 0-based",
    "neuron": "MLP neuron index within the block, 0-based",
    "token": "selected token position in the prompt, 0-based",
    "temperature": "softmax temperature",
    "top_k": "top-k filter (0 = off)",
    "top_p": "top-p filter (1 = off)",
    "min_p": "min-p filter (0 = off)",
    "repetition_penalty": "repetition penalty (1 = off)",
    "seed": "random seed for sampling",
    "steps": "token ids taken so far on Next token, comma-separated, so a link replays the same text",
    "tab": "the open tab of a page with tabs (a short name per tab)",
    "compare": "compare mode: a second prompt beside the first (long ones compressed, as prompt)",
    # The lesson player (explainer/player.py): a running lesson crosses pages with the link
    "lesson": "the running lesson: its file's stem in assets/lessons/",
    "step": "the lesson's step shown, 1-based",
    "present": "presenter view for a projector (1 = on)",
}

# Used by one page each; prefixed by the page so that no two pages mean different things by one name.
PAGE = {
    # Model map
    "open_block": "one block drawn open", "box": "box whose values are shown",
    # Word vectors
    "map_preset": "word-map preset", "map_words": "word-map words", "map_dims": "2-D or 3-D",
    "map_align": "first axis = average arrow", "an_preset": "analogy preset", "an_a": "analogy a",
    "an_b": "analogy minus b", "an_c": "analogy plus c", "an_k": "answers shown",
    "an_variants": "hide spellings of the inputs", "an_vs": "analogy's second space: glove or a model",
    "nb_word": "neighbours of", "dir_preset": "axis preset",
    "dir_axis": "axis pairs", "dir_words": "words on the axis", "sim_words": "similarity words",
    "ctx_preset": "context preset", "ctx_word": "word to follow", "ctx_sentences": "sentences",
    "ctx_center": "centre each layer",
    # Attention
    "att_window": "positions zoomed into on a long prompt: first,last",
    # MLP neurons
    "mlp_n": "neurons shown", "skip_first": "leave out the first token",
    # Logit lens
    "window": "positions shown: first,last", "track": "token tracked", "word": "typed word",
    "space": "typed word with a leading space",
    # Next token
    "show": "tokens shown", "view": "timeline step looked at",
    # Generate
    "template": "prompt template", "gen_text": "generation prompt", "max_new": "max new tokens",
    "stop": "stop string", "batch": "batch prompts", "pad_side": "padding side",
    # Interventions
    "ablate_heads": "heads switched off, comma-separated L.H", "ablate_neurons": "neurons switched off",
    # Tiny LM lab
    "lab_block": "context length", "lab_embd": "embedding size", "lab_hidden": "hidden units",
    "lab_seed": "initial-weights seed", "lab_lr": "learning rate", "lab_steps": "training steps",
    "lab_every": "redraw every N steps", "lab_batch": "minibatch size", "lab_n": "names sampled",
    "lab_temp": "sampling temperature", "lab_sample_seed": "sampling seed", "lab_prefix": "start of a name",
    "lab_of_names": "overfitting: training names", "lab_of_hidden": "overfitting: hidden units",
    # Join (a class poll's student page, explainer/poll.py)
    "room": "class poll room code", "me": "class poll: this browser's anonymous id (a reload keeps its guess)",
}

NAMES = {**SHARED, **PAGE}
TAB_NAMES = {"map", "analogies", "directions", "similarity", "context"}   # `tab` values of every page
MAX_VALUE_CHARS = 20_000          # longer values are cut (with a notice): a URL is not a file
PLAIN_PROMPT_CHARS = 500          # longer prompts are compressed in the link
_ZIP = "zlib:"                    # marks a compressed prompt


def encode_prompt(text: str) -> str:
    """A prompt as it goes in a link: as it is when short, else zlib + URL-safe base64 behind `zlib:`.
    A short prompt that itself starts with the marker is compressed too, so decoding is unambiguous."""
    if len(text) <= PLAIN_PROMPT_CHARS and not text.startswith(_ZIP):
        return text
    packed = base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    return _ZIP + packed.rstrip("=")


def decode_prompt(value: str) -> tuple[str, str | None]:
    """(prompt, notice) from a link's `prompt` value; a broken compressed value gives a notice."""
    if not value.startswith(_ZIP):
        return value, None
    body = value[len(_ZIP):]
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), bufsize=1 << 16)
        return raw.decode("utf-8"), None
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError):
        return "", "The prompt in this link is damaged (it was cut short or mistyped), so the default prompt is shown."


@dataclass(frozen=True)
class Mended:
    """A value read from a link: what to use, and a notice when the link's value had to be changed."""

    value: Any
    notice: str | None = None


def prompt(name: str, raw: str, default: str) -> Mended:
    """A text written by encode_prompt: decoded, bounded like any text; `default` when it is damaged."""
    value, note = decode_prompt(raw)
    return Mended(default, note) if note else text(name, value)


def _say(name: str, raw: str) -> str:
    shown = raw if len(raw) <= 40 else raw[:37] + "…"
    return f"`{name}={shown!r}`" if any(c in shown for c in "`\n") else f"`{name}={shown}`"


def number(name: str, raw: str, lo: float, hi: float, default: float, integer: bool) -> Mended:
    """A number clamped to [lo, hi]; a value that is not a number resets to `default`."""
    try:
        x = float(raw)
        if not math.isfinite(x):
            raise ValueError
    except ValueError:
        return Mended(default, f"{_say(name, raw)} is not a number: using {_fmt(default, integer)}.")
    if integer and x != int(x):
        return Mended(default, f"{_say(name, raw)} is not a whole number: using {_fmt(default, integer)}.")
    v = int(x) if integer else x
    if v < lo or v > hi:
        c = lo if v < lo else hi
        c = int(c) if integer else c
        return Mended(c, f"{_say(name, raw)} is out of range ({_fmt(lo, integer)} to {_fmt(hi, integer)}): "
                         f"using {_fmt(c, integer)}.")
    return Mended(v)


def int_range(name: str, raw: str, lo: int, hi: int, default: tuple[int, int]) -> Mended:
    """`first,last` whole numbers within [lo, hi], first <= last."""
    parts = raw.split(",")
    if len(parts) != 2:
        return Mended(default, f"{_say(name, raw)} should be two numbers, first,last: using "
                               f"{default[0]},{default[1]}.")
    a, b = (number(name, p.strip(), lo, hi, d, True) for p, d in zip(parts, default))
    first, last = sorted((a.value, b.value))
    bad = a.notice or b.notice
    return Mended((first, last), f"{_say(name, raw)} is not a range within {lo} to {hi}: using {first},{last}."
                  if bad else None)


def _fmt(x: float, integer: bool) -> str:
    return str(int(x)) if integer else f"{x:g}"


def choice(name: str, raw: str, options: Sequence[Any], default: Any, show: Callable[[Any], str] = str) -> Mended:
    """One of `options`, matched by how each is written in a link."""
    for o in options:
        if show(o) == raw:
            return Mended(o)
    return Mended(default, f"{_say(name, raw)} is not one of the choices here: using {show(default)}.")


def flag(name: str, raw: str, default: bool) -> Mended:
    v = raw.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return Mended(True)
    if v in ("0", "false", "no", "off"):
        return Mended(False)
    return Mended(default, f"{_say(name, raw)} should be 1 or 0: using {int(default)}.")


def text(name: str, raw: str) -> Mended:
    """Free text: kept as it is (it is only ever shown escaped), cut to MAX_VALUE_CHARS, NUL removed."""
    clean = raw.replace("\x00", "")
    if len(clean) > MAX_VALUE_CHARS:
        return Mended(clean[:MAX_VALUE_CHARS], f"`{name}` was {len(clean):,} characters long: kept the first "
                                               f"{MAX_VALUE_CHARS:,}.")
    return Mended(clean)


def many(name: str, raw: str, options: Sequence[Any], show: Callable[[Any], str] = str) -> Mended:
    """A comma-separated subset of `options`; unknown items are dropped with a notice."""
    by_text = {show(o): o for o in options}
    items = [s.strip() for s in raw.split(",") if s.strip()]
    kept = [by_text[s] for s in items if s in by_text]
    bad = [s for s in items if s not in by_text]
    note = f"{_say(name, raw)}: left out {', '.join(bad[:5])} (not available here)." if bad else None
    return Mended(list(dict.fromkeys(kept)), note)


def token_ids(name: str, raw: str, vocab_size: int, limit: int) -> Mended:
    """Comma-separated token ids, each in [0, vocab_size), at most `limit` of them. Reading stops at the first
    bad id (the text after it would be a different text), with a notice."""
    ids: list[int] = []
    for i, s in enumerate(p.strip() for p in raw.split(",") if p.strip()):
        if len(ids) >= limit:
            return Mended(ids, f"`{name}` has more steps than fit in the context window: kept {limit}.")
        if not s.isdigit() or int(s) >= vocab_size:
            return Mended(ids, f"`{name}`: step {i + 1} ({s[:20]!r}) is not a token id of this model "
                               f"(0 to {vocab_size - 1}); kept the {len(ids)} step(s) before it.")
        ids.append(int(s))
    return Mended(ids)


def join_ids(ids: Sequence[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


def unknown_notice(names: Sequence[str]) -> str | None:
    """The notice for parameters that are not part of the contract (they are dropped from the link)."""
    if not names:
        return None
    shown = ", ".join(f"`{n[:30]}`" for n in list(names)[:5])
    return f"This link has parameters the app does not know, left out: {shown}."
