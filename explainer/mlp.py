"""MLP neurons: which of a layer's neurons fire on the prompt, and where.

A neuron's activation is one column of `trace.mlp[layer]`: the input of the MLP's down-projection
(after GELU for GPT-2, after SiLU(gate)·up for Llama's SwiGLU), so each neuron adds
activation × (its column of the down-projection) to the residual stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ExplainerError, RangeError
from .sampling import top_k
from .trace import Trace


@dataclass(frozen=True, eq=False)
class NeuronSet:
    """The most active neurons of one layer for the prompt."""

    layer: int
    neurons: np.ndarray         # [n] int64   neuron indices, strongest first
    score: np.ndarray           # [n] float32 max |activation| over the positions used for ranking
    acts: np.ndarray            # [T, n] float32 their activation at every position
    skipped_first: bool         # the first position was left out of the ranking


@dataclass(frozen=True, eq=False)
class TokenNeurons:
    """The neurons that fire most strongly (by |activation|) at one position."""

    layer: int
    position: int
    neurons: np.ndarray         # [n] int64
    acts: np.ndarray            # [n] float32, signed


@dataclass(frozen=True, eq=False)
class Histogram:
    layer: int
    counts: np.ndarray          # [bins] int64
    edges: np.ndarray           # [bins+1] float64
    mean: float
    std: float
    frac_positive: float        # share of activations > 0
    min: float
    max: float
    frac_small: float = 0.0     # share with |activation| under a tenth of the largest |activation|

    @property
    def sparse(self) -> bool:
        """Most values (at least 90%) are small next to the few largest: a sparse layer."""
        return self.frac_small >= 0.9


def peak(acts: np.ndarray, skip_first: bool = False) -> int:
    """Position of the largest |activation| (position 0 left out when asked and there is more than one)."""
    a = np.abs(np.asarray(acts))
    if skip_first and a.size > 1:
        return int(np.argmax(a[1:])) + 1
    return int(np.argmax(a))


def check_layer(tr: Trace, layer: int) -> int:
    L = tr.mlp.shape[0]
    if not -L <= int(layer) < L:
        raise RangeError(f"Layer {layer} does not exist.", f"Choose a layer from 0 to {L - 1}.")
    return int(layer) % L


def check_position(tr: Trace, position: int) -> int:
    T = tr.mlp.shape[1]
    if not -T <= int(position) < T:
        raise RangeError(f"Position {position} is outside the prompt.", f"Choose a position from 0 to {T - 1}.")
    return int(position) % T


def check_neuron(tr: Trace, neuron: int) -> int:
    M = tr.mlp.shape[2]
    if not 0 <= int(neuron) < M:
        raise RangeError(f"Neuron {neuron} does not exist.", f"Each layer has neurons 0 to {M - 1}.")
    return int(neuron)


def top_neurons(tr: Trace, layer: int, n: int = 20, skip_first: bool = False) -> NeuronSet:
    """The n neurons of `layer` with the largest |activation| anywhere in the prompt.

    `skip_first` leaves position 0 out of the ranking: many models park huge activations on the first
    token (an "attention sink"), which would otherwise crowd out everything else.
    """
    layer = check_layer(tr, layer)
    a = tr.mlp[layer]                                               # [T, M]
    skip = skip_first and a.shape[0] > 1
    score = np.abs(a[1:] if skip else a).max(axis=0)                # [M]
    n = max(1, min(int(n), a.shape[1]))
    idx = top_k(score, n).astype(np.int64)                          # [n]
    return NeuronSet(layer=layer, neurons=idx, score=score[idx].astype(np.float32),
                     acts=np.ascontiguousarray(a[:, idx], dtype=np.float32), skipped_first=skip)


def top_neurons_at(tr: Trace, layer: int, position: int, n: int = 10) -> TokenNeurons:
    """The n neurons of `layer` firing most strongly (|activation|) at `position`."""
    layer, position = check_layer(tr, layer), check_position(tr, position)
    a = tr.mlp[layer, position]                                     # [M]
    n = max(1, min(int(n), a.shape[0]))
    idx = top_k(np.abs(a), n).astype(np.int64)                      # [n]
    return TokenNeurons(layer=layer, position=position, neurons=idx, acts=a[idx].astype(np.float32))


def neuron_activation(tr: Trace, layer: int, neuron: int) -> np.ndarray:
    """One neuron's activation at every position of the prompt.  # [T]"""
    return tr.mlp[check_layer(tr, layer), :, check_neuron(tr, neuron)].astype(np.float32)


