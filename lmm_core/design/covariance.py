"""Covariance structures of random-effects terms: ``theta`` to the relative covariance factor.

A random-effects term with ``S`` columns gives each level ``i`` of its grouping factor the
random effects ``b_i ~ N(0, sigma^2 lambda lambda')``, where ``lambda = lambda(theta_k)`` is an
``S x S`` lower-triangular *relative covariance factor*, the same for every level (Bates et al.
2015, JSS 67(1): ``Lambda`` is block diagonal with these blocks). A structure says how the
term's parameters ``theta_k`` make ``lambda``, as lme4 2.0's ``Covariance`` classes do:

======================  ==================================  ========================
class                   ``lambda(theta)``                   parameters
======================  ==================================  ========================
GeneralCovariance       lower triangle, column-major        ``S (S + 1) / 2``
DiagonalCovariance      ``diag(theta)``                     ``S``
ScalarCovariance        ``theta I_S``                       1
BlockDiagonalCovariance ``diag(lambda_1(theta_1), ...)``    the parts' together
======================  ==================================  ========================

``GeneralCovariance`` is lme4's ``(x | g)``; ``DiagonalCovariance`` is what ``(x || g)``
means once its terms are merged by grouping factor (:func:`lmm_core.design.reterms.amalgamate`
merges through :func:`direct_sum`); ``ScalarCovariance`` is one variance shared by every
column. The first three are *entrywise*: each parameter is one entry of ``lambda``
(:class:`EntrywiseCovariance`); the fitting code never depends on that.

What every structure gives (the interface the engine goes through):

* ``n_theta``, ``lower`` (bounds), ``start`` (lme4's starting values), ``is_variance``
  (parameters bounded below by 0 whose zero is the boundary of the parameter space: a
  singular fit), ``pattern`` (the entries of ``lambda`` that can be nonzero);
* :meth:`~CovarianceStructure.factor` ``theta_k -> lambda`` and its inverse
  :meth:`~CovarianceStructure.theta_from_factor` (exact when ``lambda`` has the structure);
* :meth:`~CovarianceStructure.theta_units`: the unit of each parameter when column ``j`` of
  the term's ``z`` is measured in units ``d_j`` (a change of units multiplies row ``j`` of
  ``lambda``), for the unit-free ``phi = theta * units`` of the optimizer;
* names (:meth:`~CovarianceStructure.theta_names`, :meth:`~CovarianceStructure.sdcor_names`);
* the standard deviations and correlations ``(sd, cor)`` of the random effects that the
  parameters determine, and back (likelihood profiles and the bootstrap report those);
* :meth:`~CovarianceStructure.covariance_basis`: symmetric ``E_l`` with
  ``lambda lambda' = sum_l gamma_l E_l``, linear in the covariance parameters ``gamma``
  (Kenward-Roger's derivatives).

A new structure (AR(1), compound symmetry, Toeplitz, ...) is a new subclass; nothing else in
the engine branches on the kind of structure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class CovarianceStructure(ABC):
    """How the parameters ``theta_k`` of one random-effects term make its factor ``lambda``.

    Parameters
    ----------
    size
        ``S``, the number of columns of the term (random effects per level).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a random-effects term has at least one column")
        self.size = int(size)

    # ------------------------------------------------------------------ parameters
    @property
    @abstractmethod
    def n_theta(self) -> int:
        """Number of parameters."""

    @property
    @abstractmethod
    def lower(self) -> np.ndarray:
        """Lower bounds of the parameters (0 for variance-like ones, ``-inf`` for the others)."""

    @property
    @abstractmethod
    def start(self) -> np.ndarray:
        """lme4's starting values: ``lambda = I``."""

    @property
    @abstractmethod
    def is_variance(self) -> np.ndarray:
        """Boolean mask: parameters that scale a standard deviation, bounded below by 0 (the
        others are correlation-like and free). A variance-like parameter at 0 is a boundary
        estimate (lme4's ``isSingular``)."""

    @property
    @abstractmethod
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the entries of ``lambda`` that can be nonzero (lower
        triangle, column-major): the sparsity of ``Lambda`` that the factorization keeps."""

    # ------------------------------------------------------------------ the factor
    @abstractmethod
    def factor(self, theta: np.ndarray) -> np.ndarray:
        """The ``S x S`` lower-triangular relative covariance factor ``lambda(theta)``."""

    @abstractmethod
    def theta_from_factor(self, lam: np.ndarray) -> np.ndarray:
        """Parameters whose factor is ``lam`` (exact when ``lam`` has this structure; else the
        structure's projection of it). Used for starting values built as factors."""

    @abstractmethod
    def theta_units(self, column_units: np.ndarray) -> np.ndarray:
        """Unit of each parameter when column ``j`` of ``z`` is in units ``column_units[j]``.

        Rescaling column ``j`` by ``d_j`` multiplies row ``j`` of ``lambda`` by ``d_j`` (``D
        lambda`` is the factor of the rescaled columns ``z D^-1``), so ``theta * units`` does
        not depend on the units of the covariates.
        """

    # ------------------------------------------------------------------ names
    @abstractmethod
    def theta_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        """lme4's names of the parameters: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``."""

    @abstractmethod
    def sdcor_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        """Names of :meth:`sdcor` (lme4's ``tnames(fit, old = FALSE)``):
        ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``."""

    # ------------------------------------------------------------------ (sd, cor)
    @abstractmethod
    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """Standard deviations and correlations of the random effects, one per parameter, for
        the residual SD ``sigma`` (lme4's ``Cv_to_Sv``); a correlation with a zero SD is 0."""

    @abstractmethod
    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        """Inverse of :meth:`sdcor`; None when the correlations are not positive
        semi-definite."""

    def covariance_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``i`` and columns ``j < i`` of the covariances ``(lambda lambda')[i, j]`` the
        structure can make nonzero (rows of ``lambda`` sharing a column of its pattern),
        column-major: the covariance rows of ``VarCorr``."""
        rows, cols = self.pattern
        used = np.zeros((self.size, self.size))
        used[rows, cols] = 1.0
        reach = (used @ used.T) > 0
        j, i = np.nonzero(np.triu(reach.T, k=1))  # (i, j), i > j, ordered by j then i
        return i, j

    @abstractmethod
    def covariance_basis(self) -> np.ndarray:
        """``(k, S, S)`` symmetric matrices ``E_l`` with ``lambda lambda' = sum_l gamma_l E_l``
        over the structure's ``k`` covariance parameters ``gamma`` (variances and covariances
        relative to ``sigma^2``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.size})"


