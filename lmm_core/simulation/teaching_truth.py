"""Simulation lab, the truth: the parameters and design a study is drawn from.

The lab's model is the random intercept and slope model of a longitudinal study, with a
population curve that may bend,

.. math::

    y_{ij} = (\\beta_0 + u_{0i}) + (\\beta_1 + u_{1i}) t_{ij}
    + \\kappa \\frac{4 t_{ij} (T - t_{ij})}{T^2} + e_{ij},
    \\qquad (u_{0i}, u_{1i})' \\sim N(0, \\Sigma), \\quad e_{ij} \\sim N(0, \\sigma^2),

for subject ``i = 1..m`` at visit ``j`` with time ``t_ij = j`` (visits ``0 .. n - 1``, one
time unit apart, the last at ``T = n - 1``), where ``Sigma`` has standard deviations ``tau_0``
(intercept), ``tau_1`` (slope) and correlation ``rho``. The **curvature** ``kappa`` is the
bend at mid-study: the population curve ``f(t) = beta_0 + beta_1 t + kappa 4 t (T - t) / T^2``
lies ``kappa`` above the straight line joining its start ``f(0)`` and its end ``f(T)`` at
``t = T / 2`` (a quadratic; ``kappa > 0``: growth that slows down, ``kappa < 0``: growth that
speeds up). The bend is zero at both ends, so ``beta_0`` stays the mean at time 0 and
``beta_1`` the **average slope** over the study, ``(f(T) - f(0)) / T``; ``kappa = 0`` gives
straight lines (and, for a seed, exactly the data of the straight-line lab). The curve itself
is :func:`lmm_core.simulation.teaching_curves.population_mean`.

Dropout is monotone and completely at random: the baseline visit (``t = 0``) is always seen;
before each later visit a subject still in the study leaves with probability ``d``, and is
not seen again. A subject is therefore seen at ``k`` visits with probability
``(1 - d)^(k - 1) d`` (``k < n``), and at all ``n`` with probability ``(1 - d)^(n - 1)``.

The record :class:`LabTruth` also names the shape of time fitted to the study (:data:`SHAPES`),
so that one value names a whole simulation scenario.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lmm_core.errors import DataError

__all__ = [
    "CURVATURE_LABEL",
    "MAX_SUBJECTS",
    "MAX_VISITS",
    "PARAMETERS",
    "SHAPES",
    "LabTruth",
]

#: shape of time in the fixed part, by its degrees of freedom: (name, term of the formula)
SHAPES: dict[int, tuple[str, str]] = {
    1: ("straight line", "time"),
    2: ("quadratic", "poly(time, 2)"),
    3: ("natural spline", "ns(time, 3)"),
}

#: key -> plain label, in display order (fixed effects, random-effect SDs, correlation, sigma)
PARAMETERS: dict[str, str] = {
    "intercept": "Population intercept β₀",
    "slope": "Population slope β₁",
    "sd_intercept": "SD of subject intercepts τ₀",
    "sd_slope": "SD of subject slopes τ₁",
    "corr": "Correlation intercept–slope ρ",
    "sigma": "Residual SD σ",
}
#: label of the bend at mid-study, a parameter of the recovery table when the lab is curved
CURVATURE_LABEL = "Curvature κ (bend at mid-study)"

MAX_SUBJECTS = 5000
MAX_VISITS = 100


@dataclass(frozen=True)
class LabTruth:
    """The true parameters, the design of a simulated study and the shape of time fitted.

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
    curvature
        The bend ``kappa`` of the population curve at mid-study, in outcome units (0: a
        straight line; see the module docstring).
    time_df
        The model fitted to the study: degrees of freedom of time in its fixed part, a key of
        :data:`SHAPES` (1 straight line, 2 quadratic, 3 natural spline). Part of this
        record, next to the design, so that one value names a whole simulation scenario.

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
    curvature: float = 0.0
    time_df: int = 1

    def __post_init__(self) -> None:
        values = [self.intercept, self.slope, self.sd_intercept, self.sd_slope, self.corr]
        values += [self.sigma, self.dropout, self.curvature]
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
        if self.time_df not in SHAPES:
            raise DataError(
                "The shape of time is 1 (straight line), 2 (quadratic) or 3 (natural spline)."
            )

    @property
    def cov(self) -> np.ndarray:
        """``Sigma``: the 2 x 2 covariance matrix of ``(u_0i, u_1i)``."""
        c = self.corr * self.sd_intercept * self.sd_slope
        return np.array([[self.sd_intercept**2, c], [c, self.sd_slope**2]])

    @property
    def values(self) -> dict[str, float]:
        """The true value of every parameter in :data:`PARAMETERS`."""
        return {key: float(getattr(self, key)) for key in PARAMETERS}

    @property
    def span(self) -> float:
        """``T = n - 1``: the time of the last planned visit."""
        return float(int(self.n_visits) - 1)

    def expected_visits(self) -> float:
        """Expected visits per subject: ``sum_{k=0}^{n-1} (1 - d)^k``."""
        return float(sum((1.0 - self.dropout) ** k for k in range(int(self.n_visits))))
