"""Covariance structures of a subject's visits (R-side, mmrm's names): ``theta -> Sigma``.

Each structure maps an unconstrained, unit-free parameter vector to an ``m x m`` covariance
matrix of the ``m`` visits that is positive definite for every ``theta``:

- standard deviations enter as ``log sd`` (a change of the outcome's unit shifts them only);
- a correlation ``rho`` in (-1, 1) is ``tanh(t)``;
- ``us``: ``Sigma = D L L' D`` with ``D = diag(sd)`` and ``L`` unit lower triangular, filled
  row-wise (mmrm's parametrization); ``m + m(m-1)/2`` parameters;
- ``ar1`` / ``ar1h``: ``corr(i, j) = rho^|i-j|``, one / ``m`` standard deviations;
- ``cs`` / ``csh``: one correlation ``rho`` in ``(-1/(m-1), 1)`` (``rho = -a + (1 + a) /
  (1 + exp(-t))``, ``a = 1/(m-1)``), one / ``m`` standard deviations;
- ``toep`` / ``toeph``: ``corr(i, j) = r_|i-j|``, the autocorrelations ``r_k`` given by their
  partial autocorrelations ``tanh(t_k)`` (Durbin-Levinson), which keeps every Toeplitz matrix
  positive definite; one / ``m`` standard deviations;
- ``ad`` / ``adh``: first-order ante-dependence, ``corr(i, j) = prod_{k=i}^{j-1} rho_k``;
  one / ``m`` standard deviations;
- ``sp_exp`` (spatial exponential, over the ``m`` distinct observed times): ``Sigma_jk =
  sigma^2 rho^d_jk`` with ``d_jk = |t_j - t_k|`` (with several coordinates the Euclidean
  distance ``||p_j - p_k||`` between distinct points), ``rho`` in (0, 1) per unit of the time
  column. Unit-free: with ``s`` a scale of the times (:attr:`VisitCovariance.scale`, the
  median gap, or distance, between a subject's consecutive points),
  ``rho^d = exp(-exp(t) d / s)``, so
  ``theta = (log sigma, t)`` does not change when the times are multiplied by a constant;
  ``rho = exp(-exp(t) / s)`` is reported per unit of the time column (as mmrm's).

The optimum of a fit does not depend on the parametrization; where mmrm reports ``theta`` in
its own, compare the covariance matrices.

:meth:`VisitCovariance.jacobian` gives ``dSigma / dtheta_l`` analytically: for ``us``
``Sigma = C C'`` with ``C = D L``, so ``dSigma / dlog sd_i = E_ii Sigma + Sigma E_ii`` and
``dSigma / dl_ij = sd_i (E_ij C' + C E_ji)``; otherwise ``Sigma = R * (sd sd')`` and the
correlation parameters act through ``dR / dt`` (``ar1``: ``|i-j| rho^(|i-j|-1) (1 - rho^2)``;
``cs``: the sigmoid's derivative; ``ad``: ``R[i, k] (1 - rho_k^2) R[k+1, j]`` for
``i <= k < j``; ``toep``: Durbin-Levinson differentiated exactly by a complex step;
``sp_exp``: ``-exp(t) (d / s) R``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

STRUCTURES = ("us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh", "sp_exp")
#: structures over a numeric time (distances between distinct times), not a visit factor
SPATIAL = ("sp_exp",)
NAMES = {
    "us": "unstructured",
    "toep": "Toeplitz",
    "toeph": "heterogeneous Toeplitz",
    "ar1": "AR(1)",
    "ar1h": "heterogeneous AR(1)",
    "cs": "compound symmetry",
    "csh": "heterogeneous compound symmetry",
    "ad": "ante-dependence",
    "adh": "heterogeneous ante-dependence",
    "sp_exp": "spatial exponential",
}
_HETEROGENEOUS = {"us", "toeph", "ar1h", "csh", "adh"}


@dataclass(frozen=True)
class VisitCovariance:
    """One structure over ``m`` visits.

    Attributes
    ----------
    kind
        mmrm's name, one of :data:`STRUCTURES`.
    m
        Number of visits (``sp_exp``: of distinct times).
    distances
        ``sp_exp`` only: ``|t_j - t_k|`` between the distinct times (Euclidean distances
        between distinct points with several coordinates), ``m x m`` (None: the times
        ``0, 1, ..., m - 1``).
    scale
        ``sp_exp`` only: the unit of distance of ``theta`` (in the time column's unit).
    """

    kind: str
    m: int
    distances: np.ndarray | None = field(default=None, compare=False, repr=False)
    scale: float = 1.0

    def rho(self, theta: np.ndarray) -> float:
        """``sp_exp``: the correlation at distance one unit of the time column."""
        return float(np.exp(-np.exp(theta[1]) / self.scale))

    @property
    def n_sd(self) -> int:
        """Number of standard-deviation parameters."""
        return self.m if self.kind in _HETEROGENEOUS else 1

    @property
    def n_theta(self) -> int:
        """Number of parameters."""
        m = self.m
        n_corr = {
            "us": m * (m - 1) // 2,
            "ar1": 1, "ar1h": 1, "cs": 1, "csh": 1, "sp_exp": 1,
            "toep": m - 1, "toeph": m - 1, "ad": m - 1, "adh": m - 1,
        }[self.kind]  # fmt: skip
        return self.n_sd + (n_corr if m > 1 else 0)

    def start(self, sd: float) -> np.ndarray:
        """A start: every standard deviation ``sd``, every correlation 0."""
        theta = np.zeros(self.n_theta)
        theta[: self.n_sd] = np.log(sd)
        if self.kind in ("cs", "csh") and self.m > 1:
            a = 1.0 / (self.m - 1)
            theta[self.n_sd] = np.log(a)  # sigmoid(t) = a / (1 + a): rho = 0
        if self.kind == "sp_exp" and self.m > 1:
            theta[1] = np.log(np.log(2.0))  # correlation 1/2 at distance ``scale``
        return theta

    def matrix(self, theta: np.ndarray) -> np.ndarray:
        """``Sigma(theta)``, ``m x m``."""
        m = self.m
        sd = np.exp(theta[: self.n_sd]) * np.ones(m)
        rest = theta[self.n_sd :]
        if m == 1:
            return np.array([[sd[0] ** 2]])
        if self.kind == "us":
            low = np.eye(m)
            low[_lower(m)] = rest  # row by row: l21, l31, l32, ... (as mmrm)
            scaled = sd[:, None] * low
            return scaled @ scaled.T
        corr = self._correlation(rest)
        return corr * np.outer(sd, sd)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``dSigma / dtheta_l`` for every parameter ``l``: ``(n_theta, m, m)``."""
        m, n_sd = self.m, self.n_sd
        sigma = self.matrix(theta)
        out = np.empty((self.n_theta, m, m))
        if n_sd == 1:
            out[0] = 2.0 * sigma
        else:
            eye = np.eye(m)
            out[:n_sd] = sigma[None] * (eye[:, :, None] + eye[:, None, :])
        if m == 1:
            return out
        rest = theta[n_sd:]
        sd = np.exp(theta[:n_sd]) * np.ones(m)
        if self.kind == "us":
            rows, cols = _lower(m)
            low = np.eye(m)
            low[rows, cols] = rest
            chol = sd[:, None] * low
            d = np.zeros((len(rows), m, m))
            d[np.arange(len(rows)), rows] = sd[rows, None] * chol[:, cols].T  # E_ij C': row i
            out[n_sd:] = d + d.transpose(0, 2, 1)
            return out
        out[n_sd:] = self._correlation_jacobian(rest) * np.outer(sd, sd)[None]
        return out

    def _correlation_jacobian(self, rest: np.ndarray) -> np.ndarray:
        """``dR / dt`` for the correlation parameters ``t`` (not ``us``)."""
        m = self.m
        if self.kind == "sp_exp":
            scaled = self._exponent(rest[0])
            return (-scaled * np.exp(-scaled))[None]
        lag = np.abs(np.subtract.outer(np.arange(m), np.arange(m)))
        if self.kind in ("ar1", "ar1h"):
            rho = np.tanh(rest[0])
            power = np.where(lag > 0, lag - 1, 0)
            return (np.where(lag > 0, lag * rho**power, 0.0) * (1.0 - rho**2))[None]
        if self.kind in ("cs", "csh"):
            a = 1.0 / (m - 1)
            s = 1.0 / (1.0 + np.exp(-rest[0]))
            return np.where(lag == 0, 0.0, (1.0 + a) * s * (1.0 - s))[None]
        if self.kind in ("toep", "toeph"):
            out = np.empty((len(rest), m, m))
            step = 1e-30
            for k in range(len(rest)):
                z = np.tanh(rest.astype(complex))
                z[k] = np.tanh(rest[k] + 1j * step)
                dr = np.concatenate([[0.0], _autocorrelations(z).imag / step])
                out[k] = dr[lag]
            return out
        corr = self._correlation(rest)  # ad, adh
        out = np.zeros((len(rest), m, m))
        idx = np.arange(m)
        for k in range(len(rest)):
            upper = np.outer(corr[:, k] * (idx <= k), corr[k + 1, :] * (idx >= k + 1))
            out[k] = (upper + upper.T) * (1.0 - np.tanh(rest[k]) ** 2)
        return out

    def _exponent(self, t: float) -> np.ndarray:
        """``exp(t) d / s`` (0 on the diagonal, finite however large ``t``); without
        distances the times are ``0, 1, ..., m - 1``."""
        dist = self.distances
        if dist is None:
            dist = np.abs(np.subtract.outer(np.arange(self.m), np.arange(self.m))).astype(float)
        return np.exp(min(float(t), 600.0)) * (dist / self.scale)

    def _correlation(self, rest: np.ndarray) -> np.ndarray:
        m = self.m
        if self.kind == "sp_exp":
            return np.exp(-self._exponent(rest[0]))
        lag = np.abs(np.subtract.outer(np.arange(m), np.arange(m)))
        if self.kind in ("ar1", "ar1h"):
            return np.tanh(rest[0]) ** lag
        if self.kind in ("cs", "csh"):
            a = 1.0 / (m - 1)
            rho = -a + (1.0 + a) / (1.0 + np.exp(-rest[0]))
            return np.where(lag == 0, 1.0, rho)
        if self.kind in ("toep", "toeph"):
            r = np.concatenate([[1.0], _autocorrelations(np.tanh(rest))])
            return r[lag]
        rho = np.tanh(rest)  # ad, adh: products of neighbouring correlations
        logs = np.concatenate([[0.0], np.cumsum(np.log(np.abs(rho) + 1e-300))])
        signs = np.concatenate([[1.0], np.cumprod(np.where(rho < 0, -1.0, 1.0))])
        i, j = (
            np.minimum.outer(np.arange(m), np.arange(m)),
            np.maximum.outer(np.arange(m), np.arange(m)),
        )
        return np.exp(logs[j] - logs[i]) * signs[j] * signs[i]


@functools.cache
def _lower(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the strict lower triangle, row by row."""
    return np.tril_indices(m, -1)


def _autocorrelations(pacf: np.ndarray) -> np.ndarray:
    """Durbin-Levinson: autocorrelations ``r_1..r_K`` of a stationary series from its partial
    autocorrelations ``phi_kk`` in (-1, 1)."""
    k_max = len(pacf)
    r = np.zeros(k_max, dtype=pacf.dtype)  # complex input: a complex-step derivative
    phi = np.zeros(0, dtype=pacf.dtype)
    for k in range(k_max):
        pk = pacf[k]
        if k == 0:
            r[0] = pk
            phi = np.array([pk])
            continue
        r[k] = pk * (1 - phi @ r[:k]) + phi @ r[k - 1 :: -1][:k]
        phi = np.concatenate([phi - pk * phi[::-1], [pk]])
    return r
