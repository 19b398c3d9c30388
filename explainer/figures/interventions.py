"""Figures for interventions: next-token probabilities before and after switching parts off."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..interventions import Comparison
from .common import axes, relayout, show_token, style
from .palette import DARK_GREY, FIRST, HELPS, HELPS_HURTS_SCALE, HURTS, SECOND

BEFORE, AFTER = FIRST, SECOND


def before_after(cmp: Comparison, what: str = "ablated", title: str | None = None) -> go.Figure:
    """Two bar charts side by side, same tokens in the same order: before and after the ablation."""
    labels = [show_token(t) for t in cmp.tokens][::-1]
    before, after = cmp.before[::-1], cmp.after[::-1]
    ids = np.asarray(cmp.ids)[::-1]
    fig = make_subplots(1, 2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("Before: the normal model", f"After: {what}"))
    for col, (vals, other, color, name) in enumerate(((before, after, BEFORE, "before"),
                                                      (after, before, AFTER, "after")), start=1):
        fig.add_trace(go.Bar(
            x=vals, y=labels, orientation="h", marker_color=color, name=name,
            text=[f"{v:.1%}" for v in vals], textposition="outside",
            customdata=np.stack([ids, other], axis=1),
            hovertemplate=(f"%{{y}} (id %{{customdata[0]:.0f}})<br>{name}: %{{x:.2%}}"
                           f"<br>{'after' if name == 'before' else 'before'}: %{{customdata[1]:.2%}}<extra></extra>"),
        ), 1, col)
    top = float(max(before.max(), after.max()))
    axes(fig, "x", tickformat=".0%", range=[0, min(1.0, top * 1.3 + 0.03)])
    relayout(fig, showlegend=False)
    return style(fig, title, height=120 + 36 * len(labels))


def probability_changes(cmp: Comparison, title: str | None = None) -> go.Figure:
    """After − before for each token, in percentage points: green gained, red lost."""
    labels = [show_token(t) for t in cmp.tokens][::-1]
    d = cmp.delta[::-1] * 100
    fig = go.Figure(go.Bar(
        x=d, y=labels, orientation="h", marker_color=[HELPS if v >= 0 else HURTS for v in d],
        text=[f"{v:+.1f} pt" for v in d], textposition="outside",
        customdata=np.stack([cmp.before[::-1], cmp.after[::-1]], axis=1),
        hovertemplate="%{y}<br>%{customdata[0]:.2%} → %{customdata[1]:.2%}<br>%{x:+.2f} points<extra></extra>",
    ))
    m = float(np.abs(d).max()) or 1.0
    fig.add_vline(x=0, line_color=DARK_GREY)
    axes(fig, "x", title_text="change in probability (percentage points)", range=[-m * 1.35, m * 1.35])
    return style(fig, title, height=120 + 36 * len(labels))


def attribution_heatmap(heads: np.ndarray, target: str, chosen=(), title: str | None = None) -> go.Figure:
    """Layers (down) × heads (across): estimated change of log p(target) if each head were switched off.

    Red = switching the head off should hurt the prediction. Chosen heads are outlined.
    """
    L, H = heads.shape
    m = float(np.abs(heads).max()) or 1.0
    tok = show_token(target)
    fig = go.Figure(go.Heatmap(
        z=heads, x=[f"H{h}" for h in range(H)], y=[f"L{layer}" for layer in range(L)],
        zmid=0, zmin=-m, zmax=m, colorscale=HELPS_HURTS_SCALE,  # vermilion = negative: hurts the prediction
        hovertemplate=f"head %{{y}}.%{{x}}<br>estimated change of log p({tok}): %{{z:+.3f}}<extra></extra>",
        colorbar=dict(title="Δ log p<br>(estimate)"), xgap=1, ygap=1,
    ))
    for layer, h in chosen:
        fig.add_shape(type="rect", x0=h - 0.5, x1=h + 0.5, y0=layer - 0.5, y1=layer + 0.5,
                      line=dict(color="black", width=3))
    axes(fig, "y", autorange="reversed", title_text="layer")
    axes(fig, "x", title_text="head", side="top")
    return style(fig, title, height=max(360, 110 + 20 * L))
