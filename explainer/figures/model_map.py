"""The Model map: the whole forward pass as boxes (one figure), and small views of one box's values.

Boxes are drawn as shapes with their text as annotations, on a grid of 7 columns; an invisible marker at
each box's centre carries the box's id (customdata) so a click can pick it. Every box shows its name, its
live shape, its parameter count and its hook name.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..mlp import TokenNeurons
from ..model_map import ModelMap, Part
from .common import DIVERGING, PROB_SCALE, axes, axis_labels, relayout, show_token, style
from .palette import BLUE, DARK_GREY, FAINT, GREEN, INK, LIGHT_BLUE, ORANGE, PICKED, TOKEN_TINTS, WHITE

BLOCK_BOX = "block"                 # the id of the collapsed stack of blocks
BOX_W, BOX_H = 0.9, 0.84            # a box in grid units
ROW_H = 140                         # pixels per grid row, at least (more when a box's text needs more lines)
PLOT_PX = 780                       # the map's width on a 1280-px projector (the page's main column)
NAME_PX, TEXT_PX = 7.6, 7.2         # a character of a box's 14-px text, on average: its bold name, the rest
LINE_PX = 18                        # one line of it
# kind -> (fill, border): attention blue, MLP orange, embeddings green, norms and adds grey
_LOOK = {
    "attn": (LIGHT_BLUE, BLUE), "mlp": (TOKEN_TINTS[3], ORANGE), "io": (TOKEN_TINTS[1], GREEN),
    "plain": (FAINT, DARK_GREY),
}
_GROUP = {"q": "attn", "k": "attn", "v": "attn", "rotary": "attn", "pattern": "attn", "z": "attn",
          "attn_out": "attn", "mlp_in": "mlp", "mlp_up": "mlp", "act": "mlp", "mlp_out": "mlp",
          "embed": "io", "pos": "io", "unembed": "io", "softmax": "io", "tokens": "io"}

# where a block's parts go: box id -> (column, row inside the block's panel)
_SEQUENTIAL = {
    "attn_norm": (0, 1), "attn.q": (1, 0), "attn.k": (1, 1), "attn.v": (1, 2), "attn.rotary": (2, 0.5),
    "attn.pattern": (3, 1), "attn.z": (4, 1), "attn.out": (5, 1), "add_attn": (6, 1),
    "mlp_norm": (0, 3.5), "mlp.gate": (1, 3), "mlp.up": (1, 4), "mlp.act": (3, 3.5), "mlp.down": (5, 3.5),
    "add_mlp": (6, 3.5),
}
_UNGATED_UP = (1, 3.5)
_PARALLEL = {**_SEQUENTIAL, "add_mlp": (6, 2.25)}
_SHARED_NORM = (0, 2.25)            # GPT-J: one norm feeds both branches


def box_id(part: Part) -> str:
    """A part's id without its block: "embed", "attn.q", "add_mlp" (the `box` value in a link)."""
    return part.key.split(".", 2)[2] if part.layer is not None else part.key


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(f"{s:,}" for s in shape) + "]"


def params_text(n: int) -> str:
    if n == 0:
        return "no parameters"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M parameters"
    return f"{n:,} parameters"


def fit(text: str, chars: int) -> list[str]:
    """`text` in lines of at most `chars` characters where it can be: broken at a space (dropped), or after a dot
    or an underscore (kept), the last such place that fits; a word longer than a line stays whole."""
    lines: list[str] = []
    rest = text
    while len(rest) > chars:
        fits = [i for i, c in enumerate(rest) if i > 0 and ((c == " " and i <= chars) or (c in "._" and i < chars))]
        later = [i for i, c in enumerate(rest) if i > 0 and c in " ._"]
        if not (fits or later):
            break
        i = fits[-1] if fits else later[0]
        lines.append(rest[:i] if rest[i] == " " else rest[:i + 1])
        rest = rest[i + 1:]
    lines.append(rest)
    return [ln for ln in lines if ln]


def box_chars(n_cols: int) -> tuple[int, int]:
    """How many characters of a box's name, and of its other lines, fit on one line with `n_cols` boxes across
    the map at 1280 px (measured in Chromium: tests/test_e2e.py checks every box's text inside its box)."""
    px = BOX_W * PLOT_PX / max(n_cols, 1) - 4
    return max(8, int(px / NAME_PX)), max(9, int(px / TEXT_PX))


