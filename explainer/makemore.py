"""A tiny language model you can train live: a character-level MLP (Bengio et al. 2003, as in
Karpathy's makemore part 2) on the US census first names of the `names` package.

Each example is `block_size` previous characters -> the next character. Characters are looked up in a
learned embedding table C [27, n_embd], the rows are concatenated, passed through one tanh hidden
layer and a softmax over the 27 symbols (a–z plus '.', which both pads the start and ends a name).

Everything is seeded with its own `torch.Generator`, so a given seed gives the same split, the same
initial weights, the same minibatches and the same sampled names on every machine.
"""

from __future__ import annotations

import importlib.util
import math
import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ExplainerError, PromptError, SettingError

CHARS = "." + "abcdefghijklmnopqrstuvwxyz"     # index 0 is the start/end symbol
STOI = {c: i for i, c in enumerate(CHARS)}
VOCAB = len(CHARS)                             # 27
UNIFORM_LOSS = math.log(VOCAB)                 # 3.296: the loss of guessing uniformly
VOWELS = frozenset("aeiou")
_NAME_FILES = ("dist.female.first", "dist.male.first")


# -- data -----------------------------------------------------------------------------------------

def census_names() -> tuple[str, ...]:
    """Every distinct US census first name (female and male lists), lowercased, in file order."""
    spec = importlib.util.find_spec("names")
    if spec is None or not spec.submodule_search_locations:
        raise ExplainerError("The US census names (the `names` package) are not installed.",
                             "Install them with `pip install names`.")
    folder = Path(list(spec.submodule_search_locations)[0])
    seen: dict[str, None] = {}
    for fname in _NAME_FILES:
        for line in (folder / fname).read_text(encoding="ascii").splitlines():
            if line.strip():
                name = line.split()[0].lower()
                if name.isascii() and name.isalpha():
                    seen[name] = None
    return tuple(seen)


