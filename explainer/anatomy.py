"""Anatomy of a model: where its parameters are, counted from the configuration alone.

"A large language model is just two files": a file of numbers (the parameters) and the code that runs
them. `count_parameters(config)` works out every weight matrix, bias and norm vector of a supported
family from its transformers configuration, without building the model, so the same function sizes a
135M model on a laptop and GPT-3 (175B), which no laptop could hold.

Per family (checked against the transformers 5 modeling files; the formulas live in each family's
record in arch.py):
- GPT-2: learned token and position embeddings; per block ln_1, c_attn (q,k,v in one Conv1D, with bias),
  c_proj, ln_2, c_fc, c_proj (all with bias); ln_f; lm_head tied to the token embedding by default.
- Llama (and Mistral, Qwen2): token embedding only (rotary positions have no parameters); per block
  RMSNorm, q/k/v/o projections (k and v for the key/value heads only: grouped-query attention; biases
  per `attention_bias`, Qwen2: q/k/v always), RMSNorm, SwiGLU gate/up/down (biases per `mlp_bias`);
  final RMSNorm; lm_head untied unless `tie_word_embeddings`.
- GPT-J: token embedding, rotary positions; per block one ln_1 (attention and MLP read the same
  normalised input in parallel), bias-free q/k/v/out projections, fc_in and fc_out with bias; ln_f;
  lm_head with a bias, untied.
- GPT-NeoX (Pythia): token embedding, rotary positions; per block two LayerNorms, one query_key_value
  matrix and a dense output (biases per `attention_bias`), dense_h_to_4h and dense_4h_to_h with bias;
  final LayerNorm; lm_head untied.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .arch import ARCHS, config_value
from .errors import ExplainerError

GROUPS = ("embedding", "positional", "attention", "mlp", "norms", "unembedding")
GROUP_LABELS = {
    "embedding": "Token embedding",
    "positional": "Position embedding",
    "attention": "Attention",
    "mlp": "MLP",
    "norms": "Norms",
    "unembedding": "Unembedding (lm_head)",
}
BYTES_PER_PARAM = {"float32": 4.0, "float16": 2.0, "4-bit": 0.5}

SUPPORTED = tuple(ARCHS)   # gpt2, llama, mistral, qwen2, gptj, gpt_neox


@dataclass(frozen=True)
class ParamCount:
    """Parameter counts of one model, from its configuration. Tied weights are counted once: when the
    unembedding shares the token-embedding matrix, `tied` is True and `unembedding` holds only what the
    output layer adds on its own (GPT-J's bias), usually 0."""

    family: str
    embedding: int            # token embedding table [V, D]
    positional: int           # learned position table [n_ctx, D] (0 with rotary positions)
    attention: int            # all blocks: q, k, v, output projections and their biases
    mlp: int                  # all blocks: up (and gate) and down projections and biases
    norms: int                # every LayerNorm / RMSNorm in the blocks, plus the final norm
    unembedding: int          # lm_head (0 when tied, except for a bias of its own)
    tied: bool                # lm_head re-uses the token embedding matrix
    n_matrices: int           # 2-D weight tensors (embeddings, projections, unembedding if untied)
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    vocab_size: int
    n_ctx: int
    attention_per_layer: int
    mlp_per_layer: int
    norms_per_layer: int

    @property
    def total(self) -> int:
        return self.embedding + self.positional + self.attention + self.mlp + self.norms + self.unembedding

    @property
    def final_norm(self) -> int:
        """The norm after the last block (the rest of `norms` sits inside the blocks)."""
        return self.norms - self.n_layers * self.norms_per_layer

    @property
    def per_layer(self) -> int:
        return self.attention_per_layer + self.mlp_per_layer + self.norms_per_layer

    @property
    def embedding_share(self) -> float:
        """The token-embedding matrix's share of all parameters (counted once even when tied)."""
        return self.embedding / self.total

    def nbytes(self, precision: str = "float32") -> int:
        """Bytes the parameters take at `precision` ("float32", "float16" or "4-bit"; 4-bit formats add a
        few percent of per-block scales on top, left out here)."""
        return int(math.ceil(self.total * BYTES_PER_PARAM[precision]))


def count_parameters(config) -> ParamCount:
    """Count the parameters a transformers config describes, by part, without building the model.

    The per-family formula is the family record's (`arch.Arch.params`); this assembles the totals."""
    family = getattr(config, "model_type", None)
    if family not in SUPPORTED:
        raise ExplainerError(f"Cannot count the parameters of architecture '{family}'.",
                             f"Pick a model of a supported family: {', '.join(SUPPORTED)}.")
    p = ARCHS[family].params(config)
    d, n_layers, vocab = int(config.hidden_size), int(config.num_hidden_layers), int(config.vocab_size)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    embedding = vocab * d
    unembedding = p.lm_head_bias + (0 if tied else vocab * d)
    n_matrices = 1 + (p.positional > 0) + n_layers * (p.attn_mats + p.mlp_mats) + (not tied)
    return ParamCount(
        family=family, embedding=embedding, positional=p.positional, attention=n_layers * p.attn,
        mlp=n_layers * p.mlp, norms=n_layers * p.norms + p.final_norm, unembedding=unembedding, tied=tied,
        n_matrices=int(n_matrices), n_layers=n_layers, n_heads=int(config.num_attention_heads),
        n_kv_heads=p.n_kv_heads, d_model=d, d_head=p.d_head, d_mlp=p.d_mlp, vocab_size=vocab,
        n_ctx=int(config_value(config, "n_positions", "max_position_embeddings", default=0)),
        attention_per_layer=p.attn, mlp_per_layer=p.mlp, norms_per_layer=p.norms,
    )


# -- the scale table: famous models, counted by the same function ---------------------------------

def scale_configs() -> dict[str, object]:
    """Configurations of well-known models, as published (no download: the numbers are written out)."""
    from transformers import GPT2Config, GPTJConfig, LlamaConfig

    def gpt2(d, layers, heads, vocab=50257, ctx=1024):
        return GPT2Config(n_embd=d, n_layer=layers, n_head=heads, vocab_size=vocab, n_positions=ctx)

    def llama2(d, layers, heads, kv, d_mlp):
        return LlamaConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                           num_key_value_heads=kv, intermediate_size=d_mlp, vocab_size=32000,
                           max_position_embeddings=4096, tie_word_embeddings=False)

    return {
        "GPT-2 small": gpt2(768, 12, 12),
        "GPT-2 medium": gpt2(1024, 24, 16),
        "GPT-2 large": gpt2(1280, 36, 20),
        "GPT-2 XL": gpt2(1600, 48, 25),
        "GPT-J 6B": GPTJConfig(n_embd=4096, n_layer=28, n_head=16, rotary_dim=64, vocab_size=50400,
                               n_positions=2048),
        "Llama 2 7B": llama2(4096, 32, 32, 32, 11008),
        "Llama 2 70B": llama2(8192, 80, 64, 8, 28672),
        "GPT-3 175B": gpt2(12288, 96, 96, vocab=50257, ctx=2048),
    }


