"""explainer.sampling against transformers' own logits warpers, a chi-square test of seeded draws, and
the edge cases a classroom slider reaches (temperature 0, 0.001, top-k beyond the vocabulary, top-p 0 and 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from explainer import sampling
from explainer.errors import ExplainerError
from explainer.generation import next_logits
from explainer.sampling import (
    Settings,
    entropy,
    probabilities,
    sample,
    sample_many,
    softmax,
    top_k,
)


def reference(logits: np.ndarray, t: float, k: int | None, p: float | None) -> np.ndarray:
    """softmax after transformers' warpers, in their order, on float64 scores [1, V]."""
    s = torch.tensor(logits, dtype=torch.float64)[None]         # [1, V]
    s = TemperatureLogitsWarper(t)(None, s)
    if k is not None:
        s = TopKLogitsWarper(k)(None, s)
    if p is not None:
        s = TopPLogitsWarper(p)(None, s)
    return torch.softmax(s, dim=-1)[0].numpy()                  # [V]


def random_case(rs: np.random.Generator):
    v = int(rs.choice([1, 2, 3, 10, 50, 257, 1000, 5000]))
    logits = rs.normal(0, rs.uniform(0.1, 10), v) + rs.uniform(-50, 50)
    if rs.random() < 0.2:  # duplicated logits: ties at the top-k boundary
        logits = np.round(logits)
    t = float(rs.choice([0.01, 0.1, 0.5, 0.7, 1.0, 1.3, 2.0, 5.0, rs.uniform(0.05, 5)]))
    k = int(rs.integers(1, v + 20)) if rs.random() < 0.7 else None
    p = float(rs.choice([rs.uniform(0.01, 1.0), 0.5, 0.9, 0.95, 1.0])) if rs.random() < 0.7 else None
    return logits, t, k, p


def test_probabilities_equal_transformers_warpers_on_random_logits():
    rs = np.random.default_rng(1234)
    worst, n, tied = 0.0, 400, 0
    for _ in range(n):
        logits, t, k, p = random_case(rs)
        ours = probabilities(logits, t, k, p)
        ref = reference(logits, t, k, p)
        if p is not None and p < 1 and len(np.unique(logits)) < len(logits):
            # Equal logits at the top-p boundary: which of them goes is arbitrary (torch's sort is not
            # stable), but how many go, and so the sorted probabilities, must agree.
            tied += 1
            worst = max(worst, float(np.abs(np.sort(ours.probs) - np.sort(ref)).max()))
            assert ours.n_kept == int((ref > 0).sum())
            continue
        worst = max(worst, float(np.abs(ours.probs - ref).max()))
        assert np.array_equal(ours.kept, ref > 0), (t, k, p)  # the same survivors, not just close numbers
    assert worst <= 1e-6
    assert 10 < tied < n / 2  # both kinds of case were exercised


def test_probabilities_equal_transformers_warpers_on_real_logits(bundled):
    rs = np.random.default_rng(7)
    for text in ("The Eiffel Tower is in the city of", "def fibonacci(n):"):
        logits = next_logits(bundled, bundled.tokenizer(text)["input_ids"])  # [V] real, V = 49,152
        for t, k, p in [(1.0, None, None), (0.7, 50, 0.95), (1.5, None, 0.9), (0.3, 5, None),
                        (float(rs.uniform(0.2, 3)), int(rs.integers(1, 500)), float(rs.uniform(0.05, 0.99)))]:
            ours = probabilities(logits, t, k, p)
            assert np.abs(ours.probs - reference(logits, t, k, p)).max() <= 1e-6


def test_each_filter_reports_what_it_removed():
    rs = np.random.default_rng(3)
    logits = rs.normal(0, 3, 200)
    d = probabilities(logits, 0.9, top_k=20, top_p=0.8)
    # top-k: exactly the 20 largest logits survive it (no ties here).
    assert set(np.flatnonzero(~d.removed_top_k)) == set(np.argsort(-logits)[:20])
    # top-p: the smallest prefix of the top-k survivors (by probability) whose mass reaches 0.8.
    after_k = reference(logits, 0.9, 20, None)
    order = np.argsort(-after_k)
    need = int(np.searchsorted(np.cumsum(after_k[order]), 0.8) + 1)
    assert set(np.flatnonzero(d.kept)) == set(order[:need])
    assert not (d.removed_top_k & d.removed_top_p).any()
    assert np.array_equal(d.kept, ~(d.removed_top_k | d.removed_top_p | d.removed_greedy))
    assert d.n_kept == need and d.n_after_top_k == 20
    assert np.allclose(d.after_top_k, after_k, atol=1e-12)
    assert np.allclose(d.tempered, softmax(logits / 0.9), atol=1e-12)
    assert d.mass_cut == pytest.approx(softmax(logits / 0.9)[np.setdiff1d(np.arange(len(logits)), order[:need])].sum())
    assert {d.fate(int(i)) for i in range(200)} == {"kept", "top-k", "top-p"}


