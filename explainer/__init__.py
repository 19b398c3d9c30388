"""Seeing inside a GPT: load a real model, capture its internals in one Trace, analyse and draw them.

The engine never imports streamlit; pages never import torch.
"""

from __future__ import annotations

import os

# PyTorch's CPU allocator backs large tensors with transparent huge pages when asked (Linux): page
# faults on the attention and MLP buffers drop ~5x, and the bare forward pass gains as well. Must be
# set before torch is imported; a value the user set wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
# OpenMP's worker threads sleep when they have nothing to do, instead of spinning for a while first (libgomp's
# default). On cores shared with other work a spinning thread takes the core its partner needs: a 16-token forward
# pass took 0.7-6 s with two spinning threads on two busy cores, 0.2-0.3 s with this (BENCHMARKS.md, issue 13
# item 6). The same threads do the same arithmetic, so every number is the same. Read once, when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .capture import QK, causal_softmax, queries_keys, trace  # noqa: E402
from .errors import ExplainerError, ModelLoadError, PromptError, RangeError, SettingError  # noqa: E402
from .model_map import ModelMap, Part, model_map  # noqa: E402
from .models import BUNDLED, HUB_MODELS, LoadedModel, load_model, tiny_model  # noqa: E402
from .sites import HookSite, capture_sites, site, site_names  # noqa: E402
from .trace import Trace  # noqa: E402

__all__ = [
    "BUNDLED", "HUB_MODELS", "QK", "ExplainerError", "HookSite", "LoadedModel", "ModelLoadError", "ModelMap", "Part",
    "PromptError", "RangeError", "SettingError", "Trace", "capture_sites", "causal_softmax", "load_model", "model_map",
    "queries_keys", "site", "site_names", "tiny_model", "trace",
]
