"""Figures for compare mode (explainer/compare.py): the next token after two prompts, one head's two patterns
and their difference, one token's probability through the layers after each prompt, one analogy's answers
ranked in two vector spaces."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..compare import AnalogyAlignment, Change
from ..lens import TokenTrajectory
from .attention import token_matrix
from .common import DIVERGING, axes, relayout, show_token, style
from .lens import BLOCK_AXIS, block_x, layer_labels
from .palette import FIRST, MUTED, SECOND

LABEL_CHARS = 38     # a prompt named in a legend: its end, where the two usually differ


def prompt_label(text: str, chars: int = LABEL_CHARS) -> str:
    """A prompt short enough for a legend: “…the end of it” (the end is what the next token follows)."""
    flat = " ".join(text.split())
    return f"“{flat}”" if len(flat) <= chars else f"“…{flat[-(chars - 1):]}”"


def probability_change(change: Change, strings: Sequence[str], label_a: str, label_b: str,
                       title: str | None = None) -> go.Figure:
    """Each token's probability after prompt A and after prompt B, side by side (largest change on top), the
    change in percentage points beside each token."""
    names = [f"{show_token(s)}  {d * 100:+.1f}" for s, d in zip(strings, change.delta)][::-1]   # the change, in points
    pa, pb = change.p_a[::-1], change.p_b[::-1]
    delta = change.delta[::-1]
    ids = change.ids[::-1]
    hover = ("<b>%{y}</b> (id %{customdata[0]})<br>after %{fullData.name}: %{x:.2%}"
             "<br>change %{customdata[1]:+.1f} percentage points<extra></extra>")
    custom = np.stack([ids.astype(np.float64), delta * 100], axis=1)
    fig = go.Figure([
        go.Bar(x=pa, y=names, orientation="h", name=label_a, marker_color=FIRST, customdata=custom,
               hovertemplate=hover),
        go.Bar(x=pb, y=names, orientation="h", name=label_b, marker_color=SECOND, customdata=custom,
               hovertemplate=hover),
    ])
    top = float(max(pa.max(initial=0), pb.max(initial=0)))
    relayout(fig, barmode="group", bargap=0.25, bargroupgap=0.05,
             legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=16)))
    axes(fig, "x", tickformat=".0%", range=[0, min(1.0, top * 1.15 + 0.02)],
         title="probability of the next token (beside each token: the change, in percentage points)")
    axes(fig, "y", tickfont=dict(family="ui-monospace, Menlo, monospace"))
    return style(fig, title, height=int(np.clip(140 + 44 * len(names), 360, 900)))


def attention_change(diff: np.ndarray, tokens, title: str | None = None) -> go.Figure:
    """b − a for one head's patterns [T, T]: red where the second prompt's row puts more weight, blue less."""
    finite = diff[np.isfinite(diff)]
    lim = max(float(np.abs(finite).max()) if finite.size else 0.0, 0.01)
    return token_matrix(diff, tokens, title, value_name="change", colorscale=DIVERGING, zmin=-lim, zmax=lim,
                        fmt="+.2f")


def trajectories(a: TokenTrajectory, pos_a: int, b: TokenTrajectory, pos_b: int, label_a: str, label_b: str,
                 title: str | None = None) -> go.Figure:
    """One token's probability after every block, after prompt A and after prompt B (two lines)."""
    rows = a.probs.shape[0]
    x, layers = block_x(rows), layer_labels(rows)
    fig = go.Figure()
    for tj, pos, label, colour, dash in ((a, pos_a, label_a, FIRST, "solid"), (b, pos_b, label_b, SECOND, "dash")):
        fig.add_trace(go.Scatter(
            x=x, y=tj.probs[:, pos], mode="lines+markers", name=label, customdata=layers,
            line=dict(color=colour, width=3, dash=dash),
            hovertemplate=f"{show_token(tj.token)} after {label}<br>%{{customdata}}<br>probability %{{y:.2%}}"
                          "<extra></extra>"))
    relayout(fig, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=16)))
    axes(fig, "y", tickformat=".0%", range=[0, 1.02], title="probability")
    axes(fig, "x", title_text=BLOCK_AXIS)
    return style(fig, title, height=420)


def analogy_ranks(al: AnalogyAlignment, title: str | None = None) -> go.Figure:
    """Each answer's rank in both spaces (1 = that space's answer) on a log axis, joined by a line: a short line
    is a word both agree on, a long one a word only one of them ranks high. The two markers of a word sit a little
    apart in height, so equal ranks still show both; each rank is written on the outer side of its marker. A word
    a space has no row for (one the model splits into pieces, one GloVe does not know) has no marker there."""
    n = len(al.words)
    row = np.arange(n, dtype=np.float64)[::-1]                 # the first word on top
    off = 0.16
    ra = np.array([p.rank for p in al.a], dtype=np.float64)
    rb = np.array([p.rank for p in al.b], dtype=np.float64)
    ca = np.array([p.cosine for p in al.a])
    cb = np.array([p.cosine for p in al.b])
    lx, ly = [], []
    for y, a, b in zip(row, ra, rb):
        if a and b:
            lx += [a, b, None]
            ly += [y + off, y - off, None]
    fig = go.Figure(go.Scatter(x=lx, y=ly, mode="lines", line=dict(color=MUTED, width=3), hoverinfo="skip",
                               showlegend=False))
    words = np.array(al.words, dtype=object)
    for r, other, c, dy, label, colour, symbol in ((ra, rb, ca, off, al.label_a, FIRST, "circle"),
                                                    (rb, ra, cb, -off, al.label_b, SECOND, "diamond")):
        ok = r > 0
        left = (r < other) | ((r == other) & (dy > 0))         # the better rank's label goes on the left
        fig.add_trace(go.Scatter(
            x=r[ok], y=row[ok] + dy, mode="markers+text", name=label,
            text=[f"#{int(v):,}" for v in r[ok]], textfont=dict(size=15, color=colour),
            textposition=["middle left" if x else "middle right" for x in left[ok]],
            customdata=np.stack([words[ok], c[ok]], axis=1) if ok.any() else None,
            marker=dict(color=colour, size=15, symbol=symbol, line=dict(color="white", width=1)),
            hovertemplate=f"<b>%{{customdata[0]}}</b> in {label}<br>rank %{{x:,}}<br>cosine %{{customdata[1]:.3f}}"
                          "<extra></extra>"))
    top = float(max(ra.max(initial=1), rb.max(initial=1)))
    relayout(fig, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, font=dict(size=16)))
    axes(fig, "x", type="log", dtick=1, range=[-0.45, np.log10(max(top, 10)) + 0.45],
         title="rank among all the space's tokens or words (1 = its answer; log scale)")
    axes(fig, "y", tickmode="array", tickvals=row, ticktext=list(al.words), range=[-0.6, n - 0.4],
         tickfont=dict(family="ui-monospace, Menlo, monospace"), showgrid=False, zeroline=False)
    return style(fig, title, height=int(np.clip(150 + 44 * n, 360, 960)))
