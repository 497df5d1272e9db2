"""The exact Hessian of the MMRM criterion ``-2 l`` in ``theta`` (:mod:`lmm_core.model.mmrm`).

With ``P = V^-1 - V^-1 X M X' V^-1`` (``M = (X'V^-1X)^-1``), ``V_k = dV/dtheta_k`` and ``beta``
profiled out, ``-2 l_REML = log|V| + log|X'V^-1X| + y'Py + const`` has

    H_kl = - tr(P V_k P V_l) + tr(P V_kl) + 2 y'P V_k P V_l P y - y'P V_kl P y

(ML: ``V^-1`` for ``P`` in the two traces). Per pattern of subjects (``W = Sigma_p^-1``,
``dS_k`` its block of ``V_k``, ``S = sum_i r_i r_i'``, ``B = sum_i X_i M X_i'``) this is

    H_kl = - sum_p n_p tr(W dS_k W dS_l) + 2 sum_p tr(dS_k W dS_l Q_p)
           - tr(M P_k M P_l) - 2 c_k' M c_l + sum_g <G_g, d2Sigma_g / dtheta_k dtheta_l>,

with ``Q_p = W (S + B) W`` (ML: ``W S W``), ``P_k = sum_i X_i' W dS_k W X_i`` (ML: the
``tr(M P M P)`` term dropped), ``c_k = sum_i X_i' W dS_k W r_i``, ``G_g`` the gradient in the
entries of ``Sigma_g`` (:meth:`MMRMCriterion.sigma_gradient`) and the second derivatives of
the structure from central differences of its analytic Jacobian. Every per-subject sum goes
through the pattern's cross-products ``sum_i x_ij x_ik'`` and ``sum_i x_ij r_ik``. ``P_k`` is
also ``-d(X'V^-1X)/dtheta_k``, which gives ``dM/dtheta_k = M P_k M`` for Satterthwaite's df.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

_STEP = 1e-5  # central differences of the analytic Jacobian (theta is unit-free)


def structure_second_derivatives(crit, theta: np.ndarray) -> list[np.ndarray]:
    """``d2Sigma_g / dtheta_k dtheta_l`` per group: ``(L, L, m, m)``."""
    res = crit.residual
    st = res.structure
    k = st.n_theta
    out = []
    for g in range(len(res.groups)):
        th = theta[g * k : (g + 1) * k]
        d2 = np.empty((k, k, st.m, st.m))
        for a in range(k):
            e = np.zeros(k)
            e[a] = _STEP
            d2[a] = (st.jacobian(th + e) - st.jacobian(th - e)) / (2 * _STEP)
        out.append((d2 + d2.transpose(1, 0, 2, 3)) / 2.0)
    return out


def pattern_products(batch, beta: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern: ``sum_i x_ij x_ik'`` ``(q, t*t, p*p)`` and ``sum_i x_ij r_ik``
    ``(q, t*t, p)``."""
    q, t = batch.visits.shape
    if hasattr(batch, "xx"):
        xx = batch.xx.reshape(q, t * t, p * p)
        xr = batch.xy.reshape(q, t * t, p) - (batch.xx @ np.outer(beta, np.eye(p)).reshape(
            p * p, p)).reshape(q, t * t, p)  # fmt: skip
        return xx, xr
    xx = np.empty((q, t * t, p * p))
    xr = np.empty((q, t * t, p))
    ends = np.r_[batch.starts[1:], len(batch.member)]
    for j, (a, b) in enumerate(zip(batch.starts, ends, strict=True)):
        xs, ys = batch.X[a:b], batch.y[a:b, :, 0]
        rs = ys - xs @ beta
        flat = xs.reshape(b - a, t * p)
        xx[j] = (flat.T @ flat).reshape(t, p, t, p).transpose(0, 2, 1, 3).reshape(t * t, p * p)
        xr[j] = (flat.T @ rs).reshape(t, p, t).transpose(0, 2, 1).reshape(t * t, p)
    return xx, xr


def hessian_and_xtvx_jacobian(crit, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact Hessian of ``-2 l`` at ``theta`` and ``P_k = -d(X'V^-1X)/dtheta_k``
    ``(K, p, p)`` (formulas in the module docstring)."""
    state = crit._forward(theta)
    beta, p = state.evaluation.beta, crit.p
    minv = linalg.cho_solve(state.chol_x, np.eye(p))
    res = crit.residual
    n_l = res.structure.n_theta
    n_k = n_l * len(res.groups)
    jac = np.array(crit._jacobians(theta))  # (groups, L, m, m)
    h = np.zeros((n_k, n_k))
    p_mats = np.zeros((n_k, p * p))
    c_vec = np.zeros((n_k, p))
    grad_sigma = np.zeros_like(state.sigmas)
    for b, (inv, chol, cache) in zip(crit.batches, state.parts, strict=True):
        g_sig = b.sigma_gradient(inv, chol, cache, beta, minv if crit.reml else None)
        idx = (b.groups[:, None, None], b.visits[:, :, None], b.visits[:, None, :])
        np.add.at(grad_sigma, idx, g_sig)
        q_mat = b.counts[:, None, None] * inv - g_sig  # W (S + B) W
        q, t = b.visits.shape
        rows = np.arange(q)[:, None, None, None]
        ds = jac[b.groups][rows, np.arange(n_l)[None, :, None, None],
                           b.visits[:, None, :, None], b.visits[:, None, None, :]]  # fmt: skip
        a = inv[:, None] @ ds  # W dS_l: (q, L, t, t)
        e = a @ q_mat[:, None]  # W dS_l Q
        info = a.reshape(q, n_l, -1) @ (a.transpose(0, 1, 3, 2).reshape(q, n_l, -1)
                                        * b.counts[:, None, None]).transpose(0, 2, 1)  # fmt: skip
        trace = ds.reshape(q, n_l, -1) @ e.transpose(0, 1, 3, 2).reshape(q, n_l, -1).transpose(
            0, 2, 1)  # fmt: skip
        local = 2.0 * trace - info
        gl = (a @ inv[:, None]).reshape(q, n_l, t * t)  # W dS_l W
        xx, xr = pattern_products(b, beta, p)
        pm = gl @ xx  # (q, L, p*p)
        cv = gl @ xr  # (q, L, p)
        for grp in np.unique(b.groups):
            sel = b.groups == grp
            block = slice(grp * n_l, (grp + 1) * n_l)
            h[block, block] += local[sel].sum(0)
            p_mats[block] += pm[sel].sum(0)
            c_vec[block] += cv[sel].sum(0)
    p_mats = p_mats.reshape(n_k, p, p)
    h -= 2.0 * c_vec @ minv @ c_vec.T
    if crit.reml:
        mp = (minv @ p_mats).reshape(n_k, -1)
        h -= mp @ mp.reshape(n_k, p, p).transpose(0, 2, 1).reshape(n_k, -1).T
    for g, d2 in enumerate(structure_second_derivatives(crit, theta)):
        block = slice(g * n_l, (g + 1) * n_l)
        h[block, block] += np.einsum("klij,ij->kl", d2, grad_sigma[g])
    return (h + h.T) / 2.0, p_mats
