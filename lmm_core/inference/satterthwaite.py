"""Satterthwaite denominator degrees of freedom for fixed-effect contrasts (lmerTest's method).

For a contrast ``L beta`` (``L`` one row) with variance ``v = L C L'``, where
``C = Var(beta_hat; varpar)``, Satterthwaite's approximation (Satterthwaite 1946; Giesbrecht
& Burns 1985; Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13), eq. 4) is::

    df = 2 v^2 / (g' A g),     g_i = L (dC / d varpar_i) L',     A = 2 H^+

with ``varpar = (theta, sigma)`` (lmerTest's parameters), ``H`` the Hessian of the deviance
(the REML criterion for a REML fit) with respect to ``varpar`` at the estimates, and ``H^+``
its Moore-Penrose inverse over the eigenvalues above ``1e-8`` (lmerTest's rule, which keeps
singular fits usable), taken in the unit-free coordinates ``(theta * s, sigma / sigma_hat)``
(``s`` of :func:`lmm_core.design.reterms.theta_scale`) so that the cut does not depend on units.
For several rows (an F test, lmerTest's ``contestMD``) the rows are
rotated to the eigenvectors of ``L C L'`` (eigenvalues ``d_m``), each rotated row gets its
own ``nu_m`` as above, and ``F = sum_m (P_m' L beta)^2 / d_m / q`` has denominator df
``2 E / (E - q)`` with ``E = sum_m nu_m / (nu_m - 2)`` (2 if any ``nu_m <= 2``; their mean if
all ``nu_m`` are equal).

The deviance as a function of ``varpar`` is not profiled over ``sigma`` (lmerTest's
``devfun_vp``), and ``sigma`` enters in closed form::

    D(theta, sigma) = a(theta) + b(theta) / sigma^2 + c log(2 pi sigma^2)
    a = log|L_Z|^2 (+ log|L_X|^2 for REML),  b = r^2 (pwrss),  c = n (n - p for REML)
    C(theta, sigma) = sigma^2 K(theta),      K = (L_X L_X')^{-1}

so ``H_ss = 6 b / sigma^4 - 2 c / sigma^2``, ``H_ts = -2 b' / sigma^3``,
``H_tt = a'' + b'' / sigma^2``, ``dC/dsigma = 2 sigma K`` and ``dC/dtheta = sigma^2 K'``.

Derivatives in ``theta``: central finite differences of the blocked factor, Richardson-
extrapolated (steps ``h`` and ``h / 2``, error ``O(h^4)``), ``h_i = 3e-3 max(|phi_i|, 1) / s_i``
with ``phi = theta * s`` the unit-free parameters of :func:`lmm_core.design.reterms.theta_scale`: a
step in ``theta`` itself would be far larger than ``theta`` when a covariate is in small units
(time in seconds: ``theta`` of the slope about 1e-5; a step of 3e-3 gave df 0.0006 instead of
17 on sleepstudy). The df are invariant to the parameterisation, so nothing else changes.
Why not analytic: second derivatives of ``log|L_Z|^2`` and of the penalized RSS need
``Z'V^{-1}Z`` and its products (dense ``q x q``, ``q`` the number of random effects), which is
what :mod:`lmm_core.inference.kenward_roger` builds; measured, that costs 0.75 s on the 3k-row
``sim_small`` model (``q = 1,020``) and grows as ``q^3`` (25,000 random effects in the
80k-row trial: out of reach), whereas one evaluation of the factor never touches the rows
and costs a few milliseconds even there. With ``k`` theta elements the scheme takes
``4 k^2 + 3`` evaluations (measured: 4 ms on sleepstudy, 33 ms on sim_small, 0.5 s on
the 79k-row trial with 25,100 random effects, against 1.1 s for its fit). Step choice,
measured on the 31 reference fits at lme4's theta (largest relative df deviation from
lmerTest): ``h = 3e-2``: 1.6e-2, ``1e-2``: 1.8e-4,
``3e-3``: 1.2e-6, ``1e-3``: 2.6e-5, ``1e-4``: 2.5e-3. Below ``3e-3`` rounding dominates: an
evaluation of the criterion is exact to only about ``1e-12`` relative (the cross-products
cancel ``y'y`` against the fitted part), and the second difference divides that by ``h^2``.

Singular fits: the deviance is smooth in ``theta`` through 0 (a negative diagonal element of
``Lambda`` is a valid evaluation point), so the differences are taken across the boundary as
lmerTest does; for a single scalar term at ``theta = 0`` this gives ``df = n - p`` (REML).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.linalg import single_threaded_blas, tri_solve

#: Eigenvalues of the Hessian at or below this are dropped from its inverse (lmerTest).
HESSIAN_TOL = 1e-8


@dataclass(frozen=True)
class VarparDerivatives:
    """What Satterthwaite's df needs, computed once per fit.

    Attributes
    ----------
    varpar
        ``(theta..., sigma)`` at the estimates.
    hessian
        Hessian of the deviance with respect to ``varpar``.
    vcov_varpar
        ``A = 2 H^+``, the asymptotic covariance of ``varpar``.
    jacobian
        ``(k + 1, p, p)``: derivative of ``Var(beta_hat)`` with respect to each element of
        ``varpar``.
    n_evaluations
        Evaluations of the blocked factor used.
    """

    varpar: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    n_evaluations: int


def _pieces(dev: ProfiledDeviance, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``a(theta)``, ``b(theta)`` and ``K(theta)`` of the module docstring."""
    f = dev.factor(theta)
    a = f.ldl2 + (f.ldrx2 if dev.reml else 0.0)
    p = dev.p
    if p:
        inv = tri_solve(f.l33[:p, :p], np.eye(p))
        k = inv.T @ inv
    else:
        k = np.zeros((0, 0))
    return a, f.pwrss, k


