"""The cross-products of ``[Z X y]`` that the profiled deviance needs, as a value.

With the random-effects terms merged by grouping factor (:func:`lmm_core.design.reterms.
amalgamate`), ``Z = [Z1 Z2]`` (``Z1`` the first merged term, ``Z2`` the others side by side)
and ``[X y]`` the fixed-effects matrix with the response appended, the profiled deviance
(:mod:`lmm_core.model.deviance`) reads only::

    a11_flat  Z1'Z1, one S1 x S1 block per level of term 1, as (m1, S1 * S1)
    a1xy      Z1'[X y] as (S1, m1, p + 1)           (column a of the blocks, level, column)
    axy       [X y]'[X y]                           (p + 1, p + 1)
    a21       Z2'Z1, sparse (q2, q1)                (None without other terms)
    a22       Z2'Z2, dense (q2, q2)
    a2xy      Z2'[X y]                              (q2, p + 1)

Each is a sum over rows, so the cross-products of a table are the sums of those of its row
batches (:meth:`CrossProducts.__add__`, :meth:`CrossProducts.accumulate`) as long as every
batch codes the levels of a factor the same way (global level codes): this is what lets a
table that does not fit in memory, or that lives on a cluster, be fitted by streaming.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lmm_core.design.reterms import ReTerm, amalgamate


@dataclass(frozen=True)
class CrossProducts:
    """Sums over rows of the products of ``[Z X y]`` (module docstring for the layouts).

    Attributes
    ----------
    n, p
        Number of rows summed and of fixed-effects columns.
    a11_flat, a1xy, axy
        First merged term's per-level blocks and the ``[X y]`` cross-product.
    a21, a22, a2xy
        The other merged terms' blocks (``a21`` sparse CSR), ``None`` when there are none.
    """

    n: int
    p: int
    a11_flat: np.ndarray
    a1xy: np.ndarray
    axy: np.ndarray
    a21: sp.csr_matrix | None = None
    a22: np.ndarray | None = None
    a2xy: np.ndarray | None = None

    def __add__(self, other: CrossProducts) -> CrossProducts:
        """Cross-products of the rows of both (the blocks must have the same shapes)."""
        if not isinstance(other, CrossProducts):
            return NotImplemented
        if (
            self.p != other.p
            or self.a11_flat.shape != other.a11_flat.shape
            or (self.a21 is None) != (other.a21 is None)
            or (self.a21 is not None and self.a21.shape != other.a21.shape)
        ):
            raise ValueError("cross-products of different models cannot be added")
        rest = {}
        if self.a21 is not None:
            a21 = (self.a21 + other.a21).tocsr()
            a21.sum_duplicates()
            rest = {"a21": a21, "a22": self.a22 + other.a22, "a2xy": self.a2xy + other.a2xy}
        return CrossProducts(
            n=self.n + other.n,
            p=self.p,
            a11_flat=self.a11_flat + other.a11_flat,
            a1xy=self.a1xy + other.a1xy,
            axy=self.axy + other.axy,
            **rest,
        )

    @staticmethod
    def accumulate(parts: Iterable[CrossProducts]) -> CrossProducts:
        """Sum of the cross-products of row batches (at least one)."""
        total = None
        for part in parts:
            total = part if total is None else total + part
        if total is None:
            raise ValueError("no batch of rows to accumulate")
        return total

    @property
    def nbytes(self) -> int:
        """Memory held by the blocks, in bytes."""
        out = self.a11_flat.nbytes + self.a1xy.nbytes + self.axy.nbytes
        if self.a21 is not None:
            out += self.a21.data.nbytes + self.a21.indices.nbytes + self.a21.indptr.nbytes
            out += self.a22.nbytes + self.a2xy.nbytes
        return int(out)


def cross_products(X: np.ndarray, y: np.ndarray, merged_terms: tuple[ReTerm, ...]) -> CrossProducts:
    """Cross-products of ``[Z X y]`` for the rows given.

    Parameters
    ----------
    X
        Fixed-effects model matrix ``(n, p)``.
    y
        Response ``(n,)``.
    merged_terms
        Random-effects terms merged by grouping factor (:func:`~lmm_core.design.reterms.
        amalgamate`), at least one; their ``codes`` index their ``levels`` (for row batches,
        the levels of the whole table).

    Returns
    -------
    CrossProducts
        ``Z1'Z1`` per level by ``bincount`` over the codes, ``Z2'Z1``, ``Z2'Z2``,
        ``Z2'[X y]`` through sparse products, ``[X y]'[X y]`` by one matrix product.
    """
    X = np.asarray(X, float)
    xy = np.column_stack([X, np.asarray(y, float)])
    first = merged_terms[0]
    m1, s1 = first.n_levels, first.n_columns
    codes, z = first.codes, first.z
    a11_flat = np.empty((m1, s1 * s1))
    for a in range(s1):
        for b in range(a + 1):
            col = np.bincount(codes, weights=z[:, a] * z[:, b], minlength=m1)
            a11_flat[:, a * s1 + b] = col
            a11_flat[:, b * s1 + a] = col
    a1xy = np.empty((s1, m1, xy.shape[1]))
    for a in range(s1):
        for j in range(xy.shape[1]):
            a1xy[a, :, j] = np.bincount(codes, weights=z[:, a] * xy[:, j], minlength=m1)
    axy = xy.T @ xy
    rest = merged_terms[1:]
    blocks = {}
    if rest:
        z1 = sparse_z(first)
        z2 = sp.hstack([sparse_z(t) for t in rest], format="csc")
        a21 = (z2.T @ z1).tocsr()
        a21.sum_duplicates()
        blocks = {
            "a21": a21,
            "a22": (z2.T @ z2).toarray(),
            "a2xy": np.asarray(z2.T @ xy),
        }
    return CrossProducts(
        n=int(xy.shape[0]), p=int(X.shape[1]), a11_flat=a11_flat, a1xy=a1xy, axy=axy, **blocks
    )


def sparse_z(term: ReTerm) -> sp.csr_matrix:
    """The term's block of Z as a sparse ``(n, levels * S)`` matrix (level-major columns)."""
    n, s = term.z.shape
    cols = term.codes[:, None] * s + np.arange(s)[None, :]
    rows = np.repeat(np.arange(n), s)
    return sp.csr_matrix((term.z.ravel(), (rows, cols.ravel())), shape=(n, term.n_levels * s))


