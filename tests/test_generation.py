"""explainer.generation against transformers' own generate() and plain forward passes: greedy stepping
token for token, the KV cache, undo, seeds, stop strings, the context limit, padded batches, templates,
and two sessions stepping on one shared model at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainer import content
from explainer import generation as gen
from explainer.errors import PromptError
from explainer.sampling import Settings
from tests.conftest import run_concurrently

PROMPTS = ["The Eiffel Tower is in the city of", "def add(a, b):\n    return"]


def hf_greedy(lm, ids, n: int) -> list[int]:
    """transformers' own greedy decoding (it stops early at an end-of-text token)."""
    inp = torch.tensor([list(ids)])
    with torch.inference_mode():
        out = lm.model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False, max_new_tokens=n,
                                pad_token_id=lm.tokenizer.pad_token_id or 0)
    return out[0, len(ids):].tolist()


def plain_logits(lm, ids) -> np.ndarray:
    """A full forward pass with no cache: the reference for every cached step."""
    with torch.inference_mode():
        return lm.model(torch.tensor([list(ids)]), use_cache=False).logits[0, -1].float().numpy()


class ForwardCounter:
    """Counts forward passes of a model and the number of new tokens each one was given."""

    def __init__(self, model):
        self.calls: list[int] = []
        self.h = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, mod, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls.append(int(ids.shape[-1]))

    def close(self):
        self.h.remove()


@pytest.mark.parametrize("text", PROMPTS)
def test_greedy_stepping_reproduces_generate_token_for_token(bundled, text):
    n = 12
    state = gen.start(bundled, text)
    ref = hf_greedy(bundled, state.prompt_ids, n)
    assert len(ref) == n  # no early end-of-text for these prompts: every token is compared
    for _ in range(n):
        gen.advance(bundled, state, "top", Settings(temperature=1.0))
    assert [s.token_id for s in state.steps] == ref
    # Greedy is greedy whatever the temperature, and the streaming path agrees too.
    out = gen.generate(bundled, text, gen.GenConfig(max_new_tokens=n, temperature=0, stop_at_eos=False))
    assert [t.token_id for t in out.tokens] == ref
    assert out.text == bundled.tokenizer.decode(ref, skip_special_tokens=True)


def test_stepping_uses_the_kv_cache_and_matches_a_full_forward_pass(tiny):
    counter = ForwardCounter(tiny.model)
    try:
        state = gen.start(tiny, "Hello there, my friend", logits=None)
        assert counter.calls == [len(state.prompt_ids)]  # the prompt once
        for how in ("top", "sample", "top", "sample"):
            counter.calls.clear()
            gen.advance(tiny, state, how, Settings(1.2, 20, 0.9), seed=3)
            assert counter.calls == [1]  # each step feeds only the new token
            assert np.allclose(state.frontier, plain_logits(tiny, state.ids), atol=1e-4)
        assert state.cache.get_seq_length() == state.n_tokens
        # Without the trace's logits the first step prefills the whole prompt plus the new token.
        lazy = gen.start(tiny, "Hello there, my friend", logits=plain_logits(tiny, state.prompt_ids))
        counter.calls.clear()
        gen.advance(tiny, lazy, "top")
        assert counter.calls == [len(lazy.prompt_ids) + 1]
    finally:
        counter.close()


def test_each_step_keeps_its_own_distribution_and_undo_needs_no_model_call(bundled):
    state = gen.start(bundled, PROMPTS[0])
    first = state.frontier.copy()
    for _ in range(4):
        gen.advance(bundled, state, "top")
    assert np.array_equal(state.steps[0].logits, first)
    for s in state.steps:  # every step's stored logits are those of a plain pass over its context
        ctx = state.prompt_ids + tuple(x.token_id for x in state.steps[: s.index])
        assert np.allclose(s.logits, plain_logits(bundled, ctx), atol=1e-3)
        assert s.prob == pytest.approx(s.dist.probs[s.token_id]) and s.rank == 1
    taken = [s.token_id for s in state.steps]
    at_step_1 = state.steps[1].logits
    counter = ForwardCounter(bundled.model)
    try:
        assert gen.undo(state).token_id == taken[-1]
        gen.rewind(state, 1)
        assert counter.calls == []
    finally:
        counter.close()
    assert len(state.steps) == 1 and state.cache.get_seq_length() == state.n_tokens
    assert np.array_equal(state.frontier, at_step_1)  # step 1's own distribution, back without a model call
    assert np.allclose(state.frontier, plain_logits(bundled, state.ids), atol=1e-3)
    for _ in range(3):  # continuing after the rewind takes the same greedy path again
        gen.advance(bundled, state, "top")
    assert [s.token_id for s in state.steps] == taken
    gen.rewind(state, 0)
    assert np.array_equal(state.frontier, first) and gen.undo(state) is None


