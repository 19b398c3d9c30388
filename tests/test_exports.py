"""The CSV tables behind the charts: each read back with the csv module and checked against the arrays the
engine computed, or by hand."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from explainer import exports, lens, makemore, sampling, vectors
from explainer.anatomy import count_parameters
from explainer.tokens import token_strings


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, rows


def test_distribution_table(bundled, tr):
    logits = tr.next_token_logits()
    d = sampling.probabilities(logits, 0.8, 10, 0.9)
    ids = [int(i) for i in d.top(15)]
    header, rows = _rows(exports.distribution(d, ids, token_strings(bundled.tokenizer, ids)))
    assert header[0] == "rank" and len(rows) == 15
    z = logits.astype(np.float64) / 0.8                                  # by hand: softmax at temperature 0.8
    tempered = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    for r, row in enumerate(rows):
        assert int(row[0]) == r + 1 and int(row[2]) == ids[r]
        assert row[1] == bundled.tokenizer.decode([ids[r]])              # the token as the model reads it
        assert float(row[3]) == pytest.approx(float(logits[ids[r]]), rel=1e-6)
        assert float(row[4]) == pytest.approx(tempered[ids[r]], rel=1e-5)
    assert [row[6] for row in rows[10:]] == ["top-k"] * 5                 # past the top 10: cut by top-k
    kept = [float(row[5]) for row in rows if row[6] == "kept"]
    assert sum(kept) == pytest.approx(1.0, abs=1e-6)                     # the survivors share all the mass
    assert all(float(row[5]) == 0 for row in rows if row[6] != "kept")


def test_pattern_table(bundled, tr):
    header, rows = _rows(exports.pattern(tr.attn[3, 2], list(tr.tokens), 3, 2))
    T = tr.n_tokens
    assert len(rows) == T * (T + 1) // 2                                 # only keys at or before the query
    w = np.zeros((T, T))
    for row in rows:
        assert (int(row[0]), int(row[1])) == (3, 2) and int(row[4]) <= int(row[2])
        assert row[3] == tr.tokens[int(row[2])] and row[5] == tr.tokens[int(row[4])]
        w[int(row[2]), int(row[4])] = float(row[6])
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)           # each query's weights add up to 1
    np.testing.assert_allclose(w, tr.attn[3, 2], rtol=1e-6, atol=1e-9)


def test_neighbours_table(bundled):
    wt, found = vectors.neighbours(bundled, "Paris", k=5)
    _, rows = _rows(exports.neighbours(found))
    W = bundled.model.get_input_embeddings().weight.detach().double().numpy()
    assert len(wt.ids) == 1
    v = W[wt.ids[0]]
    for r, row in enumerate(rows):
        u = W[int(row[2])]
        assert int(row[0]) == r + 1
        assert float(row[3]) == pytest.approx(u @ v / np.linalg.norm(u) / np.linalg.norm(v), abs=1e-5)  # by hand
        assert row[1] == bundled.tokenizer.decode([int(row[2])])


def test_lens_table(bundled, tr):
    res = lens.logit_lens(bundled, tr, k=5)
    T = tr.n_tokens
    header, rows = _rows(exports.lens_grid(res, list(tr.tokens), range(T)))
    assert len(rows) == (bundled.n_layers + 1) * T and header[-1] == "entropy (bits)"
    last = [row for row in rows if row[0] == f"after block {bundled.n_layers - 1}"]
    final = tr.logits.astype(np.float64)                                 # the model's own output row
    p = np.exp(final - final.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    for pos, row in enumerate(last):
        assert int(row[4]) == int(final[pos].argmax()) and float(row[5]) == pytest.approx(p[pos].max(), rel=1e-4)
        assert float(row[6]) == pytest.approx(-(p[pos] * np.log2(p[pos] + 1e-30)).sum(), abs=1e-3)


def test_parameters_table(bundled):
    pc = count_parameters(bundled.model.config)
    _, rows = _rows(exports.parameters(pc))
    unique = sum(t.numel() for t in {id(t): t for t in bundled.model.parameters()}.values())
    assert rows[-1] == ["total", str(unique), "1"]
    assert sum(int(r[1]) for r in rows[:-1]) == unique
    assert sum(float(r[2]) for r in rows[:-1]) == pytest.approx(1.0)


def test_training_table():
    data = makemore.load_data(3, seed=42, n_names=300)
    model = makemore.CharMLP(makemore.MLPConfig(3, 2, 20), seed=0)
    hist = list(makemore.train(model, data, steps=40, lr=0.1, eval_every=20))
    header, rows = _rows(exports.training(hist))
    assert header == ["step", "train loss", "dev loss", "mean minibatch loss"]
    assert [int(r[0]) for r in rows] == [h.step for h in hist]
    assert [float(r[1]) for r in rows] == pytest.approx([h.train_loss for h in hist], rel=1e-7)
    assert [float(r[2]) for r in rows] == pytest.approx([h.dev_loss for h in hist], rel=1e-7)
    assert math.isclose(float(rows[0][1]), hist[0].train_loss, rel_tol=1e-7)
