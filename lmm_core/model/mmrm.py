"""Mixed models for repeated measures (MMRM): a structured covariance of each subject's
visits and no random effects, as R's ``mmrm`` and SAS ``PROC MIXED ... REPEATED``.

Model: ``y_i ~ N(X_i beta, Sigma_i)``, where ``Sigma_i`` is the rows and columns of the
visits subject ``i`` has in the covariance ``Sigma_g(theta)`` of its group
(:mod:`lmm_core.design.residual_structures`). With ``V = blockdiag(Sigma_i)``,

    beta(theta) = (X' V^-1 X)^-1 X' V^-1 y,    r = y - X beta,
    -2 l_ML   = sum_i log|Sigma_i| + r' V^-1 r + n log(2 pi),
    -2 l_REML = -2 l_ML + log|X' V^-1 X| - p log(2 pi).

Subjects with the same group and the same set of visits share ``Sigma_i``; for each such
*pattern* the sums ``sum_i X_i (x) X_i``, ``sum_i X_i (x) y_i`` and ``sum_i y_i y_i'`` are
formed once, so that an evaluation costs ``O(patterns t^2 p^2)`` whatever the number of rows:

    X'V^-1 X = sum_patterns sum_jk (Sigma_p^-1)_jk A_p[j, k],   A_p[j, k] = sum_i x_ij x_ik'.

The criterion is minimised over ``theta`` (unconstrained, unit-free) by BFGS with numerical
gradients, then polished by Newton steps on a central-difference Hessian; that Hessian also
gives the covariance of ``theta`` for Satterthwaite's df (:mod:`lmm_core.model.mmrm_results`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from lmm_core.design.build import Design
from lmm_core.errors import ModelError

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class Pattern:
    """Subjects of one group with the same visits, and their summed cross-products."""

    group: int
    visits: np.ndarray  # visit indices, in visit order
    n: int
    xx: np.ndarray  # (t, t, p, p)
    xy: np.ndarray  # (t, t, p)
    yy: np.ndarray  # (t, t)


def patterns(design: Design) -> list[Pattern]:
    """Group the subjects by (group, visits) and sum their cross-products."""
    res = design.residual
    assert res is not None
    order = np.lexsort((res.visit_codes, res.subject_codes))
    subj, vis = res.subject_codes[order], res.visit_codes[order]
    X, y, grp = design.X[order], design.y[order], res.group_codes[order]
    starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
    ends = np.r_[starts[1:], len(subj)]
    keys: dict[tuple, list[int]] = {}
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        keys.setdefault((int(grp[a]), tuple(vis[a:b].tolist())), []).append(k)
    out = []
    for (group, visits), members in keys.items():
        t = len(visits)
        idx = np.concatenate([np.arange(starts[k], ends[k]) for k in members]).reshape(-1, t)
        Xs, ys = X[idx], y[idx]  # (n_p, t, p), (n_p, t)
        out.append(
            Pattern(
                group,
                np.array(visits),
                len(members),
                np.einsum("ija,ikb->jkab", Xs, Xs),
                np.einsum("ija,ik->jka", Xs, ys),
                ys.T @ ys,
            )
        )
    return out


@dataclass
class Evaluation:
    """Everything the criterion computes at one ``theta``."""

    objective: float
    beta: np.ndarray
    xtvx: np.ndarray  # X' V^-1 X


@dataclass(frozen=True)
class _SizeBatch:
    """The patterns with ``t`` visits, stacked: one batched factorization per evaluation."""

    groups: np.ndarray  # (k,)
    visits: np.ndarray  # (k, t)
    counts: np.ndarray  # (k,)
    xx: np.ndarray  # (k * t * t, p * p)
    xy: np.ndarray  # (k * t * t, p)
    yy: np.ndarray  # (k * t * t,)


def _batches(pats: list[Pattern], p: int) -> list[_SizeBatch]:
    out = []
    for t in sorted({len(q.visits) for q in pats}):
        same = [q for q in pats if len(q.visits) == t]
        out.append(
            _SizeBatch(
                np.array([q.group for q in same]),
                np.array([q.visits for q in same]).reshape(len(same), t),
                np.array([q.n for q in same], dtype=float),
                np.concatenate([q.xx.reshape(t * t, p * p) for q in same]),
                np.concatenate([q.xy.reshape(t * t, p) for q in same]),
                np.concatenate([q.yy.reshape(t * t) for q in same]),
            )
        )
    return out


class MMRMCriterion:
    """``-2`` times the (REML or ML) log-likelihood as a function of ``theta``."""

    def __init__(self, design: Design, reml: bool):
        self.design = design
        self.reml = reml
        self.n, self.p = design.X.shape
        self.batches = _batches(patterns(design), self.p)

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """The criterion, ``beta`` and ``X'V^-1X`` at ``theta``."""
        sigmas = np.array(self.design.residual.matrices(theta))  # type: ignore[union-attr]
        p = self.p
        xtvx, xtvy = np.zeros(p * p), np.zeros(p)
        ytvy = logdet = 0.0
        for b in self.batches:
            blocks = sigmas[b.groups[:, None, None], b.visits[:, :, None], b.visits[:, None, :]]
            chol = np.linalg.cholesky(blocks)
            inv = np.linalg.inv(blocks)
            diag = np.diagonal(chol, axis1=1, axis2=2)
            logdet += 2.0 * float(b.counts @ np.log(diag).sum(axis=1))
            flat = inv.reshape(-1)
            xtvx += flat @ b.xx
            xtvy += flat @ b.xy
            ytvy += float(flat @ b.yy)
        xtvx = xtvx.reshape(p, p)
        xtvx = (xtvx + xtvx.T) / 2.0
        chol_x = linalg.cho_factor(xtvx, lower=True)
        beta = linalg.cho_solve(chol_x, xtvy)
        rss = ytvy - float(beta @ xtvy)
        objective = logdet + rss + self.n * LOG_2PI
        if self.reml:
            objective += 2.0 * np.sum(np.log(np.diag(chol_x[0]))) - p * LOG_2PI
        return Evaluation(float(objective), beta, xtvx)

    def __call__(self, theta: np.ndarray) -> float:
        try:
            return self.evaluate(theta).objective
        except (linalg.LinAlgError, np.linalg.LinAlgError, ValueError, FloatingPointError):
            return float("inf")


def hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x`` (steps ``step`` in unit-free ``theta``)."""
    k = len(x)
    h = np.full(k, step)
    f0 = f(x)
    out = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        out[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            out[i, j] = out[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h[i] * h[j])
    return out


def gradient(f, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central-difference gradient."""
    out = np.empty(len(x))
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = step
        out[i] = (f(x + e) - f(x - e)) / (2 * step)
    return out


@dataclass
class MMRMOptimum:
    """Where the optimizer ended and how it got there."""

    theta: np.ndarray
    objective: float
    hessian: np.ndarray
    converged: bool
    n_evals: int
    messages: list[str]


def optimize_mmrm(crit: MMRMCriterion) -> MMRMOptimum:
    """BFGS from standard deviations equal to the OLS residual SD and zero correlations,
    then Newton steps while they lower the criterion (up to 20)."""
    res = crit.design.residual
    assert res is not None
    X, y = crit.design.X, crit.design.y
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    sd = float(np.sqrt(resid @ resid / max(len(y) - X.shape[1], 1))) or 1.0
    theta0 = np.concatenate([res.structure.start(sd) for _ in res.groups])
    count = [0]

    def f(theta: np.ndarray) -> float:
        count[0] += 1
        return crit(theta)

    if not np.isfinite(f(theta0)):
        raise ModelError("The covariance of the visits cannot be evaluated at its start.")
    fit = optimize.minimize(f, theta0, method="BFGS", options={"gtol": 1e-4, "maxiter": 2000})
    theta, fmin = fit.x, float(fit.fun)
    for _ in range(20):
        hess = hessian(f, theta)
        grad = gradient(f, theta)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        f_new = f(theta - step)
        if not f_new < fmin:
            break
        gain = fmin - f_new
        theta, fmin = theta - step, f_new
        if gain < 1e-9 * (1.0 + abs(fmin)) or np.max(np.abs(step)) < 1e-8:
            break
    hess = hessian(f, theta)
    grad = gradient(f, theta)
    eig = np.linalg.eigvalsh(hess)
    converged = bool(eig.min() > 0 and abs(grad @ np.linalg.solve(hess, grad)) < 1e-6)
    messages = (
        []
        if converged
        else [
            "The optimizer could not confirm the best covariance of the visits (the criterion is "
            "not flat, or not curved upward, at the end): try a simpler structure."
        ]
    )
    return MMRMOptimum(theta, fmin, hess, converged, count[0], messages)
