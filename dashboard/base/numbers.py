"""How every number is shown: significant digits, a scientific form where needed.

One rule for tables, metrics, sentences and figure hovers, so that a slope of 0.00004 per day
reads ``4e-05`` and not ``0.0000``:

- :func:`fmt`: ``digits`` significant digits. From 1e-4 to 1e6 a plain decimal
  (``0.008123``, ``42.17``, ``1752`` for 1751.9 at 4 digits: the integer part is never
  rounded away), outside a scientific form (``1.23e-05``, ``1.235e+06``); trailing zeros
  dropped; integers in full (``12,345``); ``–`` for a missing value, ``∞`` for infinity.
- :func:`fmt_criterion`: AIC, BIC, logLik and deviance with two decimals (read as
  differences, so their absolute resolution matters).
- :func:`fmt_p`: p-values, ``< 0.0001`` below 1e-4, else 3 significant digits.
- :func:`fmt_pct`: shares as percentages with 2 significant digits (``13%``, ``0.42%``).
- :func:`styled`: a table for ``st.dataframe`` whose cells show these strings while sorting,
  copying and CSV downloads keep the full-precision values.
- :func:`hover`: the d3 format for plotly hover templates and axes (``.4~g``).

Downloads (CSV) keep full precision; nothing here rounds data.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MISSING",
    "column_format",
    "fmt",
    "fmt_criterion",
    "fmt_p",
    "fmt_pct",
    "hover",
    "styled",
]

#: Shown for a missing or undefined value.
MISSING = "–"
#: Below this magnitude a number is written in scientific form (as Python's ``g`` does).
SMALL = 1e-4
#: From this magnitude on a number is written in scientific form.
LARGE = 1e6
#: Tables larger than this many cells get a printf format instead of per-cell strings
#: (pandas' Styler renders every cell; a 5,000-row residual table must stay fast).
MAX_STYLED_CELLS = 40_000


def _strip(text: str) -> str:
    """Drop trailing zeros of a decimal part (``1.2300`` -> ``1.23``, ``4.000`` -> ``4``)."""
    if "e" in text:
        mantissa, exponent = text.split("e")
        return _strip(mantissa) + "e" + exponent
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt(x: Any, digits: int = 4, *, sign: bool = False) -> str:
    """A number with ``digits`` significant digits, readable at any magnitude.

    Parameters
    ----------
    x
        A Python or numpy number; ``None``/NaN give :data:`MISSING`; other objects are
        returned as ``str(x)``.
    digits
        Significant digits (at least 1). Numbers from 1 to 1e6 keep their whole integer part
        (1751.94 -> ``1752`` at 4 digits; 123456.7 -> ``123457``).
    sign
        Write ``+`` before positive numbers.

    Returns
    -------
    str
        ``0.008123``, ``-42.17``, ``1.23e-05``, ``2.5e+07``, ``12,345`` (integers), ``–``.
    """
    if x is None or x is pd.NA:
        return MISSING
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, numbers.Integral):
        return f"{int(x):+,}" if sign else f"{int(x):,}"
    if not isinstance(x, numbers.Real):
        return str(x)
    value = float(x)
    plus = "+" if sign else ""
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    digits = max(int(digits), 1)
    size = abs(value)
    if size < SMALL or size >= LARGE:
        text = _strip(f"{value:{plus}.{digits - 1}e}")
    elif size < 1:
        text = _strip(f"{value:{plus}.{digits}g}")
    else:
        whole = int(math.floor(math.log10(size))) + 1
        text = _strip(f"{value:{plus}.{max(digits - whole, 0)}f}")
    return "0" if text in ("+0", "-0") else text


def fmt_criterion(x: Any) -> str:
    """A likelihood criterion (AIC, BIC, logLik, deviance) with two decimals: ``1,763.94``.

    The one fixed-decimal rule, on purpose: criteria are only read as differences between
    models, where 0.01 is the resolution that matters whatever their size (a deviance of
    512,345.67 must not become ``5.123e+05``).
    """
    if x is None or x is pd.NA or (isinstance(x, float | np.floating) and math.isnan(x)):
        return MISSING
    if math.isinf(float(x)):
        return fmt(float(x))
    return f"{float(x):,.2f}"


def fmt_p(p: Any) -> str:
    """A p-value: ``< 0.0001`` below 1e-4, else 3 significant digits (``0.0457``, ``0.5``).

    Values above 1 (rounding in a numerical tail) are shown as ``1``; missing as ``–``.
    """
    if p is None or p is pd.NA:
        return MISSING
    value = float(p)
    if math.isnan(value):
        return MISSING
    if value < SMALL:
        return "< 0.0001"
    return fmt(min(value, 1.0), 3)


def fmt_pct(share: Any, digits: int = 2) -> str:
    """A share (0.1342) as a percentage with ``digits`` significant digits (``13%``).

    Small shares keep their digits (0.0042 -> ``0.42%``); missing gives ``–``.
    """
    if share is None or share is pd.NA or (isinstance(share, float) and math.isnan(share)):
        return MISSING
    return fmt(100.0 * float(share), digits) + "%"


def hover(digits: int = 4) -> str:
    """d3 format of ``digits`` significant digits with trailing zeros trimmed (``.4~g``).

    For plotly: ``f"%{{y:{hover()}}}"`` in a hover template, or ``tickformat=hover(3)``.
    """
    return f".{max(int(digits), 1)}~g"


def column_format(digits: int = 4) -> str:
    """printf format of ``digits`` significant digits for ``st.column_config.NumberColumn``.

    Used where :func:`styled` cannot be (``st.data_editor``, very large tables): Streamlit
    writes ``%.4g`` as JavaScript's ``toPrecision`` with trailing zeros dropped.
    """
    return f"%.{max(int(digits), 1)}g"


Rule = int | str


def _whole(v: Any) -> str:
    """A count: an integer in full; a fractional value (a mixture df of 1.5) by :func:`fmt`."""
    if v is None or v is pd.NA or (isinstance(v, numbers.Real) and not math.isfinite(float(v))):
        return fmt(v)
    return fmt(int(v)) if float(v).is_integer() else fmt(v)


def _formatter(rule: Rule):
    if rule == "p":
        return fmt_p
    if rule == "pct":
        return fmt_pct
    if rule == "criterion":
        return fmt_criterion
    if rule == "int":
        return _whole
    digits = int(rule)
    return lambda v: fmt(v, digits)


def styled(
    frame: pd.DataFrame, rules: Rule | Mapping[str, Rule] = 4, *, default: Rule | None = 4
) -> Any:
    """``frame`` for ``st.dataframe`` with numbers shown by :func:`fmt`, values untouched.

    Parameters
    ----------
    frame
        The table; its values (and hence sorting and CSV downloads) keep full precision.
    rules
        One rule for every numeric column, or column -> rule. A rule is a number of
        significant digits, ``"p"`` (:func:`fmt_p`), ``"pct"`` (:func:`fmt_pct`) or
        ``"int"``, ``"criterion"``.
    default
        Rule of numeric columns missing from a mapping (``None``: leave them to Streamlit).

    Returns
    -------
    pandas.io.formats.style.Styler or pandas.DataFrame
        A Styler; the frame itself when it has more than :data:`MAX_STYLED_CELLS` cells
        (then give its columns :func:`column_format` in the column config).
    """
    if frame.size > MAX_STYLED_CELLS:
        return frame
    if not isinstance(rules, Mapping):
        rules, default = {}, rules
    numeric = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    formats = {}
    for c in frame.columns:
        rule = rules.get(c, default if c in numeric else None)
        if rule is not None:
            formats[c] = _formatter(rule)
    if not (frame.index.is_unique and frame.columns.is_unique):
        return frame  # the Styler needs unique labels
    return frame.style.format(formats, na_rep=MISSING)
