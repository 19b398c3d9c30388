"""Pictures of word vectors: PCA word maps, analogy maps and directions (a − b axes) to project on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ExplainerError
from .vectors import AnalogyResult, WordVectors, embedding_matrix, vector, word_vectors
from .words import EmptyWordError, WordError, WordList, WordToken, parse_items, resolve


@dataclass(frozen=True, eq=False)
class PCAResult:
    coords: np.ndarray                # [N, k] the fitted vectors in the principal-component basis
    explained_variance_ratio: np.ndarray   # [k] share of the total variance along each component
    components: np.ndarray            # [k, D] unit directions
    mean: np.ndarray                  # [D]
    names: tuple[str, ...] = ()       # axis names; PC1, PC2, ... when empty

    @property
    def n_components(self) -> int:
        return self.coords.shape[1]

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place more vectors in the same picture.  # [M, k]"""
        return (np.atleast_2d(np.asarray(x, np.float64)) - self.mean) @ self.components.T

    def axis_titles(self) -> list[str]:
        names = self.names or tuple(f"PC{i + 1}" for i in range(self.n_components))
        return [f"{n} ({r:.0%} of variance)" for n, r in zip(names, self.explained_variance_ratio)]


def pca(vectors: np.ndarray, n_components: int = 2) -> PCAResult:
    """scikit-learn's PCA fitted on the given vectors (exact SVD solver, so results are deterministic)."""
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, np.float64)                               # [N, D]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ExplainerError("A map needs at least two different words.", "Add more words to the list.")
    k = int(min(n_components, x.shape[0], x.shape[1]))
    model = PCA(n_components=k, svd_solver="full").fit(x)
    return PCAResult(coords=model.transform(x), explained_variance_ratio=model.explained_variance_ratio_,
                     components=model.components_, mean=model.mean_)


def aligned_pca(vectors: np.ndarray, direction: np.ndarray, n_components: int = 2) -> PCAResult:
    """Axes chosen by hand and by PCA: the first axis is `direction` (e.g. the average arrow
    man → woman, king → queen, ...); the others are the principal components of what is left once that
    direction is taken out of every vector. Parallel arrows then all point along the first axis."""
    x = np.asarray(vectors, np.float64)                               # [N, D]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ExplainerError("A map needs at least two different words.", "Add more words to the list.")
    d = np.asarray(direction, np.float64)                             # [D]
    if not np.linalg.norm(d) > 0:
        raise ExplainerError("The arrows add up to nothing, so there is no direction to put on the axis.",
                             "Use the plain PCA view.")
    e1 = d / np.linalg.norm(d)                                        # [D]
    mean = x.mean(axis=0)                                             # [D]
    xc = x - mean                                                     # [N, D]
    rest = xc - np.outer(xc @ e1, e1)                                 # [N, D] e1 taken out
    total = float((xc ** 2).sum()) or 1.0
    k = int(min(n_components, x.shape[0], x.shape[1]))
    comps = [e1]
    if k > 1:
        _, sv, vt = np.linalg.svd(rest, full_matrices=False)          # [.], [r, D]
        for v in vt[: k - 1]:
            i = int(np.argmax(np.abs(v)))
            comps.append(v * np.sign(v[i]))                           # deterministic sign, as sklearn's
    c = np.stack(comps)                                               # [k, D]
    coords = xc @ c.T                                                 # [N, k]
    evr = (coords ** 2).sum(axis=0) / total                           # [k]
    names = ("average arrow", *(f"PC{i + 1} of the rest" for i in range(k - 1)))
    return PCAResult(coords=coords, explained_variance_ratio=evr, components=c, mean=mean, names=names)


@dataclass(frozen=True, eq=False)
class WordMap:
    """A word set placed on its first principal components, with the arrows to draw."""

    vectors: WordVectors
    pca: PCAResult
    arrows: tuple[tuple[int, int], ...]   # (from, to) row indices into vectors.words

    @property
    def coords(self) -> np.ndarray:
        return self.pca.coords                                        # [N, k]


