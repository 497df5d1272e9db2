"""Minimising the profiled criterion over ``theta``, and checking the result.

The optimizer is BOBYQA (Powell 2009: bounded, derivative-free, quadratic models) through
NLopt, as lme4's default ``nloptwrap`` and MixedModels.jl use; ``theta`` has only a handful of
elements and the criterion is cheap, so a derivative-free trust-region method converges in a
few dozen evaluations. Around it, as MixedModels' ``fit!`` and lme4's ``optimizeLmer`` do:

* a failed factorization returns the initial value, never ``inf`` (an infinite value would
  break BOBYQA's quadratic model);
* after convergence, diagonal elements of ``theta`` close to 0 are set to exactly 0 when the
  criterion does not get worse by more than ``zero_tol`` (singular fits reported exactly);
* a parameter on the boundary whose one-sided derivative shows the criterion decreasing into
  the interior triggers a restart from there (lme4's ``restart_edge``);
* a convergence check by finite differences: the gradient over the free parameters, scaled by
  the Hessian (the Newton step, lme4's "relative gradient"). A failed check first triggers a
  restart from the reached point; a warning is issued only if that restart does not settle it,
  so spurious warnings are not raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import nlopt
import numpy as np

from lmm_core.deviance import ProfiledDeviance


@dataclass
class OptSummary:
    """The record of one optimization (MixedModels' ``OptSummary``, lme4's ``optinfo``).

    Attributes
    ----------
    initial, final
        ``theta`` at the start and at the end.
    finitial, fmin
        The criterion at ``initial`` and at ``final``.
    n_evals
        Number of criterion evaluations, all stages included.
    method
        Optimizer name.
    converged
        Whether the convergence check passed.
    messages
        Plain-language notes on restarts, zeroed variances and the checks.
    max_scaled_gradient
        Largest element of the Hessian-scaled gradient at the end (``nan`` if not computed).
    seconds
        Wall time of the optimization.
    fitlog
        ``(theta, criterion)`` at each evaluation of the main run.
    """

    initial: np.ndarray
    finitial: float
    final: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fmin: float = np.nan
    n_evals: int = 0
    method: str = "BOBYQA (NLopt)"
    converged: bool = False
    messages: list[str] = field(default_factory=list)
    max_scaled_gradient: float = np.nan
    seconds: float = 0.0
    fitlog: list[tuple[np.ndarray, float]] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class OptimizerOptions:
    """Tolerances of the optimization and of the checks after it."""

    ftol_rel: float = 1e-10
    ftol_abs: float = 1e-8
    xtol_abs: float = 1e-6
    initial_step: float = 0.75
    max_evals: int = 100_000
    zero_tol: float = 1e-7
    gradient_tol: float = 2e-3
    max_restarts: int = 2
    keep_log: bool = True


def optimize_theta(
    dev: ProfiledDeviance,
    theta0: np.ndarray | None = None,
    options: OptimizerOptions | None = None,
) -> OptSummary:
    """Minimise ``dev`` over ``theta`` within its bounds and check the optimum.

    Parameters
    ----------
    dev
        The profiled criterion.
    theta0
        Starting value; lme4's default (1 on diagonals, 0 elsewhere) if omitted.
    options
        Tolerances.

    Returns
    -------
    OptSummary
    """
    opts = options or OptimizerOptions()
    start = time.perf_counter()
    lower = dev.lower
    theta0 = dev.theta0.copy() if theta0 is None else np.maximum(np.asarray(theta0, float), lower)
    counter = _CountingObjective(dev, keep_log=opts.keep_log)
    finitial = counter.safe(theta0)
    summary = OptSummary(initial=theta0.copy(), finitial=finitial)
    theta, fmin = _bobyqa(counter, theta0, lower, opts, opts.initial_step)
    theta, fmin = _zero_small_diagonals(counter, theta, fmin, lower, opts, summary.messages)

    for attempt in range(opts.max_restarts + 1):
        restart_from = _boundary_restart_point(counter, theta, fmin, lower)
        if restart_from is not None:
            summary.messages.append(
                "A variance on the boundary was moved back into the interior, where the "
                "criterion is lower, and the optimizer was restarted."
            )
            theta, fmin = _bobyqa(counter, restart_from, lower, opts, 0.1)
            theta, fmin = _zero_small_diagonals(counter, theta, fmin, lower, opts, summary.messages)
        scaled, newton = _scaled_gradient(counter, theta, fmin, lower)
        summary.max_scaled_gradient = float(np.max(np.abs(scaled))) if scaled.size else 0.0
        if newton is not None:  # one Newton step from the check's own derivatives
            f_newton = counter.safe(newton)
            if f_newton < fmin:
                theta, fmin = newton, f_newton
        if summary.max_scaled_gradient < opts.gradient_tol and restart_from is None:
            summary.converged = True
            break
        if attempt < opts.max_restarts and restart_from is None:
            theta_new, f_new = _bobyqa(counter, theta, lower, opts, 0.05)
            theta, fmin = (theta_new, f_new) if f_new <= fmin else (theta, fmin)
    if not summary.converged:
        summary.messages.append(
            "The optimizer stopped where the criterion is not flat (largest scaled gradient "
            f"{summary.max_scaled_gradient:.2g}): the estimates may not be the best ones. "
            "Simplify the random effects or rescale covariates."
        )
    summary.final = theta
    summary.fmin = fmin
    summary.n_evals = counter.n_evals
    summary.fitlog = counter.log
    summary.seconds = time.perf_counter() - start
    return summary


class _CountingObjective:
    """Counts evaluations and maps a failed factorization to the initial value."""

    def __init__(self, dev: ProfiledDeviance, keep_log: bool):
        self.dev = dev
        self.n_evals = 0
        self.fallback: float | None = None
        self.keep_log = keep_log
        self.log: list[tuple[np.ndarray, float]] = []

    def safe(self, theta: np.ndarray) -> float:
        self.n_evals += 1
        try:
            value = self.dev(theta)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            value = np.nan
        if not np.isfinite(value):
            value = self.fallback if self.fallback is not None else 1e300
        elif self.fallback is None:
            self.fallback = value
        if self.keep_log:
            self.log.append((np.array(theta, float), value))
        return value


def _bobyqa(
    counter: _CountingObjective,
    theta0: np.ndarray,
    lower: np.ndarray,
    opts: OptimizerOptions,
    step: float,
) -> tuple[np.ndarray, float]:
    k = theta0.size
    if k == 1:
        # BOBYQA needs at least two variables in NLopt's implementation.
        return _brent_1d(counter, theta0, lower, opts)
    opt = nlopt.opt(nlopt.LN_BOBYQA, k)
    opt.set_min_objective(lambda x, grad: counter.safe(x))
    opt.set_lower_bounds(lower)
    opt.set_ftol_rel(opts.ftol_rel)
    opt.set_ftol_abs(opts.ftol_abs)
    opt.set_xtol_abs(opts.xtol_abs)
    opt.set_maxeval(opts.max_evals)
    opt.set_initial_step(np.full(k, step))
    try:
        theta = opt.optimize(theta0)
        fmin = opt.last_optimum_value()
    except (nlopt.RoundoffLimited, RuntimeError):
        theta, fmin = _best_logged(counter, theta0)
    theta = np.maximum(theta, lower)
    return theta, counter.safe(theta) if not np.isfinite(fmin) else fmin


def _brent_1d(
    counter: _CountingObjective, theta0: np.ndarray, lower: np.ndarray, opts: OptimizerOptions
) -> tuple[np.ndarray, float]:
    """One variance parameter: bounded scalar minimisation on a growing bracket."""
    from scipy.optimize import minimize_scalar

    lo = 0.0 if np.isfinite(lower[0]) else -10.0
    hi = max(4.0, 4.0 * float(theta0[0]))
    while True:
        res = minimize_scalar(
            lambda t: counter.safe(np.array([t])),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-10, "maxiter": 500},
        )
        if res.x < hi * 0.99 or hi > 1e6:
            break
        hi *= 10.0
    theta = np.array([res.x])
    fmin = float(res.fun)
    if np.isfinite(lower[0]):
        f0 = counter.safe(np.array([lower[0]]))
        if f0 <= fmin:
            theta, fmin = np.array([lower[0]]), f0
    return theta, fmin


def _best_logged(counter: _CountingObjective, theta0: np.ndarray) -> tuple[np.ndarray, float]:
    if counter.log:
        theta, value = min(counter.log, key=lambda item: item[1])
        return theta.copy(), value
    return theta0.copy(), counter.safe(theta0)


def _zero_small_diagonals(
    counter: _CountingObjective,
    theta: np.ndarray,
    fmin: float,
    lower: np.ndarray,
    opts: OptimizerOptions,
    messages: list[str],
) -> tuple[np.ndarray, float]:
    """Set near-zero diagonal elements to 0 when the criterion does not get worse."""
    theta = theta.copy()
    for i in np.flatnonzero((lower == 0) & (theta > 0) & (theta < 1e-4)):
        trial = theta.copy()
        trial[i] = 0.0
        f = counter.safe(trial)
        if f <= fmin + opts.zero_tol:
            theta, fmin = trial, min(f, fmin)
    return theta, fmin


def _boundary_restart_point(
    counter: _CountingObjective, theta: np.ndarray, fmin: float, lower: np.ndarray
) -> np.ndarray | None:
    """A point inside the bounds with a lower criterion, if one is next to the boundary."""
    for i in np.flatnonzero((lower == 0) & (theta == 0)):
        for h in (1e-4, 1e-3):
            trial = theta.copy()
            trial[i] = h
            if counter.safe(trial) < fmin - 1e-10:
                return trial
    return None


def _scaled_gradient(
    counter: _CountingObjective, theta: np.ndarray, f0: float, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Newton step ``H^{-1} g`` over the free (interior) parameters, by central differences.

    A parameter on its bound is held fixed. Returns the step (the convergence measure) and
    the point ``theta - H^{-1} g`` (kept within the bounds), which the caller tries: near the
    optimum one Newton step removes what is left of the optimizer's stopping error. When the
    Hessian is not positive definite, the gradient scaled by ``max(1, |f|)`` is returned and
    no Newton point.
    """
    free = np.flatnonzero(~((lower == 0) & (theta == 0)))
    if free.size == 0:
        return np.zeros(0), None
    h = 1e-4 * np.maximum(1.0, np.abs(theta[free]))

    def f_at(delta: np.ndarray) -> float:
        trial = theta.copy()
        trial[free] += delta
        if np.any(trial < lower):
            return np.nan
        return counter.safe(trial)

    k = free.size
    grad = np.empty(k)
    hess = np.empty((k, k))
    fplus = np.empty(k)
    fminus = np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        fplus[i], fminus[i] = f_at(e), f_at(-e)
        if np.isnan(fminus[i]):  # one-sided near a bound
            grad[i] = (fplus[i] - f0) / h[i]
            hess[i, i] = np.nan
        else:
            grad[i] = (fplus[i] - fminus[i]) / (2 * h[i])
            hess[i, i] = (fplus[i] - 2 * f0 + fminus[i]) / h[i] ** 2
    for i in range(k):
        for j in range(i):
            ei = np.zeros(k)
            ei[i] = h[i]
            ej = np.zeros(k)
            ej[j] = h[j]
            fpp = f_at(ei + ej)
            hess[i, j] = hess[j, i] = (fpp - fplus[i] - fplus[j] + f0) / (h[i] * h[j])
    if np.all(np.isfinite(hess)):
        try:
            np.linalg.cholesky(hess)
            step = np.linalg.solve(hess, grad)
            newton = theta.copy()
            newton[free] -= step
            return step, np.maximum(newton, lower)
        except np.linalg.LinAlgError:
            pass
    return grad / np.maximum(1.0, np.abs(f0)), None
