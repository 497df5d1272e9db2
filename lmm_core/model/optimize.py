"""Minimising the profiled criterion over ``theta``, and checking the result.

Everything here works in unit-free coordinates ``phi = theta * s``, where ``s`` is
:func:`lmm_core.design.reterms.theta_scale` (the root mean square of each ``theta`` element's ``z``
column): ``theta`` of a slope on time in seconds is about 1e-5 times ``theta`` of the same
slope on time in days, ``phi`` is the same. So the initial trust region, the stopping rules,
the finite-difference steps, the zero threshold and the boundary tests mean the same thing
whatever the units of the covariates (the criterion itself is invariant: a change of units of
a column of ``Z`` is a row scaling of ``Lambda``). The bounds are unchanged (0 on diagonals).

The optimizer is BOBYQA (Powell 2009: bounded, derivative-free, quadratic models) through
NLopt, as lme4's default ``nloptwrap`` and MixedModels.jl use; ``theta`` has only a handful of
elements and the criterion is cheap, so a derivative-free trust-region method converges in a
few dozen evaluations. Around it, as MixedModels' ``fit!`` and lme4's ``optimizeLmer`` do:

* a failed factorization returns the initial value, never ``inf`` (an infinite value would
  break BOBYQA's quadratic model);
* after convergence, diagonal elements of ``phi`` below ``near_boundary`` are set to exactly 0
  when the criterion does not get worse by more than ``zero_tol`` (singular fits reported
  exactly);
* a parameter on the boundary whose one-sided derivative shows the criterion decreasing into
  the interior triggers a restart from there (lme4's ``restart_edge``);
* an optimum on or near the boundary (a diagonal ``phi`` below ``near_boundary``: a variance
  of zero or a correlation of +-1) is not accepted from one run: the optimizer restarts from
  the other faces (:func:`_alternative_starts`) and from a moment-based start
  (:func:`lmm_core.model.starts.moment_start`) with loose tolerances, polishes the best of those
  runs, and keeps the lowest criterion. Two boundary optima (intercept SD 0, or intercept
  and slope perfectly correlated) are both visited. The same exploration runs once when the
  convergence check fails;
* a convergence check by central differences in ``phi`` (taken across the bound where
  needed: the criterion is defined for negative diagonals), over the parameters not on their
  bound: the Newton step ``H^-1 g`` (lme4's "relative gradient") must be small, and a
  parameter on its bound must have a criterion that rises into the interior. A failed check
  first triggers a restart from the reached point; a warning is issued only if that restart
  does not settle it, so spurious warnings are not raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from lmm_core.design.covariance import CovarianceStructure
from lmm_core.model.bobyqa import SafeObjective, bobyqa
from lmm_core.model.deviance import ProfiledDeviance


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
    """Tolerances of the optimization and of the checks after it.

    Tolerances on the parameters (``xtol_abs``, ``initial_step``, ``near_boundary``) are in
    the unit-free ``phi`` of the module docstring; ``ftol_*`` and ``zero_tol`` are on the
    criterion (a log-likelihood: differences are unit-free).
    """

    ftol_rel: float = 1e-10
    ftol_abs: float = 1e-8
    xtol_abs: float = 1e-6
    initial_step: float = 0.75
    max_evals: int = 100_000
    zero_tol: float = 1e-7
    gradient_tol: float = 2e-3
    max_restarts: int = 2
    keep_log: bool = True
    near_boundary: float = 1e-2


def optimize_theta(
    dev: ProfiledDeviance,
    theta0: np.ndarray | None = None,
    options: OptimizerOptions | None = None,
    extra_start: Callable[[], np.ndarray | None] | None = None,
) -> OptSummary:
    """Minimise ``dev`` over ``theta`` within its bounds and check the optimum.

    Parameters
    ----------
    dev
        The profiled criterion.
    theta0
        Starting value; 1 on diagonals of the unit-free factor (lme4's start after the
        rescaling of the module docstring) if omitted.
    options
        Tolerances.
    extra_start
        Called only when the first optimum lies on or near the boundary: another starting
        ``theta`` to try (for example :func:`lmm_core.model.starts.moment_start`), or ``None``.

    Returns
    -------
    OptSummary
        ``initial`` and ``final`` in ``theta``'s own units.
    """
    opts = options or OptimizerOptions()
    start = time.perf_counter()
    lower = dev.lower
    scale = dev.theta_scale
    default = dev.theta0.copy()
    phi0 = default if theta0 is None else np.maximum(np.asarray(theta0, float) * scale, lower)
    counter = _CountingObjective(dev, scale, keep_log=opts.keep_log)
    finitial = counter.safe(phi0)
    summary = OptSummary(initial=phi0 / scale, finitial=finitial)
    phi, fmin = _run(counter, phi0, lower, opts, opts.initial_step, summary.messages)
    explored = _near_boundary(phi, lower, opts)
    if explored:
        phi, fmin = _explore(counter, phi, fmin, dev, phi0, extra_start, opts, summary.messages)
    phi, fmin = _check(counter, phi, fmin, opts, summary)
    if not summary.converged and not explored:
        phi, fmin = _explore(counter, phi, fmin, dev, phi0, extra_start, opts, summary.messages)
        phi, fmin = _check(counter, phi, fmin, opts, summary)
    if not summary.converged:
        summary.messages.append(
            "The optimizer stopped where the criterion is not flat (largest scaled gradient "
            f"{summary.max_scaled_gradient:.2g}): the estimates may not be the best ones. "
            "The random effects may be more than these data can estimate: try a simpler model."
        )
    summary.final = phi / scale
    summary.fmin = fmin
    summary.n_evals = counter.n_evals
    summary.fitlog = counter.log
    summary.seconds = time.perf_counter() - start
    return summary


def _check(
    counter: _CountingObjective,
    phi: np.ndarray,
    fmin: float,
    opts: OptimizerOptions,
    summary: OptSummary,
) -> tuple[np.ndarray, float]:
    """The convergence check, with restarts: sets ``summary.converged`` and its measure.

    Converged when, at the point reached, no variance on its bound can be moved into the
    interior with a lower criterion and the quadratic model of the free parameters is flat:
    the Newton step is below ``gradient_tol`` or the decrease it predicts is below
    ``1e-7 + 1e-10 |f|`` (a long step along a flat ridge). A Newton step that lowers the
    criterion is taken and the check repeated (up to :data:`_MAX_NEWTON` times: on a ridge
    Newton's method converges where BOBYQA crawls); otherwise BOBYQA is restarted from the
    point, at most ``max_restarts`` times.
    """
    lower = counter.dev.lower
    summary.converged = False
    restarts = newtons = 0
    while True:
        restart_from = _boundary_restart_point(counter, phi, fmin, lower)
        if restart_from is not None:
            summary.messages.append(
                "A variance on the boundary was moved back into the interior, where the "
                "criterion is lower, and the optimizer was restarted."
            )
            phi, fmin = _run(counter, restart_from, lower, opts, 0.1, summary.messages)
            restarts += 1
        scaled, newton, decrease = _newton_step(counter, phi, fmin, lower)
        summary.max_scaled_gradient = float(np.max(np.abs(scaled))) if scaled.size else 0.0
        improved = False
        if newton is not None:  # one Newton step from the check's own derivatives
            f_newton = counter.safe(newton)
            if f_newton < fmin:
                improved = f_newton < fmin - _noise(fmin)
                phi, fmin = newton, f_newton
        flat = summary.max_scaled_gradient < opts.gradient_tol
        flat = flat or decrease < 1e-7 + 1e-10 * abs(fmin)
        if flat and restart_from is None:
            summary.converged = True
            return phi, fmin
        if improved and newtons < _MAX_NEWTON:
            newtons += 1
            continue
        if restarts >= opts.max_restarts:
            return phi, fmin
        if restart_from is None:
            phi_new, f_new = _run(counter, phi, lower, opts, 0.05, summary.messages)
            phi, fmin = (phi_new, f_new) if f_new <= fmin else (phi, fmin)
            restarts += 1


#: Newton steps the convergence check may take in a row while they lower the criterion.
_MAX_NEWTON = 8


#: Looser tolerances for the runs from alternative starts (the winner is then polished).
_COARSE = {"ftol_rel": 1e-7, "ftol_abs": 1e-5, "xtol_abs": 1e-4}


def _explore(
    counter: _CountingObjective,
    phi: np.ndarray,
    fmin: float,
    dev: ProfiledDeviance,
    used: np.ndarray,
    extra_start: Callable[[], np.ndarray | None] | None,
    opts: OptimizerOptions,
    messages: list[str],
) -> tuple[np.ndarray, float]:
    """Runs from the alternative starts (coarse), the best polished; keeps the lowest.

    A coarse run that ends within ``1e-4 (1 + |f|)`` above the current optimum but elsewhere
    (more than 0.05 away in ``phi``) is polished too: it may be a better optimum reached short.
    """
    coarse = OptimizerOptions(**{**opts.__dict__, **_COARSE})
    lower = dev.lower
    candidates = []
    for alt in _alternative_starts(phi, dev, used, extra_start, opts.near_boundary):
        phi_alt, f_alt = _run(counter, alt, lower, coarse, opts.initial_step, [])
        far = np.max(np.abs(phi_alt - phi)) > 0.05
        if f_alt < fmin - _noise(fmin) or (far and f_alt < fmin + 1e-4 * (1 + abs(fmin))):
            candidates.append((f_alt, phi_alt))
    for _, phi_alt in sorted(candidates, key=lambda c: c[0])[:2]:
        phi_new, f_new = _run(counter, phi_alt, lower, opts, 0.01, [])
        if f_new < fmin - _noise(fmin):
            phi, fmin = phi_new, f_new
            if _BETTER_START not in messages:
                messages.append(_BETTER_START)
    return phi, fmin


_BETTER_START = (
    "A better optimum was found from another starting point than the first (the first "
    "stopped on or near the boundary)."
)


class _CountingObjective(SafeObjective):
    """The criterion as a function of ``phi`` (:meth:`safe`): the deviance at
    ``theta = phi / scale`` through :class:`~lmm_core.model.bobyqa.SafeObjective` (counted, a
    failed factorization mapped to the first finite value), each ``(theta, value)`` logged if
    ``keep_log``."""

    def __init__(self, dev: ProfiledDeviance, scale: np.ndarray, keep_log: bool):
        super().__init__(dev)
        self.dev = dev
        self.scale = scale
        self.keep_log = keep_log
        self.log: list[tuple[np.ndarray, float]] = []

    def safe(self, phi: np.ndarray) -> float:
        theta = np.asarray(phi, float) / self.scale
        value = self(theta)
        if self.keep_log:
            self.log.append((theta, value))
        return value


def _noise(f: float) -> float:
    """Smallest decrease of the criterion taken as real (evaluations carry ~1e-12 relative
    rounding: the cross-products cancel ``y'y`` against the fitted part)."""
    return 1e-10 * max(1.0, abs(f))


def _run(
    counter: _CountingObjective,
    phi0: np.ndarray,
    lower: np.ndarray,
    opts: OptimizerOptions,
    step: float,
    messages: list[str],
) -> tuple[np.ndarray, float]:
    """One BOBYQA run, then near-zero diagonals set to exactly 0 where that costs nothing."""
    phi, fmin = _bobyqa(counter, phi0, lower, opts, step)
    return _zero_small_diagonals(counter, phi, fmin, lower, opts, messages)


def _bobyqa(
    counter: _CountingObjective,
    phi0: np.ndarray,
    lower: np.ndarray,
    opts: OptimizerOptions,
    step: float,
) -> tuple[np.ndarray, float]:
    k = phi0.size
    if k == 1:
        # BOBYQA needs at least two variables in NLopt's implementation.
        return _brent_1d(counter, phi0, lower)
    reached = bobyqa(
        counter.safe,
        phi0,
        lower,
        step=np.full(k, step),
        max_evals=opts.max_evals,
        ftol_rel=opts.ftol_rel,
        ftol_abs=opts.ftol_abs,
        xtol_abs=opts.xtol_abs,
    )
    phi, fmin = reached if reached is not None else _best_logged(counter, phi0)
    phi = np.maximum(phi, lower)
    return phi, counter.safe(phi) if not np.isfinite(fmin) else fmin


def _brent_1d(
    counter: _CountingObjective, phi0: np.ndarray, lower: np.ndarray
) -> tuple[np.ndarray, float]:
    """One variance parameter: bounded scalar minimisation on a growing bracket."""
    lo = 0.0 if np.isfinite(lower[0]) else -10.0
    hi = max(4.0, 4.0 * float(phi0[0]))
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
    phi = np.array([res.x])
    fmin = float(res.fun)
    if np.isfinite(lower[0]):
        f0 = counter.safe(np.array([lower[0]]))
        if f0 <= fmin:
            phi, fmin = np.array([lower[0]]), f0
    return phi, fmin


def _best_logged(counter: _CountingObjective, phi0: np.ndarray) -> tuple[np.ndarray, float]:
    if counter.log:
        theta, value = min(counter.log, key=lambda item: item[1])
        return theta * counter.scale, value
    return phi0.copy(), counter.safe(phi0)


def _zero_small_diagonals(
    counter: _CountingObjective,
    phi: np.ndarray,
    fmin: float,
    lower: np.ndarray,
    opts: OptimizerOptions,
    messages: list[str],
) -> tuple[np.ndarray, float]:
    """Set small diagonal elements (``phi < near_boundary``) to 0 when the criterion does
    not get worse by more than ``zero_tol``: a boundary optimum that BOBYQA approached along a
    flat ridge is reported on the boundary, a small interior variance (whose removal costs
    likelihood) is kept."""
    phi = phi.copy()
    for i in np.flatnonzero((lower == 0) & (phi > 0) & (phi < opts.near_boundary)):
        trial = phi.copy()
        trial[i] = 0.0
        f = counter.safe(trial)
        if f <= fmin + opts.zero_tol:
            phi, fmin = trial, min(f, fmin)
    return phi, fmin


def _near_boundary(phi: np.ndarray, lower: np.ndarray, opts: OptimizerOptions) -> bool:
    return bool(np.any((lower == 0) & (phi < opts.near_boundary)))


def _alternative_starts(
    phi: np.ndarray,
    dev: ProfiledDeviance,
    used: np.ndarray,
    extra_start: Callable[[], np.ndarray | None] | None,
    near: float,
) -> list[np.ndarray]:
    """Starting points on the other faces of the boundary and a moment-based start.

    For each diagonal element ``i`` below ``near``, in its term's block of ``phi``: the block
    reset to the identity but with element ``i`` kept at 0 (the same face, correlations
    forgotten); element ``i`` grown back to 1 with the rest kept; and, for a block of several
    columns, its two rank-one faces (each column's SD kept, at least 0.1, all in the first
    column of the factor with equal or alternating signs: correlations at +1 or -1). Then
    ``extra_start()`` (moment-based). On the 240 cases of ``benchmarks/stress_corpus.py``
    each of these five kinds is the only one that finds the best optimum in some case; three
    other kinds tried (element ``i`` alone, the off-diagonals negated, lme4's default) never
    were, and were dropped.
    """
    lower = dev.lower
    starts = []
    offsets = np.concatenate([[0], np.cumsum([t.n_theta for t in dev.reterms])]).astype(int)
    variance = np.concatenate([t.structure.is_variance for t in dev.reterms])
    for i in np.flatnonzero(variance & (phi < near)):
        k = int(np.searchsorted(offsets, i, side="right") - 1)
        block = np.arange(offsets[k], offsets[k + 1])
        structure = dev.reterms[k].structure
        reset, grown = phi.copy(), phi.copy()
        reset[block] = structure.start
        reset[i] = 0.0
        grown[i] = 1.0
        starts += [reset, grown]
        if not structure.is_variance.all():  # correlations: the rank-one faces
            starts += _rank_one_starts(phi, block, structure)
    if extra_start is not None:
        theta = extra_start()
        if theta is not None and np.all(np.isfinite(theta)):
            starts.append(np.maximum(np.asarray(theta, float) * dev.theta_scale, lower))
    unique: list[np.ndarray] = []
    for s in starts:
        if not any(np.allclose(s, u) for u in [*unique, phi, used]):
            unique.append(s)
    return unique


def _rank_one_starts(
    phi: np.ndarray, block: np.ndarray, structure: CovarianceStructure
) -> list[np.ndarray]:
    """``phi`` with the term's factor replaced by its two rank-one faces: every row's length
    (at least 0.1) put in the first column, with equal or alternating signs."""
    lam = structure.factor(phi[block])
    sd = np.maximum(np.sqrt(np.sum(lam * lam, axis=1)), 0.1)
    out = []
    for sign in (1.0, -1.0):
        one_rank = np.zeros_like(lam)
        one_rank[:, 0] = sd * np.where(np.arange(sd.size) % 2, sign, 1.0)
        one = phi.copy()
        one[block] = structure.theta_from_factor(one_rank)
        out.append(one)
    return out


def _boundary_restart_point(
    counter: _CountingObjective, phi: np.ndarray, fmin: float, lower: np.ndarray
) -> np.ndarray | None:
    """A point inside the bounds with a lower criterion, if one is next to the boundary."""
    for i in np.flatnonzero((lower == 0) & (phi == 0)):
        for h in (1e-4, 1e-3, 1e-2):
            trial = phi.copy()
            trial[i] = h
            if counter.safe(trial) < fmin - _noise(fmin):
                return trial
    return None


def _newton_step(
    counter: _CountingObjective, phi: np.ndarray, f0: float, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Newton step ``H^{-1} g`` over the parameters not on their bound, in ``phi``.

    Central differences with steps ``1e-4 max(1, |phi_i|)``, taken across the bound where a
    parameter is close to it (the criterion is smooth through 0: a negative diagonal of
    ``Lambda`` is a valid point). Returns the step (the convergence measure), the point
    ``phi - H^{-1} g`` within the bounds, which the caller tries (near the optimum one Newton
    step removes what is left of the optimizer's stopping error), and the decrease of the
    criterion that the quadratic model predicts, ``g' H^{-1} g / 2``: along a flat ridge the
    step can be long while the criterion cannot fall by more than rounding. When the Hessian
    is not positive definite, the gradient divided by the positive diagonal curvatures (the
    raw gradient where the curvature is not positive) is returned, no Newton point, and an
    infinite decrease.
    """
    free = np.flatnonzero(~((lower == 0) & (phi == 0)))
    if free.size == 0:
        return np.zeros(0), None, 0.0
    h = 1e-4 * np.maximum(1.0, np.abs(phi[free]))

    def f_at(delta: np.ndarray) -> float:
        trial = phi.copy()
        trial[free] += delta
        return counter.safe(trial)

    k = free.size
    grad = np.empty(k)
    hess = np.empty((k, k))
    fplus = np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        fplus[i], fminus = f_at(e), f_at(-e)
        grad[i] = (fplus[i] - fminus) / (2 * h[i])
        hess[i, i] = (fplus[i] - 2 * f0 + fminus) / h[i] ** 2
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
            newton = phi.copy()
            newton[free] -= step
            return step, np.maximum(newton, lower), 0.5 * float(grad @ step)
        except np.linalg.LinAlgError:
            pass
    diag = np.diagonal(hess)
    ok = np.isfinite(diag) & (diag > 0)
    return np.where(ok, grad / np.where(ok, diag, 1.0), grad), None, np.inf
