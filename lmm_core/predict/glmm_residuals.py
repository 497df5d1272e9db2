"""Residuals and checks for binary and count outcomes (GLMM diagnostics).

Raw residuals ``y - mu`` of a binary outcome take two values at each fitted probability, so a
residual plot shows two bands and says nothing. Three tools work instead:

- **Binned residuals** (Gelman & Hill 2007, section 5.6; R's ``arm::binnedplot``): sort the
  rows by fitted mean, cut them into bins of about equal size, and plot the bin's average
  residual against its average fitted value. Under the model the average residual of bin
  ``B`` has mean 0 and standard error ``sqrt(sum_{i in B} v_i) / |B|`` with ``v_i`` the
  variance of ``y_i`` (``n_i mu_i (1 - mu_i)`` for a binomial with ``n_i`` trials, ``mu_i``
  for counts): about 95% of the bins should lie within two standard errors.
- **Randomized quantile residuals** (Dunn & Smyth 1996, J Comput Graph Stat 5:236): with
  ``F_i`` the model's distribution function of ``y_i``, draw ``u_i`` uniform on
  ``[F_i(y_i - 1), F_i(y_i)]`` and return ``r_i = Phi^-1(u_i)``. When the model is right the
  ``r_i`` are exactly standard normal (for discrete ``y`` too), so a normal QQ plot reads as
  for a linear model. They are random: a seed makes them reproducible.
- **Overdispersion** of counts: Pearson's ``X^2 = sum (y_i - mu_i)^2 / v_i`` over its residual
  degrees of freedom ``n - k`` (``k`` = parameters of the model: fixed effects and covariance
  parameters), with the upper-tail chi-square probability (Bolker's GLMM FAQ; the
  ``performance::check_overdispersion`` test). A ratio well above 1 means more variation than
  the Poisson family allows.

The means ``mu_i`` are the *conditional* ones (given the subjects' predicted random effects),
as for the residuals of a linear mixed model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "Overdispersion",
    "binned_residuals",
    "overdispersion",
    "quantile_residuals",
    "variance_function",
]

FAMILIES = ("binomial", "poisson")


def _family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    return family


def variance_function(family: str, mu: np.ndarray, trials: np.ndarray | None = None) -> np.ndarray:
    """Variance of ``y`` at mean ``mu``: ``n mu (1 - mu)`` (binomial counts of successes out of
    ``n`` trials, ``mu`` the probability) or ``mu`` (Poisson)."""
    mu = np.asarray(mu, float)
    if _family(family) == "poisson":
        return mu
    n = np.ones_like(mu) if trials is None else np.asarray(trials, float)
    return n * mu * (1.0 - mu)


def binned_residuals(
    y: np.ndarray,
    mu: np.ndarray,
    family: str = "binomial",
    trials: np.ndarray | None = None,
    n_bins: int | None = None,
) -> pd.DataFrame:
    """Average residuals in bins of the fitted mean, with their model-based 2-SE band.

    Parameters
    ----------
    y
        Outcomes: 0/1, successes out of ``trials``, or counts.
    mu
        Fitted means on the response scale (probabilities for a binomial).
    family
        ``"binomial"`` or ``"poisson"``.
    trials
        Binomial trials per row (1 when omitted).
    n_bins
        Number of bins; by default ``arm::binnedplot``'s rule: ``floor(sqrt(n))`` for
        ``n >= 100``, 10 for ``10 <= n < 100``, else ``floor(n / 2)``.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``fitted`` (mean of ``mu``; for a binomial with trials, of the
        expected proportion), ``residual`` (mean of the observed minus fitted proportion or
        count), ``se`` (``sqrt(sum v_i) / |B|`` on the same scale), ``n`` (rows) and
        ``outside`` (``|residual| > 2 se``).
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    n = len(y)
    if n_bins is None:
        n_bins = int(np.sqrt(n)) if n >= 100 else (10 if n >= 10 else max(n // 2, 1))
    k = np.ones(n) if trials is None else np.asarray(trials, float)
    scale = k if _family(family) == "binomial" else np.ones(n)
    resid = y / scale - mu
    var = variance_function(family, mu, trials) / scale**2
    order = np.argsort(mu, kind="stable")
    rows = []
    for idx in np.array_split(order, min(n_bins, n)):
        m = len(idx)
        se = float(np.sqrt(var[idx].sum()) / m)
        mean = float(resid[idx].mean())
        rows.append(
            {
                "fitted": float(mu[idx].mean()),
                "residual": mean,
                "se": se,
                "n": m,
                "outside": abs(mean) > 2.0 * se,
            }
        )
    return pd.DataFrame(rows)


def quantile_residuals(
    y: np.ndarray,
    mu: np.ndarray,
    family: str = "binomial",
    trials: np.ndarray | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """Randomized quantile residuals ``Phi^-1(u)``, ``u ~ U[F(y - 1), F(y)]`` (Dunn & Smyth).

    Parameters
    ----------
    y, mu, family, trials
        As :func:`binned_residuals`.
    seed
        Seed of the uniform draws (the same seed gives the same residuals).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` residuals, standard normal under the model.
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    if _family(family) == "poisson":
        dist = stats.poisson(mu)
    else:
        n = np.ones_like(mu) if trials is None else np.asarray(trials, float)
        dist = stats.binom(n, mu)
    low, high = dist.cdf(y - 1.0), dist.cdf(y)
    u = low + np.random.default_rng(seed).random(len(y)) * (high - low)
    tiny = np.finfo(float).tiny
    return stats.norm.ppf(np.clip(u, tiny, 1.0 - np.finfo(float).eps))


@dataclass(frozen=True)
class Overdispersion:
    """Pearson's check: ``chi2`` on ``df`` residual degrees of freedom, ``ratio = chi2 / df``
    and ``p_value`` (upper tail)."""

    chi2: float
    df: int
    ratio: float
    p_value: float


def overdispersion(
    y: np.ndarray,
    mu: np.ndarray,
    n_parameters: int,
    family: str = "poisson",
    trials: np.ndarray | None = None,
) -> Overdispersion:
    """Pearson ``X^2 / (n - k)`` with its chi-square p-value.

    Parameters
    ----------
    y, mu, family, trials
        As :func:`binned_residuals` (``mu`` conditional on the random effects).
    n_parameters
        ``k``: fixed effects plus covariance parameters of the model.
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    k = np.ones_like(mu) if trials is None or family == "poisson" else np.asarray(trials, float)
    expected = k * mu if family == "binomial" else mu
    chi2 = float(np.sum((y - expected) ** 2 / variance_function(family, mu, trials)))
    df = len(y) - int(n_parameters)
    if df <= 0:
        raise ValueError("more parameters than rows: no residual degrees of freedom")
    return Overdispersion(chi2, df, chi2 / df, float(stats.chi2.sf(chi2, df)))