def test_seeds_make_a_demo_repeat_exactly(tiny_gpt2):
    hot = Settings(temperature=2.0)

    def demo(seed):
        st = gen.start(tiny_gpt2, "A random walk")
        for how in ("sample", "sample", "top", "sample", "sample", "sample"):
            gen.advance(tiny_gpt2, st, how, hot, seed=seed)
        return [s.token_id for s in st.steps]

    assert demo(42) == demo(42)
    assert demo(42) != demo(43)
    out = [gen.generate(tiny_gpt2, "A random walk", gen.GenConfig(max_new_tokens=8, temperature=2.0, top_k=None,
                                                                  top_p=None, seed=s)) for s in (1, 1, 2)]
    assert out[0].tokens == out[1].tokens and out[0].tokens != out[2].tokens


def test_streaming_and_stepping_share_one_decode_step(tiny_gpt2):
    # The same seed and settings give the same text whether a class steps through it on Next token
    # (Sample, Sample, ...) or streams it on Generate: one decode step, one way to draw.
    hot = Settings(temperature=1.5, top_k=50, top_p=0.95)
    st = gen.start(tiny_gpt2, "A random walk")
    for _ in range(8):
        gen.advance(tiny_gpt2, st, "sample", hot, seed=7)
    out = gen.generate(tiny_gpt2, "A random walk", gen.GenConfig(max_new_tokens=8, temperature=1.5, top_k=50,
                                                                 top_p=0.95, seed=7, stop_at_eos=False))
    assert [t.token_id for t in out.tokens] == [s.token_id for s in st.steps]
    assert [t.prob for t in out.tokens] == pytest.approx([s.prob for s in st.steps], abs=1e-6)
    assert all(t.logits is None and t.dist is None for t in out.tokens)      # streaming keeps no arrays
    assert all(s.logits is not None and s.entropy == s.dist.entropy for s in st.steps)


def test_stop_strings_and_max_new_tokens(bundled):
    full = gen.generate(bundled, PROMPTS[0], gen.GenConfig(max_new_tokens=20, temperature=0, stop_at_eos=False))
    assert full.reason == "max_new_tokens" and len(full.tokens) == 20
    assert full.n_decode == 19 and 0 < full.prefill_seconds < full.seconds  # no model call after the last token
    stop = "\n"
    assert stop in full.text  # the greedy continuation has a line break (checked, not assumed)
    cut = gen.generate(bundled, PROMPTS[0], gen.GenConfig(max_new_tokens=20, temperature=0, stop=("zzz", stop)))
    assert cut.reason == "stop" and cut.stop_string == stop
    assert cut.text == full.text[: full.text.find(stop)]
    assert len(cut.tokens) < 20 and [t.token_id for t in cut.tokens] == [t.token_id for t in full.tokens][
        : len(cut.tokens)]
    nocache = gen.generate(bundled, PROMPTS[0], gen.GenConfig(max_new_tokens=8, temperature=0, use_cache=False))
    assert [t.token_id for t in nocache.tokens] == [t.token_id for t in full.tokens[:8]]
    assert gen.parse_stop(r"\n|END||") == ("\n", "END")


