"""Text -> token ids and readable token strings, with the context-window limit applied."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import PromptError, SettingError


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]        # [T] after truncation
    tokens: tuple[str, ...]     # [T] display strings
    n_total: int                # tokens in the whole text
    notice: str | None          # set when the text was truncated


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, reversed: each printable stand-in character -> its byte.
    (The fixed table of GPT-2's encoder.py; transformers 5 no longer exports it.)"""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_strings(tokenizer, ids) -> tuple[str, ...]:
    """Each id as the text it stands for (leading spaces kept). A token that holds only part of a
    multi-byte character shows its bytes, e.g. `<E2 80>`, instead of a replacement character."""
    out = []
    for i in ids:
        s = tokenizer.decode([int(i)])
        if "\ufffd" in s:
            raw = tokenizer.convert_ids_to_tokens(int(i)) or ""
            dec = _byte_decoder()
            if raw and all(c in dec for c in raw):
                s = "<" + " ".join(f"{dec[c]:02X}" for c in raw) + ">"
        out.append(s)
    return tuple(out)


def context_limit(lm, max_tokens: int | None = None) -> int:
    return min(max_tokens, lm.n_ctx) if max_tokens else lm.n_ctx


def encode(lm, text: str, max_tokens: int | None = None) -> Encoded:
    """Tokenize `text` as the model sees it; keep the last tokens when it exceeds the limit."""
    if text is None or not str(text).strip():
        raise PromptError("The prompt is empty.",
                          "Type a sentence in the prompt box to see what the model does with it.")
    if max_tokens is not None and max_tokens < 1:
        raise SettingError(f"max_tokens must be at least 1 (got {max_tokens}).", "Raise the token limit.")
    ids = list(lm.tokenizer(str(text), add_special_tokens=True)["input_ids"])
    if not ids:
        raise PromptError("The prompt produced no tokens.", "Type some words in the prompt box.")
    limit = context_limit(lm, max_tokens)
    notice = None
    n_total = len(ids)
    if n_total > limit:
        ids = ids[-limit:]
        notice = (f"The prompt has {n_total:,} tokens, more than the limit of {limit:,}; "
                  f"only its last {limit:,} tokens were used.")
    return Encoded(ids=tuple(ids), tokens=token_strings(lm.tokenizer, ids), n_total=n_total, notice=notice)
