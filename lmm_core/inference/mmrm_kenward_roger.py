"""Kenward-Roger for MMRM fits, as R's mmrm (``vcov = "Kenward-Roger"`` and
``"Kenward-Roger-Linear"``).

With ``Phi = (X' V^-1 X)^-1`` (model-based), ``W`` the covariance of the covariance parameters
``psi`` (mmrm's parametrization, :mod:`lmm_core.inference.mmrm_theta`; ``W = K W_theta K'``,
``K = dpsi/dtheta``) and, summed over subjects,

    P_k  = - sum_i X_i' Sigma_i^-1 dSigma_i/dpsi_k Sigma_i^-1 X_i,
    Q_kl =   sum_i X_i' Sigma_i^-1 dSigma_k Sigma_i^-1 dSigma_l Sigma_i^-1 X_i,
    R_kl =   sum_i X_i' Sigma_i^-1 d2Sigma_i/dpsi_k dpsi_l Sigma_i^-1 X_i,

the adjusted covariance of ``beta`` is (Kenward & Roger 1997)

    Phi_A = Phi + 2 Phi [sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)] Phi;

the "linear" variant drops ``R`` (exact when ``Sigma`` is linear in its parameters, as SAS's
unstructured ``UN``, and then independent of the parametrization). Every sum over subjects is a
sum over patterns (subjects of one group with the same visits) of ``sum_jk M_jk A_p[j, k]``,
``A_p[j, k] = sum_i x_ij x_ik'`` (:mod:`lmm_core.inference.mmrm_subjects`); ``W`` is contracted at
the pattern level, so the cost is ``O(patterns (k^2 t^3 + k t^2 p^2))``.

The df for ``L beta`` (``q`` rows) is mmrm's ``h_kr_df``: with ``M = L'(L Phi L')^-1 L``,
``a1 = sum_kl W_kl tr(M Phi P_k Phi) tr(M Phi P_l Phi)``, ``a2 = sum_kl W_kl
tr(M Phi P_k Phi M Phi P_l Phi)``, ``B = (a1 + 6 a2) / (2q)``, ``g = ((q+1) a1 - (q+4) a2) /
((q+2) a2)``, ``c1 = g / (3q+2-2g)``, ``c2 = (q-g) / (3q+2-2g)``, ``c3 = (q+2-g) /
(3q+2-2g)``, ``E* = 1 / (1 - a2/q)``, ``V* = 2/q (1 + c1 B) / ((1 - c2 B)^2 (1 - c3 B))``,
``rho = V* / (2 E*^2)``: ``m = 4 + (q+2) / (q rho - 1)`` and the F scale ``lambda = m /
(E* (m - 2))``. For one row ``a1 = a2`` and ``m`` is Satterthwaite's df (mmrm's KR df equal its
Satterthwaite df; only the standard errors differ).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lmm_core.errors import LMMError
from lmm_core.inference.mmrm_theta import psi_jacobian, residual_psi, sigma_derivatives
from lmm_core.model.mmrm_hessian import pattern_products
from lmm_core.model.mmrm_results import MMRMResult


@dataclass(frozen=True)
class KenwardRogerPieces:
    """What Kenward-Roger needs from one fit (computed once, kept on the result).

    Attributes
    ----------
    vcov
        ``Phi_A``, the adjusted covariance of ``beta``.
    vcov_linear
        The same without the second-derivative term ``R`` ("Kenward-Roger-Linear").
    p_mats
        ``P_k``, ``(k, p, p)``.
    w_psi
        Covariance of mmrm's ``psi``.
    """

    vcov: np.ndarray
    vcov_linear: np.ndarray
    p_mats: np.ndarray
    w_psi: np.ndarray


def kenward_roger_pieces(result: MMRMResult) -> KenwardRogerPieces:
    """``Phi_A`` (with and without ``R``), ``P_k`` and ``W`` at the fit's optimum."""
    if not result.reml:
        raise LMMError(
            "Kenward-Roger needs a REML fit (as in mmrm and SAS); refit with reml=True or use "
            "Satterthwaite's df."
        )
    res = result.design.residual
    assert res is not None
    theta = result.opt.theta
    jac = psi_jacobian(res, theta)
    w_psi = jac @ result.theta_vcov @ jac.T
    psi = residual_psi(res, theta)
    kg = res.structure.n_theta
    sigmas = res.matrices(theta)
    derivs = [
        sigma_derivatives(res.structure, psi[g * kg : (g + 1) * kg]) for g in range(len(sigmas))
    ]
    phi = result.vcov_beta
    p = phi.shape[0]
    k = len(psi)
    p_mats = np.zeros((k, p, p))
    q_sum = np.zeros((p, p))
    r_sum = np.zeros((p, p))
    for g, v, xx in _pattern_cross_products(result):
        block = slice(g * kg, (g + 1) * kg)
        w = w_psi[block, block]
        d1 = derivs[g][0][:, v[:, None], v[None, :]]  # (kg, t, t)
        s2 = np.einsum("kl,klab->ab", w, derivs[g][1])[v[:, None], v[None, :]]
        inv = np.linalg.inv(sigmas[g][v[:, None], v[None, :]])
        b = inv @ d1  # Sigma^-1 dSigma_k
        t = len(v)
        p_mats[block] -= ((b @ inv).reshape(kg, t * t) @ xx).reshape(kg, p, p)
        wb = np.einsum("kl,lab->kab", w, b)
        q_mat = np.sum(b @ wb, axis=0) @ inv
        q_sum += (q_mat.reshape(t * t) @ xx).reshape(p, p)
        r_sum += ((inv @ s2 @ inv).reshape(t * t) @ xx).reshape(p, p)
    pw = np.tensordot(w_psi, p_mats, axes=(1, 0))  # sum_l W_kl P_l
    pvp = np.sum(p_mats @ phi @ pw, axis=0)
    linear = phi + 2.0 * phi @ (q_sum - pvp) @ phi
    full = linear - 0.5 * phi @ r_sum @ phi
    return KenwardRogerPieces(_sym(full), _sym(linear), p_mats, w_psi)