def word_map(lm, text_or_list: str | WordList, n_components: int = 2, multi_token: str = "mean",
             align_arrows: bool = False) -> WordMap:
    """PCA of a typed word list (see `parse_items`); pairs become arrows. Words that cannot be used
    are listed in `vectors.skipped`, and arrows touching them are dropped. With `align_arrows` (and at
    least one arrow) the first axis is the average arrow and the others PCA of the rest (`aligned_pca`)."""
    wl = parse_items(text_or_list) if isinstance(text_or_list, str) else text_or_list
    if not wl.words:
        raise EmptyWordError("The word list is empty.", "Type a few words, separated by commas.")
    wv = word_vectors(lm, wl.words, multi_token=multi_token)
    if len(wv.words) < 2:
        why = "; ".join(f"{w}: {r}" for w, r in wv.skipped[:3])
        raise WordError("A map needs at least two usable words." + (f" Left out: {why}" if why else ""),
                        "Add more words to the list.")
    arrows = []
    for a, b in wl.pairs:
        i, j = wv.index(" ".join(a.split())), wv.index(" ".join(b.split()))
        if i is not None and j is not None:
            arrows.append((i, j))
    if align_arrows and arrows:
        v = wv.vectors.astype(np.float64)                             # [N, D]
        mean_arrow = np.mean([v[j] - v[i] for i, j in arrows], axis=0)  # [D]
        p = aligned_pca(v, mean_arrow, n_components)
    else:
        p = pca(wv.vectors, n_components)
    return WordMap(vectors=wv, pca=p, arrows=tuple(arrows))


def arrow_alignment(wm: WordMap) -> float | None:
    """Mean cosine between the arrows' difference vectors (to − from) in the full space, over all
    pairs of arrows: 1 = all parallel, 0 = unrelated. None with fewer than two arrows. It checks that
    parallel-looking arrows in the 2-D picture really are parallel, not an effect of the projection."""
    if len(wm.arrows) < 2:
        return None
    v = wm.vectors.vectors.astype(np.float64)                         # [N, D]
    return _alignment(np.stack([v[j] - v[i] for i, j in wm.arrows]))  # [A, D] arrows


def _alignment(d: np.ndarray) -> float:
    u = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    c = u @ u.T                                                       # [A, A]
    return float(c[np.triu_indices(len(d), 1)].mean())


def random_pairs_alignment(wm: WordMap, trials: int = 200, seed: int = 0) -> tuple[float, float] | None:
    """The baseline for `arrow_alignment`: the same number of arrows between random pairs of the map's own
    words (the real pairs excluded where possible), as (mean, standard deviation) over `trials` draws.
    Word vectors share directions of their own, so random arrows are not at exactly 0 ± 1/√D."""
    n_arrows, n = len(wm.arrows), len(wm.vectors.words)
    if n_arrows < 2 or n < 3:
        return None
    v = wm.vectors.vectors.astype(np.float64)                         # [N, D]
    real = {tuple(a) for a in wm.arrows} | {(j, i) for i, j in wm.arrows}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(trials)):
        pairs = []
        while len(pairs) < n_arrows:
            i, j = (int(x) for x in rng.choice(n, size=2, replace=False))
            if (i, j) not in real or len(real) >= n * (n - 1):
                pairs.append((i, j))
        out.append(_alignment(np.stack([v[j] - v[i] for i, j in pairs])))
    return float(np.mean(out)), float(np.std(out))


@dataclass(frozen=True, eq=False)
class AnalogyMap:
    """The inputs of an analogy, the point sum(positive) − sum(negative) and its nearest tokens,
    on the first principal components of all of them."""

    labels: tuple[str, ...]      # [N] the words / tokens, then "a − b + c" for the target point
    kinds: tuple[str, ...]       # [N] "plus" | "minus" | "neighbour" | "target"
    vectors: np.ndarray          # [N, D]
    pca: PCAResult
    arrows: tuple[tuple[int, int], ...]   # b → a and c → target for a − b + c: equal and parallel

    @property
    def coords(self) -> np.ndarray:
        return self.pca.coords                                        # [N, k]