class EntrywiseCovariance(CovarianceStructure):
    """Each parameter is one entry of ``lambda``: ``lambda[rows[l], cols[l]] = theta[l]``.

    Diagonal entries are variance-like (bounded by 0, start 1), off-diagonal ones free (start
    0). With ``D = diag(sd)`` and ``R`` the correlation matrix, ``theta`` of given ``(sd, cor)``
    is the lower triangle of ``D chol(R) / sigma``.

    Parameters
    ----------
    size
        ``S``.
    rows, cols
        Position of each parameter in ``lambda`` (``rows >= cols``).
    """

    def __init__(self, size: int, rows: np.ndarray, cols: np.ndarray) -> None:
        super().__init__(size)
        self.rows = np.asarray(rows, dtype=int)
        self.cols = np.asarray(cols, dtype=int)
        if self.rows.shape != self.cols.shape or np.any(self.rows < self.cols):
            raise ValueError("entries of a lower-triangular factor need rows >= cols")
        self._diag = self.rows == self.cols

    @property
    def n_theta(self) -> int:
        return int(self.rows.size)

    @property
    def lower(self) -> np.ndarray:
        return np.where(self._diag, 0.0, -np.inf)

    @property
    def start(self) -> np.ndarray:
        return np.where(self._diag, 1.0, 0.0)

    @property
    def is_variance(self) -> np.ndarray:
        return self._diag.copy()

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rows, self.cols

    def factor(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.size, self.size))
        lam[self.rows, self.cols] = theta
        return lam

    def theta_from_factor(self, lam: np.ndarray) -> np.ndarray:
        return np.asarray(lam)[self.rows, self.cols]

    def theta_units(self, column_units: np.ndarray) -> np.ndarray:
        return np.asarray(column_units)[self.rows]

    def theta_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        return [
            f"{group}.{cnames[i]}" if i == j else f"{group}.{cnames[i]}.{cnames[j]}"
            for i, j in zip(self.rows, self.cols, strict=True)
        ]

    def sdcor_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        return [
            f"sd_{cnames[i]}|{group}" if i == j else f"cor_{cnames[i]}.{cnames[j]}|{group}"
            for i, j in zip(self.rows, self.cols, strict=True)
        ]

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        lam = self.factor(theta)
        cov = sigma**2 * (lam @ lam.T)
        sd = np.sqrt(np.diag(cov))
        out = []
        for i, j in zip(self.rows, self.cols, strict=True):
            if i == j:
                out.append(sd[i])
            else:
                denom = sd[i] * sd[j]
                out.append(cov[i, j] / denom if denom > 0 else 0.0)
        return np.asarray(out, float)

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        rows, cols = self.rows, self.cols
        corr = np.eye(self.size)
        corr[rows, cols] = np.where(self._diag, 1.0, values)
        sd = np.asarray(values)[self._diag]
        low = psd_cholesky(corr)
        if low is None:
            return None
        lam = sd[:, None] * low / sigma
        return lam[rows, cols]

    def covariance_basis(self) -> np.ndarray:
        basis = np.zeros((self.n_theta, self.size, self.size))
        for k, (a, b) in enumerate(zip(self.rows, self.cols, strict=True)):
            basis[k, a, b] = basis[k, b, a] = 1.0
        return basis


