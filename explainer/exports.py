"""The data behind the app's charts as CSV text, for a spreadsheet or a notebook (no Streamlit here).

One function per table, each reading the same engine result the chart draws: the next-token distribution,
compare mode's two next-token distributions, one head's attention pattern, a word's nearest neighbours, the
logit-lens grid, where the parameters are, and the Tiny LM lab's training curves. Tokens are written exactly as
the model reads them (a leading space is kept); probabilities and weights at full float32 precision, entropies
in bits.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

import numpy as np

from .anatomy import ParamCount
from .compare import Change
from .lens import LensResult
from .makemore import TrainProgress
from .sampling import Distribution
from .vectors import Neighbour

LN2 = math.log(2.0)


def _csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def _num(x) -> str:
    """A number as a spreadsheet reads it back exactly: whole numbers plain, others with float32's 9 digits."""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.9g}"


def distribution(dist: Distribution, ids: Sequence[int], strings: Sequence[str]) -> str:
    """The tokens shown, most likely first: rank, token, id, logit, probability after temperature alone, the
    probability a draw uses (after every filter), and what the filters did to it."""
    rows = [(r + 1, s, int(i), _num(dist.logits[i]), _num(dist.tempered[i]), _num(dist.probs[i]), dist.fate(int(i)))
            for r, (i, s) in enumerate(zip(ids, strings))]
    return _csv(("rank", "token", "id", "logit", "probability after temperature", "probability sampled", "fate"),
                rows)


def next_token_change(change: Change, strings: Sequence[str], prompt_a: str, prompt_b: str) -> str:
    """Compare mode's tokens, largest change first: token, id, probability after each prompt, the change."""
    rows = [(s, int(i), _num(a), _num(b), _num(b - a))
            for s, i, a, b in zip(strings, change.ids, change.p_a, change.p_b)]
    return _csv(("token", "id", f"probability after: {prompt_a}", f"probability after: {prompt_b}", "change"), rows)


def pattern(weights: np.ndarray, tokens: Sequence[str], layer: int, head: int) -> str:
    """One head's attention pattern [T, T], one row per (query, key) pair a causal model allows (key ≤ query)."""
    w = np.asarray(weights)
    rows = [(layer, head, q, tokens[q], k, tokens[k], _num(w[q, k])) for q in range(w.shape[0]) for k in range(q + 1)]
    return _csv(("layer", "head", "query position", "query token", "key position", "key token", "weight"), rows)


def neighbours(found: Sequence[Neighbour]) -> str:
    """Nearest neighbours, best first: rank, the word or token, its row in the table, the cosine similarity."""
    return _csv(("rank", "token", "row", "cosine"), [(r + 1, n.text, int(n.id), _num(n.cosine))
                                                     for r, n in enumerate(found)])


def lens_grid(res: LensResult, tokens: Sequence[str], positions: Sequence[int]) -> str:
    """The logit lens at the positions shown: for each row (the embeddings, then after each block) and position,
    the top guess, its probability and the entropy of that row's distribution in bits."""
    rows = []
    for r in range(res.ids.shape[0]):
        after = "embeddings" if r == 0 else f"after block {r - 1}"
        for p in positions:
            rows.append((after, p, tokens[p], res.strings[r, p, 0], int(res.ids[r, p, 0]), _num(res.probs[r, p, 0]),
                         _num(res.entropy[r, p] / LN2)))
    return _csv(("row", "position", "input token", "top guess", "guess id", "probability", "entropy (bits)"), rows)


def parameters(pc: ParamCount) -> str:
    """Where the parameters are: each part's count and share of the model (tied weights counted once)."""
    parts = [("token embedding", pc.embedding), ("position embedding", pc.positional),
             ("attention (all blocks)", pc.attention), ("MLP (all blocks)", pc.mlp),
             ("norms (all blocks)", pc.n_layers * pc.norms_per_layer), ("final norm", pc.final_norm),
             ("unembedding" if not pc.tied else "unembedding bias", pc.unembedding)]
    rows = [(name, int(n), _num(n / pc.total)) for name, n in parts if n]
    return _csv(("part", "parameters", "share of the model"), rows + [("total", int(pc.total), "1")])


def training(history: Sequence[TrainProgress]) -> str:
    """The Tiny LM lab's curves: loss on the whole train and dev splits, and the mean minibatch loss, per step."""
    return _csv(("step", "train loss", "dev loss", "mean minibatch loss"),
                [(h.step, _num(h.train_loss), _num(h.dev_loss), _num(h.batch_loss)) for h in history])
