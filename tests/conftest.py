"""Shared fixtures: the bundled model once per session, tiny seeded models per family."""

from __future__ import annotations

import pytest

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
