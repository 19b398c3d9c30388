"""Glossary: every technical term the pages use, in plain words."""

from __future__ import annotations

import streamlit as st

from explainer import ui
from explainer.content import GLOSSARY

ui.page(
    "Glossary",
    "Every technical word the pages use, in plain words. Each page also explains a term in brackets where it "
    "first uses it.",
    icon="📖",
)
by_letter: dict[str, list[str]] = {}
for name in sorted(GLOSSARY, key=str.casefold):
    by_letter.setdefault(name[0].upper(), []).append(name)
left, right = st.columns(2, gap="large")
letters = list(by_letter)
half = (len(GLOSSARY) + 1) // 2
count = 0
for letter in letters:
    col = left if count < half else right
    col.markdown(f"#### {letter}")
    col.markdown("\n".join(f"- **{n}**: {GLOSSARY[n]}." for n in by_letter[letter]))
    count += len(by_letter[letter])
