"""Fitting a GLMM: lme4's two-stage optimization of the Laplace or quadrature likelihood.

``fit_glmm`` evaluates the formula (:mod:`lmm_core.glmm.response`), then, as ``glmer``:

1. minimises the first-stage criterion over ``theta`` alone, with ``beta`` updated inside
   penalized IRLS (lme4's ``nAGQ = 0`` fit; :meth:`GLMMCriterion.profiled`);
2. from there, minimises ``-2 log L`` over ``theta`` and ``beta`` together, by the Laplace
   approximation (``nagq = 1``) or adaptive Gauss-Hermite quadrature (``nagq > 1``, one
   scalar random effect only; :mod:`lmm_core.glmm.agq`).

The first stage uses BOBYQA (:func:`lmm_core.model.bobyqa.bobyqa`), the second Newton's method,
both in unit-free coordinates: ``phi = theta * s`` (:func:`lmm_core.design.reterms.theta_scale`)
and ``beta`` in units of its first-stage standard error, so that the steps and stopping rules do
not depend on the units of the covariates. The gradient is analytic, for the Laplace
approximation (:class:`lmm_core.glmm.gradient.LaplaceGradient`) and for quadrature
(:class:`lmm_core.glmm.agq_gradient.AGQGradient`), and the Hessian forward differences of it
(``d`` evaluations for ``d`` parameters); for a model too large for the analytic gradient both
are finite differences of ``-2 log L`` (:func:`hessian`). The
first-stage point is close to the optimum, so a few Newton steps (then chord steps with the last
Hessian, gradients only) reach it with far fewer evaluations than a derivative-free search; the
iteration stops when a step is below ``NEWTON_TOL`` (the step is taken). The Hessian ``H`` of
``-2 log L`` gives, as glmer's default ``use.hessian = TRUE``, the covariance of ``beta``: the
``beta`` block of ``2 H^-1``. When the Newton iteration cannot be trusted (a variance parameter
on or moving to its bound, ``H`` not positive definite) the second stage is BOBYQA's, checked by
the Newton step at its optimum (a failed check restarts it once from the Newton point); variance
parameters on their bound (a singular fit) are then held fixed in ``H``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from lmm_core.design.reterms import split_theta
from lmm_core.errors import ModelError
from lmm_core.glmm.agq import MAX_NODES, agq_loglik
from lmm_core.glmm.agq_gradient import AGQGradient
from lmm_core.glmm.family import make_family
from lmm_core.glmm.gradient import LaplaceGradient
from lmm_core.glmm.pirls import GLMMCriterion, PIRLSFailure, PIRLSState
from lmm_core.glmm.response import build_glmm_data
from lmm_core.glmm.results import GLMMResult, conditional_effects
from lmm_core.model.bobyqa import SafeObjective, bobyqa
from lmm_core.model.fit import SINGULAR_MESSAGE
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.results import is_singular_fit

HESSIAN_STEP = 2e-3
#: forward-difference step of the analytic gradient (unit-free coordinates)
GRADIENT_STEP = 1e-4
NEWTON_TOL = 1e-3
#: first-stage stopping rules: its optimum is only the second stage's starting point
STAGE1_FTOL = 1e-5
STAGE1_XTOL = 1e-3
#: the same for L-BFGS-B: largest projected gradient of the deviance in ``phi``
STAGE1_GTOL = 1e-3
#: L-BFGS-B's coordinates are ``phi`` times this (its first step: ``1 / STAGE1_STRETCH``)
STAGE1_STRETCH = 4.0
#: Newton iterations of the second stage before BOBYQA takes over
NEWTON_ITER = 10
#: a Newton step below this keeps its Hessian for the remaining (chord) steps
CHORD_TOL = 1e-2
MAX_STEP_HALVINGS = 6


class _Stage2:
    """``-2 log L`` as a function of ``x = (phi, (beta - beta1) / se1)``."""

    def __init__(self, crit: GLMMCriterion, nagq: int, beta1: np.ndarray, se1: np.ndarray):
        self.crit, self.nagq = crit, nagq
        self.beta1, self.se1 = beta1, se1
        self.nt = crit.theta0.size
        grad = LaplaceGradient(crit) if nagq == 1 else AGQGradient(crit, nagq)
        self.grad = grad if grad.available else None

    def params(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[: self.nt] / self.crit.theta_scale, self.beta1 + self.se1 * x[self.nt :]

    def state(self, x: np.ndarray) -> PIRLSState:
        return self.crit.laplace_state(*self.params(x))

    def __call__(self, x: np.ndarray) -> float:
        return self.value(self.state(x))

    def value(self, state: PIRLSState) -> float:
        """``-2 log L`` at a state."""
        if self.nagq == 1:
            return self.crit.minus2_loglik(state)
        return -2.0 * agq_loglik(self.crit, state, self.nagq)

    def evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray | None]:
        """``-2 log L`` and its analytic gradient in ``x`` (None without one)."""
        state = self.state(x)
        if self.nagq > 1:
            f, g = self.grad(state)
        elif self.grad is None:
            return self.value(state), None
        else:
            f, g = self.value(state), self.grad(state)
        if g is None or not np.all(np.isfinite(g)):
            return f, None
        return f, np.concatenate([g[: self.nt] / self.crit.theta_scale, g[self.nt :] * self.se1])

    def derivatives(self, x: np.ndarray, free: np.ndarray, f: float, g: np.ndarray | None):
        """Gradient and Hessian over the ``free`` coordinates at ``x`` (value ``f``, analytic
        gradient ``g`` or None) and the evaluations spent: forward differences of the
        analytic gradient (``d`` evaluations) or, without it, :func:`hessian`. The gradient is
        None when an analytic one fails."""
        if self.grad is None:
            return hessian(self, x, free, f0=f)
        if g is None:
            return None, None, 0
        idx = np.flatnonzero(free)
        hess = np.empty((idx.size, idx.size))
        for a, j in enumerate(idx):
            e = np.zeros_like(x)
            e[j] = GRADIENT_STEP
            g_j = self.evaluate(x + e)[1]
            if g_j is None:
                return None, None, a + 1
            hess[:, a] = (g_j - g)[idx] / GRADIENT_STEP
        return g[idx], 0.5 * (hess + hess.T), idx.size

    def gradient_at(self, x: np.ndarray, f: float, g: np.ndarray | None):
        """The gradient at ``x`` (analytic when available) and the evaluations spent."""
        if self.grad is None:
            return gradient(self, x), 2 * x.size
        return g, 0


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
    """First stage: ``phi`` minimising lme4's ``nAGQ = 0`` criterion, by L-BFGS-B on its
    analytic gradient (:meth:`LaplaceGradient.__call__` with ``free_beta``) or, when that is
    not available or fails, BOBYQA."""
    grad = LaplaceGradient(crit)
    found = _stage1_gradient(crit, grad) if grad.available else None
    if found is None:
        return _stage1_bobyqa(crit)
    return found


def _stage1_gradient(crit: GLMMCriterion, grad: LaplaceGradient):
    """``(phi, evaluations)`` by L-BFGS-B (gradient below ``STAGE1_GTOL``), or None when an
    evaluation or its gradient fails.

    The criterion is even in a scalar term's ``theta`` (and, for ``(x | g)``, in each column
    of ``lambda``: ``lambda D`` with ``D = diag(+-1)`` has the same ``lambda lambda'``), so its
    gradient vanishes on the bound ``theta = 0`` and a bounded search whose first step lands
    there stops. The search is therefore unbounded, its end mapped back by flipping the
    columns of ``lambda`` with a negative diagonal (:func:`_canonical_theta`). L-BFGS-B's first
    step has length 1 in its coordinates ``psi = STAGE1_STRETCH * phi``.
    """
    scale = crit.theta_scale * STAGE1_STRETCH
    evals = [0]

    def value_and_gradient(psi: np.ndarray) -> tuple[float, np.ndarray]:
        evals[0] += 1
        state = crit.pirls(psi / scale, None)
        g = grad(state, free_beta=True)
        if g is None or not np.all(np.isfinite(g)):
            raise PIRLSFailure("no first-stage gradient")
        return state.lme4_deviance, g / scale

    try:
        out = optimize.minimize(
            value_and_gradient,
            crit.theta0 * scale,
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-12, "gtol": STAGE1_GTOL / STAGE1_STRETCH, "maxiter": 200},
        )
    except (PIRLSFailure, np.linalg.LinAlgError):
        return None
    if not np.all(np.isfinite(out.x)) or not np.isfinite(out.fun):
        return None
    theta = _canonical_theta(crit, np.asarray(out.x, float) / scale)
    return theta * crit.theta_scale, evals[0]


def _canonical_theta(crit: GLMMCriterion, theta: np.ndarray) -> np.ndarray:
    """The same model's ``theta`` within the bounds: each term's ``lambda`` with its columns
    of negative diagonal flipped (``lambda lambda'`` unchanged)."""
    out = []
    for term, th in zip(crit.reterms, split_theta(crit.reterms, theta), strict=True):
        lam = term.structure.factor(th)
        sign = np.where(np.diag(lam) < 0, -1.0, 1.0)
        out.append(term.structure.theta_from_factor(lam * sign[None, :]))
    return np.maximum(np.concatenate(out), crit.lower)


def _stage1_bobyqa(crit: GLMMCriterion) -> tuple[np.ndarray, int]:
    """First stage by BOBYQA."""
    scale = crit.theta_scale
    obj = SafeObjective(lambda phi: crit.profiled(phi / scale))
    phi0 = crit.theta0 * scale
    out = bobyqa(
        obj,
        phi0,
        crit.lower * scale,
        step=np.full(phi0.size, 0.5),
        max_evals=5000,
        ftol_abs=STAGE1_FTOL,
        xtol_abs=STAGE1_XTOL,
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


def hessian(fun, x: np.ndarray, free: np.ndarray, h: float = HESSIAN_STEP, f0=None):
    """Gradient (central differences) and Hessian of ``fun`` at ``x`` over ``free`` indices
    (diagonal central, off-diagonal ``(f(x+h_j+h_k) - f(x+h_j) - f(x+h_k) + f(x)) / h^2``);
    ``f0``: ``fun(x)`` when already known."""
    idx = np.flatnonzero(free)
    d = idx.size
    known = f0 is not None
    f0 = f0 if known else fun(x)
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
    return grad, hess, (0 if known else 1) + 2 * d + d * (d - 1) // 2


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


def refit_quadrature(result: GLMMResult, nagq: int) -> GLMMResult:
    """The same model (rows, trials, weights, offset, family, link) fitted again with
    ``nagq`` quadrature points (1: Laplace), as ``update(fit, nAGQ = nagq)`` in R.

    Raises
    ------
    ModelError
        ``nagq`` outside 1..25, or ``nagq > 1`` for a model other than one scalar random
        effect.
    """
    nagq = _check_nagq(nagq)
    crit = GLMMCriterion(result.data, result.family)
    _check_quadrature(crit, nagq)
    start = time.perf_counter()
    with single_threaded_blas():
        return _fit(crit, result.formula, nagq, start)


def _fit(crit: GLMMCriterion, formula: str, nagq: int, start: float) -> GLMMResult:
    phi1, evals1 = _stage1(crit)
    first = crit.pirls(phi1 / crit.theta_scale, None)
    lx_inv = np.linalg.inv(first.factor.l_x)
    se1 = np.sqrt(np.sum(lx_inv * lx_inv, axis=0))
    fun = _Stage2(crit, nagq, first.beta, se1)
    opt = stage2(fun, crit, phi1, se1, lambda state: _beta_factor(crit, state))
    state = opt.state
    b, cond_cov = conditional_effects(crit, state)
    return GLMMResult(
        formula=formula,
        family=crit.family,
        nagq=nagq,
        theta=opt.theta,
        beta=opt.beta,
        vcov_beta=opt.vcov,
        loglik=-0.5 * fun.value(state),
        deviance=state.drsum,
        lme4_deviance=state.lme4_deviance,
        b=b,
        cond_cov=cond_cov,
        eta=state.eta,
        data=crit.data,
        converged=opt.converged,
        n_evals=evals1 + opt.n_evals,
        seconds=time.perf_counter() - start,
        messages=tuple(crit.data.messages) + tuple(opt.messages),
    )


def _off_bounds(x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Coordinates free to move: not within ``10 h`` of their lower bound."""
    return ~(np.isfinite(lower) & (x - lower < 10 * HESSIAN_STEP))


def _newton_stage2(fun: _Stage2, x0: np.ndarray, lower: np.ndarray):
    """Second stage by Newton's method from the first-stage point, each step halved until
    ``-2 log L`` decreases; derivatives from :meth:`_Stage2.derivatives`.

    Once a Newton step is below ``CHORD_TOL`` the Hessian ``H`` is kept and only the gradient
    is recomputed (chord steps ``H^-1 g``) until a step is below ``NEWTON_TOL``; that step is
    taken. ``H`` (at most ``CHORD_TOL`` away from the optimum) gives the covariance.

    Returns ``(x, H, free, evaluations)``, or ``None`` when the iteration cannot be trusted
    (a variance parameter at or moving to its bound, ``H`` not positive definite, no
    decrease, a gradient not available): BOBYQA then takes over.
    """
    if not _off_bounds(x0, lower).all():
        return None
    free = np.ones(x0.size, bool)
    x, (f, g), evals = x0, fun.evaluate(x0), 1
    hess = None
    for _ in range(NEWTON_ITER):
        if hess is None:
            grad, new_hess, n = fun.derivatives(x, free, f, g)
        else:
            grad, n = fun.gradient_at(x, f, g)
        evals += n
        step = None if grad is None else _newton_step(grad, new_hess if hess is None else hess)
        if step is None:
            return None
        if hess is None and np.max(np.abs(step)) <= CHORD_TOL:
            hess = new_hess
        moved = _descend(fun, x, (f, g), step, lower)
        if moved is None:
            return None
        evals += moved[2]
        if np.max(np.abs(step)) <= NEWTON_TOL:
            return moved[0], new_hess if hess is None else hess, free, evals
        x, (f, g) = moved[0], moved[1]
    return None


def _descend(fun: _Stage2, x: np.ndarray, fg: tuple, step: np.ndarray, lower: np.ndarray):
    """``(x - t step, its (value, gradient), evaluations)`` for the first ``t = 1, 1/2, ...``
    that does not increase ``f`` (a step below ``NEWTON_TOL`` that does not: ``x`` itself, the
    optimum within rounding); ``None`` if a bound comes near or nothing decreases."""
    for k in range(MAX_STEP_HALVINGS):
        x_new = x - step
        if not _off_bounds(x_new, lower).all():
            return None
        fg_new = fun.evaluate(x_new)
        if fg_new[0] <= fg[0]:
            return x_new, fg_new, k + 1
        if np.max(np.abs(step)) <= NEWTON_TOL:
            return x, fg, k + 1
        step = 0.5 * step
    return None


def gradient(fun, x: np.ndarray, h: float = HESSIAN_STEP) -> np.ndarray:
    """Central-difference gradient of ``fun`` at ``x``."""
    out = np.empty(x.size)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        out[j] = (fun(x + e) - fun(x - e)) / (2 * h)
    return out


def _bobyqa_stage2(fun: _Stage2, x0: np.ndarray, lower: np.ndarray, phi1: np.ndarray):
    """Second stage by BOBYQA, checked (and restarted once) by the finite-difference Newton
    step. Returns ``(x, H, free, converged, optimizer evaluations, Hessian evaluations)``."""
    step = np.concatenate([np.maximum(0.1 * np.abs(phi1), 0.05), np.full(x0.size - phi1.size, 0.5)])
    x, fmin, evals2 = _minimise(fun, x0, lower, step)
    free = _off_bounds(x, lower)
    grad, hess, evals3 = _derivatives_at(fun, x, free)
    newton = None if grad is None else _newton_step(grad, hess)
    if newton is None or np.max(np.abs(newton)) > NEWTON_TOL:
        x_try = x.copy()
        if newton is not None:
            x_try[free] = np.maximum(x[free] - newton, lower[free])
        x, fmin, more = _minimise(fun, x_try if fun(x_try) < fmin else x, lower, step * 0.1)
        evals2 += more + 1
        free = _off_bounds(x, lower)
        grad, hess, more = _derivatives_at(fun, x, free)
        evals3 += more
        newton = None if grad is None else _newton_step(grad, hess)
    converged = newton is not None and np.max(np.abs(newton)) <= NEWTON_TOL
    return x, hess, free, converged, evals2, evals3


def _derivatives_at(fun: _Stage2, x: np.ndarray, free: np.ndarray):
    """Gradient and Hessian over ``free`` at ``x`` and the evaluations spent (the finite-
    difference ones when no analytic gradient)."""
    f, g = fun.evaluate(x)
    grad, hess, n = fun.derivatives(x, free, f, g)
    if grad is None:
        grad, hess, n = hessian(fun, x, free, f0=f)
    return grad, hess, n + 1


def _newton_step(grad: np.ndarray, hess: np.ndarray) -> np.ndarray | None:
    try:
        np.linalg.cholesky(hess)
        return np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:
        return None


@dataclass(frozen=True)
class Stage2Optimum:
    """Stage 2's optimum: ``theta``, ``beta``, the penalized-IRLS state there, ``Var(beta)``,
    whether the Hessian check passed, the evaluations and the notes for the user."""

    theta: np.ndarray
    beta: np.ndarray
    state: object
    vcov: np.ndarray
    converged: bool
    n_evals: int
    messages: list[str]


def stage2(fun, crit, phi1: np.ndarray, se1: np.ndarray, beta_factor) -> Stage2Optimum:
    """lme4's stage 2 from stage 1's ``phi1``: ``-2 log L`` over ``(phi, beta / se1)`` by
    Newton's method (BOBYQA when it fails), then the singularity note and ``Var(beta)``.

    ``fun`` is the stage-2 objective (:class:`_Stage2`, or the streamed one), ``crit`` its
    criterion, ``beta_factor(state)`` the ``L_X`` factor at the mode (for the fallback
    ``Var(beta)``). Shared by the in-memory and the streamed fits.
    """
    nt = crit.theta0.size
    lower = np.concatenate([crit.lower * crit.theta_scale, np.full(se1.size, -np.inf)])
    x0 = np.concatenate([phi1, np.zeros(se1.size)])
    found = _newton_stage2(fun, x0, lower)
    if found is not None:
        x, hess, free, evals2 = found
        converged, evals3 = True, 0
    else:
        x, hess, free, converged, evals2, evals3 = _bobyqa_stage2(fun, x0, lower, phi1)
    messages: list[str] = []
    if not converged:
        messages.append(
            "the optimizer did not reach a point where the gradient vanishes (the Hessian "
            "check failed): the estimates may be inexact; try a simpler random part"
        )
    theta, beta = fun.params(x)
    if is_singular_fit(theta, crit.reterms, GLMMResult.singular_tol):
        messages.append(SINGULAR_MESSAGE)
    state = fun.state(x)
    vcov = _vcov(hess, free, nt, se1, lambda: beta_factor(state), messages)
    return Stage2Optimum(theta, beta, state, vcov, converged, evals2 + evals3, messages)


def _vcov(hess, free, nt, se1, beta_factor, messages: list[str]) -> np.ndarray:
    """``2 H^-1`` restricted to ``beta`` (glmer's ``use.hessian``), in the units of ``beta``;
    the penalized-IRLS ``(L_X L_X')^-1`` (``beta_factor()`` gives ``L_X``) when ``H`` is not
    positive definite."""
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
        inv = np.linalg.inv(beta_factor())
        return inv.T @ inv


def _beta_factor(crit: GLMMCriterion, state: PIRLSState) -> np.ndarray:
    """``L_X`` of the factor with ``X`` at the state's working weights."""
    wts = crit.working_weights(state.eta, state.mu)
    return crit.system.factor(state.zl, wts, with_x=True).l_x


__all__ = ["Stage2Optimum", "fit_glmm", "gradient", "hessian", "refit_quadrature", "stage2"]