# Rows whose tied embeddings are assumed rather than published: the GPT-3 paper describes "the same model
# and architecture as GPT-2" (which ties them) but does not say so outright.
TIED_ASSUMED = frozenset({"GPT-3 175B"})


@dataclass(frozen=True)
class ScaleRow:
    name: str
    count: ParamCount

    @property
    def total(self) -> int:
        return self.count.total


def scale_table(extra: dict[str, object] | None = None) -> tuple[ScaleRow, ...]:
    """One row per famous model (plus `extra` configs, e.g. the loaded model), smallest first."""
    configs = {**scale_configs(), **(extra or {})}
    rows = [ScaleRow(name, count_parameters(cfg)) for name, cfg in configs.items()]
    return tuple(sorted(rows, key=lambda r: r.total))


# -- the two files: weights and code --------------------------------------------------------------

@dataclass(frozen=True)
class TwoFiles:
    """"A model is two files": the parameters and the code that runs them."""

    weights_path: str | None      # None when the model was built in memory (tiny test models)
    weights_bytes: int | None     # all shards together
    n_weight_files: int
    original_path: str | None     # the file the weights were converted from (the bundled model's GGUF)
    original_bytes: int | None
    code_path: str                # the transformers modeling file of the architecture
    code_lines: int               # every line of the modeling file
    code_statements: int          # lines that are neither blank, comments nor docstrings
    core: tuple[tuple[str, str], ...]   # (class name, source) of the block, its attention and its MLP
    original_parts: tuple[StoredAs, ...] = ()   # how the original (GGUF) file stores its numbers


