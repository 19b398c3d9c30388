"""Shared look for every chart: large type for a projector, readable token labels."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.basedatatypes import BasePlotlyType

from .palette import DIVERGING, SEQUENTIAL  # noqa: F401  (DIVERGING is re-exported for the figures)

FONT_SIZE = 16
PROB_SCALE = SEQUENTIAL

# The default template is attached by reference when a figure is built; passing template= to
# update_layout instead deep-copies it (about 20 ms per figure, most of a page's redraw time).
pio.templates.default = "plotly_white"


def show_token(s: str) -> str:
    """A token as visible text: spaces as ␣, newlines as ↵, tabs as ⇥."""
    return s.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


def axis_labels(tokens, first: int = 0) -> list[str]:
    """Unique tick labels for token axes (plotly merges equal categories): `3:␣the`; `first` is the position of
    tokens[0] when they are a window of the prompt."""
    return [f"{i}:{show_token(t)}" for i, t in enumerate(tokens, start=first)]


def figure_title(fig) -> str:
    """A figure's title as plain text (its HTML tags and line breaks as spaces), "" when it has none."""
    t = fig.layout.title.text if isinstance(fig, go.Figure) else (fig.get("layout", {}).get("title") or {}).get("text")
    return " ".join(re.sub(r"<[^>]+>", " ", t or "").split())


