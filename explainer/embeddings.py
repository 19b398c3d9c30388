"""Word vectors: the model's input embedding matrix as a space where directions mean something.

Everything here works on the *input* embedding matrix `lm.model.get_input_embeddings().weight`
([V, D]: one row per token). Many models (GPT-2, the bundled SmolLM2) reuse the same matrix as the
unembedding ("tied"); others (GPT-J, Pythia) learn a separate one. `matrix_note(lm)` says which.

Words -> tokens. A word is used as a person types it ("king") and looked up as the token it becomes in
the middle of a sentence, with its leading space (" king"); every result says which token string and id
were used. A word the tokenizer splits into several tokens ("naïve" -> " na" + "ïve") has no row of its
own: by default (`multi_token="mean"`) its vector is the **mean of its pieces' rows**, and the result is
flagged (`WordToken.is_mean`, `WordToken.note`); `multi_token="error"` raises `MultiTokenWordError`
instead. An empty word raises `EmptyWordError`; a word the tokenizer cannot represent (it yields the
unknown token, a special control token or nothing at all) raises `UnknownWordError`. All three are
`ExplainerError`s whose text says what to do.

Analogies use plain vector arithmetic on the raw rows, target = sum(positive) - sum(negative), and rank
every token of the vocabulary by cosine similarity with the target (the tokens of the inputs excluded by
default). The [V, D] matrix is converted to float32 numpy once per model and its row norms cached, so a
query over a 50k vocabulary is one matrix-vector product (~10-30 ms on a CPU).
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import ExplainerError
from .sampling import top_k
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


def vector(lm, wt: WordToken) -> np.ndarray:
    """The word's vector: its row, or the mean of its pieces' rows.  # [D]"""
    e = embedding_matrix(lm).weight
    return e[list(wt.ids)].mean(axis=0)                               # [D]


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


