"""Figures for the home page: the next-token prediction of a trace."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .common import axes, show_token, style
from .palette import BLUE


def top_next_tokens(tokens: list[str], ids: list[int], probs: np.ndarray, logits: np.ndarray,
                    title: str = "What the model predicts next") -> go.Figure:
    """Horizontal bars, most likely on top; hover shows id, logit and probability."""
    labels = [f"{show_token(t)!s}" for t in tokens]
    fig = go.Figure(go.Bar(
        x=probs[::-1], y=[f"{i + 1}. {s}" for i, s in enumerate(labels)][::-1], orientation="h",
        text=[f"{p:.1%}" for p in probs[::-1]], textposition="outside",
        customdata=np.stack([np.asarray(ids)[::-1], np.asarray(logits)[::-1]], axis=1),
        hovertemplate="token %{y}<br>id %{customdata[0]:.0f}<br>logit %{customdata[1]:.2f}"
                      "<br>probability %{x:.2%}<extra></extra>",
        marker_color=BLUE,
    ))
    axes(fig, "x", tickformat=".0%", range=[0, min(1.0, float(probs.max()) * 1.25 + 0.02)])
    return style(fig, title, height=80 + 38 * len(tokens))
