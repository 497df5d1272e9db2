"""How text and column names are written in R code (string literals, symbols)."""

from __future__ import annotations

import re
import unicodedata

from lmm_core.formula.quoting import is_syntactic

__all__ = ["plain_copies", "r_name", "r_plain", "r_string"]


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


_R_RESERVED = frozenset(
    "if else repeat while function for next break TRUE FALSE NULL Inf NaN NA NA_integer_ "
    "NA_real_ NA_character_ NA_complex_ in".split()
)


def r_plain(name: str) -> str:
    """A syntactic ASCII R name made from ``name``: accents dropped, other characters as
    ``_`` (``"Visite n°"`` gives ``"Visite_n"``); a leading digit or ``_`` gets ``x``."""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    plain = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.]", "_", ascii_name)).strip("_")
    if not plain or not (plain[0].isalpha() or plain[0] == "."):
        plain = "x" + ("_" + plain if plain else "")
    return plain + "_" if plain in _R_RESERVED else plain


def plain_copies(names: list[str], taken: set[str]) -> dict[str, str]:
    """For each name that R packages reading only plain names (mmrm, nlme's groups) cannot
    take, a new plain column name, unique among ``taken`` and the others made."""
    out: dict[str, str] = {}
    used = set(taken)
    for name in dict.fromkeys(names):
        if is_syntactic(name) and name.isascii():
            continue
        base = r_plain(name)
        new, k = base, 1
        while new in used:
            k += 1
            new = f"{base}_{k}"
        used.add(new)
        out[name] = new
    return out
