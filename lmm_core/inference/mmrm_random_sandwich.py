"""Cluster-robust (sandwich) covariance of the fixed effects of random effects plus a covariance
of the visits, clustered at the top-level grouping factor (SAS PROC MIXED's ``EMPIRICAL``;
clubSandwich's ``vcovCR`` on an ``nlme::lme`` fit: CR0, CR2, CR3). A streamed fit with one
grouping factor gets ``S_h`` and ``u_h`` below from its cells' sums
(:meth:`~lmm_core.model.mmrm_random.RandomMMRMCriterion.cluster_sums`), not from the rows.

Independent units: the levels of the grouping factor in which every other grouping factor's
levels and every subject are nested (the hospitals of ``(1 | hospital) + ar1(visit |
patient)``); ``V`` is block diagonal over them. With crossed factors there is no such factor
and the sandwich is refused.

For cluster ``h``, with ``Xw_h = V_h^-1/2 X_h`` and ``rw_h = V_h^-1/2 r_h`` (any square root),
``S_h = Xw_h' Xw_h = X_h' V_h^-1 X_h`` and ``u_h = Xw_h' rw_h = X_h' V_h^-1 r_h`` are all
that is needed: ``Xw_h = Q_h R_h`` with ``S_h = U diag(s) U'`` (rank ``r``), ``R_h = diag(s^1/2)
U_r'``, so the whitened leverage ``H_hh = Xw_h Phi Xw_h' = Q_h (R_h Phi R_h') Q_h'`` has the
eigenvalues ``mu`` of ``R_h Phi R_h' = E diag(mu) E'`` and the adjustment ``A_h = f(H_hh)``
(``f = 1``: CR0; ``(1 - mu)^-1/2``: CR2, Bell & McCaffrey with the working covariance as
target; ``(1 - mu)^-1``: CR3) is ``I + Q_h E diag(f - 1) E' Q_h'``. With ``G_h = R_h' E``:

    z_h = Xw_h' A_h rw_h = u_h + G_h diag(f - 1) E' diag(s^-1/2) U_r' u_h,
    cov(beta) = Phi (sum_h z_h z_h') Phi,
    M_h = Xw_h' A_h Xw_h = S_h + G_h diag(f - 1) G_h',  N_h = S_h + G_h diag(f^2 - 1) G_h',

and the Satterthwaite df of :func:`lmm_core.inference.mmrm_sandwich.sandwich_df` with the
clusters as its units. ``B = V^-1 X`` and ``V^-1 r`` come from the Woodbury operator of
:mod:`lmm_core.inference.mmrm_random_marginal`, so the cost is ``O(n t p + clusters p^3)``
whatever the size of a cluster; no ``n_h x n_h`` matrix is formed.

CR2 convention: ``(I - H_hh)^-1/2`` symmetric in whitened coordinates, as mmrm's
Empirical-Bias-Reduced and :mod:`lmm_core.inference.mmrm_sandwich`; it does not depend on the
square root of ``V_h``. clubSandwich (Pustejovsky & Tipton 2018) takes ``A_h = D' B^-1/2 D``
with ``D`` the upper Cholesky factor of ``V_h`` and ``B = D (V_h - X_h Phi X_h') D'``, which
does depend on that choice; on the test trial the two CR2 SEs differ by 4e-4 (relative). CR0,
CR3 and all the df agree with clubSandwich to 1e-6.
"""

from __future__ import annotations

import numpy as np

from lmm_core.errors import ModelError
from lmm_core.inference.mmrm_random_marginal import marginal
from lmm_core.inference.mmrm_sandwich import SANDWICH_KINDS, SandwichPieces
from lmm_core.model.mmrm_random_results import MMRMRandomResult


