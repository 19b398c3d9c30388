"""Figures for the tiny language model lab: learning-rate sweep, loss curves, the character embedding
table, next-character probabilities and the overfitting demonstration."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..makemore import CHARS, UNIFORM_LOSS, VOWELS, LRSweep, OverfitResult, TrainProgress
from .common import axes, relayout, style
from .palette import BLUE, DARK_GREY, FIRST, LIGHT, MUTED, NOTICE, SECOND

TRAIN, DEV, BATCH, VOWEL, CONSONANT, END = FIRST, SECOND, LIGHT, NOTICE, BLUE, MUTED


def _baseline(fig: go.Figure) -> None:
    fig.add_hline(y=UNIFORM_LOSS, line_dash="dot", line_color=DARK_GREY,
                  annotation_text=f"guessing uniformly: ln 27 = {UNIFORM_LOSS:.2f}", annotation_position="top right")


def lr_sweep(sweep: LRSweep, title: str | None = "Learning-rate finder") -> go.Figure:
    """Loss against a learning rate that grows every step: pick a rate where the loss falls fastest."""
    ok = np.isfinite(sweep.losses)
    fig = go.Figure()
    fig.add_scatter(x=sweep.lrs[ok], y=sweep.losses[ok], mode="markers", name="loss at that step",
                    marker=dict(color=BATCH, size=5),
                    hovertemplate="learning rate %{x:.3g}<br>minibatch loss %{y:.3f}<extra></extra>")
    fig.add_scatter(x=sweep.lrs[ok], y=sweep.smoothed[ok], mode="lines", name="smoothed",
                    line=dict(color=TRAIN, width=3),
                    hovertemplate="learning rate %{x:.3g}<br>smoothed loss %{y:.3f}<extra></extra>")
    fig.add_vline(x=sweep.suggested, line_dash="dash", line_color=DEV,
                  annotation_text=f"suggested {sweep.suggested:.2g}", annotation_position="top left")
    _baseline(fig)
    axes(fig, "x", type="log", title="learning rate (grows every step)")
    axes(fig, "y", title="loss", range=[min(1.5, float(np.nanmin(sweep.losses)) - 0.1), UNIFORM_LOSS + 1.2])
    relayout(fig, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return style(fig, title, height=420)


def loss_curves(history: Sequence[TrainProgress], total_steps: int | None = None,
                title: str | None = "Loss while training") -> go.Figure:
    """Train and dev loss on their whole splits (and the average minibatch loss) against steps."""
    steps = [h.step for h in history]
    fig = go.Figure()
    fig.add_scatter(x=steps[1:], y=[h.batch_loss for h in history[1:]], mode="lines", name="minibatch (avg)",
                    line=dict(color=BATCH, width=1.5),
                    hovertemplate="step %{x}<br>mean minibatch loss %{y:.3f}<extra></extra>")
    fig.add_scatter(x=steps, y=[h.train_loss for h in history], mode="lines+markers", name="train",
                    line=dict(color=TRAIN, width=3),
                    hovertemplate="step %{x}<br>train loss %{y:.3f}<extra></extra>")
    fig.add_scatter(x=steps, y=[h.dev_loss for h in history], mode="lines+markers", name="dev (never trained on)",
                    line=dict(color=DEV, width=3),
                    hovertemplate="step %{x}<br>dev loss %{y:.3f}<extra></extra>")
    _baseline(fig)
    lo = min([h.train_loss for h in history] + [h.dev_loss for h in history] + [2.0])
    axes(fig, "x", title="training step", range=[0, max(total_steps or 0, steps[-1] if steps else 1) * 1.02])
    axes(fig, "y", title="loss (cross-entropy, nats)", range=[lo - 0.15, UNIFORM_LOSS + 0.35])
    relayout(fig, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return style(fig, title, height=420)


def _char_colors() -> list[str]:
    return [END if c == "." else VOWEL if c in VOWELS else CONSONANT for c in CHARS]


def _range(coords: np.ndarray) -> tuple[list[float], list[float]]:
    flat = coords.reshape(-1, 2)                                           # [K*27, 2]
    lo, hi = flat.min(0), flat.max(0)
    pad = (hi - lo) * 0.08 + 1e-6
    return [float(lo[0] - pad[0]), float(hi[0] + pad[0])], [float(lo[1] - pad[1]), float(hi[1] + pad[1])]


def _axes(fig: go.Figure, xr: list[float], yr: list[float], projected: bool) -> None:
    name = "principal direction" if projected else "embedding dimension"
    axes(fig, "x", range=xr, title=f"{name} 1", zeroline=False)
    axes(fig, "y", range=yr, title=f"{name} 2", zeroline=False)


def _scatter(coords: np.ndarray) -> go.Scatter:
    kinds = ["start/end of a name" if c == "." else "vowel" if c in VOWELS else "consonant" for c in CHARS]
    return go.Scatter(
        x=coords[:, 0], y=coords[:, 1], mode="markers+text", text=list(CHARS), customdata=kinds,
        textfont=dict(size=20, color="white"), textposition="middle center",
        marker=dict(size=30, color=_char_colors(), line=dict(color="white", width=1)),
        hovertemplate="'%{text}' (%{customdata})<br>x %{x:.2f}, y %{y:.2f}<extra></extra>", showlegend=False,
    )


def embedding_scatter(coords: np.ndarray, step: int, projected: bool = False, spread: float | None = None,
                      title: str | None = None) -> go.Figure:
    """The character embedding table, one dot per character [27, 2]; vowels in red."""
    fig = go.Figure(_scatter(coords))
    xr, yr = _range(coords)
    _axes(fig, xr, yr, projected)
    extra = f" · vowel spread {spread:.2f}" if spread is not None else ""
    return style(fig, title or f"Character embeddings at step {step:,}{extra}", height=480)


def embedding_animation(frames: Sequence[np.ndarray], steps: Sequence[int], projected: bool = False,
                        title: str | None = "The embedding table while it learned (press ▶)") -> go.Figure:
    """Replay the embedding table's snapshots [K][27, 2] with a play button and a step slider."""
    stack = np.stack(frames)                                               # [K, 27, 2]
    xr, yr = _range(stack)
    fig = go.Figure(_scatter(stack[-1]),
                    frames=[go.Frame(data=[_scatter(f)], name=str(s)) for f, s in zip(stack, steps)])
    _axes(fig, xr, yr, projected)
    play = dict(frame=dict(duration=250, redraw=True), transition=dict(duration=200), fromcurrent=False)
    relayout(
        fig,
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.2, xanchor="left", yanchor="top",
                          buttons=[dict(label="▶ play", method="animate", args=[None, play])])],
        sliders=[dict(active=len(steps) - 1, x=0.2, y=-0.16, len=0.8, currentvalue=dict(prefix="step "),
                      steps=[dict(label=f"{s:,}", method="animate",
                                  args=[[str(s)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
                             for s in steps])],
    )
    fig = style(fig, title, height=560)
    relayout(fig, margin=dict(b=150))
    return fig


def next_char_bars(probs: np.ndarray, prefix: str, top: int = 10) -> go.Figure:
    """The model's probability for each next character after `prefix` (top few)."""
    order = np.argsort(probs)[::-1][:top]
    labels = ["end of name (.)" if CHARS[i] == "." else CHARS[i] for i in order]
    fig = go.Figure(go.Bar(
        x=probs[order][::-1], y=labels[::-1], orientation="h", marker_color=[_char_colors()[i] for i in order][::-1],
        text=[f"{p:.0%}" for p in probs[order][::-1]], textposition="outside",
        hovertemplate="next '%{y}'<br>probability %{x:.2%}<extra></extra>",
    ))
    axes(fig, "x", tickformat=".0%", range=[0, min(1.0, float(probs.max()) * 1.3 + 0.02)])
    return style(fig, f"After '{prefix}' the model expects…", height=80 + 34 * len(order))


def overfit_curves(res: OverfitResult, title: str | None = None) -> go.Figure:
    """Train loss on a few names keeps falling while the loss on unseen names turns and climbs."""
    fig = go.Figure()
    fig.add_scatter(x=res.steps, y=res.train, mode="lines", name=f"train ({res.n_train_names} names)",
                    line=dict(color=TRAIN, width=3), hovertemplate="step %{x}<br>train loss %{y:.3f}<extra></extra>")
    fig.add_scatter(x=res.steps, y=res.dev, mode="lines", name="dev (names it never saw)",
                    line=dict(color=DEV, width=3), hovertemplate="step %{x}<br>dev loss %{y:.3f}<extra></extra>")
    best = int(np.argmin(res.dev))
    fig.add_vline(x=res.best_step, line_dash="dash", line_color=DARK_GREY,
                  annotation_text=f"best dev loss {res.dev[best]:.2f}: stop here", annotation_position="top right")
    _baseline(fig)
    axes(fig, "x", title="training step (whole tiny train set each step)")
    axes(fig, "y", title="loss", range=[0, max(float(res.dev.max()), UNIFORM_LOSS) + 0.4])
    relayout(fig, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return style(fig, title or f"Overfitting: {res.n_params:,} parameters, {res.n_train_examples} examples",
                 height=420)
