"""Parameter counts from a config alone, checked against models actually built from those configs.

The reference is always `sum(p.numel() for p in model.parameters())` of a real transformers model
(`parameters()` yields a tied matrix once); big configs are built on the meta device (no memory).
"""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTJConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
)

from explainer import anatomy
from explainer.arch import arch_for
from explainer.errors import ExplainerError
from explainer.models import TINY_FAMILIES, tiny_config


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta_model(config):
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _check_against_model(pc: anatomy.ParamCount, model) -> None:
    """Total, matrices, tying, and every part against the modules that hold it."""
    assert pc.total == _numel(model)
    assert pc.n_matrices == sum(1 for p in model.parameters() if p.dim() == 2)
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    assert pc.tied == (inp.weight is out.weight)
    assert pc.embedding == inp.weight.numel()
    arch = arch_for(model.config.model_type)
    pos = arch.pos_embed_module(model)
    assert pc.positional == (_numel(pos) if pos is not None else 0)
    blocks = arch.block_list(model)
    assert len(blocks) == pc.n_layers
    for block in blocks:
        attn, mlp = _numel(arch.attention(block)), _numel(arch.mlp_module(block))
        assert attn == pc.attention_per_layer
        assert mlp == pc.mlp_per_layer
        assert _numel(block) - attn - mlp == pc.norms_per_layer
    assert pc.final_norm == _numel(arch.final_norm_module(model))
    head_own = 0 if pc.tied else out.weight.numel()
    head_own += out.bias.numel() if getattr(out, "bias", None) is not None else 0
    assert pc.unembedding == head_own


def test_gpt2_small_total_is_124_439_808():
    pc = anatomy.count_parameters(GPT2Config())
    assert pc.total == 124_439_808
    assert pc.total == _numel(_meta_model(GPT2Config()))
    assert pc.tied and pc.unembedding == 0
    assert pc.embedding == 50257 * 768 and pc.positional == 1024 * 768


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_every_supported_family_matches_a_model_built_from_its_config(family):
    torch.manual_seed(0)
    config = tiny_config(family)
    model = AutoModelForCausalLM.from_config(config)
    _check_against_model(anatomy.count_parameters(config), model)


def test_bundled_model_config_matches_the_loaded_model(bundled):
    pc = anatomy.count_parameters(bundled.config)
    _check_against_model(pc, bundled.model)
    assert pc.tied and pc.n_kv_heads == 3 and pc.n_heads == 9
    assert (pc.n_layers, pc.d_model, pc.vocab_size) == (bundled.n_layers, bundled.d_model, bundled.vocab_size)


@pytest.mark.parametrize("config", [
    GPT2Config(n_layer=2, n_embd=64, n_head=4, n_inner=100, tie_word_embeddings=False),
    LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=96, attention_bias=True, mlp_bias=True, head_dim=32),
    MistralConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=96),
    Qwen2Config(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                intermediate_size=96, tie_word_embeddings=True),
    GPTNeoXConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                  attention_bias=False),
    GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, tie_word_embeddings=True),
], ids=["gpt2-untied-ninner", "llama-bias-headdim", "mistral", "qwen2-tied", "neox-nobias", "gptj-tied"])
def test_config_variants_match_built_models(config):
    _check_against_model(anatomy.count_parameters(config), _meta_model(config))


def test_scale_table_matches_models_built_on_the_meta_device():
    configs = anatomy.scale_configs()
    assert set(configs) == {"GPT-2 small", "GPT-2 medium", "GPT-2 large", "GPT-2 XL", "GPT-J 6B",
                            "Llama 2 7B", "Llama 2 70B", "GPT-3 175B"}
    rows = {r.name: r for r in anatomy.scale_table()}
    for name, config in configs.items():
        assert rows[name].total == _numel(_meta_model(config)), name
    gpt3 = rows["GPT-3 175B"].count
    assert (gpt3.d_model, gpt3.n_layers, gpt3.n_heads, gpt3.vocab_size, gpt3.n_ctx) == (12288, 96, 96, 50257, 2048)
    assert 174e9 < gpt3.total < 176e9
    assert 6.7e9 < rows["Llama 2 7B"].total < 6.8e9
    # the embedding's share shrinks with scale within one family
    shares = [rows[n].count.embedding_share for n in ("GPT-2 small", "GPT-2 medium", "GPT-2 large", "GPT-2 XL")]
    assert shares == sorted(shares, reverse=True)
    totals = [r.total for r in anatomy.scale_table()]
    assert totals == sorted(totals)


