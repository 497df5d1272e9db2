"""Fitted-model records: what the app keeps of each fit. Pure (no Streamlit).

The session's list of records, the active one and the page guard are in
:mod:`dashboard.state.fits`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from lmm_core import LMMResult

__all__ = ["FitKey", "FitRecord", "label_of"]


class FitKey(NamedTuple):
    """What identifies a fit for caches and stored results."""

    data_key: str
    formula: str
    reml: bool


@dataclass(frozen=True)
class FitRecord:
    """One fitted model of the session.

    Attributes
    ----------
    name
        ``"M<k>: <label>"``, unique in the session (a ladder's records carry their label
        until :meth:`renamed` gives them a name).
    formula
        The formula as the engine wrote it (``result.formula``).
    reml
        REML (True) or ML (False).
    data_key, data_name
        Content id and display name of the data the model was fitted to.
    result
        The immutable fit.
    seconds
        Time the fit took (0 when it came from the cache).
    """

    name: str
    formula: str
    reml: bool
    data_key: str
    data_name: str
    result: LMMResult
    seconds: float

    @property
    def key(self) -> FitKey:
        """``(data key, formula, reml)``: what identifies this fit for caches."""
        return FitKey(self.data_key, self.formula, bool(self.reml))

    @property
    def method(self) -> str:
        """``"REML"`` or ``"ML"``."""
        return "REML" if self.reml else "ML"

    def renamed(self, name: str) -> FitRecord:
        """The same fit under another name."""
        return replace(self, name=name)


def label_of(name: str) -> str:
    """The label part of a record name: ``"random slope"`` of ``"M2: random slope"``."""
    head, _, rest = name.partition(": ")
    return rest if rest and head[:1] == "M" and head[1:].isdigit() else name