def analogy_map(lm, res: AnalogyResult, n_neighbours: int = 5, n_components: int = 2) -> AnalogyMap:
    """Place an analogy in one PCA picture. For a − b + c the arrows b → a and c → (a − b + c) are
    the same vector, so they stay exactly parallel and equally long in any linear projection; the
    question is only which real tokens lie near the arrow's tip."""
    e = embedding_matrix(lm).weight
    labels: list[str] = []
    kinds: list[str] = []
    vecs: list[np.ndarray] = []
    for kind, group in (("plus", res.positive), ("minus", res.negative)):
        for w in group:
            labels.append(w.label)
            kinds.append(kind)
            vecs.append(vector(lm, w))
    inputs = {i for w in (*res.positive, *res.negative) for i in w.ids}
    for n in res.neighbours:
        if kinds.count("neighbour") >= n_neighbours:
            break
        if n.id not in inputs:
            labels.append(n.text)
            kinds.append("neighbour")
            vecs.append(e[n.id])
    labels.append(res.expression)
    kinds.append("target")
    vecs.append(res.target)
    x = np.stack(vecs).astype(np.float64)                             # [N, D]
    arrows: list[tuple[int, int]] = []
    if len(res.positive) == 2 and len(res.negative) == 1:
        a, c, b, t = 0, 1, 2, len(labels) - 1
        arrows = [(b, a), (c, t)]
    return AnalogyMap(labels=tuple(labels), kinds=tuple(kinds), vectors=x, pca=pca(x, n_components),
                      arrows=tuple(arrows))


@dataclass(frozen=True, eq=False)
class Direction:
    """An axis such as woman − man: the mean of (to − from) over the given word pairs."""

    pairs: tuple[tuple[WordToken, WordToken], ...]   # (from, to)
    vector: np.ndarray      # [D] mean of (to − from)
    midpoint: np.ndarray    # [D] mean of the pairs' midpoints

    @property
    def name(self) -> str:
        a, b = self.pairs[0]
        return f"{b.word} − {a.word}"


@dataclass(frozen=True, eq=False)
class Projection:
    words: tuple[WordToken, ...]
    position: np.ndarray    # [N] −1 at the 'from' end, +1 at the 'to' end (midway = 0)
    cosine: np.ndarray      # [N] cosine between each word vector and the direction


def direction(lm, pairs: Sequence[tuple[str, str]], multi_token: str = "mean") -> Direction:
    """The direction from the first word of each pair to the second, averaged over the pairs."""
    if not pairs:
        raise EmptyWordError("A direction needs at least one pair of words.", "For example: man → woman.")
    rs = tuple((resolve(lm, a, multi_token), resolve(lm, b, multi_token)) for a, b in pairs)
    va = np.stack([vector(lm, a) for a, _ in rs]).astype(np.float64)  # [P, D]
    vb = np.stack([vector(lm, b) for _, b in rs]).astype(np.float64)  # [P, D]
    d = (vb - va).mean(axis=0)                                        # [D]
    if not np.linalg.norm(d) > 0:
        raise ExplainerError("The two ends of the direction are the same vector.", "Pick two different words.")
    return Direction(pairs=rs, vector=d, midpoint=((va + vb) / 2).mean(axis=0))


def project(dirn: Direction, vectors: np.ndarray, words: Sequence[WordToken] = ()) -> Projection:
    """Where each vector lies along the direction, scaled so that the (average) 'from' word sits at −1
    and the 'to' word at +1: position = 2 (v − midpoint)·d / |d|²."""
    x = np.asarray(vectors, np.float64)                               # [N, D]
    d = dirn.vector                                                   # [D]
    pos = 2.0 * (x - dirn.midpoint) @ d / float(d @ d)                # [N]
    cos = x @ d / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(d), 1e-12)  # [N]
    return Projection(words=tuple(words), position=pos, cosine=cos)
