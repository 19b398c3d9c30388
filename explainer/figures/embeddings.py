"""Figures for word vectors: PCA maps with arrows, analogies, directions, similarity heatmaps and
the path of one word through the layers of several sentences."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..residual import ContextAnalysis
from ..vectors import Neighbour, Similarity
from ..wordmaps import AnalogyMap, Projection, WordMap
from .common import DIVERGING, axes, relayout, show_token, style
from .palette import BLUE, CATEGORICAL, FIRST, GREEN, LIGHT, MUTED, NOTICE, SECOND, SKY, VERMILION

PALETTE = list(CATEGORICAL)
FROM_COLOR, TO_COLOR, OTHER_COLOR = FIRST, SECOND, GREEN


def layer_names(n: int) -> list[str]:
    """Names of the L+1 layer boundaries of the residual stream."""
    return ["embedding" if i == 0 else f"after block {i - 1}" for i in range(n)]


def _pad_range(v: np.ndarray, frac: float = 0.12) -> list[float]:
    lo, hi = float(np.min(v)), float(np.max(v))
    pad = (hi - lo) * frac or 1.0
    return [lo - pad, hi + pad]


def _arrows_2d(fig: go.Figure, coords: np.ndarray, arrows, color: str | Sequence[str], width: float = 2.5) -> None:
    for n, (i, j) in enumerate(arrows):
        c = color if isinstance(color, str) else color[n % len(color)]
        fig.add_annotation(x=coords[j, 0], y=coords[j, 1], ax=coords[i, 0], ay=coords[i, 1],
                           xref="x", yref="y", axref="x", ayref="y", text="", showarrow=True,
                           arrowhead=3, arrowsize=1.3, arrowwidth=width, arrowcolor=c, standoff=7,
                           startstandoff=7, opacity=0.8)


def _arrows_3d(fig: go.Figure, coords: np.ndarray, arrows, color: str) -> None:
    if not arrows:
        return
    span = float(np.ptp(coords, axis=0).max()) or 1.0
    xs, ys, zs = [], [], []
    tips, dirs = [], []
    for i, j in arrows:
        a, b = coords[i], coords[j]
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
        zs += [a[2], b[2], None]
        d = b - a
        n = float(np.linalg.norm(d)) or 1.0
        tips.append(b)
        dirs.append(d / n)
    fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=dict(color=color, width=5),
                               hoverinfo="skip", showlegend=False))
    t, d = np.array(tips), np.array(dirs)
    fig.add_trace(go.Cone(x=t[:, 0], y=t[:, 1], z=t[:, 2], u=d[:, 0], v=d[:, 1], w=d[:, 2], anchor="tip",
                          sizemode="absolute", sizeref=0.05 * span, showscale=False, hoverinfo="skip",
                          colorscale=[[0, color], [1, color]]))


def word_map(wm: WordMap, title: str | None = None) -> go.Figure:
    """The words on their first 2 or 3 principal components; each pair `a → b` drawn as an arrow.
    Parallel arrows of similar length are the same direction in the full space (as far as a
    projection can tell: check the % of variance on the axes)."""
    words, coords = wm.vectors.words, wm.coords
    dims = coords.shape[1]
    starts = {i for i, _ in wm.arrows}
    ends = {j for _, j in wm.arrows}
    # (legend name, colour, rows, label position): labels of the pairs' first words go below their points and
    # the second words' above, so the two ends of a short arrow do not print on top of each other
    groups = [("first word of a pair", FROM_COLOR, [i for i in range(len(words)) if i in starts and i not in ends],
               "bottom center"),
              ("second word of a pair", TO_COLOR, [i for i in range(len(words)) if i in ends], "top center"),
              ("words", OTHER_COLOR, [i for i in range(len(words)) if i not in starts and i not in ends],
               "top center")]
    if starts & ends:  # a chain (one → two → three): colour the chain as one group
        chain = sorted(starts | ends)
        groups = [("words of the chain", FROM_COLOR, chain, "top center"),
                  ("other words", OTHER_COLOR, [i for i in range(len(words)) if i not in chain], "top center")]
    titles = wm.pca.axis_titles()
    fig = go.Figure()
    for name, color, idx, where in groups:
        if not idx:
            continue
        hover = [_word_hover(words[i]) for i in idx]
        text = [words[i].label for i in idx]
        if dims >= 3:
            fig.add_trace(go.Scatter3d(x=coords[idx, 0], y=coords[idx, 1], z=coords[idx, 2], mode="markers+text",
                                       text=text, textposition="top center", name=name, customdata=hover,
                                       hovertemplate="%{customdata}<extra></extra>",
                                       marker=dict(size=6, color=color), textfont=dict(size=15, color=color)))
        else:
            fig.add_trace(go.Scatter(x=coords[idx, 0], y=coords[idx, 1] if dims > 1 else np.zeros(len(idx)),
                                     mode="markers+text", text=text, textposition=where, name=name,
                                     customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                                     marker=dict(size=12, color=color, line=dict(width=1, color="white")),
                                     textfont=dict(size=17, color=color)))
    if dims >= 3:
        _arrows_3d(fig, coords, wm.arrows, MUTED)
        relayout(fig, scene=dict(xaxis_title=titles[0], yaxis_title=titles[1], zaxis_title=titles[2]),
                 scene_aspectmode="cube")
        height = 700
    else:
        if dims > 1:
            _arrows_2d(fig, coords, wm.arrows, MUTED)
        axes(fig, "x", title_text=titles[0], range=_pad_range(coords[:, 0]), zeroline=False)
        axes(fig, "y", title_text=titles[1] if dims > 1 else "", zeroline=False,
             range=_pad_range(coords[:, 1]) if dims > 1 else None)
        height = 620
    relayout(fig, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return style(fig, title, height=height)


def _word_hover(w) -> str:
    toks = " + ".join(f"{show_token(p)} (id {i})" for p, i in zip(w.pieces, w.ids))
    extra = "<br>vector = mean of these pieces" if w.is_mean else ""
    return f"<b>{w.word}</b><br>token: {toks}{extra}"


_KIND_STYLE = {
    "plus": ("added (+)", BLUE, "circle", 14),
    "minus": ("subtracted (−)", VERMILION, "circle", 14),
    "neighbour": ("nearest real tokens", MUTED, "circle", 10),
    "target": ("the computed point", NOTICE, "star", 22),
}


def analogy_map(am: AnalogyMap, title: str | None = None) -> go.Figure:
    """Inputs, the computed point a − b + c and its nearest tokens on 2 principal components. The
    arrows b → a and c → (a − b + c) are the same vector, so they are exactly parallel here too."""
    c = am.coords
    fig = go.Figure()
    for kind, (name, color, symbol, size) in _KIND_STYLE.items():
        idx = [i for i, k in enumerate(am.kinds) if k == kind]
        if not idx:
            continue
        labels = [am.labels[i] if kind == "target" else show_token(am.labels[i]) for i in idx]
        fig.add_trace(go.Scatter(
            x=c[idx, 0], y=c[idx, 1], mode="markers+text", name=name, text=labels,
            textposition="bottom center" if kind == "target" else "top center",
            marker=dict(size=size, color=color, symbol=symbol, line=dict(width=1, color="white")),
            textfont=dict(size=17 if kind != "neighbour" else 14, color=color),
            hovertemplate="<b>%{text}</b><br>" + name + "<extra></extra>"))
    _arrows_2d(fig, c, am.arrows, [FIRST, SECOND], width=3)
    titles = am.pca.axis_titles()
    axes(fig, "x", title_text=titles[0], range=_pad_range(c[:, 0]), zeroline=False)
    axes(fig, "y", title_text=titles[1] if len(titles) > 1 else "", range=_pad_range(c[:, 1]), zeroline=False)
    relayout(fig, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return style(fig, title, height=560)


def neighbour_bars(neighbours: Sequence[Neighbour], title: str | None = None, tokens: bool = True,
                   color: str = BLUE) -> go.Figure:
    """Best match on top; the bar is the cosine similarity with the computed vector."""
    n = list(neighbours)[::-1]
    labels = [f"{len(n) - r}. {show_token(x.text) if tokens else x.text}" for r, x in enumerate(n)]
    cos = [x.cosine for x in n]
    fig = go.Figure(go.Bar(
        x=cos, y=labels, orientation="h", text=[f"{v:.2f}" for v in cos], textposition="outside",
        marker_color=[(NOTICE if r == len(n) - 1 else color) for r in range(len(n))],
        customdata=[x.id for x in n],
        hovertemplate="%{y}<br>row %{customdata}<br>cosine %{x:.3f}<extra></extra>"))
    hi = max(cos) if cos else 1.0
    axes(fig, "x", title_text="cosine similarity", range=[min(0.0, min(cos, default=0.0)), min(1.0, hi * 1.18)])
    return style(fig, title, height=110 + 40 * len(n))


def direction_strip(proj: Projection, axis_name: str, from_label: str, to_label: str,
                    axis_words: set[str] | frozenset[str] = frozenset(), title: str | None = None) -> go.Figure:
    """Each word's position along an axis: −1 at the average 'from' word, +1 at the average 'to' word.
    Words sorted by position, so the chart reads as a ranking."""
    order = np.argsort(proj.position)
    words = [proj.words[i] for i in order]
    pos = proj.position[order]
    cos = proj.cosine[order]
    colors = [MUTED if w.word in axis_words else (TO_COLOR if p > 0 else FROM_COLOR) for w, p in zip(words, pos)]
    ylab = [w.label + (" (defines the axis)" if w.word in axis_words else "") for w in words]
    fig = go.Figure(go.Scatter(
        x=pos, y=ylab, mode="markers+text", text=[w.label for w in words], textposition="middle right",
        marker=dict(size=14, color=colors), textfont=dict(size=16), customdata=np.stack([cos], axis=1),
        hovertemplate="<b>%{y}</b><br>position %{x:.2f}<br>cosine with the axis %{customdata[0]:.2f}"
                      "<extra></extra>", showlegend=False))
    for x, name in ((-1, from_label), (1, to_label)):
        fig.add_vline(x=x, line=dict(color=MUTED, dash="dot"))
        fig.add_annotation(x=x, y=1.0, yref="paper", text=f"<b>{name}</b>", showarrow=False, yanchor="bottom",
                           font=dict(size=16))
    fig.add_vline(x=0, line=dict(color=LIGHT))
    lo, hi = min(-1.3, float(pos.min()) - 0.2), max(1.3, float(pos.max()) + 0.5)
    axes(fig, "x", title_text=f"position along {axis_name}", range=[lo, hi], zeroline=False)
    axes(fig, "y", showticklabels=False, title_text="")
    return style(fig, title, height=max(380, 90 + 30 * len(words)))


def similarity_heatmaps(labels: Sequence[str], sim: Similarity, title: str | None = None) -> go.Figure:
    """Dot products (left) and cosines (right) of every pair of words, same order on both."""
    n = len(labels)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,
                        subplot_titles=("dot product  a · b", "cosine  a · b / (|a| |b|)"))
    show_text = n <= 14
    for col, (z, scale, zmin, zmax, bar_x, name) in enumerate((
            (sim.dot, DIVERGING, None, None, 0.42, "dot"),
            (sim.cosine, DIVERGING, -1.0, 1.0, 1.0, "cosine")), start=1):
        hover = np.array([[f"<b>{labels[i]} · {labels[j]}</b><br>dot {sim.dot[i, j]:.2f}<br>"
                           f"cosine {sim.cosine[i, j]:.2f}<br>|{labels[i]}| = {sim.norms[i]:.2f}, "
                           f"|{labels[j]}| = {sim.norms[j]:.2f}" for j in range(n)] for i in range(n)])
        fig.add_trace(go.Heatmap(
            z=z, x=list(labels), y=list(labels), colorscale=scale, zmin=zmin, zmax=zmax, name=name,
            text=np.round(z, 2) if show_text else None, texttemplate="%{text}" if show_text else None,
            textfont=dict(size=14), customdata=hover, hovertemplate="%{customdata}<extra></extra>",
            colorbar=dict(x=bar_x, len=0.9, thickness=14), xgap=1, ygap=1), row=1, col=col)
    axes(fig, "y", autorange="reversed")
    axes(fig, "x", tickangle=-45)
    return style(fig, title, height=max(460, 200 + 30 * n))


def vector_lengths(labels: Sequence[str], norms: np.ndarray, title: str | None = None) -> go.Figure:
    """|v| for each word: the dot product grows with these, the cosine ignores them."""
    fig = go.Figure(go.Bar(x=list(labels), y=norms, marker_color=SKY, text=[f"{v:.2f}" for v in norms],
                           textposition="outside", hovertemplate="|%{x}| = %{y:.3f}<extra></extra>"))
    axes(fig, "y", title_text="length |v|", range=[0, float(np.max(norms)) * 1.2 if len(norms) else 1])
    axes(fig, "x", tickangle=-45)
    return style(fig, title, height=340)


def _short(s: str, n: int = 42) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def context_trajectories(ca: ContextAnalysis, title: str | None = None) -> go.Figure:
    """One line per sentence: the word's vector at each layer boundary, on 2 principal components of
    all the points. All lines start where the word's embedding is (the same row in every sentence)."""
    fig = go.Figure()
    names = layer_names(ca.n_points)
    last = ca.n_points - 1
    for c, ctx in enumerate(ca.contexts):
        xy = ca.coords[c]                                             # [L+1, 2]
        color = PALETTE[c % len(PALETTE)]
        text = ["" for _ in range(ca.n_points)]
        text[last] = f"#{c + 1}"
        fig.add_trace(go.Scatter(
            x=xy[:, 0], y=xy[:, 1], mode="lines+markers+text", name=f"#{c + 1} {_short(ctx.sentence)}",
            line=dict(color=color, width=3), text=text, textposition="middle right",
            textfont=dict(size=18, color=color),
            marker=dict(size=[14 if i in (0, last) else 7 for i in range(ca.n_points)], color=color,
                        symbol=["circle" if i != last else "diamond" for i in range(ca.n_points)]),
            customdata=names, hovertemplate=f"<b>#{c + 1}</b> {_short(ctx.sentence, 60)}<br>%{{customdata}}"
                                            "<extra></extra>"))
    fig.add_annotation(x=ca.coords[0, 0, 0], y=ca.coords[0, 0, 1], text="start: the embedding", showarrow=True,
                       arrowhead=2, ax=40, ay=-40, font=dict(size=15))
    evr = ca.explained_variance_ratio
    axes(fig, "x", title_text=f"PC1 ({evr[0]:.0%} of variance)", zeroline=False)
    axes(fig, "y", title_text=f"PC2 ({evr[1]:.0%} of variance)", zeroline=False)
    relayout(fig, legend=dict(orientation="h", yanchor="top", y=-0.15, x=0))
    return style(fig, title, height=620)


