"""Generation, one token at a time: stepping with a KV cache, streaming, stop strings, padded batches.
(The prompt templates are teaching content: explainer.content.)

The model is shared between sessions and never holds state: every stepping session owns a
`StepState` (kept in the session, not here) with its own key/value cache (transformers'
`DynamicCache`, passed as `cache`, or `past_key_values` before transformers 5.24). Taking a token runs
the model on that one new token;
undo and rewinding crop the cache and reuse the distribution each step kept, with no model call.
"""

from __future__ import annotations

import copy
import inspect
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch

from .errors import ExplainerError, PromptError, RangeError
from .models import LoadedModel
from .sampling import Distribution, Settings, choose, probabilities, softmax
from .tokens import context_limit, encode, token_strings
from .trace import readonly

# -- the model call ------------------------------------------------------------------------------

_ARGS: dict[type, frozenset[str]] = {}


def _forward_args(model) -> frozenset[str]:
    cls = type(model)
    if cls not in _ARGS:
        _ARGS[cls] = frozenset(inspect.signature(model.forward).parameters)
    return _ARGS[cls]


def accepts_logits_to_keep(model) -> bool:
    """Whether the model's forward can compute the last positions' logits only (`logits_to_keep`)."""
    return "logits_to_keep" in _forward_args(model)


def _cache_kwarg(model) -> str:
    """transformers 5.24 renamed `past_key_values` to `cache` (the old name goes in 5.40); older 5.x
    releases only know `past_key_values`."""
    return "cache" if "cache" in _forward_args(model) else "past_key_values"


def new_cache(lm: LoadedModel):
    """An empty key/value cache for one sequence (transformers 5 `DynamicCache`)."""
    from transformers import DynamicCache

    return DynamicCache(config=lm.model.config)


def next_logits(lm: LoadedModel, ids: Sequence[int], cache=None) -> np.ndarray:
    """Run `ids` (the tokens the cache has not seen yet) and return the logits after the last one.  # [V]

    With a cache, the model attends to the cached keys and values of earlier tokens and appends
    those of `ids` to it; without one, `ids` must be the whole context.
    """
    kw: dict = {"use_cache": cache is not None}
    if cache is not None:
        kw[_cache_kwarg(lm.model)] = cache
    if accepts_logits_to_keep(lm.model):
        kw["logits_to_keep"] = 1  # only the last position's logits: skips a [T, V] matmul
    with torch.inference_mode():
        inp = torch.tensor([list(ids)], dtype=torch.long, device=lm.device)  # [1, T]
        out = lm.model(input_ids=inp, **kw)
        return out.logits[0, -1].float().cpu().numpy()            # [V]


def _cache_len(cache) -> int:
    return 0 if cache is None else int(cache.get_seq_length())


def _crop(cache, keep: int) -> None:
    """Drop cached tokens beyond the first `keep` (DynamicCache.crop takes a negative count to remove)."""
    extra = _cache_len(cache) - keep
    if extra > 0:
        with torch.inference_mode():
            cache.crop(-extra)


def eos_ids(lm: LoadedModel) -> frozenset[int]:
    """Token ids that end a text for this model (generation config and tokenizer)."""
    out: set[int] = set()
    for src in (getattr(lm.model, "generation_config", None), lm.config, lm.tokenizer):
        e = getattr(src, "eos_token_id", None)
        if isinstance(e, int):
            out.add(e)
        elif isinstance(e, (list, tuple)):
            out.update(int(i) for i in e)
    return frozenset(out)


def _context_full(n_ctx: int) -> PromptError:
    return PromptError(f"The context window is full: this model reads at most {n_ctx:,} tokens.",
                       "Undo a step, or shorten the prompt (or lower 'Max tokens per prompt' in the sidebar) "
                       "to leave room for new tokens.")


# -- stepping ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One decoded token: the one record of step-through (Next token) and streaming (Generate) alike."""

    index: int               # 0 = the first token after the prompt
    token_id: int            # the token taken
    token: str               # its text (leading spaces kept)
    how: str                 # "top", "sample" or "given" (replayed from a link)
    settings: Settings       # the temperature / top-k / top-p in force when it was taken
    seed: int | None         # the seed of a sampled token (None otherwise)
    prob: float              # the token's probability in the distribution it was chosen from
    rank: int                # 1 = the model's favourite (by logit)
    entropy: float           # bits, of the distribution it was chosen from
    n_kept: int              # tokens that survived the filters
    special: bool = False    # an end-of-text token (not part of the text)
    # Kept by step-through, so that undo and the timeline need no model call; streaming drops them
    # (a [V] array per token would be most of a session's memory).
    logits: np.ndarray | None = field(default=None, repr=False, compare=False)   # [V] read-only
    dist: Distribution | None = field(default=None, repr=False, compare=False)


