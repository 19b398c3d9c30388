"""Seeing inside a GPT: load a real model, capture its internals in one Trace, analyse and draw them.

The engine never imports streamlit; pages never import torch.
"""

from __future__ import annotations

from .capture import QK, causal_softmax, queries_keys, trace
from .errors import ExplainerError, ModelLoadError, PromptError
from .models import BUNDLED, HUB_MODELS, LoadedModel, load_model, tiny_model
from .trace import Trace

__all__ = [
    "BUNDLED", "HUB_MODELS", "QK", "ExplainerError", "LoadedModel", "ModelLoadError", "PromptError", "Trace",
    "causal_softmax", "load_model", "queries_keys", "tiny_model", "trace",
]