def test_generation_ends_at_the_end_of_text_token(bundled):
    ids, stops, text = gen.chat_ids(bundled, [{"role": "user", "content": "What is the capital of France?"}])
    raw = gen.generate(bundled, ids, gen.GenConfig(max_new_tokens=40, temperature=0, stop_at_eos=False))
    eos = gen.eos_ids(bundled)
    where = [i for i, t in enumerate(raw.tokens) if t.token_id in eos]
    assert where, "the model's greedy answer should end its turn within 40 tokens"
    out = gen.generate(bundled, ids, gen.GenConfig(max_new_tokens=40, temperature=0, stop=stops))
    assert out.reason == "eos" and len(out.tokens) == where[0] + 1 and out.tokens[-1].special
    assert out.text == bundled.tokenizer.decode([t.token_id for t in raw.tokens[: where[0]]], skip_special_tokens=True)


def test_prompt_at_the_context_limit(tiny_gpt2):
    n_ctx = tiny_gpt2.n_ctx
    ids = list(np.random.default_rng(0).integers(100, 5000, n_ctx))
    text = tiny_gpt2.tokenizer.decode(ids)
    assert len(tiny_gpt2.tokenizer(text)["input_ids"]) >= n_ctx
    state = gen.start(tiny_gpt2, text)
    assert state.n_tokens == n_ctx and state.room == 0
    assert np.isfinite(state.frontier).all()  # the prediction after a full window is still shown
    with pytest.raises(PromptError, match="context window is full"):
        gen.advance(tiny_gpt2, state, "top")
    out = gen.generate(tiny_gpt2, text)
    assert out.reason == "context" and out.tokens == () and "context window" in out.why
    # One token short of the limit: exactly one step fits.
    short = gen.start(tiny_gpt2, tiny_gpt2.tokenizer.decode(ids[: n_ctx - 1]), max_tokens=n_ctx - 1)
    gen.advance(tiny_gpt2, short, "top")
    with pytest.raises(PromptError):
        gen.advance(tiny_gpt2, short, "top")
    with pytest.raises(PromptError):
        gen.Stream(tiny_gpt2, ids + [1])  # ids past the window are refused up front


@pytest.mark.parametrize("bad", ["", "   \n "])
def test_empty_prompt_is_a_clear_message(tiny_gpt2, bad):
    with pytest.raises(PromptError, match="empty"):
        gen.start(tiny_gpt2, bad)
    with pytest.raises(PromptError, match="empty"):
        gen.Stream(tiny_gpt2, bad)
    with pytest.raises(PromptError):
        gen.Stream(tiny_gpt2, [])


def test_bad_settings_are_refused_before_streaming(tiny_gpt2):
    with pytest.raises(PromptError):
        gen.Stream(tiny_gpt2, "hi", gen.GenConfig(max_new_tokens=0))
    with pytest.raises(Exception, match="top-p"):
        gen.Stream(tiny_gpt2, "hi", gen.GenConfig(top_p=2.0))
    # Extreme but valid settings work: top-k beyond the vocabulary, top-p 0 and 1, temperature 0.
    for cfg in (gen.GenConfig(max_new_tokens=3, top_k=10**7), gen.GenConfig(max_new_tokens=3, top_p=0.0),
                gen.GenConfig(max_new_tokens=3, top_p=1.0), gen.GenConfig(max_new_tokens=3, temperature=0)):
        assert len(gen.generate(tiny_gpt2, "hi", cfg).tokens) == 3


def check_batch(lm, side):
    prompts = ["The cat sat on the", "Once upon a time, in a land far away, there lived a", "Hello"]
    b = gen.pad_batch(lm, prompts + ["   "], side)           # blank lines are dropped
    alone = [lm.tokenizer(p)["input_ids"] for p in prompts]
    assert b.prompts == tuple(prompts) and b.lengths == tuple(len(a) for a in alone)
    assert b.ids.shape == (3, max(len(a) for a in alone))
    for row, mrow, a in zip(b.ids, b.mask, alone):
        assert row[mrow == 1].tolist() == a and (row[mrow == 0] == b.pad_id).all()
        real = np.flatnonzero(mrow)
        assert (real[-1] == len(row) - 1) if side == "left" else (real[0] == 0)
    together = gen.batch_next_logits(lm, b)                   # [B, V]
    for i, a in enumerate(alone):
        assert np.allclose(together[i], plain_logits(lm, a), atol=1e-3)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_gives_each_prompt_what_it_gives_alone(bundled, side):
    check_batch(bundled, side)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_on_every_family(tiny, side):
    check_batch(tiny, side)


