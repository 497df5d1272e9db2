"""Optimizer of random effects plus a covariance of the visits
(:class:`lmm_core.model.mmrm_random.RandomMMRMCriterion`).

1. Start: ``theta_R`` from the moment covariances of the visits projected on the structure
   (as :mod:`lmm_core.model.mmrm`), the random effects from per-level least squares
   (:func:`lmm_core.model.starts.moment_start`); for a criterion known by its cells' sums (a
   streamed fit) both from those sums (:func:`summed_moment_start`), the same start up to
   rounding.
2. L-BFGS-B with the analytic gradient on the unit-free ``psi`` (the standard-deviation-like
   entries of each ``lambda`` bounded below by 0), stopping on a relative change of the
   criterion of ``1e-12`` or a projected gradient below ``1e-7``.
3. Newton polish on the parameters not at a bound, on the Hessian from forward differences
   of the analytic gradient, with step halving and projection on the bounds.

Convergence: on the free parameters the Newton decrement ``g' H^-1 g`` (a change of ``-2 l``,
so free of units and of the parametrization) is below ``1e-6`` and ``H`` is positive definite;
a parameter at its bound has a gradient pointing out of the parameter space. A variance at 0
(a standard-deviation-like ``phi`` below :data:`SINGULAR_TOL`) is a *singular* fit: converged at
the boundary, reported as such, not as a failure.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from lmm_core.errors import ModelError
from lmm_core.model.mmrm import MMRMOptimum, gradient_hessian, structure_start
from lmm_core.model.mmrm_random import _FAILURES, RandomMMRMCriterion
from lmm_core.model.starts import moment_start, term_start_from_sums

#: A standard-deviation-like ``phi`` below this is at the boundary (lme4's 1e-4).
SINGULAR_TOL = 1e-4
_AT_BOUND = 1e-8
SINGULAR_MESSAGE = (
    "Singular fit: a standard deviation of the random effects is estimated at 0 (the boundary "
    "of the parameter space; converged there). The data show no variation of that kind beyond "
    "the covariance of the visits; consider leaving that random effect out."
)


class _Counted:
    """The criterion with its gradient, counting evaluations; ``inf`` where it fails."""

    def __init__(self, crit: RandomMMRMCriterion):
        self.crit = crit
        self.count = 0

    def __call__(self, psi: np.ndarray) -> tuple[float, np.ndarray]:
        self.count += 1
        try:
            value, grad = self.crit.value_and_gradient(psi)
        except _FAILURES:
            return float("inf"), np.full(len(psi), np.nan)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return float("inf"), np.full(len(psi), np.nan)
        return value, grad

    def grad(self, psi: np.ndarray) -> np.ndarray:
        return self(psi)[1]


def random_mmrm_start(crit: RandomMMRMCriterion) -> np.ndarray:
    """The start of step 1 (module docstring)."""
    res = crit.residual
    try:
        sigmas = crit.start_covariances()
        theta_r = np.concatenate([structure_start(res.structure, s) for s in sigmas])
        if not np.all(np.isfinite(theta_r)):
            raise ValueError("no moment start")
    except _FAILURES:
        theta_r = np.concatenate([res.structure.start(crit.s0) for _ in res.groups])
    design = crit.design
    if design is None:
        phi = summed_moment_start(crit) * crit.scale
    else:
        phi = moment_start(design.X, design.y, crit.terms) * crit.scale
    var = crit.is_variance[crit.n_r :]
    phi[var] = np.maximum(phi[var], 0.05)
    return np.concatenate([theta_r, phi])


def summed_moment_start(crit: RandomMMRMCriterion) -> np.ndarray:
    """:func:`~lmm_core.model.starts.moment_start` of a criterion known by its cells' sums
    (:meth:`RandomMMRMCriterion.from_sums`): the same per-level least squares, from the
    per-level ``n_l``, ``Z_l'Z_l``, ``Z_l'r_l``, ``r_l'r_l`` that the cells give exactly
    (:meth:`RandomMMRMCriterion.level_sums`), so the same start up to rounding."""
    parts = []
    for term, sums, rms in zip(crit.terms, crit.level_sums(), crit.column_rms(), strict=True):
        theta_k = term_start_from_sums(term.n_columns, *sums, rms, term.structure)
        parts.append(term.structure.start if theta_k is None else theta_k)
    return np.concatenate(parts)


def _project(crit: RandomMMRMCriterion, psi: np.ndarray) -> np.ndarray:
    return np.maximum(psi, crit.lower)


def _free(crit: RandomMMRMCriterion, psi: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Parameters not held at their bound (at the bound with a gradient pushing outwards)."""
    return ~((psi <= crit.lower + _AT_BOUND) & (grad >= 0))


