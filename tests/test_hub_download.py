"""A Hub model through the real Hugging Face client, against a local stand-in for the Hub (tests/fake_hub.py):
its size is asked of the Hub and checked before the download, the download reports its bytes, only the files
the app reads are fetched, and the client's typed errors become their own messages."""

import numpy as np
import pytest

import explainer as ex
from explainer import models
from explainer.anatomy import human_bytes
from explainer.errors import ModelLoadError
from tests.fake_hub import FakeHub

PROMPT = "The cat sat on the mat because"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A tiny GPT-2's repository as the Hub holds one: also a pickled .bin and an ONNX copy the app must skip."""
    lm = ex.tiny_model("gpt2", seed=0)
    folder = tmp_path_factory.mktemp("org-tiny")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"\0" * 4096)
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.safetensors").write_bytes(b"\0" * 4096)
    (folder / "README.md").write_text("# tiny")
    return folder, lm


@pytest.fixture
def hub(repo, tmp_path, monkeypatch):
    from huggingface_hub import constants

    errors = {"org/gated": (401, "GatedRepo"), "org/old": (404, "RevisionNotFound"), "org/down": (503, "")}
    server = FakeHub({"org/tiny": repo[0]}, errors=errors, seconds_per_mb=0.15)   # a slow link: progress shows
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.close()


def _wanted_bytes(folder) -> int:
    """What the app reads, worked out from the repository's files: top-level config, tokenizer and weights."""
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.is_file() and p.suffix in (".json", ".safetensors", ".txt"))


def test_a_hub_model_is_sized_then_downloaded_with_progress(hub, repo):
    folder, tiny = repo
    heard: list[tuple[float, str]] = []
    lm = ex.load_model("org/tiny", device="cpu", progress=lambda f, m: heard.append((f, m)))
    size = _wanted_bytes(folder)
    said = [m for _, m in heard]
    assert any(f"a download of {human_bytes(size)}" in m for m in said), said
    counts = [m for m in said if m.startswith("Downloading org/tiny: ")]
    assert any(not m.startswith("Downloading org/tiny: 0 B") and not m.startswith(
        f"Downloading org/tiny: {human_bytes(size)}") for m in counts), counts   # a count between 0 and all
    fracs = [f for f, _ in heard]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    assert sorted(hub.fetched()) == sorted(p.name for p in folder.iterdir()
                                           if p.is_file() and p.suffix in (".json", ".safetensors", ".txt"))
    np.testing.assert_allclose(ex.trace(lm, PROMPT).logits, ex.trace(tiny, PROMPT).logits, atol=1e-5)
    assert lm.name == "org/tiny" and lm.weights_path.endswith("model.safetensors")

    hub.log.clear()
    heard.clear()
    ex.load_model("org/tiny", device="cpu", progress=lambda f, m: heard.append((f, m)))
    assert hub.fetched() == []                                            # the second time, from the cache
    assert any("is in this machine's Hugging Face cache" in m for _, m in heard)


def test_a_download_bigger_than_the_free_disk_is_refused_with_the_numbers(hub, repo, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 50_000, 50_000))
    with pytest.raises(ModelLoadError) as e:
        ex.load_model("org/tiny", device="cpu")
    assert f"a download of {human_bytes(_wanted_bytes(repo[0]))}" in str(e.value)
    assert human_bytes(50_000) in str(e.value) and "free" in str(e.value)
    assert not any(f.endswith(".safetensors") for f in hub.fetched())    # refused before the weights


@pytest.mark.parametrize("name, words", [
    ("org/gated", ["gated", "licence", "`hf auth login`"]),
    ("org/nothing-here", ["no model 'org/nothing-here'", "spelling"]),
    ("org/old", ["no such revision"]),
    ("org/down", ["HTTP 503"]),
])
def test_the_real_clients_typed_errors_give_their_own_messages(hub, name, words):
    with pytest.raises(ModelLoadError) as e:
        ex.load_model(name, device="cpu")
    for w in words:
        assert w in str(e.value), str(e.value)
    assert hub.fetched() == []


def test_a_repository_with_only_pickled_weights_is_refused_before_the_download(hub, tmp_path):
    (tmp_path / "bin-only").mkdir()
    (tmp_path / "bin-only" / "config.json").write_text(models.tiny_config("gpt2").to_json_string())
    (tmp_path / "bin-only" / "pytorch_model.bin").write_bytes(b"\0" * 4096)
    hub.repos["org/bin-only"] = tmp_path / "bin-only"
    with pytest.raises(ModelLoadError, match="no safetensors weights"):
        ex.load_model("org/bin-only", device="cpu")
    assert hub.fetched() == []


def test_the_picker_loads_a_typed_hub_id_through_the_download(hub, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from explainer import budget

    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    budget.MODELS.clear()
    try:
        at = AppTest.from_file("../streamlit_app.py", default_timeout=300).run()
        at.selectbox(key="model_pick").set_value("Other: a Hub id or a local folder…").run()
        at.text_input(key="model_other").set_value("org/tiny").run()
        assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
        assert at.session_state.model_name == "org/tiny" and at.query_params["model"] in ("org/tiny", ["org/tiny"])
        assert "org/tiny" in budget.MODELS and "model.safetensors" in hub.fetched()
    finally:
        budget.MODELS.clear()
