"""Prediction and prediction intervals; forecasts for a new subject from a few observed visits.

Notation of :mod:`lmm_core.model.results`: ``y = X beta + sum_k Z_k b_k + e`` with
``b_k[level] ~ N(0, G_k)`` (``G_k = result.covariance_matrices()[k]``, the same for every level)
and ``e ~ N(0, sigma^2 I)``. ``V_beta = result.vcov`` is the covariance of ``beta_hat``.
Intervals use the normal quantile ``q = Phi^-1(1/2 + level/2)``; the variance parameters
(``theta``, ``sigma``) are treated as known, as in lme4's ``predict(..., se.fit = TRUE)``.

Three questions, three variances, for a row with fixed-effects vector ``x`` and random-effects
vector ``z_k`` of each term:

* **the population mean** ``x' beta``: ``Var = x' V_beta x`` (confidence interval);
* **a known subject's mean** ``x' beta + sum_k z_k' b_k`` (its level was in the fit): the
  prediction error variance of ``x' beta_hat + z' b_hat`` from the inverse of Henderson's mixed
  model equations, ``(x - w)' V_beta (x - w) + z' C z``, with ``C`` the conditional covariance
  of ``b`` (lme4's ``condVar``) and ``w = X_l' Z_l C z / sigma^2`` (``X_l, Z_l``: the rows of
  that level in the fit) the first-order dependence of ``b_hat`` on ``beta_hat``. This is
  exact for one grouping factor; with several terms the conditional covariances *between*
  terms are ignored (each term's block is used as if it were alone);
* **a new observation**: add ``sigma^2`` and, for every term whose level is not in the fit
  (a new subject), its between-level variance ``z_k' G_k z_k`` (prediction interval).

For a **new subject with observed visits** (:func:`new_subject_forecast`), the subject's random
effects are conditioned on those visits without refitting:

    b | y_obs ~ N(K (y_obs - X_o beta), G - K Z_o G),   K = G Z_o' V_o^{-1},
    V_o = Z_o G Z_o' + sigma^2 I,

the BLUP formula with ``beta`` and ``theta`` at their estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, stats

from lmm_core.errors import DataError
from lmm_core.model.results import LMMResult

__all__ = ["SubjectForecast", "new_subject_forecast", "prediction_intervals"]


def _quantile(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}.")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _with_groups(result: LMMResult, newdata: pd.DataFrame) -> pd.DataFrame:
    """``newdata`` with any missing grouping column added as missing (an unseen level)."""
    frame = newdata
    for term in result.reterms:
        for name in term.rebuild.group_vars:
            if name.name not in frame.columns:
                if frame is newdata:
                    frame = newdata.copy()
                frame[name.name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def _level_crossproducts(result: LMMResult, k: int) -> np.ndarray:
    """``Z_l' X_l`` of every level ``l`` of term ``k``: an array ``(levels, S, p)``."""
    term = result.reterms[k]
    X = result.design.X
    out = np.zeros((term.n_levels, term.n_columns, X.shape[1]))
    for s in range(term.n_columns):
        zs = term.z[:, s]
        for j in range(X.shape[1]):
            out[:, s, j] = np.bincount(term.codes, weights=zs * X[:, j], minlength=term.n_levels)
    return out


