"""Figures for the Attention page: one head's pattern, every head at once, the Q·K steps,
grouped-query heads and head-role maps.

Token matrices put queries (the token looking) down the side and keys (the token looked at) across
the top; grey cells are the future, which a causal model cannot see. Figures that pick a head carry
one invisible clickable marker per head whose customdata is [layer, head]; `picked_head` reads a
Streamlit selection back into (layer, head).
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Any, Iterable

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from ..heads import top_heads
from .common import DIVERGING, PROB_SCALE, axes, axis_labels, relayout, show_token, style
from .palette import FAINT, INK, LIGHT, LIGHT_BLUE, LIGHT_PICK, MUTED, PICKED, SEQUENTIAL

FUTURE = LIGHT              # background showing through masked (future) cells
PICK = PICKED               # outline of the selected head
SCORE_SCALE = SEQUENTIAL    # head-role scores are mean attention weights
SHOW_VALUES_UP_TO = 12      # write the numbers into the cells of matrices up to this many tokens
COLOUR_LEVELS = 256         # the most steps an 8-bit colour scale can show over its range
TILE_LEVELS = 255           # weight levels of the all-heads image (its 8-bit palette keeps one for white)

STEP_INFO = {
    "raw": ("1 · Raw scores q·k", "q·k"),
    "scaled": ("2 · Scaled: × 1/√d_head", "scaled score"),
    "masked": ("3 · Causal mask: −∞ above the diagonal", "masked score"),
    "pattern": ("4 · Softmax: each row sums to 1", "weight"),
}


# -- token × token matrices --------------------------------------------------------------------
# What the browser gets (issue 13 item 4): values rounded to `decimals_for(span)` decimals, a step no
# coarser than what the colour scale can show (its range / 256: an 8-bit colour scale has no more steps),
# e.g. 3 decimals for weights 0–1 and 1 decimal for scores within ±45, sent as float32 (plotly packs numpy
# arrays as base64: 4 bytes a cell); the hover shows the same rounded value. The hover is one template over
# the axis labels and z, not a string per cell, and numbers are written into the cells only up to
# SHOW_VALUES_UP_TO tokens. (Plain lists would let a causal matrix send only its lower triangle, but plotly
# validates and copies a list element by element: 3–5 times slower per matrix at 128 tokens.)

def decimals_for(span: float) -> int:
    """Decimals that round a value no coarser than a colour scale spanning `span` can show (span / 256)."""
    if not np.isfinite(span) or span <= 0:
        return 3
    return max(0, int(np.ceil(-np.log10(span / COLOUR_LEVELS))))


def rounded(z: np.ndarray, decimals: int) -> np.ndarray:
    """z rounded to `decimals`, as float32, non-finite cells NaN (a gap in a heatmap)."""
    z = np.asarray(z, dtype=np.float64)
    return (np.round(np.where(np.isfinite(z), z, np.nan), decimals) + 0.0).astype(np.float32)   # + 0.0: no −0


def _cell_text(z: np.ndarray, fmt: str, masked_text: str) -> np.ndarray:
    def cell(v: float) -> str:
        if not np.isfinite(v):
            return masked_text
        s = format(v, fmt)
        return format(0.0, fmt) if float(s) == 0 else s      # -0.004 as "0.00", never "-0.00"
    return np.array([[cell(v) for v in row] for row in z], dtype=object)


def token_matrix(z: np.ndarray, tokens, title: str | None = None, *, value_name: str = "weight",
                 colorscale: str = PROB_SCALE, zmin: float | None = 0.0, zmax: float | None = 1.0,
                 zmid: float | None = None, fmt: str = ".2f", masked_text: str = "",
                 show_values: bool | None = None, row_sums: bool = False,
                 highlight: Iterable[tuple[int, int]] | None = None, height: int | None = None,
                 first: int = 0) -> go.Figure:
    """A [T, T] matrix with query tokens down and key tokens across; NaN or −inf cells are the future.

    Hover shows the query, the key and the value (rounded as the module notes say); `row_sums` adds each
    row's sum to the hover; `highlight` outlines (query, key) cells; `first` is the prompt position of row and
    column 0 when the matrix is a window of a longer one (the labels carry the real positions).
    """
    z = np.asarray(z, dtype=np.float64)                               # [T, T]
    T = z.shape[0]
    labels = axis_labels(tokens, first)
    finite = z[np.isfinite(z)]
    lo = zmin if zmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = zmax if zmax is not None else (float(finite.max()) if finite.size else 1.0)
    d = decimals_for(hi - lo)
    show_values = T <= SHOW_VALUES_UP_TO if show_values is None else show_values
    hover = f"query %{{y}}<br>key %{{x}}<br>{value_name} %{{z:.{d}f}}"
    customdata = None
    if row_sums:
        sums = [format(v, ".3f") for v in np.nansum(np.where(np.isfinite(z), z, np.nan), axis=1)]   # [T]
        if len(set(sums)) == 1:          # every row sums to the same (a softmax: 1.000): one template
            hover += f"   (row sum {sums[0]})"
        else:                            # otherwise each cell carries its row's sum
            customdata = rounded(np.broadcast_to(np.asarray(sums, dtype=float)[:, None], z.shape), 3)
            hover += "   (row sum %{customdata:.3f})"
    fig = go.Figure(go.Heatmap(
        z=rounded(z, d), x=labels, y=labels, colorscale=colorscale, zmin=zmin, zmax=zmax,
        zmid=zmid, customdata=customdata, hoverongaps=False,
        text=_cell_text(z, fmt, masked_text) if show_values else None,
        texttemplate="%{text}" if show_values else None, textfont=dict(size=14),
        hovertemplate=hover + "<extra></extra>",
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=14),
        xgap=1, ygap=1,
    ))
    if highlight:
        cells = list(highlight)
        fig.add_trace(go.Scatter(
            x=[labels[k] for _, k in cells], y=[labels[q] for q, _ in cells], mode="markers",
            marker=dict(symbol="square-open", size=max(6, min(22, 640 // max(T, 1))), color=PICK,
                        line=dict(width=2)),
            hoverinfo="skip", showlegend=False))
    axes(fig, "x", title_text="key: the token looked at →", side="bottom", tickangle=-45, showgrid=False,
         type="category", range=[-0.5, T - 0.5])
    axes(fig, "y", title_text="query: the token looking (rows)", showgrid=False, type="category",
         range=[T - 0.5, -0.5])
    relayout(fig, plot_bgcolor=FUTURE)
    return style(fig, title, height=height or int(np.clip(170 + 34 * T, 420, 900)))


PICKABLE_UP_TO = 64      # tokens: a head map this small gets a click target in every cell (a click picks its row)


def head_heatmap(pattern: np.ndarray, tokens, title: str | None = None, *, row: int | None = None,
                 pickable: bool = False, **kw: Any) -> go.Figure:
    """One head's attention pattern [T, T]; the future (above the diagonal) is grey; `row` (a query position)
    is outlined across the keys it can see. `pickable`: every visible cell carries an invisible click target
    whose customdata is [query, key, weight], so a click selects that row's token (`picked_row`)."""
    T = pattern.shape[0]
    z = np.where(np.tril(np.ones((T, T), dtype=bool)), pattern, np.nan)   # [T, T]
    fig = token_matrix(z, tokens, title, value_name="weight", row_sums=True, **kw)
    if row is not None and 0 <= row < T:       # category axes place shapes by index
        fig.add_shape(type="rect", x0=-0.5, x1=row + 0.5, y0=row - 0.5, y1=row + 0.5, line=dict(color=PICK, width=3))
    if pickable and T <= PICKABLE_UP_TO:
        labels = axis_labels(tokens, kw.get("first", 0))
        q, k = np.tril_indices(T)                                           # the cells a causal model sees
        cd = np.stack([q, k, np.round(np.asarray(pattern, dtype=np.float64)[q, k], 3)], axis=1).astype(np.float32)
        tmpl = ("query %{y}<br>key %{x}<br>weight %{customdata[2]:.3f}"
                "<br><i>click: select this row's token on every page</i>")
        marks = _click_markers([labels[i] for i in k], [labels[i] for i in q], cd, tmpl)
        marks.name = "cells"
        fig.add_trace(marks)
        relayout(fig, clickmode="event+select", dragmode=False, hoverdistance=CLICK_REACH)
    return fig


