"""figures.common.preset_margins: margins set before the browser draws, so Plotly.js need not redraw a chart to
make room for its labels (checked against Chromium's own automargin in tests/test_e2e.py); here, what it may and
may not change."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explainer.figures.common import preset_margins, style


def _heat(labels: list[str], title: str | None = "key", colorbar: bool = True) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=[[0.1] * len(labels)] * len(labels), x=labels, y=labels, showscale=colorbar,
                               colorbar=dict(title=dict(text="weight", side="right"), thickness=14)))
    fig.update_xaxes(title_text=title, tickangle=-45)
    return style(fig, "A title", height=500)


def _margin(fig: go.Figure) -> dict:
    return fig.layout.margin.to_plotly_json()


def test_margins_only_grow_and_a_second_call_changes_nothing():
    fig = _heat([f"{i}:␣word" for i in range(20)])
    before = _margin(fig)
    preset_margins(fig)
    after = _margin(fig)
    assert all(after[k] >= before[k] for k in "lrtb")
    assert after["l"] > before["l"] and after["b"] > before["b"] and after["r"] > before["r"]
    preset_margins(fig)
    assert _margin(fig) == after


def test_longer_labels_a_colour_bar_and_titles_need_more_room():
    short, long_ = preset_margins(_heat(["a", "b"])), preset_margins(_heat(["a very long token", "b"]))
    assert _margin(long_)["l"] > _margin(short)["l"] and _margin(long_)["b"] > _margin(short)["b"]
    assert _margin(preset_margins(_heat(["a", "b"], colorbar=False)))["r"] < _margin(short)["r"]
    assert _margin(preset_margins(_heat(["a", "b"], title=None)))["b"] < _margin(short)["b"]


def test_a_legend_above_the_plot_adds_to_the_top():
    fig = go.Figure([go.Bar(x=[1, 2], y=["a", "b"], orientation="h", name="first"),
                     go.Bar(x=[2, 1], y=["a", "b"], orientation="h", name="second")])
    style(fig, "Two sides")
    top = _margin(fig)["t"]
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    assert _margin(preset_margins(fig))["t"] > top


def test_subplots_and_charts_without_axes_are_left_alone():
    sub = make_subplots(rows=1, cols=2)
    sub.add_trace(go.Bar(x=["a"], y=[1]), row=1, col=1)
    sub.add_trace(go.Bar(x=["b"], y=[2]), row=1, col=2)
    pie = go.Figure(go.Pie(labels=["a", "b"], values=[1, 2]))
    for fig in (sub, pie):
        before = fig.to_plotly_json()
        preset_margins(fig)
        assert fig.to_plotly_json() == before
