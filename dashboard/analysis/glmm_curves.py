"""A GLMM's curves over time on the probability (or rate) scale. No Streamlit.

For a GLMM with inverse link ``h`` (the logistic function, or ``exp``) three curves differ:

- a patient's own curve ``h(x(t)'beta + z(t)'b_i)`` with ``b_i`` the conditional modes;
- the curve of the typical patient ``h(x(t)'beta)`` (``b = 0``);
- the population-averaged curve ``E_b[h(x(t)'beta + z(t)'b)] = integral h(eta + s u) phi(u)
  du`` with ``s^2(t) = sum_k z_k(t)' G_k z_k(t)`` (:func:`lmm_core.predict.population_average`),
  the share of all patients with the outcome at ``t`` (or their mean rate).

For a non-linear ``h`` the average of the patients' curves is flatter than the curve of the
average patient. Counts with an offset ``log(exposure)`` are drawn per unit of exposure
(the offset left out: ``exp(eta)`` is then the rate). Observed shares (binary outcomes) or
rates (counts: sum of counts over sum of exposures) are binned by time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.formula.grammar import names_in
from lmm_core.predict.population_average import population_average, random_variance
from lmm_core.predict.prediction import population_grid, subject_grid

__all__ = [
    "GLMMCurves",
    "MAX_BINS",
    "exposure_column",
    "glmm_curves",
    "largest_gap",
    "link_deviation",
    "observed_bins",
    "population_curves",
    "subject_curves",
]

#: most time bins of the observed shares (fewer when time has fewer distinct values)
MAX_BINS = 12
NEW_LEVEL = "__population__"


@dataclass(frozen=True)
class GLMMCurves:
    """What the Trajectories page draws for a GLMM.

    Attributes
    ----------
    population
        ``group``, ``x``, ``typical`` (``h(x'beta)``) and ``averaged`` (population-averaged)
        on a grid over time, per value of the colour column.
    subjects
        ``subject``, ``group``, ``x``, ``fitted`` (the patient's own curve) on each drawn
        patient's grid.
    observed
        Binned observations: ``group``, ``x`` (mean time of the bin), ``value`` (share of 1s
        or rate), ``n`` (rows).
    scale
        ``"probability"`` or ``"rate"`` (``"rate per unit of <exposure>"`` with an offset).
    held
        Values at which the other covariates are held in the population curves.
    """

    population: pd.DataFrame
    subjects: pd.DataFrame
    observed: pd.DataFrame
    scale: str
    held: dict


def exposure_column(result) -> str | None:
    """The column of an ``offset(log(exposure))`` (the first offset's first column), or
    ``None`` without an offset."""
    offsets = getattr(result.design.spec, "offsets", ())
    for node in offsets:
        names = names_in(node)
        if names:
            return names[0].name
    return None


def _with_groups(result, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every grouping column present (a new level where missing), so the
    random-effects columns ``z(t)`` can be evaluated."""
    out = frame.copy()
    for term in result.reterms:
        for name in str(term.group).split(":"):
            if name not in out.columns:
                out[name] = NEW_LEVEL
    return out


def _fixed_eta(result, frame: pd.DataFrame) -> np.ndarray:
    """``x'beta`` on new rows (no offset: per unit of exposure)."""
    return result.design.fixed_matrix(frame) @ result.beta


def population_curves(result, grid: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The typical patient's curve and the population-averaged curve on ``grid`` rows.

    Returns
    -------
    typical, averaged
        ``h(eta)`` and ``E[h(eta + z'b)]``, ``b ~ N(0, G)`` at the fitted ``G``.
    """
    eta = _fixed_eta(result, grid)
    rows = _with_groups(result, grid)
    z = [result.design.random_matrix(k, rows)[1] for k in range(len(result.reterms))]
    s2 = random_variance(z, result.covariance_matrices())
    h = result.family.link.linkinv
    return h(eta), population_average(eta, s2, h)


def subject_curves(result, grid: pd.DataFrame) -> np.ndarray:
    """Each row's own curve ``h(x'beta + sum_k z_k'b_k)`` (conditional modes; no offset)."""
    eta = _fixed_eta(result, grid)
    for k, b in enumerate(result.b):
        codes, z = result.design.random_matrix(k, grid)
        known = codes >= 0
        eta[known] += np.einsum("ij,ij->i", z[known], b[codes[known]])
    return result.family.link.linkinv(eta)


def observed_bins(
    result, data: pd.DataFrame, x: str, by: str | None, max_bins: int = MAX_BINS
) -> pd.DataFrame:
    """Observed shares of 1s (binomial) or rates (Poisson: counts / exposure) per time bin.

    Time is cut at its quantiles into at most ``max_bins`` bins (one per distinct value when
    there are few), per value of ``by``.
    """
    used = data.iloc[result.design.rows]
    frame = pd.DataFrame(
        {
            "x": pd.to_numeric(used[x], errors="coerce").to_numpy(dtype=float),
            "y": np.asarray(result.y, dtype=float),
            "w": _exposure(result, used),
            "group": used[by].astype(str).to_numpy() if by else "all",
        }
    ).dropna(subset=["x"])
    distinct = np.unique(frame["x"])
    if distinct.size <= max_bins:
        frame["bin"] = frame["x"]
    else:
        edges = np.unique(np.quantile(frame["x"], np.linspace(0, 1, max_bins + 1)))
        frame["bin"] = np.clip(np.searchsorted(edges, frame["x"], side="right") - 1, 0, None)
    frame["events"] = frame["y"]  # a count, or 0/1
    out = frame.groupby(["group", "bin"], sort=True).agg(
        x=("x", "mean"), events=("events", "sum"), w=("w", "sum"), n=("y", "size")
    )
    if result.family.name == "poisson":
        out["value"] = out["events"] / out["w"]
    else:
        out["value"] = out["events"] / out["n"]
    return out.reset_index()[["group", "x", "value", "n"]]


def _exposure(result, used: pd.DataFrame) -> np.ndarray:
    """Per row used: the exposure ``exp(offset)`` (1 without an offset)."""
    offset = np.asarray(getattr(result.data, "offset", np.zeros(len(used))), dtype=float)
    if offset.shape != (len(used),):
        offset = np.zeros(len(used))
    return np.exp(offset)


def glmm_curves(
    result,
    data: pd.DataFrame,
    subject: str,
    x: str,
    subjects: list,
    by: str | None = None,
    n_points: int = 60,
) -> GLMMCurves:
    """The curves of :class:`GLMMCurves` for the chosen patients and axis.

    Parameters
    ----------
    result, data
        A :class:`lmm_core.glmm.results.GLMMResult` and the data it was fitted to.
    subject, x
        Patient column and the numeric time column on the horizontal axis.
    subjects
        Patient ids to draw their own curves.
    by
        Column with one population curve per value (e.g. the arm).
    n_points
        Grid points per curve.
    """
    grid, held = population_grid(result, data, x, by, n_points=n_points)
    typical, averaged = population_curves(result, grid)
    population = pd.DataFrame(
        {
            "group": grid[by].astype(str).to_numpy() if by else "all",
            "x": grid[x].to_numpy(dtype=float),
            "typical": typical,
            "averaged": averaged,
        }
    )
    own = subject_grid(result, data, subject, x, subjects, n_points)
    subjects_frame = pd.DataFrame(
        {
            "subject": own[subject].astype(str).to_numpy(),
            "group": own[by].astype(str).to_numpy() if by else "all",
            "x": pd.to_numeric(own[x], errors="coerce").to_numpy(dtype=float),
            "fitted": subject_curves(result, own),
        }
    ).sort_values(["subject", "x"], kind="stable")
    exposure = exposure_column(result)
    if result.family.name == "poisson":
        scale = f"rate per unit of {exposure}" if exposure else "rate (expected count)"
    else:
        scale = "probability"
    return GLMMCurves(
        population,
        subjects_frame.reset_index(drop=True),
        observed_bins(result, data, x, by),
        scale,
        held,
    )


def largest_gap(population: pd.DataFrame) -> pd.Series:
    """The row of :attr:`GLMMCurves.population` where the typical patient's curve and the
    population-averaged curve differ most, ``max |averaged - typical|`` (first of ties).

    Returns
    -------
    pandas.Series
        ``group``, ``x``, ``typical``, ``averaged`` of that row.
    """
    gap = (population["averaged"] - population["typical"]).abs().to_numpy(dtype=float)
    return population.iloc[int(np.nanargmax(gap))]


def link_deviation(result, data: pd.DataFrame, column: str) -> pd.Series:
    """Root mean square of the random part ``z'b`` of the linear predictor per value of
    ``column`` (the patient): how far each patient's curve lies from the typical one, on
    the link scale (the GLMM counterpart of
    :func:`lmm_core.predict.per_group.deviation_by`)."""
    offset = np.asarray(result.data.offset, dtype=float)
    part = result.eta - offset - result.design.X @ result.beta
    keys = data[column].iloc[result.design.rows].to_numpy()
    squares = pd.Series(part**2, index=keys)
    return np.sqrt(squares.groupby(level=0, sort=False).mean()).rename("deviation")
