"""Code hygiene that keeps the app working across releases of its dependencies.

transformers renames and removes its private helpers between minor releases (5.24 removed GPT-J's
`_split_heads`, which this code once called), so the engine touches only public names.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"self", "cls", "ss"}  # our own objects (ss: Streamlit's session state, keys of our choosing)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(source: str) -> list[tuple[int, str]]:
    """Every `x._name` (not dunder) on something other than our own objects, and every import of a
    leading-underscore name or module from another package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in OWN):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.level == 0:  # relative imports are our own modules
            names = [a.name for a in node.names]
            mod = node.module or ""
            if any(_private(part) for part in mod.split(".")) or any(_private(n) for n in names):
                found.append((node.lineno, f"from {mod} import {', '.join(names)}"))
    return sorted(found)


def test_the_check_finds_private_calls():
    bad = "q = attn._split_heads(x)\nc = model.config._attn_implementation\nfrom transformers.x import _y\n"
    assert [line for line, _ in _private_uses(bad)] == [1, 2, 3]
    assert _private_uses("self._cache = 1\nss._prompt = 'a'\nx = y.__class__\n") == []


def test_engine_uses_no_private_names():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {code}"
                 for path in sorted((ROOT / "explainer").rglob("*.py"))
                 for line, code in _private_uses(path.read_text())]
    assert not offenders, "private names of other packages change between releases:\n" + "\n".join(offenders)


def test_every_engine_module_imports():
    # A module moved or renamed leaves no import behind (the linter does not resolve imports).
    import importlib
    import pkgutil

    import explainer
    names = [m.name for m in pkgutil.walk_packages(explainer.__path__, "explainer.")]
    assert {"explainer.words", "explainer.vectors", "explainer.wordmaps", "explainer.content"} <= set(names)
    for name in names:
        importlib.import_module(name)


def test_pages_import_no_numpy_or_torch():
    # Pages format what the engine computed; arrays and tensors stay behind explainer/ (ARCHITECTURE.md).
    offenders = []
    for path in sorted([ROOT / "streamlit_app.py", *(ROOT / "pages").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {m}" for m in mods
                          if m.split(".")[0] in ("numpy", "torch")]
    assert not offenders, "pages must not import numpy or torch:\n" + "\n".join(offenders)
