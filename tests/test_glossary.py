"""The glossary: every term a page marks with ui.term() is defined, and the Glossary page lists them all."""

from __future__ import annotations

import ast
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explainer.content import GLOSSARY
from tests.conftest import page_ok

ROOT = Path(__file__).resolve().parents[1]


def marked_terms() -> dict[str, set[str]]:
    """{term: files} for every ui.term("...") call in the pages and the home page (read from their syntax)."""
    out: dict[str, set[str]] = {}
    for f in [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(f.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "term"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "ui"):
                arg = node.args[0]
                assert isinstance(arg, ast.Constant), f"{f.name}: ui.term needs a literal term name"
                out.setdefault(arg.value, set()).add(f.name)
    return out


def test_every_marked_term_is_in_the_glossary():
    marked = marked_terms()
    assert len(marked) >= 15                                  # the pages really do mark their terms
    missing = {t: files for t, files in marked.items() if t not in GLOSSARY}
    assert not missing, missing


def test_every_page_marks_a_term_in_its_opening():
    files = {f for fs in marked_terms().values() for f in fs}
    # the Glossary itself, Generate, and the class poll's student page (a question and a box, on a phone)
    pages = {f.name for f in (ROOT / "pages").glob("*.py")} - {"10_Glossary.py", "6_Generate.py", "11_Join.py"}
    assert pages <= files, pages - files


def test_definitions_read_as_plain_words():
    for term, text in GLOSSARY.items():
        assert 20 <= len(text) <= 260 and not text.endswith("."), term
        assert text[0].islower() or text.split()[0].isupper() or text[0].isdigit(), term


def test_glossary_page_lists_every_term():
    at = AppTest.from_file("../pages/10_Glossary.py", default_timeout=120).run()
    page_ok(at)
    shown = " ".join(m.value for m in at.markdown)
    for term, text in GLOSSARY.items():
        assert f"**{term}**: {text}." in shown, term