class GeneralCovariance(EntrywiseCovariance):
    """Unstructured: ``theta`` is the lower triangle of ``lambda``, column-major (lme4's
    ``Lind`` order; ``(x | g)``): every variance and correlation is free."""

    def __init__(self, size: int) -> None:
        cols, rows = np.triu_indices(size)  # (j, i) with i >= j, ordered by j then i
        super().__init__(size, rows, cols)


class DiagonalCovariance(EntrywiseCovariance):
    """Independent random effects: ``lambda = diag(theta)``, one SD per column, correlations
    fixed at 0 (the meaning of ``(x || g)``)."""

    def __init__(self, size: int) -> None:
        super().__init__(size, np.arange(size), np.arange(size))


class ScalarCovariance(CovarianceStructure):
    """One standard deviation shared by every column: ``lambda = theta I_S`` (for ``S = 1`` the
    same model as :class:`GeneralCovariance` of one column)."""

    @property
    def n_theta(self) -> int:
        return 1

    @property
    def lower(self) -> np.ndarray:
        return np.zeros(1)

    @property
    def start(self) -> np.ndarray:
        return np.ones(1)

    @property
    def is_variance(self) -> np.ndarray:
        return np.ones(1, dtype=bool)

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(self.size), np.arange(self.size)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        return theta[0] * np.eye(self.size)

    def theta_from_factor(self, lam: np.ndarray) -> np.ndarray:
        """The root mean square of the rows' lengths: ``theta I`` has ``lam lam'``'s trace."""
        return np.array([np.sqrt(np.sum(np.asarray(lam) ** 2) / self.size)])

    def theta_units(self, column_units: np.ndarray) -> np.ndarray:
        """The root mean square of the columns' units (one parameter for all of them)."""
        return np.array([np.sqrt(np.mean(np.asarray(column_units) ** 2))])

    def _label(self, cnames: Sequence[str]) -> str:
        return cnames[0] if self.size == 1 else "[" + ",".join(cnames) + "]"

    def theta_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        return [f"{group}.{self._label(cnames)}"]

    def sdcor_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        return [f"sd_{self._label(cnames)}|{group}"]

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return np.array([np.sqrt(sigma**2 * (theta[0] * theta[0]))])

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        return np.array([values[0] / sigma])

    def covariance_basis(self) -> np.ndarray:
        return np.eye(self.size)[None, :, :]