@pytest.mark.parametrize("t", [0.001, 1e-4, 1e-9])
def test_tiny_temperature_with_huge_logits_is_finite_and_sums_to_one(t):
    rs = np.random.default_rng(0)
    logits = rs.choice([-1e4, 1e4], size=5000) + rs.normal(0, 1, 5000)
    for k, p in [(None, None), (10, None), (None, 0.9), (100, 0.5)]:
        d = probabilities(logits, t, k, p)
        for a in (d.probs, d.tempered, d.after_top_k):
            assert np.isfinite(a).all() and abs(a.sum() - 1) < 1e-12
        assert d.argmax == int(np.argmax(logits))
    if t == 0.001:
        assert np.abs(probabilities(logits, t).probs - reference(logits, t, None, None)).max() <= 1e-6


def test_logits_of_any_size():
    for scale in (1e-12, 1.0, 1e8, 1e30, 1e300):
        logits = np.array([3.0, 1.0, 2.0, -1.0]) * scale
        d = probabilities(logits, 0.5, top_k=3, top_p=0.99)
        assert np.isfinite(d.probs).all() and abs(d.probs.sum() - 1) < 1e-12
        assert d.argmax == 0
    d = probabilities(np.array([-np.inf, 0.0, -np.inf, 1.0]), 2.0)  # already-masked tokens stay at 0
    assert d.probs[0] == 0 and d.probs[2] == 0 and np.isclose(d.probs[3], 1 / (1 + math.exp(-0.5)))
    assert probabilities(np.array([5.0]), 1.0, top_k=3, top_p=0.2).probs.tolist() == [1.0]


def test_temperature_zero_is_greedy_and_the_limit_of_small_temperatures():
    rs = np.random.default_rng(5)
    logits = rs.normal(0, 2, 1000)
    d = probabilities(logits, 0.0, top_k=50, top_p=0.9)
    assert d.greedy and d.n_kept == 1 and d.probs[np.argmax(logits)] == 1.0
    assert np.allclose(d.probs, probabilities(logits, 1e-6).probs)
    assert d.fate(int(np.argmin(logits))) == "top-k" and d.entropy == 0.0
    assert any("greedy" in n for n in d.notes)


def test_top_k_beyond_vocabulary_and_top_p_zero_or_one():
    rs = np.random.default_rng(9)
    logits = rs.normal(0, 2, 300)
    big = probabilities(logits, 1.0, top_k=10_000)
    assert np.allclose(big.probs, softmax(logits)) and big.n_kept == 300
    assert any("larger than the vocabulary" in n for n in big.notes)
    assert np.allclose(probabilities(logits, 1.0, top_k=300).probs, softmax(logits))
    zero = probabilities(logits, 1.3, top_p=0.0)
    assert zero.n_kept == 1 and zero.argmax == int(np.argmax(logits))
    assert np.abs(zero.probs - reference(logits, 1.3, None, 0.0)).max() <= 1e-12
    one = probabilities(logits, 1.3, top_p=1.0)
    assert one.n_kept == 300 and np.abs(one.probs - reference(logits, 1.3, None, 1.0)).max() <= 1e-6
    assert probabilities(logits, 1.0, top_k=0).n_kept == 300  # 0 = off


@pytest.mark.parametrize("kw", [dict(temperature=-0.1), dict(temperature=float("nan")), dict(top_k=-1),
                                dict(top_k=2.5), dict(top_p=1.5), dict(top_p=-0.1)])
def test_nonsense_settings_give_a_message(kw):
    with pytest.raises(ExplainerError) as e:
        probabilities(np.zeros(10), **kw)
    assert e.value.fix


@pytest.mark.parametrize("bad", [np.array([]), np.array([1.0, np.nan]), np.full(4, -np.inf), np.zeros((2, 3))])
def test_bad_logits_give_a_message(bad):
    with pytest.raises(ExplainerError):
        probabilities(bad)


