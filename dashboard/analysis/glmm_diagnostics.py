"""Diagnostics of a GLMM (binomial or Poisson mixed model), in numbers and plain words. No
Streamlit.

The checks are those of :mod:`lmm_core.predict.glmm_residuals`, applied to a fit's rows with
the *conditional* means ``mu_i = g^-1(eta_i)`` (given the patients' predicted random effects):

- **binned residuals** (binomial): rows sorted by ``mu`` and cut into bins; the mean of
  ``y_i / n_i - mu_i`` in bin ``B`` has standard error ``sqrt(sum_B n_i mu_i (1 - mu_i)) /
  (|B| n)`` under the model (``n_i`` trials), so about 95% of bins lie within 2 SE;
- **randomized quantile residuals** ``Phi^-1(u_i)``, ``u_i ~ U[F_i(y_i - 1), F_i(y_i)]``:
  exactly standard normal under the model, random (a seed fixes them);
- **overdispersion** (Poisson, or binomial with more than one trial): Pearson's
  ``X^2 = sum (y_i - E y_i)^2 / Var y_i`` on ``n - k`` degrees of freedom (``k`` = the
  model's parameters), its ratio and upper-tail p-value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.base.numbers import fmt
from lmm_core import GLMMResult
from lmm_core.predict.glmm_residuals import (
    Overdispersion,
    binned_residuals,
    overdispersion,
    quantile_residuals,
)

__all__ = [
    "GLMMOutcome",
    "binned_sentence",
    "binned_table",
    "dispersion",
    "dispersion_verdict",
    "glmm_outcome",
    "quantile_table",
]

#: a dispersion ratio above this (with p < 0.05) is called overdispersion in words
RATIO_HIGH = 1.2
#: and below this underdispersion
RATIO_LOW = 0.8


@dataclass(frozen=True)
class GLMMOutcome:
    """A GLMM's outcome on its rows, as the residual functions take it.

    Attributes
    ----------
    family
        ``"binomial"`` or ``"poisson"``.
    y
        Successes (binomial) or counts (Poisson).
    trials
        Binomial trials per row (``None`` for Poisson).
    mu
        Conditional fitted means: probabilities (binomial) or expected counts (Poisson).
    """

    family: str
    y: np.ndarray
    trials: np.ndarray | None
    mu: np.ndarray

    @property
    def binary(self) -> bool:
        """A binomial outcome with one trial per row (0/1)."""
        return self.family == "binomial" and bool(np.all(self.trials == 1))


def glmm_outcome(result: GLMMResult) -> GLMMOutcome:
    """:class:`GLMMOutcome` of a fit (successes = proportion x trials for a binomial)."""
    family = result.family.name
    mu = np.asarray(result.fitted, float)
    if family == "binomial":
        trials = np.asarray(result.data.weights, float)
        return GLMMOutcome(family, np.round(np.asarray(result.y, float) * trials), trials, mu)
    return GLMMOutcome(family, np.asarray(result.y, float), None, mu)


def binned_table(outcome: GLMMOutcome, n_bins: int | None = None) -> pd.DataFrame:
    """:func:`lmm_core.predict.glmm_residuals.binned_residuals` of the outcome: one row per
    bin with ``fitted``, ``residual``, ``se``, ``n`` and ``outside``."""
    return binned_residuals(outcome.y, outcome.mu, outcome.family, outcome.trials, n_bins)


def binned_sentence(table: pd.DataFrame) -> str:
    """How many bins lie outside the 2-SE band, against the about 5% expected by chance."""
    k, m = int(table["outside"].sum()), len(table)
    expected = 0.05 * m
    share = f"{k} of {m} bins ({100 * k / m:.0f}%) lie outside the 2-SE band"
    if k <= max(1.0, 2 * expected):
        return (
            f"{share}; about {fmt(expected, 2)} would by chance (5%): no sign that the fitted "
            "probabilities are off."
        )
    return (
        f"{share}, where about {fmt(expected, 2)} would by chance (5%). With random effects per "
        "subject, shrinkage alone tilts the points (below 0 at low fitted probabilities, "
        "above 0 at high ones) even when the model is right; a curve or a run of bins away "
        "from that tilt says the model misses something (a curve in time, an interaction, "
        "a covariate)."
    )


def quantile_table(outcome: GLMMOutcome, seed: int) -> pd.DataFrame:
    """Randomized quantile residuals (``residual``) beside the fitted means (``fitted``)."""
    r = quantile_residuals(outcome.y, outcome.mu, outcome.family, outcome.trials, seed=seed)
    return pd.DataFrame({"fitted": outcome.mu, "residual": r})


def dispersion(result: GLMMResult, outcome: GLMMOutcome) -> Overdispersion | None:
    """Pearson's dispersion check (``k = result.npar``), or ``None`` for a 0/1 outcome (whose
    variance is fixed by its mean: no dispersion to check)."""
    if outcome.family == "binomial" and outcome.binary:
        return None
    return overdispersion(outcome.y, outcome.mu, result.npar, outcome.family, outcome.trials)


def dispersion_verdict(check: Overdispersion) -> str:
    """The dispersion check in words."""
    head = f"Pearson chi-square {fmt(check.chi2)} on {check.df:,} df: ratio {fmt(check.ratio, 3)}"
    p = f"p = {check.p_value:.3g}" if check.p_value >= 1e-4 else "p < 0.0001"
    if check.ratio > RATIO_HIGH and check.p_value < 0.05:
        return (
            f"{head} ({p}). Overdispersion: the counts vary more than the model allows, so "
            "its standard errors are too small. Consider an observation-level random effect "
            "(1 | row id) or a missing covariate or random slope."
        )
    if check.ratio < RATIO_LOW:
        return (
            f"{head} ({p}). No overdispersion; the counts vary less around the fitted means "
            "than the model allows, which is common with random effects per patient (their "
            "predicted values absorb part of the spread) and no threat to the tests."
        )
    return f"{head} ({p}). No overdispersion: the spread of the counts is what the model expects."
