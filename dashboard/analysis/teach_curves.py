"""Teach page, section 2: the true and fitted curves of one study on a fine grid of time, and
what to look at in them.

Pure, no Streamlit: :func:`study_curves` computes what
:func:`dashboard.figures.teach_curves.study_curves_figure` draws; :func:`curve_note` and
:func:`slope_note` are the captions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.base.numbers import fmt
from lmm_core.simulation.teaching_curves import is_curved, population_mean
from lmm_core.simulation.teaching_truth import SHAPES, LabTruth

__all__ = [
    "N_GRID",
    "StudyCurves",
    "curve_note",
    "shown_subjects",
    "slope_note",
    "study_curves",
]

N_GRID = 60  # time points of the curves in section 2


@dataclass(frozen=True)
class StudyCurves:
    """Section 2's curves on a fine grid of time (:func:`study_curves`).

    Attributes
    ----------
    grid
        ``time`` (``N_GRID`` points from 0 to ``T``), ``truth`` (the true population curve)
        and ``fitted`` (the fitted population curve, ``x(t)' beta_hat``).
    subjects
        The shown subjects' curves on the same grid: ``subject``, ``time``, ``fitted``
        (``x(t)' beta_hat + z(t)' b_i``) and ``truth``.
    points
        The shown subjects' visits: ``subject``, ``time``, ``y``.
    means
        The observed mean per visit time: ``time``, ``y``, ``n``.
    knots
        Interior knots of a spline fit (empty otherwise).
    shape
        The fitted shape's name (``"natural spline"``).
    """

    grid: pd.DataFrame
    subjects: pd.DataFrame
    points: pd.DataFrame
    means: pd.DataFrame
    knots: tuple[float, ...]
    shape: str


def shown_subjects(data: pd.DataFrame, k: int = 3) -> list[str]:
    """``k`` subjects spread over the study: those at the ranks ``(j + 1/2) m / k`` of the
    ``m`` subjects' mean outcome (no extremes, none alike); all of them when ``m <= k``."""
    level = data.groupby("subject", observed=True)["y"].mean().sort_values()
    order = level.index.astype(str)
    m, k = len(order), min(k, len(order))
    return [order[int((j + 0.5) * m / k)] for j in range(k)]


def study_curves(
    lab: Any, result: Any, *, n_grid: int = N_GRID, n_subjects: int = 3
) -> StudyCurves:
    """The true and fitted population curves, and a few subjects' fitted and true curves, on
    ``n_grid`` times from 0 to ``T`` (``result.predict`` on new times: the spline's knots and
    the polynomial's coefficients are the fit's own).

    A subject's true curve is ``f(t) + u_0i + u_1i t`` (the population curve ``f`` of
    :func:`lmm_core.simulation.teaching_curves.population_mean` plus its own line's deviation).
    """
    truth, data = lab.truth, lab.data
    t = np.linspace(0.0, truth.span, int(n_grid))
    f = population_mean(truth, t)
    fitted = result.predict(pd.DataFrame({"time": t}), include_re=False)
    grid = pd.DataFrame({"time": t, "truth": f, "fitted": fitted})
    chosen = shown_subjects(data, n_subjects)
    k = len(t)
    curves = pd.DataFrame({"subject": np.repeat(chosen, k), "time": np.tile(t, len(chosen))})
    curves["fitted"] = result.predict(curves, include_re=True)
    own = lab.subjects.loc[chosen]
    u0 = np.repeat(own["intercept"].to_numpy() - truth.intercept, k)
    u1 = np.repeat(own["slope"].to_numpy() - truth.slope, k)
    curves["truth"] = np.tile(f, len(chosen)) + u0 + u1 * curves["time"].to_numpy()
    points = data.loc[data["subject"].astype(str).isin(chosen), ["subject", "time", "y"]]
    means = data.groupby("time")["y"].agg(["mean", "size"]).reset_index()
    means.columns = ["time", "y", "n"]
    knots = tuple(result.design.spline_knots().get("time", ()))
    shape = SHAPES[truth.time_df][0]
    return StudyCurves(grid, curves, points.astype({"subject": str}), means, knots, shape)


def curve_note(truth: LabTruth) -> str:
    """One or two sentences on what to look at in section 2's curves."""
    name = SHAPES[truth.time_df][0]
    if not is_curved(truth):
        return (
            "Black: the true population line; blue: the fitted one; coloured: three subjects' "
            "visits and fitted lines (dotted: their true lines). Set a **curvature κ** in "
            "section 1 to bend the truth, and a curved **shape of time** to let the fit bend."
        )
    if truth.time_df == 1:
        return (
            f"The truth bends (κ = {fmt(truth.curvature, 3)}) but the fitted straight line "
            "cannot: look where the blue line misses the black curve, at the start, in the "
            "middle and at the end. What the line cannot follow is counted as noise, so σ̂ "
            "tends to come out too large and the intercept off; choose a quadratic or a spline "
            "in section 1 to let the fit bend."
        )
    if truth.curvature == 0:
        return (
            f"The truth is a straight line; the fitted {name} may bend, so it spends data on "
            "a bend that is not there: it wiggles a little around the black line, and its "
            "estimated curvature should be near 0 (see the table)."
        )
    return (
        f"The fitted {name} bends with the truth: the blue curve follows the black one. "
        "Switch the shape of time to the straight line in section 1 to see a line miss the "
        "bend."
    )


def slope_note(truth: LabTruth) -> str:
    """What the intercept, slope and curvature rows mean when the truth or the fit bends."""
    span = f"{truth.span:g}"
    return (
        "**A curve has no single slope**: it is steeper in some places than in others. The "
        f"table reports the **average slope** from the first to the last planned visit, "
        f"(f(T) − f(0)) / T with T = {span}: for the truth it is β₁ (the bend is zero at both "
        "ends); for the fit it is that combination of its coefficients (the coefficients of "
        "poly() or ns() columns mean nothing on their own), with a Satterthwaite t interval. "
        "The intercept is the fitted curve at time 0, the curvature its bend at mid-study."
    )
