"""The bundled model's fast first-run conversion (explainer/convert.py) against transformers' own GGUF
path, and the cache's faults: a truncated or corrupt cache is rebuilt, two processes converting at once
make one good cache, and a cache folder that cannot be written still gives a model, with a notice."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import explainer as ex
from explainer import convert, models

PROMPTS = ["The Eiffel Tower is in the city of", "  naïve café — 東京 🚀 x=1+2;\n\tdone",
           "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"]


def _use_cache(mp: pytest.MonkeyPatch, folder: Path) -> None:
    """A private cache root, with nothing remembered about others in this process."""
    mp.setenv("EXPLAINER_CACHE", str(folder))
    mp.setattr(models, "_verified", set())
    mp.setattr(models, "_in_memory", {})


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """One conversion each way: the fast path into a fresh cache, and transformers' GGUF path."""
    root = tmp_path_factory.mktemp("convert")
    with pytest.MonkeyPatch.context() as mp:
        _use_cache(mp, root / "cache")
        fast = models.prepare_bundled()
    ref = convert.reference_convert(models.bundled_gguf(), root / "reference")
    return {"fast": fast, "reference": ref, "cache_root": root / "cache"}


def _logits(lm: ex.LoadedModel, text: str) -> np.ndarray:
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        return lm.model(input_ids=ids, use_cache=False).logits[0].numpy()


@pytest.fixture(scope="module")
def reference_logits(folders) -> np.ndarray:
    return _logits(ex.load_model(str(folders["reference"]), device="cpu"), PROMPTS[0])


def test_same_tensors_config_and_tokenizer_files(folders):
    fast, ref = folders["fast"], folders["reference"]
    assert json.loads((fast / "config.json").read_text()) == json.loads((ref / "config.json").read_text())
    assert (fast / "config.json").read_bytes() == (ref / "config.json").read_bytes()  # key order too
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (fast / name).read_bytes() == (ref / name).read_bytes(), name
    with safe_open(fast / "model.safetensors", "pt") as a, safe_open(ref / "model.safetensors", "pt") as b:
        assert a.metadata() == b.metadata()
        assert sorted(a.keys()) == sorted(b.keys())
        for k in b.keys():
            x, y = a.get_tensor(k), b.get_tensor(k)
            assert x.dtype == y.dtype == torch.float32 and x.shape == y.shape, k
            assert torch.equal(x, y), k  # the same de-quantiser, the same permutation: bit for bit
    manifest = json.loads((fast / models.MANIFEST).read_text())
    assert set(manifest["files"]) == {p.name for p in fast.iterdir()} - {models.MANIFEST}


def test_same_logits_and_tokens(folders, reference_logits):
    lm = ex.load_model(str(folders["fast"]), device="cpu")
    ref_tok = ex.load_model(str(folders["reference"]), device="cpu").tokenizer
    np.testing.assert_allclose(_logits(lm, PROMPTS[0]), reference_logits, rtol=0, atol=1e-5)
    for text in PROMPTS:
        assert lm.tokenizer(text)["input_ids"] == ref_tok(text)["input_ids"], text
        ids = lm.tokenizer(text)["input_ids"]
        assert lm.tokenizer.decode(ids) == ref_tok.decode(ids)


def test_unpermute_undoes_llama_cpp_permute():
    """llama.cpp's convert_hf_to_gguf.py `permute`, written out here, is undone exactly."""
    def permute(w, n_head):
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    for rows, heads in ((576, 9), (192, 3)):           # the bundled model's q_proj and k_proj
        w = np.arange(rows * 5, dtype=np.float32).reshape(rows, 5)
        assert not np.array_equal(permute(w, heads), w)
        np.testing.assert_array_equal(convert.unpermute_rows(permute(w, heads), heads), w)


