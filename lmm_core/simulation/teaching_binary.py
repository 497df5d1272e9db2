"""Simulation lab for a binary outcome: subject-specific and population-averaged effects.

The truth is a random-intercept logistic model,

.. math::

    \\operatorname{logit} P(y_{ij} = 1 \\mid b_i) = \\beta_0 + \\beta_1 x_{ij} + b_i,
    \\qquad b_i \\sim N(0, \\tau^2),

for subject ``i`` at visit ``j = 0 .. n - 1``, where ``x`` is either a **treatment** (every
other subject treated, ``x`` constant within a subject) or **time** (``x_ij = j``, the visit
number). ``beta_0 = logit(p_0)`` with ``p_0`` the probability of the *typical* subject
(``b = 0``) at ``x = 0`` and ``exp(beta_1)`` the odds ratio **within a subject**.

Averaging over subjects gives the population-averaged curve
``mu(x) = E_b[expit(beta_0 + beta_1 x + b)]``
(:func:`lmm_core.predict.population_average.population_average`), which is not logistic in
``x`` and is flatter than ``expit(beta_0 + beta_1 x)``. What an ordinary logistic regression
that ignores the subjects estimates in a very large study (its *target*) solves the score
equations ``sum_k n_k (mu(x_k) - expit(a + c x_k)) (1, x_k)' = 0`` over the design points
``x_k`` seen ``n_k`` times (:func:`marginal_target`); for a treatment it is exactly the
marginal log odds ratio ``logit mu(1) - logit mu(0)``. Its classical approximation is
``beta_1 / sqrt(1 + c^2 tau^2)`` with ``c = 16 sqrt(3) / (15 pi)`` (``c^2 = 0.346``; Zeger,
Liang & Albert 1988, Biometrics 44:1049).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.errors import DataError, ModelError
from lmm_core.glmm import GLMMResult, fit_glmm
from lmm_core.predict.population_average import population_average

__all__ = [
    "ATTENUATION_C2",
    "EFFECTS",
    "MAX_SUBJECTS",
    "MAX_VISITS",
    "MIN_SUBJECTS",
    "BinaryFits",
    "BinaryStudy",
    "BinaryTruth",
    "LogisticFit",
    "approximate_marginal",
    "expit",
    "fit_binary",
    "logistic_regression",
    "marginal_target",
    "simulate_binary",
    "true_curves",
]

#: the two kinds of effect: name -> column of x in the data
EFFECTS = {"treatment": "treated", "time": "visit"}
#: ``c^2`` of the attenuation approximation, ``(16 sqrt(3) / (15 pi))^2``
ATTENUATION_C2 = (16.0 * math.sqrt(3.0) / (15.0 * math.pi)) ** 2
MIN_SUBJECTS, MAX_SUBJECTS, MAX_VISITS, MAX_SD = 10, 20_000, 30, 10.0
MAX_ITER, TOL = 50, 1e-10


def expit(eta: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-eta))`` (stable for large ``|eta|``)."""
    eta = np.asarray(eta, float)
    return np.exp(-np.logaddexp(0.0, -eta))


