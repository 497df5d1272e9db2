"""Refitting a GLMM from its estimates: to a new response, or with parameters held fixed.

The parametric bootstrap refits a model to simulated responses and the likelihood profile
minimises ``-2 log L`` with one parameter fixed; both start from a fit's estimates, which are
close to the new optimum, so one direct minimisation of

    -2 log L(theta, beta)   (Laplace for nagq = 1, adaptive quadrature otherwise)

over ``theta`` and ``beta`` together (glmer's second stage, without its first) is enough. As in
:mod:`lmm_core.glmm.fit` the coordinates are unit-free: ``phi = theta * s``
(:func:`lmm_core.design.reterms.theta_scale`) and ``beta`` in units of the fit's standard errors,
and BOBYQA (:func:`lmm_core.model.bobyqa.bobyqa`) minimises within ``theta >= lower``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmm_core.glmm.agq import agq_loglik
from lmm_core.glmm.pirls import GLMMCriterion
from lmm_core.model.bobyqa import SafeObjective, bobyqa

#: BOBYQA's stopping rules of a refit (on -2 log L, and on the unit-free coordinates)
FTOL_ABS = 1e-9
XTOL_ABS = 1e-7
MAX_EVALS = 20_000


def minus2_loglik(crit: GLMMCriterion, nagq: int, theta: np.ndarray, beta: np.ndarray) -> float:
    """``-2 log L`` with every constant at ``(theta, beta)``: the Laplace approximation
    (``nagq = 1``) or ``nagq``-point adaptive quadrature, warm-started at the last mode."""
    state = crit.laplace_state(np.asarray(theta, float), np.asarray(beta, float))
    if nagq == 1:
        return crit.minus2_loglik(state)
    return -2.0 * agq_loglik(crit, state, nagq)


def minimise(fun, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, step: np.ndarray):
    """BOBYQA from ``x0`` within ``[lower, upper]``: ``(best x, best value, evaluations,
    whether BOBYQA ended normally)``."""
    obj = SafeObjective(fun)
    x0 = np.clip(np.asarray(x0, float), lower, upper)
    first = obj(x0)
    if x0.size == 0:
        return x0, first, 1, True
    out = bobyqa(
        obj,
        x0,
        lower,
        upper,
        step=step,
        max_evals=MAX_EVALS,
        ftol_abs=FTOL_ABS,
        xtol_abs=XTOL_ABS,
    )
    best, fbest = (obj.best_x, obj.best_f) if obj.best_x is not None else (x0, first)
    if out is not None and out[1] <= fbest:
        best, fbest = out
    return np.asarray(best, float), float(fbest), obj.n_evals, out is not None


@dataclass(frozen=True)
class Refit:
    """Estimates of one refit: ``theta``, ``beta``, ``loglik`` (all constants), whether the
    optimizer ended normally, and its number of evaluations."""

    theta: np.ndarray
    beta: np.ndarray
    loglik: float
    converged: bool
    n_evals: int


def criterion_for(result, y: np.ndarray | None = None) -> GLMMCriterion:
    """The criterion of ``result``'s model, on a new response ``y`` (same rows) if given."""
    data = result.data if y is None else replace(result.data, y=np.asarray(y, float))
    return GLMMCriterion(data, result.family)


def refit_glmm(
    result,
    y: np.ndarray | None = None,
    *,
    theta0: np.ndarray | None = None,
    beta0: np.ndarray | None = None,
) -> Refit:
    """Maximum-likelihood refit of ``result``'s model to the response ``y`` (the fitted one if
    omitted), started from ``(theta0, beta0)`` (the fit's estimates by default), with the fit's
    ``nagq``.

    Parameters
    ----------
    result
        A :class:`~lmm_core.glmm.results.GLMMResult`.
    y
        A response on the fit's rows and scale (proportions of the trials, or counts).
    theta0, beta0
        Starting values.

    Returns
    -------
    Refit
    """
    crit = criterion_for(result, y)
    theta0 = result.theta if theta0 is None else np.asarray(theta0, float)
    beta0 = result.beta if beta0 is None else np.asarray(beta0, float)
    scale = crit.theta_scale
    se = np.where(result.std_errors > 0, result.std_errors, 1.0)
    nt = theta0.size

    def fun(x: np.ndarray) -> float:
        return minus2_loglik(crit, result.nagq, x[:nt] / scale, beta0 + se * x[nt:])

    x0 = np.concatenate([theta0 * scale, np.zeros(beta0.size)])
    lower = np.concatenate([crit.lower * scale, np.full(beta0.size, -np.inf)])
    upper = np.full(x0.size, np.inf)
    step = np.concatenate([np.maximum(0.1 * np.abs(x0[:nt]), 0.05), np.full(beta0.size, 0.5)])
    x, f, n, ok = minimise(fun, x0, lower, upper, step)
    return Refit(x[:nt] / scale, beta0 + se * x[nt:], -0.5 * f, ok and np.isfinite(f), n)


__all__ = ["Refit", "criterion_for", "minimise", "minus2_loglik", "refit_glmm"]
