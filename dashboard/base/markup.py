"""Markdown-safe display of text the user controls (formulas, error messages, names).

Streamlit renders ``st.markdown``, ``st.error``, captions, toasts and spinners as Markdown: a
formula such as ``y ~ `![x](http://host/x.png)` + (1 | g)`` dropped into
``f"`{formula}`"`` closes the code span early and the image is fetched from the outside
host. :func:`code_span` quotes any text as one code span; :func:`escape_message` keeps the
code spans of an engine message (``Unknown column `Dayz```) and escapes everything else.

Names are shown as the user wrote them: backticks belong in formulas only. The engine names
coefficients as R does (the column ``Visit day`` in backticks); :func:`plain_index`,
:func:`plain_cells` and :func:`plain_estimates` show those names without the backticks in
tables and figures (through :func:`lmm_core.formula.quoting.unquote_label`, the one place that knows
the quoting).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from lmm_core.formula.quoting import unquote_label
from lmm_core.predict.per_group import ShrinkageEstimates

__all__ = [
    "code_span",
    "escape_message",
    "escape_text",
    "plain_cells",
    "plain_estimates",
    "plain_index",
    "plain_name",
]

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


def plain_name(name: Any) -> Any:
    """A coefficient or term name without formula backticks (other values unchanged)."""
    return unquote_label(name) if isinstance(name, str) else name


def plain_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its row labels (coefficient names) shown without backticks."""
    return frame.rename(index=plain_name)


def plain_cells(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells in ``columns`` are shown without backticks."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].map(plain_name)
    return out


def plain_estimates(est: ShrinkageEstimates) -> ShrinkageEstimates:
    """Shrinkage estimates whose random-effect names (``columns`` and the ``own:c``...
    columns of ``table``) are shown without backticks; unchanged if names would collide."""
    plain = {c: unquote_label(c) for c in est.columns}
    if len(set(plain.values())) < len(plain) or all(k == v for k, v in plain.items()):
        return est
    renames = {}
    for col in est.table.columns:
        for c, shown in plain.items():
            if str(col).endswith(":" + c):
                renames[col] = str(col)[: -len(c)] + shown
                break
    return dataclasses.replace(
        est, columns=tuple(plain.values()), table=est.table.rename(columns=renames)
    )