def top_cosine(weight: np.ndarray, norms: np.ndarray, target: np.ndarray, k: int,
               exclude: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the k rows most similar to `target`, best first."""
    tn = float(np.linalg.norm(target))
    if not np.isfinite(tn) or tn == 0.0:
        raise ExplainerError("The combined vector is zero, so no direction is left to compare with.",
                             "Use different words (for example king − man + woman).")
    scores = weight @ (target.astype(np.float32) / tn)               # [V]
    scores /= np.maximum(norms, 1e-12)
    ex = np.fromiter(exclude, dtype=np.int64)
    if ex.size:
        scores[ex] = -np.inf
    top = top_k(scores, max(1, min(int(k), scores.size - ex.size)))
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


def similarity(vectors: np.ndarray) -> Similarity:
    """Dot products and cosines between all pairs of rows. dot = cosine × both lengths: the dot
    product also grows with how long the vectors are, the cosine only looks at their directions."""
    x = np.asarray(vectors, np.float64)                               # [N, D]
    dot = x @ x.T                                                     # [N, N]
    norms = np.linalg.norm(x, axis=1)                                 # [N]
    cos = dot / np.maximum(np.outer(norms, norms), 1e-12)             # [N, N]
    return Similarity(dot=dot, cosine=np.clip(cos, -1.0, 1.0), norms=norms)


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
    d = np.stack([v[j] - v[i] for i, j in wm.arrows])                 # [A, D]
    u = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    c = u @ u.T                                                       # [A, A]
    return float(c[np.triu_indices(len(d), 1)].mean())


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


# -- in context: one word through the layers of several sentences ----------------------------------

@dataclass(frozen=True, eq=False)
class WordInContext:
    sentence: str
    position: int                 # token index in the trace
    pieces: tuple[str, ...]       # the token(s) of the word in this sentence
    vectors: np.ndarray           # [L+1, D] residual stream at the word's (last) token


@dataclass(frozen=True, eq=False)
class ContextAnalysis:
    word: str
    contexts: tuple[WordInContext, ...]
    coords: np.ndarray                    # [C, L+1, 2] PCA trajectory of each context through the layers
    explained_variance_ratio: np.ndarray  # [2]
    cosine: np.ndarray                    # [L+1, C, C] cosine between contexts at each layer boundary
    centered: bool                        # each layer's mean over all tokens of the sentences removed first
    pairs: tuple[tuple[int, int], ...] = field(default=())

    @property
    def n_points(self) -> int:
        return self.coords.shape[1]

    def pair_cosines(self) -> np.ndarray:
        """Cosine of each pair of contexts at each layer.  # [L+1, P]"""
        return np.stack([self.cosine[:, i, j] for i, j in self.pairs], axis=1) if self.pairs else \
            np.zeros((self.cosine.shape[0], 0))


def _token_spans(lm, tr) -> list[tuple[int, int]] | None:
    """Character span of each token of the trace in `tr.text` (None when the tokenizer cannot say)."""
    try:
        enc = lm.tokenizer(tr.text, add_special_tokens=True, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):
        return None
    ids, offs = list(enc["input_ids"]), list(enc["offset_mapping"])
    shift = len(ids) - tr.n_tokens
    if shift < 0 or [int(i) for i in ids[shift:]] != [int(i) for i in tr.token_ids]:
        return None
    return [(int(a), int(b)) for a, b in offs[shift:]]


def find_word(lm, tr, word: str) -> tuple[int, tuple[str, ...]]:
    """Token position of the first whole-word occurrence of `word` (any case) in the trace's text:
    the last token of the word, which has seen all of its pieces. Returns (position, pieces)."""
    w = " ".join(str(word or "").split())
    if not w:
        raise EmptyWordError("The word to follow is empty.", "Type a word that appears in every sentence, e.g. bank.")
    matches = list(re.finditer(rf"(?<!\w){re.escape(w)}(?!\w)", tr.text, flags=re.IGNORECASE))
    spans = _token_spans(lm, tr)
    if spans is not None:
        for m in matches:
            hit = [t for t, (a, b) in enumerate(spans) if b > a and a < m.end() and b > m.start()]
            if hit:
                return hit[-1], tuple(tr.tokens[t] for t in hit)
    else:  # no offsets: look for the word's own tokens in the trace
        for ids in (word_ids(lm, w), _encode(lm.tokenizer, w), _encode(lm.tokenizer, w.capitalize())):
            n = len(ids)
            for t in range(tr.n_tokens - n + 1):
                if [int(i) for i in tr.token_ids[t:t + n]] == ids:
                    return t + n - 1, tuple(tr.tokens[t:t + n])
    short = tr.text if len(tr.text) < 70 else tr.text[:67] + "…"
    raise WordError(f"“{w}” does not appear in the sentence “{short}”"
                    + (" (or only in the part cut off by the token limit)." if tr.truncated else "."),
                    "Use the word in every sentence, as a whole word.")


def in_context(lm, traces: Sequence, word: str, centered: bool = False) -> ContextAnalysis:
    """Follow `word` through the layers of several sentences (one Trace each).

    For each sentence, the residual stream at the word's token gives one vector per layer boundary
    (L+1 points: the embedding, then the output of every block). With `centered`, the mean over all
    tokens of all the sentences at that layer is subtracted first (it removes a large part shared by
    every token, so the differences between contexts show more clearly). Vectors are then scaled to
    length 1 (only direction matters: the next block normalises its input) for a 2-D PCA of all
    points together, and cosines between contexts are taken at each layer.
    """
    if len(traces) < 2:
        raise ExplainerError("Comparing contexts needs at least two sentences.", "Add another sentence.")
    ctx = []
    for tr in traces:
        pos, pieces = find_word(lm, tr, word)
        ctx.append(WordInContext(sentence=tr.text, position=pos, pieces=pieces,
                                 vectors=np.asarray(tr.resid[:, pos, :], np.float64)))  # [L+1, D]
    x = np.stack([c.vectors for c in ctx])                            # [C, L+1, D]
    if centered:
        # the first token of a sentence carries huge "attention sink" values; leave it out of the mean
        allv = np.concatenate([np.asarray(tr.resid[:, 1:] if tr.n_tokens > 1 else tr.resid, np.float64)
                               for tr in traces], axis=1)             # [L+1, N, D]
        x = x - allv.mean(axis=1)[None]                               # [C, L+1, D]
    n = np.linalg.norm(x, axis=-1, keepdims=True)                     # [C, L+1, 1]
    u = x / np.maximum(n, 1e-12)                                      # [C, L+1, D]
    cos = np.clip(np.einsum("ild,jld->lij", u, u), -1.0, 1.0)         # [L+1, C, C]
    c, lp1, d = u.shape
    p = pca(u.reshape(c * lp1, d), n_components=2)
    coords = p.coords.reshape(c, lp1, -1)                             # [C, L+1, 2]
    if coords.shape[-1] < 2:
        coords = np.concatenate([coords, np.zeros((c, lp1, 2 - coords.shape[-1]))], axis=-1)
    evr = np.pad(p.explained_variance_ratio, (0, 2 - p.explained_variance_ratio.size))
    pairs = tuple((i, j) for i in range(c) for j in range(i + 1, c))
    return ContextAnalysis(word=" ".join(word.split()), contexts=tuple(ctx), coords=coords,
                           explained_variance_ratio=evr, cosine=cos, centered=centered, pairs=pairs)


# -- presets for the page (and its tests) ---------------------------------------------------------

# Word sets that show structure. `a → b` pairs are drawn as arrows: parallel arrows are the picture
# of "the same direction means the same thing".
MAP_PRESETS: dict[str, str] = {
    "Royalty & gender": "man → woman\nking → queen\nboy → girl\nprince → princess\nfather → mother\n"
                        "brother → sister\nuncle → aunt",
    "Countries & capitals": "France → Paris\nGermany → Berlin\nItaly → Rome\nSpain → Madrid\nJapan → Tokyo\n"
                            "Russia → Moscow\nChina → Beijing\nEgypt → Cairo",
    "Singular & plural": "cat → cats\ndog → dogs\nhouse → houses\ncar → cars\ntree → trees\nbook → books\n"
                         "child → children\nmouse → mice",
    "Verb tenses": "walk → walked\nrun → ran\ngo → went\neat → ate\nsee → saw\nwrite → wrote\ntake → took",
    "Numbers": "one → two → three → four → five → six → seven → eight → nine → ten\ntwenty, hundred, thousand",
    "Colours": "red, orange, yellow, green, blue, purple, pink, brown, black, white, grey",
}

# a − b + c, as (a, b, c)
ANALOGY_PRESETS: dict[str, tuple[str, str, str]] = {
    "king − man + woman": ("king", "man", "woman"),
    "Paris − France + Germany": ("Paris", "France", "Germany"),
    "cats − cat + dog": ("cats", "cat", "dog"),
    "went − go + eat": ("went", "go", "eat"),
    "bigger − big + small": ("bigger", "big", "small"),
    "actor − man + woman": ("actor", "man", "woman"),
    "children − child + mouse": ("children", "child", "mouse"),
    "walked − walk + run": ("walked", "walk", "run"),
    "Tokyo − Japan + Italy (a miss)": ("Tokyo", "Japan", "Italy"),
}

# An axis (pairs from → to) and words to place on it.
DIRECTION_PRESETS: dict[str, tuple[str, str]] = {
    "woman − man": ("man → woman\nboy → girl\nking → queen\nfather → mother\nbrother → sister",
                    "doctor, nurse, engineer, teacher, actor, actress, soldier, dancer, boss, secretary, "
                    "prince, princess, uncle, aunt, son, daughter"),
    "plural − singular": ("cat → cats\ndog → dogs\ncar → cars\nhouse → houses\nbook → books",
                          "apple, apples, bird, birds, mouse, mice, child, children, person, people, "
                          "sheep, news, glasses"),
    "past − present": ("walk → walked\nplay → played\ngo → went\nsee → saw\ntake → took",
                       "run, ran, eat, ate, write, wrote, jump, jumped, sing, sang, is, was, will, yesterday, "
                       "tomorrow"),
    "capital − country": ("France → Paris\nGermany → Berlin\nItaly → Rome\nJapan → Tokyo",
                          "Spain, Madrid, Russia, Moscow, Egypt, Cairo, China, Beijing, London, England, city, "
                          "nation"),
}

# The same word in sentences where it means different things. A GPT reads left to right, so the
# words that give the meaning away come *before* the word followed.
CONTEXT_PRESETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bank: river or money": ("bank", (
        "We had a picnic on the grassy river bank",
        "The fisherman sat on the muddy bank",
        "She deposited her salary at the bank",
        "To get a mortgage he went to the bank",
    )),
    "model: runway or machine learning": ("model", (
        "On the catwalk at Paris fashion week, the famous model",
        "The photographer took pictures of the fashion model",
        "We trained the neural network language model",
        "The machine learning model",
    )),
}