def _pattern_cross_products(result: MMRMResult) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per pattern: its group, visits and ``A_p[j, k] = sum_i x_ij x_ik'`` as ``(t*t, p*p)``,
    from the criterion's batches (summed products, or the rows of small patterns; a streamed
    fit has only the sums)."""
    p = len(result.beta)
    for batch in result.criterion.batches:
        xx, _ = pattern_products(batch, result.beta, p)
        for j in range(len(batch.counts)):
            yield int(batch.groups[j]), batch.visits[j], xx[j]


def _sym(a: np.ndarray) -> np.ndarray:
    return (a + a.T) / 2.0


def kenward_roger_df(
    phi: np.ndarray, contrast: np.ndarray, w: np.ndarray, p_mats: np.ndarray
) -> tuple[float, float]:
    """Kenward-Roger denominator df ``m`` and F scale ``lambda`` for ``L beta`` (rows of
    ``contrast``), from the unadjusted ``phi``, ``W`` and ``P_k`` (formulas in the module
    docstring)."""
    L = np.atleast_2d(np.asarray(contrast, dtype=float))
    q = L.shape[0]
    M = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    mpp = (M @ phi) @ p_mats @ phi  # M Phi P_k Phi
    tr = np.trace(mpp, axis1=1, axis2=2)
    a1 = float(tr @ w @ tr)
    k = len(mpp)
    cross = mpp.reshape(k, -1) @ mpp.transpose(0, 2, 1).reshape(k, -1).T  # tr(A_k A_l)
    a2 = float(np.sum(w * cross))
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3 * q + 2 - 2 * g
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    e_star = 1.0 / (1.0 - a2 / q)
    v_star = 2.0 / q * (1 + c1 * b) / (1 - c2 * b) ** 2 / (1 - c3 * b)
    rho = v_star / (2.0 * e_star**2)
    m = 4.0 + (q + 2) / (q * rho - 1)
    return float(m), float(m / (e_star * (m - 2)))