def picked_row(points: list[dict] | None) -> int | None:
    """The query row of a click on a pickable head map (customdata [query, key, weight]), if any."""
    for p in points or []:
        cd = _customdata(p)
        if cd is not None and len(cd) >= 3:
            return int(cd[0])
    return None


def head_zoom(pattern: np.ndarray, tokens, lo: int, hi: int, title: str | None = None) -> go.Figure:
    """The zoomed view of a long prompt's pattern [T, T]: queries and keys lo..hi (a block on the diagonal, so
    the future is the same triangle), labelled with their real positions. The hover's row sums are the weight
    each query puts inside the window (less than 1 when it also looks further back)."""
    if not 0 <= lo <= hi < pattern.shape[0]:
        raise ValueError(f"window {lo}–{hi} is outside 0–{pattern.shape[0] - 1}")
    block = np.asarray(pattern)[lo:hi + 1, lo:hi + 1]
    return head_heatmap(block, list(tokens)[lo:hi + 1], title, first=lo)


def qk_step(matrix: np.ndarray, tokens, step: str, title: str | None = None, *, first: int = 0) -> go.Figure:
    """One stage of Q·K: 'raw' or 'scaled' (diverging colours around 0), 'masked' (−∞ cells grey),
    'pattern' (weights 0 to 1, rows sum to 1); `first` is the prompt position of row and column 0 when the
    matrix is a window on the diagonal of a longer prompt's (its labels carry the real positions)."""
    if step not in STEP_INFO:
        raise ValueError(f"Unknown step '{step}'; choose one of {list(STEP_INFO)}.")
    head, value_name = STEP_INFO[step]
    title = title or head
    if step == "pattern":
        return head_heatmap(matrix, tokens, title, height=_step_height(matrix), first=first)
    finite = np.asarray(matrix)[np.isfinite(matrix)]
    lim = float(np.abs(finite).max()) if finite.size else 1.0
    return token_matrix(matrix, tokens, title, value_name=value_name, colorscale=DIVERGING, zmin=-lim, zmax=lim,
                        fmt=".1f", masked_text="−∞" if step == "masked" else "", height=_step_height(matrix),
                        first=first)


