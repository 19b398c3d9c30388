"""Interventions: switch off (zero) attention heads or MLP neurons and see how the prediction changes.

A head is zeroed by zeroing its slice of `blocks.{l}.attn.hook_z` (the input of the attention output
projection, where the heads' outputs sit side by side, seen as [B, T, H, dh]); a neuron by zeroing its
column of `blocks.{l}.mlp.hook_post` (the input of the MLP down-projection). Both are site editors
(`sites.HookSite.editor`) registered through `capture.hooks`, so they act only on the calling thread's
forward pass and are always removed. The shared model's weights are never touched.

Which of the hundreds of heads to try? `attribution` estimates, for every head and neuron at once, how
much zeroing it would change the log-probability of the predicted token: gradient × activation (a
first-order Taylor estimate, "attribution patching"), from one forward and one backward pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .errors import PromptError, RangeError
from .generation import accepts_logits_to_keep
from .heads import top_heads
from .models import LoadedModel
from .sampling import kl_divergence, softmax, top_k
from .sites import Hook, hooks, read_input, replace_input, site
from .tokens import encode, token_strings
from .trace import Trace, readonly


def attn_out_proj(lm: LoadedModel, layer: int) -> nn.Module:
    """The module that mixes the heads' outputs back into d_model for one layer (its input is hook_z)."""
    return site(lm, f"blocks.{layer}.attn.hook_z").module


@dataclass(frozen=True, eq=False)
class AblationResult:
    """Logits with and without the ablation, for every position of the prompt."""

    tokens: tuple[str, ...]                 # [T]
    token_ids: np.ndarray                   # [T]
    heads: tuple[tuple[int, int], ...]      # (layer, head) switched off
    neurons: tuple[tuple[int, int], ...]    # (layer, neuron) switched off
    logits_before: np.ndarray               # [T, V]
    logits_after: np.ndarray                # [T, V]
    notice: str | None = None               # e.g. that the prompt was truncated

    @property
    def probs_before(self) -> np.ndarray:
        """Next-token probabilities without the ablation.  # [V]"""
        return softmax(self.logits_before[-1])

    @property
    def probs_after(self) -> np.ndarray:
        """Next-token probabilities with the ablation.  # [V]"""
        return softmax(self.logits_after[-1])

    @property
    def changed(self) -> bool:
        return not np.array_equal(self.logits_before, self.logits_after)


@dataclass(frozen=True, eq=False)
class Comparison:
    """The tokens most likely before or after, with both probabilities."""

    ids: np.ndarray            # [n] int64, ordered by probability before
    tokens: tuple[str, ...]    # [n]
    before: np.ndarray         # [n] float64
    after: np.ndarray          # [n] float64
    top_before: int            # the predicted token id before
    top_after: int             # ... and after
    kl_bits: float = 0.0       # KL(before ‖ after) over the whole vocabulary, in bits (0 = no change)

    def token(self, token_id: int) -> str:
        """The text of one of the compared tokens."""
        return self.tokens[list(self.ids).index(int(token_id))]

    def prob_before(self, token_id: int) -> float:
        return float(self.before[list(self.ids).index(int(token_id))])

    def prob_after(self, token_id: int) -> float:
        return float(self.after[list(self.ids).index(int(token_id))])

    @property
    def delta(self) -> np.ndarray:
        return self.after - self.before                               # [n]

    @property
    def prediction_changed(self) -> bool:
        return self.top_before != self.top_after


def _check(lm: LoadedModel, heads: Iterable, neurons: Iterable) -> tuple[tuple, tuple]:
    L, H, M = lm.n_layers, lm.n_heads, lm.d_mlp
    hs = tuple(sorted({(int(layer), int(h)) for layer, h in heads}))
    ns = tuple(sorted({(int(layer), int(n)) for layer, n in neurons}))
    for layer, h in hs:
        if not (0 <= layer < L and 0 <= h < H):
            raise RangeError(f"Head L{layer}.H{h} does not exist.",
                              f"Layers go from 0 to {L - 1} and heads from 0 to {H - 1}.")
    for layer, n in ns:
        if not (0 <= layer < L and 0 <= n < M):
            raise RangeError(f"Neuron L{layer}.N{n} does not exist.",
                              f"Layers go from 0 to {L - 1} and neurons from 0 to {M - 1}.")
    return hs, ns


