"""The engine's contract: captured values equal an independent plain forward pass, for every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explainer as ex
from explainer.capture import HostBuffers
from explainer.models import cache_root, dtype_for, pick_device
from tests.conftest import hook_keys, run_concurrently

PROMPT = "The quick brown fox jumps over the lazy dog because it"


def _plain_forward(lm: ex.LoadedModel, ids) -> np.ndarray:
    with torch.no_grad():
        return lm.model(torch.tensor([list(ids)]), use_cache=False).logits[0].float().numpy()  # [T, V]


def _checks(lm: ex.LoadedModel, tr: ex.Trace) -> None:
    L, H, T = lm.n_layers, lm.n_heads, tr.n_tokens
    assert tr.resid.shape == (L + 1, T, lm.d_model)
    assert tr.attn.shape == (L, H, T, T)
    assert tr.mlp.shape == (L, T, lm.d_mlp)
    assert tr.logits.shape == (T, lm.vocab_size)
    # logits equal a plain forward pass with no hooks
    assert np.abs(tr.logits - _plain_forward(lm, tr.token_ids)).max() <= 1e-4
    # attention: rows sum to 1, nothing above the diagonal (the future)
    np.testing.assert_allclose(tr.attn.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(tr.attn, k=1)).max() == 0.0
    # the final residual through the final norm and unembedding reproduces the logits
    with torch.no_grad():
        x = torch.from_numpy(np.array(tr.resid[-1]))[None]                 # [1, T, D]
        x = lm.arch.final_norm_module(lm.model)(x)
        re = lm.model.get_output_embeddings()(x)[0].numpy()                # [T, V]
    assert np.abs(re - tr.logits).max() <= 1e-4
    # token embedding rows are the embedding matrix's rows
    W = lm.model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(tr.embed, W[tr.token_ids])
    if tr.pos_embed is not None:  # GPT-2: block 0 reads token + position embeddings
        np.testing.assert_allclose(tr.resid[0], tr.embed + tr.pos_embed, atol=1e-6)


def _mlp_reproduces_output(lm: ex.LoadedModel, text: str) -> None:
    """The captured neuron activations through the down-projection equal the MLP's own output."""
    tr = ex.trace(lm, text)
    outs = {}
    blocks = lm.arch.block_list(lm.model)
    handles = [lm.arch.mlp_module(b).register_forward_hook(
        lambda m, a, o, i=i: outs.__setitem__(i, o[0].detach().numpy())) for i, b in enumerate(blocks)]
    try:
        _plain_forward(lm, tr.token_ids)
    finally:
        for h in handles:
            h.remove()
    for i, b in enumerate(blocks):
        with torch.no_grad():
            down = lm.arch.mlp_down_proj(b)(torch.from_numpy(np.array(tr.mlp[i]))).numpy()  # [T, D]
        np.testing.assert_allclose(down, outs[i], atol=1e-5)


# -- every family on its tiny random model ---------------------------------------------------------

def test_capture_matches_plain_forward(tiny):
    _checks(tiny, ex.trace(tiny, PROMPT))


def test_mlp_activations_reproduce_mlp_output(tiny):
    _mlp_reproduces_output(tiny, PROMPT)


def test_queries_keys_reproduce_pattern(tiny):
    tr = ex.trace(tiny, PROMPT)
    for layer in range(tiny.n_layers):
        qk = ex.queries_keys(tiny, tr, layer)
        assert qk.q.shape == (tiny.n_heads, tr.n_tokens, tiny.d_head)
        for h in range(tiny.n_heads):
            _, pattern = ex.causal_softmax(qk.scores(h), qk.scale)
            np.testing.assert_allclose(pattern, tr.attn[layer, h], atol=1e-5)


def test_no_hook_remains_after_capture_or_failure(tiny):
    before = hook_keys(tiny.model)
    ex.trace(tiny, PROMPT)
    assert hook_keys(tiny.model) == before

    def boom(*_):
        raise RuntimeError("boom")

    bad = tiny.arch.block_list(tiny.model)[1].register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            ex.trace(tiny, PROMPT)
    finally:
        bad.remove()
    assert hook_keys(tiny.model) == before


