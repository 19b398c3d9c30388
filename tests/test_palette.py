"""One visual language: colours come from explainer/figures/palette.py, and chart text is projector-sized."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from explainer.figures import common, palette

ROOT = Path(__file__).resolve().parents[1]
HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")
NAMED_SCALES = {"Blues", "RdBu", "RdBu_r", "Viridis", "Oranges", "Greens", "Reds", "Greys", "Plasma", "Inferno",
                "Magma", "Cividis", "Turbo", "Jet", "Rainbow", "Portland", "Hot", "YlOrRd", "YlGnBu", "Purples"}
MIN_FONT = 14


def _sources() -> list[Path]:
    files = [*sorted((ROOT / "explainer" / "figures").glob("*.py")), *sorted((ROOT / "pages").glob("*.py")),
             ROOT / "explainer" / "ui.py", ROOT / "streamlit_app.py"]
    return [f for f in files if f.name != "palette.py"]


def _strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_no_colour_outside_the_palette():
    found = []
    for f in _sources():
        tree = ast.parse(f.read_text())
        for node in _strings(tree):
            if HEX.fullmatch(node.value.strip()) or node.value in NAMED_SCALES:
                found.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_the_check_catches_a_stray_colour(tmp_path):
    tree = ast.parse('fig.add_bar(marker_color="#4c78a8", colorscale="Viridis")')
    assert [n.value for n in _strings(tree) if HEX.fullmatch(n.value) or n.value in NAMED_SCALES] == \
        ["#4c78a8", "Viridis"]


def test_palette_colours_are_valid_and_distinct():
    hexes = {k: v for k, v in vars(palette).items() if isinstance(v, str) and v.startswith("#")}
    assert all(HEX.fullmatch(v) for v in hexes.values()), hexes
    assert len(set(palette.CATEGORICAL)) == len(palette.CATEGORICAL)
    assert palette.HELPS != palette.HURTS and palette.FIRST != palette.SECOND
    assert common.PROB_SCALE == palette.SEQUENTIAL and common.DIVERGING == palette.DIVERGING


def _font_sizes(tree: ast.AST):
    """Every literal `size=` inside a dict(...) given to a keyword whose name ends in 'font'."""
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("font") \
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "dict":
            for kw in node.value.keywords:
                if kw.arg == "size" and isinstance(kw.value, ast.Constant):
                    yield node.value.lineno, kw.value.value


def test_chart_text_is_at_least_14_px():
    assert common.FONT_SIZE >= MIN_FONT
    small = [f"{f.name}:{line} size={size}" for f in _sources() for line, size in _font_sizes(ast.parse(f.read_text()))
             if size < MIN_FONT]
    assert not small, small
    assert list(_font_sizes(ast.parse("go.Heatmap(textfont=dict(size=12))"))) == [(1, 12)]   # the check works