@pytest.mark.parametrize("fault", ["truncated", "corrupt", "no manifest"])
def test_a_broken_cache_is_rebuilt(fault, folders, reference_logits, tmp_path, monkeypatch):
    _use_cache(monkeypatch, tmp_path)
    target = models.bundled_cache_dir()
    shutil.copytree(folders["fast"], target)
    weights = target / "model.safetensors"
    if fault == "truncated":          # a copy killed halfway, or a full disk
        with open(weights, "r+b") as f:
            f.truncate(weights.stat().st_size // 2)
    elif fault == "corrupt":          # the same size, different bytes (a crash before the data reached the disk)
        with open(weights, "r+b") as f:
            f.seek(weights.stat().st_size // 2)
            f.write(b"\0" * 4096)
    else:
        (target / models.MANIFEST).unlink()
    assert models.bundled_ready() is (fault == "corrupt")   # the cheap check sees sizes only
    lm = ex.load_model("bundled", device="cpu")
    assert lm.notice is None and lm.weights_path == str(weights)
    assert models._cache_ok(target, deep=True)
    np.testing.assert_allclose(_logits(lm, PROMPTS[0]), reference_logits, rtol=0, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left behind


def _convert_in_child(cache: str, start, out) -> None:
    os.environ["EXPLAINER_CACHE"] = cache
    from explainer import models as m

    messages: list[str] = []
    start.wait()
    path = m.prepare_bundled(lambda frac, msg: messages.append(msg))
    out.put((str(path), messages))


def test_two_processes_converting_at_once_make_one_good_cache(tmp_path, monkeypatch):
    _use_cache(monkeypatch, tmp_path)
    # A spawned child first re-runs the parent's __main__; after an AppTest that is the last page it ran (Streamlit
    # runs a script as __main__), whose run would load (and convert) the model before the child's own work.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ctx = multiprocessing.get_context("spawn")   # real, fresh processes, as two servers would be
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_convert_in_child, args=(str(tmp_path), start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    target = models.bundled_cache_dir()
    assert [path for path, _ in results] == [str(target)] * 2
    converted = [any(msg.startswith("First run") for msg in msgs) for _, msgs in results]
    assert sorted(converted) == [False, True], results      # one converted; the other used its result
    assert models._cache_ok(target, deep=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name, target.name + ".lock"]


@pytest.fixture
def unwritable(tmp_path, monkeypatch) -> Path:
    """A cache root where nothing can be created: a read-only file system (EROFS) at the OS calls that
    create files and folders. (chmod cannot make a folder read-only for root, who runs these tests here.)"""
    _use_cache(monkeypatch, tmp_path)
    real_mkdir, real_open = os.mkdir, os.open

    def inside(path) -> bool:
        return Path(os.fspath(path)).resolve().is_relative_to(tmp_path.resolve())

    def mkdir(path, *a, **kw):
        if inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *a, **kw)

    def open_(path, flags, *a, **kw):
        if inside(path) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    return tmp_path


def test_a_read_only_cache_still_loads_with_a_notice(unwritable, reference_logits):
    assert models.prepare_bundled() is None
    lm = ex.load_model("bundled", device="cpu")
    assert lm.notice and "could not be written" in lm.notice and "EXPLAINER_CACHE" in lm.notice
    assert lm.weights_path is None and lm.tied_embeddings
    np.testing.assert_allclose(_logits(lm, PROMPTS[0]), reference_logits, rtol=0, atol=1e-5)
    assert models.bundled_ready()                       # converted once: later loads do not convert again
    assert list(unwritable.iterdir()) == []


def test_a_full_disk_still_loads_with_a_notice(tmp_path, monkeypatch, reference_logits):
    import safetensors.torch

    _use_cache(monkeypatch, tmp_path)

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 1000)   # part of the file, then the disk is full
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    lm = ex.load_model("bundled", device="cpu")
    assert lm.notice and "No space left" in lm.notice
    np.testing.assert_allclose(_logits(lm, PROMPTS[0]), reference_logits, rtol=0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [models.bundled_cache_dir().name + ".lock"]