# Bits per number of the GGUF block formats the bundled model uses: the packed numbers plus, per block of
# 32, one float16 scale (Q8_0, Q4_0) or a float16 scale and a float16 offset (Q4_1). From ggml's block
# layouts; `gguf.GGML_QUANT_SIZES` gives (block size, bytes per block) for every type.
_GGUF_WHAT = {
    "F32": "32-bit floats", "F16": "16-bit floats", "BF16": "bfloat16",
    "Q8_0": "8-bit numbers with a scale for each block of 32",
    "Q4_0": "4-bit numbers with a scale for each block of 32",
    "Q4_1": "4-bit numbers with a scale and an offset for each block of 32",
}


@dataclass(frozen=True)
class StoredAs:
    """One storage format of a GGUF file: which tensors use it and what it costs."""

    kind: str                 # the GGML type name: "Q4_1", "Q8_0", "F32", ...
    n_tensors: int
    n_params: int
    bits_per_param: float     # including the per-block scales
    what: str                 # the format in words
    examples: tuple[str, ...] # a few tensor names stored this way


def gguf_parts(path: str | Path) -> tuple[StoredAs, ...]:
    """How a GGUF file stores its numbers, by format, largest share first (read from its header only)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    groups: dict[str, list] = {}
    for t in reader.tensors:
        groups.setdefault(t.tensor_type.name, []).append(t)
    out = []
    for kind, ts in groups.items():
        block, nbytes = gguf.GGML_QUANT_SIZES[ts[0].tensor_type]
        n = sum(int(t.n_elements) for t in ts)
        out.append(StoredAs(kind=kind, n_tensors=len(ts), n_params=n, bits_per_param=8 * nbytes / block,
                            what=_GGUF_WHAT.get(kind, kind), examples=tuple(t.name for t in ts[:3])))
    return tuple(sorted(out, key=lambda p: -p.n_params))


_SHARD = re.compile(r"-\d{5}-of-(\d{5})\.safetensors$")


def weights_files(path: str | None) -> tuple[Path, ...]:
    """The weights file, or every shard of a sharded checkpoint (model-00001-of-00003.safetensors)."""
    if not path or not os.path.exists(path):
        return ()
    p = Path(path)
    m = _SHARD.search(p.name)
    if not m:
        return (p,)
    stem = p.name[: m.start()]
    return tuple(sorted(p.parent.glob(f"{stem}-*-of-{m.group(1)}.safetensors")))


def count_code_lines(path: str) -> tuple[int, int]:
    """(all lines, code lines) of a Python file; code lines leave out blanks, comments and docstrings."""
    import ast

    src = Path(path).read_text(encoding="utf-8")
    lines = src.splitlines()
    doc: set[int] = set()
    for node in ast.walk(ast.parse(src)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    code = sum(1 for i, ln in enumerate(lines, 1) if ln.strip() and not ln.strip().startswith("#") and i not in doc)
    return len(lines), code


def _original(weights: Path | None) -> Path | None:
    """The bundled model's cache folder records the GGUF file it was de-quantised from."""
    src = weights.parent / "SOURCE" if weights else None
    if src is None or not src.exists():
        return None
    p = Path(src.read_text(encoding="utf-8").strip())
    return p if p.exists() else None


def core_code(lm) -> tuple[tuple[str, str], ...]:
    """Source of the classes that run one block: the block itself, its attention and its MLP."""
    block = lm.arch.block_list(lm.model)[0]
    out = []
    for mod in (block, lm.arch.attention(block), lm.arch.mlp_module(block)):
        cls = type(mod)
        try:
            out.append((cls.__name__, inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
    return tuple(out)


def two_files(lm) -> TwoFiles:
    """Where the loaded model's weights lie (and their size) and the modeling file that runs them."""
    files = weights_files(lm.weights_path)
    orig = _original(files[0] if files else None)
    code = inspect.getsourcefile(type(lm.model))
    n_lines, n_code = count_code_lines(code)
    return TwoFiles(
        weights_path=str(files[0]) if files else lm.weights_path,
        weights_bytes=sum(f.stat().st_size for f in files) if files else None,
        n_weight_files=len(files), original_path=str(orig) if orig else None,
        original_bytes=orig.stat().st_size if orig else None,
        code_path=code, code_lines=n_lines, code_statements=n_code, core=core_code(lm),
        original_parts=gguf_parts(orig) if orig and orig.suffix == ".gguf" else (),
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def human_count(n: float) -> str:
    """124,439,808 -> '124.4M'; 174,591,049,728 -> '174.6B'."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"
