"""Markdown-safe display of text the user controls (formulas, error messages, names).

Streamlit renders ``st.markdown``, ``st.error``, captions, toasts and spinners as Markdown: a
formula such as ``y ~ `![x](http://host/x.png)` + (1 | g)`` dropped into
``f"`{formula}`"`` closes the code span early and the image is fetched from the outside
host. :func:`code_span` quotes any text as one code span; :func:`escape_message` keeps the
code spans of an engine message (``Unknown column `Dayz```) and escapes everything else.
"""

from __future__ import annotations

import re

__all__ = ["code_span", "escape_message", "escape_text"]

_ACTIVE = re.compile(r"([\\`*_\[\]()!<>&$~#|{}])")  # characters that can start Markdown/HTML
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def code_span(text: str) -> str:
    """``text`` as one Markdown code span, whatever backticks it contains."""
    text = str(text).replace("\n", " ")
    runs = [len(r) for r in re.findall(r"`+", text)]
    if not runs:
        return f"`{text}`" if text.strip() else "` `"
    fence = "`" * (max(runs) + 1)
    return f"{fence} {text} {fence}"  # the spaces are stripped by the renderer


def escape_text(text: str) -> str:
    """``text`` with every Markdown/HTML-active character backslash-escaped (shown as is)."""
    return _ACTIVE.sub(r"\\\1", str(text))


def escape_message(message: str) -> str:
    """An engine message for Markdown: its `` `token` `` spans stay code, the rest is text."""
    out, last = [], 0
    message = str(message)
    for m in _SPAN.finditer(message):
        out.append(escape_text(message[last : m.start()]))
        out.append(code_span(m.group(1)))
        last = m.end()
    out.append(escape_text(message[last:]))
    return "".join(out)