def chi2_critical(df: int, alpha: float) -> float:
    """Upper critical value of chi-square: scipy when importable, else Wilson–Hilferty by hand."""
    try:
        from scipy.stats import chi2

        return float(chi2.ppf(1 - alpha, df))
    except ImportError:
        from statistics import NormalDist

        z = NormalDist().inv_cdf(1 - alpha)
        return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi2_statistic(draws: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    support = np.flatnonzero(probs > 0)
    counts = np.bincount(draws, minlength=len(probs))
    expected = probs[support] * len(draws)
    return float(((counts[support] - expected) ** 2 / expected).sum()), len(support) - 1


def test_seeded_sample_frequencies_match_the_probabilities():
    rs = np.random.default_rng(11)
    logits = rs.normal(0, 1.5, 40)
    d = probabilities(logits, 0.8, top_k=12, top_p=0.97)
    n = 10_000
    draws = np.array([sample(d, seed) for seed in range(n)])     # one seed per draw
    assert set(np.unique(draws)) <= set(np.flatnonzero(d.kept))  # nothing a filter removed is ever drawn
    stat, df = chi2_statistic(draws, d.probs)
    crit = chi2_critical(df, 1e-3)
    assert stat < crit, (stat, crit)
    # The test has power: the same draws are rejected against the distribution before the filters.
    wrong, _ = chi2_statistic(draws, probabilities(logits, 1.0, top_k=12).probs)
    assert wrong > crit
    many = sample_many(d, 5 * n, seed=5)                             # the vectorised path, same test
    stat2, _ = chi2_statistic(many, d.probs)
    assert stat2 < crit


def test_chi2_critical_value_by_hand_matches_scipy():
    from statistics import NormalDist

    for df in (3, 11, 50):
        z = NormalDist().inv_cdf(0.999)
        by_hand = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
        assert abs(by_hand / chi2_critical(df, 1e-3) - 1) < 0.02


def test_same_seed_same_token():
    d = probabilities(np.random.default_rng(2).normal(0, 1, 500), 1.5)
    assert [sample(d, 42) for _ in range(5)] == [sample(d, 42)] * 5
    assert sample(d, 42, 7) == sample(d, 42, 7)
    assert len({sample(d, s) for s in range(50)}) > 10             # different seeds, different tokens
    assert np.array_equal(sample_many(d, 100, seed=1), sample_many(d, 100, seed=1))


def test_entropy_by_hand():
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(3.0)
    assert entropy(np.array([1.0, 0.0, 0.0])) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert entropy(p) == pytest.approx(1.5) and entropy(p, base=math.e) == pytest.approx(1.5 * math.log(2))
    rs = np.random.default_rng(4)
    logits = rs.normal(0, 1, 100)
    cold, hot = probabilities(logits, 0.3), probabilities(logits, 3.0)
    assert cold.entropy < probabilities(logits, 1.0).entropy < hot.entropy < math.log2(100)
    assert cold.entropy_model == pytest.approx(entropy(softmax(logits)))


def test_home_page_helpers_keep_their_signatures():
    probs = softmax(np.array([1.0, 3.0, 2.0]))
    assert probs.sum() == pytest.approx(1.0)
    assert top_k(probs, 2).tolist() == [1, 2] and top_k(probs, 99).tolist() == [1, 2, 0]
    assert Settings(0.5, 0, 1.0).checked(10)[0] == Settings(0.5, None, None)


def test_kl_divergence_in_bits_by_hand():
    # KL([1/2, 1/2] ‖ [1/4, 3/4]) = 1/2·log2(2) + 1/2·log2(2/3)
    want = 0.5 * 1 + 0.5 * math.log2(2 / 3)
    assert sampling.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(want, abs=1e-12)
    assert sampling.kl_divergence([0.5, 0.5], [0.25, 0.75], base=math.e) == pytest.approx(want * math.log(2))
    assert sampling.kl_divergence([0.2, 0.8, 0.0], [0.2, 0.8, 0.0]) == 0.0
    assert sampling.kl_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.log2(1e30))  # floored, finite


# -- min-p and the repetition penalty, against transformers' own processors ------------------------------

def reference_full(logits: np.ndarray, t: float, k: int | None, p: float | None, min_p: float | None,
                   penalty: float | None, previous: list[int]) -> np.ndarray:
    """softmax after RepetitionPenaltyLogitsProcessor, then the warpers in generate()'s order (temperature,
    top-k, top-p, min-p), on float64 scores [1, V]."""
    s = torch.tensor(logits, dtype=torch.float64)[None]         # [1, V]
    if penalty is not None:
        ids = torch.tensor([previous], dtype=torch.long)         # [1, n] the text so far
        s = RepetitionPenaltyLogitsProcessor(float(penalty))(ids, s)
    s = TemperatureLogitsWarper(t)(None, s)
    if k is not None:
        s = TopKLogitsWarper(k)(None, s)
    if p is not None:
        s = TopPLogitsWarper(p)(None, s)
    if min_p is not None:
        s = MinPLogitsWarper(min_p)(None, s)
    return torch.softmax(s, dim=-1)[0].numpy()                  # [V]