def context_cosines(ca: ContextAnalysis, title: str | None = None) -> go.Figure:
    """Cosine between each pair of sentences' vectors for the word, at every layer boundary."""
    pc = ca.pair_cosines()                                            # [L+1, P]
    names = layer_names(ca.n_points)
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for p, (i, j) in enumerate(ca.pairs):
        fig.add_trace(go.Scatter(
            x=list(range(ca.n_points)), y=pc[:, p], mode="lines+markers", name=f"#{i + 1} ↔ #{j + 1}",
            line=dict(width=3, color=PALETTE[p % len(PALETTE)], dash=dashes[(p // len(PALETTE)) % len(dashes)]),
            customdata=names, hovertemplate=f"#{i + 1} ↔ #{j + 1}<br>%{{customdata}}<br>cosine %{{y:.2f}}"
                                            "<extra></extra>"))
    axes(fig, "x", title_text="layer boundary (0 = embedding, l = after block l−1)")
    axes(fig, "y", title_text="cosine between the sentences", range=[min(-0.05, float(pc.min()) - 0.05), 1.05])
    return style(fig, title, height=460)


def context_cosine_matrix(ca: ContextAnalysis, layer: int, title: str | None = None) -> go.Figure:
    """The cosines between all the sentences at one layer boundary."""
    m = ca.cosine[layer]                                              # [C, C]
    labels = [f"#{i + 1}" for i in range(len(ca.contexts))]
    hover = np.array([[f"#{i + 1} {_short(ca.contexts[i].sentence)}<br>#{j + 1} {_short(ca.contexts[j].sentence)}"
                       f"<br>cosine {m[i, j]:.2f}" for j in range(len(labels))] for i in range(len(labels))])
    fig = go.Figure(go.Heatmap(z=m, x=labels, y=labels, zmin=-1, zmax=1, colorscale=DIVERGING,
                               text=np.round(m, 2), texttemplate="%{text}", textfont=dict(size=16),
                               customdata=hover, hovertemplate="%{customdata}<extra></extra>", xgap=2, ygap=2))
    axes(fig, "y", autorange="reversed")
    return style(fig, title, height=380)
