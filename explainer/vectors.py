"""Word vectors: the model's input embedding matrix as a space where directions mean something.

Everything here works on the *input* embedding matrix `lm.model.get_input_embeddings().weight`
([V, D]: one row per token). Many models (GPT-2, the bundled SmolLM2) reuse the same matrix as the
unembedding ("tied"); others (GPT-J, Pythia) learn a separate one. `matrix_note(lm)` says which.
Typed words become tokens by the rule in `explainer.words`.

Analogies use plain vector arithmetic on the raw rows, target = sum(positive) - sum(negative), and rank
every token of the vocabulary by cosine similarity with the target (the tokens of the inputs excluded by
default). The [V, D] matrix is converted to float32 numpy once per model and its row norms cached, so a
query over a 50k vocabulary is one matrix-vector product (~10-30 ms on a CPU).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .errors import ExplainerError
from .sampling import top_k
from .tokens import token_strings
from .words import MAX_WORDS, EmptyWordError, WordError, WordToken, _encode, resolve

# -- the matrix, cached once per model ------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class EmbeddingMatrix:
    weight: np.ndarray     # [V, D] float32, read-only (a view of the model's weights on a float32 CPU model)
    norms: np.ndarray      # [V]    row norms


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def embedding_matrix(lm) -> EmbeddingMatrix:
    """The input embedding matrix as float32 numpy with its row norms, computed once per model
    (the model is shared and read-only; the cache entry goes when the model does)."""
    key = lm.model
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
    w = lm.model.get_input_embeddings().weight.detach()
    e = w.float().cpu().numpy()                                       # [V, D]; no copy for a float32 CPU model
    e = e.view()
    e.flags.writeable = False
    norms = np.linalg.norm(e, axis=1).astype(np.float32)              # [V]
    norms.flags.writeable = False
    mat = EmbeddingMatrix(weight=e, norms=norms)
    with _LOCK:
        _CACHE[key] = mat
    return mat


def matrix_note(lm) -> str:
    """One sentence saying which matrix the vectors come from."""
    v, d = lm.model.get_input_embeddings().weight.shape
    tied = ("It is tied: the model uses the same matrix again at the end to turn vectors back into "
            "next-token scores.") if lm.tied_embeddings else (
            "It is not tied: the model has a separate output (unembedding) matrix for its predictions.")
    return f"Vectors are rows of the input embedding matrix ({v:,} tokens × {d} numbers). {tied}"


def vector(lm, wt: WordToken) -> np.ndarray:
    """The word's vector: its row, or the mean of its pieces' rows.  # [D]"""
    e = embedding_matrix(lm).weight
    return e[list(wt.ids)].mean(axis=0)                               # [D]


@dataclass(frozen=True, eq=False)
class WordVectors:
    """A set of words, the tokens used for them and their vectors."""

    words: tuple[WordToken, ...]
    vectors: np.ndarray                          # [N, D]
    skipped: tuple[tuple[str, str], ...] = ()    # (word, why) for words left out

    @property
    def labels(self) -> list[str]:
        return [w.label for w in self.words]

    @property
    def notes(self) -> list[str]:
        return [w.note for w in self.words if w.note]

    def index(self, word: str) -> int | None:
        for i, w in enumerate(self.words):
            if w.word == word:
                return i
        return None


def word_vectors(lm, words: Iterable[str], multi_token: str = "mean", skip_bad: bool = True,
                 max_words: int = MAX_WORDS) -> WordVectors:
    """Resolve every word and stack their vectors. With `skip_bad`, words that fail are listed in
    `skipped` (with the reason) instead of raising."""
    got: list[WordToken] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for w in words:
        try:
            wt = resolve(lm, w, multi_token=multi_token)
        except WordError as e:
            if not skip_bad:
                raise
            skipped.append((str(w), str(e)))
            continue
        if wt.word in seen:
            continue
        seen.add(wt.word)
        got.append(wt)
    if len(got) > max_words:
        skipped.extend((w.word, f"only the first {max_words} words are used") for w in got[max_words:])
        got = got[:max_words]
    d = embedding_matrix(lm).weight.shape[1]
    vecs = np.stack([vector(lm, w) for w in got]) if got else np.zeros((0, d), np.float32)  # [N, D]
    return WordVectors(words=tuple(got), vectors=vecs, skipped=tuple(skipped))