def test_min_p_and_repetition_penalty_equal_transformers_on_random_logits():
    rs = np.random.default_rng(99)
    worst, n, used_min_p, used_penalty = 0.0, 400, 0, 0
    for _ in range(n):
        logits, t, k, p = random_case(rs)
        v = len(logits)
        if len(np.unique(logits)) < v:                           # ties: covered by the test above
            logits = logits + rs.normal(0, 1e-3, v)
        min_p = float(rs.choice([0.0, 0.01, 0.05, 0.1, 0.3, 0.9, 1.0, rs.uniform(0, 1)])) if rs.random() < 0.7 \
            else None
        penalty = float(rs.choice([0.5, 0.8, 1.0, 1.1, 1.3, 2.0, rs.uniform(0.2, 3)])) if rs.random() < 0.7 else None
        previous = [int(i) for i in rs.integers(0, v, int(rs.integers(0, 30)))]   # repeats included
        ours = probabilities(logits, t, k, p, min_p=min_p, repetition_penalty=penalty, previous_ids=previous)
        ref = reference_full(logits, t, k, p, min_p or None, penalty, previous)
        worst = max(worst, float(np.abs(ours.probs - ref).max()))
        assert np.array_equal(ours.kept, ref > 0), (t, k, p, min_p, penalty)
        used_min_p += ours.removed_min_p is not None and bool(ours.removed_min_p.any())
        used_penalty += ours.n_penalised > 0
    assert worst <= 1e-6
    assert used_min_p > 50 and used_penalty > 100              # both filters really changed something


def test_min_p_and_repetition_penalty_equal_transformers_on_real_logits(bundled):
    for text in ("The Eiffel Tower is in the city of", "I like cats. I like cats. I like cats. I like"):
        ids = bundled.tokenizer(text)["input_ids"]
        logits = next_logits(bundled, ids)                       # [V] real, V = 49,152
        for t, k, p, min_p, penalty in [(1.0, None, None, 0.1, None), (1.0, None, None, None, 1.3),
                                        (0.7, 50, 0.95, 0.05, 1.2), (1.5, None, None, 0.2, 2.0),
                                        (0.0, None, None, 0.1, 1.5)]:
            ours = probabilities(logits, t, k, p, min_p=min_p, repetition_penalty=penalty, previous_ids=ids)
            ref = (reference_full(logits, t, k, p, min_p, penalty, ids) if t > 0 else None)
            if ref is None:                                      # greedy: the top token after the penalty
                pen = torch.tensor(logits, dtype=torch.float64)[None]
                pen = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([ids]), pen)
                assert ours.probs[int(pen.argmax())] == 1.0
                continue
            assert np.abs(ours.probs - ref).max() <= 1e-6, (t, k, p, min_p, penalty)


def test_the_penalty_is_what_breaks_a_greedy_loop(bundled):
    """The classic lesson: greedy text repeats itself; a repetition penalty makes the repeated token less likely."""
    ids = bundled.tokenizer("I like cats. I like cats. I like cats. I like")["input_ids"]
    logits = next_logits(bundled, ids)
    plain = probabilities(logits, 1.0)
    cats = bundled.tokenizer(" cats")["input_ids"][0]
    pen = probabilities(logits, 1.0, repetition_penalty=1.5, previous_ids=ids)
    assert pen.probs[cats] < plain.probs[cats]
    assert pen.n_penalised == len(set(ids))


def test_min_p_and_penalty_settings_are_checked():
    for kw in ({"min_p": -0.1}, {"min_p": 1.5}, {"repetition_penalty": 0}, {"repetition_penalty": float("nan")}):
        with pytest.raises(ExplainerError):
            probabilities(np.zeros(5), **kw)
    d = probabilities(np.arange(5.0), min_p=0, repetition_penalty=1)   # the "off" values
    assert d.settings.min_p is None and d.settings.repetition_penalty is None and d.penalised is None
    with pytest.raises(ExplainerError):
        probabilities(np.zeros(5), repetition_penalty=1.2, previous_ids=[7])


def test_settings_text_breaks_lines_for_a_half_width_title():
    from explainer.figures.sampling import settings_text

    d = sampling.probabilities(np.array([2.0, 1.0, 0.0, -1.0]), 0.7, 3, 0.9, min_p=0.05, repetition_penalty=1.3,
                               previous_ids=[0])
    one = "temperature 0.7 · top-k 3 · top-p 0.9 · min-p 0.05 · repetition penalty 1.3"
    assert settings_text(d) == one
    assert settings_text(d, per_line=2) == ("temperature 0.7 · top-k 3<br>top-p 0.9 · min-p 0.05<br>"
                                            "repetition penalty 1.3")
    assert settings_text(d, per_line=2).replace("<br>", " · ") == one