def test_compare_batch_rows_against_separate_runs(bundled):
    prompts = ["The capital of France is", "1, 2, 3,", "Hello"]
    check = gen.compare_batch(bundled, prompts, "left")
    assert [r.prompt for r in check.rows] == prompts
    for r, p in zip(check.rows, prompts):
        ids = bundled.tokenizer(p)["input_ids"]
        probs = torch.softmax(torch.tensor(plain_logits(bundled, ids), dtype=torch.float64), -1).numpy()
        assert r.n_tokens == len(ids) and r.alone_id == int(probs.argmax()) == r.top_id and r.same
        assert r.alone_prob == pytest.approx(probs[r.top_id], abs=1e-5)
        assert r.prob == pytest.approx(probs[r.top_id], abs=1e-3)
        assert r.top_token == bundled.tokenizer.decode([r.top_id])


def test_a_tokenizer_without_a_pad_token_is_copied_not_changed(tiny_gpt2):
    tok = tiny_gpt2.tokenizer
    assert tok.pad_token is None  # GPT-2's tokenizer has none
    b = gen.pad_batch(tiny_gpt2, ["a b c d", "a"])
    assert tok.pad_token is None  # the shared tokenizer is untouched
    assert b.pad_token == tok.eos_token and b.pad_id == tok.eos_token_id and "no padding token" in b.note
    with pytest.raises(PromptError):
        gen.pad_batch(tiny_gpt2, ["", "  "])


def test_templates_and_chat(bundled, tiny_gpt2):
    for key, t in content.TEMPLATES.items():
        assert t.chat or gen.Stream(bundled, t.text).prompt_ids, key
    log = [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."},
           {"role": "user", "content": "Name a colour."}]
    text, stops = gen.chat_text(bundled, log)
    assert text == bundled.tokenizer.apply_chat_template(log, tokenize=False, add_generation_prompt=True)
    assert text.index("Hi!") < text.index("Hello.") < text.index("Name a colour.")
    plain, plain_stops = gen.chat_text(tiny_gpt2, log)  # no chat template: a plain transcript
    assert plain.endswith("User: Name a colour.\nAssistant:") and plain_stops == ("\nUser:",)
    with pytest.raises(PromptError):
        gen.chat_text(bundled, log[:2])  # the last turn must be the user's


def test_two_sessions_step_on_one_shared_model_at_once(bundled):
    texts = PROMPTS
    solo = {}
    for t in texts:
        st = gen.start(bundled, t)
        for _ in range(6):
            gen.advance(bundled, st, "top")
        solo[t] = [s.token_id for s in st.steps]

    def run(t):
        st = gen.start(bundled, t)
        for _ in range(6):
            gen.advance(bundled, st, "top")
        return [s.token_id for s in st.steps]

    results, errors = run_concurrently(run, texts)
    assert not errors, errors
    assert dict(zip(texts, results, strict=True)) == solo


def test_streaming_applies_the_repetition_penalty_to_the_text_so_far(tiny_gpt2):
    """Greedy streaming with a penalty takes, at every step, the top token of the logits penalised for every
    token of the prompt and of what it generated before (worked out here by hand)."""
    lm = tiny_gpt2
    prompt = lm.tokenizer("one two one two one two")["input_ids"]
    cfg = gen.GenConfig(max_new_tokens=6, temperature=0.0, top_k=None, top_p=None, repetition_penalty=2.0,
                        min_p=0.1, stop_at_eos=False)
    got = [s.token_id for s in gen.Stream(lm, prompt, cfg)]
    ids = list(prompt)
    for token in got:
        x = gen.next_logits(lm, ids).astype(np.float64)
        seen = sorted(set(ids))
        x[seen] = np.where(x[seen] < 0, x[seen] * 2.0, x[seen] / 2.0)
        assert token == int(np.argmax(x))
        ids.append(token)
