"""Figures for MLP neurons."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..mlp import Histogram, NeuronSet, TokenNeurons
from .common import DIVERGING, axes, axis_labels, show_token, style
from .palette import DARK_GREY, NEGATIVE, PICKED, POSITIVE, SEQUENTIAL, SKY


def neurons_heatmap(tokens, ns: NeuronSet, title: str | None = None) -> go.Figure:
    """Tokens (down) × the layer's most active neurons (across), coloured by signed activation.

    When the first token was left out of the ranking, the colour range ignores it too (its hover still
    shows the true value), so one huge value does not wash out the rest.
    """
    ys = axis_labels(tokens)
    xs = [f"N{n}" for n in ns.neurons]
    body = ns.acts[1:] if ns.skipped_first else ns.acts                # [T', n]
    vmax = float(np.abs(body).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=ns.acts, x=xs, y=ys, zmid=0, zmin=-vmax, zmax=vmax, colorscale=DIVERGING,
        hovertemplate="token %{y}<br>neuron %{x}<br>activation %{z:.3f}<extra></extra>",
        colorbar=dict(title="activation"), xgap=1, ygap=1,
    ))
    axes(fig, "y", autorange="reversed", title_text="token")
    axes(fig, "x", title_text=f"the {len(xs)} most active neurons of layer {ns.layer}", tickangle=-60)
    return style(fig, title, height=max(340, 150 + 28 * len(ys)))


def top_neurons_bar(tn: TokenNeurons, token: str, title: str | None = None) -> go.Figure:
    """The neurons firing hardest at one token: signed activation, strongest on top."""
    labels = [f"N{n}" for n in tn.neurons][::-1]
    vals = tn.acts[::-1]
    fig = go.Figure(go.Bar(
        x=vals, y=labels, orientation="h", marker_color=[POSITIVE if v > 0 else NEGATIVE for v in vals],
        text=[f"{v:+.2f}" for v in vals], textposition="outside",
        hovertemplate=f"layer {tn.layer}, neuron %{{y}}<br>at {show_token(token)!s}: %{{x:.3f}}<extra></extra>",
    ))
    m = float(np.abs(vals).max()) or 1.0
    lo = -m * 1.3 if (vals < 0).any() else 0
    axes(fig, "x", title_text="activation", range=[lo, m * 1.3 if (vals > 0).any() else m * 0.1])
    return style(fig, title, height=120 + 34 * len(labels))


def neuron_colors(values: np.ndarray, vmax: float) -> list[str]:
    """HTML background colours for token chips: red for positive, blue for negative, white at 0.

    Intensity is |value| / vmax (1 when vmax is 0), clipped to 1.
    """
    v = np.asarray(values, dtype=np.float64)
    m = float(vmax) or 1.0
    out = []
    for x in v:
        a = min(abs(x) / m, 1.0)
        r, g, b = (214, 96, 77) if x > 0 else (67, 147, 195)
        mix = [round(255 + (c - 255) * a) for c in (r, g, b)]
        out.append("#{:02x}{:02x}{:02x}".format(*mix))
    return out


def neuron_titles(tokens, values: np.ndarray, layer: int, neuron: int) -> list[str]:
    """Hover text for each chip."""
    return [f"position {i}: {show_token(t)}  ·  L{layer}.N{neuron} = {v:+.3f}"
            for i, (t, v) in enumerate(zip(tokens, values, strict=True))]


def activation_histogram(h: Histogram, title: str | None = None) -> go.Figure:
    """How often each activation value occurs in one layer (all neurons × all tokens), on a log count axis."""
    centers = (h.edges[:-1] + h.edges[1:]) / 2
    width = float(h.edges[1] - h.edges[0])
    fig = go.Figure(go.Bar(
        x=centers, y=h.counts, width=width, marker_color=SKY,
        customdata=np.stack([h.edges[:-1], h.edges[1:]], axis=1),
        hovertemplate="activation %{customdata[0]:.2f} … %{customdata[1]:.2f}<br>%{y:,} values<extra></extra>",
    ))
    fig.add_vline(x=0, line_dash="dot", line_color=DARK_GREY)
    axes(fig, "x", title_text=f"activation (layer {h.layer})")
    axes(fig, "y", title_text="count (log scale)", type="log", dtick=1)  # log axis: ticks at powers of ten only
    return style(fig, title, height=380)


def layer_activity_heatmap(tokens, activity: np.ndarray, layer: int | None = None,
                           title: str | None = None) -> go.Figure:
    """Layers (down) × tokens (across): the strongest |activation| of each layer's MLP at each token.

    NaN cells (a left-out first token) stay blank. The chosen layer is outlined.
    """
    xs = axis_labels(tokens)
    L = activity.shape[0]
    fig = go.Figure(go.Heatmap(
        z=activity, x=xs, y=[f"L{i}" for i in range(L)], colorscale=SEQUENTIAL,
        hovertemplate="layer %{y}, token %{x}<br>strongest neuron: |activation| %{z:.2f}<extra></extra>",
        colorbar=dict(title="max |act.|"), xgap=1, ygap=1,
    ))
    if layer is not None:
        fig.add_shape(type="rect", x0=-0.5, x1=len(xs) - 0.5, y0=layer - 0.5, y1=layer + 0.5,
                      line=dict(color=PICKED, width=3))
    axes(fig, "y", autorange="reversed", title_text="layer")
    axes(fig, "x", tickangle=-40, side="top")
    return style(fig, title, height=max(360, 140 + 18 * L))
