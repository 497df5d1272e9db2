"""Kenward-Roger for random effects plus a covariance of the visits (SAS PROC MIXED's
``DDFM=KR`` with RANDOM and REPEATED; Kenward & Roger 1997).

With ``Phi = (X'V^-1X)^-1``, ``B = V^-1 X``, the covariance parameters ``gamma`` of
:mod:`lmm_core.inference.mmrm_random_marginal` (mmrm's ``psi`` of the structure, the random
effects' variances and covariances) and ``W`` their covariance,

    P_k = -B' dV_k B,   Q_kl = B' dV_k V^-1 dV_l B,   R_kl = B' d2V_kl B,
    Phi_A = Phi + 2 Phi [sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)] Phi,

the "linear" variant without ``R`` (which is zero for the random effects' parameters, and for
the structure depends on its parametrization; "kenward-roger-linear" is the same in every
parametrization, and equals pbkrtest's ``vcovAdj`` when the structure is linear, e.g. ``cs``).
The df are those of :func:`lmm_core.inference.mmrm_kenward_roger.kenward_roger_df`.

``W = J (2 H^-1) J'``: ``H`` the observed Hessian of ``-2 l_REML`` in the optimizer's ``psi``
(as the MMRM's and SAS's default; pbkrtest uses the expected information, which differs by
``O(n^-1/2)``), ``J = dgamma/dpsi`` by central differences (step ``1e-5`` in the unit-free
``psi``).

Cost: with ``W = U diag(w) U'``, ``sum_kl W_kl Q_kl = sum_j w_j D_j' V^-1 D_j``, ``D_j =
dV(u_j) B``: one derivative and one Woodbury solve of an ``n x p`` matrix per parameter, and
``P_k``, ``R`` from per-pattern cross-products; ``O(K n t p + patterns K t^2 p^2)`` with ``K``
covariance parameters. No ``n x n`` matrix is formed, so no size limit beyond the fit's own.
"""

from __future__ import annotations

import numpy as np

from lmm_core.errors import ModelError
from lmm_core.inference.mmrm_kenward_roger import KenwardRogerPieces
from lmm_core.inference.mmrm_random_marginal import Marginal, kr_parameters, marginal
from lmm_core.model.mmrm_random_results import MMRMRandomResult

_STEP = 1e-5


def gamma_vcov(result: MMRMRandomResult) -> np.ndarray:
    """``W``: covariance of ``gamma`` by the delta method from ``2 H^-1`` in ``psi``."""
    psi = result.opt.theta
    jac = np.empty((len(kr_parameters(result, psi)), len(psi)))
    for a in range(len(psi)):
        e = np.zeros(len(psi))
        e[a] = _STEP
        jac[:, a] = (kr_parameters(result, psi + e) - kr_parameters(result, psi - e)) / (2 * _STEP)
    return jac @ result.theta_vcov @ jac.T


def _sym(a: np.ndarray) -> np.ndarray:
    return (a + a.T) / 2.0


def kr_sums(
    mg: Marginal, B: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P_k`` ``(K, p, p)``, ``sum_kl W_kl Q_kl`` and ``sum_kl W_kl R_kl``."""
    forms, r_sum = mg.forms(B, w)
    vals, vecs = np.linalg.eigh(w)
    q_sum = np.zeros((B.shape[1],) * 2)
    for val, vec in zip(vals, vecs.T, strict=True):
        if val == 0.0:
            continue
        D = mg.derivative(vec, B)
        q_sum += val * (D.T @ mg.solve(D))
    return -forms, _sym(q_sum), _sym(r_sum)


def random_kenward_roger_pieces(result: MMRMRandomResult) -> KenwardRogerPieces:
    """``Phi_A`` (with and without ``R``), ``P_k`` and ``W`` at the fit's optimum."""
    if not result.reml:
        raise ModelError(
            "Kenward-Roger needs a REML fit (as in SAS and pbkrtest); refit with reml=True or "
            "use Satterthwaite's df."
        )
    mg = marginal(result)
    w = gamma_vcov(result)
    phi = result.vcov_beta
    B = mg.solve(result.design.X)
    p_mats, q_sum, r_sum = kr_sums(mg, B, w)
    pw = np.tensordot(w, p_mats, axes=(1, 0))  # sum_l W_kl P_l
    pvp = np.sum(p_mats @ phi @ pw, axis=0)
    linear = phi + 2.0 * phi @ (q_sum - pvp) @ phi
    full = linear - 0.5 * phi @ r_sum @ phi
    return KenwardRogerPieces(_sym(full), _sym(linear), p_mats, w)