def _central(dev: ProfiledDeviance, theta: np.ndarray, h: np.ndarray):
    """Central-difference gradient and Hessian of ``a``, ``b`` and gradient of ``K``."""
    nt = theta.size
    a0, b0, _ = _pieces(dev, theta)
    ga, gb = np.zeros(nt), np.zeros(nt)
    ha, hb = np.zeros((nt, nt)), np.zeros((nt, nt))
    gk = np.zeros((nt, dev.p, dev.p))
    for i in range(nt):
        e = np.zeros(nt)
        e[i] = h[i]
        ap, bp, kp = _pieces(dev, theta + e)
        am, bm, km = _pieces(dev, theta - e)
        ga[i], gb[i] = (ap - am) / (2 * h[i]), (bp - bm) / (2 * h[i])
        gk[i] = (kp - km) / (2 * h[i])
        ha[i, i] = (ap - 2 * a0 + am) / h[i] ** 2
        hb[i, i] = (bp - 2 * b0 + bm) / h[i] ** 2
        for j in range(i):
            vals = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                t = theta.copy()
                t[i] += si * h[i]
                t[j] += sj * h[j]
                a, b, _ = _pieces(dev, t)
                vals.append((a, b))
            (app, bpp), (apm, bpm), (amp, bmp), (amm, bmm) = vals
            ha[i, j] = ha[j, i] = (app - apm - amp + amm) / (4 * h[i] * h[j])
            hb[i, j] = hb[j, i] = (bpp - bpm - bmp + bmm) / (4 * h[i] * h[j])
    return b0, gb, ha, hb, gk