def export_name(page: str, title: str, key: str | None) -> str:
    """A file name for a saved chart or table: `attention-layer-4-head-7` from the page and the chart's title (or
    its key when it has no title); letters, digits and hyphens only, at most 80 characters."""
    def slug(s: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", s.lower().replace("·", " ")).strip("-")

    parts = [slug(page), slug(title) or slug(key or "") or "chart"]
    return "-".join(p for p in parts if p)[:80].rstrip("-")


# -- fast layout updates ---------------------------------------------------------------------------------------
# fig.update_layout / update_xaxes / update_yaxes cost 2-5 ms each (plotly batches the change and re-walks the
# figure to compute a relayout message, even with no widget to send it to); with five or six per figure they were
# about a third of a page's rerun (py-spy on the Attention page). relayout() and axes() make the same change,
# merged the same way (a nested dict updates the object already there; magic underscores like `title_text` as
# plotly reads them), by setting each property directly: about 2.5x faster, the same figure (tested; an empty
# `title: {}` is left out, which plotly draws the same).

def _set(obj: BasePlotlyType, props: Mapping[str, Any]) -> None:
    valid = getattr(obj, "_valid_props", None)           # the object's property names (plot_bgcolor has a "_")
    for key, value in props.items():
        if valid is None:                                # another plotly's internals: its own (slower) update
            obj.update({key: value})
            continue
        if key not in valid and "_" in key:              # a magic underscore: title_text is title.text
            head, rest = key.split("_", 1)
            _set(obj[head], {rest: value})
            continue
        if isinstance(value, (Mapping, list, tuple)):
            current = obj[key]
            if isinstance(current, BasePlotlyType) and isinstance(value, Mapping):   # compound: merge, as update does
                _set(current, value)
                continue
            if isinstance(current, tuple) and current:  # an array of objects (shapes, annotations): update's way
                obj.update({key: value})
                continue
        obj[key] = value


def relayout(fig: go.Figure, **props: Any) -> go.Figure:
    """fig.update_layout(**props), faster (see above)."""
    _set(fig.layout, props)
    return fig


def axes(fig: go.Figure, which: str, **props: Any) -> go.Figure:
    """fig.update_xaxes(**props) (which="x") or update_yaxes (which="y") on every such axis, faster."""
    for axis in (fig.select_xaxes() if which == "x" else fig.select_yaxes()):
        _set(axis, props)
    return fig


def style(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    relayout(
        fig,
        font=dict(size=FONT_SIZE),
        title=dict(text=title) if title else None,
        margin=dict(l=10, r=10, t=36 + 24 * (title.count("<br>") + 1) if title else 20, b=10),   # a line more each
        hoverlabel=dict(font_size=FONT_SIZE),
        # text inside bars and treemap boxes is shrunk to fit; never below 14 px: what does not fit is hidden
        uniformtext=dict(minsize=14, mode="hide"),
    )
    if height:
        fig.layout.height = height
    return fig


# -- margins set before the browser draws ---------------------------------------------------------------------------
# Plotly.js grows a margin to fit tick labels, axis titles, colour bars and legends (automargin), and each time it
# grows one it draws the whole chart again: for a heatmap with a hundred token labels that redraw is 2-4x the cost
# of drawing it once (measured in Chromium: the Attention page's head map 336 -> 81 ms with its margins preset).
# preset_margins estimates each margin from the figure itself, so the first draw already fits; automargin stays on,
# so a label the estimate missed still fits (at the cost of the redraw, as before).

CHAR_EM = 0.58           # an average character of plotly's default font, in ems (Open Sans: measured in Chromium)
MONO_EM = 0.62           # the same for a monospace tick font
_NUMBER_CHARS = 5        # a numeric tick label ("0.25", "100%", "1,000")


def _on(tr: dict, letter: str) -> bool:
    return tr.get(f"{letter}axis", letter) in (letter, None)


def _labels_of(data: list[dict], letter: str, axis: dict) -> list[str]:
    """The tick labels an axis will draw: its ticktext, or the category strings of the traces on it."""
    if axis.get("showticklabels") is False or axis.get("visible") is False:
        return []
    if axis.get("ticktext") is not None:
        return [str(t) for t in axis["ticktext"]]
    found: list[str] = []
    for tr in data:
        vals = tr.get(letter) if _on(tr, letter) else None
        if isinstance(vals, (list, tuple)) or str(getattr(vals, "dtype", "")) == "object":
            found += [v for v in vals if isinstance(v, str)]
    return found


def _number_chars(data: list[dict], letter: str, axis: dict) -> int:
    """How many characters a numeric axis's longest tick label has, from the data on it (a heatmap's cells are
    numbered from 0 when it gives no coordinates); a percent format is "100%"."""
    if "%" in str(axis.get("tickformat") or ""):
        return 4
    top = 0.0
    for tr in data:
        if not _on(tr, letter):
            continue
        vals = tr.get(letter)
        try:
            if vals is None and tr.get("type") == "heatmap" and tr.get("z") is not None:
                z = tr["z"]
                vals = [0, (len(z) if letter == "y" else len(z[0]) if len(z) else 1) - 1]
            arr = [abs(float(v)) for v in vals if v is not None and not isinstance(v, str)]
        except (TypeError, ValueError, KeyError, IndexError):     # no numbers here (or a packed array)
            continue
        if arr:
            top = max(top, max(arr))
    if not top:
        return _NUMBER_CHARS
    digits = len(f"{top:,.0f}") if top >= 10 else 3          # 0.5, 2.5: a digit, a point and one more
    return max(1, min(digits + 1, 7))                         # a minus sign or a unit


def _plain_len(s: str) -> int:
    return len(re.sub(r"<[^>]+>", "", s))


def _text_px(labels: list[str], font: float, mono: bool) -> float:
    if not labels:
        return 0.0
    return max(map(_plain_len, labels)) * font * (MONO_EM if mono else CHAR_EM)


def _font(f: dict | None, default: float) -> tuple[float, bool]:
    f = f or {}
    return float(f.get("size") or default), "mono" in str(f.get("family") or "").lower()


def _title_px(axis: dict, default: float) -> float:
    title = axis.get("title") or {}
    text = title.get("text") if isinstance(title, dict) else title
    if not text:
        return 0.0
    size, _ = _font(title.get("font") if isinstance(title, dict) else None, default)
    return size * (1.35 * (str(text).count("<br>") + 1)) + 8


_NO_AXES = ("pie", "treemap", "sunburst", "sankey", "table", "scatter3d", "surface")


def preset_margins(fig: go.Figure) -> go.Figure:
    """Margins that already hold the x and y axes' labels and titles, a colour bar on the right and a legend
    beside or above the plot, so Plotly.js need not draw the figure twice (see above). Only grows the margins
    the figure set; a figure with subplots or without x and y axes is left as it is. Reads the figure as plain
    dicts (plotly's property objects cost ~5 ms a figure here)."""
    lay: dict = fig.layout.to_plotly_json()    # what was set, as plain values (no property objects)
    data: list[dict] = [t.to_plotly_json() for t in fig.data]
    if any(re.fullmatch(r"[xy]axis\d+", k) for k in lay) or any(t.get("type") in _NO_AXES for t in data):
        return fig
    font = lay.get("font") or {}
    base = float(font.get("size") or FONT_SIZE)
    mono_page = "mono" in str(font.get("family") or "").lower()
    m = lay.get("margin") or {}
    want = {k: float(m.get(k) or 0) for k in ("l", "r", "t", "b")}
    for letter in ("x", "y"):
        axis = lay.get(f"{letter}axis") or {}
        if axis.get("visible") is False:
            continue
        size, mono = _font(axis.get("tickfont"), base)
        mono = mono or mono_page
        labels = _labels_of(data, letter, axis)
        numeric = not labels and axis.get("showticklabels") is not False and axis.get("type") != "category"
        wide = (_text_px(labels, size, mono) if labels else
                _number_chars(data, letter, axis) * size * CHAR_EM if numeric else 0.0)
        angle = axis.get("tickangle")
        angle = abs(float(angle)) if isinstance(angle, (int, float)) else 0.0
        if letter == "x":
            tall = (wide * math.sin(math.radians(angle)) + size * math.cos(math.radians(angle))) if wide else 0.0
            side = "t" if axis.get("side") == "top" else "b"
            title = _title_px(axis, base)           # Streamlit's theme sets an x title further off: 13 px more
            want[side] = max(want[side], (tall + 22 if wide else 0.0) + (title + 13 if title else 0.0))
            if angle and labels:       # a slanted first label reaches left of the plot
                lean = _plain_len(labels[0]) * size * (MONO_EM if mono else CHAR_EM)
                want["l"] = max(want["l"], lean * math.cos(math.radians(angle)) - 14)   # from half a cell in
        else:
            side = "r" if axis.get("side") == "right" else "l"
            want[side] = max(want[side], (wide + 14 if wide else 0.0) + _title_px(axis, base))
    for t in data:
        if t.get("type") in ("heatmap", "contour") and t.get("showscale") is not False and not t.get("coloraxis"):
            cb = t.get("colorbar") or {}
        elif t.get("type") in ("scatter", "bar") and (t.get("marker") or {}).get("showscale"):
            cb = t["marker"].get("colorbar") or {}
        else:
            continue
        size, _ = _font(cb.get("tickfont"), base)
        title = cb.get("title") or {}
        has_title = bool(title.get("text") if isinstance(title, dict) else title)
        want["r"] = max(want["r"], float(cb.get("thickness") or 30) + 13 + 6.5 * size * CHAR_EM + 6
                        + (size * 1.35 + 4 if has_title else 0.0))
        break
    shown = [t for t in data if t.get("showlegend") is not False and t.get("name") and t.get("type") != "image"]
    leg = lay.get("legend") or {}
    if shown and lay.get("showlegend") is not False:
        size, _ = _font(leg.get("font"), base)
        y, x = leg.get("y"), leg.get("x")
        if leg.get("orientation") == "h" and (y is None or y >= 1):                 # a row above the plot
            want["t"] = max(want["t"], float(m.get("t") or 0) + size * 1.6 + 8)
        elif leg.get("orientation") != "h" and (x is None or x >= 1) and len(shown) > 1:   # a column on the right
            want["r"] = max(want["r"], _text_px([str(t["name"]) for t in shown], size, False) + 50)
    relayout(fig, margin={k: int(math.ceil(v)) for k, v in want.items()})
    return fig