def _newton(fg: _Counted, psi, fmin, grad) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Projected Newton steps on the free parameters while they lower the criterion."""
    crit = fg.crit
    hess = gradient_hessian(fg.grad, psi, grad)
    for _ in range(20):
        free = _free(crit, psi, grad)
        h = hess[np.ix_(free, free)]
        try:
            step_f = np.linalg.solve(h, grad[free])
        except np.linalg.LinAlgError:
            break
        if not (np.all(np.linalg.eigvalsh(h) > 0) and float(grad[free] @ step_f) > 1e-12):
            break
        step = np.zeros_like(psi)
        step[free] = step_f
        for lam in 0.5 ** np.arange(12):
            trial = _project(crit, psi - lam * step)
            f_new, g_new = fg(trial)
            if f_new <= fmin:
                break
        else:
            break
        moved = np.max(np.abs(trial - psi))
        psi, fmin, grad = trial, f_new, g_new
        if moved > 1e-3:
            hess = gradient_hessian(fg.grad, psi, grad)
    return psi, fmin, grad, gradient_hessian(fg.grad, psi, grad)


def _converged(crit: RandomMMRMCriterion, psi, grad, hess) -> bool:
    free = _free(crit, psi, grad)
    h = hess[np.ix_(free, free)]
    if not np.all(np.isfinite(h)):
        return False
    if free.any():
        if np.linalg.eigvalsh(h).min() <= 0:
            return False
        if abs(float(grad[free] @ np.linalg.solve(h, grad[free]))) >= 1e-6:
            return False
    return True


def optimize_random_mmrm(crit: RandomMMRMCriterion) -> MMRMOptimum:
    """Steps 1-3 of the module docstring; ``MMRMOptimum.theta`` is ``psi``."""
    fg = _Counted(crit)
    psi0 = random_mmrm_start(crit)
    if not np.isfinite(fg(psi0)[0]):
        raise ModelError(
            "The model with random effects and a covariance of the visits cannot be evaluated "
            "at its start; try a simpler covariance structure or fewer random effects."
        )
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in crit.lower]
    fit = optimize.minimize(
        fg, psi0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-7},
    )  # fmt: skip
    psi = _project(crit, fit.x)
    fmin, grad = fg(psi)
    psi, fmin, grad, hess = _newton(fg, psi, fmin, grad)
    converged = _converged(crit, psi, grad, hess)
    messages = []
    if not converged:
        messages.append(
            "The optimizer could not confirm the best covariance parameters (the criterion is "
            "not flat, or not curved upward, at the end): try a simpler covariance structure "
            "of the visits or fewer random effects."
        )
    if singular(crit, psi):
        messages.append(SINGULAR_MESSAGE)
    return MMRMOptimum(psi, fmin, hess, converged, fg.count, messages)


def singular(crit: RandomMMRMCriterion, psi: np.ndarray) -> bool:
    """Whether a standard-deviation-like ``phi`` of the random effects is at 0."""
    var = crit.is_variance
    return bool(np.any(np.abs(psi[var]) < SINGULAR_TOL))
