"""Kenward-Roger adjusted covariance of the fixed effects and denominator df.

Kenward & Roger (1997, Biometrics 53, 983-997), as pbkrtest's ``vcovAdj`` and ``KRmodcomp``
(Halekoh & Hojsgaard 2014, JSS 59(9)). The marginal covariance is written linearly in the
covariance parameters ``gamma`` (the variances and covariances of each random-effects term,
then the residual variance)::

    Sigma = sum_i gamma_i G_i,   G_i = Z_k (I_m (x) E_i) Z_k',   G_res = I_n

with ``E_i`` the term's covariance basis
(:meth:`~lmm_core.design.covariance.CovarianceStructure.covariance_basis`: for an unstructured
term ``e_a e_b' + e_b e_a'`` or ``e_a e_a'`` per lower-triangle entry, column-major).

With ``Phi = (X'Sigma^{-1}X)^{-1}`` (lme4's ``vcov``)::

    P_i  = -X'Sigma^{-1} G_i Sigma^{-1} X
    Q_ij =  X'Sigma^{-1} G_i Sigma^{-1} G_j Sigma^{-1} X
    I_ij =  tr(Sigma^{-1} G_i Sigma^{-1} G_j) - 2 tr(Phi Q_ij) + tr(Phi P_i Phi P_j)
    W    =  2 I^{-1}                      (expected REML information is I / 2)
    Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi     (R_ij = 0: Sigma linear)

and for ``L`` of rank ``q``, ``Theta = L'(L Phi L')^{-1} L`` (the unadjusted ``Phi``, as
pbkrtest) and ``u_i = Theta Phi P_i Phi``::

    A1 = sum_ij W_ij tr(u_i) tr(u_j),   A2 = sum_ij W_ij tr(u_i u_j)
    B  = (A1 + 6 A2) / (2 q),   g = ((q + 1) A1 - (q + 4) A2) / ((q + 2) A2)
    c1 = g / (3q + 2(1 - g)),  c2 = (q - g) / (3q + 2(1 - g)),  c3 = (q + 2 - g) / (3q + 2(1 - g))
    E* = 1 / (1 - A2 / q),     V* = (2 / q) (1 + c1 B) / ((1 - c2 B)^2 (1 - c3 B))
    rho = V* / (2 E*^2),       m = 4 + (q + 2) / (q rho - 1),   lambda = m / (E* (m - 2))

``m`` is the denominator df; the F statistic ``lambda (L b)'(L Phi_A L')^{-1}(L b) / q``. A t
test of one row uses the unscaled ``t = l b / sqrt(l Phi_A l')`` with ``m`` df (as lmerTest).

Computation: never with ``n x n`` matrices. With ``Sigma = sigma^2 V``, ``V = I + Z T0 Z'``
and Woodbury ``V^{-1} = I - Z T Z'``, ``T = Lambda (Lambda'Z'Z Lambda + I)^{-1} Lambda'``,
every quantity above is a product of ``q x q`` and ``q x p`` matrices (``Z'V^{-1}Z``,
``Z'V^{-1}X``, ``Z'V^{-2}X``, ``tr V^{-2}``, ...), ``q`` the number of random effects.

- One grouping factor (``(time | patient)``, ``(1 | g)``, ``(t || g)``: the terms on it merged
  as lme4 does): every ``q x q`` matrix is block diagonal, ``m`` blocks of ``S x S``, and
  :mod:`lmm_core.inference.kenward_roger_blocks` computes level by level, in time linear in
  the number of levels (``O(m S^3 k^2 + m S p^2 k^2)`` for ``k`` covariance parameters): no
  size limit (the 12,500-patient trial, 79k rows, in about 40 ms).
- Several grouping factors (nested, crossed): dense ``q x q`` matrices, ``O(q^3 + k q^2 p)``
  (0.75 s on the 3k-row ``sim_small`` model with ``q = 1,020``); models with more than
  :data:`MAX_RANDOM_EFFECTS` random effects are refused with :class:`KenwardRogerTooLarge`.

Both give the same numbers (to rounding); ``dense=True`` of :func:`kr_adjustment` forces the
dense form, as a check.

An ML fit is refitted by REML first, as pbkrtest does (the method is defined for REML).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve

from lmm_core.design.reterms import term_factors
from lmm_core.errors import LMMError
from lmm_core.inference.kenward_roger_blocks import block_moments, single_factor_term
from lmm_core.model.fit import fit_design
from lmm_core.model.linalg import single_threaded_blas

#: Largest number of random effects (columns of Z) for which the dense Kenward-Roger form (several
#: grouping factors) is computed; one grouping factor has no limit.
MAX_RANDOM_EFFECTS = 4000


class KenwardRogerTooLarge(LMMError):
    """The model has too many random effects for the dense Kenward-Roger computation."""


@dataclass(frozen=True)
class KRAdjustment:
    """The Kenward-Roger pieces of one REML fit.

    Attributes
    ----------
    vcov
        ``Phi``, the usual covariance of the fixed effects.
    vcov_adj
        ``Phi_A``, the adjusted covariance.
    P
        ``(k, p, p)``: the matrices ``P_i``.
    W
        ``(k, k)``: ``2 I^{-1}``, the asymptotic covariance of the covariance parameters.
    refitted_reml
        True when the fit was ML and a REML refit was used.
    """

    vcov: np.ndarray
    vcov_adj: np.ndarray
    P: np.ndarray
    W: np.ndarray
    refitted_reml: bool = False


def _z_matrix(reterms) -> sp.csc_matrix:
    blocks = []
    for t in reterms:
        n, s = t.z.shape
        rows = np.repeat(np.arange(n), s)
        cols = (t.codes[:, None] * s + np.arange(s)).ravel()
        blocks.append(sp.csc_matrix((t.z.ravel(), (rows, cols)), shape=(n, t.n_levels * s)))
    return sp.hstack(blocks, format="csc")


def _lambda_matrix(reterms, theta: np.ndarray) -> np.ndarray:
    q = sum(t.n_levels * t.n_columns for t in reterms)
    lam = np.zeros((q, q))
    off = 0
    for t, blk in zip(reterms, term_factors(reterms, theta), strict=True):
        s = t.n_columns
        for lev in range(t.n_levels):
            lam[off + lev * s : off + (lev + 1) * s, off + lev * s : off + (lev + 1) * s] = blk
        off += t.n_levels * s
    return lam


def _params(reterms) -> list[tuple[int, int, np.ndarray]]:
    """``(offset, levels, E)`` of each random covariance parameter: ``E`` the term's
    :meth:`~lmm_core.design.covariance.CovarianceStructure.covariance_basis` matrices."""
    out, off = [], 0
    for t in reterms:
        out.extend((off, t.n_levels, e) for e in t.structure.covariance_basis())
        off += t.n_levels * t.n_columns
    return out


def _apply_d(par: tuple[int, int, np.ndarray], m: np.ndarray) -> np.ndarray:
    """Rows of ``D_i m`` in the term's block (``D_i = I (x) E_i`` there, 0 elsewhere)."""
    off, levels, e = par
    s = e.shape[0]
    blk = m[off : off + levels * s].reshape(levels, s, -1)
    return np.einsum("ab,mbc->mac", e, blk).reshape(levels * s, -1)