class BlockDiagonalCovariance(CovarianceStructure):
    """Direct sum of structures: ``lambda = diag(lambda_1(theta_1), lambda_2(theta_2), ...)``,
    ``theta`` the parts' parameters one part after the other. Terms of any structures on one
    grouping factor merged into one block (:func:`direct_sum`)."""

    def __init__(self, parts: Sequence[CovarianceStructure]) -> None:
        self.parts = tuple(parts)
        sizes = [p.size for p in self.parts]
        super().__init__(sum(sizes))
        self._cols = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._theta = np.concatenate([[0], np.cumsum([p.n_theta for p in self.parts])]).astype(int)

    def _pieces(self):
        for k, part in enumerate(self.parts):
            yield (
                part,
                slice(self._cols[k], self._cols[k + 1]),
                slice(self._theta[k], self._theta[k + 1]),
            )

    @property
    def n_theta(self) -> int:
        return int(self._theta[-1])

    @property
    def lower(self) -> np.ndarray:
        return np.concatenate([p.lower for p in self.parts])

    @property
    def start(self) -> np.ndarray:
        return np.concatenate([p.start for p in self.parts])

    @property
    def is_variance(self) -> np.ndarray:
        return np.concatenate([p.is_variance for p in self.parts])

    @property
    def pattern(self) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = [], []
        for part, block, _ in self._pieces():
            r, c = part.pattern
            rows.append(r + block.start)
            cols.append(c + block.start)
        return np.concatenate(rows), np.concatenate(cols)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.size, self.size))
        for part, block, par in self._pieces():
            lam[block, block] = part.factor(theta[par])
        return lam

    def theta_from_factor(self, lam: np.ndarray) -> np.ndarray:
        lam = np.asarray(lam)
        return np.concatenate([p.theta_from_factor(lam[b, b]) for p, b, _ in self._pieces()])

    def theta_units(self, column_units: np.ndarray) -> np.ndarray:
        d = np.asarray(column_units)
        return np.concatenate([p.theta_units(d[b]) for p, b, _ in self._pieces()])

    def theta_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        return [n for p, b, _ in self._pieces() for n in p.theta_names(group, cnames[b])]

    def sdcor_names(self, group: str, cnames: Sequence[str]) -> list[str]:
        return [n for p, b, _ in self._pieces() for n in p.sdcor_names(group, cnames[b])]

    def sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return np.concatenate([p.sdcor(theta[t], sigma) for p, _, t in self._pieces()])

    def theta_from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        out = [p.theta_from_sdcor(values[t], sigma) for p, _, t in self._pieces()]
        return None if any(o is None for o in out) else np.concatenate(out)

    def covariance_basis(self) -> np.ndarray:
        out = []
        for part, block, _ in self._pieces():
            for e in part.covariance_basis():
                full = np.zeros((self.size, self.size))
                full[block, block] = e
                out.append(full)
        return np.asarray(out).reshape(-1, self.size, self.size)

    def __repr__(self) -> str:
        return f"BlockDiagonalCovariance({list(self.parts)!r})"


def direct_sum(parts: Sequence[CovarianceStructure]) -> CovarianceStructure:
    """One structure for several terms on the same grouping factor, side by side.

    Entrywise parts give an entrywise structure (their entries shifted along the diagonal: a
    :class:`DiagonalCovariance` when every part is one column, as ``(t || g)`` gives), so that
    evaluating the merged factor costs one scatter; any other part gives a
    :class:`BlockDiagonalCovariance`.
    """
    parts = tuple(parts)
    if len(parts) == 1:
        return parts[0]
    if not all(isinstance(p, EntrywiseCovariance) for p in parts):
        return BlockDiagonalCovariance(parts)
    size = sum(p.size for p in parts)
    if all(p.size == 1 and p.n_theta == 1 for p in parts):
        return DiagonalCovariance(size)
    offsets = np.concatenate([[0], np.cumsum([p.size for p in parts])[:-1]]).astype(int)
    rows = np.concatenate([p.rows + o for p, o in zip(parts, offsets, strict=True)])
    cols = np.concatenate([p.cols + o for p, o in zip(parts, offsets, strict=True)])
    return EntrywiseCovariance(size, rows, cols)


def psd_cholesky(a: np.ndarray, tol: float = 1e-10) -> np.ndarray | None:
    """Lower factor ``L`` with ``L L' = a`` of a positive semi-definite matrix (a zero pivot gives
    a zero column); None when ``a`` is not positive semi-definite (a pivot below ``-tol``, or a
    nonzero entry beside a zero pivot)."""
    s = a.shape[0]
    low = np.zeros((s, s))
    for j in range(s):
        d = a[j, j] - low[j, :j] @ low[j, :j]
        if d < -tol:
            return None
        low[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, s):
            num = a[i, j] - low[i, :j] @ low[j, :j]
            if low[j, j] > 0:
                low[i, j] = num / low[j, j]
            elif abs(num) > 1e-8:
                return None
    return low


__all__ = [
    "BlockDiagonalCovariance",
    "CovarianceStructure",
    "DiagonalCovariance",
    "EntrywiseCovariance",
    "GeneralCovariance",
    "ScalarCovariance",
    "direct_sum",
    "psd_cholesky",
]