def _step_height(m: np.ndarray) -> int:
    return int(np.clip(170 + 30 * m.shape[0], 400, 760))


# -- every head at once ------------------------------------------------------------------------

def _pool_max(a: np.ndarray, size: int) -> np.ndarray:
    """Max-pool the last two axes of a [..., T, T] array to [..., size, size] (T ≥ size)."""
    T = a.shape[-1]
    edges = np.linspace(0, T, size + 1).round().astype(int)[:-1]     # [size] block starts
    a = np.maximum.reduceat(a, edges, axis=-1)                         # [..., T, size]
    return np.maximum.reduceat(a, edges, axis=-2)                      # [..., size, size]


def _pool_causal_max(attn: np.ndarray, size: int) -> np.ndarray:
    """Max-pool patterns [..., T, T] (T > size) to [..., size, size] over the past only (keys ≤ query);
    cells whose maximum is negative become NaN. Only the diagonal blocks mix past and future (blocks above
    them are wholly future, the caller greys them out), so only they are re-pooled with the future masked,
    and no masked copy of the whole array is made."""
    T = attn.shape[-1]
    pooled = _pool_max(attn, size)                                      # [..., size, size]
    edges = np.linspace(0, T, size + 1).round().astype(int)            # [size+1] the same blocks as _pool_max
    for b in range(size):
        lo, hi = edges[b], edges[b + 1]
        past = np.tril(np.ones((hi - lo, hi - lo), dtype=bool))         # [w, w]
        pooled[..., b, b] = np.where(past, attn[..., lo:hi, lo:hi], -1.0).max(axis=(-2, -1))
    return np.where(pooled < 0, np.nan, pooled)


# A click target no wider than the smallest cell it sits in on a projector's screen: a click picks the target nearest
# to it (within the layout's hoverdistance), so targets larger than their cells overlap their neighbours and a click
# on one cell can pick the next one (a role map at 1280 px has cells of about 15 px).
CLICK_PX = 10
CLICK_REACH = 40      # px: the layout's hoverdistance, so a click anywhere in a large cell still reaches its target


def _click_markers(xs, ys, customdata: np.ndarray, hovertemplate: str, size: float = CLICK_PX) -> go.Scatter:
    """Invisible clickable markers, CLICK_PX wide unless the cells are known to be larger (the zoomed tiles), one
    per head or cell; customdata [n, ≥ 2] = [layer, head, ...] (a numpy array:
    plotly validates and copies a list element by element), the hover one template over it for every head."""
    return go.Scatter(
        x=xs, y=ys, mode="markers", customdata=customdata, hovertemplate=hovertemplate + "<extra></extra>",
        marker=dict(symbol="square", size=size, color="rgba(0,0,0,0.003)", line=dict(width=0)),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
        showlegend=False, name="heads")


