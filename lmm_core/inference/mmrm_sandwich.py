"""Empirical (sandwich) covariance of an MMRM's fixed effects, as R's mmrm
(``vcov = "Empirical"``, ``"Empirical-Bias-Reduced"``, ``"Empirical-Jackknife"``).

With ``Phi = (X' V^-1 X)^-1``, per subject ``i`` a square root ``Sigma_i^-1 = W_i W_i'``
(``W_i = L_i^-T``, ``L_i`` the Cholesky factor of ``Sigma_i``), the whitened design and
residuals ``Xw_i = W_i' X_i``, ``rw_i = W_i' r_i``, the whitened leverage ``H_ii = Xw_i Phi
Xw_i'`` and an adjustment ``A_i``:

    z_i = Xw_i' A_i rw_i,    cov(beta) = Phi (sum_i z_i z_i') Phi,

with ``A_i = I`` (``"CR0"``, mmrm's Empirical), ``(I - H_ii)^-1/2`` (``"CR2"``, bias-reduced,
Bell & McCaffrey) or ``(I - H_ii)^-1`` (``"CR3"``, mmrm's Empirical-Jackknife, without a
``(n-1)/n`` factor). The result does not depend on the square root chosen.

Degrees of freedom for ``l' beta`` (mmrm's Satterthwaite for empirical covariances, Bell and
McCaffrey): with ``u_i = A_i Xw_i Phi l`` stacked block-diagonally in ``U`` (rows x subjects)
and ``G = U' (I - H) U`` (``H = Xw Phi Xw'`` idempotent),

    df = tr(G)^2 / sum(G^2),    G = D - K,   D = diag(|u_i|^2),   K = B' Phi B,

``B`` with columns ``b_i = Xw_i' u_i = M_i Phi l``, ``M_i = Xw_i' A_i Xw_i``; so
``tr(G) = sum_i d_i - sum_i K_ii`` and ``sum(G^2) = sum_i d_i^2 - 2 sum_i d_i K_ii +
tr((Phi B B')^2)``, all in ``O(subjects p^2)`` per contrast, never an ``n x n`` matrix.
Subjects are handled per pattern (group and visit set), vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_core.errors import LMMError
from lmm_core.inference.mmrm_subjects import subject_patterns
from lmm_core.model.mmrm_results import MMRMResult

SANDWICH_KINDS = ("CR0", "CR2", "CR3")


@dataclass(frozen=True)
class SandwichPieces:
    """Per-subject pieces of one kind of sandwich.

    Attributes
    ----------
    vcov
        The empirical covariance of ``beta``.
    m_mats, n_mats
        ``M_i = Xw_i' A_i Xw_i`` and ``N_i = Xw_i' A_i^2 Xw_i``, ``(subjects, p, p)``.
    """

    vcov: np.ndarray
    m_mats: np.ndarray
    n_mats: np.ndarray


def _adjustment(hat: np.ndarray, kind: str) -> np.ndarray:
    """``A_i`` for a stack of whitened leverages ``H_ii`` ``(n, t, t)``."""
    t = hat.shape[-1]
    if kind == "CR0":
        return np.broadcast_to(np.eye(t), hat.shape)
    val, vec = np.linalg.eigh(np.eye(t) - hat)
    if np.any(val <= 1e-10 * np.max(np.abs(val))):
        raise LMMError(
            f"The {kind} covariance needs every subject's leverage below one; a subject's "
            "visits determine some coefficients alone. Use CR0."
        )
    power = -0.5 if kind == "CR2" else -1.0
    return np.einsum("nak,nk,nbk->nab", vec, val**power, vec)


def sandwich_pieces(result: MMRMResult, kind: str) -> SandwichPieces:
    """The ``kind`` (``"CR0"``, ``"CR2"``, ``"CR3"``) sandwich and its per-subject pieces."""
    if kind not in SANDWICH_KINDS:
        raise LMMError(f"Unknown sandwich {kind!r}; choose one of {', '.join(SANDWICH_KINDS)}.")
    design = result.design
    res = design.residual
    assert res is not None
    phi = result.vcov_beta
    resid = design.y - design.X @ result.beta
    sigmas = res.matrices(result.opt.theta)
    meat = np.zeros_like(phi)
    ms, ns = [], []
    for pat in subject_patterns(design):
        v = pat.visits
        chol = np.linalg.cholesky(sigmas[pat.group][v[:, None], v[None, :]])
        winv = np.linalg.inv(chol)  # W' = L^-1
        xw = np.einsum("jk,nkb->njb", winv, design.X[pat.rows])
        rw = resid[pat.rows] @ winv.T
        adj = _adjustment(np.einsum("nja,ab,nkb->njk", xw, phi, xw), kind)
        axw = adj @ xw  # A_i Xw_i
        z = np.einsum("nja,nj->na", axw, rw)
        meat += z.T @ z
        ms.append(np.einsum("nja,njb->nab", xw, axw))
        ns.append(np.einsum("nja,njb->nab", axw, axw))
    vcov = phi @ meat @ phi
    return SandwichPieces((vcov + vcov.T) / 2.0, np.concatenate(ms), np.concatenate(ns))


def sandwich_df(phi: np.ndarray, pieces: SandwichPieces, contrasts: np.ndarray) -> np.ndarray:
    """mmrm's Satterthwaite df of an empirical covariance for each row ``l`` of
    ``contrasts``: ``tr(G)^2 / sum(G^2)`` (module docstring)."""
    c = phi @ np.atleast_2d(contrasts).T  # (p, k): Phi l
    d = np.einsum("ak,nab,bk->nk", c, pieces.n_mats, c)
    b = np.einsum("nab,bk->nak", pieces.m_mats, c)
    k_diag = np.einsum("nak,ab,nbk->nk", b, phi, b)
    bb = np.einsum("nak,nbk->kab", b, b)
    pb = np.einsum("ab,kbc->kac", phi, bb)
    k_norm = np.einsum("kab,kba->k", pb, pb)
    trace = d.sum(axis=0) - k_diag.sum(axis=0)
    squares = (d**2).sum(axis=0) - 2.0 * (d * k_diag).sum(axis=0) + k_norm
    return trace**2 / squares