def kr_adjustment(result, dense: bool = False) -> KRAdjustment:
    """Kenward-Roger adjusted covariance ``Phi_A`` of a fit (module docstring).

    Parameters
    ----------
    result
        An :class:`lmm_core.model.results.LMMResult`; an ML fit is refitted by REML first.
    dense
        Use the dense ``q x q`` form even for one grouping factor (a check of the level-by-level
        form; subject to :data:`MAX_RANDOM_EFFECTS`).

    Raises
    ------
    KenwardRogerTooLarge
        If the dense form is needed (several grouping factors, or ``dense``) and the model has
        more than :data:`MAX_RANDOM_EFFECTS` random effects.
    """
    refitted = False
    if not result.reml:
        result = fit_design(result.design, reml=True)
        refitted = True
    design = result.design
    reterms = design.reterms
    single = None if dense else single_factor_term(reterms)
    q = sum(t.n_levels * t.n_columns for t in reterms)
    if single is None and q > MAX_RANDOM_EFFECTS:
        raise KenwardRogerTooLarge(
            f"Kenward-Roger with several grouping factors needs dense matrices of the size of "
            f"the random effects; this model has {q:,} of them (limit "
            f"{MAX_RANDOM_EFFECTS:,}). Use Satterthwaite degrees of freedom instead: they agree "
            "closely with Kenward-Roger for large data sets."
        )
    sigma2 = result.sigma**2
    with single_threaded_blas():
        if single is None:
            P, Q, K = _dense_moments(design.X, reterms, result.theta, sigma2)
        else:
            term, perm = single
            P, Q, K = block_moments(design.X, term, result.theta[perm], sigma2)
        return _finish(result.vcov_beta, P, Q, K, refitted)