def encode(words, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sliding windows: for every character of every word (and the final '.'), the `block_size`
    characters before it (padded with '.'). Returns X [N, block_size] and Y [N]."""
    xs, ys = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = STOI[ch]
            xs.append(context)
            ys.append(ix)
            context = context[1:] + [ix]
    x = torch.tensor(xs, dtype=torch.long).reshape(-1, block_size)  # [N, block]
    y = torch.tensor(ys, dtype=torch.long)                          # [N]
    return x, y


@dataclass(frozen=True)
class Split:
    words: tuple[str, ...]
    x: torch.Tensor            # [N, block_size] context indices
    y: torch.Tensor            # [N] next-character index


@dataclass(frozen=True)
class Dataset:
    block_size: int
    train: Split
    dev: Split
    test: Split
    seed: int


def load_data(block_size: int = 3, seed: int = 42, n_names: int | None = None) -> Dataset:
    """Shuffle the names with `seed`, keep the first `n_names` (all by default) and split them
    80/10/10 into train/dev/test by name (no name is in two splits)."""
    if not 1 <= int(block_size) <= 16:
        raise SettingError(f"A context of {block_size} characters is out of range.",
                          "Pick a context length between 1 and 16 characters.")
    words = list(census_names())
    random.Random(seed).shuffle(words)
    if n_names is not None:
        words = words[: max(10, int(n_names))]
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))

    def split(ws):
        return Split(tuple(ws), *encode(ws, block_size))

    return Dataset(block_size, split(words[:n1]), split(words[n1:n2]), split(words[n2:]), seed)


# -- the model --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MLPConfig:
    block_size: int = 3        # characters of context
    n_embd: int = 2            # size of each character's embedding vector (2: draw it as it is)
    n_hidden: int = 100        # tanh units in the hidden layer

    @property
    def n_params(self) -> int:
        """C [27, E] + W1 [block*E, H] + b1 [H] + W2 [H, 27] + b2 [27]."""
        e, h = self.n_embd, self.n_hidden
        return VOCAB * e + self.block_size * e * h + h + h * VOCAB + VOCAB


class CharMLP:
    """Embedding table C, one tanh hidden layer, softmax output. Parameters are plain tensors."""

    def __init__(self, config: MLPConfig, seed: int = 0):
        self.config = config
        g = torch.Generator().manual_seed(seed)
        fan_in = config.block_size * config.n_embd
        self.C = torch.randn(VOCAB, config.n_embd, generator=g)                                 # [27, E]
        # Kaiming init for tanh (gain 5/3) keeps the hidden units out of saturation at the start;
        # a small output layer makes the first prediction nearly uniform: loss ≈ ln(27).
        self.W1 = torch.randn(fan_in, config.n_hidden, generator=g) * (5 / 3) / fan_in ** 0.5   # [B*E, H]
        self.b1 = torch.randn(config.n_hidden, generator=g) * 0.01                              # [H]
        self.W2 = torch.randn(config.n_hidden, VOCAB, generator=g) * 0.01                        # [H, 27]
        self.b2 = torch.zeros(VOCAB)                                                             # [27]
        for p in self.parameters:
            p.requires_grad_(True)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.C, self.W1, self.b1, self.W2, self.b2]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.C[x]                                                    # [N, block, E]
        h = torch.tanh(emb.view(emb.shape[0], -1) @ self.W1 + self.b1)     # [N, H]
        return h @ self.W2 + self.b2                                       # [N, 27]

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(x), y)

    @torch.no_grad()
    def evaluate(self, split: Split) -> float:
        return float(self.loss(split.x, split.y))

    def embedding(self) -> np.ndarray:
        return self.C.detach().numpy().copy()                              # [27, E]

    def sgd_step(self, lr: float) -> None:
        with torch.no_grad():
            for p in self.parameters:
                p -= lr * p.grad
                p.grad = None


_THREADS_LOCK = threading.Lock()
_threads_held: list = [0, None]   # callers inside cpu_threads now, the count they found


@contextmanager
def cpu_threads(n: int | None = 1):
    """This model's matrices are tiny: thread hand-offs cost more than they save, and on a busy machine far
    more (the page's default run: 1.7 s on one thread, 23-44 s on both of two shared cores, measured
    2026-12). So the lab's computation runs on one thread; `None` leaves torch's setting alone.

    torch's thread count is process-wide (`torch.set_num_threads` in one thread also sets it for every
    thread started later, and each Streamlit rerun is a new thread), and two overlapping sessions that
    each saved and restored it could leave the whole server on one thread. So the callers share one
    process-wide lowering: the first one in saves the count and lowers it, the last one out restores
    it, under a lock, whatever order they overlap in. Held only around computation, never across a
    `yield`, so other sessions' runs started meanwhile are on one thread for a fraction of a second at
    most per chunk."""
    if n is None:
        yield
        return
    with _THREADS_LOCK:
        if _threads_held[0] == 0:
            _threads_held[1] = torch.get_num_threads()
            torch.set_num_threads(max(1, min(int(n), _threads_held[1])))
        _threads_held[0] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_held[0] -= 1
            if _threads_held[0] == 0:
                torch.set_num_threads(_threads_held[1])


# -- training -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainProgress:
    step: int                  # optimisation steps done so far
    batch_loss: float          # mean minibatch loss over the steps since the last report
    train_loss: float          # loss on the whole train split
    dev_loss: float            # loss on the whole dev split (never trained on)
    lr: float                  # learning rate used for the last step
    embedding: np.ndarray = field(repr=False)   # [27, E] the embedding table now


def train(model: CharMLP, data: Dataset, steps: int = 2000, lr: float = 0.1, batch_size: int = 32,
          eval_every: int = 100, seed: int = 0, decay_at: float = 0.75, threads: int | None = 1, start_step: int = 0,
          ) -> Iterator[TrainProgress]:
    """Minibatch SGD on the train split. Yields progress before the first step (the model as it is),
    every `eval_every` steps and at the end; steps are numbered from `start_step` so that a second
    call continues the curves of the first. The learning rate drops tenfold after `decay_at` of the
    steps. `batch_size=0` trains on the whole train split each step."""
    if data.block_size != model.config.block_size:
        raise SettingError("The data's context length differs from the model's.",
                          "Train a new model after changing the context length.")
    if steps < 1 or lr <= 0:
        raise SettingError("Training needs at least one step and a positive learning rate.",
                          "Raise the number of steps or the learning rate.")
    g = torch.Generator().manual_seed(seed)
    n = data.train.x.shape[0]
    eval_every = max(1, int(eval_every))

    def report(step: int, batch_loss: float, step_lr: float) -> TrainProgress:
        p = snapshot(model, data, start_step + step, step_lr, threads)
        return p if step == 0 else replace(p, batch_loss=batch_loss)

    yield report(0, 0.0, lr)
    step, step_lr = 0, lr
    while step < steps:
        first, chunk_end = step + 1, min(steps, (step // eval_every + 1) * eval_every)
        running = 0.0
        with cpu_threads(threads):
            for step in range(first, chunk_end + 1):
                if batch_size and batch_size < n:
                    ix = torch.randint(0, n, (batch_size,), generator=g)    # [B]
                    x, y = data.train.x[ix], data.train.y[ix]               # [B, block], [B]
                else:
                    x, y = data.train.x, data.train.y                       # [N, block], [N]
                loss = model.loss(x, y)
                loss.backward()
                step_lr = lr if step <= decay_at * steps else lr / 10
                model.sgd_step(step_lr)
                running += loss.item()
        yield report(step, running / (chunk_end - first + 1), step_lr)


def snapshot(model: CharMLP, data: Dataset, step: int = 0, lr: float = 0.0,
             threads: int | None = 1) -> TrainProgress:
    """The model as it is now, scored on the whole train and dev splits (no training)."""
    with cpu_threads(threads):
        tr, dv = model.evaluate(data.train), model.evaluate(data.dev)
    return TrainProgress(step, tr, tr, dv, lr, model.embedding())


def train_to_end(model: CharMLP, data: Dataset, **kw) -> list[TrainProgress]:
    return list(train(model, data, **kw))


# -- the learning-rate finder ---------------------------------------------------------------------

@dataclass(frozen=True)
class LRSweep:
    lrs: np.ndarray            # [S] increasing learning rates, one per step
    losses: np.ndarray         # [S] minibatch loss at each step (before that step's update)
    smoothed: np.ndarray       # [S] exponential moving average of the losses
    suggested: float           # a third of the rate with the lowest smoothed loss: still falling fast,
                               # safely short of where the loss blows up

    @property
    def n_run(self) -> int:
        """How many steps the sweep ran before it stopped (all of them unless the loss blew up)."""
        return int(np.isfinite(self.losses).sum())

    @property
    def last_lr(self) -> float:
        """The learning rate of the sweep's last step that ran."""
        return float(self.lrs[max(self.n_run - 1, 0)])


