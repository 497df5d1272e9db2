"""Simulation lab: data from a known truth, the fit, and truth next to estimate.

The lab's model is the random intercept and slope model of a longitudinal study,

.. math::

    y_{ij} = (\\beta_0 + u_{0i}) + (\\beta_1 + u_{1i}) t_{ij} + e_{ij},
    \\qquad (u_{0i}, u_{1i})' \\sim N(0, \\Sigma), \\quad e_{ij} \\sim N(0, \\sigma^2),

for subject ``i = 1..m`` at visit ``j`` with time ``t_ij = j`` (visits ``0 .. n - 1``, one
time unit apart), where ``Sigma`` has standard deviations ``tau_0`` (intercept), ``tau_1``
(slope) and correlation ``rho``. Its lme4 formula is ``y ~ time + (time | subject)``.

Dropout is monotone and completely at random: the baseline visit (``t = 0``) is always seen;
before each later visit a subject still in the study leaves with probability ``d``, and is
not seen again. A subject is therefore seen at ``k`` visits with probability
``(1 - d)^(k - 1) d`` (``k < n``), and at all ``n`` with probability ``(1 - d)^(n - 1)``.

:func:`simulate_lab` draws one study, :func:`fit_lab` fits it with :func:`lmm_core.fit_lmm`
(REML), :func:`recovery_table` puts every parameter's truth next to its estimate and
interval, and :func:`slope_shrinkage` compares each subject's own least-squares slope, its
mixed-model slope (BLUP) and its true slope. Repeating the study many times is in
:mod:`lmm_core.simulation.teaching_repeat`. numpy, scipy and pandas only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.errors import DataError
from lmm_core.inference.profile import profile_confint
from lmm_core.model.fit import FitOptions, fit_lmm
from lmm_core.model.results import LMMResult
from lmm_core.model.simulate import theta_from_covariances
from lmm_core.predict.per_group import shrinkage_estimates

__all__ = [
    "FORMULA",
    "PARAMETERS",
    "LabData",
    "LabTruth",
    "estimates",
    "expected_slope_weight",
    "fit_lab",
    "recovery_table",
    "shrinkage_summary",
    "simulate_lab",
    "slope_shrinkage",
]

FORMULA = "y ~ time + (time | subject)"

#: key -> plain label, in display order (fixed effects, random-effect SDs, correlation, sigma)
PARAMETERS: dict[str, str] = {
    "intercept": "Population intercept β₀",
    "slope": "Population slope β₁",
    "sd_intercept": "SD of subject intercepts τ₀",
    "sd_slope": "SD of subject slopes τ₁",
    "corr": "Correlation intercept–slope ρ",
    "sigma": "Residual SD σ",
}

#: the same parameters as lmm_core names them (fixed effects; profile_confint rows)
_ENGINE_NAMES: dict[str, str] = {
    "intercept": "(Intercept)",
    "slope": "time",
    "sd_intercept": "sd_(Intercept)|subject",
    "sd_slope": "sd_time|subject",
    "corr": "cor_time.(Intercept)|subject",
    "sigma": "sigma",
}

MAX_SUBJECTS = 5000
MAX_VISITS = 100


@dataclass(frozen=True)
class LabTruth:
    """The true parameters and the design of a simulated study.

    Parameters
    ----------
    intercept, slope
        Population intercept ``beta_0`` (mean outcome at time 0) and slope ``beta_1``
        (mean change per time unit).
    sd_intercept, sd_slope
        Between-subject standard deviations ``tau_0`` and ``tau_1`` of the subject
        intercepts and slopes (``>= 0``).
    corr
        Correlation ``rho`` of a subject's intercept and slope, in ``[-1, 1]``.
    sigma
        Residual standard deviation (``> 0``): visit-to-visit noise around a subject's line.
    n_subjects
        Number of subjects ``m`` (3 to 5,000).
    n_visits
        Planned visits per subject ``n`` at times ``0 .. n - 1`` (3 to 100).
    dropout
        Probability ``d`` in ``[0, 1)`` that a subject still in the study leaves before each
        post-baseline visit.

    Raises
    ------
    lmm_core.DataError
        When a value is outside its range (the message says which and why).
    """

    intercept: float = 50.0
    slope: float = 2.0
    sd_intercept: float = 3.0
    sd_slope: float = 2.0
    corr: float = -0.4
    sigma: float = 4.0
    n_subjects: int = 30
    n_visits: int = 6
    dropout: float = 0.05

    def __post_init__(self) -> None:
        values = [self.intercept, self.slope, self.sd_intercept, self.sd_slope, self.corr]
        values += [self.sigma, self.dropout]
        if not all(math.isfinite(float(v)) for v in values):
            raise DataError("Every parameter of the truth must be a finite number.")
        if self.sd_intercept < 0 or self.sd_slope < 0:
            raise DataError("Standard deviations cannot be negative.")
        if self.sigma <= 0:
            raise DataError(
                "The residual SD must be above 0: without measurement noise the model cannot "
                "separate the subjects' lines from the noise around them."
            )
        if not -1.0 <= self.corr <= 1.0:
            raise DataError("A correlation lies between -1 and 1.")
        if not 3 <= int(self.n_subjects) <= MAX_SUBJECTS:
            raise DataError(f"Choose between 3 and {MAX_SUBJECTS:,} subjects.")
        if not 3 <= int(self.n_visits) <= MAX_VISITS:
            raise DataError(
                f"Choose between 3 and {MAX_VISITS} visits: with two visits per subject an "
                "own intercept and slope fit every subject's data exactly, leaving nothing to "
                "tell the slope variation from the noise."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise DataError("The dropout probability per visit must be at least 0 and below 1.")

    @property
    def cov(self) -> np.ndarray:
        """``Sigma``: the 2 x 2 covariance matrix of ``(u_0i, u_1i)``."""
        c = self.corr * self.sd_intercept * self.sd_slope
        return np.array([[self.sd_intercept**2, c], [c, self.sd_slope**2]])

    @property
    def values(self) -> dict[str, float]:
        """The true value of every parameter in :data:`PARAMETERS`."""
        return {key: float(getattr(self, key)) for key in PARAMETERS}

    def expected_visits(self) -> float:
        """Expected visits per subject: ``sum_{k=0}^{n-1} (1 - d)^k``."""
        return float(sum((1.0 - self.dropout) ** k for k in range(int(self.n_visits))))


@dataclass(frozen=True)
class LabData:
    """One simulated study.

    Attributes
    ----------
    data
        One row per observed visit: ``subject`` (Categorical ``S001, S002, ...``), ``visit``
        (int), ``time`` (float, equal to the visit number) and ``y``.
    subjects
        One row per subject (index: subject): ``n`` (visits seen), ``intercept`` and
        ``slope`` (the subject's true line, ``beta + u_i``).
    truth
        The parameters used.
    """

    data: pd.DataFrame
    subjects: pd.DataFrame
    truth: LabTruth


def simulate_lab(truth: LabTruth, seed: int | np.random.SeedSequence | None = 0) -> LabData:
    """Draw one study from the model in the module docstring.

    Draw order (part of the reproducibility contract): the subjects' random effects
    ``u_i = L z_i`` with ``L L' = Sigma`` (``z_i`` standard normal; a zero SD or
    ``|rho| = 1`` is handled), then the dropout, then the residuals.

    Parameters
    ----------
    truth
        Parameters and design.
    seed
        Seed (or seed sequence) of ``numpy.random.default_rng``: the same seed gives the same
        study.

    Returns
    -------
    LabData
    """
    rng = np.random.default_rng(seed)
    m, n = int(truth.n_subjects), int(truth.n_visits)
    chol = truth.sigma * _lower_factor(truth)
    u = rng.standard_normal((m, 2)) @ chol.T
    if truth.dropout > 0:
        leaves = rng.random((m, n - 1)) < truth.dropout
        seen = np.where(leaves.any(axis=1), leaves.argmax(axis=1) + 1, n)
    else:
        seen = np.full(m, n)
    subject = np.repeat(np.arange(m), seen)
    visit = np.arange(len(subject)) - np.repeat(np.cumsum(seen) - seen, seen)
    time = visit.astype(float)
    y = (truth.intercept + u[subject, 0]) + (truth.slope + u[subject, 1]) * time
    y = y + truth.sigma * rng.standard_normal(len(subject))
    labels = _subject_labels(m)
    data = pd.DataFrame(
        {
            "subject": pd.Categorical.from_codes(subject, dtype=_subject_dtype(m), validate=False),
            "visit": visit,
            "time": time,
            "y": y,
        }
    )
    subjects = pd.DataFrame(
        {"n": seen, "intercept": truth.intercept + u[:, 0], "slope": truth.slope + u[:, 1]},
        index=labels,
    )
    return LabData(data, subjects, truth)


@functools.cache
def _subject_labels(m: int) -> pd.Index:
    """``S001, S002, ...`` (zero-padded to the width of ``m``, at least three digits)."""
    width = max(3, len(str(m)))
    return pd.Index([f"S{k:0{width}d}" for k in range(1, m + 1)], name="subject")


@functools.cache
def _subject_dtype(m: int) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(_subject_labels(m))


def _lower_factor(truth: LabTruth) -> np.ndarray:
    """``Lambda`` with ``sigma^2 Lambda Lambda' = Sigma`` (as lmm_core's ``theta``)."""
    lo = theta_from_covariances([truth.cov], truth.sigma)
    return np.array([[lo[0], 0.0], [lo[1], lo[2]]])


def fit_lab(lab: LabData | pd.DataFrame, options: FitOptions | None = None) -> LMMResult:
    """Fit ``y ~ time + (time | subject)`` by REML with :func:`lmm_core.fit_lmm`."""
    data = lab.data if isinstance(lab, LabData) else lab
    return fit_lmm(FORMULA, data, reml=True, options=options)


def estimates(result: LMMResult) -> dict[str, float]:
    """The fit's estimate of every parameter in :data:`PARAMETERS`.

    The SDs and the correlation come from ``Sigma_hat = sigma_hat^2 Lambda Lambda'``; with a
    zero SD the correlation is undefined (NaN).
    """
    cov = result.covariance_matrices()[0]
    sd0, sd1 = np.sqrt(np.diag(cov))
    corr = cov[1, 0] / (sd0 * sd1) if sd0 * sd1 > 0 else math.nan
    return {
        "intercept": float(result.beta[0]),
        "slope": float(result.beta[1]),
        "sd_intercept": float(sd0),
        "sd_slope": float(sd1),
        "corr": float(corr),
        "sigma": float(result.sigma),
    }


def recovery_table(
    result: LMMResult, truth: LabTruth, *, level: float = 0.95, profile: bool = True
) -> pd.DataFrame:
    """Every parameter's truth, estimate and confidence interval.

    Fixed effects: ``beta_hat +/- t_{df, (1 + level)/2} SE`` with Satterthwaite's ``df``
    (:meth:`LMMResult.fixef_table`). SDs, correlation and ``sigma``: likelihood-profile
    intervals (:func:`lmm_core.profile_confint`; they surround the ML estimates, as lme4's)
    when ``profile`` is true, else no interval (NaN).

    Returns
    -------
    pandas.DataFrame
        Index: the keys of :data:`PARAMETERS`. Columns ``parameter`` (label), ``truth``,
        ``estimate``, ``lower``, ``upper``, ``interval`` (how it was computed) and
        ``covered`` (1.0 if the truth is inside, 0.0 if not, NaN without an interval).
    """
    est = estimates(result)
    table = pd.DataFrame(
        {
            "parameter": list(PARAMETERS.values()),
            "truth": list(truth.values.values()),
            "estimate": [est[k] for k in PARAMETERS],
            "lower": math.nan,
            "upper": math.nan,
            "interval": "none",
        },
        index=pd.Index(list(PARAMETERS), name="key"),
    )
    fixef = result.fixef_table("satterthwaite", level=level)
    for key in ("intercept", "slope"):
        row = fixef.loc[_ENGINE_NAMES[key]]
        table.loc[key, ["lower", "upper"]] = [row["ci_lower"], row["ci_upper"]]
        table.loc[key, "interval"] = "Satterthwaite t"
    if profile:
        variance_keys = ["sd_intercept", "sd_slope", "corr", "sigma"]
        try:
            with np.errstate(divide="ignore", invalid="ignore"):  # a correlation at +/-1
                ci = profile_confint(
                    result, level=level, which=[_ENGINE_NAMES[k] for k in variance_keys]
                )
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            ci = None
        for key in variance_keys if ci is not None else []:
            name = _ENGINE_NAMES[key]
            if name in ci.index:
                table.loc[key, ["lower", "upper"]] = ci.loc[name, ["lower", "upper"]].to_numpy()
                table.loc[key, "interval"] = "profile likelihood"
    inside = (table["lower"] <= table["truth"]) & (table["truth"] <= table["upper"])
    table["covered"] = inside.astype(float).where(table["lower"].notna())
    return table


def slope_shrinkage(result: LMMResult, lab: LabData) -> pd.DataFrame:
    """Each subject's own slope, mixed-model slope and true slope.

    Uses :func:`lmm_core.predict.per_group.shrinkage_estimates`: ``own`` is the least-squares
    slope of the subject's data alone, ``mixed`` is ``beta_1_hat + b_1i`` (with the BLUP
    ``b_1i``; for this model it equals per_group's projected mixed-model slope wherever that
    exists),
    ``population`` is ``beta_1_hat`` and ``factor = (mixed - population) / (own -
    population)`` is the share of its own deviation from the population that the model
    keeps.

    Returns
    -------
    pandas.DataFrame
        One row per subject (index: subject): ``n``, ``own``, ``mixed``, ``truth``,
        ``population``, ``factor``; ``own`` and ``factor`` are NaN for a subject seen at one
        visit only (no own slope).
    """
    est = shrinkage_estimates(result, "subject").table
    pop = float(result.beta[1])
    own = est["own:time"].to_numpy()
    mixed = pop + est["blup:time"].to_numpy()  # exact here: the fixed part is in z's span
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