# -- nearest neighbours and analogies --------------------------------------------------------------

@dataclass(frozen=True)
class Neighbour:
    text: str        # the token (or GloVe word) as text
    id: int          # its row in the matrix
    cosine: float


def _expression(positive: Sequence[str], negative: Sequence[str]) -> str:
    """An analogy as it is read: "king − man + woman" (the first positive word, the negative ones,
    then the other positive ones)."""
    s = " + ".join(positive[:1])
    for w in negative:
        s += f" − {w}"
    for w in positive[1:]:
        s += f" + {w}"
    return s


@dataclass(frozen=True, eq=False)
class AnalogyResult:
    positive: tuple[WordToken, ...]
    negative: tuple[WordToken, ...]
    neighbours: tuple[Neighbour, ...]     # best first
    target: np.ndarray                    # [D] sum(positive) - sum(negative)
    excluded: tuple[int, ...]             # ids left out of the ranking

    @property
    def expression(self) -> str:
        return _expression([w.word for w in self.positive], [w.word for w in self.negative])

    @property
    def notes(self) -> list[str]:
        return [w.note for w in (*self.positive, *self.negative) if w.note]

    @property
    def best(self) -> Neighbour:
        return self.neighbours[0]


def cosines(weight: np.ndarray, norms: np.ndarray, target: np.ndarray, exclude: Iterable[int] = ()) -> np.ndarray:
    """Every row's cosine with `target`; the rows in `exclude` get -inf (left out of any ranking).  # [V]"""
    tn = float(np.linalg.norm(target))
    if not np.isfinite(tn) or tn == 0.0:
        raise ExplainerError("The combined vector is zero, so no direction is left to compare with.",
                             "Use different words (for example king − man + woman).")
    scores = weight @ (target.astype(np.float32) / tn)               # [V]
    scores /= np.maximum(norms, 1e-12)
    ex = np.fromiter(exclude, dtype=np.int64)
    if ex.size:
        scores[ex] = -np.inf
    return scores


