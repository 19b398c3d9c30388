"""The app's one visual language: every colour a chart or a page uses, each with one meaning.

Colour-blind safe: categories and highlights use the Okabe & Ito (2008) palette, distinguishable with
every common colour-vision deficiency; scales are ColorBrewer's Blues (sequential) and RdBu (diverging),
which read the same way. tests/test_palette.py checks that no figure or page writes a colour of its own.

Meanings (the same on every page):
- SEQUENTIAL (white → dark blue): probabilities, attention weights, and scores made of them (head roles),
  and other sizes that are never negative (|activation|).
- DIVERGING (blue − · white 0 · red +): signed values (activations, q·k scores, dot products, cosines).
  POSITIVE and NEGATIVE are its two ends, for bars of signed values.
- HELPS / HURTS (blue / vermilion), and HELPS_HURTS_SCALE between them: an intervention's effect on the
  prediction.
- FIRST / SECOND (blue / orange): the two sides of a pair: before and after, from and to, train and dev.
- PICKED (vermilion): the item the user chose (a head, a taken token), outlined or marked.
- NOTICE (orange): the one thing a chart points at (the analogy's computed point, the vowels).
- MUTED and the greys: context, cut or inactive items.
"""

from __future__ import annotations

# Okabe & Ito's palette
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
VERMILION = "#D55E00"
SKY = "#56B4E9"
PINK = "#CC79A7"
YELLOW = "#F0E442"
BLACK = "#000000"
CATEGORICAL = (BLUE, ORANGE, GREEN, VERMILION, SKY, PINK, YELLOW, BLACK)

# greys and tints
INK = "#1f2a44"          # text-like dark lines
DARK_GREY = "#555555"    # reference lines: zero, the uniform guess, the best step
MUTED = "#999999"        # context items, cut tokens
LIGHT = "#d9d9d9"        # masked (future) cells, backgrounds
FAINT = "#eeeeee"        # plot backgrounds of grids, pale bars
WHITE = "#ffffff"
LIGHT_BLUE = "#c6dbef"   # the pale twin of BLUE: "before the filters"
LIGHT_PICK = "#f7c9a9"   # the pale twin of PICKED: the chosen item's group

# scales
SEQUENTIAL = "Blues"
DIVERGING = "RdBu_r"
POSITIVE, NEGATIVE = "#d6604d", "#4393c3"          # RdBu's own red and blue, as bars beside its heatmaps

# meanings
HELPS, HURTS = BLUE, VERMILION
HELPS_HURTS_SCALE = [[0.0, HURTS], [0.5, WHITE], [1.0, HELPS]]
FIRST, SECOND = BLUE, ORANGE
PICKED = VERMILION
NOTICE = ORANGE

# token chips on the pages (backgrounds behind dark text): light tints, told apart by position, not meaning
TOKEN_TINTS = ("#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d7f4f0", "#fce1c9")
TINT_YES, TINT_NO = "#d9f0e6", "#fde2e4"           # "in the training data" / "new"
