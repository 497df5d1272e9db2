"""The Model page's choice of the kind of outcome: a linear mixed model or a GLMM. No Streamlit.

A GLMM (generalised linear mixed model) describes ``g(E[y | b]) = offset + x'beta + z'b``
with ``b ~ N(0, G)``: the binomial family (yes/no outcomes, link logit, probit or cloglog) or
the Poisson family (counts, link log). This module names the choices
(:data:`KINDS`, :data:`LINKS`), says whether adaptive quadrature applies to a formula
(:func:`quadrature_reason`: one scalar random intercept only, as in glmer) and whether a
column can be an exposure (:func:`exposure_problem`: positive in every row) and which column
looks like one (:func:`guess_exposure`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.formula.terms import parse_formula

__all__ = [
    "GLMMChoice",
    "KINDS",
    "KIND_HELP",
    "LINKS",
    "MAX_NAGQ",
    "exposure_problem",
    "family_label",
    "guess_exposure",
    "quadrature_reason",
]

#: family -> the Model page's words for it ("Kind of outcome"), in menu order
KINDS: dict[str, str] = {
    "gaussian": "measurement: linear mixed model",
    "binomial": "yes/no: logistic (binomial)",
    "poisson": "counts: Poisson",
}
#: family -> help entry with its plain explanation
KIND_HELP = {f: f"family_{f}" for f in KINDS}
#: family -> links offered (the first is the canonical one, the default)
LINKS: dict[str, tuple[str, ...]] = {
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log",),
}
#: words in a column name that mark the time at risk of counts (lower case, no separators)
EXPOSURE_WORDS = ("exposure", "atrisk", "persontime", "personyears", "personday", "followup")
#: most quadrature points offered (glmer allows 25)
MAX_NAGQ = 25


@dataclass(frozen=True)
class GLMMChoice:
    """The family settings of a fit: ``family`` (``"gaussian"`` for a linear mixed model),
    ``link`` (``None``: canonical) and ``nagq`` (1 = Laplace)."""

    family: str = "gaussian"
    link: str | None = None
    nagq: int = 1

    @property
    def is_glmm(self) -> bool:
        return self.family != "gaussian"


def family_label(family: str, link: str | None = None) -> str:
    """Short words for a model name: ``"logistic"``, ``"probit"``, ``"Poisson"``; ``""`` for
    a linear mixed model."""
    if family == "binomial":
        return {"probit": "probit", "cloglog": "cloglog"}.get(link or "logit", "logistic")
    if family == "poisson":
        return "Poisson"
    return ""


def quadrature_reason(formula: str) -> str | None:
    """Why adaptive quadrature (``nagq > 1``) does not apply to ``formula``, or ``None``.

    Quadrature integrates over one random effect per group: it needs exactly one random-
    effects term, a random intercept alone, and no other grouping factor (lme4's rule).
    A formula that does not parse gets ``None`` (the fit reports it).
    """
    try:
        spec = parse_formula(formula)
    except Exception:  # noqa: BLE001 - the fit itself reports a formula that does not parse
        return None
    if len(spec.random) != 1:
        count = len(spec.random)
        return (
            f"Quadrature needs a single random intercept; this model has {count} random-"
            "effects terms, so it is fitted by the Laplace approximation."
        )
    lhs = spec.random[0].lhs
    if lhs.terms or not lhs.intercept:
        return (
            "Quadrature needs a single random intercept; this model has random slopes, so "
            "it is fitted by the Laplace approximation."
        )
    return None


def exposure_problem(values: pd.Series, name: str) -> str | None:
    """Why ``values`` cannot be an exposure (``offset(log(exposure))``), or ``None``.

    The log of the exposure enters the model, so every value must be a positive number.
    """
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return f"The exposure '{name}' is not numeric: it must be the time at risk (a number)."
    x = values.to_numpy(dtype=float, na_value=np.nan)
    bad = int(np.sum(np.isfinite(x) & (x <= 0)))
    if bad:
        low = float(np.nanmin(x))
        return (
            f"The exposure '{name}' is zero or negative in {bad:,} row(s) (smallest {low:g}): "
            "its logarithm does not exist. Correct those rows or leave them out, or fit "
            "without an exposure."
        )
    if not np.isfinite(x).any():
        return f"The exposure '{name}' has no values."
    return None


def guess_exposure(data: pd.DataFrame, outcome: str) -> str | None:
    """The first column other than ``outcome`` whose name says it is the time at risk
    (:data:`EXPOSURE_WORDS`, ignoring case, spaces, ``-`` and ``_``) and that can be one
    (:func:`exposure_problem` finds nothing), or ``None``."""
    for column in map(str, data.columns):
        key = "".join(ch for ch in column.lower() if ch.isalnum())
        if column == outcome or not any(word in key for word in EXPOSURE_WORDS):
            continue
        if exposure_problem(data[column], column) is None:
            return column
    return None
