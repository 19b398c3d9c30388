"""What a link name left out means on each view: the pages' defaults, keyed by the URL contract's names.

The pages draw their controls with these values, and `explainer.handout` builds a lesson step's figure with
them, so a step whose `state` leaves a name out shows in the handout what the page shows. Defaults that
depend on the prompt or the model are functions (`mlp_layer`, `lens_window`) or engine calls
(`heads.looking_back_head` for Attention's head, the suggested heads of `interventions.attribution`); the
presets' words come from `content` (the first preset of each). Pure Python, no Streamlit.
"""

from __future__ import annotations

MAX_TOKENS = 256                       # the sidebar's "Max tokens per prompt"

NEXT_TOKEN = {"temperature": 1.0, "top_k": 10, "top_p": 0.9, "show": 12, "seed": 42, "min_p": 0.0,
              "repetition_penalty": 1.0}
# Generate: a template sets the prompt, the stop strings and the temperature ("shared" uses the other pages'
# prompt and this temperature).
GENERATE = {"template": "qa", "max_new": 40, "temperature": 0.7, "top_k": 50, "top_p": 0.95, "min_p": 0.0,
            "repetition_penalty": 1.0, "seed": 0, "pad_side": "left",
            "batch": "The cat sat on the\nOnce upon a time, in a land far away, there lived a\nHello"}

MODEL_MAP = {"open_block": False, "layer": 0, "box": "embed"}
MLP = {"mlp_n": 20, "skip_first": True}
LENS = {"space": True}
LENS_WINDOW = 16                       # positions the logit-lens grid shows at once
LENS_TOP = 5                           # guesses kept per cell (the hover's top 5)
EMBEDDINGS = {"tab": "map", "map_dims": "2-D", "map_align": False, "an_k": 10, "an_variants": True, "an_vs": "glove",
              "nb_word": "Paris", "sim_words": "king, queen, man, woman, cat, dog, zebra, banana, Paris, the, and",
              "ctx_center": True}
N_SUGGEST = 3                          # Interventions: heads (and neurons) suggested, and switched off by default
LAB = {"lab_block": 3, "lab_embd": 2, "lab_hidden": 100, "lab_seed": 0, "lab_lr": 0.1, "lab_steps": 3000,
       "lab_every": 200, "lab_batch": 32, "lab_n": 20, "lab_temp": 1.0, "lab_sample_seed": 0, "lab_prefix": "em",
       "lab_of_names": 60, "lab_of_hidden": 300}


def mlp_layer(n_layers: int) -> int:
    """MLP neurons' starting layer: the middle one."""
    return min(n_layers - 1, n_layers // 2)


def lens_window(n_tokens: int) -> tuple[int, int]:
    """The logit lens's positions shown (first, last): the last LENS_WINDOW, or all of a short prompt."""
    return max(0, n_tokens - LENS_WINDOW), n_tokens - 1