def prediction_intervals(
    result: LMMResult,
    newdata: pd.DataFrame,
    level: float = 0.95,
    include_re: bool = True,
) -> pd.DataFrame:
    """Predictions with confidence intervals for the mean and prediction intervals.

    Parameters
    ----------
    result
        A fitted model.
    newdata
        Rows at which to predict: every column of the fixed part, and the grouping columns
        when ``include_re`` (a missing grouping column counts as an unseen level).
    level
        Coverage of both intervals.
    include_re
        Add the random effects of levels seen in the fit (subject-level prediction). When
        False every row gets the population prediction ``x' beta``.

    Returns
    -------
    pandas.DataFrame
        Index of ``newdata``; columns

        * ``population``: ``x' beta``;
        * ``fit``: ``x' beta + sum_k z_k' b_k`` over the terms whose level was in the fit
          (only ``x' beta`` when ``include_re`` is False or no level is known);
        * ``se_fit``, ``ci_lower``, ``ci_upper``: standard error of ``fit`` as an estimate of
          the (population or subject) mean and its interval ``fit -/+ q se_fit``. Population:
          ``se_fit^2 = x' V_beta x``. Known levels: ``(x - w)' V_beta (x - w) + z' C z``
          (module docstring; exact for one grouping factor, cross-term conditional
          covariances ignored otherwise);
        * ``se_pred``, ``pi_lower``, ``pi_upper``: for a new observation,
          ``se_pred^2 = se_fit^2 + sum_{k unknown} z_k' G_k z_k + sigma^2``;
        * ``n_known``: number of random-effects terms whose level was in the fit.
    """
    q = _quantile(level)
    design = result.design
    frame = _with_groups(result, newdata)
    X = design.fixed_matrix(frame)
    population = X @ result.beta
    fit = population.copy()
    a = X.copy()  # direction in beta-space of the prediction error
    var_re = np.zeros(len(frame))
    var_between = np.zeros(len(frame))
    n_known = np.zeros(len(frame), dtype=int)
    s2 = result.sigma**2
    for k, G in enumerate(result.covariance_matrices()):
        codes, z = design.random_matrix(k, frame)
        known = (codes >= 0) if include_re else np.zeros(len(frame), dtype=bool)
        if known.any():
            zk, lev = z[known], codes[known]
            C = result.cond_cov[k][lev]
            fit[known] += np.einsum("is,is->i", zk, result.b[k][lev])
            var_re[known] += np.einsum("is,ist,it->i", zk, C, zk)
            if s2 > 0:
                zx = _level_crossproducts(result, k)[lev]
                a[known] -= np.einsum("isp,ist,it->ip", zx, C, zk) / s2
            n_known[known] += 1
        unknown = ~known
        var_between[unknown] += np.einsum("is,st,it->i", z[unknown], G, z[unknown])
    se_fit = np.sqrt(np.einsum("ip,pq,iq->i", a, result.vcov_beta, a) + var_re)
    se_pred = np.sqrt(se_fit**2 + var_between + s2)
    return pd.DataFrame(
        {
            "population": population,
            "fit": fit,
            "se_fit": se_fit,
            "ci_lower": fit - q * se_fit,
            "ci_upper": fit + q * se_fit,
            "se_pred": se_pred,
            "pi_lower": fit - q * se_pred,
            "pi_upper": fit + q * se_pred,
            "n_known": n_known,
        },
        index=newdata.index,
    )


@dataclass(frozen=True)
class SubjectForecast:
    """Forecast for a new subject, conditioned on its observed visits.

    Attributes
    ----------
    group
        The grouping factor treated as the subject.
    n_observed
        Observed visits used (rows with an outcome and complete covariates).
    ranef_mean, ranef_cov
        Conditional mean and covariance of the subject's random effects given the visits.
    ranef_prior_sd
        Their standard deviations before any visit (square roots of ``diag(G)``).
    table
        One row per future row (index of ``future``): ``fit``; ``population`` (the
        population-level prediction for comparison, ``x' beta`` plus any other known-level
        effects) with ``population_lower/upper``, its Wald band; the three nested bands
        ``lower/upper_fixed`` (``se_fixed``: beta only), ``lower/upper_mean``
        (``se_mean``: + random effects given the visits) and ``lower/upper_total``
        (``se_total``: + residual, a prediction interval for a new measurement).
    level
        Coverage of every band.
    """

    group: str
    n_observed: int
    ranef_mean: pd.Series
    ranef_cov: pd.DataFrame
    ranef_prior_sd: pd.Series
    table: pd.DataFrame
    level: float

    @property
    def learned(self) -> pd.Series:
        """``1 - posterior variance / prior variance`` of each random effect: 0 with no
        visits (the model relies on the population), near 1 when the visits pin it down."""
        prior = self.ranef_prior_sd**2
        post = pd.Series(np.diag(self.ranef_cov.to_numpy()), index=prior.index)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1.0 - post / prior
        return out.where(prior > 0, 0.0)


