"""The tiny language model lab's engine: data, the model against torch.nn, training, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from explainer import makemore as mm
from explainer.errors import PromptError, SettingError


@pytest.fixture(scope="module")
def data() -> mm.Dataset:
    return mm.load_data(3, seed=42)


@pytest.fixture(scope="module")
def trained(data) -> tuple[mm.CharMLP, list[mm.TrainProgress]]:
    model = mm.CharMLP(mm.MLPConfig(3, 2, 100), seed=0)
    hist = mm.train_to_end(model, data, steps=1500, lr=0.1, batch_size=32, eval_every=500, seed=0)
    return model, hist


def test_encode_by_hand():
    x, y = mm.encode(["emma"], 3)
    dec = ["".join(mm.CHARS[i] for i in row) for row in x.tolist()]
    assert dec == ["...", "..e", ".em", "emm", "mma"]
    assert "".join(mm.CHARS[i] for i in y.tolist()) == "emma."


def test_split_is_by_name_80_10_10(data):
    names = mm.census_names()
    tr, dv, te = set(data.train.words), set(data.dev.words), set(data.test.words)
    assert not (tr & dv) and not (tr & te) and not (dv & te)
    assert tr | dv | te == set(names)
    assert len(tr) == int(0.8 * len(names)) and len(dv) == int(0.9 * len(names)) - int(0.8 * len(names))
    assert data.train.x.shape == (sum(len(w) + 1 for w in data.train.words), 3)
    assert all(w.isalpha() and w.islower() for w in names)
    assert mm.load_data(3, seed=42).dev.words == data.dev.words  # the split is seeded
    with pytest.raises(SettingError):
        mm.load_data(0)


def test_model_matches_torch_nn_layers(data):
    """Embedding lookup + concat + Linear + tanh + Linear, built from torch.nn with the same weights."""
    cfg = mm.MLPConfig(3, 5, 40)
    model = mm.CharMLP(cfg, seed=1)
    ref = nn.Sequential(nn.Embedding(27, 5), nn.Flatten(), nn.Linear(15, 40), nn.Tanh(), nn.Linear(40, 27))
    with torch.no_grad():
        ref[0].weight.copy_(model.C)
        ref[2].weight.copy_(model.W1.T)
        ref[2].bias.copy_(model.b1)
        ref[4].weight.copy_(model.W2.T)
        ref[4].bias.copy_(model.b2)
    x, y = data.dev.x[:200], data.dev.y[:200]
    torch.testing.assert_close(model.logits(x), ref(x))
    assert model.n_params == sum(p.numel() for p in ref.parameters()) == cfg.n_params
    # the loss by hand: mean negative log-probability of the right character
    logits = model.logits(x).detach().numpy().astype(np.float64)
    top = logits.max(1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))
    assert math.isclose(model.loss(x, y).item(), -logp[np.arange(200), y.numpy()].mean(), rel_tol=1e-5)


def test_sgd_step_matches_torch_optim(data):
    model = mm.CharMLP(mm.MLPConfig(3, 4, 30), seed=2)
    copies = [p.detach().clone().requires_grad_(True) for p in model.parameters]
    x, y = data.train.x[:64], data.train.y[:64]
    model.loss(x, y).backward()
    model.sgd_step(0.5)
    C, W1, b1, W2, b2 = copies
    opt = torch.optim.SGD(copies, lr=0.5)
    h = torch.tanh(C[x].view(64, -1) @ W1 + b1)
    nn.functional.cross_entropy(h @ W2 + b2, y).backward()
    opt.step()
    for a, b in zip(model.parameters, copies):
        torch.testing.assert_close(a.detach(), b.detach())


def test_training_beats_the_uniform_baseline(trained):
    _, hist = trained
    assert abs(hist[0].dev_loss - mm.UNIFORM_LOSS) < 0.05  # starts as a near-uniform guess
    assert [h.step for h in hist] == [0, 500, 1000, 1500]
    assert hist[-1].dev_loss < mm.UNIFORM_LOSS - 0.7  # ln 27 = 3.30 -> below 2.6 in 1,500 steps
    assert hist[-1].dev_loss < hist[1].dev_loss < hist[0].dev_loss
    assert hist[-1].lr == pytest.approx(0.01)  # decayed for the last quarter


def test_training_is_repeatable_and_can_continue(data):
    runs = []
    d2 = mm.load_data(2, seed=42)  # training only reads the data: one load serves both runs
    for _ in range(2):
        m = mm.CharMLP(mm.MLPConfig(2, 3, 20), seed=5)
        runs.append(mm.train_to_end(m, d2, steps=120, eval_every=40, seed=7))
    assert [h.dev_loss for h in runs[0]] == [h.dev_loss for h in runs[1]]
    m = mm.CharMLP(mm.MLPConfig(3, 2, 20), seed=0)
    more = mm.train_to_end(m, data, steps=50, eval_every=20, start_step=100)
    assert [h.step for h in more] == [100, 120, 140, 150]
    with pytest.raises(SettingError):
        mm.train_to_end(m, d2, steps=10)  # a context of 2 for a model with 3


def test_sampling_is_repeatable_and_follows_the_model(trained):
    model, _ = trained
    a = mm.sample(model, 20, seed=3)
    assert a == mm.sample(model, 20, seed=3)
    assert a != mm.sample(model, 20, seed=4)
    assert all(set(w) <= set(mm.CHARS[1:]) for w in a)
    # first letters of many samples follow the model's distribution after an empty context
    p = mm.next_char_probs(model, "")
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    many = mm.sample(model, 4000, seed=0, max_len=1)
    freq = np.bincount([mm.STOI[w[0]] if w else 0 for w in many], minlength=27) / 4000
    assert np.abs(freq - p).max() < 0.03
    # near-zero temperature is greedy: every sample is the same, most likely name
    cold = mm.sample(model, 5, seed=1, temperature=1e-3)
    assert len(set(cold)) == 1


def test_next_char_probs_rejects_what_it_cannot_read(trained):
    model, _ = trained
    with pytest.raises(PromptError, match="a–z"):
        mm.next_char_probs(model, "a1")
    # only the last block_size letters matter
    np.testing.assert_allclose(mm.next_char_probs(model, "xxemm"), mm.next_char_probs(model, "yyemm"))


def test_lr_finder_sweeps_and_suggests(data):
    sw = mm.lr_finder(mm.MLPConfig(3, 2, 100), data, steps=300, seed=0)
    assert np.all(np.diff(sw.lrs) > 0) and sw.lrs[0] == pytest.approx(1e-3) and sw.lrs[-1] == pytest.approx(10)
    ok = np.isfinite(sw.losses)
    assert ok[:100].all()
    assert np.nanmin(sw.smoothed) < sw.smoothed[0] - 0.3  # the loss falls in the middle of the sweep...
    assert not ok[-1]  # ...and blows up before the rate reaches 10, which stops the sweep
    assert 0.01 < sw.suggested < 2.0


def test_overfitting_demo_shows_the_gap(data):
    res = mm.overfit_demo(data, n_names=40, n_hidden=300, steps=400, lr=0.3, eval_every=20)
    assert res.n_train_names == 40 and res.n_train_examples == sum(len(w) + 1 for w in data.train.words[:40])
    assert res.train[-1] < 1.2  # memorised
    assert res.dev[-1] > res.dev.min() + 0.5  # unseen names got worse after the best point
    assert res.best_step < res.steps[-1]
    assert res.dev[-1] - res.train[-1] > 1.5
    assert res.overfitted and res.memorises


def test_lr_sweep_says_where_it_stopped_by_hand():
    lrs = np.geomspace(1e-3, 10.0, 5)
    sw = mm.LRSweep(lrs, np.array([3.3, 3.0, 2.5, np.nan, np.nan]), np.full(5, np.nan), 0.1)
    assert sw.n_run == 3 and sw.last_lr == pytest.approx(0.1)               # 1e-3, 1e-2, 1e-1 ran
    full = mm.LRSweep(lrs, np.full(5, 3.0), np.full(5, 3.0), 0.1)
    assert full.n_run == 5 and full.last_lr == pytest.approx(10.0)


def test_overfitted_and_memorises_by_hand():
    def result(dev, n_params=100, n_examples=50):
        return mm.OverfitResult(np.arange(len(dev)) * 25, np.linspace(3, 1, len(dev)), np.array(dev), 10,
                                n_examples, n_params)
    assert result([3.0, 2.5, 2.8]).overfitted                 # ends 0.3 above its minimum
    assert not result([3.0, 2.6, 2.5]).overfitted             # still at its lowest at the end
    assert not result([3.0, 2.500, 2.505]).overfitted         # 2.50 and 2.50 (less than 0.01 above)
    assert result([3.0, 2.5]).memorises and not result([3.0, 2.5], n_params=50).memorises


def test_embedding_2d_is_the_table_or_its_pca():
    rng = np.random.default_rng(0)
    two = rng.normal(size=(27, 2))
    np.testing.assert_allclose(mm.embedding_2d(two)[0], two)
    ten = rng.normal(size=(27, 10)) * np.linspace(3, 0.1, 10)
    ours, basis = mm.embedding_2d(ten)
    ref = PCA(n_components=2).fit_transform(ten)
    for k in range(2):  # equal up to the sign of each direction
        assert min(np.abs(ours[:, k] - ref[:, k]).max(), np.abs(ours[:, k] + ref[:, k]).max()) < 1e-8
    np.testing.assert_allclose(mm.embedding_2d(ten, basis)[0], ours)


def test_vowel_spread_by_hand():
    t = np.zeros((27, 2))
    t[1:, 0] = np.arange(26)  # letters on a line, a=0 ... z=25
    assert mm.vowel_spread(t) == pytest.approx(
        np.mean([abs(a - b) for i, a in enumerate([0, 4, 8, 14, 20]) for b in [0, 4, 8, 14, 20][i + 1:]])
        / np.mean([abs(a - b) for a in range(26) for b in range(a + 1, 26)]))
    t[[mm.STOI[c] for c in "aeiou"]] = 5.0  # vowels on one spot
    assert mm.vowel_spread(t) == 0.0


def test_examples_of_a_name_and_animation_frames_by_hand():
    assert mm.examples_of("emma", 3) == [("...", "e"), ("..e", "m"), (".em", "m"), ("emm", "a"), ("mma", ".")]
    assert mm.examples_of("al", 1) == [(".", "a"), ("a", "l"), ("l", ".")]
    x, y = mm.encode(["emma"], 3)                # the training tensors say the same
    assert [("".join(mm.CHARS[int(i)] for i in row), mm.CHARS[int(t)]) for row, t in zip(x, y)] == \
        mm.examples_of("emma", 3)
    assert mm.frames(5) == [0, 1, 2, 3, 4]
    f = mm.frames(1000, most=60)
    assert len(f) == 60 and f[0] == 0 and f[-1] == 999 and f == sorted(f)
