"""Figures for the anatomy page: where a model's parameters are, and how that changes with scale."""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from ..anatomy import GROUP_LABELS, GROUPS, ParamCount, ScaleRow, human_count
from .common import axes, relayout, style
from .palette import BLUE, GREEN, LIGHT, ORANGE, PINK, SKY, VERMILION, WHITE

COLORS = {
    "embedding": BLUE,
    "positional": SKY,
    "attention": ORANGE,
    "mlp": GREEN,
    "norms": PINK,
    "unembedding": VERMILION,
}


def param_treemap(pc: ParamCount, name: str, title: str | None = "Where the parameters are") -> go.Figure:
    """Boxes sized by parameter count: embeddings, the blocks (attention, MLP, norms) and the head."""
    total = pc.total
    ids, labels, parents, values, colors, hover = [], [], [], [], [], []

    def add(i: str, label: str, parent: str, value: int, color: str, note: str = "") -> None:
        ids.append(i)
        labels.append(label)
        parents.append(parent)
        values.append(value)
        colors.append(color)
        hover.append(f"{value:,} parameters<br>{value / total:.1%} of the model" + (f"<br>{note}" if note else ""))

    add("root", f"{name}: {human_count(total)}", "", total, WHITE)
    emb_label = "Token<br>embedding" + ("<br>= unembedding<br>(tied)" if pc.tied else "")
    tied_note = "the output layer re-uses this matrix: counted once" if pc.tied else ""
    add("embedding", emb_label, "root", pc.embedding, COLORS["embedding"],
        f"[{pc.vocab_size:,} tokens × {pc.d_model:,}]" + (f"<br>{tied_note}" if tied_note else ""))
    if pc.positional:
        add("positional", "Position embedding", "root", pc.positional, COLORS["positional"],
            f"[{pc.n_ctx:,} positions × {pc.d_model:,}]")
    blocks = pc.attention + pc.mlp + pc.n_layers * pc.norms_per_layer
    add("blocks", f"{pc.n_layers} transformer blocks", "root", blocks, LIGHT,
        f"{pc.per_layer:,} parameters per block")
    add("attention", "Attention", "blocks", pc.attention, COLORS["attention"],
        f"{pc.attention_per_layer:,} per block · {pc.n_heads} query heads, {pc.n_kv_heads} key/value heads")
    add("mlp", "MLP", "blocks", pc.mlp, COLORS["mlp"],
        f"{pc.mlp_per_layer:,} per block · {pc.d_model:,} → {pc.d_mlp:,} → {pc.d_model:,}")
    add("block_norms", "Norms", "blocks", pc.n_layers * pc.norms_per_layer, COLORS["norms"],
        f"{pc.norms_per_layer:,} per block")
    if pc.final_norm:
        add("final_norm", "Final norm", "root", pc.final_norm, COLORS["norms"])
    if pc.unembedding:
        add("unembedding", "Unembedding (lm_head)" if not pc.tied else "lm_head bias", "root", pc.unembedding,
            COLORS["unembedding"], f"[{pc.d_model:,} → {pc.vocab_size:,}]")
    fig = go.Figure(go.Treemap(
        ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
        marker=dict(colors=colors, line=dict(color="white", width=2)),
        customdata=hover, hovertemplate="<b>%{label}</b><br>%{customdata}<extra></extra>",
        texttemplate="<b>%{label}</b><br>%{value:,.0f}<br>%{percentRoot:.1%}", textfont=dict(size=18),
    ))
    return style(fig, title, height=520)


def scale_shares(rows: Sequence[ScaleRow], highlight: str | None = None,
                 title: str | None = "Share of the parameters, by part") -> go.Figure:
    """One 100 % bar per model, split into embedding, positions, attention, MLP, norms, unembedding.
    The embedding's share shrinks as models grow: the blocks take over."""
    names = [(f"<b>{r.name}</b>" if r.name == highlight else r.name) + f" ({human_count(r.total)})" for r in rows]
    fig = go.Figure()
    for g in GROUPS:
        vals = [getattr(r.count, g) for r in rows]
        if not any(vals):
            continue
        share = [v / r.total for v, r in zip(vals, rows)]
        fig.add_bar(
            y=names, x=share, name=GROUP_LABELS[g], orientation="h", marker_color=COLORS[g],
            customdata=vals, text=[f"{s:.0%}" if s >= 0.04 else "" for s in share], textposition="inside",
            hovertemplate=f"%{{y}}<br>{GROUP_LABELS[g]}: %{{customdata:,}} parameters (%{{x:.1%}})<extra></extra>",
        )
    relayout(fig, barmode="stack", legend=dict(orientation="h", y=-0.12, x=0, traceorder="normal"),
             bargap=0.25)
    axes(fig, "x", tickformat=".0%", range=[0, 1])
    axes(fig, "y", autorange="reversed")
    return style(fig, title, height=140 + 48 * len(rows))