def top_clusters(result: MMRMRandomResult) -> tuple[str, np.ndarray]:
    """The top-level grouping factor's name and each row's cluster code.

    Raises
    ------
    ModelError
        When no grouping factor contains every other one and every subject (crossed
        factors), or it has fewer than two levels.
    """
    res = result.design.residual
    assert res is not None
    terms = result.criterion.terms
    units = [res.subject_codes] + [t.codes for t in terms]
    best = None
    for t in terms:
        nested = all(
            len(np.unique(np.column_stack([u, t.codes]), axis=0)) == len(np.unique(u))
            for u in units
        )
        if nested and (best is None or t.n_levels < best.n_levels):
            best = t
    if best is None:
        names = ", ".join(f"`{t.group}`" for t in terms)
        raise ModelError(
            f"The grouping factors {names} are crossed: no factor contains the others and "
            "every subject, so the data have no independent clusters for a sandwich "
            "covariance. Use vcov_method='model'."
        )
    if best.n_levels < 2:
        raise ModelError(f"`{best.group}` has one level: a sandwich needs several clusters.")
    return best.group, best.codes


def _cluster_sums(codes: np.ndarray, X: np.ndarray, B: np.ndarray, vr: np.ndarray):
    """``S_h = X_h' B_h`` ``(H, p, p)`` and ``u_h = X_h' (V^-1 r)_h`` ``(H, p)``."""
    H, p = int(codes.max()) + 1, X.shape[1]
    S = np.zeros((H, p * p))
    np.add.at(S, codes, np.einsum("na,nb->nab", X, B).reshape(len(X), p * p))
    u = np.zeros((H, p))
    np.add.at(u, codes, X * vr[:, None])
    S = S.reshape(H, p, p)
    return (S + S.transpose(0, 2, 1)) / 2.0, u


def _adjust(kind: str, mu: np.ndarray) -> np.ndarray:
    if kind == "CR0":
        return np.ones_like(mu)
    if np.any(mu >= 1.0 - 1e-10):
        raise ModelError(
            f"The {kind} covariance needs every cluster's leverage below one; a cluster's rows "
            "determine some coefficients alone. Use CR0."
        )
    return (1.0 - mu) ** (-0.5 if kind == "CR2" else -1.0)


def random_sandwich_pieces(result: MMRMRandomResult, kind: str) -> SandwichPieces:
    """The ``kind`` (``"CR0"``, ``"CR2"``, ``"CR3"``) cluster sandwich and its per-cluster
    ``M_h``, ``N_h`` (module docstring)."""
    if kind not in SANDWICH_KINDS:
        raise ModelError(f"Unknown sandwich {kind!r}; choose one of {', '.join(SANDWICH_KINDS)}.")
    phi = result.vcov_beta
    if result.criterion.design is None:  # a streamed fit: from the cells' sums
        S, u = result.criterion.cluster_sums(result.opt.theta)
        if len(S) < 2:
            raise ModelError("The grouping factor has one level: a sandwich needs several.")
    else:
        _, codes = top_clusters(result)
        design = result.design
        X = design.X
        both = marginal(result).solve(np.column_stack([X, design.y - X @ result.beta]))
        S, u = _cluster_sums(codes, X, both[:, :-1], both[:, -1])
    meat = np.zeros_like(phi)
    ms, ns = [], []
    for s_h, u_h in zip(S, u, strict=True):
        val, vec = np.linalg.eigh(s_h)
        keep = val > 1e-12 * max(val.max(), 0.0)
        if not keep.any():
            continue
        root = np.sqrt(val[keep])
        R = root[:, None] * vec[:, keep].T  # (r, p)
        mu, E = np.linalg.eigh(R @ phi @ R.T)
        f = _adjust(kind, mu)
        G = R.T @ E  # (p, r)
        z = u_h + G @ ((f - 1.0) * (E.T @ ((vec[:, keep].T @ u_h) / root)))
        meat += np.outer(z, z)
        ms.append(s_h + (G * (f - 1.0)) @ G.T)
        ns.append(s_h + (G * (f**2 - 1.0)) @ G.T)
    vcov = phi @ meat @ phi
    return SandwichPieces((vcov + vcov.T) / 2.0, np.array(ms), np.array(ns))
