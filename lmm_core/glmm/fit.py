"""Fitting a GLMM: lme4's two-stage optimization of the Laplace or quadrature likelihood.

``fit_glmm`` evaluates the formula (:mod:`lmm_core.glmm.response`), then, as ``glmer``:

1. minimises the first-stage criterion over ``theta`` alone, with ``beta`` updated inside
   penalized IRLS (lme4's ``nAGQ = 0`` fit; :meth:`GLMMCriterion.profiled`);
2. from there, minimises ``-2 log L`` over ``theta`` and ``beta`` together, by the Laplace
   approximation (``nagq = 1``) or adaptive Gauss-Hermite quadrature (``nagq > 1``, one
   scalar random effect only; :mod:`lmm_core.glmm.agq`).

Both stages use BOBYQA (:func:`lmm_core.model.bobyqa.bobyqa`) in unit-free coordinates:
``phi = theta * s`` (:func:`lmm_core.design.reterms.theta_scale`) and ``beta`` in units of its
first-stage standard error, so that the steps and stopping rules do not depend on the units of
the covariates. At the optimum a finite-difference Hessian ``H`` of ``-2 log L`` in those
coordinates gives the convergence check (the Newton step ``H^-1 g`` must be small; a failed
check restarts the optimizer once from the Newton point) and, as glmer's default
``use.hessian = TRUE``, the covariance of ``beta``: the ``beta`` block of ``2 H^-1``.
Variance parameters on their bound (a singular fit) are held fixed in ``H``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError
from lmm_core.glmm.agq import MAX_NODES, agq_loglik
from lmm_core.glmm.family import make_family
from lmm_core.glmm.pirls import GLMMCriterion, PIRLSState
from lmm_core.glmm.response import build_glmm_data
from lmm_core.glmm.results import GLMMResult, conditional_effects
from lmm_core.model.bobyqa import SafeObjective, bobyqa
from lmm_core.model.linalg import single_threaded_blas

HESSIAN_STEP = 2e-3
NEWTON_TOL = 1e-3


class _Stage2:
    """``-2 log L`` as a function of ``x = (phi, (beta - beta1) / se1)``."""

    def __init__(self, crit: GLMMCriterion, nagq: int, beta1: np.ndarray, se1: np.ndarray):
        self.crit, self.nagq = crit, nagq
        self.beta1, self.se1 = beta1, se1
        self.nt = crit.theta0.size

    def params(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[: self.nt] / self.crit.theta_scale, self.beta1 + self.se1 * x[self.nt :]

    def state(self, x: np.ndarray) -> PIRLSState:
        return self.crit.laplace_state(*self.params(x))

    def __call__(self, x: np.ndarray) -> float:
        state = self.state(x)
        if self.nagq == 1:
            return self.crit.minus2_loglik(state)
        return -2.0 * agq_loglik(self.crit, state, self.nagq)


def _check_nagq(nagq: object) -> int:
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)):
        raise ModelError(f"nagq must be a whole number from 1 to {MAX_NODES}, not {nagq!r}.")
    if not 1 <= int(nagq) <= MAX_NODES:
        raise ModelError(
            f"nagq must be from 1 (Laplace) to {MAX_NODES} quadrature points, not {nagq}."
        )
    return int(nagq)


def _check_quadrature(crit: GLMMCriterion, nagq: int) -> None:
    terms = crit.reterms
    if nagq > 1 and (len(terms) != 1 or terms[0].n_columns != 1):
        what = ", ".join(f"({' + '.join(t.cnames)} | {t.group})" for t in terms)
        raise ModelError(
            f"Adaptive quadrature (nagq = {nagq}) needs a single random intercept, e.g. "
            f"`(1 | patient)`; this model has {what}. Use nagq = 1 (Laplace), or simplify the "
            "random part to compare."
        )


def _stage1(crit: GLMMCriterion) -> tuple[np.ndarray, int]:
    """First stage: ``phi`` minimising lme4's ``nAGQ = 0`` criterion."""
    scale = crit.theta_scale
    obj = SafeObjective(lambda phi: crit.profiled(phi / scale))
    phi0 = crit.theta0 * scale
    out = bobyqa(
        obj,
        phi0,
        crit.lower * scale,
        step=np.full(phi0.size, 0.5),
        max_evals=5000,
        ftol_abs=1e-7,
        xtol_abs=1e-5,
    )
    best = obj.best_x if obj.best_x is not None else phi0
    if out is not None and out[1] <= obj.best_f:
        best = out[0]
    return np.asarray(best, float), obj.n_evals


