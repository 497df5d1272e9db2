"""Predictions from a fitted model: population curves with confidence bands, partial predictions.

Notation as in :mod:`lmm_core.model.results`: ``y = X beta + sum_k Z_k b_k + e``. For a row ``x``
of the fixed-effects matrix,

* the **population-average** prediction is ``x' beta_hat`` (random effects set to their mean,
  zero), with standard error ``se = sqrt(x' V x)``, ``V = vcov(beta_hat)``;
* a **subject-specific** prediction adds ``z_k' b_k`` of every term (``LMMResult.predict``);
* a **cluster-level** prediction adds only the terms of the named grouping factors (for
  example the hospital's random intercept, without the patient's own deviation).

Curves are drawn on grids of new rows: :func:`population_grid` for the population average
(other covariates at typical values), :func:`subject_grid` for chosen subjects (each subject's
own covariates). Because spline and polynomial bases are stored in the fit, predictions
between visits follow the model's curve, not straight lines between the visits.

Confidence intervals are Wald intervals ``fit -/+ q * se`` with ``q`` the normal quantile.
They ignore the uncertainty of the variance parameters (``theta`` and ``sigma`` treated as
known, as lme4's ``predict(..., se.fit = TRUE)``); with few subjects a t quantile with
Satterthwaite or Kenward-Roger degrees of freedom (:mod:`lmm_core.inference.fixed_effects`)
gives wider bands.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.formula.grammar import names_in
from lmm_core.model.results import LMMResult

__all__ = [
    "fixed_variables",
    "held_column",
    "population_curve",
    "population_grid",
    "predict_groups",
    "random_part",
    "subject_grid",
]


def population_curve(result: LMMResult, newdata: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Population-average prediction ``X beta`` with a pointwise Wald confidence band.

    Parameters
    ----------
    result
        A fitted model.
    newdata
        Rows at which to predict; must hold every column the fixed part uses.
    level
        Coverage of the band.

    Returns
    -------
    pandas.DataFrame
        Index of ``newdata``; columns ``fit = X beta``, ``se = sqrt(diag(X V X'))`` with
        ``V = result.vcov``, and ``lower``/``upper = fit -/+ z se`` where ``z`` is the normal
        quantile ``Phi^-1(1/2 + level/2)`` (1.96 for 95%). This is a Wald band with normal
        quantiles; a t quantile with denominator degrees of freedom is left to the inference
        module.
    """
    X = result.design.fixed_matrix(newdata)
    fit = X @ result.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, result.vcov_beta, X))
    q = stats.norm.ppf(0.5 + level / 2.0)
    return pd.DataFrame(
        {"fit": fit, "se": se, "lower": fit - q * se, "upper": fit + q * se}, index=newdata.index
    )


def predict_groups(result: LMMResult, newdata: pd.DataFrame, groups: Iterable[str]) -> np.ndarray:
    """``X beta`` plus the random effects of the named grouping factors only.

    Parameters
    ----------
    result
        A fitted model.
    newdata
        Rows at which to predict.
    groups
        Group names as in ``result.ngroups`` (``"hospital"``, ``"cask:batch"``). An empty
        list gives the population prediction; every group gives ``result.predict``.

    Returns
    -------
    numpy.ndarray
        ``x' beta + sum_{k in groups} z_k' b_k[level]``; a level not seen in the fit adds 0.
    """
    wanted = set(groups)
    pred = result.design.fixed_matrix(newdata) @ result.beta
    for k, term in enumerate(result.reterms):
        if term.group not in wanted:
            continue
        codes, z = result.design.random_matrix(k, newdata)
        known = codes >= 0
        contrib = np.zeros(len(pred))
        contrib[known] = np.einsum("ij,ij->i", z[known], result.b[k][codes[known]])
        pred = pred + contrib
    return pred


def random_part(result: LMMResult) -> np.ndarray:
    """``Z b``: the fitted values minus ``X beta``, on the rows used by the fit."""
    return result.fitted - result.design.X @ result.beta


def fixed_variables(result: LMMResult) -> list[str]:
    """Data columns used by the fixed part of the model, in formula order."""
    spec = result.design.spec
    seen: list[str] = []
    for v in spec.fixed.variables:
        for name in names_in(spec.fixed.exprs[v]):
            if name.name not in seen:
                seen.append(name.name)
    return seen


