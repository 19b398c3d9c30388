"""The figures' fast layout updates (explainer/figures/common.py: relayout, axes) make the same figure as
plotly's own update_layout / update_xaxes / update_yaxes: merged into what is there, magic underscores read as
plotly reads them, every axis of a figure with subplots."""

from __future__ import annotations

import copy
import json

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots

from explainer.figures.common import axes, relayout


def _json(fig: go.Figure) -> dict:
    def strip(d):            # plotly's update leaves an emptied title as {}; assignment leaves it out: drawn the same
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if not (k == "title" and v == {})}
        return [strip(x) for x in d] if isinstance(d, list) else d
    return strip(json.loads(pio.to_json(fig, validate=False, remove_uids=True)))


def _base() -> go.Figure:
    fig = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]))
    fig.update_layout(font=dict(family="serif", color="red"), margin=dict(pad=4), title=dict(text="old", x=0.1))
    fig.update_xaxes(tickangle=30, title=dict(font=dict(color="blue")))
    fig.add_shape(type="rect", x0=0, x1=1, y0=0, y1=1)
    return fig


LAYOUTS = [
    dict(font=dict(size=16)),                                    # merges: family and colour stay
    dict(title=None, margin=dict(l=1, r=2, t=3, b=4)),          # drops the title; margin's pad stays
    dict(title=dict(text="new")),                                # merges into the old title (x stays)
    dict(hoverlabel=dict(font_size=15), title_text="magic"),      # magic underscores, nested and top level
    dict(plot_bgcolor="#eee", paper_bgcolor="white"),              # names that themselves hold an underscore
    dict(uniformtext=dict(minsize=14, mode="hide"), height=400, clickmode="event+select", dragmode=False),
    dict(shapes=[dict(line=dict(color="green"))]),                # an array of objects: merged element-wise
    dict(xaxis=dict(range=[0, 1]), yaxis_autorange="reversed"),
]
AXES = [
    dict(title_text="key →", side="bottom", showgrid=False, type="category", range=[-0.5, 1.5]),
    dict(title=dict(text="t"), tickfont=dict(size=14)),
    dict(visible=False, title=None),
]


@pytest.mark.parametrize("props", LAYOUTS)
def test_relayout_is_update_layout(props):
    want, got = _base(), _base()
    want.update_layout(**copy.deepcopy(props))
    assert relayout(got, **copy.deepcopy(props)) is got
    assert _json(got) == _json(want)


@pytest.mark.parametrize("which", ["x", "y"])
@pytest.mark.parametrize("props", AXES)
def test_axes_is_update_axes_on_every_axis(which, props):
    def two() -> go.Figure:
        fig = make_subplots(1, 2)
        fig.add_trace(go.Bar(x=[1], y=[2]), row=1, col=1)
        fig.add_trace(go.Bar(x=[1], y=[3]), row=1, col=2)
        return fig
    for make in (_base, two):
        want, got = make(), make()
        (want.update_xaxes if which == "x" else want.update_yaxes)(**copy.deepcopy(props))
        axes(got, which, **copy.deepcopy(props))
        assert _json(got) == _json(want)


def test_a_wrong_name_is_refused_with_plotlys_message():
    with pytest.raises((ValueError, KeyError), match="Invalid property.*fnot"):
        relayout(go.Figure(), fnot=dict(size=3))
    with pytest.raises((ValueError, KeyError), match="Invalid property.*titel"):
        axes(go.Figure(), "x", titel_text="x")