def _hook_name(part: Part) -> str:
    if not part.hook:
        return "no hook site"
    return part.hook.split(".", 2)[2] if part.layer is not None else part.hook


def _box(fig: go.Figure, x: float, y: float, lines: list[str], group: str, picked: bool, box: str,
         hover: str, xs: list, ys: list, ids: list, hovers: list, dashed: bool = False) -> None:
    """A box with its text (lines already fitted to its width, see _lines)."""
    fill, line = _LOOK[group]
    fig.add_shape(type="rect", x0=x - BOX_W / 2, x1=x + BOX_W / 2, y0=y - BOX_H / 2, y1=y + BOX_H / 2,
                  fillcolor=fill, line=dict(color=PICKED if picked else line, width=5 if picked else 2,
                                            dash="dash" if dashed else "solid"), layer="below")
    fig.add_annotation(x=x, y=y, text="<br>".join(lines), showarrow=False, font=dict(size=14, color=INK),
                       align="center")
    xs.append(x)
    ys.append(y)
    ids.append(box)
    hovers.append(hover)


def _arrow(fig: go.Figure, a: tuple[float, float], b: tuple[float, float]) -> None:
    """An arrow from the right edge of box a to the left edge of box b (or top to bottom in a column)."""
    (x0, y0), (x1, y1) = a, b
    if abs(x1 - x0) < 1e-9:                                   # same column: downwards
        start, end = (x0, y0 - BOX_H / 2), (x1, y1 + BOX_H / 2)
    else:
        start, end = (x0 + BOX_W / 2, y0), (x1 - BOX_W / 2, y1)
    fig.add_annotation(x=end[0], y=end[1], ax=start[0], ay=start[1], xref="x", yref="y", axref="x", ayref="y",
                       showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=2, arrowcolor=DARK_GREY, text="")


def _lines(name: str, shape: str, params: str, hook: str, chars: tuple[int, int]) -> list[str]:
    """A box's text: its name (bold), live shape, parameter count and hook name (italic), each broken into
    lines that fit the box (`chars`: see box_chars)."""
    bold, plain = chars
    return ([f"<b>{t}</b>" for t in fit(name, bold)] + fit(shape, plain) + fit(params, plain)
            + [f"<i>{t}</i>" for t in fit(hook, plain)])


def _part_lines(part: Part, chars: tuple[int, int]) -> list[str]:
    return _lines(part.name, shape_text(part.shape), params_text(part.params), _hook_name(part), chars)


def row_px(lines: int) -> int:
    """Pixels per grid row for boxes of `lines` lines of text (at least ROW_H)."""
    return max(ROW_H, int((lines * LINE_PX + 14) / BOX_H))


def _hover(part: Part) -> str:
    where = f" · module {part.module}" if part.module else ""
    return (f"<b>{part.name}</b><br>shape {shape_text(part.shape)} · {params_text(part.params)}<br>"
            f"hook {part.hook or '—'}{where}" + (f"<br>{part.note}" if part.note else ""))


