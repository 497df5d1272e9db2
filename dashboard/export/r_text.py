"""How text and column names are written in R code (string literals, symbols)."""

from __future__ import annotations

from lmm_core.formula.quoting import is_syntactic

__all__ = ["r_name", "r_string"]


def r_string(text: str) -> str:
    """An R string literal (double quotes, backslash escapes)."""
    esc = str(text).replace("\\", "\\\\").replace('"', '\\"')
    esc = esc.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{esc}"'


def r_name(name: str) -> str:
    """A column name as an R symbol: bare when syntactic ASCII, else in backticks.

    Non-ASCII names (``Âge``) are quoted too, since R reads them bare only in a UTF-8
    locale. Inside the backticks a backslash or a backtick is escaped with a backslash.
    """
    if is_syntactic(name) and name.isascii():
        return name
    esc = name.replace("\\", "\\\\").replace("`", "\\`")
    esc = esc.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"`{esc}`"
