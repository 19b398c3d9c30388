"""Figures for next-token prediction and generation: the distribution, which tokens each filter
removed, the step timeline, tokens shaded by probability, and a padded batch with its mask."""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ..sampling import Distribution
from .common import PROB_SCALE, axes, relayout, show_token, style
from .palette import BLUE, FAINT, LIGHT, LIGHT_BLUE, MUTED, ORANGE, PICKED, SKY

KEPT = BLUE
CUT = {"top-k": MUTED, "top-p": ORANGE, "min-p": SKY, "greedy": MUTED, "kept": KEPT}
FATE_WORDS = {"kept": "kept", "top-k": "cut by top-k", "top-p": "cut by top-p", "min-p": "cut by min-p",
              "greedy": "cut: temperature 0"}


def _short(s: str, n: int = 14) -> str:
    s = show_token(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def settings_text(dist: Distribution, per_line: int | None = None) -> str:
    """The sampling settings, "temperature 1 · top-k 10 · top-p 0.9 …"; with `per_line`, a line break (<br>)
    after every per_line of them, so that a chart title fits a half-width column."""
    s = dist.settings
    parts = [f"temperature {s.temperature:g}" + (" (greedy)" if dist.greedy else "")]
    parts.append(f"top-k {s.top_k}" if s.top_k else "top-k off")
    parts.append(f"top-p {s.top_p:g}" if s.top_p is not None else "top-p off")
    if s.min_p is not None:
        parts.append(f"min-p {s.min_p:g}")
    if s.repetition_penalty is not None:
        parts.append(f"repetition penalty {s.repetition_penalty:g}")
    if not per_line:
        return " · ".join(parts)
    return "<br>".join(" · ".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line))


def distribution_chart(dist: Distribution, ids: Sequence[int], strings: Sequence[str], chosen: int | None = None,
                       title: str | None = "Next-token probabilities") -> go.Figure:
    """Horizontal bars for the given tokens (largest logit on top): the solid bar is the probability
    the token is sampled with; the pale bar behind it, its probability after temperature alone, so a
    filtered-out token still shows what it lost. Hover: id, logit, both probabilities, its fate.
    `chosen` marks the token that was taken at this step (◀)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    fates = [dist.fate(int(i)) for i in ids]
    labels = [f"{r + 1}. {show_token(s)}{' ◀ taken' if chosen is not None and int(i) == chosen else ''}"
              for r, (i, s) in enumerate(zip(ids, strings))][::-1]  # most likely on top
    final = dist.probs[ids][::-1]
    before = dist.tempered[ids][::-1]
    custom = np.array([[int(i), float(dist.logits[i]), float(dist.tempered[i]), float(dist.probs[i]),
                        FATE_WORDS[f]] for i, f in zip(ids, fates)], dtype=object)[::-1]
    hover = ("<b>%{y}</b><br>id %{customdata[0]}<br>logit %{customdata[1]:.2f}"
             "<br>after temperature %{customdata[2]:.2%}<br>sampled with %{customdata[3]:.2%}"
             "<br>%{customdata[4]}<extra></extra>")
    text = [f"{p:.1%}" if f == "kept" else FATE_WORDS[f] for p, f in zip(dist.probs[ids], fates)][::-1]
    fig = go.Figure()
    fig.add_bar(x=before, y=labels, orientation="h", name="after temperature only", marker_color=LIGHT_BLUE,
                marker_line_color=BLUE, marker_line_width=1, customdata=custom, hovertemplate=hover)
    fig.add_bar(x=final, y=labels, orientation="h", name="sampled with (after top-k, top-p, min-p)",
                marker_color=[CUT[f] for f in fates][::-1], text=text, textposition="outside", cliponaxis=False,
                customdata=custom, hovertemplate=hover)
    top = float(max(final.max(initial=0), before.max(initial=0)))
    # No legend (it collided with the title): the page's caption says what pale and solid bars mean.
    relayout(fig, barmode="overlay", bargap=0.25, showlegend=False)
    axes(fig, "x", tickformat=".0%", range=[0, min(1.0, top * 1.3 + 0.03) if top < 0.75 else top * 1.3],
         title="probability")
    axes(fig, "y", tickfont=dict(family="ui-monospace, Menlo, monospace"))
    return style(fig, title, height=130 + 34 * n)


def survival_chart(dist: Distribution, ids: Sequence[int], strings: Sequence[str],
                   title: str | None = "Which tokens survive each filter") -> go.Figure:
    """Tokens (rows, largest logit on top) × stages: after temperature, after top-k, after top-p.
    Each cell is the token's renormalised probability at that stage; a cut token shows ✗."""
    ids = np.asarray(ids, dtype=np.int64)
    s = dist.settings
    v = dist.vocab_size
    stages = [
        (f"temperature {s.temperature:g}<br>{v:,} tokens", dist.tempered, np.zeros(v, dtype=bool)),
        (f"top-k {s.top_k or 'off'}<br>{dist.n_after_top_k:,} left", dist.after_top_k, dist.removed_top_k),
        (f"top-p {s.top_p if s.top_p is not None else 'off'}<br>{dist.n_kept:,} left", dist.probs,
         dist.removed_top_k | dist.removed_top_p | dist.removed_greedy
         | (dist.removed_min_p if dist.removed_min_p is not None else False)),
    ]
    cols = [c for c, *_ in stages]
    rows = [f"{r + 1}. {_short(t)}" for r, t in enumerate(strings)]
    z = np.full((len(ids), 3), np.nan)
    text = np.empty((len(ids), 3), dtype=object)
    hover = np.empty((len(ids), 3), dtype=object)
    for j, (_, probs, removed) in enumerate(stages):
        for r, i in enumerate(ids):
            fate = dist.fate(int(i))
            if removed[i]:
                text[r, j] = "✗"
                why = FATE_WORDS[fate] if j == 2 else "cut by top-k"
                hover[r, j] = f"{rows[r]}<br>id {int(i)}<br>{why}"
            else:
                z[r, j] = probs[i]
                text[r, j] = f"{probs[i]:.1%}" if probs[i] >= 0.0005 else "<0.1%"
                hover[r, j] = f"{rows[r]}<br>id {int(i)}<br>logit {dist.logits[i]:.2f}<br>probability {probs[i]:.3%}"
    fig = go.Figure(go.Heatmap(
        z=z[::-1], x=cols, y=rows[::-1], text=text[::-1], texttemplate="%{text}", textfont=dict(size=15),
        customdata=hover[::-1], hovertemplate="%{customdata}<extra>%{x}</extra>", colorscale=PROB_SCALE,
        zmin=0, zmax=max(0.05, float(np.nanmax(z)) if np.isfinite(z).any() else 1.0), xgap=3, ygap=3,
        colorbar=dict(title="p", tickformat=".0%"),
    ))
    axes(fig, "x", side="top")
    axes(fig, "y", tickfont=dict(family="ui-monospace, Menlo, monospace"))
    relayout(fig, plot_bgcolor=FAINT)
    return _title_above_top_axis(style(fig, title, height=200 + 30 * len(ids)))


