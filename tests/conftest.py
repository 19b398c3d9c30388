"""Shared fixtures and helpers: the bundled model once per session, tiny seeded models per family,
hook bookkeeping, a thread runner, and small readers for Streamlit AppTest pages."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest
import torch

import explainer as ex
from explainer.models import TINY_FAMILIES

# The attention output projection of block i, written out by hand per family (not taken from the code under
# test): its input is the heads side by side. Shared by the ablation and attention-output tests.
OUT_PROJ = {
    "gpt2": lambda m, i: m.transformer.h[i].attn.c_proj,
    "llama": lambda m, i: m.model.layers[i].self_attn.o_proj,
    "gptj": lambda m, i: m.transformer.h[i].attn.out_proj,
    "gpt_neox": lambda m, i: m.gpt_neox.layers[i].attention.dense,
}

EIFFEL = "The Eiffel Tower is in the city of"


@pytest.fixture(scope="session")
def bundled() -> ex.LoadedModel:
    """The real SmolLM2-135M (offline); the first run converts it (~6 s), later runs take ~5 s."""
    return ex.load_model("bundled", device="cpu")


@pytest.fixture(scope="session", params=TINY_FAMILIES)
def tiny(request) -> ex.LoadedModel:
    """A tiny randomly initialised model of each supported family, with GPT-2's real tokenizer."""
    return ex.tiny_model(request.param, seed=0)


@pytest.fixture(scope="session")
def tiny_gpt2() -> ex.LoadedModel:
    return ex.tiny_model("gpt2", seed=0)


def hook_keys(model: torch.nn.Module) -> set[tuple[str, str, int]]:
    """Every forward (pre-)hook on the model, by module and handle id. Compare before and after rather
    than expecting none: transformers 5 installs its own lasting hooks the first time a model is asked
    for output_attentions (its output recorder), so a shared test model may carry some legitimately."""
    return {(name, kind, key) for name, m in model.named_modules()
            for kind, d in (("pre", m._forward_pre_hooks), ("post", m._forward_hooks)) for key in d}


@pytest.fixture(scope="module")
def tr(bundled) -> ex.Trace:
    """The bundled model's trace of EIFFEL, once per test module."""
    return ex.trace(bundled, EIFFEL)


def run_concurrently(fn: Callable[[Any], Any], args: Iterable[Any]) -> tuple[list[Any], list[BaseException]]:
    """Call fn(a) for every a in args, each on its own thread, all released at once by a barrier so that
    they overlap. Returns the results in the order of args (None where a call raised) and every
    exception raised (BaseException included), for the caller to assert there are none."""
    args = list(args)
    start = threading.Barrier(len(args))
    results: list[Any] = [None] * len(args)
    errors: list[BaseException] = []

    def work(i: int, a: Any) -> None:
        try:
            start.wait()
            results[i] = fn(a)
        except BaseException as e:  # noqa: BLE001 - returned to the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(args)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


# -- Streamlit AppTest pages ------------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """Like a classroom without network: Hub ids must fail fast."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def page_ok(at) -> None:
    """The page ran with no exception and shows no error."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def page_metrics(at) -> dict[str, str]:
    """The page's st.metric values by label."""
    return {m.label: m.value for m in at.metric}


def plotly_array(v) -> np.ndarray:
    """A plotly JSON array: a plain list, or numpy data packed as {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict):
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v, dtype=float)


def charts(at) -> dict[str, dict]:
    """Every plotly chart on an AppTest page, parsed, by its element id (which ends in "-" + its key).
    Tests compare parsed values, never substrings of the JSON: how it is serialised depends on which
    encoder is installed (`␣` written literally or as an escape)."""
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def chart_bytes(at) -> dict[str, int]:
    """The size of every plotly chart's figure as Streamlit sends it (its spec's UTF-8 bytes), by widget key
    (the end of its element id). Deterministic: the same figure always serialises to the same bytes."""
    return {c.proto.id.rsplit("-", 1)[-1]: len(c.proto.spec.encode("utf-8")) for c in at.get("plotly_chart")}


def chart(at, key: str) -> dict:
    """The parsed plotly figure of the chart with this widget key."""
    have = charts(at)
    found = [fig for el_id, fig in have.items() if el_id.endswith(f"-{key}")]
    assert len(found) == 1, f"no single chart {key}; have {[i.rsplit('-', 1)[-1] for i in have]}"
    return found[0]


def tiles_of(fig) -> np.ndarray:
    """The overview's all-heads image (trace 0, a PNG data URI) read back into weights, NaN where white."""
    from PIL import Image

    from explainer.figures.attention import tile_weights

    uri = fig["data"][0]["source"] if isinstance(fig, dict) else fig.data[0].source
    img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert img.mode == "P"
    return tile_weights(np.asarray(img))


def title_text(fig: dict) -> str:
    t = fig.get("layout", {}).get("title", {})
    return t.get("text", "") if isinstance(t, dict) else str(t)