def diagram(mm: ModelMap, open_layer: int | None = None, picked: str | None = None) -> go.Figure:
    """The forward pass: the parts outside the blocks in one row, the blocks as one box "× L" between them;
    with `open_layer`, that block is drawn open below, attention on top and the MLP underneath (side by side
    for parallel families, both read the block's input and one add closes the block). `picked`: a box id."""
    fig = go.Figure()
    xs: list[float] = []
    ys: list[float] = []
    ids: list[str] = []
    hovers: list[str] = []
    top_y = 0.0
    before, after = list(mm.before), list(mm.after)
    top_cols = len(before) + 1 + len(after)
    chars = box_chars(max(top_cols, 7) if open_layer is not None else top_cols)
    col = 0
    centres: list[tuple[float, float]] = []
    for part in before:
        _box(fig, col, top_y, _part_lines(part, chars), _GROUP.get(part.kind, "plain"), picked == box_id(part),
             box_id(part), _hover(part), xs, ys, ids, hovers)
        centres.append((col, top_y))
        col += 1
    block_params = sum(p.params for p in mm if p.layer is not None)
    last = mm.block(mm.n_layers - 1)[-1]
    stack = _lines(f"{mm.n_layers} blocks" if open_layer is None else f"Block {open_layer} of {mm.n_layers}",
                   shape_text(last.shape) + (" each" if open_layer is None else ", opened below"),
                   params_text(block_params), "blocks.{l}.hook_resid_post", chars)
    for off in (0.12, 0.06):                                # the stack: boxes behind the front one
        fig.add_shape(type="rect", x0=col - BOX_W / 2 + off, x1=col + BOX_W / 2 + off, y0=top_y - BOX_H / 2 + off,
                      y1=top_y + BOX_H / 2 + off, fillcolor=WHITE, line=dict(color=DARK_GREY, width=1), layer="below")
    _box(fig, col, top_y, stack, "plain", picked == BLOCK_BOX, BLOCK_BOX,
         f"{mm.n_layers} blocks, each {params_text(block_params // mm.n_layers)}. Pick the layer to open one.",
         xs, ys, ids, hovers)
    centres.append((col, top_y))
    col += 1
    for part in after:
        _box(fig, col, top_y, _part_lines(part, chars), _GROUP.get(part.kind, "plain"), picked == box_id(part),
             box_id(part), _hover(part), xs, ys, ids, hovers)
        centres.append((col, top_y))
        col += 1
    for a, b in zip(centres, centres[1:]):
        _arrow(fig, a, b)
    n_cols = max(col, 7) if open_layer is not None else col
    rows = 1.0

    if open_layer is not None:
        parts = mm.block(open_layer)
        have = {box_id(p) for p in parts}
        layout = dict(_PARALLEL if mm.parallel else _SEQUENTIAL)
        if "mlp.gate" not in have:
            layout["mlp.up"] = _UNGATED_UP
        if mm.parallel and "mlp_norm" not in have:
            layout["attn_norm"] = _SHARED_NORM
        y0 = -1.5                                           # the block's panel starts below the top row
        pos = {}
        for p in parts:
            c, r = layout[box_id(p)]
            pos[box_id(p)] = (c, y0 - r)
            _box(fig, c, y0 - r, _part_lines(p, chars), _GROUP.get(p.kind, "plain"), picked == box_id(p), box_id(p),
                 _hover(p), xs, ys, ids, hovers)
        # arrows along each branch
        attn_path = [k for k in ("attn_norm", "attn.k", "attn.pattern", "attn.z", "attn.out") if k in pos]
        mlp_path = [k for k in ("mlp_norm", "mlp.up" if "mlp.gate" not in pos else "mlp.gate", "mlp.act",
                                "mlp.down") if k in pos]
        for a, b in zip(attn_path, attn_path[1:]):
            _arrow(fig, pos[a], pos[b])
        for k in ("attn.q", "attn.v"):
            fig.add_shape(type="line", x0=pos["attn_norm"][0] + BOX_W / 2, y0=pos["attn_norm"][1],
                          x1=pos[k][0] - BOX_W / 2, y1=pos[k][1], line=dict(color=DARK_GREY, width=2))
        if "mlp.gate" in pos:
            fig.add_shape(type="line", x0=pos["mlp_norm"][0] + BOX_W / 2, y0=pos["mlp_norm"][1],
                          x1=pos["mlp.up"][0] - BOX_W / 2, y1=pos["mlp.up"][1], line=dict(color=DARK_GREY, width=2))
        if mm.parallel:
            if "mlp_norm" not in pos:                       # GPT-J: the shared norm feeds the MLP as well
                mlp_path = ["attn_norm", *mlp_path]
            _arrow(fig, pos["attn.out"], pos["add_mlp"])
        else:
            _arrow(fig, pos["attn.out"], pos["add_attn"])
            # the residual after attention goes on to the MLP's norm: down, then back to the first column
            (xa, ya), (xn, yn) = pos["add_attn"], pos["mlp_norm"]
            mid = yn + 1.0                                  # between the values and the gate
            path = f"M {xa},{ya - BOX_H / 2} L {xa},{mid} L {xn},{mid} L {xn},{yn + BOX_H / 2}"
            fig.add_shape(type="path", path=path, line=dict(color=DARK_GREY, width=2))
        for a, b in zip(mlp_path, mlp_path[1:]):
            _arrow(fig, pos[a], pos[b])
        _arrow(fig, pos["mlp.down"], pos["add_mlp"])
        kind = ("parallel block: attention and MLP both read the block's input, one add at the end"
                if mm.parallel else "attention, add, then MLP, add")
        fig.add_annotation(x=-0.5, y=y0 + 0.55, xanchor="left", showarrow=False, font=dict(size=16, color=INK),
                           text=f"<b>Block {open_layer}</b> (blocks.{open_layer}.…) · {kind}")
        fig.add_shape(type="rect", x0=-0.55, x1=n_cols - 0.45, y0=y0 - 4.5, y1=y0 + 0.85,
                      line=dict(color=DARK_GREY, width=1, dash="dot"), layer="below")
        rows = 6.9

    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", customdata=ids, hovertext=hovers, hoverinfo="text",
                             marker=dict(size=60, symbol="square", color=WHITE, opacity=0.01), showlegend=False))
    most = max(a.text.count("<br>") + 1 for a in fig.layout.annotations if a.text)   # lines in the fullest box
    style(fig, height=int(row_px(most) * rows + 40))
    axes(fig, "x", visible=False, range=[-0.6, n_cols - 0.4], fixedrange=True)
    axes(fig, "y", visible=False, range=[-rows + 0.5 if rows > 1 else -0.55, 0.6], fixedrange=True)
    relayout(fig, margin=dict(l=5, r=5, t=10, b=5), dragmode=False, clickmode="event+select")
    return fig