def _minimise(fun: _Stage2, x0: np.ndarray, lower: np.ndarray, step: np.ndarray):
    obj = SafeObjective(fun)
    out = bobyqa(
        obj,
        x0,
        lower,
        step=step,
        max_evals=20_000,
        ftol_rel=1e-13,
        ftol_abs=1e-11,
        xtol_abs=1e-6,
    )
    best, fbest = (obj.best_x, obj.best_f) if obj.best_x is not None else (x0, fun(x0))
    if out is not None and out[1] <= fbest:
        best, fbest = out
    return np.asarray(best, float), float(fbest), obj.n_evals


def hessian(fun, x: np.ndarray, free: np.ndarray, h: float = HESSIAN_STEP):
    """Gradient (central differences) and Hessian of ``fun`` at ``x`` over ``free`` indices
    (diagonal central, off-diagonal ``(f(x+h_j+h_k) - f(x+h_j) - f(x+h_k) + f(x)) / h^2``)."""
    idx = np.flatnonzero(free)
    d = idx.size
    f0 = fun(x)
    fp, fm = np.empty(d), np.empty(d)
    for a, j in enumerate(idx):
        e = np.zeros_like(x)
        e[j] = h
        fp[a], fm[a] = fun(x + e), fun(x - e)
    grad = (fp - fm) / (2 * h)
    hess = np.diag((fp - 2 * f0 + fm) / h**2)
    for a in range(d):
        for c in range(a + 1, d):
            e = np.zeros_like(x)
            e[idx[a]] = e[idx[c]] = h
            hess[a, c] = hess[c, a] = (fun(x + e) - fp[a] - fp[c] + f0) / h**2
    return grad, hess, 1 + 2 * d + d * (d - 1) // 2