def decode_step(lm: LoadedModel, logits: np.ndarray, settings: Settings, how: str = "top", seed: int | None = 0,
                draw: int = 0, token: int | None = None, index: int = 0, eos: frozenset[int] = frozenset(),
                keep: bool = True, previous_ids: Sequence[int] = ()) -> Step:
    """The one decode step: logits -> the distribution under `settings` -> a token -> its record.

    how: "top" (the most likely token after the filters), "sample" (a draw from stream `draw` of
    `seed`: step-through counts its draws, streaming numbers its tokens, so the same seed gives the
    same text both ways) or "given" (`token` itself). keep: hold the logits and the distribution in
    the record (step-through) or not (streaming). previous_ids: the text so far (prompt and tokens taken),
    which the repetition penalty reads."""
    dist = probabilities(logits, settings.temperature, settings.top_k, settings.top_p, settings.min_p,
                         settings.repetition_penalty, previous_ids)
    if how == "given":
        if token is None or not 0 <= int(token) < len(dist.logits):
            raise RangeError(f"{token!r} is not a token id of this model.",
                             f"Use an id from 0 to {len(dist.logits) - 1}.")
        token = int(token)
    else:
        token = choose(dist, how, seed, draw)
    rank = int((dist.logits > dist.logits[token]).sum()) + 1
    return Step(index=index, token_id=token, token=token_strings(lm.tokenizer, [token])[0], how=how,
                settings=dist.settings, seed=seed if how == "sample" else None, prob=float(dist.probs[token]),
                rank=rank, entropy=dist.entropy, n_kept=dist.n_kept, special=token in eos,
                logits=logits if keep else None, dist=dist if keep else None)


@dataclass(eq=False)
class StepState:
    """A session's stepping state: the prompt, the steps taken, the cache. Not shared between
    sessions; a lock keeps two reruns of one session from using the cache at once."""

    prompt_ids: tuple[int, ...]
    n_ctx: int
    frontier: np.ndarray                 # [V] logits for the token after prompt + steps
    steps: list[Step] = field(default_factory=list)
    draws: int = 0                       # samples drawn so far: the seed's stream number
    cache: object | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ids(self) -> tuple[int, ...]:
        return self.prompt_ids + tuple(s.token_id for s in self.steps)

    @property
    def n_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.steps)

    @property
    def room(self) -> int:
        """How many more tokens fit in the context window."""
        return self.n_ctx - self.n_tokens

    def logits_at(self, index: int) -> np.ndarray:
        """Logits of timeline point `index` (0 = after the prompt; len(steps) = now).  # [V]"""
        if not 0 <= index <= len(self.steps):
            raise ExplainerError(f"There is no step {index}.", f"Pick a step between 0 and {len(self.steps)}.")
        return self.frontier if index == len(self.steps) else self.steps[index].logits


def start(lm: LoadedModel, text: str, max_tokens: int | None = None,
          logits: np.ndarray | None = None) -> StepState:
    """A fresh stepping session for `text`. Pass the prompt's last-position `logits` when they are
    already known (from a cached Trace) and the model runs only when the first token is taken."""
    enc = encode(lm, text, max_tokens)
    if logits is None:
        cache = new_cache(lm)
        logits = next_logits(lm, enc.ids, cache)
    else:
        cache = None
        logits = np.array(logits, dtype=np.float32)
    return StepState(prompt_ids=enc.ids, n_ctx=lm.n_ctx, frontier=readonly(np.asarray(logits, dtype=np.float32)),
                     cache=cache)


def advance(lm: LoadedModel, state: StepState, how: str = "top", settings: Settings | None = None,
            seed: int | None = 0, token: int | None = None) -> Step:
    """Take one token ('top', a seeded 'sample', or 'given': `token` itself, as a link replays its steps)
    from the current distribution and run the model on it alone, reusing the cached keys and values of
    everything before it."""
    settings = settings or Settings()
    with state.lock:
        if state.room <= 0:
            raise _context_full(state.n_ctx)
        step = decode_step(lm, state.frontier, settings, how, seed, state.draws, token, index=len(state.steps),
                           previous_ids=state.ids)
        if how == "sample":
            state.draws += 1
        token = step.token_id
        ids = state.ids + (token,)
        if state.cache is None:
            state.cache = new_cache(lm)
        have = _cache_len(state.cache)
        if have > len(ids) - 1:  # the cache ran ahead (an interrupted call): trim it
            _crop(state.cache, len(ids) - 1)
            have = len(ids) - 1
        try:
            logits = next_logits(lm, ids[have:], state.cache)
        except BaseException:
            state.cache = None  # unknown state: rebuild from the ids next time
            raise
        state.steps.append(step)
        state.frontier = readonly(logits)
        return step


