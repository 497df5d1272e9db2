"""Kenward-Roger moments of a model with one random-effects grouping factor, level by level.

With one grouping factor (after :func:`~lmm_core.design.reterms.amalgamate` has merged the
terms on it: ``(time | patient)``, ``(1 | g)``, ``(t || g)``), ``Z`` has ``m`` blocks of rows,
one per level, each ``S`` columns wide, and every ``q x q`` matrix of
:mod:`lmm_core.inference.kenward_roger` is block diagonal with ``m`` blocks ``S x S``::

    Z'Z = diag(Z_l'Z_l),   Lambda = I_m (x) lambda,   D_i = I_m (x) E_i
    M_l = lambda' Z_l'Z_l lambda + I,   T_l = lambda M_l^{-1} lambda'   (V^{-1} = I - Z T Z')
    A_l = Z_l'V^{-1}Z_l = Z_l'Z_l - Z_l'Z_l T_l Z_l'Z_l
    B_l = Z_l'V^{-1}X = Z_l'X_l - Z_l'Z_l T_l Z_l'X_l,   C_l = Z_l'V^{-2}X = B_l - A_l T_l Z_l'X_l

and the sums over the ``n`` rows become sums over levels of ``S x S`` and ``S x p`` products
(``sigma^2`` dropped; :func:`block_moments` returns them scaled)::

    X'V^{-1}X = X'X - sum_l X_l'Z_l T_l Z_l'X_l,   X'V^{-2}X = X'V^{-1}X - sum_l B_l' T_l Z_l'X_l
    X'V^{-3}X = X'V^{-2}X - sum_l B_l' T_l B_l
    tr V^{-1} = n - sum_l tr(T_l Z_l'Z_l),   tr V^{-2} = tr V^{-1} - sum_l tr(T_l A_l)
    P_i  = -sum_l B_l' E_i B_l,                       P_res = -X'V^{-2}X
    Q_ij =  sum_l B_l' E_i A_l E_j B_l,               Q_i,res = sum_l B_l' E_i C_l
    K_ij =  sum_l tr(E_i A_l E_j A_l),                K_i,res = sum_l tr(E_i A_l (I - T_l A_l))
    Q_res,res = X'V^{-3}X,                            K_res,res = tr V^{-2}

(``K_ij = tr(Sigma^{-1} G_i Sigma^{-1} G_j)``; the identity part ``I_n`` of ``V^{-1}`` is held
exactly by ``n`` in the traces). The arrays are ``(m, S, S)`` and ``(m, S, p)``: the cost is
``O(n S (S + p) + m S^3 k^2 + m S p^2 k^2)`` for ``k`` covariance parameters, linear in the
number of levels, so there is no size limit.
"""

from __future__ import annotations

import numpy as np

from lmm_core.design.reterms import ReTerm, amalgamate


def single_factor_term(reterms) -> tuple[ReTerm, np.ndarray] | None:
    """The one merged term and its ``theta`` permutation, or None for several grouping factors.

    Returns ``(term, perm)`` with ``theta[perm]`` the merged term's ``theta`` when every term of
    ``reterms`` is on one grouping factor with the same rows (lme4 merges them).
    """
    merged, perm, _ = amalgamate(tuple(reterms))
    if len(merged) != 1:
        return None
    return merged[0], perm


def _level_sums(codes: np.ndarray, left: np.ndarray, right: np.ndarray, m: int) -> np.ndarray:
    """``(m, a, b)``: per level ``l`` the sum over its rows of ``left_r right_r'``."""
    a, b = left.shape[1], right.shape[1]
    out = np.empty((m, a, b))
    for i in range(a):
        for j in range(b):
            out[:, i, j] = np.bincount(codes, weights=left[:, i] * right[:, j], minlength=m)
    return out


def _flat(x: np.ndarray) -> np.ndarray:
    """``(m, S, c)`` as ``(m S, c)``: ``_flat(u).T @ _flat(v)`` is ``sum_l u_l' v_l``."""
    return x.reshape(-1, x.shape[-1])


def block_moments(
    X: np.ndarray, term: ReTerm, theta: np.ndarray, sigma2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P`` ``(k, p, p)``, ``Q`` ``(k, k, p, p)`` and ``K`` ``(k, k)`` of a one-factor model.

    Parameters
    ----------
    X
        ``(n, p)`` fixed-effects model matrix.
    term
        The merged term (:func:`single_factor_term`).
    theta
        The term's ``theta`` (in its own order).
    sigma2
        Residual variance ``sigma^2``.

    Returns
    -------
    The matrices of :mod:`lmm_core.inference.kenward_roger` (module docstring there) with
    ``Sigma = sigma^2 V``: ``P_i``, ``Q_ij`` and ``K_ij = tr(Sigma^{-1} G_i Sigma^{-1} G_j)``,
    the residual parameter last.
    """
    n, p = X.shape
    m, codes, z = term.n_levels, term.codes, term.z
    zz = _level_sums(codes, z, z, m)
    zx = _level_sums(codes, z, X, m)
    lam = term.structure.factor(theta)
    mm = lam.T @ zz @ lam
    mm += np.eye(lam.shape[0])
    t = lam @ np.linalg.solve(mm, np.broadcast_to(lam.T, mm.shape))
    tzx = t @ zx
    ts = t @ zz
    a = zz - zz @ ts  # Z'V^{-1}Z
    bx = zx - zz @ tzx  # Z'V^{-1}X
    cx = bx - a @ tzx  # Z'V^{-2}X
    xv1x = X.T @ X - _flat(zx).T @ _flat(tzx)
    xv2x = xv1x - _flat(bx).T @ _flat(tzx)
    xv3x = xv2x - _flat(bx).T @ _flat(t @ bx)
    tr_v1 = n - float(np.trace(ts, axis1=1, axis2=2).sum())
    tr_v2 = tr_v1 - float(np.sum(t * a))
    zv2z = (a - a @ ts).sum(axis=0)  # sum_l Z_l'V^{-2}Z_l
    basis = term.structure.covariance_basis()
    k = basis.shape[0] + 1
    s4, s6 = sigma2**2, sigma2**3
    dbx = [_flat(e @ bx) for e in basis]  # D_i Z'V^{-1}X
    abx = [_flat(a @ (e @ bx)) for e in basis]
    ea = [e @ a for e in basis]
    P = np.empty((k, p, p))
    Q = np.empty((k, k, p, p))
    K = np.empty((k, k))
    for i in range(k - 1):
        P[i] = -(_flat(bx).T @ dbx[i]) / s4
        for j in range(k - 1):
            Q[i, j] = dbx[i].T @ abx[j] / s6
            K[i, j] = float(np.sum(ea[i] * np.swapaxes(ea[j], 1, 2))) / s4
        Q[i, k - 1] = dbx[i].T @ _flat(cx) / s6
        Q[k - 1, i] = Q[i, k - 1].T
        K[i, k - 1] = K[k - 1, i] = float(np.sum(basis[i] * zv2z.T)) / s4
    P[k - 1] = -xv2x / s4
    Q[k - 1, k - 1] = xv3x / s6
    K[k - 1, k - 1] = tr_v2 / s4
    return P, Q, K