@dataclass(frozen=True)
class BinaryTruth:
    """The true model and design (see the module docstring).

    Attributes
    ----------
    baseline
        ``p_0``: probability of the typical subject at ``x = 0``, in ``(0, 1)``.
    odds_ratio
        ``exp(beta_1)``: the within-subject odds ratio of treatment, or per visit.
    sd
        ``tau``: SD of the subject intercepts on the logit scale.
    n_subjects, n_visits
        Subjects and visits per subject.
    effect
        ``"treatment"`` or ``"time"``.
    """

    baseline: float = 0.3
    odds_ratio: float = 3.0
    sd: float = 2.0
    n_subjects: int = 200
    n_visits: int = 6
    effect: str = "treatment"

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise DataError(f"The effect must be 'treatment' or 'time', not {self.effect!r}.")
        if not 0.0 < self.baseline < 1.0:
            raise DataError(
                f"The baseline probability must be between 0 and 1 (exclusive), "
                f"not {self.baseline!r}."
            )
        if not self.odds_ratio > 0.0 or not math.isfinite(self.odds_ratio):
            raise DataError(f"The odds ratio must be positive, not {self.odds_ratio!r}.")
        if not 0.0 <= self.sd <= MAX_SD:
            raise DataError(
                f"The SD of the subjects must be from 0 to {MAX_SD:g} on the logit "
                f"scale, not {self.sd!r}."
            )
        if not MIN_SUBJECTS <= self.n_subjects <= MAX_SUBJECTS:
            raise DataError(
                f"A study needs from {MIN_SUBJECTS} to {MAX_SUBJECTS:,} subjects, not "
                f"{self.n_subjects}: with fewer, the SD of the subjects cannot be estimated "
                "(and a treatment needs subjects in both arms)."
            )
        if not 2 <= self.n_visits <= MAX_VISITS:
            raise DataError(
                f"Each subject needs from 2 to {MAX_VISITS} visits, not {self.n_visits}: with "
                "one visit per subject, subjects and noise cannot be told apart."
            )

    @property
    def beta0(self) -> float:
        """``logit(p_0)``."""
        return math.log(self.baseline / (1.0 - self.baseline))

    @property
    def beta1(self) -> float:
        """``log(odds ratio)``: the subject-specific (conditional) log odds ratio."""
        return math.log(self.odds_ratio)

    @property
    def column(self) -> str:
        """Column of ``x`` in the data: ``treated`` or ``visit``."""
        return EFFECTS[self.effect]

    @property
    def formula(self) -> str:
        """The fitted GLMM's formula."""
        return f"y ~ {self.column} + (1 | subject)"

    def design_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values ``x_k`` of ``x`` and how many rows have each."""
        if self.effect == "time":
            return np.arange(self.n_visits, dtype=float), np.full(self.n_visits, self.n_subjects)
        treated = self.n_subjects // 2
        return np.array([0.0, 1.0]), np.array([self.n_subjects - treated, treated]) * float(
            self.n_visits
        )

    def x_range(self) -> tuple[float, float]:
        """Smallest and largest ``x``."""
        return (0.0, 1.0) if self.effect == "treatment" else (0.0, float(self.n_visits - 1))


@dataclass(frozen=True)
class BinaryStudy:
    """One simulated study: the truth, the seed and the rows.

    ``data`` has columns ``subject``, ``visit``, ``treated``, ``y`` (0/1), ``b`` (the subject's
    true intercept deviation) and ``p`` (the true subject-specific probability).
    """

    truth: BinaryTruth
    seed: int
    data: pd.DataFrame


def simulate_binary(truth: BinaryTruth, seed: int) -> BinaryStudy:
    """Draw one study: ``b_i ~ N(0, tau^2)``, then ``y_ij ~ Bernoulli(expit(eta_ij + b_i))``.

    Subjects ``1, 3, 5, ...`` (odd positions) are treated. The same truth and seed always
    give the same study (``numpy.random.default_rng(seed)``: intercepts first, then the
    outcomes row by row).
    """
    rng = np.random.default_rng(int(seed))
    m, n = truth.n_subjects, truth.n_visits
    b = truth.sd * rng.standard_normal(m)
    subject = np.repeat(np.arange(m), n)
    visit = np.tile(np.arange(n), m)
    treated = (subject % 2 == 1).astype(int)
    x = treated if truth.effect == "treatment" else visit
    p = expit(truth.beta0 + truth.beta1 * x + b[subject])
    y = (rng.random(m * n) < p).astype(int)
    width = len(str(m))
    data = pd.DataFrame(
        {
            "subject": [f"S{i + 1:0{width}d}" for i in subject],
            "visit": visit,
            "treated": treated,
            "y": y,
            "b": b[subject],
            "p": p,
        }
    )
    return BinaryStudy(truth, int(seed), data)


@dataclass(frozen=True)
class LogisticFit:
    """An ordinary logistic regression: estimates, model-based SEs, iterations."""

    names: tuple[str, ...]
    beta: np.ndarray
    se: np.ndarray
    iterations: int


def logistic_regression(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, names=("(Intercept)", "x")
) -> LogisticFit:
    """``logit P(y = 1) = a + c x`` by iteratively reweighted least squares (Fisher scoring).

    Each step solves ``(X' W X) delta = X' w (y - mu)`` with ``W = diag(w mu (1 - mu))``; the
    SEs are the square roots of the diagonal of ``(X' W X)^-1`` at the solution (every row an
    independent observation). ``y`` may be a proportion in ``[0, 1]`` with ``weights``.

    Raises
    ------
    ModelError
        When the outcome does not vary, or the estimates run off to infinity (separation).
    """
    y = np.asarray(y, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    design = np.column_stack([np.ones_like(y), np.asarray(x, float)])
    total = np.sum(w * y) / np.sum(w)
    if total <= 0.0 or total >= 1.0:
        raise ModelError(
            "Every outcome is " + ("0" if total <= 0 else "1") + ": a logistic regression "
            "needs both outcomes. Change the baseline probability or the odds ratio."
        )
    beta = np.array([math.log(total / (1 - total)), 0.0])
    iterations = 0
    while iterations < MAX_ITER:
        iterations += 1
        mu = expit(design @ beta)
        info = design.T @ (design * (w * mu * (1 - mu))[:, None])
        step = np.linalg.solve(info, design.T @ (w * (y - mu)))
        beta = beta + step
        if np.max(np.abs(step)) < TOL * (1 + np.max(np.abs(beta))):
            break
    if np.max(np.abs(beta)) > 30 or not np.all(np.isfinite(beta)):
        raise ModelError(
            "The logistic regression estimates run off to infinity: one group has only 0s or "
            "only 1s (separation). Use more subjects or a less extreme truth."
        )
    mu = expit(design @ beta)
    info = design.T @ (design * (w * mu * (1 - mu))[:, None])
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    return LogisticFit(tuple(names), beta, se, iterations)


def true_curves(truth: BinaryTruth, x: np.ndarray, sd: float | None = None) -> pd.DataFrame:
    """The typical subject's curve ``expit(beta_0 + beta_1 x)`` and the population-averaged
    curve ``E_b expit(beta_0 + beta_1 x + b)`` at ``x`` (SD ``sd``, default the truth's)."""
    x = np.asarray(x, float)
    eta = truth.beta0 + truth.beta1 * x
    tau = truth.sd if sd is None else float(sd)
    averaged = population_average(eta, np.full(x.size, tau**2), expit)
    return pd.DataFrame({"x": x, "typical": expit(eta), "averaged": averaged})


def marginal_target(truth: BinaryTruth, sd: float | None = None) -> tuple[float, float]:
    """``(a, c)``: what a logistic regression ignoring the subjects estimates in an infinitely
    large study of this design (the module docstring), by integration."""
    xk, nk = truth.design_points()
    mu = true_curves(truth, xk, sd)["averaged"].to_numpy()
    fit = logistic_regression(xk, mu, nk)
    return float(fit.beta[0]), float(fit.beta[1])


def approximate_marginal(beta: float, sd: float) -> float:
    """``beta / sqrt(1 + 0.346 sd^2)``: the classical approximation of the marginal effect."""
    return float(beta) / math.sqrt(1.0 + ATTENUATION_C2 * float(sd) ** 2)


@dataclass(frozen=True)
class BinaryFits:
    """The study's two fits: the GLMM (Laplace) and the logistic regression ignoring subjects."""

    glmm: GLMMResult
    glm: LogisticFit


def fit_binary(study: BinaryStudy, nagq: int = 1) -> BinaryFits:
    """Fit ``y ~ x + (1 | subject)`` by :func:`lmm_core.fit_glmm` and ``y ~ x`` by
    :func:`logistic_regression`."""
    truth, data = study.truth, study.data
    glm = logistic_regression(data[truth.column], data["y"], names=("(Intercept)", truth.column))
    glmm = fit_glmm(truth.formula, data, family="binomial", nagq=nagq)
    return BinaryFits(glmm, glm)
