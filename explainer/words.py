"""Typed words -> tokens: the one rule every page uses to turn what a person types into tokens.

A word is used as a person types it ("king") and looked up as the token it becomes in the middle of a
sentence, with its leading space (" king"); every result says which token string and id were used. A
word the tokenizer splits into several tokens ("naïve" -> " na" + "ïve") has no row of its own: by
default (`multi_token="mean"`) the word-vector pages use the **mean of its pieces' rows** and flag it
(`WordToken.is_mean`, `WordToken.note`); `multi_token="error"` raises `MultiTokenWordError` instead;
the logit lens follows its first token (`choose_token`). An empty word raises `EmptyWordError`; a word
the tokenizer cannot represent (it yields the unknown token, a special control token or nothing at
all) raises `UnknownWordError`. All are `ExplainerError`s whose text says what to do.

Free word lists as typed (commas, new lines, `a → b` arrows) are parsed here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ExplainerError
from .tokens import token_strings

MAX_WORD_CHARS = 60
MAX_WORDS = 60
# A neutral word before the typed one: its token ids are removed again, so the word is tokenized
# exactly as it is in the middle of a sentence (with its leading space) for byte-level BPE (GPT-2,
# SmolLM2) and SentencePiece (Llama) tokenizers alike.
_PREFIX = "the"


# -- errors ------------------------------------------------------------------------------------------

class WordError(ExplainerError):
    """A word that cannot be turned into a vector as asked."""


class EmptyWordError(WordError):
    """No word was typed."""


class UnknownWordError(WordError):
    """The tokenizer cannot represent the word (unknown token, special token, or no tokens)."""


class MultiTokenWordError(WordError):
    """The word is several tokens and `multi_token="error"` was asked for."""


# -- words -> tokens ----------------------------------------------------------------------------

@dataclass(frozen=True)
class WordToken:
    """A typed word resolved to the token(s) the model sees mid-sentence."""

    word: str                    # as typed (whitespace stripped)
    ids: tuple[int, ...]         # token ids, in order
    pieces: tuple[str, ...]      # each token as text (leading spaces kept)
    note: str | None = None      # set when the word is several tokens: what was done about it

    @property
    def is_single(self) -> bool:
        return len(self.ids) == 1

    @property
    def is_mean(self) -> bool:
        """True when the vector is the mean of several pieces rather than one real row."""
        return len(self.ids) > 1

    @property
    def token(self) -> str:
        """The token text used ("␣king" style strings are left to the figures)."""
        return "".join(self.pieces)

    @property
    def label(self) -> str:
        """A short label for charts: the word, with a marker when it is a mean of pieces."""
        return f"{self.word}*" if self.is_mean else self.word


def _encode(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def word_ids(lm, word: str) -> list[int]:
    """The token ids of `word` as it appears mid-sentence (after a space)."""
    tok = lm.tokenizer
    pre = _encode(tok, _PREFIX)
    full = _encode(tok, f"{_PREFIX} {word}")
    if full[:len(pre)] == pre and len(full) > len(pre):
        return full[len(pre):]
    return _encode(tok, f" {word}")


def resolve(lm, word: str, multi_token: str = "mean") -> WordToken:
    """`word` -> the token(s) it becomes mid-sentence.

    multi_token: "mean" (default) accepts a word of several tokens (its vector will be the mean of
    its pieces, and `note` says so); "error" raises `MultiTokenWordError` for it.
    """
    if multi_token not in ("mean", "error"):
        raise ValueError(f"multi_token must be 'mean' or 'error', not {multi_token!r}")
    w = "" if word is None else " ".join(str(word).split())
    if not w:
        raise EmptyWordError("A word is empty.", "Type a word, for example king.")
    if len(w) > MAX_WORD_CHARS:
        raise WordError(f"“{w[:20]}…” is {len(w)} characters long.",
                        f"Type a single word (at most {MAX_WORD_CHARS} characters).")
    tok = lm.tokenizer
    ids = word_ids(lm, w)
    special = set(getattr(tok, "all_special_ids", []) or [])
    unk = getattr(tok, "unk_token_id", None)
    if not ids:
        raise UnknownWordError(f"“{w}” gives no tokens at all.", "Type a word made of letters, for example king.")
    if unk is not None and unk in ids and str(getattr(tok, "unk_token", "")) not in w:
        raise UnknownWordError(f"The tokenizer does not know “{w}”: it becomes the unknown token "
                               f"{tok.unk_token!r}, which has no meaning of its own.",
                               "Try another spelling or a more common word.")
    if any(i in special for i in ids):
        raise UnknownWordError(f"“{w}” is a special control token of the tokenizer, not a word.",
                               "Type an ordinary word, for example king.")
    pieces = token_strings(tok, ids)
    note = None
    if len(ids) > 1:
        shown = " + ".join(f"“{p}”" for p in pieces)
        if multi_token == "error":
            raise MultiTokenWordError(
                f"“{w}” is not one token: the tokenizer splits it into {len(ids)} pieces ({shown}), "
                "so it has no single row in the embedding matrix.",
                "Pick a word that is one token, or allow the mean of its pieces.")
        note = (f"“{w}” is {len(ids)} tokens ({shown}); the model has no single vector for it, so its "
                "vector here is the mean of its pieces' vectors (marked *).")
    return WordToken(word=w, ids=tuple(int(i) for i in ids), pieces=pieces, note=note)


def split_words(text: str) -> list[str]:
    """A free word list as typed: commas, semicolons or new lines separate words; a line without
    commas is split on spaces. Duplicates are dropped (first kept)."""
    text = text or ""
    if re.search(r"[,;\n]", text):
        parts = re.split(r"[,;\n]+", text)
    else:
        parts = text.split()
    seen, out = set(), []
    for p in parts:
        p = " ".join(p.split())
        if p and p not in seen:
            seen.add(p)
            out.append(p)
    return out


_ARROW = re.compile(r"\s*(?:→|->|=>)\s*|\s+>\s+")  # a bare ">" only between spaces: "<|im_end|>" stays a word


@dataclass(frozen=True)
class WordList:
    """A typed word list: the words in order, and the pairs written as arrows ("man → woman")."""

    words: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = ()


def parse_items(text: str) -> WordList:
    """Parse a free word list. Lines (or semicolons) separate items; a line with commas is split on
    them, a line without commas or arrows on spaces. `a → b` (also `a -> b`, `a => b`, `a > b`) is a pair
    drawn as an arrow, and `a → b → c` a chain of pairs (a bare `>` counts only between spaces). Duplicate
    words are kept once (first wins)."""
    words: list[str] = []
    pairs: list[tuple[str, str]] = []

    def add(w: str) -> str:
        w = " ".join(w.split())
        if w and w not in words:
            words.append(w)
        return w

    for line in re.split(r"[\n;]+", text or ""):
        if "," in line:
            chunks = line.split(",")
        elif _ARROW.search(line):
            chunks = [line]
        else:
            chunks = line.split()
        for chunk in chunks:
            parts = [add(p) for p in _ARROW.split(chunk)]
            parts = [p for p in parts if p]
            pairs.extend((a, b) for a, b in zip(parts, parts[1:]) if a != b and (a, b) not in pairs)
    return WordList(words=tuple(words), pairs=tuple(pairs))


@dataclass(frozen=True)
class TokenChoice:
    token_id: int
    token: str
    notice: str | None          # set when the word is several tokens and only the first is used


def choose_token(lm, word: str, leading_space: bool = True) -> TokenChoice:
    """The one token to follow for a typed word (the logit lens tracks a single token).

    The same rule as `resolve`: with `leading_space` (the default) the word is read as it appears
    mid-sentence (" London"); without it, as typed at the very start of a text ("London"). A word the
    tokenizer splits is followed by its first token, and `notice` says so."""
    w = " ".join(str(word or "").split())
    if not leading_space:
        if not w:
            raise EmptyWordError("No word to track was given.", "Type a word such as London.")
        ids = _encode(lm.tokenizer, w)
        if not ids:
            raise UnknownWordError(f"“{w}” gives no tokens at all.", "Type a different word.")
        wt = WordToken(word=w, ids=tuple(int(i) for i in ids), pieces=token_strings(lm.tokenizer, ids))
    else:
        wt = resolve(lm, w)
    notice = None
    if not wt.is_single:
        shown = " + ".join(f"“{p}”" for p in wt.pieces)
        notice = (f"“{w}” is {len(wt.ids)} tokens ({shown}); the lens follows its first token, "
                  f"“{wt.pieces[0]}”.")
    return TokenChoice(token_id=wt.ids[0], token=wt.pieces[0], notice=notice)