def _is_number(values: pd.Series) -> bool:
    """Numeric and not boolean: a column whose typical value is its mean."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _typical(values: pd.Series) -> object:
    """Mean of a numeric column, most frequent value of any other."""
    if _is_number(values):
        return float(values.mean())
    return values.mode(dropna=True).iloc[0]


def held_column(values: pd.Series, value: object, n: int) -> pd.Series:
    """``n`` copies of ``value`` with a dtype that can hold it and that the model reads alike.

    A numeric column becomes ``float64`` whatever its own dtype: the mean of a whole-number
    column (an integer age) is rarely whole, and forcing it back into ``int64`` fails
    ("Trying to coerce float values to integers"). Any other column keeps its dtype, so that
    a categorical keeps its categories and hence its treatment contrasts.

    Parameters
    ----------
    values
        The data column the value stands for.
    value
        The value to repeat (for example from the column's typical value).
    n
        Number of rows.

    Returns
    -------
    pandas.Series
        A fresh series with a default index.
    """
    if _is_number(values):
        return pd.Series(np.full(n, float(value)), dtype=np.float64)
    return pd.Series([value] * n, dtype=values.dtype)


def population_grid(
    result: LMMResult,
    data: pd.DataFrame,
    x: str,
    by: str | None = None,
    *,
    n_points: int = 60,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """New data on which to draw population curves against ``x``.

    ``x`` runs over an even grid from its minimum to its maximum in the rows used by the fit;
    with ``by``, the grid is repeated for each of its values; every other column of the fixed
    part is held at a typical value (mean of a number, most frequent value otherwise).

    Parameters
    ----------
    result
        A fitted model.
    data
        The data the model was fitted to.
    x
        Numeric column for the horizontal axis.
    by
        Optional column with a curve per value (e.g. the treatment arm).
    n_points
        Grid points per curve.

    Returns
    -------
    grid, held
        The new rows (columns: every fixed-part variable, ``x`` and ``by``), and the values at
        which the other fixed-part variables were held (empty when none).
    """
    used = data.iloc[result.design.rows]
    xs = pd.to_numeric(used[x], errors="coerce").dropna()
    xgrid = np.linspace(float(xs.min()), float(xs.max()), n_points)
    held = {c: _typical(used[c]) for c in fixed_variables(result) if c not in (x, by)}
    groups = list(pd.unique(used[by].dropna())) if by else [None]
    if by and isinstance(used[by].dtype, pd.CategoricalDtype):
        groups = [g for g in used[by].cat.categories if g in set(groups)]
    elif by:
        groups = sorted(groups, key=str)
    parts = []
    for g in groups:
        part = pd.DataFrame({x: xgrid})
        if by:
            part[by] = pd.Series([g] * n_points, dtype=used[by].dtype)
        for c, v in held.items():
            part[c] = held_column(used[c], v, n_points)
        parts.append(part)
    return pd.concat(parts, ignore_index=True), held


def _nearest(sorted_x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index into ``sorted_x`` (ascending) of the value nearest each grid point; a point
    half-way between two values takes the earlier one."""
    if len(sorted_x) == 1:
        return np.zeros(len(grid), dtype=int)
    right = np.clip(np.searchsorted(sorted_x, grid, side="left"), 1, len(sorted_x) - 1)
    left = right - 1
    take_right = np.abs(sorted_x[right] - grid) < np.abs(grid - sorted_x[left])
    return np.where(take_right, right, left)


def _between(visits: np.ndarray, n_points: int) -> np.ndarray:
    """``n_points`` even steps from the first to the last of the ascending ``visits``, less
    those within ``1e-9`` of the range from a visit (the visit itself stands there, and
    rounding must leave no near-duplicates such as ``3.0000000000000004`` next to ``3``)."""
    even = np.linspace(visits[0], visits[-1], n_points)
    tol = 1e-9 * max(float(visits[-1] - visits[0]), 1.0)
    near = np.abs(even[:, None] - visits[None, :]).min(axis=1) <= tol
    return even[~near]


def subject_grid(
    result: LMMResult,
    data: pd.DataFrame,
    subject: str,
    x: str,
    subjects: Iterable,
    n_points: int = 50,
) -> pd.DataFrame:
    """New data on which to draw the chosen subjects' own curves against ``x``.

    For subject ``i`` with visits at ``x_i1 <= ... <= x_in`` (rows used by the fit), the grid
    holds every visit row as it is, and between them the ``n_points`` evenly spaced values
    from ``x_i1`` to ``x_in`` (less those that fall on a visit). An in-between point copies
    all other columns from the subject's **nearest visit** in ``x`` (the earlier one when
    half-way): covariates that are constant within the subject (arm, sex, hospital) keep
    their value, a covariate that changes between visits is held at its value at the nearest
    visit, so it steps half-way between two visits.

    Predicting on these rows with ``result.predict`` (``x' beta + sum_k z_k' b_k``) or
    :func:`predict_groups` gives the model's curve between visits: splines and polynomials
    are evaluated with the basis learned in the fit, so the curve bends where the model
    bends. On the visit rows the predictions are the fitted values.

    Parameters
    ----------
    result
        A fitted model.
    data
        The data the model was fitted to.
    subject
        The subject column.
    x
        Numeric column for the horizontal axis.
    subjects
        Subject ids (values of ``subject``); ids without a usable visit are skipped.
    n_points
        Evenly spaced points per subject (at least 2), the visits not counted.

    Returns
    -------
    pandas.DataFrame
        The columns of ``data``, ``x`` as float. An in-between row carries its nearest
        visit's values, the response included (a copy, not a measurement). Subjects come in
        the order of ``subjects``, each one's rows ascending in ``x``; a default index.

    Raises
    ------
    ValueError
        If ``n_points < 2`` or ``subject``/``x`` is not a column of ``data``.
    """
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}.")
    for col in (subject, x):
        if col not in data.columns:
            raise ValueError(f"`{col}` is not a column of the data.")
    used = data.iloc[result.design.rows]
    xs = pd.to_numeric(used[x], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(xs)
    used, xs = used.iloc[np.flatnonzero(keep)], xs[keep]
    where = used.groupby(subject, sort=False, observed=True).indices
    take, values = [], []
    for sid in dict.fromkeys(subjects):
        pos = where.get(sid)
        if pos is None:
            continue
        pos = pos[np.argsort(xs[pos], kind="stable")]
        visits = xs[pos]
        even = _between(visits, n_points)
        rows = np.concatenate([pos, pos[_nearest(visits, even)]])
        at = np.concatenate([visits, even])
        order = np.argsort(at, kind="stable")
        take.append(rows[order])
        values.append(at[order])
    if not take:
        return used.iloc[:0].assign(**{x: np.zeros(0)}).reset_index(drop=True)
    grid = used.iloc[np.concatenate(take)].reset_index(drop=True)
    grid[x] = np.concatenate(values)
    return grid
