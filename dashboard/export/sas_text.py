"""How column names are written in SAS code (name literals, the 32-byte limit)."""

from __future__ import annotations

import re

__all__ = ["SAS_MAX_BYTES", "sas_cut", "sas_name"]

SAS_MAX_BYTES = 32  # SAS variable names hold at most 32 bytes
_SAS_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sas_cut(name: str) -> str:
    """``name`` cut to the 32 bytes (UTF-8) a SAS variable name holds, as PROC IMPORT does."""
    raw = str(name).encode("utf-8")[:SAS_MAX_BYTES]
    return raw.decode("utf-8", errors="ignore")


def sas_name(name: str) -> str:
    """A column as SAS code refers to it under ``VALIDVARNAME=ANY`` (set by the script).

    A plain name (letters, digits, ``_``, not starting with a digit) stays bare; any other
    is a name literal, ``'SBP (mmHg)'n`` (a ``'`` doubled), so the column keeps its own name
    in ``PROC IMPORT``, ``CLASS``, ``MODEL`` and ``RANDOM``. Longer names are cut to 32 bytes.
    """
    cut = sas_cut(name) or "_"
    if _SAS_PLAIN.match(cut):
        return cut
    return "'" + cut.replace("'", "''") + "'n"