def _title_above_top_axis(fig: go.Figure, top: int = 130) -> go.Figure:
    """A chart whose x labels sit on top: give the title its own room above them."""
    if fig.layout.title.text:
        relayout(fig, margin=dict(t=top), title=dict(y=0.99, yanchor="top", yref="container"))
    return fig


_HOW = {"top": "top token", "given": "taken from the link"}
_SYMBOL = {"top": "circle", "sample": "diamond", "given": "square"}


def timeline_chart(steps: Sequence, current: int | None = None, names: dict[int, str] | None = None,
                   title: str | None = "Every step so far") -> go.Figure:
    """One point per generation step: the probability the chosen token had (line and markers, token
    written above), the entropy of that step's distribution (pale bars, right axis); hover names the
    runners-up (`names`: token id -> text, for each step's top 4). `steps` are `generation.Step`s;
    `current` highlights the step being looked at."""
    names = names or {}
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if not steps:
        fig.add_annotation(text="No steps yet: take the top token or sample one.", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=18))
        axes(fig, "x", visible=False)
        axes(fig, "y", visible=False)
        return style(fig, title, height=260)
    x = [s.index for s in steps]
    probs = [s.prob for s in steps]
    ents = [s.dist.entropy for s in steps]
    hover = []
    for s in steps:
        d = s.dist
        alts = d.top(4)
        alt = ", ".join(f"{html.escape(show_token(names.get(int(a), f'#{int(a)}')))} {d.probs[a]:.0%}"
                        for a in alts if a != s.token_id)
        hover.append(f"step {s.index}: <b>{html.escape(show_token(s.token))}</b> (id {s.token_id})<br>"
                     f"{_HOW.get(s.how) or f'sampled, seed {s.seed}'} · rank {s.rank}<br>"
                     f"probability {s.prob:.2%} · entropy {d.entropy:.2f} bits<br>{settings_text(d)}"
                     f"<br>other candidates: {alt}")
    # Entropy bars on the primary axis (drawn first, drawn under), shown on the right; the probability line on
    # the secondary axis (drawn on top), shown on the left, so no bar hides a marker or its token.
    fig.add_bar(x=x, y=ents, name="entropy (bits)", marker_color=LIGHT, hoverinfo="skip", secondary_y=False)
    fig.add_scatter(x=x, y=probs, mode="lines+markers+text", name="probability of the chosen token",
                    text=[_short(s.token, 10) for s in steps], textposition="top center",
                    marker=dict(size=14, symbol=[_SYMBOL.get(s.how, "diamond") for s in steps],
                                color=[KEPT if s.how == "top" else PICKED for s in steps]),
                    line=dict(color=SKY), hovertext=hover, hoverinfo="text", secondary_y=True)
    if current is not None and 0 <= current < len(steps):
        fig.add_vline(x=current, line_width=3, line_color=PICKED, opacity=0.6)
    fig.update_yaxes(title_text="probability", tickformat=".0%", range=[0, 1.18], side="left",
                     tickmode="linear", tick0=0, dtick=0.2, secondary_y=True)
    fig.update_yaxes(title_text="entropy (bits)", showgrid=False, side="right", tickformat=".1f",
                     range=[0, max(1.0, max(ents)) * 1.18], secondary_y=False)
    given = " ■ from the link" if any(s.how == "given" for s in steps) else ""
    axes(fig, "x", title_text=f"step (● top token, ◆ sampled{given})", dtick=1 if len(steps) <= 30 else None)
    relayout(fig, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), bargap=0.4)
    return style(fig, title, height=360)


