"""Bounded derivative-free minimisation through NLopt: the one wrapper the engine uses.

BOBYQA (Powell 2009: bounded optimization by quadratic approximation, no derivatives) minimises
``f(x)`` over a box ``lower <= x <= upper`` by trust-region steps on quadratic models of ``f``
built from its values. NLopt's BOBYQA needs at least two variables; one variable is left to
Nelder-Mead here (the optimizer of ``theta`` uses Brent's method instead,
:mod:`lmm_core.model.optimize`). Two rules keep the quadratic model sound, both in
:class:`SafeObjective`: a failed evaluation (a factorization that breaks down, an overflow) and
an infinite value are replaced by the first finite value seen, never ``inf``; and the best
point is kept, so that a run NLopt ends by a roundoff error still has an answer.

Used by the optimizer of the profiled criterion (:func:`lmm_core.model.optimize.optimize_theta`)
and by likelihood profiles (:mod:`lmm_core.inference.profile`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import nlopt
import numpy as np

#: Errors of an evaluation that make it a failed one (not a bug to report).
EVALUATION_ERRORS = (np.linalg.LinAlgError, FloatingPointError, ValueError)


class SafeObjective:
    """``f(x)`` for a derivative-free optimizer: counts evaluations, keeps the best point, and
    returns the first finite value in place of a failed or non-finite one.

    Parameters
    ----------
    fun
        The function to minimise.

    Attributes
    ----------
    n_evals
        Evaluations so far.
    best_x, best_f
        The point of the lowest finite value and that value (``None``, ``inf`` before any).
    fallback
        The first finite value, returned for failed evaluations (``None`` before any).
    """

    def __init__(self, fun: Callable[[np.ndarray], float]) -> None:
        self.fun = fun
        self.n_evals = 0
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf
        self.fallback: float | None = None

    def __call__(self, x: np.ndarray) -> float:
        self.n_evals += 1
        try:
            value = float(self.fun(x))
        except EVALUATION_ERRORS:
            value = math.nan
        if not math.isfinite(value):
            return self.fallback if self.fallback is not None else 1e300
        if self.fallback is None:
            self.fallback = value
        if value < self.best_f:
            self.best_f, self.best_x = value, np.array(x, float)
        return value


def bobyqa(
    objective: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    *,
    step: np.ndarray,
    max_evals: int,
    ftol_rel: float = 0.0,
    ftol_abs: float = 0.0,
    xtol_rel: float = 0.0,
    xtol_abs: float = 0.0,
) -> tuple[np.ndarray, float] | None:
    """Minimise ``objective`` from ``x0`` within ``[lower, upper]`` with NLopt's BOBYQA.

    Parameters
    ----------
    objective
        ``x -> f(x)``; it must never return ``inf`` or raise (wrap it in
        :class:`SafeObjective`).
    x0
        Starting point, within the bounds.
    lower, upper
        Bounds (``upper`` omitted: none above).
    step
        Initial trust-region radius per variable.
    max_evals
        Largest number of evaluations.
    ftol_rel, ftol_abs, xtol_rel, xtol_abs
        NLopt's stopping rules on the change of ``f`` and of ``x`` (0: rule not used).

    Returns
    -------
    tuple or None
        The point and value NLopt reports; ``None`` when NLopt stopped on a roundoff limit or
        an error (the caller falls back on the best point it has seen).
    """
    x0 = np.asarray(x0, float)
    algorithm = nlopt.LN_BOBYQA if x0.size >= 2 else nlopt.LN_NELDERMEAD
    opt = nlopt.opt(algorithm, x0.size)
    opt.set_min_objective(lambda x, grad: objective(x))
    opt.set_lower_bounds(lower)
    if upper is not None:
        opt.set_upper_bounds(upper)
    opt.set_ftol_rel(ftol_rel)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_rel(xtol_rel)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(max_evals)
    opt.set_initial_step(step)
    try:
        x = opt.optimize(x0)
        return x, opt.last_optimum_value()
    except (nlopt.RoundoffLimited, RuntimeError, ValueError):
        return None


__all__ = ["EVALUATION_ERRORS", "SafeObjective", "bobyqa"]