def rewind(state: StepState, n_steps: int) -> None:
    """Keep only the first `n_steps` steps; their distributions come back without a model call."""
    with state.lock:
        n_steps = max(0, min(int(n_steps), len(state.steps)))
        if n_steps == len(state.steps):
            return
        state.frontier = state.steps[n_steps].logits
        del state.steps[n_steps:]
        if state.cache is not None:
            _crop(state.cache, state.n_tokens)


def undo(state: StepState) -> Step | None:
    """Take back the last step (None when there is nothing to undo)."""
    if not state.steps:
        return None
    last = state.steps[-1]
    rewind(state, len(state.steps) - 1)
    return last


# -- streaming generation ------------------------------------------------------------------------

@dataclass(frozen=True)
class GenConfig:
    max_new_tokens: int = 40
    temperature: float = 0.7
    top_k: int | None = 50
    top_p: float | None = 0.95
    min_p: float | None = None              # None/0 = off
    repetition_penalty: float | None = None  # None/1 = off
    stop: tuple[str, ...] = ()      # stop strings: the text ends before the first one found
    seed: int | None = 0
    use_cache: bool = True          # False re-runs the whole context for every token (for comparison)
    stop_at_eos: bool = True

    @property
    def settings(self) -> Settings:
        return Settings(self.temperature, self.top_k, self.top_p, self.min_p, self.repetition_penalty)


@dataclass(frozen=True)
class GenOutcome:
    tokens: tuple[Step, ...]
    text: str                     # the generated text, cut before a stop string
    reason: str                   # "max_new_tokens", "stop", "eos" or "context"
    stop_string: str | None
    seconds: float                # everything: reading the prompt, choosing tokens, every model call
    prefill_seconds: float = 0.0  # the first model call, over the whole prompt
    n_decode: int = 0             # model calls after it (one per new token, except the last)

    @property
    def seconds_per_token(self) -> float:
        """Time per new token once the prompt has been read (the prompt's own pass is excluded)."""
        if self.n_decode == 0:
            return self.seconds
        return (self.seconds - self.prefill_seconds) / self.n_decode

    @property
    def why(self) -> str:
        return {
            "max_new_tokens": f"Stopped after the maximum of {len(self.tokens)} new tokens.",
            "stop": f"Stopped at the stop string {self.stop_string!r}.",
            "eos": "The model ended the text itself (it produced its end-of-text token).",
            "context": "Stopped because the context window is full.",
        }[self.reason]


class Stream:
    """Generate token by token: `for tok in Stream(lm, prompt, cfg): ...`, then `.outcome`.

    `prompt` is text (tokenized and truncated like every page) or a list of token ids. Bad input
    raises PromptError when the Stream is made, before anything streams.
    """

    def __init__(self, lm: LoadedModel, prompt: str | Sequence[int], cfg: GenConfig | None = None,
                 max_tokens: int | None = None):
        self.lm, self.cfg = lm, cfg or GenConfig()
        if isinstance(prompt, str):
            self.prompt_ids = encode(lm, prompt, max_tokens).ids
        else:
            self.prompt_ids = tuple(int(i) for i in prompt)
            if not self.prompt_ids:
                raise PromptError("The prompt is empty.", "Type a prompt to continue.")
            if len(self.prompt_ids) > lm.n_ctx:
                raise _context_full(lm.n_ctx)
        if int(self.cfg.max_new_tokens) < 1:
            raise PromptError("Max new tokens must be at least 1.", "Raise 'max new tokens'.")
        self.cfg.settings.checked(lm.vocab_size)  # raises on nonsense settings before streaming
        self.outcome: GenOutcome | None = None

    def __iter__(self) -> Iterator[Step]:
        lm, cfg = self.lm, self.cfg
        tok = lm.tokenizer
        eos = eos_ids(lm) if cfg.stop_at_eos else frozenset()
        stops = tuple(s for s in cfg.stop if s)
        ids = list(self.prompt_ids)
        gen_ids: list[int] = []
        out: list[Step] = []
        cache = new_cache(lm) if cfg.use_cache else None
        t0 = time.perf_counter()
        reason, hit, text = "max_new_tokens", None, ""
        logits = next_logits(lm, ids, cache)
        prefill, n_decode = time.perf_counter() - t0, 0
        for i in range(int(cfg.max_new_tokens)):
            if len(ids) >= lm.n_ctx:
                reason = "context"
                break
            gt = decode_step(lm, logits, cfg.settings, "sample", cfg.seed, draw=i, index=i, eos=eos, keep=False,
                             previous_ids=ids)
            token = gt.token_id
            out.append(gt)
            yield gt
            if gt.special:
                reason = "eos"
                break
            ids.append(token)
            gen_ids.append(token)
            if stops:
                text = tok.decode(gen_ids, skip_special_tokens=True)
                found = [(text.find(s), s) for s in stops if s in text]
                if found:
                    cut, hit = min(found)
                    text, reason = text[:cut], "stop"
                    break
            if i + 1 < int(cfg.max_new_tokens) and len(ids) < lm.n_ctx:
                logits = next_logits(lm, [token] if cache is not None else ids, cache)
                n_decode += 1
        if reason != "stop":
            text = tok.decode(gen_ids, skip_special_tokens=True)
        self.outcome = GenOutcome(tokens=tuple(out), text=text, reason=reason, stop_string=hit,
                                  seconds=time.perf_counter() - t0, prefill_seconds=prefill, n_decode=n_decode)


