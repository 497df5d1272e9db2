"""Simulation lab, curved time: the true population curve and what a fit says about it.

The truth (:class:`~lmm_core.simulation.teaching_truth.LabTruth`) has the population curve

.. math::

    f(t) = \\beta_0 + \\beta_1 t + \\kappa \\frac{4 t (T - t)}{T^2},

a straight line plus a bend ``kappa`` at mid-study ``t = T / 2`` that is zero at the first and
the last planned visit (:func:`population_mean`, :func:`bend`).

The fitted model is ``y ~ time + (time | subject)`` or, with a curved shape of time in the
fixed part (:data:`~lmm_core.simulation.teaching_truth.SHAPES`),
``y ~ poly(time, 2) + (time | subject)`` or ``y ~ ns(time, 3) + (time | subject)``
(:func:`lab_formula`). The coefficients of ``poly`` and ``ns`` columns mean nothing on their
own, so every fit is summarised by the same three linear combinations of its fixed effects
``L beta`` (:func:`curve_rows`): the fitted curve at time 0, its average slope
``(f_hat(T) - f_hat(0)) / T`` and its bend ``f_hat(T/2) - (f_hat(0) + f_hat(T)) / 2``; for a
straight line these are ``beta_0_hat``, ``beta_1_hat`` and 0. :func:`curve_inference` gives
each its standard error and ``t`` interval (:func:`contrast_interval`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.errors import LMMError
from lmm_core.inference.fixed_effects import contrast_test
from lmm_core.model.results import LMMResult
from lmm_core.simulation.teaching_truth import SHAPES, LabTruth

__all__ = [
    "FORMULA",
    "bend",
    "contrast_interval",
    "curve_inference",
    "curve_rows",
    "is_curved",
    "lab_formula",
    "population_mean",
]


def lab_formula(time_df: int = 1) -> str:
    """The lab's lme4 formula with the shape of time ``SHAPES[time_df]`` in the fixed part
    (the random part is always ``(time | subject)``)."""
    return f"y ~ {SHAPES[int(time_df)][1]} + (time | subject)"


FORMULA = lab_formula(1)


def population_mean(truth: LabTruth, t: np.ndarray | float) -> np.ndarray:
    """The true population curve ``f(t) = beta_0 + beta_1 t + kappa 4 t (T - t) / T^2``."""
    t = np.asarray(t, dtype=float)
    return truth.intercept + truth.slope * t + bend(truth, t)


def bend(truth: LabTruth, t: np.ndarray | float) -> np.ndarray:
    """The curved part of the truth, ``kappa 4 t (T - t) / T^2``: 0 at the first and the last
    planned visit, ``kappa`` at mid-study ``t = T / 2``."""
    t = np.asarray(t, dtype=float)
    span = truth.span
    return truth.curvature * 4.0 * t * (span - t) / span**2


def is_curved(truth: LabTruth) -> bool:
    """Whether the truth bends or the fit may: then the lab reports the curvature and speaks
    of the *average* slope."""
    return truth.curvature != 0 or int(truth.time_df) != 1


def _span(result: LMMResult, span: float | None) -> float:
    if span is not None:
        return float(span)
    if list(result.x_names) == ["(Intercept)", "time"]:
        return 1.0  # a straight line's rows are its coefficients, whatever the span
    raise LMMError("A curved fit's average slope and bend need the time span T (span=...).")


def curve_rows(result: LMMResult, span: float | None = None) -> dict[str, np.ndarray]:
    """Rows ``L`` such that ``L beta_hat`` summarises the fitted population curve.

    With ``x(t)`` the fixed-effects row of time ``t`` (the fit's own basis, so ``poly`` and
    ``ns`` columns are evaluated with the fit's coefficients and knots):
    ``"intercept"`` ``x(0)`` (the curve at time 0), ``"slope"`` ``(x(T) - x(0)) / T`` (its
    average slope from 0 to ``T``) and ``"curvature"`` ``x(T/2) - (x(0) + x(T)) / 2`` (its
    bend at mid-study). For ``y ~ time`` they are exactly ``(1, 0)``, ``(0, 1)`` and
    ``(0, 0)``: the coefficients, and no bend.

    Parameters
    ----------
    result
        A fit of :func:`lmm_core.simulation.teaching.fit_lab`.
    span
        ``T``, the last planned visit (:attr:`LabTruth.span`); needed for a curved fit.
    """
    span = _span(result, span)

    def compute() -> dict[str, np.ndarray]:
        x = result.design.fixed_matrix(pd.DataFrame({"time": [0.0, span / 2.0, span]}))
        mid = x[1] - (x[0] + x[2]) / 2.0
        return {"intercept": x[0], "slope": (x[2] - x[0]) / span, "curvature": mid}

    return result.derived.get(("lab_curve_rows", span), compute)  # kept with the fit


def curve_inference(
    result: LMMResult, span: float | None = None, *, level: float = 0.95, df: str = "satterthwaite"
) -> pd.DataFrame:
    """Estimate, standard error, df and interval of each row of :func:`curve_rows`.

    ``L beta_hat +/- t_{nu, (1 + level)/2} sqrt(L' C L)`` with ``C = sigma^2 (X' V^-1 X)^-1``
    and ``nu`` Satterthwaite's (``df="satterthwaite"``, lmerTest's for a contrast; for a
    straight line the fixed-effects table's numbers) or ``m - 1`` for ``m`` subjects
    (``df="subjects"``). A row of zeros (the bend of a straight line) is a bend of 0 by
    construction: estimate 0, no interval (NaN).

    Raises
    ------
    lmm_core.LMMError
        For another ``df`` rule, or a curved fit without ``span``.

    Returns
    -------
    pandas.DataFrame
        Index ``intercept``, ``slope``, ``curvature``; columns ``estimate``, ``std_error``,
        ``df``, ``lower``, ``upper``.
    """
    rows = curve_rows(result, span)
    values = [contrast_interval(result, row, level=level, df=df) for row in rows.values()]
    return pd.DataFrame(
        values,
        index=pd.Index(list(rows), name="key"),
        columns=["estimate", "std_error", "df", "lower", "upper"],
    )


def contrast_interval(
    result: LMMResult, row: np.ndarray, *, level: float = 0.95, df: str = "satterthwaite"
) -> tuple[float, float, float, float, float]:
    """``(estimate, std_error, df, lower, upper)`` of ``L beta`` for one row ``L``, as
    :func:`curve_inference` (all NaN but the estimate 0 for a row of zeros)."""
    if df not in ("satterthwaite", "subjects"):
        raise LMMError('df must be "subjects" or "satterthwaite".')
    if not np.any(row):
        return 0.0, math.nan, math.nan, math.nan, math.nan
    if df == "satterthwaite":
        test = contrast_test(result, row, "satterthwaite")
        est, se, nu = test.estimate, test.std_error, test.den_df
    else:
        est = float(row @ result.beta)
        se = math.sqrt(float(row @ result.vcov_beta @ row))
        nu = float(result.ngroups["subject"] - 1)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=nu)) * se
    return est, se, nu, est - half, est + half
