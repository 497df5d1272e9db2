"""Simulation lab, shrinkage: each subject's own slope against its mixed-model and true slope.

:func:`slope_shrinkage` puts the three side by side for one simulated study,
:func:`shrinkage_summary` condenses them (root mean squared errors against the truth, median
shrinkage factor) and :func:`expected_slope_weight` is the textbook weight on a subject's own
slope that the factor is compared with.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lmm_core.model.results import LMMResult
from lmm_core.predict.per_group import shrinkage_estimates
from lmm_core.simulation.teaching import LabData, estimates

__all__ = ["expected_slope_weight", "shrinkage_summary", "slope_shrinkage"]


def slope_shrinkage(result: LMMResult, lab: LabData) -> pd.DataFrame:
    """Each subject's own slope, mixed-model slope and true slope.

    Uses :func:`lmm_core.predict.per_group.shrinkage_estimates`: ``own`` is the least-squares
    slope of the subject's data alone, ``population`` is the fitted population curve's
    average slope ``beta_1_hat`` (:func:`lmm_core.simulation.teaching_curves.curve_rows`; for
    a straight line its slope), ``mixed = population + b_1i`` with the BLUP ``b_1i`` (the
    average slope of the subject's fitted curve; for a straight line it equals per_group's
    projected mixed-model slope wherever that exists), ``truth`` is ``beta_1 + u_1i`` (the
    subject's true average slope) and ``factor = (mixed - population) / (own - population)``
    is the share of its own deviation from the population that the model keeps. With a bend,
    the own straight line of a subject who left early follows the start of the curve, not its
    average.

    Returns
    -------
    pandas.DataFrame
        One row per subject (index: subject): ``n``, ``own``, ``mixed``, ``truth``,
        ``population``, ``factor``; ``own`` and ``factor`` are NaN for a subject seen at one
        visit only (no own slope).
    """
    est = shrinkage_estimates(result, "subject").table
    pop = estimates(result, lab.truth.span)["slope"]
    own = est["own:time"].to_numpy()
    mixed = pop + est["blup:time"].to_numpy()  # the fixed part's average slope plus b_1i
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (mixed - pop) / (own - pop)
    out = pd.DataFrame(
        {
            "n": est["n"].to_numpy(),
            "own": own,
            "mixed": mixed,
            "population": pop,
            "factor": factor,
        },
        index=pd.Index(est.index.astype(str), name="subject"),
    )
    out.insert(3, "truth", lab.subjects["slope"].reindex(out.index).to_numpy())
    return out


def shrinkage_summary(table: pd.DataFrame) -> dict[str, float]:
    """Root mean squared error of own and mixed slopes against the truth, and the median
    shrinkage factor, over the subjects with an own slope."""
    ok = table["own"].notna()
    own_err = (table.loc[ok, "own"] - table.loc[ok, "truth"]).to_numpy()
    mixed_err = (table.loc[ok, "mixed"] - table.loc[ok, "truth"]).to_numpy()
    factor = table.loc[ok, "factor"].to_numpy()
    factor = factor[np.isfinite(factor)]
    return {
        "rmse_own": float(np.sqrt(np.mean(own_err**2))) if ok.any() else math.nan,
        "rmse_mixed": float(np.sqrt(np.mean(mixed_err**2))) if ok.any() else math.nan,
        "median_factor": float(np.median(factor)) if factor.size else math.nan,
        "subjects": int(ok.sum()),
    }


def expected_slope_weight(sd_slope: float, sigma: float, n_visits: int | np.ndarray) -> np.ndarray:
    """The weight on a subject's own slope in the simplest case.

    With every visit seen at times ``0 .. n - 1``, uncorrelated intercept and slope and time
    centred at its mean, the BLUP of a subject's slope deviation is ``w`` times its own
    least-squares deviation, with

    .. math::

        w = \\frac{\\tau_1^2}{\\tau_1^2 + \\sigma^2 / S_{tt}}, \\qquad
        S_{tt} = \\sum_j (t_j - \\bar t)^2 = \\frac{n (n^2 - 1)}{12},

    the true slope variance over itself plus the variance of an own slope. More visits
    (larger ``S_tt``) or less noise move ``w`` toward 1 (little shrinkage); a small
    ``tau_1`` moves it toward 0. Elsewhere (correlation, dropout) it is a guide.
    """
    n = np.asarray(n_visits, dtype=float)
    s_tt = n * (n**2 - 1.0) / 12.0
    tau2 = float(sd_slope) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return tau2 / (tau2 + float(sigma) ** 2 / s_tt)
