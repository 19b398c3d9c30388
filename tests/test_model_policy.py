"""A model picker a class cannot break (explainer/models.py): EXPLAINER_MODELS restricts what loads, local
folders are off when the server listens beyond localhost, a model that cannot fit is refused before its
weights are read, a failed load keeps nothing, and the Hub client's typed errors each get their own advice."""

from __future__ import annotations

import gc
import weakref

import httpx2
import pytest
from huggingface_hub import errors as hf
from streamlit.testing.v1 import AppTest

import explainer as ex
from explainer import models
from explainer.errors import ModelLoadError
from explainer.models import ModelPolicy
from tests.conftest import page_ok


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A loadable local model folder: a tiny GPT-2 with safetensors weights and its tokenizer."""
    lm = ex.tiny_model("gpt2", seed=0)
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_the_folder_loads_when_allowed(tiny_folder, monkeypatch):
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    lm = ex.load_model(str(tiny_folder), device="cpu", allowed=ModelPolicy.from_env("localhost"))
    assert lm.n_layers == 2
    monkeypatch.setenv(models.MODELS_ENV, f"bundled,{tiny_folder.parent}")     # a listed folder root
    assert ModelPolicy.from_env("0.0.0.0").refusal(str(tiny_folder)) is None


def test_explainer_models_bundled_refuses_a_loadable_local_folder(tiny_folder, monkeypatch):
    monkeypatch.setenv(models.MODELS_ENV, "bundled")
    policy = ModelPolicy.from_env("localhost")
    assert policy.choices == ("bundled",) and not policy.typing_allowed
    with pytest.raises(ModelLoadError, match="does not open local folders"):
        ex.load_model(str(tiny_folder), device="cpu", allowed=policy)
    with pytest.raises(ModelLoadError, match="offers only these models: bundled"):
        ex.load_model("gpt2", device="cpu", allowed=policy)
    assert policy.refusal("bundled") is None


def test_a_server_listening_beyond_localhost_opens_no_folder(tiny_folder, monkeypatch):
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    monkeypatch.delenv(models.FOLDERS_ENV, raising=False)
    for address in (None, "", "0.0.0.0", "192.168.1.20"):                # Streamlit's default is every address
        why = ModelPolicy.from_env(address).refusal(str(tiny_folder))
        assert why is not None and "does not open local folders" in str(why) and models.FOLDERS_ENV in str(why)
        assert ModelPolicy.from_env(address).refusal("gpt2") is None      # Hub ids still load
    assert ModelPolicy.from_env("localhost").refusal(str(tiny_folder)) is None
    monkeypatch.setenv(models.FOLDERS_ENV, "1")
    assert ModelPolicy.from_env("0.0.0.0").refusal(str(tiny_folder)) is None
    assert ModelPolicy.from_env("0.0.0.0").refusal("/etc/../etc") is None   # allowed: any folder


def test_the_app_refuses_a_folder_in_the_link(tiny_folder, monkeypatch, offline):
    monkeypatch.setenv(models.MODELS_ENV, "bundled")
    at = AppTest.from_file("../streamlit_app.py", default_timeout=300)
    at.query_params["model"] = str(tiny_folder)
    at.run()
    page_ok(at)
    said = " ".join(w.value for w in at.warning)
    assert "could not be loaded" in said and "does not open local folders" in said
    assert at.selectbox(key="model_pick").options == ["SmolLM2-135M-Instruct (bundled, offline)"]
    assert at.session_state.model_name == "bundled"


def test_a_model_that_cannot_fit_is_refused_before_its_weights(tiny_folder, monkeypatch):
    from transformers import AutoModelForCausalLM

    def never(*a, **k):
        raise AssertionError("weights were read")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", never)
    with pytest.raises(ModelLoadError) as e:
        ex.load_model(str(tiny_folder), device="cpu", max_bytes=1000)
    from explainer.anatomy import human_bytes

    need = human_bytes(models.model_nbytes(ex.tiny_model("gpt2").config, ex.tiny_model("gpt2").dtype))
    assert f"needs about {need}" in str(e.value) and f"({human_bytes(1000)}," in str(e.value)
    monkeypatch.setattr(models, "_free_memory", lambda device: (10_000, "free RAM"))
    with pytest.raises(ModelLoadError, match=f"only {human_bytes(10_000)} of free RAM"):
        ex.load_model(str(tiny_folder), device="cpu")


def test_model_size_from_the_config_matches_the_model(tiny_folder):
    lm = ex.load_model(str(tiny_folder), device="cpu")
    from explainer.budget import model_bytes

    assert models.model_nbytes(lm.config, lm.dtype) == model_bytes(lm)


def test_a_load_that_fails_halfway_keeps_nothing(tiny_folder, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    made = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*a, **k):
        m = real(*a, **k)
        made.append(weakref.ref(m))
        return m

    def broken(*a, **k):
        raise OSError("tokenizer.json is damaged")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", broken)
    with pytest.raises(ModelLoadError, match="does not hold a loadable model"):
        ex.load_model(str(tiny_folder), device="cpu")
    gc.collect()
    assert made and made[0]() is None                                   # the half-built model is gone


def test_a_failed_load_keeps_the_models_held(tiny_folder, monkeypatch):
    from explainer import budget, ui

    budget.MODELS.clear()
    monkeypatch.setenv(models.MODELS_ENV, f"bundled,{tiny_folder.parent}")
    try:
        first = ui.get_model(str(tiny_folder))
        with pytest.raises(ModelLoadError):
            ui.get_model(str(tiny_folder.parent / "missing"))
        assert ui.get_model(str(tiny_folder)) is first and len(budget.MODELS) == 1
    finally:
        budget.MODELS.clear()


# -- the Hub client's typed errors ------------------------------------------------------------------

def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/x/resolve/main/config.json"))


TYPED = {
    "gated": (lambda: hf.GatedRepoError("gated", response=_response(401)), ["gated", "licence", "`hf auth login`"]),
    "missing": (lambda: hf.RepositoryNotFoundError("404", response=_response(404)), ["no model", "spelling"]),
    "offline": (lambda: hf.LocalEntryNotFoundError("not cached"), ["not in this machine's Hugging Face cache",
                                                                   "`hf download some-org/some-model --local-dir"]),
    "revision": (lambda: hf.RevisionNotFoundError("rev", response=_response(404)), ["no such revision"]),
    "server": (lambda: hf.HfHubHTTPError("boom", response=_response(503)), ["HTTP 503", "`hf download"]),
}


@pytest.mark.parametrize("kind", list(TYPED))
def test_each_typed_hub_error_gives_its_own_message(kind, monkeypatch):
    make, words = TYPED[kind]

    def fails(*a, **k):
        try:
            raise make()
        except Exception as inner:                     # transformers wraps the client's error in an OSError
            raise OSError("We couldn't connect to the Hub") from inner

    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(models, "hub_plan", fails)
    with pytest.raises(ModelLoadError) as e:
        ex.load_model("some-org/some-model", device="cpu")
    for w in words:
        assert w in str(e.value), (kind, str(e.value))
    assert "huggingface-cli" not in str(e.value)
    others = [w for k, (_, ws) in TYPED.items() if k != kind for w in ws[:1]]
    assert not any(w in str(e.value) for w in others), (kind, str(e.value))


def test_a_malformed_id_is_called_malformed(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: pytest.fail("no network for a bad id"))
    for bad in ("a//b", "has space", "x" * 200, "gpt2!"):
        with pytest.raises(ModelLoadError, match="malformed"):
            ex.load_model(bad, device="cpu")
    with pytest.raises(ModelLoadError, match="no folder"):
        ex.load_model("/no/such/folder", device="cpu")


def test_offline_mode_says_so(offline):
    with pytest.raises(ModelLoadError, match="no connection to the Hugging Face Hub") as e:
        ex.load_model("some-org/not-cached-anywhere", device="cpu")
    assert "`hf download some-org/not-cached-anywhere --local-dir DIR`" in str(e.value)


def test_reachability_goes_through_the_hub_client(monkeypatch):
    import huggingface_hub

    asked = []

    class Session:
        def head(self, url, **kw):
            asked.append((url, kw.get("timeout")))
            raise httpx2.ConnectError("no route")

    monkeypatch.setattr(huggingface_hub, "get_session", lambda: Session())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    assert models.hub_reachable(timeout=0.5) is False
    assert asked == [(huggingface_hub.constants.ENDPOINT, 0.5)]
    asked.clear()
    Session.head = lambda self, url, **kw: asked.append(url) or httpx2.Response(200)
    assert models.hub_reachable() is True and asked


def test_no_mention_of_the_removed_cli():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in [root / "README.md", *root.glob("explainer/**/*.py"), *root.glob("pages/*.py")]:
        assert "huggingface-cli" not in path.read_text(), path
