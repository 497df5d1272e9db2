"""The criterion of a small model with several random-effects terms, from one dense factor.

For a few dozen random effects (Pastes' ``(1 | batch/cask)``, Penicillin's crossed
``(1 | plate) + (1 | sample)``) one Cholesky factor of the whole augmented system costs less
than the blocked factor's many small array operations of
:class:`lmm_core.model.deviance.ProfiledDeviance`. With ``A = [Z X y]'[Z X y]`` and
``T = diag(Lambda, I)``::

    B = T'AT + diag(I_q, 0) = L L',   L = [[L_Z, 0], [L_XZ, L_X]]

(the module docstring of :mod:`lmm_core.model.deviance`): ``log|L_Z|^2`` is twice the sum of
the logs of the first ``q`` pivots, ``ldRX2`` of the next ``p``, ``r^2`` the last pivot
squared, whatever the order of the random effects. ``T`` has a few entries per column, kept
in compressed columns, so that ``T'AT`` costs ``O(size^2 S)``
(:func:`lmm_core.model.kernels.small_model_criterion`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lmm_core.model.kernels import small_model_criterion

if TYPE_CHECKING:
    from lmm_core.model.deviance import ProfiledDeviance

_ONE = np.ones(1)


@dataclass(frozen=True)
class SmallModelSystem:
    """``A`` dense and ``T`` by columns: column ``j`` of ``T`` holds rows
    ``rows[ptr[j]:ptr[j + 1]]`` with values ``v[source]``, ``v`` the merged terms' factors
    raveled one after the other followed by a 1 (the identity of ``[X y]``); ``q`` random
    effects."""

    a: np.ndarray
    ptr: np.ndarray
    rows: np.ndarray
    source: np.ndarray
    q: int
    #: ``v = J theta + e_last`` when every factor is linear in ``theta`` (all the structures
    #: of :mod:`lmm_core.design.covariance` are), else ``None`` (``v`` from the factors)
    j: np.ndarray | None = None

    @classmethod
    def from_deviance(cls, dev: ProfiledDeviance) -> SmallModelSystem:
        """The system of ``dev``'s blocks (a first term and at least one other)."""
        m1, s1, q1, q2 = dev.m1, dev.s1, dev.q1, dev.q2
        q, k = q1 + q2, dev.p + 1
        size = q + k
        a = np.zeros((size, size))
        level = np.arange(m1)[:, None, None] * s1
        r = np.arange(s1)[None, :, None]
        c = np.arange(s1)[None, None, :]
        rows1 = (level + r + 0 * c).ravel()  # level-major, row-major within a block
        cols1 = (level + c + 0 * r).ravel()
        a[rows1, cols1] = dev.a11_flat.ravel()
        a[q1:q, :q1] = dev.a21.toarray()
        a[:q1, q1:q] = a[q1:q, :q1].T
        a[q1:q, q1:q] = dev.a22
        a1xy = dev.a1xy.transpose(1, 0, 2).reshape(q1, k)
        a[:q1, q:], a[q:, :q1] = a1xy, a1xy.T
        a[q1:q, q:], a[q:, q1:q] = dev.a2xy, dev.a2xy.T
        a[q:, q:] = dev.axy
        # Lambda1's entries per level (its upper triangle is zero: left out), the other
        # terms' entries, then the identity of [X y].
        n_entries = s1 * s1 + sum(t.n_columns**2 for t in dev._terms[1:])
        rows = np.concatenate([rows1, q1 + dev._lam2_rows, np.arange(q, size)])
        cols = np.concatenate([cols1, q1 + dev._lam2_cols, np.arange(q, size)])
        source = np.concatenate(
            [np.tile(np.arange(s1 * s1), m1), s1 * s1 + dev._lam2_entry, np.full(k, n_entries)]
        ).astype(np.int64)
        upper1 = np.tile((np.arange(s1)[:, None] < np.arange(s1)[None, :]).ravel(), m1)
        keep = np.concatenate([~upper1, np.ones(rows.size - rows1.size, bool)])
        order = np.lexsort((rows[keep], cols[keep]))
        ptr = np.concatenate([[0], np.cumsum(np.bincount(cols[keep], minlength=size))])
        return cls(
            a,
            ptr.astype(np.int64),
            rows[keep][order].astype(np.int64),
            source[keep][order],
            q,
            _linear_map(dev),
        )

    def criterion_at(self, dev: ProfiledDeviance, theta: np.ndarray) -> float:
        """:meth:`criterion` at ``theta`` (the order of the terms given) of ``dev``."""
        if self.j is None:
            return self.criterion(dev.lambdas(theta), dev._dof, dev.reml)
        values = self.j @ np.asarray(theta, float)
        values[-1] = 1.0
        return self._criterion(values, dev._dof, dev.reml)

    def criterion(self, lams: tuple[np.ndarray, ...], dof: float, reml: bool) -> float:
        """REML criterion or ML deviance at the merged terms' factors ``lams`` (``dof``:
        ``n - p`` for REML, ``n`` for ML)."""
        return self._criterion(np.concatenate([lam.ravel() for lam in lams] + [_ONE]), dof, reml)

    def _criterion(self, values: np.ndarray, dof: float, reml: bool) -> float:
        out = small_model_criterion(
            self.a, self.ptr, self.rows, self.source, values, self.q, dof, reml
        )
        if math.isnan(out):
            raise np.linalg.LinAlgError("matrix not positive definite")
        return out


def _linear_map(dev: ProfiledDeviance) -> np.ndarray | None:
    """``J`` with ``concat(lambda_k.ravel()) = J theta`` (a last row of zeros for the 1 of
    ``[X y]``), read off unit vectors, or ``None`` if the factors are not linear in ``theta``
    (checked at a random point: the entries must agree exactly)."""

    def values(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([lam.ravel() for lam in dev.lambdas(theta)] + [np.zeros(1)])

    k = dev.theta0.size
    j = np.column_stack([values(np.eye(k)[i]) for i in range(k)])
    probe = np.random.default_rng(0).uniform(0.1, 2.0, k)
    return j if np.array_equal(j @ probe, values(probe)) else None


__all__ = ["SmallModelSystem"]
