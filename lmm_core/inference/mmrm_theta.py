"""R mmrm's own parametrization ``psi`` of the visit covariances, and its derivatives.

Our fits use the unit-free parametrization ``theta`` of
:mod:`lmm_core.design.residual_structures`; the optimum does not depend on it, but mmrm's
Kenward-Roger adjustment does (its term ``R_ij = X' Sigma^-1 d2Sigma/dpsi_i dpsi_j Sigma^-1 X``
uses second derivatives, which are not invariant under a change of parameters). To match mmrm
we evaluate that term in mmrm's ``psi`` (mmrm 0.3.18, ``src/covariance.h``):

- ``us``: ``Sigma = L L'``, ``L = D Lt``, ``D = diag(exp(psi_1..psi_m))``, ``Lt`` unit lower
  triangular with the remaining ``psi`` filled row-wise (``l21, l31, l32, ...``);
- every other structure: ``Sigma = D C D`` with ``D = diag(sd)``, ``sd = exp(psi_sd)`` (one
  value, or one per visit for the heterogeneous ``*h``), and the correlations ``C`` from
  ``rho = f(psi) = psi / sqrt(1 + psi^2)``: ``ar1(h)``: ``rho^|i-j|``; ``toep(h)``:
  ``rho_|i-j|``; ``ad(h)``: ``prod_{k=i}^{j-1} rho_k``; ``cs(h)``: one ``rho = -a + (1 + a)
  / (1 + exp(-psi))``, ``a = 1 / (m - 1)``;
- ``sp_exp``: ``Sigma_jk = sigma^2 rho^d_jk``, ``psi = (log sigma, logit rho)`` with ``rho`` per
  unit of the time column and ``d`` the distances between the distinct times.

:func:`psi_from_sigma` inverts the map (``Sigma -> psi``), :func:`sigma_derivatives` gives
``dSigma/dpsi_k`` and ``d2Sigma/dpsi_k dpsi_l`` by central differences (``Sigma`` is cheap),
and :func:`psi_jacobian` gives ``dpsi/dtheta`` for a fitted residual term, with which the
covariance of ``theta`` becomes that of ``psi``: ``W_psi = K W_theta K'``.
"""

from __future__ import annotations

import numpy as np

from lmm_core.design.residual import ResidualTerm
from lmm_core.design.residual_structures import VisitCovariance

_STEP1 = 1e-5  # central differences of Sigma(psi), first derivatives
_STEP2 = 1e-4  # second derivatives


def _rho(kind: str, m: int, psi: np.ndarray) -> np.ndarray:
    if kind in ("cs", "csh"):
        a = 1.0 / (m - 1)
        return -a + (1.0 + a) / (1.0 + np.exp(-psi))
    return psi / np.sqrt(1.0 + psi**2)


def _psi_of_rho(kind: str, m: int, rho: np.ndarray) -> np.ndarray:
    if kind in ("cs", "csh"):
        a = 1.0 / (m - 1)
        q = (rho + a) / (1.0 + a)
        return np.log(q / (1.0 - q))
    return rho / np.sqrt(1.0 - rho**2)


def _correlation(kind: str, m: int, rho: np.ndarray) -> np.ndarray:
    i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    lag = np.abs(i - j)
    if kind in ("ar1", "ar1h"):
        return rho[0] ** lag
    if kind in ("cs", "csh"):
        return np.where(lag == 0, 1.0, rho[0])
    if kind in ("toep", "toeph"):
        return np.concatenate([[1.0], rho])[lag]
    # ad, adh: products of neighbouring correlations (cumulative products, no division by 0)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    out = np.ones((m, m))
    for k in range(m - 1):
        out = np.where((lo <= k) & (k < hi), out * rho[k], out)
    return out


def mmrm_sigma(structure: VisitCovariance, psi: np.ndarray) -> np.ndarray:
    """``Sigma(psi)`` (``m x m``) in mmrm's parametrization of ``structure``."""
    m, kind, n_sd = structure.m, structure.kind, structure.n_sd
    sd = np.exp(psi[:n_sd]) * np.ones(m)
    if m == 1:
        return np.array([[sd[0] ** 2]])
    if kind == "us":
        low = np.eye(m)
        low[np.tril_indices(m, -1)] = psi[n_sd:]
        scaled = sd[:, None] * low
        return scaled @ scaled.T
    if kind == "sp_exp":
        assert structure.distances is not None
        log_rho = -np.logaddexp(0.0, -psi[1])  # log(1 / (1 + exp(-psi)))
        return sd[0] ** 2 * np.exp(log_rho * structure.distances)
    corr = _correlation(kind, m, _rho(kind, m, psi[n_sd:]))
    return corr * np.outer(sd, sd)