def activation_histogram(tr: Trace, layer: int, bins: int = 80, skip_first: bool = False) -> Histogram:
    """Distribution of all activations of one layer over the prompt (T·M values)."""
    layer = check_layer(tr, layer)
    a = tr.mlp[layer]                                               # [T, M]
    if skip_first and a.shape[0] > 1:
        a = a[1:]
    v = a.ravel().astype(np.float64)                                # [T·M]
    counts, edges = np.histogram(v, bins=max(1, int(bins)))
    big = float(np.abs(v).max())
    return Histogram(layer=layer, counts=counts, edges=edges, mean=float(v.mean()), std=float(v.std()),
                     frac_positive=float((v > 0).mean()), min=float(v.min()), max=float(v.max()),
                     frac_small=float((np.abs(v) < 0.1 * big).mean()) if big > 0 else 1.0)


def layer_activity(tr: Trace, skip_first: bool = False) -> np.ndarray:
    """Max |activation| of each layer at each position: where in the model the MLPs fire.  # [L, T]"""
    a = np.abs(tr.mlp).max(axis=-1)                                 # [L, T]
    if skip_first and a.shape[1] > 1:
        a = a.copy()
        a[:, 0] = np.nan
    return a


# -- finding a neuron with a job -----------------------------------------------------------------------

@dataclass(frozen=True)
class NeuronScore:
    layer: int
    neuron: int
    score: float           # (mean on members - mean on the rest) / std over all tokens
    mean_members: float
    mean_rest: float


def _by_token(lm, texts, is_member, pick) -> tuple[np.ndarray, np.ndarray]:
    """Trace each text and stack `pick(trace)` (activations at positions 1.., position 0 left out) over all
    of them, with whether each of those tokens is a member: ([N, ...] float64, [N] bool)."""
    from .capture import trace

    acts, member = [], []
    for text in texts:
        tr = trace(lm, text)
        acts.append(np.asarray(pick(tr), dtype=np.float64))
        member.extend(bool(is_member(t)) for t in tr.tokens[1:])
    return np.concatenate(acts, axis=0), np.array(member, dtype=bool)


def search_neurons(lm, texts, is_member, k: int = 5) -> list[NeuronScore]:
    """The k neurons that best tell apart the tokens for which `is_member(token_text)` is true from the rest,
    over `texts` (position 0 of each text left out): the largest standardised difference of mean activation.
    This is the search behind the MLP page's curated neuron (content.CURATED_NEURON)."""
    a, y = _by_token(lm, texts, is_member, lambda tr: tr.mlp[:, 1:, :].transpose(1, 0, 2))   # [N, L, M], [N]
    if not y.any() or y.all():
        raise ExplainerError("The search needs tokens of both kinds.", "Give texts with and without the pattern.")
    pos, rest = a[y].mean(axis=0), a[~y].mean(axis=0)                # [L, M] each
    score = (pos - rest) / (a.std(axis=0) + 1e-6)                     # [L, M]
    order = np.argsort(-score.ravel(), kind="stable")[:k]
    out = []
    for o in order:
        layer, neuron = np.unravel_index(int(o), score.shape)
        out.append(NeuronScore(int(layer), int(neuron), float(score[layer, neuron]), float(pos[layer, neuron]),
                               float(rest[layer, neuron])))
    return out


@dataclass(frozen=True)
class NeuronCheck:
    n_members: int
    mean_members: float
    mean_rest: float
    precision: float       # of the n_members most active tokens, the share that are members


def neuron_report(lm, layer: int, neuron: int, texts, is_member) -> NeuronCheck:
    """How well one neuron picks out the member tokens of `texts` (position 0 left out)."""
    a, y = _by_token(lm, texts, is_member, lambda tr: tr.mlp[check_layer(tr, layer), 1:, check_neuron(tr, neuron)])
    n = int(y.sum())
    top = np.argsort(-a, kind="stable")[:n]
    return NeuronCheck(n_members=n, mean_members=float(a[y].mean()) if n else 0.0,
                       mean_rest=float(a[~y].mean()) if (~y).any() else 0.0,
                       precision=float(y[top].mean()) if n else 0.0)