def top_cosine(weight: np.ndarray, norms: np.ndarray, target: np.ndarray, k: int,
               exclude: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the k rows most similar to `target`, best first."""
    scores = cosines(weight, norms, target, exclude)
    left = int(np.isfinite(scores).sum())
    top = top_k(scores, max(1, min(int(k), left)))
    return top, scores[top]


def _neighbours(lm, ids: np.ndarray, cos: np.ndarray) -> tuple[Neighbour, ...]:
    texts = token_strings(lm.tokenizer, ids)
    return tuple(Neighbour(text=t, id=int(i), cosine=float(c)) for t, i, c in zip(texts, ids, cos))


def variant_ids(lm, word: str) -> set[int]:
    """Single tokens that spell `word` with another case or without/with the leading space
    ("Paris", " paris", " PARIS"...): excluded on request so that an analogy does not just answer
    with an input in another spelling."""
    out: set[int] = set()
    w = word.strip()
    forms = {w, w.lower(), w.capitalize(), w.upper()}
    for f in forms:
        for text in (f, f" {f}"):
            ids = _encode(lm.tokenizer, text)
            if len(ids) == 1:
                out.add(int(ids[0]))
    return out


def spelling_variants(lm, word: str, neighbours: Sequence[Neighbour]) -> int:
    """How many of `neighbours` are `word` itself in another spelling: another capitalisation, with or
    without the leading space (the tokens of variant_ids)."""
    ids = variant_ids(lm, word)
    return sum(n.id in ids for n in neighbours)


def analogy(lm, positive: Sequence[str], negative: Sequence[str], k: int = 10, exclude_inputs: bool = True,
            multi_token: str = "mean", exclude_variants: bool = False) -> AnalogyResult:
    """Vector arithmetic on the input embeddings: sum(positive) − sum(negative), ranked by cosine.

    analogy(lm, ["king", "woman"], ["man"]) is king − man + woman. `exclude_inputs` leaves the input
    words' tokens out of the ranking (the usual convention: otherwise "king" itself often wins);
    `exclude_variants` also leaves out other spellings of the inputs (" King", "king" without space).
    """
    if not positive:
        raise EmptyWordError("An analogy needs at least one word to add.", "Type a word, for example king.")
    pos = tuple(resolve(lm, w, multi_token) for w in positive)
    neg = tuple(resolve(lm, w, multi_token) for w in negative)
    mat = embedding_matrix(lm)
    target = sum(vector(lm, w) for w in pos) - (sum(vector(lm, w) for w in neg) if neg else 0.0)  # [D]
    excl: set[int] = set()
    if exclude_inputs:
        for w in (*pos, *neg):
            excl.update(w.ids)
            if exclude_variants:
                excl.update(variant_ids(lm, w.word))
    ids, cos = top_cosine(mat.weight, mat.norms, np.asarray(target, np.float32), k, excl)
    return AnalogyResult(positive=pos, negative=neg, neighbours=_neighbours(lm, ids, cos),
                         target=np.asarray(target, np.float32), excluded=tuple(sorted(excl)))


def nearest_by_distance(lm, vec: np.ndarray, exclude: Iterable[int] = ()) -> Neighbour:
    """The token whose vector is nearest to `vec` by plain (Euclidean) distance; its `cosine` field
    holds the cosine, for comparison with the cosine ranking."""
    mat = embedding_matrix(lm)
    t = np.asarray(vec, np.float32)                                   # [D]
    d2 = mat.norms.astype(np.float64) ** 2 - 2.0 * (mat.weight @ t) + float(t @ t)  # [V] |w - t|²
    ex = np.fromiter(exclude, dtype=np.int64)
    if ex.size:
        d2[ex] = np.inf
    i = int(np.argmin(d2))
    cos = float(mat.weight[i] @ t / max(float(mat.norms[i]) * float(np.linalg.norm(t)), 1e-12))
    return _neighbours(lm, np.array([i]), np.array([cos]))[0]


def neighbours(lm, word: str, k: int = 10, exclude_self: bool = True, multi_token: str = "mean"
               ) -> tuple[WordToken, tuple[Neighbour, ...]]:
    """The k tokens whose input vectors point most nearly the same way as `word`'s."""
    wt = resolve(lm, word, multi_token)
    return wt, neighbours_of_vector(lm, vector(lm, wt), k, wt.ids if exclude_self else ())


def neighbours_of_vector(lm, vec: np.ndarray, k: int = 10, exclude: Iterable[int] = ()) -> tuple[Neighbour, ...]:
    mat = embedding_matrix(lm)
    ids, cos = top_cosine(mat.weight, mat.norms, np.asarray(vec, np.float32), k, exclude)
    return _neighbours(lm, ids, cos)


# -- similarity, PCA, directions ---------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Similarity:
    dot: np.ndarray      # [N, N]  v_i · v_j
    cosine: np.ndarray   # [N, N]  v_i · v_j / (|v_i| |v_j|)
    norms: np.ndarray    # [N]     |v_i|

    def closest(self, i: int) -> tuple[int, int]:
        """The other word closest to word i by dot product, and by cosine."""
        dot, cos = self.dot[i].astype(np.float64), self.cosine[i].astype(np.float64)   # copies
        dot[i] = cos[i] = -np.inf
        return int(dot.argmax()), int(cos.argmax())

    def disagreement(self) -> Disagreement | None:
        """The first word whose closest other word differs by dot product and by cosine (None if the two
        measures agree for every word), and whether the dot product's pick is the longer vector."""
        for i in range(len(self.norms)):
            by_dot, by_cos = self.closest(i)
            if by_dot != by_cos:
                return Disagreement(i, by_dot, by_cos, bool(self.norms[by_dot] > self.norms[by_cos]))
        return None


@dataclass(frozen=True)
class Disagreement:
    word: int
    by_dot: int
    by_cosine: int
    dot_pick_longer: bool   # with a positive cosine, the dot product's pick wins on length


def similarity(vectors: np.ndarray) -> Similarity:
    """Dot products and cosines between all pairs of rows. dot = cosine × both lengths: the dot
    product also grows with how long the vectors are, the cosine only looks at their directions."""
    x = np.asarray(vectors, np.float64)                               # [N, D]
    dot = x @ x.T                                                     # [N, N]
    norms = np.linalg.norm(x, axis=1)                                 # [N]
    cos = dot / np.maximum(np.outer(norms, norms), 1e-12)             # [N, N]
    return Similarity(dot=dot, cosine=np.clip(cos, -1.0, 1.0), norms=norms)