def generate(lm: LoadedModel, prompt: str | Sequence[int], cfg: GenConfig | None = None,
             max_tokens: int | None = None) -> GenOutcome:
    """Run a Stream to the end and return what it produced."""
    s = Stream(lm, prompt, cfg, max_tokens)
    for _ in s:
        pass
    assert s.outcome is not None
    return s.outcome


# -- batches: padding and the attention mask -------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Batch:
    prompts: tuple[str, ...]
    ids: np.ndarray                      # [B, T] int64, padded
    mask: np.ndarray                     # [B, T] int64: 1 = real token, 0 = padding
    tokens: tuple[tuple[str, ...], ...]  # [B][T] display strings (padding shows the pad token)
    pad_id: int
    pad_token: str
    side: str                            # "left" or "right"
    note: str                            # how padding works here, in words

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.mask.sum(axis=1))


_PAD_TOKENIZERS: dict[int, tuple[object, object]] = {}  # id(shared tokenizer) -> (it, its padding copy)
_PAD_LOCK = threading.Lock()


def padding_tokenizer(tokenizer) -> tuple[object, str]:
    """The tokenizer itself when it has a pad token; otherwise a copy that pads with its end-of-text
    token (the shared tokenizer is never changed). Returns it and a sentence explaining the choice."""
    if tokenizer.pad_token is not None:
        return tokenizer, (f"This tokenizer pads with its own padding token {tokenizer.pad_token!r} "
                           f"(id {tokenizer.pad_token_id}).")
    with _PAD_LOCK:
        orig, tok = _PAD_TOKENIZERS.get(id(tokenizer), (None, None))
        if orig is not tokenizer:  # holding the original keeps its id from being reused by another tokenizer
            tok = copy.deepcopy(tokenizer)
            fill = tok.eos_token or tok.unk_token or tok.convert_ids_to_tokens(0)
            tok.pad_token = fill
            _PAD_TOKENIZERS[id(tokenizer)] = (tokenizer, tok)
    return tok, (f"This tokenizer has no padding token (GPT-style models were trained on unpadded text), so "
                 f"its end-of-text token {tok.pad_token!r} (id {tok.pad_token_id}) fills the gaps. Which token "
                 "it is does not matter: the attention mask hides it from every real token.")


def pad_batch(lm: LoadedModel, prompts: Sequence[str], side: str = "left", max_tokens: int | None = None) -> Batch:
    """Tokenize several prompts into one rectangle with the tokenizer's own padding and attention mask.

    Left padding (the default) puts every prompt's last token in the last column, which is what
    generation needs: the next token of every row is predicted at the same position.
    """
    if side not in ("left", "right"):
        raise ExplainerError(f"Padding side must be 'left' or 'right' (got {side!r}).", "Use 'left' for generation.")
    texts = tuple(p for p in (str(p) for p in prompts) if p.strip())
    if not texts:
        raise PromptError("There are no prompts to batch.", "Type one prompt per line.")
    tok, note = padding_tokenizer(lm.tokenizer)
    limit = context_limit(lm, max_tokens)
    enc = tok(list(texts), padding=True, padding_side=side, truncation=True, max_length=limit)
    ids = np.array(enc["input_ids"], dtype=np.int64)            # [B, T]
    mask = np.array(enc["attention_mask"], dtype=np.int64)      # [B, T]
    strings = tuple(token_strings(lm.tokenizer, row) for row in ids)
    return Batch(prompts=texts, ids=readonly(ids), mask=readonly(mask), tokens=strings, pad_id=int(tok.pad_token_id),
                 pad_token=str(tok.pad_token), side=side, note=note)


