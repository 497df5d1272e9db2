"""Fitted-model records: what the app keeps of each fit. Pure (no Streamlit).

The session's list of records, the active one and the page guard are in
:mod:`dashboard.state.fits`.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from lmm_core import LMMError, LMMResult

__all__ = ["GAUSSIAN", "FitKey", "FitRecord", "label_of", "timed_fit"]


GAUSSIAN = "gaussian"


class FitKey(NamedTuple):
    """What identifies a fit for caches and stored results: the data, the formula, REML or
    ML, and for a GLMM its family, link and quadrature points (a Gaussian fit keeps the
    defaults, so its first three fields are all that tell two fits apart)."""

    data_key: str
    formula: str
    reml: bool
    family: str = GAUSSIAN
    link: str | None = None
    nagq: int = 1


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
    family, link, nagq
        ``"gaussian"`` (a linear mixed model; ``link`` None) or a GLMM's ``"binomial"`` /
        ``"poisson"`` with its link (``"logit"``, ``"log"``...) and quadrature points
        (1 = Laplace). A GLMM's ``reml`` is False: it is fitted by maximum likelihood.
    """

    name: str
    formula: str
    reml: bool
    data_key: str
    data_name: str
    result: LMMResult
    seconds: float
    family: str = GAUSSIAN
    link: str | None = None
    nagq: int = 1

    @property
    def key(self) -> FitKey:
        """``(data key, formula, reml, family, link, nagq)``: what identifies this fit for
        caches."""
        return FitKey(
            self.data_key, self.formula, bool(self.reml), self.family, self.link, int(self.nagq)
        )

    @property
    def is_glmm(self) -> bool:
        """Whether the fit is a GLMM (binomial or Poisson), not a linear mixed model."""
        return self.family != GAUSSIAN

    @property
    def method(self) -> str:
        """``"REML"`` or ``"ML"``; a GLMM's ``"Laplace"`` or ``"AGQ (n points)"``."""
        if self.is_glmm:
            return "Laplace" if self.nagq <= 1 else f"AGQ ({self.nagq} points)"
        return "REML" if self.reml else "ML"

    def renamed(self, name: str) -> FitRecord:
        """The same fit under another name."""
        return replace(self, name=name)


def label_of(name: str) -> str:
    """The label part of a record name: ``"random slope"`` of ``"M2: random slope"``."""
    head, _, rest = name.partition(": ")
    return rest if rest and head[:1] == "M" and head[1:].isdigit() else name


def timed_fit(fit: Callable[[str], LMMResult], formula: str) -> tuple[LMMResult | None, str, float]:
    """``fit(formula)`` and the seconds it took, for a list of models fitted in turn (the
    ladder, the shapes of time): a failure is returned as its message, never raised, so the
    other models go on. ``(result, "", seconds)`` or ``(None, message, seconds)``."""
    start = clock.perf_counter()
    try:
        result, error = fit(formula), ""
    except LMMError as exc:
        result, error = None, str(exc)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        result = None
        error = f"the fit failed numerically ({type(exc).__name__}: {exc})"
    return result, error, clock.perf_counter() - start