def prob_color(p: float) -> str:
    """Background for a token with probability p: pale (unlikely) to deep blue (certain)."""
    return sample_colorscale(PROB_SCALE, [0.08 + 0.8 * float(np.clip(p, 0, 1))])[0]


def shaded_tokens_html(tokens: Sequence[str], probs: Sequence[float], ids: Sequence[int] | None = None,
                       prefix: str = "") -> str:
    """Generated text as HTML, each token shaded by the probability it had (hover: id, probability).
    `prefix` (the prompt) is shown plainly in grey in front."""
    parts = []
    if prefix:
        parts.append(f'<span style="color:#777;white-space:pre-wrap">{html.escape(prefix)}</span>')
    for n, (t, p) in enumerate(zip(tokens, probs)):
        bg = prob_color(p)
        fg = "white" if p > 0.55 else "black"
        tip = f"p = {p:.1%}" + (f" · id {ids[n]}" if ids is not None else "")
        shown = html.escape(t).replace("\n", "↵<br>") or "∅"
        parts.append(f'<span title="{tip}" style="background:{bg};color:{fg};border-radius:4px;'
                     f'padding:1px 1px;white-space:pre-wrap">{shown}</span>')
    return ('<div style="font-family:ui-monospace,Menlo,monospace;font-size:1.15em;line-height:1.9">'
            + "".join(parts) + "</div>")


def shading_legend_html() -> str:
    stops = [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    cells = "".join(f'<span style="background:{prob_color(p)};color:{"white" if p > 0.55 else "black"};'
                    f'padding:2px 8px;border-radius:4px;margin-right:2px">{p:.0%}</span>' for p in stops)
    return f'<div style="font-size:0.85em">probability the token had: {cells}</div>'


def padding_chart(batch, title: str | None = None) -> go.Figure:
    """A padded batch as a grid: rows = prompts, columns = positions; real tokens blue (mask 1),
    padding grey (mask 0). Hover: token, id, mask and the position id the model is given."""
    ids, mask = np.asarray(batch.ids), np.asarray(batch.mask)        # [B, T]
    b, t = ids.shape
    pos = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)              # [B, T]
    text = np.empty((b, t), dtype=object)
    hover = np.empty((b, t), dtype=object)
    for r in range(b):
        for c in range(t):
            tok = batch.tokens[r][c]
            real = bool(mask[r, c])
            text[r, c] = _short(tok, 10) if real else "pad"
            hover[r, c] = (f"prompt {r + 1}, column {c}<br>token {html.escape(show_token(tok))} (id {ids[r, c]})"
                           f"<br>attention mask {mask[r, c]}"
                           + (f"<br>position id {pos[r, c]}" if real else "<br>ignored: the mask hides it"))
    rows = [f"prompt {r + 1} · {int(mask[r].sum())} tok" for r in range(b)]
    fig = go.Figure(go.Heatmap(
        z=mask[::-1], x=[str(c) for c in range(t)], y=rows[::-1], text=text[::-1], texttemplate="%{text}",
        textfont=dict(size=14, family="ui-monospace, Menlo, monospace"), customdata=hover[::-1],
        hovertemplate="%{customdata}<extra></extra>", colorscale=[[0, FAINT], [1, SKY]], zmin=0, zmax=1,
        showscale=False, xgap=3, ygap=3,
    ))
    axes(fig, "x", title="column (position in the padded batch)", side="top")
    title = title or (f"{b} prompts padded on the {batch.side} to {t} tokens · blue = mask 1 (real), "
                      "grey = mask 0 (padding)")
    return _title_above_top_axis(style(fig, title, height=200 + 52 * b), top=120)