def varpar_derivatives(
    dev: ProfiledDeviance, theta: np.ndarray, sigma: float, *, step: float = 3e-3
) -> VarparDerivatives:
    """Hessian of the deviance in ``(theta, sigma)`` and the Jacobian of ``Var(beta_hat)``.

    Parameters
    ----------
    dev
        The profiled deviance of the fit (REML or ML as fitted).
    theta, sigma
        The estimates.
    step
        Finite-difference step for ``theta`` element ``i``: ``step * max(|phi_i|, 1) / s_i``
        (unit-free, module docstring); Richardson extrapolation combines it with half that
        step.

    Returns
    -------
    VarparDerivatives
    """
    theta = np.asarray(theta, float)
    nt, p = theta.size, dev.p
    scale = dev.theta_scale
    h = step * np.maximum(np.abs(theta * scale), 1.0) / scale
    with single_threaded_blas():
        coarse = _central(dev, theta, h)
        fine = _central(dev, theta, h / 2)
        _, _, k0 = _pieces(dev, theta)
    b0 = fine[0]
    gb, ha, hb, gk = ((4 * f - c) / 3 for f, c in zip(fine[1:], coarse[1:], strict=True))
    c = dev.n - p if dev.reml else dev.n
    s2 = sigma**2
    hess = np.empty((nt + 1, nt + 1))
    hess[:nt, :nt] = ha + hb / s2
    hess[:nt, nt] = hess[nt, :nt] = -2.0 * gb / sigma**3
    hess[nt, nt] = 6.0 * b0 / s2**2 - 2.0 * c / s2
    # The pseudo-inverse in unit-free coordinates u = (phi, sigma / sigma_hat) = D varpar:
    # an eigenvalue cut in varpar's own units would drop the slope of a covariate in large
    # units (its theta is large, its curvature tiny). H_u = D^-1 H D^-1, A = D^-1 A_u D^-1.
    d = np.append(dev.theta_scale, 1.0 / sigma)
    vals, vecs = np.linalg.eigh(hess / np.outer(d, d))
    keep = vals > HESSIAN_TOL
    h_pinv = ((vecs[:, keep] / vals[keep]) @ vecs[:, keep].T) / np.outer(d, d)
    jac = np.empty((nt + 1, p, p))
    jac[:nt] = s2 * gk
    jac[nt] = 2.0 * sigma * k0
    return VarparDerivatives(
        varpar=np.append(theta, sigma),
        hessian=hess,
        vcov_varpar=2.0 * h_pinv,
        jacobian=jac,
        n_evaluations=4 * nt * nt + 3,
    )


def satterthwaite_row_df(deriv: VarparDerivatives, vcov: np.ndarray, row: np.ndarray) -> float:
    """Satterthwaite df of one contrast row ``l``: ``2 (l C l')^2 / (g' A g)``.

    Returns ``inf`` when the variance of the contrast does not depend on the variance
    parameters at all (``g' A g = 0``).
    """
    row = np.asarray(row, float)
    var = float(row @ vcov @ row)
    grad = np.einsum("i,kij,j->k", row, deriv.jacobian, row)
    denom = float(grad @ deriv.vcov_varpar @ grad)
    if denom <= 0.0:
        return float("inf")
    return 2.0 * var * var / denom


def f_test_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F test from the df of its orthogonal t tests (lmerTest).

    ``2 E / (E - q)`` with ``E = sum nu_m / (nu_m - 2)``; 2 if some ``nu_m <= 2``; the mean
    when all are equal (within ``tol``); the single value when ``q = 1``.
    """
    nu = np.asarray(nu, float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - nu.size)


def satterthwaite_f(
    deriv: VarparDerivatives, beta: np.ndarray, vcov: np.ndarray, L: np.ndarray, rhs: float = 0.0
) -> tuple[float, int, float]:
    """F statistic, numerator df and Satterthwaite denominator df for ``L beta = rhs``.

    Follows lmerTest's ``contestMD``: eigen-decompose ``L C L' = P diag(d) P'``, keep the
    ``q`` eigenvalues above ``max(eps * d_1, 0)`` (``eps`` = machine epsilon, numerical rank),
    ``F = sum_m ((P'L beta)_m - (P' rhs)_m)^2 / d_m / q``, and ``nu_m`` the Satterthwaite df of
    row ``m`` of ``P'L``; combined by :func:`f_test_ddf`.
    """
    L = np.atleast_2d(np.asarray(L, float))
    vl = L @ vcov @ L.T
    d, P = np.linalg.eigh(vl)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    tol = max(np.finfo(float).eps * d[0], 0.0)
    pos = d > tol
    q = int(pos.sum())
    ptl = P[:, pos].T @ L
    est = ptl @ beta - P[:, pos].T @ (np.broadcast_to(rhs, (L.shape[0],)))
    f_value = float(np.sum(est**2 / d[pos]) / q)
    nu = np.array([satterthwaite_row_df(deriv, vcov, r) for r in ptl])
    return f_value, q, f_test_ddf(nu)
