"""Streamlit helpers that show the texts of :mod:`dashboard.help.texts`.

- :func:`column`: a number column whose header has a help tooltip.
- :func:`how_to_read`: a closed expander explaining a table or chart, one bullet per term.
- :func:`entry_markdown`: one entry as glossary markdown.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.help.texts import HelpEntry, entry, help_text

__all__ = ["column", "entry_markdown", "how_to_read", "text_column"]


def column(key: str, label: str | None = None, **kwargs: Any):
    """``st.column_config.NumberColumn`` with the help text of ``key`` on its header."""
    return st.column_config.NumberColumn(label, help=help_text(key), **kwargs)


def text_column(key: str, label: str | None = None, **kwargs: Any):
    """``st.column_config.TextColumn`` with the help text of ``key`` on its header."""
    return st.column_config.TextColumn(label, help=help_text(key), **kwargs)


def guide_markdown(*keys: str) -> str:
    """One bullet per key: the term in bold, what it is and how to read it."""
    lines = []
    for key in keys:
        e = entry(key)
        lines.append(f"- **{e.term}**: {e.what} {e.how}")
    return "\n".join(lines)


def how_to_read(*keys: str, label: str = "How to read this") -> None:
    """A closed expander with one bullet per key (term, what it is, how to read it)."""
    with st.expander(label, expanded=False):
        st.markdown(guide_markdown(*keys))
        st.caption("Every term is also in the Glossary page.")


def _escape(text: str) -> str:
    """Plain text for markdown: ``a*b`` or ``||`` must not become emphasis or a table."""
    for ch in "\\`*_|[]":
        text = text.replace(ch, "\\" + ch)
    return text


def entry_markdown(e: HelpEntry) -> str:
    """Glossary rendering of one entry."""
    out = f"**{e.term}**: {e.what}  \n*How to read it:* {e.how}"
    if e.formula:
        out += f"  \n*Formula:* `{e.formula}`"
    if e.aliases:
        out += f"  \n*Also called:* {', '.join(map(_escape, e.aliases))}"
    return out