def _zero_columns(cols: list) -> Callable:
    """A pre-hook that zeroes the given columns (slices or index lists) of the last axis of a module's input."""
    def fn(mod, args, kwargs):
        x = read_input(args, kwargs).clone()                          # [B, T, width]
        for c in cols:
            x[..., c] = 0
        return replace_input(args, kwargs, x)
    return fn


def _zero(index: tuple) -> Callable:
    """An edit for `HookSite.editor` that zeroes value[index] of the (copied) site value in place."""
    def fn(v: torch.Tensor) -> None:
        v[index] = 0
    return fn


def by_layer(parts: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """(layer, index) pairs (heads or neurons) as layer -> its indices, layers in order."""
    out: dict[int, list[int]] = defaultdict(list)
    for layer, i in parts:
        out[int(layer)].append(int(i))
    return dict(sorted(out.items()))


def ablation_hooks(lm: LoadedModel, heads: Iterable = (), neurons: Iterable = ()) -> list[Hook]:
    """Hooks for `capture.hooks` that switch off the given heads (zeroing their slice of
    blocks.{l}.attn.hook_z, [B, T, H, dh]) and neurons (their column of blocks.{l}.mlp.hook_post, [B, T, M])."""
    hs, ns = _check(lm, heads, neurons)
    pairs = [site(lm, f"blocks.{layer}.attn.hook_z").editor(_zero((..., idx, slice(None))))  # [B, T, h, dh]
             for layer, idx in by_layer(hs).items()]
    pairs += [site(lm, f"blocks.{layer}.mlp.hook_post").editor(_zero((..., idx)))            # [B, T, n]
              for layer, idx in by_layer(ns).items()]
    return pairs


def ablate(lm: LoadedModel, source: str | Trace, heads: Iterable = (), neurons: Iterable = (),
           max_tokens: int | None = None) -> AblationResult:
    """The logits of a prompt as is and with the heads (layer, head) and neurons (layer, index) zeroed.

    `source` is the prompt text (both passes are run) or a Trace of it (its logits are the "before";
    only the ablated pass is run). Ablating nothing runs no second pass: "after" is "before".
    """
    hs, ns = _check(lm, heads, neurons)
    if isinstance(source, Trace):
        if source.logits.shape[-1] != lm.vocab_size:
            raise PromptError("This trace was made with a different model.", "Trace the prompt again.")
        tokens, token_ids, notice = source.tokens, tuple(int(i) for i in source.token_ids), source.notice
        before = source.logits                                          # [T, V]
    else:
        enc = encode(lm, source, max_tokens)
        tokens, token_ids, notice = enc.tokens, enc.ids, enc.notice
        before = None
    ids = torch.tensor([token_ids], device=lm.device)                   # [1, T]
    with torch.inference_mode():
        if before is None:
            before = readonly(lm.model(input_ids=ids, use_cache=False).logits[0].float().cpu().numpy())  # [T, V]
        after = before
        if hs or ns:
            with hooks(ablation_hooks(lm, hs, ns)):
                out = lm.model(input_ids=ids, use_cache=False).logits[0]    # [T, V]
            after = readonly(out.float().cpu().numpy())
    return AblationResult(tokens=tuple(tokens), token_ids=readonly(np.asarray(token_ids, dtype=np.int64)), heads=hs,
                          neurons=ns, logits_before=before, logits_after=after, notice=notice)


def compare(lm: LoadedModel, res: AblationResult, k: int = 8) -> Comparison:
    """The k most likely next tokens before, plus any that enter the top k after, with both probabilities."""
    pb, pa = res.probs_before, res.probs_after                        # [V] each
    top_b, top_a = top_k(pb, k), top_k(pa, k)                         # [k] each, no full sort of the vocabulary
    seen = set(top_b.tolist())
    ids = np.concatenate([top_b, [i for i in top_a if i not in seen]]).astype(np.int64)
    ids = ids[np.argsort(-pb[ids], kind="stable")]
    return Comparison(ids=ids, tokens=token_strings(lm.tokenizer, ids), before=pb[ids], after=pa[ids],
                      top_before=int(top_b[0]), top_after=int(top_a[0]), kl_bits=kl_divergence(pb, pa))


# -- which parts to try: a first-order estimate for every head and neuron at once -----------------------

@dataclass(frozen=True, eq=False)
class Attribution:
    """Estimated change of log p(target) at the last position if each head / neuron were zeroed.

    Negative = switching it off should hurt the prediction. First-order (gradient × activation):
    exact for tiny changes, a guide for a whole head; `ablate` gives the true effect.
    """

    target_id: int
    target: str
    logprob: float              # log p(target) of the normal model
    heads: np.ndarray           # [L, H] float32
    neurons: np.ndarray         # [L, M] float32

    def top_heads(self, n: int = 5) -> list[tuple[int, int]]:
        """The n heads whose removal should lower log p(target) most (most negative estimate first)."""
        return [(h.layer, h.head) for h in top_heads(-self.heads, n)]

    def top_neurons(self, n: int = 5) -> list[tuple[int, int]]:
        return [(nr.layer, nr.head) for nr in top_heads(-self.neurons, n)]   # .head: the neuron index


def attribution(lm: LoadedModel, tr: Trace, target: int | None = None) -> Attribution:
    """Gradient × activation at every head output and MLP neuron for log p(target | prompt).

    `target` defaults to the model's prediction after the prompt. One forward and one backward pass;
    the model's parameters still need no gradient (only the activations do) and stay untouched.
    """
    L, H, V = lm.n_layers, lm.n_heads, lm.vocab_size
    target = int(np.argmax(tr.logits[-1])) if target is None else int(target)
    if not 0 <= target < V:
        raise RangeError(f"Token id {target} is not in the vocabulary.", f"Choose an id from 0 to {V - 1}.")
    kept: dict[tuple[str, int], torch.Tensor] = {}

    def keep(kind: str, layer: int):
        def fn(v: torch.Tensor) -> torch.Tensor:
            x = v.clone()                                             # [1, T, H, dh] or [1, T, M]
            x.retain_grad()                                           # the model runs on x: its gradient is kept
            kept[kind, layer] = x
            return x
        return fn

    pairs: list[Hook] = []
    for layer in range(L):
        pairs += [site(lm, f"blocks.{layer}.attn.hook_z").editor(keep("head", layer)),
                  site(lm, f"blocks.{layer}.mlp.hook_post").editor(keep("mlp", layer))]
    ids = torch.tensor([[int(i) for i in tr.token_ids]], device=lm.device)  # [1, T]
    with hooks(pairs), torch.enable_grad():
        emb = lm.model.get_input_embeddings()(ids).detach().requires_grad_(True)  # [1, T, D]
        keep = {"logits_to_keep": 1} if accepts_logits_to_keep(lm.model) else {}   # the last position only:
        logits = lm.model(inputs_embeds=emb, use_cache=False, **keep).logits[0, -1].float()  # [V] no [T, V] matmul
        logp = torch.log_softmax(logits, dim=-1)[target]
        logp.backward()
    heads = np.empty((L, H), dtype=np.float32)
    neurons = np.empty((L, lm.d_mlp), dtype=np.float32)
    with torch.no_grad():
        for layer in range(L):
            x = kept["head", layer]                                   # [1, T, H, dh]
            gx = (x.grad * x)[0].float()                              # [T, H, dh]
            heads[layer] = (-gx.sum(dim=(0, 2))).cpu().numpy()        # [H]  zeroing: Δ ≈ −grad·x
            x = kept["mlp", layer]                                    # [1, T, M]
            neurons[layer] = (-(x.grad * x)[0].float().sum(0)).cpu().numpy()  # [M]
    return Attribution(target_id=target, target=token_strings(lm.tokenizer, [target])[0], logprob=float(logp.detach()),
                       heads=readonly(heads), neurons=readonly(neurons))


# -- labels ----------------------------------------------------------------------------------------

def head_label(layer: int, head: int) -> str:
    return f"L{layer}.H{head}"


def neuron_label(layer: int, neuron: int) -> str:
    return f"L{layer}.N{neuron}"


def _parse_pairs(text: str | Iterable[str], letter: str, what: str, example: str) -> list[tuple[int, int]]:
    parts = text.replace(",", " ").split() if isinstance(text, str) else [str(t) for t in text]
    out = []
    for part in parts:
        p = part.strip().upper()
        layer, sep, rest = p.removeprefix("L").partition(".")
        rest = rest.removeprefix(letter)
        if not (sep and layer.isdigit() and rest.isdigit()):
            raise PromptError(f"'{part}' is not a {what}.", f"Write layer and number like {example}.")
        out.append((int(layer), int(rest)))
    return out


def parse_heads(labels: str | Iterable[str]) -> list[tuple[int, int]]:
    """"L3.H5, 4.2" (or a list of labels) -> [(3, 5), (4, 2)]. Raises PromptError naming a bad entry."""
    return _parse_pairs(labels, "H", "head", "L3.H5")


def parse_neurons(text: str | Iterable[str]) -> list[tuple[int, int]]:
    """"L15.N1274, 20.7" -> [(15, 1274), (20, 7)]. Raises PromptError naming a bad entry."""
    return _parse_pairs(text, "N", "neuron", "L15.N1274")


# -- a named experiment: switch off the copying heads -------------------------------------------------------

@dataclass(frozen=True)
class Knockout:
    """How well the model copies a repeated random sequence, as is and with heads switched off."""

    heads: tuple[tuple[int, int], ...]      # the strongest induction heads, switched off
    period: int                             # tokens in the random sequence (it is then repeated)
    copying: float                          # mean probability of the right next token in the second copy
    without_induction: float                # the same with `heads` off
    without_random: tuple[float, ...]       # the same with as many random other heads off, one per trial


def knockout_copying(lm: LoadedModel, scores: dict, k: int = 3, n: int = 20, seed: int = 5,
                     trials: int = 5) -> Knockout:
    """Switch off the k strongest induction heads (by `scores["induction"]`, from heads.head_scores) and
    measure copying on a random sequence repeated twice: the mean probability of the right next token at
    the second copy's positions. As a control, k random other heads are switched off instead."""
    from .heads import repeated_tokens

    seq = repeated_tokens(lm, n=n, batch=1, seed=seed)
    ids, P, period = seq.ids[0], seq.prefix, seq.period
    q = np.arange(P + period, P + 2 * period - 1)                      # second-copy positions with a next token
    x = torch.as_tensor(ids[None], device=lm.device)                    # [1, T]

    def copying(hs) -> float:
        with torch.inference_mode(), hooks(ablation_hooks(lm, tuple(sorted(hs)), ())):
            logits = lm.model(input_ids=x, use_cache=False).logits[0].float().cpu().numpy()   # [T, V]
        p = softmax(logits[q])                                          # [n-1, V]
        return float(p[np.arange(len(q)), ids[q + 1]].mean())

    top = tuple((h.layer, h.head) for h in top_heads(scores["induction"], k))
    others = [(layer, h) for layer in range(lm.n_layers) for h in range(lm.n_heads) if (layer, h) not in top]
    rng = np.random.default_rng(seed)
    rand = tuple(copying([others[i] for i in rng.choice(len(others), size=len(top), replace=False)])
                 for _ in range(int(trials)))
    return Knockout(heads=top, period=period, copying=copying(()), without_induction=copying(top),
                    without_random=rand)
