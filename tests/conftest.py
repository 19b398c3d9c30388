"""Shared fixtures: the bundled model once per session, tiny seeded models per family."""

from __future__ import annotations

import pytest
import torch

import explainer as ex
from explainer.models import TINY_FAMILIES


@pytest.fixture(scope="session")
def bundled() -> ex.LoadedModel:
    """The real SmolLM2-135M (offline); the first run converts it (~30 s), later runs take ~1 s."""
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
