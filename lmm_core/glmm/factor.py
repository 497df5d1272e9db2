"""The weighted blocked Cholesky factor of a GLMM's penalized least-squares problem.

At a working-weight vector ``W`` (one iteration of penalized IRLS), the random effects
``u = Lambda^-1 b`` (spherical: ``u ~ N(0, I)``) and, when they are free, the fixed effects
``beta`` solve the normal equations of ``||W^1/2 (z - X beta - Z Lambda u)||^2 + ||u||^2``::

    [ A_ZZ  A_ZX ] [ u    ]   [ Lambda' Z' W z ]      A_ZZ = Lambda' Z' W Z Lambda + I,
    [ A_XZ  A_XX ] [ beta ] = [ X' W z         ],     A_ZX = Lambda' Z' W X,  A_XX = X' W X.

``A_ZZ = L_Z L_Z'`` is factored by blocks as the linear mixed model's
(:mod:`lmm_core.model.deviance`): the first term (most levels) gives one ``S x S`` block per
level (``L11``, batched), the other terms together a dense ``L22`` after the Schur complement
``A22 - L21 L21'`` with ``L21 = A21 L11^-T``. The fixed effects follow with
``R_ZX = L_Z^-1 A_ZX`` and ``L_X L_X' = A_XX - R_ZX' R_ZX``.

Terms on one grouping factor are merged first (:func:`lmm_core.design.reterms.amalgamate`);
``u`` is one flat vector in the merged order, level-major inside each term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from lmm_core.design.reterms import ReTerm, amalgamate
from lmm_core.model.linalg import (
    batched_cholesky,
    batched_logdet_tril,
    batched_tril_inverse,
    cholesky,
    logdet_tril,
    tri_solve,
)


@dataclass(frozen=True)
class Factor:
    """``L_Z`` (and ``R_ZX``, ``L_X`` when ``X`` is included) at one weight vector."""

    l11_inv: np.ndarray  # (m1, S1, S1): inverses of the L11 blocks
    l21: np.ndarray | sparse.csr_matrix | None  # (q2, q1), sparse when A_21 is
    l22: np.ndarray | None  # (q2, q2)
    ldl2: float  # log |L_Z|^2
    r_zx: np.ndarray | None = None  # (q, p)
    l_x: np.ndarray | None = None  # (p, p)

    @property
    def q1(self) -> int:
        return self.l11_inv.shape[0] * self.l11_inv.shape[1]

    def forward(self, r: np.ndarray) -> np.ndarray:
        """``L_Z^-1 r`` for ``r`` of shape ``(q,)`` or ``(q, k)``."""
        m1, s1, _ = self.l11_inv.shape
        if s1 == 1:  # diagonal L11: one product
            y1 = _scale_rows(self.l11_inv.reshape(m1), r[: self.q1])
        else:
            r1 = r[: self.q1].reshape(m1, s1, -1)
            y1 = np.einsum("ist,itk->isk", self.l11_inv, r1).reshape(self.q1, *r.shape[1:])
        if self.l22 is None:
            return y1
        y2 = tri_solve(self.l22, r[self.q1 :] - self.l21 @ y1)
        return np.concatenate([y1, y2])

    def backward(self, y: np.ndarray) -> np.ndarray:
        """``L_Z'^-1 y`` for ``y`` of shape ``(q,)`` or ``(q, k)``."""
        m1, s1, _ = self.l11_inv.shape
        y1 = y[: self.q1]
        if self.l22 is not None:
            x2 = tri_solve(self.l22, y[self.q1 :], trans=True)
            y1 = y1 - self.l21.T @ x2
        if s1 == 1:
            x1 = _scale_rows(self.l11_inv.reshape(m1), y1)
        else:
            x1 = np.einsum("ist,isk->itk", self.l11_inv, y1.reshape(m1, s1, -1))
            x1 = x1.reshape(self.q1, *y.shape[1:])
        return x1 if self.l22 is None else np.concatenate([x1, x2])

    def solve_joint(self, r_u: np.ndarray, r_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(u, beta)`` solving the full system with right-hand sides ``r_u``, ``r_b``."""
        assert self.r_zx is not None and self.l_x is not None
        c_u = self.forward(r_u)
        c_b = tri_solve(self.l_x, r_b - self.r_zx.T @ c_u)
        beta = tri_solve(self.l_x, c_b, trans=True)
        u = self.backward(c_u - self.r_zx @ beta)
        return u, beta

    def inverse_diag_blocks(self, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
        """Diagonal ``S x S`` blocks of ``A_ZZ^-1`` per level of each merged term
        (``sizes`` = ``(levels, S)`` per term): the conditional covariances of ``u``.

        With ``L^-1 = [[W, 0], [-M, L22^-1]]``, ``W = L11^-1`` and ``M = L22^-1 L21 W``,
        the first term's blocks are ``W_i' W_i + M_i' M_i`` and the others' those of
        ``L22^-T L22^-1``.
        """
        m1, s1, _ = self.l11_inv.shape
        first = np.einsum("ist,isu->itu", self.l11_inv, self.l11_inv)
        if self.l22 is None:
            return [first]
        l21 = self.l21.toarray() if sparse.issparse(self.l21) else self.l21
        m = tri_solve(self.l22, l21).reshape(-1, m1, s1)
        m = np.einsum("qis,ist->qit", m, self.l11_inv)
        first = first + np.einsum("qit,qiu->itu", m, m)
        l22_inv = tri_solve(self.l22, np.eye(self.l22.shape[0]))
        cov2 = l22_inv.T @ l22_inv
        out, start = [first], 0
        for lev, s in sizes[1:]:
            idx = start + np.arange(lev)[:, None] * s + np.arange(s)[None, :]
            out.append(cov2[idx[:, :, None], idx[:, None, :]])
            start += lev * s
        return out


def _scale_rows(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``diag(d) r`` for ``r`` of shape ``(q,)`` or ``(q, k)``."""
    return d * r if r.ndim == 1 else d[:, None] * r


#: ``A21`` is handled as a sparse matrix when it has fewer nonzeros than this share of entries
A21_DENSITY = 0.25
#: rows from which group sums go through a sparse indicator matrix (below: ``bincount``)
SPARSE_ROWS = 5000


class GroupSums:
    """Sums of rows by group, ``(m, k)`` from ``(n, k)``, for one grouping factor.

    ``G v`` with the ``m x n`` sparse indicator matrix ``G`` of the groups (one pass over
    the rows for all columns, no sorting), or for few rows one ``bincount`` over the keys
    ``k code + column`` (less overhead; the keys of each width built once).
    """

    def __init__(self, codes: np.ndarray, m: int) -> None:
        self.codes, self.m = codes, m
        n = codes.size
        self.matrix = None
        self._keys: dict[int, np.ndarray] = {}
        if n >= SPARSE_ROWS:
            self.matrix = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(m, n))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.matrix is not None:
            return np.asarray(self.matrix @ values)
        k = values.shape[1]
        keys = self._keys.get(k)
        if keys is None:
            keys = (self.codes[:, None] * k + np.arange(k)[None, :]).reshape(-1)
            self._keys[k] = keys
        return np.bincount(keys, values.reshape(-1), minlength=self.m * k).reshape(self.m, k)

    def vector(self, values: np.ndarray) -> np.ndarray:
        """Group sums of one vector ``(n,)``: ``(m,)``."""
        if self.matrix is not None:
            return self.matrix @ values
        return np.bincount(self.codes, values, minlength=self.m)