def psi_from_sigma(structure: VisitCovariance, sigma: np.ndarray) -> np.ndarray:
    """mmrm's ``psi`` of a covariance ``sigma`` that has the form of ``structure``."""
    m, kind = structure.m, structure.kind
    if kind == "us":
        low = np.linalg.cholesky(sigma)
        sd = np.diag(low).copy()
        return np.concatenate([np.log(sd), (low / sd[:, None])[np.tril_indices(m, -1)]])
    sd = np.sqrt(np.diag(sigma))
    log_sd = np.log(sd[: structure.n_sd])
    if m == 1:
        return log_sd
    corr = sigma / np.outer(sd, sd)
    if kind == "sp_exp":
        assert structure.distances is not None
        rho = corr[0, 1] ** (1.0 / structure.distances[0, 1])
        return np.concatenate([log_sd, [np.log(rho / (1.0 - rho))]])
    if kind in ("ar1", "ar1h", "cs", "csh"):
        rho = corr[1:2, 0]
    elif kind in ("toep", "toeph"):
        rho = corr[1:, 0]
    else:  # ad, adh
        rho = np.diagonal(corr, -1)
    return np.concatenate([log_sd, _psi_of_rho(kind, m, rho)])


def _us_derivatives(m: int, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``us`` exactly: with ``C = D Lt``, ``dSigma_k = dC_k C' + C dC_k'`` and ``d2Sigma_kl =
    d2C_kl C' + C d2C_kl' + dC_k dC_l' + dC_l dC_k'``, where ``dC`` for ``log sd_a`` is row
    ``a`` of ``C`` (``d2C_aa`` the same), for ``l_ij`` the entry ``sd_i`` at ``(i, j)``
    (``d2C`` of ``log sd_i`` and ``l_ij`` the same), every other ``d2C`` zero."""
    sd = np.exp(psi[:m])
    rows, cols = np.tril_indices(m, -1)
    low = np.eye(m)
    low[rows, cols] = psi[m:]
    chol = sd[:, None] * low
    k = len(psi)
    dc = np.zeros((k, m, m))
    dc[np.arange(m), np.arange(m)] = chol
    pairs = np.arange(m, k)
    dc[pairs, rows, cols] = sd[rows]
    d2c = np.zeros((k, k, m, m))
    d2c[np.arange(m), np.arange(m)] = dc[:m]
    d2c[rows, pairs] = dc[pairs]
    d2c[pairs, rows] = dc[pairs]
    d1 = dc @ chol.T
    d1 = d1 + d1.transpose(0, 2, 1)
    prod = np.einsum("kab,lcb->klac", dc, dc)
    d2 = d2c @ chol.T + prod
    return d1, d2 + d2.transpose(0, 1, 3, 2)


def sigma_derivatives(structure: VisitCovariance, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dSigma/dpsi_k`` ``(k, m, m)`` and ``d2Sigma/dpsi_k dpsi_l`` ``(k, k, m, m)`` at
    ``psi``: exact for ``us`` (:func:`_us_derivatives`), otherwise by central differences
    (steps 1e-5 and 1e-4 in ``psi``, which is unit-free)."""
    if structure.kind == "us" and structure.m > 1:
        return _us_derivatives(structure.m, psi)
    k = len(psi)
    m = structure.m
    eye = np.eye(k)
    d1 = np.empty((k, m, m))
    d2 = np.empty((k, k, m, m))
    f0 = mmrm_sigma(structure, psi)
    h1, h2 = _STEP1, _STEP2
    for a in range(k):
        up = mmrm_sigma(structure, psi + h1 * eye[a])
        down = mmrm_sigma(structure, psi - h1 * eye[a])
        d1[a] = (up - down) / (2 * h1)
        up2 = mmrm_sigma(structure, psi + h2 * eye[a])
        down2 = mmrm_sigma(structure, psi - h2 * eye[a])
        d2[a, a] = (up2 - 2 * f0 + down2) / h2**2
        for b in range(a):
            ea, eb = h2 * eye[a], h2 * eye[b]
            d2[a, b] = d2[b, a] = (
                mmrm_sigma(structure, psi + ea + eb)
                - mmrm_sigma(structure, psi + ea - eb)
                - mmrm_sigma(structure, psi - ea + eb)
                + mmrm_sigma(structure, psi - ea - eb)
            ) / (4 * h2**2)
    return d1, d2


def residual_psi(res: ResidualTerm, theta: np.ndarray) -> np.ndarray:
    """mmrm's ``psi`` of every group (one block per group, as ``theta``) at our ``theta``."""
    return np.concatenate([psi_from_sigma(res.structure, s) for s in res.matrices(theta)])


def psi_jacobian(res: ResidualTerm, theta: np.ndarray) -> np.ndarray:
    """``K = dpsi/dtheta`` (square), by central differences of :func:`residual_psi`."""
    k = len(theta)
    out = np.empty((k, k))
    for a in range(k):
        e = np.zeros(k)
        e[a] = _STEP1
        out[:, a] = (residual_psi(res, theta + e) - residual_psi(res, theta - e)) / (2 * _STEP1)
    return out