def test_bytes_and_the_weights_file_on_disk(bundled):
    pc = anatomy.count_parameters(bundled.config)
    assert pc.nbytes("float32") == 4 * pc.total
    assert pc.nbytes("float16") == 2 * pc.total
    assert pc.nbytes("4-bit") == (pc.total + 1) // 2
    tf = anatomy.two_files(bundled)
    assert tf.weights_path == bundled.weights_path and tf.n_weight_files == 1
    # a float32 safetensors file: 4 bytes per parameter plus a small JSON header
    assert 0 < tf.weights_bytes - 4 * pc.total < 0.001 * tf.weights_bytes
    assert tf.original_path and tf.original_path.endswith(".gguf")
    assert tf.original_bytes < tf.weights_bytes / 4  # the 4-bit GGUF is far smaller than float32
    assert tf.code_path.endswith("modeling_llama.py")
    assert 0 < tf.code_statements < tf.code_lines
    names = [n for n, _ in tf.core]
    assert names == [type(m).__name__ for m in (bundled.model.model.layers[0], bundled.model.model.layers[0].self_attn,
                                                  bundled.model.model.layers[0].mlp)]
    assert all(f"class {n}" in src for n, src in tf.core)


def test_two_files_of_a_model_built_in_memory(tiny):
    tf = anatomy.two_files(tiny)
    assert tf.weights_path is None and tf.weights_bytes is None and tf.original_path is None
    assert tf.code_path.endswith(".py") and tf.core


def test_count_code_lines_by_hand(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""Module doc\nover two lines."""\n\n# a comment\nx = 1\n\n\ndef f():\n    """Doc."""\n'
                 "    return x  # trailing\n")
    assert anatomy.count_code_lines(str(f)) == (10, 3)  # x = 1, def f():, return x


def test_shards_are_found_together(tmp_path):
    for i in (1, 2, 3):
        (tmp_path / f"model-0000{i}-of-00003.safetensors").write_bytes(b"x" * i)
    (tmp_path / "other.safetensors").write_bytes(b"y")
    files = anatomy.weights_files(str(tmp_path / "model-00001-of-00003.safetensors"))
    assert [f.name for f in files] == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert anatomy.weights_files(None) == () and anatomy.weights_files(str(tmp_path / "missing")) == ()


def test_unsupported_architecture_says_what_to_do():
    from transformers import BertConfig

    with pytest.raises(ExplainerError, match="supported family"):
        anatomy.count_parameters(BertConfig())


def test_human_formats():
    assert anatomy.human_count(124_439_808) == "124.4M"
    assert anatomy.human_count(174_604_259_328) == "174.6B"
    assert anatomy.human_count(950) == "950"
    assert anatomy.human_bytes(538_090_424) == "538.1 MB"
    assert anatomy.human_bytes(512) == "512 B"


def test_gguf_storage_formats_of_the_bundled_file(bundled):
    tf = anatomy.two_files(bundled)
    parts = {p.kind: p for p in tf.original_parts}
    # ggml's block layouts by hand: 32 numbers per block plus float16 scale (and offset for Q4_1)
    assert parts["Q4_1"].bits_per_param == (32 * 4 + 16 + 16) / 32 == 5.0
    assert parts["Q8_0"].bits_per_param == (32 * 8 + 16) / 32 == 8.5
    assert parts["F32"].bits_per_param == 32
    assert parts["Q8_0"].examples == ("token_embd.weight",)              # the embedding is kept at 8 bits
    assert sum(p.n_params for p in tf.original_parts) == anatomy.count_parameters(bundled.config).total
    payload = sum(p.n_params * p.bits_per_param for p in tf.original_parts) / 8       # bytes of numbers
    assert payload < tf.original_bytes < payload * 1.02                  # the rest is the header