class WeightedSystem:
    """The fixed pieces (indicator matrices, sparsity patterns) of ``Z``, ``X``, built once.

    Parameters
    ----------
    X
        ``(n, p)`` fixed-effects matrix.
    reterms
        The random-effects terms in lme4's order (first term: most levels).
    """

    def __init__(self, X: np.ndarray, reterms: tuple[ReTerm, ...]) -> None:
        self.X = X
        self.n, self.p = X.shape
        self.reterms = reterms
        merged, perm, parts = amalgamate(reterms)
        self.merged, self.perm, self.parts = merged, perm, parts
        first = merged[0]
        self.m1, self.s1 = first.n_levels, first.n_columns
        self.q1 = self.m1 * self.s1
        self.codes1 = first.codes
        self.sizes = [(t.n_levels, t.n_columns) for t in merged]
        self.q = sum(m * s for m, s in self.sizes)
        self.q2 = self.q - self.q1
        if self.q2:
            cols, start = [], 0
            for t in merged[1:]:
                base = start + t.codes * t.n_columns
                cols.append(base[:, None] + np.arange(t.n_columns)[None, :])
                start += t.n_levels * t.n_columns
            self.cols2 = np.hstack(cols)  # (n, sum S_k): column of each entry of each row
        self.z1_idx = first.codes[:, None] * self.s1 + np.arange(self.s1)[None, :]
        self.a21_sparse = False
        if self.q2:
            self._a21_pattern()
        self.sums1 = GroupSums(self.codes1, self.m1)
        #: one term of one column: ``L_Z`` is diagonal
        self.scalar = self.s1 == 1 and not self.q2

    def _a21_pattern(self) -> None:
        """The nonzeros of ``A21`` (one per row, column of ``Z2`` and column of the first term,
        duplicates summed) and of the block diagonal ``L11^-T``, when ``A21`` is sparse
        (e.g. a first term with one level per row): then ``L21 = A21 L11^-T`` and its
        Gram matrix are sparse products instead of dense ones."""
        k2 = self.cols2.shape[1]
        rows = np.repeat(self.cols2, self.s1, axis=1)  # (n, k2 * S1): entry (a, j)
        cols = np.tile(self.z1_idx, (1, k2))
        keys, slot = np.unique(rows * self.q1 + cols, return_inverse=True)
        self.a21_sparse = keys.size < A21_DENSITY * self.q1 * self.q2
        if not self.a21_sparse:
            return
        self.a21_slot, self.a21_nnz = slot.reshape(-1), keys.size
        self.a21_indices = (keys % self.q1).astype(np.int32)
        self.a21_indptr = np.searchsorted(keys // self.q1, np.arange(self.q2 + 1)).astype(np.int32)
        s1, m1 = self.s1, self.m1
        block_cols = np.arange(m1)[:, None, None] * s1 + np.arange(s1)[None, None, :]
        self.l11t_indices = np.broadcast_to(block_cols, (m1, s1, s1)).reshape(-1).astype(np.int32)
        self.l11t_indptr = np.arange(0, m1 * s1 * s1 + 1, s1).astype(np.int32)
        self.a22_keys = (self.cols2[:, :, None] * self.q2 + self.cols2[:, None, :]).reshape(-1)
        if s1 == 1:
            self._gram_pairs(keys // self.q1)

    def _gram_pairs(self, slot_rows: np.ndarray) -> None:
        """For a first term of one column (``L11^-T`` diagonal, so ``L21`` has the pattern of
        ``A21``): the pairs of nonzeros of ``L21`` in one column, whose products summed at
        ``(row_a, row_b)`` give ``L21 L21'`` in one ``bincount``."""
        order = np.argsort(self.a21_indices, kind="stable")
        col = self.a21_indices[order]
        size = np.bincount(col, minlength=self.q1)[col]  # nonzeros in each slot's column
        group = np.searchsorted(col, col)  # sorted position where its column starts
        rank = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        sa = np.repeat(order, size)
        sb = order[np.repeat(group, size) + rank]
        self.gram_a, self.gram_b = sa, sb
        self.gram_keys = slot_rows[sa] * self.q2 + slot_rows[sb]

    # ------------------------------------------------------------------ Lambda
    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Each merged term's ``lambda`` (``theta`` in the order of the original terms)."""
        th = theta[self.perm]
        out, start = [], 0
        for t in self.merged:
            out.append(t.structure.factor(th[start : start + t.n_theta]))
            start += t.n_theta
        return out

    def zl(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per merged term, the rows of ``Z Lambda`` restricted to its columns: ``z_r' lambda``."""
        return [t.z @ lam for t, lam in zip(self.merged, self.lambdas(theta), strict=True)]

    # ------------------------------------------------------------------ products
    def times_u(self, zl: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """``Z Lambda u`` (length ``n``)."""
        if self.scalar:
            return zl[0][:, 0] * u[self.codes1]
        out = np.einsum("ij,ij->i", zl[0], u[: self.q1][self.z1_idx])
        if self.q2:
            out = out + np.einsum("ij,ij->i", np.hstack(zl[1:]), u[self.q1 :][self.cols2])
        return out

    def t_times(self, zl: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        """``Lambda' Z' v`` for ``v`` of shape ``(n,)`` or ``(n, k)``."""
        if self.scalar:
            z = zl[0][:, 0]
            if v.ndim == 1:
                return self.sums1.vector(z * v)
            return self.sums1(z[:, None] * v)
        vv = v if v.ndim == 2 else v[:, None]
        prod = (zl[0][:, :, None] * vv[:, None, :]).reshape(self.n, -1)
        top = self.sums1(prod).reshape(self.q1, vv.shape[1])
        if self.q2:
            vals = np.hstack(zl[1:])
            rest = np.zeros((self.q2, vv.shape[1]))
            for a in range(vals.shape[1]):
                prod = vals[:, a : a + 1] * vv
                for j in range(vv.shape[1]):
                    rest[:, j] += np.bincount(self.cols2[:, a], prod[:, j], minlength=self.q2)
            top = np.vstack([top, rest])
        return top if v.ndim == 2 else top[:, 0]

    def _rest_products(self, zl: list[np.ndarray], w: np.ndarray):
        """``A21 = Lambda2' Z2' W Z1 Lambda1`` as ``(q2, m1, S1)`` and ``A22`` (with ``+ I``),
        accumulated entry by entry of the rows (each row of ``Z2`` has one entry per column of
        each term)."""
        vals = np.hstack(zl[1:]) * np.sqrt(w)[:, None]
        z1 = zl[0] * np.sqrt(w)[:, None]
        q1, q2 = self.q1, self.q2
        a22 = np.zeros(q2 * q2)
        a21 = np.zeros(q2 * q1)
        for a in range(vals.shape[1]):
            ca = self.cols2[:, a]
            for b in range(vals.shape[1]):
                key = ca * q2 + self.cols2[:, b]
                a22 += np.bincount(key, vals[:, a] * vals[:, b], minlength=q2 * q2)
            for j in range(self.s1):
                key = ca * q1 + self.z1_idx[:, j]
                a21 += np.bincount(key, vals[:, a] * z1[:, j], minlength=q2 * q1)
        a22 = a22.reshape(q2, q2) + np.eye(q2)
        return a21.reshape(q2, self.m1, self.s1), a22

    def _sparse_l21(self, zl: list[np.ndarray], w: np.ndarray, l11_inv: np.ndarray):
        """``(L21, A22 - L21 L21')`` with ``L21 = A21 L11^-T`` sparse (the pattern of
        :meth:`_a21_pattern`)."""
        sw = np.sqrt(w)[:, None]
        vals = np.hstack(zl[1:]) * sw
        z1 = zl[0] * sw
        entries = (vals[:, :, None] * z1[:, None, :]).reshape(-1)
        data = np.bincount(self.a21_slot, entries, minlength=self.a21_nnz)
        shape, q2 = (self.q2, self.q1), self.q2
        a22 = np.bincount(
            self.a22_keys, (vals[:, :, None] * vals[:, None, :]).reshape(-1), minlength=q2 * q2
        ).reshape(q2, q2) + np.eye(q2)
        if self.s1 == 1:  # L21 = A21 diag(L11^-1): the pattern of A21, its Gram by pairs
            data = data * l11_inv.reshape(-1)[self.a21_indices]
            l21 = sparse.csr_matrix((data, self.a21_indices, self.a21_indptr), shape=shape)
            prods = data[self.gram_a] * data[self.gram_b]
            gram = np.bincount(self.gram_keys, prods, minlength=q2 * q2).reshape(q2, q2)
            return l21, a22 - gram
        a21 = sparse.csr_matrix((data, self.a21_indices, self.a21_indptr), shape=shape)
        # row t of block i of L11^-T holds row t of the transpose: (L11^-1)[:, t]
        l11t_data = np.ascontiguousarray(np.swapaxes(l11_inv, 1, 2)).reshape(-1)
        l11t = sparse.csr_matrix(
            (l11t_data, self.l11t_indices, self.l11t_indptr), shape=(self.q1, self.q1)
        )
        l21 = (a21 @ l11t).tocsr()
        return l21, a22 - (l21 @ l21.T).toarray()

    # ------------------------------------------------------------------ factor
    def factor(self, zl: list[np.ndarray], w: np.ndarray, with_x: bool) -> Factor:
        """The factor at working weights ``w`` (``R_ZX``, ``L_X`` too when ``with_x``).

        Raises
        ------
        np.linalg.LinAlgError
            If a block is not positive definite (only through rounding: ``A_ZZ >= I``).
        """
        if self.scalar:
            return self._scalar_factor(zl, w, with_x)
        z1 = zl[0]
        s1 = self.s1
        outer = (w[:, None, None] * z1[:, :, None] * z1[:, None, :]).reshape(self.n, -1)
        a11 = self.sums1(outer).reshape(self.m1, s1, s1) + np.eye(s1)
        l11 = batched_cholesky(a11)
        l11_inv = batched_tril_inverse(l11)
        ldl2 = batched_logdet_tril(l11)
        l21 = l22 = None
        if self.q2 and self.a21_sparse:
            l21, schur = self._sparse_l21(zl, w, l11_inv)
            l22 = cholesky(schur)
            ldl2 += logdet_tril(l22)
        elif self.q2:
            a21, a22 = self._rest_products(zl, w)
            l21 = np.einsum("qis,its->qit", a21, l11_inv).reshape(self.q2, self.q1)
            l22 = cholesky(a22 - l21 @ l21.T)
            ldl2 += logdet_tril(l22)
        fac = Factor(l11_inv, l21, l22, ldl2)
        if not with_x:
            return fac
        wx = w[:, None] * self.X
        r_zx = fac.forward(self.t_times(zl, wx))
        l_x = cholesky(self.X.T @ wx - r_zx.T @ r_zx)
        return Factor(l11_inv, l21, l22, ldl2, r_zx, l_x)

    def _scalar_factor(self, zl: list[np.ndarray], w: np.ndarray, with_x: bool) -> Factor:
        """The factor of one scalar term: ``L_Z = diag(sqrt(1 + sum_{r in i} w_r zl_r^2))``."""
        z = zl[0][:, 0]
        a11 = self.sums1.vector(w * z * z) + 1.0
        l11_inv = (1.0 / np.sqrt(a11)).reshape(self.m1, 1, 1)
        ldl2 = float(np.sum(np.log(a11)))
        fac = Factor(l11_inv, None, None, ldl2)
        if not with_x:
            return fac
        wx = w[:, None] * self.X
        r_zx = fac.forward(self.t_times(zl, wx))
        l_x = cholesky(self.X.T @ wx - r_zx.T @ r_zx)
        return Factor(l11_inv, None, None, ldl2, r_zx, l_x)


__all__ = ["Factor", "GroupSums", "WeightedSystem"]