def batch_next_logits(lm: LoadedModel, batch: Batch) -> np.ndarray:
    """One forward pass over the padded batch; the logits after each prompt's last real token.  # [B, V]

    Position ids count real tokens only, so a left-padded prompt sees the same positions as alone.
    """
    with torch.inference_mode():
        ids = torch.tensor(batch.ids, device=lm.device)              # [B, T]
        mask = torch.tensor(batch.mask, device=lm.device)            # [B, T]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)                     # [B, T]
        logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits  # [B, T, V]
        last = mask.sum(-1) - 1 if batch.side == "right" else torch.full_like(mask[:, 0], ids.shape[1] - 1)  # [B]
        rows = torch.arange(ids.shape[0], device=lm.device)
        return logits[rows, last].float().cpu().numpy()              # [B, V]


def chat_text(lm: LoadedModel, messages: Sequence[dict]) -> tuple[str, tuple[str, ...]]:
    """The text the model reads for a chat log, with the prompt for the assistant's next turn, and
    the stop strings for that turn. Uses the tokenizer's chat template when it has one."""
    tok = lm.tokenizer
    msgs = [{"role": m["role"], "content": str(m["content"])} for m in messages]
    if not msgs or msgs[-1]["role"] != "user" or not msgs[-1]["content"].strip():
        raise PromptError("The chat needs a message from you first.", "Type a message in the chat box.")
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return str(text), ()
    lines = [f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in msgs
             if m["role"] in ("user", "assistant")]
    return "\n".join(lines) + "\nAssistant:", ("\nUser:",)


def chat_ids(lm: LoadedModel, messages: Sequence[dict]) -> tuple[tuple[int, ...], tuple[str, ...], str]:
    """Token ids for a chat log (the template already holds any special tokens), its stop strings and text."""
    text, stops = chat_text(lm, messages)
    ids = tuple(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(ids) > lm.n_ctx:
        raise PromptError(f"The chat log has {len(ids):,} tokens, more than the context window ({lm.n_ctx:,}).",
                          "Clear the chat to start again.")
    return ids, stops, text


def parse_stop(s: str) -> tuple[str, ...]:
    r"""Stop strings typed by a user: comma-free, one per line or separated by '|'; '\n' means a newline."""
    parts = [p.replace("\\n", "\n").replace("\\t", "\t") for p in str(s or "").split("|")]
    return tuple(p for p in parts if p)


@dataclass(frozen=True)
class BatchRow:
    """One prompt of a batch: its next token in the batch, and the same prompt run alone."""

    prompt: str
    n_tokens: int            # real tokens (no padding)
    top_id: int              # most likely next token in the batched pass
    top_token: str
    prob: float              # its probability there
    alone_id: int            # most likely next token when the prompt runs alone
    alone_token: str
    alone_prob: float        # the batch's top token's probability when run alone

    @property
    def same(self) -> bool:
        """Batched and alone agree: the same top token, with the same probability to 1e-3."""
        return self.alone_id == self.top_id and abs(self.alone_prob - self.prob) < 1e-3


@dataclass(frozen=True, eq=False)
class BatchCheck:
    batch: Batch
    rows: tuple[BatchRow, ...]


def compare_batch(lm: LoadedModel, prompts: Sequence[str], side: str = "left",
                  max_tokens: int | None = None) -> BatchCheck:
    """Pad `prompts` into one batch, predict every row's next token in one pass, and run each prompt
    alone for comparison (the mask and position ids make the two agree)."""
    b = pad_batch(lm, prompts, side, max_tokens)
    together = softmax(batch_next_logits(lm, b))                                     # [B, V]
    rows = []
    for i, (row, mrow) in enumerate(zip(b.ids, b.mask)):
        alone = softmax(next_logits(lm, [int(t) for t, m in zip(row, mrow) if m]))       # [V]
        top, top_alone = int(together[i].argmax()), int(alone.argmax())
        names = token_strings(lm.tokenizer, [top, top_alone])
        rows.append(BatchRow(prompt=b.prompts[i], n_tokens=b.lengths[i], top_id=top, top_token=names[0],
                             prob=float(together[i, top]), alone_id=top_alone, alone_token=names[1],
                             alone_prob=float(alone[top])))
    return BatchCheck(batch=b, rows=tuple(rows))