def test_threads_capturing_at_once_equal_sequential(tiny_gpt2):
    prompts = [f"Prompt number {i}: " + "lorem ipsum " * (i + 1) for i in range(8)]
    before = hook_keys(tiny_gpt2.model)
    sequential = [ex.trace(tiny_gpt2, p) for p in prompts]
    results, errors = run_concurrently(lambda p: [ex.trace(tiny_gpt2, p) for _ in range(3)], prompts)
    assert not errors, errors
    for runs, ref in zip(results, sequential, strict=True):
        assert len(runs) == 3
        for got in runs:  # every one of the three traces, not only the last
            assert got.tokens == ref.tokens
            for field in ("resid", "attn", "mlp", "logits"):
                np.testing.assert_allclose(getattr(got, field), getattr(ref, field), atol=1e-5, err_msg=field)
    assert hook_keys(tiny_gpt2.model) == before


# -- prompts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_prompt_has_clear_message(tiny_gpt2, text):
    with pytest.raises(ex.PromptError, match="empty"):
        ex.trace(tiny_gpt2, text)


def test_long_prompt_is_truncated_with_notice(tiny_gpt2):
    text = "one two three four five six seven eight nine ten " * 5
    full = tiny_gpt2.tokenizer(text)["input_ids"]
    tr = ex.trace(tiny_gpt2, text, max_tokens=16)
    assert tr.n_tokens == 16 and tr.truncated and tr.n_tokens_in_text == len(full)
    assert list(tr.token_ids) == full[-16:]
    assert "16" in tr.notice and str(len(full)) in tr.notice
    # the context window is a hard limit even without max_tokens
    tr = ex.trace(tiny_gpt2, "word " * 400)
    assert tr.n_tokens == tiny_gpt2.n_ctx and tr.notice


def test_token_strings_keep_spaces_and_show_split_characters(tiny_gpt2):
    tr = ex.trace(tiny_gpt2, "The cat 🦄")
    assert tr.tokens[:2] == ("The", " cat")
    # the unicorn is several byte-level tokens; the parts show their bytes, together they are the emoji
    assert all(t.startswith("<") or t.strip() == "" or "🦄" in t for t in tr.tokens[2:])
    assert tiny_gpt2.tokenizer.decode(list(tr.token_ids)) == "The cat 🦄"


# -- the bundled model (real weights, offline) --------------------------------------------------------

def test_bundled_model_loads_offline_and_is_the_real_smollm2(bundled):
    assert (bundled.n_layers, bundled.n_heads, bundled.n_kv_heads, bundled.d_model) == (30, 9, 3, 576)
    assert (bundled.d_mlp, bundled.vocab_size, bundled.tied_embeddings) == (1536, 49152, True)
    assert bundled.weights_path and bundled.weights_path.endswith(".safetensors")


def test_bundled_capture_matches_plain_forward(bundled):
    tr = ex.trace(bundled, "The Eiffel Tower is in the city of")
    _checks(bundled, tr)
    # and a real pretrained model knows the answer
    assert bundled.tokenizer.decode([int(tr.logits[-1].argmax())]) == " Paris"


def test_bundled_long_captures_recycle_memory_only_when_dropped(bundled):
    """120-token traces (11 MB of attention each) come from pooled blocks: a live trace's memory is
    never handed out again, a dropped one's is, and every capture stays exact."""
    text = " ".join(["The cat sat on the mat and looked out of the window at the rain."] * 8)
    first = ex.trace(bundled, text)
    assert first.n_tokens >= 100 and first.attn.nbytes >= HostBuffers.MIN_BYTES
    kept = np.array(first.attn)
    second = ex.trace(bundled, text.replace("cat", "dog"))
    for a, b in ((first.attn, second.attn), (first.mlp, second.mlp), (first.resid, second.resid)):
        assert not np.shares_memory(a, b)
    del a, b
    np.testing.assert_array_equal(first.attn, kept)  # untouched by the second capture
    _checks(bundled, second)
    address = second.attn.ctypes.data
    del second
    third = ex.trace(bundled, text.replace("cat", "dog"))
    assert third.attn.ctypes.data == address  # the dropped trace's block, reused
    _checks(bundled, third)
    with pytest.raises(ValueError):
        third.attn[0, 0, 0, 0] = 1.0  # shared between sessions, so read-only