def picked_box(points: list[dict] | None) -> str | None:
    """The box id of a click (a Streamlit plotly selection's points), if any."""
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, str):
            return cd
        if isinstance(cd, (list, tuple)) and cd:
            return str(cd[0])
    return None


# -- one box's values for one token -----------------------------------------------------------------

def vector_strip(values: np.ndarray, title: str) -> go.Figure:
    """A vector as one strip of coloured cells (blue negative, red positive), one per dimension; several
    rows for a [rows, width] array (heads)."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float32))
    top = float(np.max(np.abs(v))) or 1.0
    fig = go.Figure(go.Heatmap(z=v, colorscale=DIVERGING, zmin=-top, zmax=top, zmid=0,
                               hovertemplate="dimension %{x}: %{z:.3f}<extra></extra>" if len(v) == 1 else
                               "head %{y}, dimension %{x}: %{z:.3f}<extra></extra>",
                               colorbar=dict(thickness=14, nticks=3 if len(v) == 1 else 6)))
    axes(fig, "x", title="dimension")
    axes(fig, "y", visible=len(v) > 1, title="head" if len(v) > 1 else None, autorange="reversed")
    return style(fig, title, height=180 if len(v) == 1 else 120 + 40 * len(v))


def vector_zoom(values: np.ndarray, n: int = 24, title: str | None = None) -> go.Figure:
    """The zoomed view of a long `vector_strip`: its n largest numbers by size, in the order of their dimensions,
    one large labelled cell each, on the full strip's colour range (±its largest |value|)."""
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    top = float(np.max(np.abs(v))) or 1.0
    dims = np.sort(np.argsort(-np.abs(v), kind="stable")[:n])          # [n] in dimension order
    fig = go.Figure(go.Heatmap(z=v[dims][None], x=[f"d{d}" for d in dims], colorscale=DIVERGING, zmin=-top, zmax=top,
                               zmid=0, text=[[f"{x:.1f}" for x in v[dims]]], texttemplate="%{text}",
                               textfont=dict(size=14), hovertemplate="dimension %{x}: %{z:.3f}<extra></extra>", xgap=2,
                               colorbar=dict(thickness=14, nticks=3 if len(v) == 1 else 6)))
    axes(fig, "x", type="category", tickangle=-45, title="dimension")
    axes(fig, "y", visible=False)
    return style(fig, title, height=220)


def attention_row(weights: np.ndarray, tokens, position: int, title: str) -> go.Figure:
    """One query's attention weights in every head: [H, T] (the keys after the query are 0)."""
    w = np.asarray(weights)[:, :position + 1]
    labels = axis_labels(tokens)[:position + 1]
    fig = go.Figure(go.Heatmap(z=w, x=labels, y=[f"head {h}" for h in range(len(w))], colorscale=PROB_SCALE,
                               zmin=0, zmax=1, hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>",
                               colorbar=dict(thickness=14)))
    axes(fig, "y", autorange="reversed")
    return style(fig, title, height=140 + 32 * len(w))


def top_values(values: np.ndarray, n: int, layer: int, position: int) -> TokenNeurons:
    """The n largest |values| of a neuron-sized vector, as the MLP page's bar reads them."""
    v = np.asarray(values, dtype=np.float32)
    top = np.argsort(-np.abs(v), kind="stable")[:n]
    return TokenNeurons(layer=layer, position=position, neurons=top.astype(np.int64), acts=v[top])


def token_label(tokens, position: int) -> str:
    return f"'{show_token(tokens[position])}' (position {position})"