def _subject_parts(
    result: LMMResult, frame: pd.DataFrame, terms: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Z, offset)`` on ``frame``: ``Z`` stacks the subject's terms (always treated as
    new), ``offset`` holds the conditional modes of other terms whose level is known."""
    design = result.design
    frame = _with_groups(result, frame)
    X = design.fixed_matrix(frame)
    offset = np.zeros(len(frame))
    zs = []
    for k in range(len(result.reterms)):
        codes, z = design.random_matrix(k, frame)
        if k in terms:
            zs.append(z)
            continue
        known = codes >= 0
        offset[known] += np.einsum("is,is->i", z[known], result.b[k][codes[known]])
    return X, np.hstack(zs), offset


def new_subject_forecast(
    result: LMMResult,
    observed: pd.DataFrame,
    future: pd.DataFrame,
    level: float = 0.95,
    group: str | None = None,
) -> SubjectForecast:
    """Forecast a new subject's later visits from its first visits, without refitting.

    With ``G`` the fitted covariance of the subject's random effects, ``Z_o, X_o`` the
    subject's observed rows and ``V_o = Z_o G Z_o' + sigma^2 I``,

        b | y_obs ~ N(m_b, C_b),   m_b = K r,   C_b = G - K Z_o G,
        K = G Z_o' V_o^{-1},       r = y_obs - X_o beta_hat - offset_o,

    the BLUP formula given ``beta`` and ``theta`` (exactly lme4's conditional mode for a
    subject in a single-factor fit). The forecast at a future row ``(x, z)`` is
    ``x' beta_hat + offset + z' m_b``. Written as ``a' beta_hat + z' K (y_obs - offset_o)``
    with ``a = x - X_o' K' z``, its three nested bands are

    1. fixed-effect uncertainty: ``se_fixed^2 = a' V_beta a``. This includes the first-order
       term: ``m_b`` itself depends on ``beta_hat``. A new subject is not in the fit, so its
       visits are independent of ``beta_hat`` and no covariance term arises;
    2. + random-effect uncertainty given the visits: ``se_mean^2 = se_fixed^2 + z' C_b z``;
    3. + residual: ``se_total^2 = se_mean^2 + sigma^2``.

    With no observed visits ``C_b = G`` and ``m_b = 0``: the population prediction with the
    between-subject band. Each visit shrinks ``C_b``, so the bands narrow.

    Nested and crossed models: only the terms of ``group`` (the subject) are treated as
    random for the new subject. Other terms (e.g. ``(1 | hospital)``) enter at their
    conditional modes when the subject's level of that factor is in the fit and at 0
    otherwise; their uncertainty is not propagated. The variance parameters are treated as
    known; intervals use normal quantiles.

    Parameters
    ----------
    result
        A fitted model.
    observed
        The subject's observed visits: the covariates of the fixed and random parts and the
        response column. Rows with a missing response or covariate are skipped; zero rows
        are allowed.
    future
        Rows to forecast (covariates only).
    level
        Coverage of the bands.
    group
        Grouping factor of the subject; by default the one with the most levels.

    Returns
    -------
    SubjectForecast
    """
    q = _quantile(level)
    groups = [t.group for t in result.reterms]
    group = group if group is not None else max(result.ngroups, key=result.ngroups.get)
    if group not in groups:
        raise DataError(f"`{group}` is not a grouping factor of the model ({', '.join(groups)}).")
    terms = [k for k, g in enumerate(groups) if g == group]
    covs = result.covariance_matrices()
    G = linalg.block_diag(*[covs[k] for k in terms])
    names = [f"{c}" for k in terms for c in result.reterms[k].cnames]
    s2 = result.sigma**2
    beta, vbeta = result.beta, result.vcov_beta

    if len(observed):
        Xo, Zo, oo = _subject_parts(result, observed, terms)
        y = result.design.response_values(_with_groups(result, observed))
        ok = np.isfinite(y) & np.isfinite(Xo).all(axis=1) & np.isfinite(Zo).all(axis=1)
        Xo, Zo, oo, y = Xo[ok], Zo[ok], oo[ok], y[ok]
    else:
        Xo, Zo = np.zeros((0, len(beta))), np.zeros((0, G.shape[0]))
        oo, y = np.zeros(0), np.zeros(0)
    m = len(y)
    if m:
        Vo = Zo @ G @ Zo.T + s2 * np.eye(m)
        K = linalg.solve(Vo, Zo @ G, assume_a="pos").T  # G Z' V^-1 (G symmetric)
    else:
        K = np.zeros((G.shape[0], 0))
    mean_b = K @ (y - Xo @ beta - oo)
    cov_b = G - K @ Zo @ G
    cov_b = (cov_b + cov_b.T) / 2.0

    Xf, Zf, of = _subject_parts(result, future, terms)
    population = Xf @ beta + of
    fit = population + Zf @ mean_b
    A = Xf - Zf @ K @ Xo
    var_fixed = np.einsum("ip,pq,iq->i", A, vbeta, A)
    var_mean = var_fixed + np.einsum("is,st,it->i", Zf, cov_b, Zf)
    se_pop = np.sqrt(np.einsum("ip,pq,iq->i", Xf, vbeta, Xf))
    se = {
        "fixed": np.sqrt(var_fixed),
        "mean": np.sqrt(var_mean),
        "total": np.sqrt(var_mean + s2),
    }
    table = pd.DataFrame(
        {
            "fit": fit,
            "population": population,
            "population_lower": population - q * se_pop,
            "population_upper": population + q * se_pop,
        },
        index=future.index,
    )
    for band, s in se.items():
        table[f"se_{band}"] = s
        table[f"lower_{band}"] = fit - q * s
        table[f"upper_{band}"] = fit + q * s
    return SubjectForecast(
        group=group,
        n_observed=m,
        ranef_mean=pd.Series(mean_b, index=names),
        ranef_cov=pd.DataFrame(cov_b, index=names, columns=names),
        ranef_prior_sd=pd.Series(np.sqrt(np.diag(G)), index=names),
        table=table,
        level=level,
    )