def theta_scale_from_blocks(cp: CrossProducts, reterms: tuple[ReTerm, ...]) -> np.ndarray:
    """:func:`lmm_core.design.reterms.theta_scale` read from the blocks instead of the rows.

    The root mean square of column ``a`` of a term's ``z`` is ``sqrt(sum_i A_i[a, a] / n)``
    with ``A_i`` its diagonal blocks: those of ``a11_flat`` for the first merged term, the
    diagonal of ``a22`` for the others. ``reterms`` are the terms in the order given (the
    ones :class:`~lmm_core.model.deviance.ProfiledDeviance` receives; they may have no rows).
    """
    merged, _, parts = amalgamate(tuple(reterms))
    m1, s1 = merged[0].n_levels, merged[0].n_columns
    sums = [cp.a11_flat.reshape(m1, s1, s1)[:, np.arange(s1), np.arange(s1)].sum(axis=0)]
    if len(merged) > 1:
        diag = np.diag(cp.a22)
        offset = 0
        for t in merged[1:]:
            size = t.n_levels * t.n_columns
            sums.append(diag[offset : offset + size].reshape(t.n_levels, t.n_columns).sum(axis=0))
            offset += size
    rms: list[np.ndarray | None] = [None] * len(reterms)
    for total, pieces in zip(sums, parts, strict=True):
        for k, cols in pieces:
            if cp.n:
                r = np.sqrt(total[cols] / cp.n)
                rms[k] = np.where(np.isfinite(r) & (r > 0), r, 1.0)
            else:
                rms[k] = np.ones(reterms[k].n_columns)
    out = [t.structure.theta_units(r) for t, r in zip(reterms, rms, strict=True)]
    return np.concatenate(out) if out else np.zeros(0)
