"""The bundled model's GGUF file → a transformers Llama checkpoint (config, weights, tokenizer), fast.

transformers can load a GGUF itself (`from_pretrained(..., gguf_file=...)`), but on two cores that takes
about 35 s: its GGUF reader builds a numpy view for every one of the ~98,000 vocabulary and merge strings
(three times: config, tokenizer, weights), and it builds a randomly initialised model before it fills it.
This module reads the file's header with `struct` (skipping the string arrays it does not need), memory-maps
the tensor data, de-quantises each tensor with the `gguf` package's own vectorised numpy de-quantisers
(`gguf.quants.dequantize`, the same functions transformers calls, so the floats are bit for bit the same),
undoes llama.cpp's rotary permutation of the query and key rows exactly as transformers' GGUF loader does,
and names the tensors as transformers' Llama checkpoint does. The tokenizer is still transformers' own
GGUF tokenizer (its fast reader), skipping `AutoTokenizer`'s slow config read.

Only what the bundled file needs is handled: the `llama` architecture with F32, F16, Q8_0 and Q4_1 tensors
(any type the `gguf` package can de-quantise works). tests/test_convert.py checks the result against
transformers' GGUF path: the same tensors, config, tokenizer files and logits.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# GGUF metadata value types (gguf.GGUFValueType): fixed-size scalars, then 8 = string, 9 = array.
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

# llama GGUF keys → transformers config keys (transformers.integrations.ggml.GGUF_CONFIG_MAPPING's
# "general", "llama" and "tokenizer" tables, in its order, so config.json comes out key for key the same).
_CONFIG_KEYS = {
    "general.architecture": "model_type",
    "general.name": "_model_name_or_path",
    "llama.context_length": "max_position_embeddings",
    "llama.block_count": "num_hidden_layers",
    "llama.feed_forward_length": "intermediate_size",
    "llama.embedding_length": "hidden_size",
    "llama.rope.dimension_count": "head_dim",
    "llama.rope.freq_base": "rope_theta",
    "llama.attention.head_count": "num_attention_heads",
    "llama.attention.head_count_kv": "num_key_value_heads",
    "llama.attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "llama.vocab_size": "vocab_size",
    "tokenizer.ggml.bos_token_id": "bos_token_id",
    "tokenizer.ggml.eos_token_id": "eos_token_id",
    "tokenizer.ggml.unknown_token_id": "unk_token_id",
    "tokenizer.ggml.padding_token_id": "pad_token_id",
}

# llama.cpp tensor names → transformers' LlamaForCausalLM names (gguf's TensorNameMap for LLAMA, reversed)
_GLOBAL_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                 "output.weight": "lm_head.weight"}
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_BLOCK = re.compile(r"blk\.(\d+)\.(\w+)\.weight$")


class GGUFFormatError(ValueError):
    """The file is not a GGUF this converter understands."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: tuple[int, ...]    # torch order (GGUF lists the fastest-moving dimension first)
    qtype: int                # gguf.GGMLQuantizationType value
    offset: int               # from the start of the data section


@dataclass(frozen=True)
class Header:
    metadata: dict            # every scalar and string value; string arrays are left out (their count kept)
    tensors: tuple[TensorEntry, ...]
    data_start: int