def lr_finder(config: MLPConfig, data: Dataset, lr_min: float = 1e-3, lr_max: float = 10.0, steps: int = 300,
              batch_size: int = 32, seed: int = 0, threads: int | None = 1) -> LRSweep:
    """Train a fresh model for `steps` steps while the learning rate grows exponentially from
    `lr_min` to `lr_max`; the loss first barely moves, then falls, then blows up. The sweep stops
    once the loss is far above its best (the rest of `losses` is NaN)."""
    model = CharMLP(config, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    lrs = np.geomspace(lr_min, lr_max, steps)                               # [S]
    losses = np.full(steps, np.nan)                                         # [S]
    n = data.train.x.shape[0]
    best = math.inf
    with cpu_threads(threads):
        for i, lr in enumerate(lrs):
            ix = torch.randint(0, n, (min(batch_size, n),), generator=g)   # [B]
            loss = model.loss(data.train.x[ix], data.train.y[ix])
            v = loss.item()
            if not math.isfinite(v) or v > 4 * best:
                break
            losses[i], best = v, min(best, v)
            loss.backward()
            model.sgd_step(float(lr))
    smoothed = np.full(steps, np.nan)                                       # [S]
    avg = losses[0]
    for i, v in enumerate(losses):
        if not np.isfinite(v):
            break
        avg = 0.9 * avg + 0.1 * v
        smoothed[i] = avg
    return LRSweep(lrs, losses, smoothed, float(lrs[int(np.nanargmin(smoothed))]) / 3)


# -- sampling and looking inside ------------------------------------------------------------------

@torch.no_grad()
def examples_of(word: str, block_size: int) -> list[tuple[str, str]]:
    """The (context, next character) training examples one name gives: '.' pads the start and marks the end."""
    ctx, out = "." * block_size, []
    for ch in word + ".":
        out.append((ctx, ch))
        ctx = (ctx + ch)[-block_size:]
    return out


def frames(n: int, most: int = 60) -> list[int]:
    """At most `most` evenly spaced indices of n snapshots, first and last included (an animation's frames)."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def sample(model: CharMLP, n: int = 10, seed: int = 0, temperature: float = 1.0, max_len: int = 30) -> list[str]:
    """Draw `n` new names, one character at a time, all `n` side by side, with a seeded generator: the
    same seed gives the same names. A name ends when the model picks '.' (or at `max_len` letters)."""
    g = torch.Generator().manual_seed(seed)
    context = torch.zeros(n, model.config.block_size, dtype=torch.long)    # [n, block]
    out = torch.zeros(n, max_len, dtype=torch.long)                         # [n, max_len]
    alive = torch.ones(n, dtype=torch.bool)                                 # [n]
    for t in range(max_len):
        logits = model.logits(context)                                      # [n, 27]
        probs = F.softmax(logits / max(temperature, 1e-4), dim=-1)          # [n, 27]
        ix = torch.multinomial(probs, 1, generator=g)[:, 0]                 # [n]
        alive &= ix != 0
        out[:, t] = torch.where(alive, ix, 0)
        if not alive.any():
            break
        context = torch.cat([context[:, 1:], ix[:, None]], dim=1)           # [n, block]
    return ["".join(CHARS[i] for i in row if i) for row in out.tolist()]


@torch.no_grad()
def next_char_probs(model: CharMLP, prefix: str) -> np.ndarray:
    """Probability of each of the 27 symbols after `prefix` (the start of a name; only its last
    `block_size` letters matter). Index 0, '.', means the name ends here."""
    text = prefix.strip().lower()
    bad = sorted({c for c in text if c not in STOI or c == "."})
    if bad:
        raise PromptError(f"The model only knows the letters a–z, not {' '.join(map(repr, bad))}.",
                          "Type the start of a name with plain letters.")
    context = ([0] * model.config.block_size + [STOI[c] for c in text])[-model.config.block_size:]
    return F.softmax(model.logits(torch.tensor([context])), dim=-1)[0].numpy()   # [27]


def embedding_2d(table: np.ndarray, basis: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of an embedding table [27, E]: the table itself when E is 2, else its projection
    on the top two principal directions (of `basis` when given, so that frames of one run share axes).
    Returns (coordinates [27, 2], the [E, 2] projection used)."""
    table = np.asarray(table, dtype=np.float64)                            # [27, E]
    if table.shape[1] <= 2:
        return np.pad(table, ((0, 0), (0, 2 - table.shape[1]))), np.eye(table.shape[1], 2)
    if basis is None:
        ref = table - table.mean(0)                                        # [27, E]
        basis = np.linalg.svd(ref, full_matrices=False)[2][:2].T           # [E, 2]
    return (table - table.mean(0)) @ basis, basis                          # [27, 2]


def vowel_spread(table: np.ndarray) -> float:
    """Mean distance between the five vowels over the mean distance between all 26 letters: 1 when
    vowels sit as far apart as letters in general, smaller as they gather together."""
    t = np.asarray(table, dtype=np.float64)                                # [27, E]
    d = np.linalg.norm(t[:, None] - t[None], axis=-1)                      # [27, 27]
    vow = [STOI[c] for c in sorted(VOWELS)]
    let = list(range(1, VOCAB))
    iv, il = np.triu_indices(len(vow), 1), np.triu_indices(len(let), 1)
    return float(d[np.ix_(vow, vow)][iv].mean() / d[np.ix_(let, let)][il].mean())


# -- overfitting ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OverfitResult:
    steps: np.ndarray          # [K]
    train: np.ndarray          # [K] loss on the few training names
    dev: np.ndarray            # [K] loss on the whole dev split (names never seen)
    n_train_names: int
    n_train_examples: int
    n_params: int

    @property
    def best_step(self) -> int:
        """Where the dev loss was lowest: the point to stop training (early stopping)."""
        return int(self.steps[int(np.argmin(self.dev))])

    @property
    def overfitted(self) -> bool:
        """Whether the dev loss ended clearly above its lowest point (by 0.01 or more: two different numbers
        at two decimals), i.e. training on past the best step made unseen names worse."""
        return bool(self.dev[-1] - self.dev.min() >= 0.01)

    @property
    def memorises(self) -> bool:
        """Whether the model has more parameters than there are training examples."""
        return self.n_params > self.n_train_examples


def overfit_demo(data: Dataset, n_names: int = 60, n_hidden: int = 300, n_embd: int = 10, steps: int = 600,
                 lr: float = 0.3, seed: int = 0, eval_every: int = 25, threads: int | None = 1) -> OverfitResult:
    """A big network on a handful of names: it memorises them (its train loss keeps falling) while its
    loss on the dev names, which it never sees, first falls and then climbs. Trains on the whole tiny
    train set each step; the dev split is the full one of `data`."""
    words = data.train.words[: max(2, int(n_names))]
    small = Dataset(data.block_size, Split(words, *encode(words, data.block_size)), data.dev, data.test, data.seed)
    model = CharMLP(MLPConfig(data.block_size, n_embd, n_hidden), seed=seed)
    hist = train_to_end(model, small, steps=steps, lr=lr, batch_size=0, eval_every=eval_every, seed=seed,
                        decay_at=1.0, threads=threads)
    return OverfitResult(np.array([h.step for h in hist]), np.array([h.train_loss for h in hist]),
                         np.array([h.dev_loss for h in hist]), len(words), int(small.train.y.shape[0]),
                         model.n_params)