def fit_glmm(
    formula: str,
    data: pd.DataFrame,
    family: str = "binomial",
    link: str | None = None,
    nagq: int = 1,
    weights: str | None = None,
) -> GLMMResult:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer``.

    Parameters
    ----------
    formula
        lme4's formula: ``y ~ time * arm + (time | patient)``; a binomial response may be
        0/1, logical, a two-level factor, ``cbind(successes, failures)`` or a proportion
        with ``weights``; ``offset(log(exposure))`` adds a known term.
    data
        The table.
    family
        ``"binomial"`` or ``"poisson"``.
    link
        ``"logit"`` (binomial default), ``"probit"``, ``"cloglog"``, ``"log"`` (Poisson
        default).
    nagq
        1: Laplace approximation; 2 to 25: adaptive Gauss-Hermite quadrature with that many
        points (a single scalar random effect only).
    weights
        Column of prior weights: the number of trials of a proportion ``y / n ~ ...``.

    Returns
    -------
    GLMMResult

    Raises
    ------
    FormulaError, DataError, ModelError
        Bad formula, an outcome the family cannot model, ``nagq > 1`` with a random slope.
    """
    fam = make_family(family, link)
    nagq = _check_nagq(nagq)
    gd = build_glmm_data(formula, data, fam.name, weights)
    crit = GLMMCriterion(gd, fam)
    _check_quadrature(crit, nagq)
    start = time.perf_counter()
    with single_threaded_blas():
        return _fit(crit, formula, nagq, start)


def _fit(crit: GLMMCriterion, formula: str, nagq: int, start: float) -> GLMMResult:
    nt = crit.theta0.size
    phi1, evals1 = _stage1(crit)
    first = crit.pirls(phi1 / crit.theta_scale, None)
    lx_inv = np.linalg.inv(first.factor.l_x)
    se1 = np.sqrt(np.sum(lx_inv * lx_inv, axis=0))
    fun = _Stage2(crit, nagq, first.beta, se1)
    lower = np.concatenate([crit.lower * crit.theta_scale, np.full(se1.size, -np.inf)])
    x0 = np.concatenate([phi1, np.zeros(se1.size)])
    step = np.concatenate([np.maximum(0.1 * np.abs(phi1), 0.05), np.full(se1.size, 0.5)])
    x, fmin, evals2 = _minimise(fun, x0, lower, step)
    messages: list[str] = []
    free = np.ones(x.size, bool)
    on_bound = np.isfinite(lower) & (x - lower < 10 * HESSIAN_STEP)
    free &= ~on_bound
    grad, hess, evals3 = hessian(fun, x, free)
    newton = _newton_step(grad, hess)
    if newton is None or np.max(np.abs(newton)) > NEWTON_TOL:
        x_try = x.copy()
        if newton is not None:
            x_try[free] = np.maximum(x[free] - newton, lower[free])
        x, fmin, more = _minimise(fun, x_try if fun(x_try) < fmin else x, lower, step * 0.1)
        evals2 += more
        on_bound = np.isfinite(lower) & (x - lower < 10 * HESSIAN_STEP)
        free = ~on_bound
        grad, hess, more = hessian(fun, x, free)
        evals3 += more
        newton = _newton_step(grad, hess)
    converged = newton is not None and np.max(np.abs(newton)) <= NEWTON_TOL
    if not converged:
        messages.append(
            "the optimizer did not reach a point where the gradient vanishes (the Hessian "
            "check failed): the estimates may be inexact; try a simpler random part"
        )
    theta, beta = fun.params(x)
    state = fun.state(x)
    vcov = _vcov(hess, free, nt, se1, crit, state, messages)
    loglik = -0.5 * fun(x)
    cond = conditional_effects(crit, state)
    return GLMMResult(
        formula=formula,
        family=crit.family,
        nagq=nagq,
        theta=theta,
        beta=beta,
        vcov_beta=vcov,
        loglik=loglik,
        deviance=state.drsum,
        lme4_deviance=state.lme4_deviance,
        b=cond[0],
        cond_cov=cond[1],
        eta=state.eta,
        data=crit.data,
        converged=converged,
        n_evals=evals1 + evals2 + evals3,
        seconds=time.perf_counter() - start,
        messages=tuple(crit.data.messages) + tuple(messages),
    )


def _newton_step(grad: np.ndarray, hess: np.ndarray) -> np.ndarray | None:
    try:
        np.linalg.cholesky(hess)
        return np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:
        return None


def _vcov(hess, free, nt, se1, crit: GLMMCriterion, state: PIRLSState, messages: list[str]):
    """``2 H^-1`` restricted to ``beta`` (glmer's ``use.hessian``), in the units of ``beta``;
    the penalized-IRLS ``(L_X L_X')^-1`` when ``H`` is not positive definite."""
    p = se1.size
    try:
        np.linalg.cholesky(hess)
        cov = 2.0 * np.linalg.inv(hess)
        idx = np.flatnonzero(free)
        beta_pos = [np.flatnonzero(idx == nt + j)[0] for j in range(p)]
        cov_x = cov[np.ix_(beta_pos, beta_pos)]
        return se1[:, None] * cov_x * se1[None, :]
    except (np.linalg.LinAlgError, IndexError):
        messages.append(
            "the Hessian of the likelihood is not positive definite: standard errors of the "
            "fixed effects come from the penalized least-squares factor (variance "
            "parameters taken as known)"
        )
        return _vcov_beta_pirls(crit, state)


def _vcov_beta_pirls(crit: GLMMCriterion, state: PIRLSState) -> np.ndarray:
    """``(L_X L_X')^-1`` of the factor with ``X`` at the state's working weights."""
    wts = crit.working_weights(state.eta, state.mu)
    inv = np.linalg.inv(crit.system.factor(state.zl, wts, with_x=True).l_x)
    return inv.T @ inv


__all__ = ["fit_glmm", "hessian"]