def read_header(path: str | Path) -> Header:
    """The GGUF file's metadata and tensor table (v2/v3), without reading any tensor data."""
    with open(path, "rb") as f:
        blob = f.read(1 << 20)
        pos = 0

        def need(n: int) -> None:  # read more of the file when the header runs past what is held
            nonlocal blob
            while pos + n > len(blob):
                more = f.read(max(n, 1 << 22))
                if not more:
                    raise GGUFFormatError(f"{path} ends inside its header (a truncated download?).")
                blob += more

        def take(fmt: str):
            nonlocal pos
            size = struct.calcsize(fmt)
            need(size)
            value = struct.unpack_from(fmt, blob, pos)
            pos += size
            return value if len(value) > 1 else value[0]

        def string() -> str:
            nonlocal pos
            n = take("<Q")
            need(n)
            s = blob[pos:pos + n].decode("utf-8")
            pos += n
            return s

        def value(vtype: int):
            nonlocal pos
            if vtype in _SCALAR:
                return take(_SCALAR[vtype])
            if vtype == _STRING:
                return string()
            if vtype == _ARRAY:
                etype, count = take("<IQ")
                if etype in _SCALAR:
                    size = struct.calcsize(_SCALAR[etype]) * count
                    need(size)
                    pos += size  # (the token types: nothing this converter needs)
                    return count
                if etype != _STRING:
                    return [value(etype) for _ in range(count)]
                for _ in range(count):  # the vocabulary and merges: walk past them
                    n = take("<Q")
                    need(n)
                    pos += n
                return count
            raise GGUFFormatError(f"{path}: unknown GGUF value type {vtype}.")

        if take("<4s") != b"GGUF":
            raise GGUFFormatError(f"{path} is not a GGUF file.")
        version, n_tensors, n_kv = take("<IQQ")
        if version not in (2, 3):
            raise GGUFFormatError(f"{path} is GGUF version {version}; only versions 2 and 3 are understood.")
        metadata = {}
        for _ in range(n_kv):
            key = string()
            metadata[key] = value(take("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = string()
            n_dims = take("<I")
            need(8 * n_dims)
            dims = struct.unpack_from(f"<{n_dims}Q", blob, pos)
            pos += 8 * n_dims
            qtype, offset = take("<IQ")
            tensors.append(TensorEntry(name, tuple(int(d) for d in reversed(dims)), int(qtype), int(offset)))
    align = int(metadata.get("general.alignment", 32))
    return Header(metadata, tuple(tensors), -(-pos // align) * align)


def config_dict(header: Header) -> dict:
    """The transformers config keys this file's metadata gives (the input of `LlamaConfig.from_dict`)."""
    meta = header.metadata
    if meta.get("general.architecture") != "llama":
        raise GGUFFormatError(f"Only the llama GGUF architecture is converted "
                              f"(got {meta.get('general.architecture')}).")
    out: dict = {"tie_word_embeddings": all(t.name != "output.weight" for t in header.tensors)}
    for key, name in _CONFIG_KEYS.items():
        if key in meta:
            out[name] = meta[key]
    if "vocab_size" not in out:  # older files: the vocabulary's length (transformers does the same)
        out["vocab_size"] = meta["tokenizer.ggml.tokens"]
    return out


def hf_name(gguf_name: str) -> str:
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    m = _BLOCK.match(gguf_name)
    if not m or m.group(2) not in _BLOCK_NAMES:
        raise GGUFFormatError(f"Unexpected tensor {gguf_name} in a llama GGUF.")
    return f"model.layers.{m.group(1)}.{_BLOCK_NAMES[m.group(2)]}.weight"


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rotary permutation of q_proj / k_proj rows (convert_hf_to_gguf.py `permute`):
    llama.cpp interleaves each head's two rotary halves; transformers keeps them as two halves.
    The same reshape and swap as transformers' `LlamaTensorProcessor`."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def read_weights(path: str | Path, header: Header, threads: int | None = None) -> dict[str, torch.Tensor]:
    """Every tensor de-quantised to float32, under transformers' names; tied weights appear once
    (as `model.embed_tokens.weight`), as the file holds them. numpy releases the GIL in the
    de-quantisers' array operations, so the tensors are shared out over `threads` (default: torch's count)."""
    from concurrent.futures import ThreadPoolExecutor

    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    meta = header.metadata
    n_head = int(meta["llama.attention.head_count"])
    n_kv = int(meta.get("llama.attention.head_count_kv", n_head))
    blob = np.memmap(path, mode="r", dtype=np.uint8)

    def one(t: TensorEntry) -> torch.Tensor:
        qtype = GGMLQuantizationType(t.qtype)
        block, type_size = GGML_QUANT_SIZES[qtype]
        if t.shape[-1] % block:
            raise GGUFFormatError(f"{t.name}: a row of {t.shape[-1]} is not whole {qtype.name} blocks.")
        row_bytes = t.shape[-1] // block * type_size
        n_bytes = int(np.prod(t.shape[:-1], dtype=np.int64)) * row_bytes
        start = header.data_start + t.offset
        if start + n_bytes > blob.shape[0]:
            raise GGUFFormatError(f"{path} ends inside tensor {t.name} (a truncated download?).")
        raw = blob[start:start + n_bytes].reshape(*t.shape[:-1], row_bytes)
        w = dequantize(raw, qtype)                                     # float32 (F32: a view of the map)
        if ".attn_q." in t.name:
            w = unpermute_rows(w, n_head)
        elif ".attn_k." in t.name:
            w = unpermute_rows(w, n_kv)
        if not w.flags.writeable or not w.flags.c_contiguous:  # F32: a read-only view of the file's map
            w = np.array(w, dtype=np.float32, order="C")
        return torch.from_numpy(w.reshape(t.shape))

    # largest first, so that the last tensor to finish is a small one
    order = sorted(header.tensors, key=lambda t: -int(np.prod(t.shape, dtype=np.int64)))
    with ThreadPoolExecutor(max(1, threads or torch.get_num_threads())) as pool:
        done = dict(zip((t.name for t in order), pool.map(one, order), strict=True))
    return {hf_name(t.name): done[t.name] for t in header.tensors}


def tokenizer_from_gguf(path: str | Path):
    """transformers' own GGUF tokenizer (the one `AutoTokenizer.from_pretrained(gguf_file=...)` gives:
    the same saved files, byte for byte), without AutoTokenizer's slow read of the model config."""
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    return PreTrainedTokenizerFast.from_pretrained(path.parent, gguf_file=path.name)


def reference_convert(gguf: str | Path, folder: str | Path) -> Path:
    """The slow reference: transformers' own GGUF loader (about 35 s on two cores), saved as the cache
    was before issue 13. tests/test_convert.py and benchmarks/convert.py compare the fast path with it."""
    import json

    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, folder = Path(gguf), Path(folder)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_model(model, str(folder / "model.safetensors"))  # drops the tied lm_head copy
    tok.save_pretrained(folder)
    return folder