def test_host_buffers_keep_at_most_the_idle_limit():
    pool = HostBuffers(max_idle_bytes=3 << 20)
    arrays = [pool.take((1 << 18,)) for _ in range(4)]                 # four 1 MB blocks in use
    assert pool.held_bytes() == (4 << 20, 0)
    assert all(not np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])
    del arrays
    assert pool.held_bytes() == (0, 4 << 20)
    big = pool.take((1 << 20,))                                         # 4 MB: no idle block fits
    assert pool.held_bytes() == (4 << 20, 3 << 20)                      # one idle block let go
    small = pool.take((10,))
    assert small.shape == (10,) and small.dtype == np.float32 and big.flags.writeable


def test_bundled_mlp_and_qk(bundled):
    _mlp_reproduces_output(bundled, "Grouped-query attention shares keys.")
    tr = ex.trace(bundled, "Grouped-query attention shares keys between heads.")
    qk = ex.queries_keys(bundled, tr, 7)
    assert qk.k.shape[0] == 3 and qk.group == 3
    for h in range(bundled.n_heads):
        _, pattern = ex.causal_softmax(qk.scores(h), qk.scale)
        np.testing.assert_allclose(pattern, tr.attn[7, h], atol=1e-5)


def test_bundled_cache_equals_gguf_weights(bundled):
    """The safetensors cache holds exactly what transformers de-quantises from the GGUF."""
    from transformers import AutoModelForCausalLM

    from explainer.models import bundled_gguf

    g = bundled_gguf()
    ref = AutoModelForCausalLM.from_pretrained(g.parent, gguf_file=g.name, dtype=torch.float32)
    ours = dict(bundled.model.named_parameters())
    for name, p in ref.named_parameters():
        assert torch.equal(p, ours[name]), name


# -- loading: folders, errors, devices ------------------------------------------------------------------

def test_local_folder_loads_like_a_hub_model(tmp_path, tiny_gpt2):
    tiny_gpt2.model.save_pretrained(tmp_path)
    tiny_gpt2.tokenizer.save_pretrained(tmp_path)
    lm = ex.load_model(str(tmp_path), device="cpu")
    assert lm.arch.family == "gpt2" and lm.weights_path.endswith(".safetensors")
    tr = ex.trace(lm, PROMPT)
    np.testing.assert_allclose(tr.logits, ex.trace(tiny_gpt2, PROMPT).logits, atol=1e-5)


def test_unknown_hub_id_says_what_to_do(monkeypatch):
    import explainer.models as models

    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: False)  # a classroom with no network
    with pytest.raises(ex.ModelLoadError, match="no connection to the Hugging Face Hub") as e:
        ex.load_model("no-such-user/no-such-model-xyz")
    assert "no-such-user/no-such-model-xyz" in str(e.value) and "bundled model" in str(e.value)


def test_not_a_causal_lm_is_refused_clearly(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                         vocab_size=100)).save_pretrained(tmp_path)
    with pytest.raises(ex.ModelLoadError, match="GPT-2, Llama, GPT-J or GPT-NeoX"):
        ex.load_model(str(tmp_path))


def test_folder_without_model_is_refused_clearly(tmp_path):
    with pytest.raises(ex.ModelLoadError, match="does not hold a loadable model"):
        ex.load_model(str(tmp_path))


def test_empty_name_is_refused():
    with pytest.raises(ex.ModelLoadError, match="No model name"):
        ex.load_model("  ")


def test_device_and_dtype_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu" and dtype_for(pick_device()) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda" and dtype_for(pick_device()) == torch.float16
    assert pick_device("cpu").type == "cpu"


def test_cache_folder_respects_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("EXPLAINER_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert cache_root() == tmp_path / "hf" / "transformer-explainer"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "transformer-explainer"
    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
