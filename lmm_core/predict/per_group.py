"""Per-subject estimates: each subject's own least-squares fit next to the mixed model's.

The classic picture of *shrinkage*. Take a grouping factor (the subject) whose random-effects
columns are ``z`` (for ``(1 + time | subject)``: an intercept and ``time``). For subject ``i``
with rows ``R_i`` let ``Z_i`` be those rows of ``z`` and ``P_i = (Z_i'Z_i)^-1 Z_i'`` the
least-squares map onto its columns. Three coefficient vectors of length ``S`` are compared,
all on the same basis and the same rows, so they are directly comparable:

* **own** ``= P_i y_i``: ordinary least squares on the subject's data alone (its own intercept
  and slope), ignoring everybody else;
* **population** ``= P_i X_i beta``: the fixed-effects curve for that subject's covariates;
* **mixed** ``= P_i (X_i beta + sum_k Z_ki b_k)``: the model's fitted curve for the subject.

When the fixed part lies in the span of ``z`` for the subject (covariates constant within
subject and interacting only with ``z`` columns, as in ``y ~ time * arm + (time | patient)``),
``P_i`` reproduces those curves exactly: population = ``(beta_0 + beta_arm arm_i,
beta_time + beta_time:arm arm_i)`` and mixed = population + ``b_i``. So the subject's intercept
and slope *include its arm effect*. With other grouping factors (a hospital intercept), mixed
also holds their projected BLUPs: mixed - population is everything the random effects add for
that subject. Otherwise ``P_i`` gives the best least-squares line through each curve at the
subject's own visits.

The **shrinkage factor** per coefficient is ``(mixed - population) / (own - population)``: the
fraction of the subject's own deviation from the population that the mixed model keeps (1: no
shrinkage; 0: pulled all the way to the population). For a random-intercept model
``b_i = n_i tau^2 / (n_i tau^2 + sigma^2) (ybar_i - xbar_i' beta)``, so the factor is
``n_i tau^2 / (n_i tau^2 + sigma^2)`` exactly: subjects with few observations are pulled most.
For a vector of random effects the factor is a matrix, and a single coefficient's ratio can
fall outside [0, 1] (a correlated intercept pulls the slope along).

A subject is left out of the own-data fits (its ``own`` values are NaN) when it has fewer
observations than columns (one visit cannot give a slope) or when its ``Z_i`` has rank below
``S`` (e.g. every visit at the same time). Its mixed-model estimate (the BLUP) still exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.errors import ModelError
from lmm_core.model.results import LMMResult
from lmm_core.predict.prediction import random_part

__all__ = [
    "GroupEffects",
    "ShrinkageEstimates",
    "covariance_ellipse",
    "deviation_by",
    "group_effects",
    "shrinkage_estimates",
]

RANK_RTOL = 1e-10  # singular values of Z_i'Z_i below this times the largest: rank deficient


@dataclass(frozen=True)
class ShrinkageEstimates:
    """Own-data, mixed-model and population coefficients of every level of one group.

    Attributes
    ----------
    group
        The grouping factor (lme4's name, e.g. ``"Subject"``).
    columns
        The random-effects columns compared (``"(Intercept)"``, ``"time"``).
    table
        One row per level (index: level label). Columns ``n`` (observations), ``fitted_own``
        (bool), and for each column ``c``: ``own:c``, ``mixed:c``, ``population:c``,
        ``blup:c`` (conditional mode ``b``), ``blup_sd:c`` (conditional SD), ``shrinkage:c``.
    left_out
        Levels without an own-data fit: columns ``n`` and ``reason`` (plain words).
    covariance
        ``S x S`` covariance matrix of the random effects of this group (``sigma^2 Lambda
        Lambda'``; block diagonal when the group has several terms, as with ``||``).
    """

    group: str
    columns: tuple[str, ...]
    table: pd.DataFrame
    left_out: pd.DataFrame
    covariance: np.ndarray


def _grouped_cross(codes: np.ndarray, a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """``sum_{r in level i} a_r b_r'`` for every level: array ``(m, a.shape[1], b.shape[1])``."""
    out = np.empty((m, a.shape[1], b.shape[1]))
    for j in range(a.shape[1]):
        for k in range(b.shape[1]):
            out[:, j, k] = np.bincount(codes, weights=a[:, j] * b[:, k], minlength=m)
    return out


@dataclass(frozen=True)
class GroupEffects:
    """The random effects of one grouping factor, its terms side by side: ``levels``,
    ``codes`` (row -> level), ``z`` (``(n, S)`` columns), ``columns`` (their names), ``b`` and
    ``b_sd`` (``(m, S)`` conditional modes and SDs) and ``cov`` (``(S, S)``, block diagonal
    over the terms)."""

    group: str
    levels: np.ndarray
    codes: np.ndarray
    z: np.ndarray
    columns: tuple[str, ...]
    b: np.ndarray
    b_sd: np.ndarray
    cov: np.ndarray


def group_effects(result, group: str | None = None) -> GroupEffects:
    """:class:`GroupEffects` of ``group`` (default: the factor with most levels) for a fit with
    ``reterms``, ``b``, ``cond_cov`` and ``covariance_matrices()`` (an LMM or a GLMM).

    Raises
    ------
    ModelError
        The model has no random effects for ``group``.
    """
    terms = list(result.reterms)
    if group is None:
        group = max(terms, key=lambda t: t.n_levels).group
    ks = [k for k, t in enumerate(terms) if t.group == group]
    if not ks:
        raise ModelError(f"The model has no random effects for `{group}`.")
    first = terms[ks[0]]
    covs = result.covariance_matrices()
    sizes = [terms[k].n_columns for k in ks]
    cov = np.zeros((sum(sizes), sum(sizes)))
    for at, k, w in zip(np.cumsum([0, *sizes[:-1]]), ks, sizes, strict=True):
        cov[at : at + w, at : at + w] = covs[k]
    return GroupEffects(
        group,
        first.levels,
        first.codes,
        np.hstack([terms[k].z for k in ks]),
        tuple(c for k in ks for c in terms[k].cnames),
        np.hstack([result.b[k] for k in ks]),
        np.hstack([np.sqrt(np.diagonal(result.cond_cov[k], axis1=1, axis2=2)) for k in ks]),
        cov,
    )


def shrinkage_estimates(result: LMMResult, group: str | None = None) -> ShrinkageEstimates:
    """Own-data least-squares, mixed-model and population coefficients per level of ``group``.

    Parameters
    ----------
    result
        A fitted model.
    group
        A grouping factor of the model (default: the one with most levels). Several terms of
        the same group (``(1 | g) + (0 + t | g)``) are combined.

    Returns
    -------
    ShrinkageEstimates
        See the module docstring for the definitions of own, population, mixed and the
        shrinkage factor.
    """
    g = group_effects(result, group)
    group, levels, codes, z, columns = g.group, g.levels, g.codes, g.z, g.columns
    b, b_sd, cov, m, s = g.b, g.b_sd, g.cov, len(g.levels), g.z.shape[1]

    xb = result.design.X @ result.beta
    targets = np.column_stack([result.y, xb, result.fitted])
    ztz = _grouped_cross(codes, z, z, m)
    zt = _grouped_cross(codes, z, targets, m)  # (m, S, 3): own, population, mixed
    n = np.bincount(codes, minlength=m)
    sv = np.linalg.svd(ztz, compute_uv=False)
    ok = (n >= s) & (sv[:, -1] > RANK_RTOL * np.maximum(sv[:, 0], np.finfo(float).tiny))
    coef = np.full((m, s, 3), np.nan)
    if ok.any():
        coef[ok] = np.linalg.solve(ztz[ok], zt[ok])
    own, pop, mixed = coef[..., 0], coef[..., 1], coef[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (mixed - pop) / (own - pop)

    index = pd.Index(levels, name=group)
    table = pd.DataFrame({"n": n, "fitted_own": ok}, index=index)
    for j, c in enumerate(columns):
        table[f"own:{c}"] = own[:, j]
        table[f"mixed:{c}"] = mixed[:, j]
        table[f"population:{c}"] = pop[:, j]
        table[f"blup:{c}"] = b[:, j]
        table[f"blup_sd:{c}"] = b_sd[:, j]
        table[f"shrinkage:{c}"] = factor[:, j]
    reasons = [
        (
            f"{k} observation{'s' if k != 1 else ''}: fewer than the {s} coefficients to estimate"
            if k < s
            else "its observations cannot separate "
            + " and ".join(columns)
            + " (for example, all at the same time)"
        )
        for k in n[~ok]
    ]
    left_out = pd.DataFrame({"n": n[~ok], "reason": reasons}, index=index[~ok])
    return ShrinkageEstimates(group, columns, table, left_out, cov)


def covariance_ellipse(
    center: np.ndarray, cov: np.ndarray, level: float = 0.95, n_points: int = 121
) -> np.ndarray:
    """Points on the ellipse holding ``level`` of a bivariate normal ``N(center, cov)``.

    The ellipse is ``{center + r L u : |u| = 1}`` with ``L L' = cov`` and
    ``r^2 = chi2_2 quantile(level)`` (``r = 2.448`` for 95%), so ``(x - c)' cov^-1 (x - c) = r^2``
    on every point.

    Returns
    -------
    numpy.ndarray
        ``(n_points, 2)``; the first point is repeated at the end to close the curve.
    """
    r = np.sqrt(stats.chi2.ppf(level, df=2))
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=float))
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    angle = np.linspace(0.0, 2.0 * np.pi, n_points)
    circle = np.column_stack([np.cos(angle), np.sin(angle)])
    return np.asarray(center, dtype=float) + r * circle @ root.T


def deviation_by(result: LMMResult, data: pd.DataFrame, column: str) -> pd.Series:
    """Root mean square of the random-effects part ``Z b`` of the fitted values, per value of
    ``column``: how far each subject's fitted curve lies from the population curve.

    Parameters
    ----------
    result
        A fitted model.
    data
        The data it was fitted to (``result.design.rows`` index into it by position).
    column
        The subject column.
    """
    keys = data[column].iloc[result.design.rows].to_numpy()
    part = pd.Series(random_part(result) ** 2, index=keys)
    return np.sqrt(part.groupby(level=0, sort=False).mean()).rename("deviation")
