"""Figures for the residual stream and the logit lens."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..lens import LensResult, TokenTrajectory
from .common import PROB_SCALE, axes, axis_labels, relayout, show_token, style
from .palette import FIRST, SECOND

LN2 = float(np.log(2.0))  # the lens keeps entropy in nats; every page shows bits (nats / ln 2)


# One convention on every page: blocks (layers) are numbered from 0, and a residual-stream row is named by
# the block it comes after. Row r of the lens is the stream after block r - 1; on a numeric axis it sits at
# x = r - 1, so "after block 14" is at 14 and the raw embeddings at -1.
BLOCK_AXIS = "after block (−1 = the embeddings)"


def block_x(n_rows: int) -> list[int]:
    """Numeric axis positions of the lens rows: -1 for the embeddings, then the block each row comes after."""
    return list(range(-1, n_rows - 1))


def layer_labels(n_rows: int) -> list[str]:
    """Row names of the lens: row 0 is the embeddings, row l the stream after block l-1."""
    last = n_rows - 1
    return ["embeddings" if i == 0 else f"after block {i - 1}" + (" (output)" if i == last else "")
            for i in range(n_rows)]


def _window(n: int, positions: range | None) -> range:
    return positions if positions is not None else range(n)


def lens_grid(res: LensResult, tokens, positions: range | None = None, title: str | None = None) -> go.Figure:
    """Layers (bottom to top) × positions; each cell shows the top-1 guess coloured by its probability.

    Cells whose guess already equals the model's final prediction are written in bold.
    """
    pos = list(_window(len(tokens), positions))
    L1 = res.ids.shape[0]
    rows = layer_labels(L1)
    cols = [axis_labels(tokens)[p] for p in pos]
    z = res.probs[:, pos, 0]                                          # [L+1, P]
    final = res.ids[-1, pos, 0]                                       # [P]
    text = np.empty(z.shape, dtype=object)
    hover = np.empty(z.shape, dtype=object)
    for i in range(L1):
        for j, p in enumerate(pos):
            word = show_token(res.strings[i, p, 0])
            word = word if len(word) <= 9 else word[:8] + "…"
            text[i, j] = f"<b>{word}</b>" if res.ids[i, p, 0] == final[j] else word
            lines = "<br>".join(f"{r + 1}. {show_token(res.strings[i, p, r])}  {res.probs[i, p, r]:.1%}"
                                for r in range(res.k))
            hover[i, j] = (f"<b>{rows[i]}</b>, reading {cols[j]}<br>guess for the next token:<br>{lines}"
                           f"<br>entropy {res.entropy[i, p] / LN2:.2f} bits")
    fig = go.Figure(go.Heatmap(
        z=z, x=cols, y=rows, zmin=0, zmax=1, colorscale=PROB_SCALE, text=text, texttemplate="%{text}",
        textfont=dict(size=14), customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title="top-1<br>prob.", tickformat=".0%"), xgap=1, ygap=1,
    ))
    axes(fig, "x", side="top", tickangle=-40,
         title_text="input token at each position (each cell guesses the token after it)")
    axes(fig, "y", title_text="after block", autorange=True)
    return style(fig, title, height=max(360, 130 + 24 * L1))


def residual_norms(res: LensResult, tokens, positions: range | None = None, title: str | None = None) -> go.Figure:
    """The size (L2 norm) of the residual stream after each block, one line per position, log scale."""
    pos = list(_window(len(tokens), positions))
    labels = axis_labels(tokens)
    layers = layer_labels(res.resid_norm.shape[0])
    fig = go.Figure()
    for p in pos:
        fig.add_trace(go.Scatter(
            x=block_x(res.resid_norm.shape[0]), y=res.resid_norm[:, p], mode="lines+markers", name=labels[p],
            customdata=layers, hovertemplate=f"{labels[p]}<br>%{{customdata}}<br>norm %{{y:,.1f}}<extra></extra>",
        ))
    axes(fig, "y", type="log", dtick=1, title_text="‖residual‖ (log scale)")
    axes(fig, "x", title_text=BLOCK_AXIS)
    relayout(fig, legend=dict(title="position"))
    return style(fig, title, height=460)


def trajectory(tj: TokenTrajectory, tokens, position: int, title: str | None = None) -> go.Figure:
    """One token's probability (left) and rank (right, log scale) at one position, layer by layer."""
    layers = layer_labels(tj.probs.shape[0])
    x = block_x(tj.probs.shape[0])
    who = f"{show_token(tj.token)} after {axis_labels(tokens)[position]}"
    fig = make_subplots(1, 2, subplot_titles=("probability", "rank (1 = top guess)"), horizontal_spacing=0.1)
    fig.add_trace(go.Scatter(x=x, y=tj.probs[:, position], mode="lines+markers", customdata=layers,
                             hovertemplate=f"{who}<br>%{{customdata}}<br>probability %{{y:.2%}}<extra></extra>",
                             line=dict(color=FIRST)), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=tj.ranks[:, position] + 1, mode="lines+markers", customdata=layers,
                             hovertemplate=f"{who}<br>%{{customdata}}<br>rank %{{y:,}}<extra></extra>",
                             line=dict(color=SECOND)), 1, 2)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", autorange="reversed", dtick=1, row=1, col=2)
    axes(fig, "x", title_text=BLOCK_AXIS)
    relayout(fig, showlegend=False)
    return style(fig, title, height=400)
