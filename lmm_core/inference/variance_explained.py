"""Intra-class correlations and Nakagawa-Schielzeth R-squared of a fit.

Notation: ``sigma^2`` the residual variance; for random-effects term ``k`` with columns
``z_k`` (``"(Intercept)"``, ``"Days"``, ...) ``Sigma_k = sigma^2 lambda_k lambda_k'`` the
covariance matrix of its random effects; ``X beta_hat`` the fixed-effects prediction.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError
from lmm_core.model.results import LMMResult

INTERCEPT = "(Intercept)"


class R2(NamedTuple):
    """Marginal and conditional R-squared."""

    marginal: float
    conditional: float


def _is_intercept_only(term) -> bool:
    return tuple(term.cnames) == (INTERCEPT,)


def _nested_in(inner, outer) -> bool:
    """Whether every level of ``inner`` lies within a single level of ``outer``."""
    pairs = np.unique(inner.codes.astype(np.int64) * outer.n_levels + outer.codes)
    return pairs.size == np.unique(inner.codes).size


def icc(result: LMMResult) -> pd.DataFrame:
    """Intra-class correlations of a random-intercept model, one row per grouping factor.

    With intercept variances ``tau_g^2`` and total ``V = sum_g tau_g^2 + sigma^2``:

    * ``icc = tau_g^2 / V``, the share of the variance at level ``g`` (performance's
      ``icc(by_group = TRUE)``; with one grouping factor the classic
      ``tau^2 / (tau^2 + sigma^2)``);
    * ``correlation = sum_{h >= g} tau_h^2 / V``, the correlation of two observations in the
      same level of ``g``: the sum runs over ``g`` and every factor that ``g`` is nested in
      (two pupils of one class also share the school). For a single or crossed factor the two
      columns agree.

    Parameters
    ----------
    result
        A fit whose random-effects terms are all random intercepts ``(1 | g)``.

    Returns
    -------
    pd.DataFrame
        Index ``group`` (lme4 names, e.g. ``"cask:batch"``); columns ``variance``, ``icc``,
        ``correlation``. ``attrs["adjusted"]`` is ``sum_g tau_g^2 / V`` (performance's
        "adjusted ICC").

    Raises
    ------
    ModelError
        If a term has a random slope: the ICC then depends on the covariates
        (use :func:`icc_curve`).
    """
    terms = result.reterms
    slopes = [t.group for t in terms if not _is_intercept_only(t)]
    if slopes:
        raise ModelError(
            f"The random effects of {', '.join(dict.fromkeys(slopes))} include slopes, so "
            "the intra-class correlation changes with the covariate: use icc_curve."
        )
    tau2 = np.array([c[0, 0] for c in result.covariance_matrices()])
    total = float(tau2.sum() + result.sigma**2)
    corr = [
        sum(tau2[h] for h, outer in enumerate(terms) if h == k or _nested_in(inner, outer)) / total
        for k, inner in enumerate(terms)
    ]
    out = pd.DataFrame(
        {"variance": tau2, "icc": tau2 / total, "correlation": corr},
        index=pd.Index([t.group for t in terms], name="group"),
    )
    out.attrs["adjusted"] = float(tau2.sum() / total)
    out.attrs["residual_variance"] = float(result.sigma**2)
    return out


def icc_curve(result: LMMResult, term_group: str, times, time: str | None = None) -> pd.DataFrame:
    """The model-implied intra-class correlation of ``term_group`` as a function of time.

    For the random effects ``b_g`` of group ``g`` with columns ``(1, t)`` and covariance
    ``Sigma_g``, at time ``t``::

        between(t) = Var(b0 + b1 t) = Sigma_00 + 2 t Sigma_01 + t^2 Sigma_11
        total(t)   = sum over all terms k of z_k(t)' Sigma_k z_k(t) + sigma^2
        icc(t)     = between(t) / total(t)

    With ``g`` the only grouping factor this is ``between / (between + sigma^2)``: the
    correlation of two measurements of one subject at time ``t``, and the share of the
    variance at ``t`` that lies between subjects. A ``(t || g)`` model contributes its two
    uncorrelated terms; other terms count in ``total`` through their intercept and ``t``
    columns. At ``t = 0`` the curve is the intercept-only ICC ``Sigma_00 / (Sigma_00 +
    sigma^2)``.

    Parameters
    ----------
    result
        The fit.
    term_group
        Group name (``"Subject"``).
    times
        Values of the time covariate.
    time
        Name of the time column of the random effects; by default the one non-intercept
        column of ``term_group``'s terms.

    Returns
    -------
    pd.DataFrame
        Columns ``time``, ``between_variance``, ``total_variance``, ``icc``.

    Raises
    ------
    ModelError
        If ``term_group`` is not a grouping factor, or a random-effects column is neither
        the intercept nor the time column.
    """
    terms = result.reterms
    mine = [k for k, t in enumerate(terms) if t.group == term_group]
    if not mine:
        groups = ", ".join(dict.fromkeys(t.group for t in terms))
        raise ModelError(f"`{term_group}` is not a grouping factor of the model ({groups}).")
    if time is None:
        slopes = {c for k in mine for c in terms[k].cnames if c != INTERCEPT}
        if len(slopes) > 1:
            raise ModelError(
                f"{term_group} has several random slopes ({', '.join(sorted(slopes))}): "
                "name the time column."
            )
        time = slopes.pop() if slopes else None
    t = np.atleast_1d(np.asarray(times, float))
    between = np.zeros_like(t)
    total = np.full_like(t, result.sigma**2)
    for k, (term, cov) in enumerate(zip(terms, result.covariance_matrices(), strict=True)):
        z = np.empty((t.size, term.n_columns))
        for j, name in enumerate(term.cnames):
            if name == INTERCEPT:
                z[:, j] = 1.0
            elif name == time:
                z[:, j] = t
            else:
                raise ModelError(
                    f"The random effects of {term.group} include `{name}`, which is neither "
                    f"the intercept nor the time column `{time}`: the ICC would depend on it."
                )
        var = np.einsum("ti,ij,tj->t", z, cov, z)
        total += var
        if k in mine:
            between += var
    return pd.DataFrame(
        {"time": t, "between_variance": between, "total_variance": total, "icc": between / total}
    )


def variance_partition(result: LMMResult) -> dict[str, float]:
    """The three variances of Nakagawa & Schielzeth's R-squared (see :func:`r2_nakagawa`)."""
    fixed = result.design.X @ result.beta
    var_fixed = float(np.var(fixed, ddof=1)) if fixed.size > 1 else 0.0
    var_random = 0.0
    for term, cov in zip(result.reterms, result.covariance_matrices(), strict=True):
        var_random += float(np.einsum("ri,ij,rj->", term.z, cov, term.z)) / term.z.shape[0]
    return {"fixed": var_fixed, "random": var_random, "residual": float(result.sigma**2)}


def r2_nakagawa(result: LMMResult) -> R2:
    """Marginal and conditional R-squared (Nakagawa & Schielzeth 2013; Johnson 2014).

    ::

        sigma_f^2 = var(X beta_hat)                       (sample variance, n - 1)
        sigma_r^2 = sum_k (1/n) sum_rows z_kr' Sigma_k z_kr
        R2_marginal    = sigma_f^2 / (sigma_f^2 + sigma_r^2 + sigma^2)
        R2_conditional = (sigma_f^2 + sigma_r^2) / (sigma_f^2 + sigma_r^2 + sigma^2)

    ``sigma_r^2`` is Johnson's extension to random slopes: the variance the random effects
    add to an observation, ``z' Sigma_k z``, averaged over the rows of the fit (for a random
    intercept it is just ``tau^2``). This is what R's ``performance::r2_nakagawa`` and
    ``MuMIn::r.squaredGLMM`` compute for a linear mixed model.

    Returns
    -------
    R2
        ``(marginal, conditional)``; the components are :func:`variance_partition`.
    """
    parts = variance_partition(result)
    total = parts["fixed"] + parts["random"] + parts["residual"]
    return R2(parts["fixed"] / total, (parts["fixed"] + parts["random"]) / total)