def _dense_moments(
    X: np.ndarray, reterms, theta: np.ndarray, sigma2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P`` ``(k, p, p)``, ``Q`` ``(k, k, p, p)``, ``K`` ``(k, k)`` (``K_ij = tr(Sigma^{-1} G_i
    Sigma^{-1} G_j)``) with dense ``q x q`` matrices; the residual parameter last."""
    n, p = X.shape
    z = _z_matrix(reterms)
    zz = (z.T @ z).toarray()
    zx = np.asarray(z.T @ X)
    lam = _lambda_matrix(reterms, theta)
    m = lam.T @ zz @ lam
    m[np.diag_indices_from(m)] += 1.0
    t = lam @ cho_solve(cho_factor(m, lower=True), lam.T)  # V^{-1} = I - Z T Z'
    ts = t @ zz
    a = zz - zz @ ts  # Z'V^{-1}Z
    bx = zx - zz @ (t @ zx)  # Z'V^{-1}X
    cx = bx - a @ (t @ zx)  # Z'V^{-2}X
    xv1x = X.T @ X - zx.T @ t @ zx
    xv2x = xv1x - bx.T @ t @ zx
    xv3x = xv2x - bx.T @ t @ bx
    tr_v1 = n - np.trace(ts)
    tr_v2 = tr_v1 - float(np.sum(t * a))  # tr(T A), both symmetric
    zv2z_diag = a - a @ ts  # Z'V^{-2}Z
    pars = _params(reterms)
    k = len(pars) + 1
    s4, s6 = sigma2**2, sigma2**3
    dbx = []  # D_i Z'V^{-1}X (full q rows)
    da = []  # rows of D_i Z'V^{-1}Z in the term's block
    for par in pars:
        full = np.zeros_like(bx)
        off, levels, e = par
        full[off : off + levels * e.shape[0]] = _apply_d(par, bx)
        dbx.append(full)
        da.append(_apply_d(par, a))
    P = np.empty((k, p, p))
    for i in range(k - 1):
        P[i] = -(bx.T @ dbx[i]) / s4
    P[k - 1] = -xv2x / s4
    Q = np.empty((k, k, p, p))
    K = np.empty((k, k))
    a_dbx = [a @ d for d in dbx]
    for i in range(k - 1):
        oi, li, ei = pars[i]
        ri = slice(oi, oi + li * ei.shape[0])
        for j in range(k - 1):
            oj, lj, ej = pars[j]
            rj = slice(oj, oj + lj * ej.shape[0])
            Q[i, j] = dbx[i].T @ a_dbx[j] / s6
            K[i, j] = float(np.sum(da[i][:, rj] * da[j][:, ri].T)) / s4
        Q[i, k - 1] = dbx[i].T @ cx / s6
        Q[k - 1, i] = Q[i, k - 1].T
        blk = _apply_d(pars[i], zv2z_diag[:, ri])  # rows of D_i Z'V^{-2}Z, term columns
        K[i, k - 1] = K[k - 1, i] = float(np.trace(blk)) / s4
    Q[k - 1, k - 1] = xv3x / s6
    K[k - 1, k - 1] = tr_v2 / s4
    return P, Q, K


def _finish(
    phi: np.ndarray, P: np.ndarray, Q: np.ndarray, K: np.ndarray, refitted: bool
) -> KRAdjustment:
    """``W = 2 I^{-1}`` and ``Phi_A`` from ``P``, ``Q``, ``K`` (module docstring)."""
    k, p = P.shape[0], phi.shape[0]
    info = np.empty((k, k))
    for i in range(k):
        phi_pi = phi @ P[i]
        for j in range(k):
            info[i, j] = K[i, j] - 2.0 * np.sum(phi * Q[i, j]) + np.sum(phi_pi * (P[j] @ phi))
    info = 0.5 * (info + info.T)
    # Invert in unit-free form: gamma holds variances of random effects of covariates in any
    # unit (a slope on time in seconds has a variance ~1e-10 of that on days), so scale the
    # information to unit diagonal before deciding between inverse and pseudo-inverse.
    d = np.sqrt(np.abs(np.diagonal(info)))
    d = np.where(d > 0, d, 1.0)
    info_unit = info / np.outer(d, d)
    if np.min(np.abs(np.linalg.eigvalsh(info_unit))) > 1e-10:
        W = 2.0 * np.linalg.inv(info_unit) / np.outer(d, d)
    else:
        W = 2.0 * np.linalg.pinv(info_unit) / np.outer(d, d)
    U = np.zeros((p, p))
    for i in range(k):
        for j in range(k):
            U += W[i, j] * (Q[i, j] - P[i] @ phi @ P[j])
    phi_a = phi + 2.0 * phi @ U @ phi
    phi_a = 0.5 * (phi_a + phi_a.T)
    return KRAdjustment(vcov=phi, vcov_adj=phi_a, P=P, W=W, refitted_reml=refitted)


def kr_ddf(adj: KRAdjustment, L: np.ndarray) -> tuple[float, float]:
    """Kenward-Roger denominator df ``m`` and F scaling ``lambda`` for ``L beta``.

    ``L`` has full row rank ``q`` (one row for a t test). See the module docstring; this is
    pbkrtest's ``Lb_ddf`` / ``.KR_adjust``.
    """
    L = np.atleast_2d(np.asarray(L, float))
    q = int(np.linalg.matrix_rank(L))
    phi = adj.vcov
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    tp = theta @ phi
    u = np.einsum("ab,kbc,cd->kad", tp, adj.P, phi)
    tr_u = np.trace(u, axis1=1, axis2=2)
    a1 = float(tr_u @ adj.W @ tr_u)
    a2 = float(np.einsum("ij,iab,jba->", adj.W, u, u))
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    v0 = 1.0 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1.0 - c2 * b, 1.0 - c3 * b
    ratio = (1.0 - a2 / q) / v1 if abs(v1) > 1e-10 else 0.0
    rho = ratio**2 * v0 / v2 / q
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    scaling = 1.0 if abs(m - 4.0) < 1e-2 else m * (1.0 - a2 / q) / (m - 2.0)
    return float(m), float(scaling)
