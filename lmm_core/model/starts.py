"""A moment-based starting value of ``theta``: per-level least squares.

For each random-effects term with columns ``z`` and grouping factor ``g``: take the residuals
``r = y - X beta_OLS`` of the pooled least-squares fit, fit ``r`` on ``z`` by least squares
within every level ``l`` that has more rows than columns and a ``Z_l'Z_l`` of full rank
(``c_l = (Z_l'Z_l)^-1 Z_l' r_l``, pooled residual variance ``s^2`` of those fits), and
estimate the covariance of the random effects by moments::

    G = cov_l(c_l) - s^2 mean_l (Z_l'Z_l)^-1

(the spread of the per-level coefficients minus their average sampling variance). In the
unit-free coordinates of :func:`lmm_core.design.reterms.theta_scale` (``D G D / s^2``),
eigenvalues are floored at ``FLOOR`` so that the start lies inside the parameter space, and the
term's ``theta`` is its structure's parameters of the factor ``D^-1 chol(D G D / s^2)`` (the
lower triangle for an unstructured term). A term with fewer than two usable levels keeps
lme4's start (identity). The optimizer uses this start as one of its alternatives when a first
optimum lies on or near the boundary.
"""

from __future__ import annotations

import numpy as np

from lmm_core.design.reterms import ReTerm, column_rms

#: Smallest eigenvalue of the start's relative covariance in unit-free coordinates.
FLOOR = 1e-2


def moment_start(X: np.ndarray, y: np.ndarray, reterms: tuple[ReTerm, ...]) -> np.ndarray:
    """``theta`` from per-level least-squares coefficients (module docstring).

    Parameters
    ----------
    X, y
        Fixed-effects model matrix and response of the rows used.
    reterms
        The random-effects terms, in the order of ``theta``.

    Returns
    -------
    np.ndarray
        A starting ``theta`` within the bounds.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else y.copy()
    parts = []
    for term in reterms:
        theta_k = _term_start(term, resid)
        parts.append(term.structure.start if theta_k is None else theta_k)
    return np.concatenate(parts)


def _term_start(term: ReTerm, resid: np.ndarray) -> np.ndarray | None:
    z, codes, m, s = term.z, term.codes, term.n_levels, term.n_columns
    counts = np.bincount(codes, minlength=m)
    zz = np.empty((m, s, s))
    zr = np.empty((m, s))
    for j in range(s):
        zr[:, j] = np.bincount(codes, weights=z[:, j] * resid, minlength=m)
        for k in range(j, s):
            zz[:, j, k] = zz[:, k, j] = np.bincount(codes, weights=z[:, j] * z[:, k], minlength=m)
    rr = np.bincount(codes, weights=resid * resid, minlength=m)
    return term_start_from_sums(s, counts, zz, zr, rr, column_rms(term), term.structure)


def term_start_from_sums(s, counts, zz, zr, rr, d, structure) -> np.ndarray | None:
    """A term's moment start from its per-level sums: rows ``n_l``, ``Z_l'Z_l``, ``Z_l'r_l``,
    ``r_l'r_l`` (``r``: least-squares residuals) and its columns' root mean squares ``d``;
    ``None`` when fewer than two levels can be fitted on their own."""
    eig = np.linalg.eigvalsh(zz)
    usable = (counts > s) & (eig[:, 0] > 1e-10 * np.maximum(eig[:, -1], 1e-300))
    if usable.sum() < 2:
        return None
    zz, zr, rr, counts = zz[usable], zr[usable], rr[usable], counts[usable]
    coef = np.linalg.solve(zz, zr[..., None])[..., 0]
    rss = rr - np.einsum("lj,lj->l", coef, zr)
    s2 = float(np.sum(rss) / np.sum(counts - s))
    if not np.isfinite(s2) or s2 <= 0:
        return None
    spread = np.atleast_2d(np.cov(coef, rowvar=False))
    g = spread - s2 * np.mean(np.linalg.inv(zz), axis=0)
    rel = d[:, None] * g * d[None, :] / s2
    vals, vecs = np.linalg.eigh((rel + rel.T) / 2)
    rel = (vecs * np.maximum(vals, FLOOR)) @ vecs.T
    lam = np.linalg.cholesky(rel) / d[:, None]
    theta_k = structure.theta_from_factor(lam)
    return theta_k if np.all(np.isfinite(theta_k)) else None


__all__ = ["moment_start", "term_start_from_sums"]