def _head_hover(n_layers: int, n_heads: int, n_kv_heads: int | None, scores: dict[str, np.ndarray] | None
                ) -> tuple[np.ndarray, str]:
    """Per head, layers first: customdata [L·H, k] float32 = [layer, head, (its key/value head), (role scores,
    2 decimals)...], and the one hover template that reads it."""
    grouped = bool(n_kv_heads) and n_kv_heads != n_heads
    tmpl = "<b>layer %{customdata[0]} · head %{customdata[1]}</b>"
    if grouped:
        tmpl += "<br>uses key/value head %{customdata[2]}"
    first = 3 if grouped else 2
    for i, role in enumerate(scores or {}):
        tmpl += f"<br>{role.replace('_', '-')} score %{{customdata[{first + i}]:.2f}}"
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)         # [L·H] each, layers first
    cols = [layer, head] + ([head // (n_heads // n_kv_heads)] if grouped else [])
    cols += [np.round(np.asarray(sc, dtype=np.float64).reshape(-1), 2) for sc in (scores or {}).values()]
    return np.stack(cols, axis=1).astype(np.float32), tmpl + "<br><i>click to open</i>"


@lru_cache(maxsize=8)
def _palette(colorscale: str, background: tuple[int, int, int]) -> list[int]:
    """A PNG palette: entry 0 the background, entry 1 + i the colour of weight i/(TILE_LEVELS−1) on the named
    plotly scale, interpolated in RGB between its stops as plotly.js does."""
    cols = pcolors.sample_colorscale(pcolors.get_colorscale(colorscale), np.linspace(0, 1, TILE_LEVELS))
    rgb = [list(background)] + [[round(float(c)) for c in col[4:-1].split(",")] for col in cols]
    return [c for col in rgb for c in col]


def tile_levels(values: np.ndarray) -> np.ndarray:
    """Weights in [0, 1] as uint8 palette indices: 1 + round(w·(TILE_LEVELS−1)), NaN → 0 (the background)."""
    v = np.asarray(values, dtype=np.float64)
    lv = 1 + np.rint(np.clip(np.nan_to_num(v, nan=0.0), 0, 1) * (TILE_LEVELS - 1))
    return np.where(np.isnan(v), 0, lv).astype(np.uint8)


def tile_weights(levels: np.ndarray) -> np.ndarray:
    """The inverse of tile_levels: the weight each palette index stands for (NaN for the background)."""
    lv = np.asarray(levels, dtype=np.float64)
    return np.where(lv == 0, np.nan, (lv - 1) / (TILE_LEVELS - 1))


def levels_png(levels: np.ndarray, colorscale: str, background=(255, 255, 255)) -> str:
    """Palette indices [h, w] (tile_levels) as a PNG data URI (8 bits a pixel), coloured by the named scale."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(levels, dtype=np.uint8), mode="P")
    img.putpalette(_palette(colorscale, tuple(background)))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _tiles(attn: np.ndarray, max_tile: int) -> np.ndarray:
    """Patterns [..., T, T] as palette levels [..., s, s], s = min(T, max_tile): max-pooled over the past when
    T > s, the future cells 0 (white)."""
    T = attn.shape[-1]
    s = min(T, max_tile)
    tiles = _pool_causal_max(attn, s) if T > s else attn               # no copy when not pooled
    lv = tile_levels(tiles)
    lv[..., ~np.tril(np.ones((s, s), dtype=bool))] = 0                 # tile cells wholly in the future
    return lv


def _tile_image(lv: np.ndarray, row_gap: int = 1) -> np.ndarray:
    """Tiles [cols, rows, s, s] laid out in one image [rows·(s+row_gap)-row_gap, cols·(s+1)-1], tile (c, r) at
    column c and row r, one empty (background) column and `row_gap` empty rows between tiles."""
    C, R, s, _ = lv.shape
    step, down = s + 1, s + row_gap
    levels = np.zeros((R * down - row_gap, C * step - 1), dtype=np.uint8)
    for c in range(C):
        for r in range(R):
            levels[r * down: r * down + s, c * step: c * step + s] = lv[c, r]
    return levels


def _weight_bar() -> go.Heatmap:
    """An image has no colour bar: a heatmap of one cell, outside the axes' ranges, draws it."""
    return go.Heatmap(z=[[0.0]], x0=-10, dx=1, y0=-10, dy=1, colorscale=PROB_SCALE, zmin=0, zmax=1,
                      hoverinfo="skip", showscale=True,
                      colorbar=dict(title=dict(text="weight", side="right"), thickness=14))


def overview(attn: np.ndarray, tokens, selected: tuple[int, int] | None = None, *, max_tile: int = 16,
             n_kv_heads: int | None = None, scores: dict[str, np.ndarray] | None = None,
             title: str | None = None) -> go.Figure:
    """Every head's pattern as a small tile: layers across, heads down. Prompts longer than
    `max_tile` tokens are max-pooled to max_tile × max_tile so that sharp patterns stay visible.

    The tiles are one PNG image (trace 0, `go.Image`), each cell one pixel in TILE_LEVELS levels of the
    weight colour scale (a step of 1/254: `tile_weights` reads a pixel's index back); white between tiles
    and in the future. The tiles show no hover
    (the head's markers, trace 2, do); trace 1 is a one-cell heatmap outside the axes' ranges that draws the
    colour bar. A cell is a few pixels wide on a projector: `layer_tiles` is the zoomed view of one layer."""
    L, H, T, _ = attn.shape
    s = min(T, max_tile)
    step = s + 1                                                         # one empty row/column between tiles
    levels = _tile_image(_tiles(attn, max_tile))                         # [H·(s+1)-1, L·(s+1)-1] 0: background
    centre = (s - 1) / 2
    tile_px = float(np.clip(1000 / L, 28, 64))   # about the width of a tile in a wide layout
    fig = go.Figure(go.Image(source=levels_png(levels, PROB_SCALE), x0=0, dx=1, y0=0, dy=1, hoverinfo="skip"))
    fig.add_trace(_weight_bar())
    rows, tmpl = _head_hover(L, H, n_kv_heads, scores)
    fig.add_trace(_click_markers(rows[:, 0] * step + centre, rows[:, 1] * step + centre, rows, tmpl))
    if selected is not None:
        sl, sh = selected
        fig.add_shape(type="rect", x0=sl * step - 0.9, x1=sl * step + s - 0.1, y0=sh * step - 0.9,
                      y1=sh * step + s - 0.1, line=dict(color=PICK, width=3))
    ticks_every = 1 if L <= 32 else 2
    axes(fig, "x", tickvals=[i * step + centre for i in range(0, L, ticks_every)],
         ticktext=[str(i) for i in range(0, L, ticks_every)], title_text="layer →", showgrid=False,
         zeroline=False, side="top", range=[-1, L * step - 1])
    axes(fig, "y", tickvals=[h * step + centre for h in range(H)], ticktext=[f"head {h}" for h in range(H)],
         range=[H * step - 1, -1], showgrid=False, zeroline=False, scaleanchor="x", constrain="domain")
    relayout(fig, plot_bgcolor="white", clickmode="event+select", dragmode=False, hoverdistance=CLICK_REACH)
    return style(fig, title, height=int(H * tile_px + 110))


ZOOM_ROW_GAP = 3    # empty rows above each zoomed tile, for its label
ZOOM_CELL_PX = 12   # the zoomed tiles' cell size on screen, when the chart is as wide as its grid needs


def layer_tiles(attn: np.ndarray, tokens, layer: int, selected_head: int | None = None, *, max_tile: int = 16,
                n_kv_heads: int | None = None, scores: dict[str, np.ndarray] | None = None,
                title: str | None = None) -> go.Figure:
    """The overview zoomed into one layer: its heads' tiles (pooled as in `overview`) in a near-square grid,
    heads in reading order, each cell ZOOM_CELL_PX pixels high; the selected head outlined; click a tile to open
    that head (customdata [layer, head, ...] as in `overview`)."""
    L, H, T, _ = attn.shape
    if not 0 <= layer < L:
        raise ValueError(f"layer {layer} is outside 0–{L - 1}")
    s = min(T, max_tile)
    step, down = s + 1, s + ZOOM_ROW_GAP                                # across, and down (room for the labels)
    cols = int(np.ceil(np.sqrt(H)))
    rows = int(np.ceil(H / cols))
    lv = _tiles(attn[layer], max_tile)                                  # [H, s, s]
    grid = np.zeros((cols, rows, s, s), dtype=np.uint8)
    where = [(h % cols, h // cols) for h in range(H)]                   # (column, row) of each head's tile
    for h, (c, r) in enumerate(where):
        grid[c, r] = lv[h]
    levels = _tile_image(grid, ZOOM_ROW_GAP)                            # [rows·down-gap, cols·step-1]
    centre = (s - 1) / 2
    fig = go.Figure(go.Image(source=levels_png(levels, PROB_SCALE), x0=0, dx=1, y0=0, dy=1, hoverinfo="skip"))
    fig.add_trace(_weight_bar())
    hover, tmpl = _head_hover(L, H, n_kv_heads, scores)
    mine = hover[layer * H:(layer + 1) * H]                             # [H, k] this layer's heads
    xs = [c * step + centre for c, _ in where]
    ys = [r * down + centre for _, r in where]
    fig.add_trace(_click_markers(xs, ys, mine, tmpl, size=s * ZOOM_CELL_PX * 0.9))
    for h, (c, r) in enumerate(where):
        fig.add_annotation(x=c * step + centre, y=r * down - 0.5, text=f"head {h}", showarrow=False,
                           yanchor="bottom", font=dict(color=PICK if h == selected_head else INK))
    if selected_head is not None and 0 <= selected_head < H:
        c, r = where[selected_head]
        fig.add_shape(type="rect", x0=c * step - 0.9, x1=c * step + s - 0.1, y0=r * down - 0.9,
                      y1=r * down + s - 0.1, line=dict(color=PICK, width=3))
    axes(fig, "x", visible=False, range=[-1, cols * step - 1], constrain="domain")
    axes(fig, "y", visible=False, range=[rows * down - ZOOM_ROW_GAP + 0.8, -ZOOM_ROW_GAP], scaleanchor="x",
         constrain="domain")
    relayout(fig, plot_bgcolor="white", clickmode="event+select", dragmode=False)
    return style(fig, title, height=int(rows * down * ZOOM_CELL_PX + (90 if title else 40)))


def _customdata(point) -> list | None:
    """A selected point's customdata as a list. The browser sends a row of a numpy customdata array (plotly's
    typed arrays) as an object keyed "0", "1", ...; a plain list as a list."""
    cd = point.get("customdata") if isinstance(point, dict) else None
    if isinstance(cd, dict):
        cd = [cd.get(str(i)) for i in range(len(cd))]
    return cd if isinstance(cd, (list, tuple)) and None not in cd else None


def picked_head(points: list[dict] | None) -> tuple[int, int] | None:
    """(layer, head) from a Streamlit plotly selection's points (customdata [layer, head]), if any."""
    for p in points or []:
        cd = _customdata(p)
        if cd is not None and len(cd) >= 2:
            return int(cd[0]), int(cd[1])
    return None


# -- grouped-query attention ------------------------------------------------------------------

def _outline(n: int, chosen: int) -> dict:
    """Marker outlines: thick and coloured for the chosen one of n boxes."""
    return dict(color=[PICK if i == chosen else INK for i in range(n)],
                width=[4 if i == chosen else 1 for i in range(n)])


def gqa_diagram(n_heads: int, n_kv_heads: int, head: int, title: str | None = None) -> go.Figure:
    """Query heads (top) joined to the key/value head each one reads (bottom); the chosen head's
    group is coloured."""
    group = n_heads // n_kv_heads
    kv = head // group
    qx = np.arange(n_heads, dtype=float)                               # [H]
    kx = np.array([(k * group + (k + 1) * group - 1) / 2 for k in range(n_kv_heads)])  # [Hkv] under their group
    fig = go.Figure()
    # one line per query head to its key/value head, drawn as three traces (other groups, the chosen head's
    # group, the chosen head) with gaps between the lines: a trace per line costs a millisecond each to build
    kinds = [(MUTED, 2, [h for h in range(n_heads) if h // group != kv]),
             (PICK, 2, [h for h in range(n_heads) if h // group == kv and h != head]), (PICK, 4, [head])]
    for color, width, hs in kinds:
        if hs:
            fig.add_trace(go.Scatter(x=[v for h in hs for v in (qx[h], kx[h // group], None)],
                                     y=[v for _ in hs for v in (1, 0, None)], mode="lines", hoverinfo="skip",
                                     line=dict(color=color, width=width), showlegend=False))
    # light fills, so that the default (theme) text colour stays readable; the chosen head gets a thick outline
    q_col = [LIGHT_PICK if h // group == kv else LIGHT_BLUE for h in range(n_heads)]
    fig.add_trace(go.Scatter(
        x=qx, y=np.ones(n_heads), mode="markers+text", text=[f"Q{h}" for h in range(n_heads)],
        textposition="middle center", marker=dict(symbol="square", size=44, color=q_col, line=_outline(n_heads, head)),
        hovertext=[f"query head {h} reads key/value head {h // group}" for h in range(n_heads)],
        hovertemplate="%{hovertext}<extra></extra>", showlegend=False))
    k_col = [LIGHT_PICK if k == kv else FAINT for k in range(n_kv_heads)]
    fig.add_trace(go.Scatter(
        x=kx, y=np.zeros(n_kv_heads), mode="markers+text", text=[f"K/V{k}" for k in range(n_kv_heads)],
        textposition="middle center", marker=dict(symbol="square", size=54, color=k_col, line=_outline(n_kv_heads, kv)),
        hovertext=[f"key/value head {k}: shared by query heads {k * group}–{(k + 1) * group - 1}"
                   if group > 1 else f"key/value head {k}: used by query head {k} only" for k in range(n_kv_heads)],
        hovertemplate="%{hovertext}<extra></extra>", showlegend=False))
    axes(fig, "x", visible=False, range=[-0.7, n_heads - 0.3])
    axes(fig, "y", visible=False, range=[-0.45, 1.45])
    fig.add_annotation(x=-0.65, y=1.38, text="query heads", showarrow=False, xanchor="left")
    fig.add_annotation(x=-0.65, y=-0.38, text="key/value heads", showarrow=False, xanchor="left")
    return style(fig, title, height=260)


# -- head roles ---------------------------------------------------------------------------------

def role_map(scores: np.ndarray, role_label: str, selected: tuple[int, int] | None = None, top: int = 5,
             help_text: str = "", title: str | None = None) -> go.Figure:
    """Scores [L, H] in [0, 1]: layers across, heads down; the `top` heads carry their rank; click a
    cell to open that head."""
    L, H = scores.shape
    rank = np.full((L, H), "", dtype=object)
    for i, best in enumerate(top_heads(scores, top)):
        rank[best.layer, best.head] = f"#{i + 1}"
    fig = go.Figure(go.Heatmap(
        z=rounded(scores.T, 3), x=list(range(L)), y=list(range(H)), colorscale=SCORE_SCALE, zmin=0,
        zmax=1, xgap=1, ygap=1, text=rank.T.tolist(), texttemplate="%{text}", textfont=dict(size=14),
        hoverinfo="skip", colorbar=dict(title=dict(text="score", side="right"), thickness=14)))
    layer, head = np.divmod(np.arange(L * H), H)                          # [L·H] each, layers first
    cd = np.stack([layer, head, np.round(scores.reshape(-1), 3)], axis=1).astype(np.float32)   # [L·H, 3]
    tmpl = (f"<b>layer %{{customdata[0]}} · head %{{customdata[1]}}</b><br>{role_label}: %{{customdata[2]:.3f}}"
            f"<br>{help_text}<br><i>click to open</i>")
    fig.add_trace(_click_markers(cd[:, 0], cd[:, 1], cd, tmpl))
    if selected is not None:
        fig.add_shape(type="rect", x0=selected[0] - 0.5, x1=selected[0] + 0.5, y0=selected[1] - 0.5,
                      y1=selected[1] + 0.5, line=dict(color=PICKED, width=3))
    axes(fig, "x", title_text="layer →", dtick=1 if L <= 32 else 2, showgrid=False, zeroline=False,
         range=[-0.5, L - 0.5])
    axes(fig, "y", title_text="head", dtick=1, showgrid=False, zeroline=False, range=[H - 0.5, -0.5])
    relayout(fig, plot_bgcolor="white", clickmode="event+select", dragmode=False, hoverdistance=CLICK_REACH)
    return style(fig, title, height=int(np.clip(60 + 34 * H, 260, 560)))


def token_label(tokens, i: int) -> str:
    """'pos 3 “␣Tower”' for captions."""
    return f"position {i} “{show_token(tokens[i])}”"


# -- what a head writes: values, the weighted sum, each head's part ---------------------------------

OTHER_HEADS = MUTED     # bars of the heads not chosen


def vector_rows(m: np.ndarray, tokens, title: str | None = None, *, lim: float | None = None,
                value_name: str = "value", height: int | None = None) -> go.Figure:
    """One vector per token [T, n]: tokens down (as in the token matrices), its n numbers across, diverging
    colours around 0 over ±lim (default: the largest |value|), rounded as the token matrices are."""
    m = np.asarray(m, dtype=np.float64)                                # [T, n]
    T, n = m.shape
    lim = float(np.abs(m).max()) if lim is None else float(lim)
    lim = lim if lim > 0 else 1.0
    d = decimals_for(2 * lim)
    labels = axis_labels(tokens)
    fig = go.Figure(go.Heatmap(
        z=rounded(m, d), x=np.arange(n), y=labels, colorscale=DIVERGING, zmin=-lim, zmax=lim,
        hovertemplate=f"token %{{y}}<br>number %{{x}}<br>{value_name} %{{z:.{d}f}}<extra></extra>",
        colorbar=dict(title=dict(text=value_name, side="right"), thickness=14), xgap=0, ygap=1 if T <= 40 else 0))
    axes(fig, "x", title_text=f"its {n} numbers →", showgrid=False, zeroline=False, range=[-0.5, n - 0.5])
    axes(fig, "y", title_text="token", showgrid=False, type="category", range=[T - 0.5, -0.5])
    return style(fig, title, height=height or int(np.clip(150 + 26 * T, 380, 760)))


def head_parts(norms: np.ndarray, head: int, title: str | None = None, *, value_name: str = "length") -> go.Figure:
    """One bar per head: the length of what it writes into the residual stream at one token; the chosen
    head in the pick colour, each bar labelled with its length."""
    norms = np.asarray(norms, dtype=np.float64)                        # [H]
    H = norms.shape[0]
    d = decimals_for(float(norms.max()) if H else 1.0)
    fig = go.Figure(go.Bar(
        x=[f"head {h}" for h in range(H)], y=rounded(norms, d), text=[format(v, ".2f") for v in norms],
        textposition="outside", textfont=dict(size=15), cliponaxis=False,
        marker=dict(color=[PICK if h == head else OTHER_HEADS for h in range(H)]),
        hovertemplate=f"%{{x}}<br>{value_name} %{{y:.{d}f}}<extra></extra>"))
    axes(fig, "y", title_text=value_name, rangemode="tozero", range=[0, float(norms.max()) * 1.18 if H else 1])
    axes(fig, "x", type="category")
    relayout(fig, showlegend=False)
    return style(fig, title, height=360)


# -- positions -----------------------------------------------------------------------------------------

def rotary_speeds(degrees_per_token: np.ndarray, pairs: list[tuple[int, int]], title: str | None = None) -> go.Figure:
    """Rotary positions: how many degrees each pair of a head's numbers turns from one token to the next
    (log scale), first pair on the left; the hover gives the pair's two dimensions and its full-turn length."""
    deg = np.asarray(degrees_per_token, dtype=np.float64)             # [rot/2]
    turn = 360.0 / deg                                                 # [rot/2] tokens per full turn
    cd = np.stack([np.asarray(pairs, dtype=np.float64)[:, 0], np.asarray(pairs, dtype=np.float64)[:, 1],
                   np.round(turn, 1)], axis=1).astype(np.float32)     # [rot/2, 3]
    fig = go.Figure(go.Scatter(
        x=np.arange(deg.shape[0]), y=deg.astype(np.float32), mode="lines+markers",
        marker=dict(size=8, color=PICK), line=dict(color=PICK, width=2), customdata=cd,
        hovertemplate="pair %{x}: numbers %{customdata[0]} and %{customdata[1]}<br>%{y:.3g}° per token"
                      "<br>a full turn every %{customdata[2]:,.0f} tokens<extra></extra>"))
    axes(fig, "y", type="log", title_text="degrees turned per token", exponentformat="power")
    axes(fig, "x", title_text="pair of numbers in the head → (fast … slow)", zeroline=False)
    return style(fig, title, height=380)


def rotary_distance(distances: np.ndarray, similarity: np.ndarray, title: str | None = None) -> go.Figure:
    """q·k of the same vector placed as query and key, against how far apart the two are (1 at distance 0),
    distances from 1 on a log axis (near distances change fastest)."""
    d, s = np.asarray(distances), np.asarray(similarity, dtype=np.float64)
    far = d >= 1
    fig = go.Figure(go.Scatter(
        x=d[far], y=rounded(s[far], 3), mode="lines", line=dict(color=PICK, width=3),
        hovertemplate="distance %{x} tokens<br>q·k %{y:.3f} of its value at distance 0<extra></extra>"))
    fig.add_hline(y=0, line=dict(color=MUTED, width=1))
    axes(fig, "x", title_text="distance between query and key (tokens) →", type="log", dtick=1, zeroline=False)
    axes(fig, "y", title_text="q·k ÷ q·k at distance 0", zeroline=False)
    return style(fig, title, height=380)


def position_similarity(similarity: np.ndarray, title: str | None = None) -> go.Figure:
    """Learned positions: cosine similarity between the position vectors 0 … P-1."""
    s = np.asarray(similarity, dtype=np.float64)                      # [P, P]
    P = s.shape[0]
    fig = go.Figure(go.Heatmap(
        z=rounded(s, 3), x=np.arange(P), y=np.arange(P), colorscale=DIVERGING, zmin=-1, zmax=1,
        hovertemplate="positions %{y} and %{x}<br>cosine similarity %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text="cosine", side="right"), thickness=14)))
    axes(fig, "x", title_text="position →", showgrid=False, zeroline=False)
    axes(fig, "y", title_text="position", showgrid=False, zeroline=False, autorange="reversed")
    return style(fig, title, height=460)
