"""The profiled deviance of a linear mixed model, evaluated over a blocked Cholesky factor.

Model (Bates, Maechler, Bolker & Walker 2015, JSS 67(1), notation kept)::

    y = X beta + Z b + e,   b = Lambda(theta) u,   u ~ N(0, sigma^2 I),   e ~ N(0, sigma^2 I).

For a fixed ``theta`` the penalized least-squares problem
``min ||y - X beta - Z Lambda u||^2 + ||u||^2`` is solved through the lower Cholesky factor
``L`` of the cross-product matrix of ``[Z Lambda, X, y]`` with ``I`` added to the
``Z Lambda`` block (MixedModels.jl appends ``y`` as a last column, so that the penalized
residual sum of squares ``r^2`` is the square of the last diagonal element of ``L``)::

    [ L11   0    0   ]   blocks:  1 = first random-effects term (most levels),
    [ L21  L22   0   ]            2 = all other random-effects terms together,
    [ L31  L32  L33  ]            3 = [X y].

Terms on the same grouping factor (``(t || g)`` gives two) are merged into one block first,
with structural zeros in its ``lambda`` (:func:`lmm_core.design.reterms.amalgamate`), so that they
share the per-level blocks instead of filling a dense ``L22``. Inputs (``theta``) and outputs
(``u``, ``b``, conditional covariances) stay in the order of the terms given.

``L11`` is block diagonal, one ``S x S`` block per level, factored by one batched Cholesky.
``L21`` keeps the sparsity of ``Z2'Z1`` (a nested factor causes no fill-in there); ``L22`` is
dense, of the size of the other terms' random effects (hospitals, a crossed factor, ...).
Every cross-product is formed once in :class:`ProfiledDeviance`; an evaluation touches only
them, so for one grouping factor its cost is O(levels * S^3 + levels * S * p^2 + p^3),
independent of the number of rows.

The profiled criteria (JSS eqs. 34 and 41)::

    ML:    ldL2 + n       * (1 + log(2 pi r^2 / n))
    REML:  ldL2 + ldRX2 + (n - p) * (1 + log(2 pi r^2 / (n - p)))

with ``ldL2 = log|L_Z|^2`` (blocks 11 and 22) and ``ldRX2 = log|L_X|^2`` (block 33 without
its last row and column).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from lmm_core.design.reterms import ReTerm, amalgamate, theta_scale
from lmm_core.model.conditional_variance import conditional_covariances
from lmm_core.model.cross_products import (
    CrossProducts,
    cross_products,
    theta_scale_from_blocks,
)
from lmm_core.model.kernels import (
    crossed_gram,
    level_schur,
    nested_pairs,
    one_term_criterion,
)
from lmm_core.model.linalg import (
    batched_cholesky,
    batched_logdet_tril,
    batched_tril_inverse,
    cholesky,
    logdet_tril,
    tri_solve,
)
from lmm_core.model.small_model import SmallModelSystem

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class BlockedFactor:
    """The blocked Cholesky factor at one ``theta`` (see the module docstring)."""

    lambdas: tuple[np.ndarray, ...]  # one lower-triangular factor per merged term
    l11: np.ndarray  # (m1, S1, S1)
    w11: np.ndarray  # (m1, S1, S1), inverses of the l11 blocks
    r1_cols: np.ndarray  # (S1, m1, p + 1): L31' = L11^{-1} Lambda1' Z1'[X y], by block column
    l21_parts: tuple | None  # L21 (q2, q1) as (blocks, order, indices, indptr, shape)
    l22: np.ndarray | None  # (q2, q2)
    r2: np.ndarray | None  # (q2, p + 1): L32'
    l33: np.ndarray  # (p + 1, p + 1)
    ldl2: float  # log |L_Z|^2 (blocks 11 and 22)
    ldrx2: float  # log |L_X|^2 (block 33 without y)

    @cached_property
    def l21(self) -> sp.csr_matrix | None:
        """``L21`` as a sparse matrix (built on first use: evaluations do not need it)."""
        return None if self.l21_parts is None else _csr(self.l21_parts)

    @property
    def r1(self) -> np.ndarray:
        """``L31'`` as ``(q1, p + 1)`` rows, level-major (level i, column j at ``i * S1 + j``)."""
        s1, m1, k = self.r1_cols.shape
        return self.r1_cols.transpose(1, 0, 2).reshape(m1 * s1, k)

    @property
    def pwrss(self) -> float:
        return float(self.l33[-1, -1] ** 2)


@dataclass(frozen=True)
class PLSSolution:
    """Solution of the penalized least-squares problem at one ``theta``.

    ``u`` and ``b`` hold one ``(levels, S)`` array per random-effects term; ``b = Lambda u``.
    ``sigma`` is ``sqrt(pwrss / n)`` (ML) or ``sqrt(pwrss / (n - p))`` (REML).
    """

    theta: np.ndarray
    beta: np.ndarray
    u: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]
    ldl2: float
    ldrx2: float
    pwrss: float
    sigma: float
    objective: float
    vcov_beta: np.ndarray
    factor: BlockedFactor


class ProfiledDeviance:
    """The profiled REML criterion or ML deviance as a function of ``theta``.

    Parameters
    ----------
    X
        Fixed-effects model matrix ``(n, p)`` of full column rank.
    y
        Response ``(n,)``.
    reterms
        Random-effects terms, the one with the most levels first (lme4's order).
    reml
        REML criterion if true, ML deviance otherwise.

    Notes
    -----
    Calling the object with ``theta`` returns the criterion; :meth:`solve` returns the whole
    solution. A ``theta`` at which a block is not positive definite raises
    ``np.linalg.LinAlgError`` (the optimizer wrapper turns that into a finite value).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, reterms: tuple[ReTerm, ...], reml: bool):
        if not reterms:
            raise ValueError("a mixed model needs at least one random-effects term")
        reterms = tuple(reterms)
        merged = amalgamate(reterms)[0]
        cp = cross_products(np.asarray(X, float), np.asarray(y, float), merged)
        self._cross_products(cp, reterms, reml, theta_scale(reterms))

    @classmethod
    def from_cross_products(
        cls,
        cp: CrossProducts,
        reterms: tuple[ReTerm, ...],
        reml: bool,
        scale: np.ndarray | None = None,
    ) -> ProfiledDeviance:
        """The criterion from cross-products already formed (e.g. summed over row batches).

        Parameters
        ----------
        cp
            Cross-products of ``[Z X y]`` for the merged terms of ``reterms``
            (:func:`lmm_core.model.cross_products.cross_products`).
        reterms
            The random-effects terms, serving only as templates (levels, columns,
            covariance structures): their ``codes`` and ``z`` may have no rows.
        reml
            REML criterion if true, ML deviance otherwise.
        scale
            Units of ``theta`` (:func:`lmm_core.design.reterms.theta_scale`); read from the
            blocks' diagonals when not given.
        """
        if not reterms:
            raise ValueError("a mixed model needs at least one random-effects term")
        reterms = tuple(reterms)
        if scale is None:
            scale = theta_scale_from_blocks(cp, reterms)
        self = cls.__new__(cls)
        self._cross_products(cp, reterms, reml, scale)
        return self

    def with_fixed_coefficient(self, j: int, value: float) -> ProfiledDeviance:
        """The criterion of the model with ``beta_j`` held at ``value``, from these blocks.

        That model has ``X`` without column ``j`` and the response ``y - value x_j``:
        ``[X' y'] = [X y] T`` with ``T`` dropping column ``j`` and subtracting ``value`` times
        it from ``y``, so its cross-products are ``A1xy T``, ``A2xy T`` and ``T' Axy T`` (no
        pass over the rows; a profile of ``beta_j`` evaluates many such models).
        """
        k = self.p + 1
        keep = np.arange(self.p) != j
        t = np.zeros((k, self.p))
        t[np.flatnonzero(keep), np.arange(self.p - 1)] = 1.0
        t[-1, -1] = 1.0
        t[j, -1] = -value
        cp = CrossProducts(
            n=self.n,
            p=self.p - 1,
            a11_flat=self.a11_flat,
            a1xy=self.a1xy @ t,
            axy=t.T @ self.axy @ t,
            a21=None if self.a21 is None else self.a21.tocsr(),
            a22=self.a22,
            a2xy=None if self.a2xy is None else self.a2xy @ t,
        )
        return ProfiledDeviance.from_cross_products(cp, self.reterms, self.reml, self.theta_scale)

    # ------------------------------------------------------------------ set-up (once)
    def _cross_products(
        self, cp: CrossProducts, reterms: tuple[ReTerm, ...], reml: bool, scale: np.ndarray
    ) -> None:
        self.reterms = reterms
        self.reml = bool(reml)
        self.n, self.p = int(cp.n), int(cp.p)
        self.lower = np.concatenate([t.structure.lower for t in self.reterms])
        self.theta0 = np.concatenate([t.structure.start for t in self.reterms])
        self.theta_scale = np.asarray(scale, float)  # units of theta (reterms.theta_scale)
        # The blocks actually factored: terms merged by grouping factor (module docstring).
        self._terms, perm, self._parts = amalgamate(self.reterms)
        self._perm = None if np.array_equal(perm, np.arange(perm.size)) else perm
        offsets = np.cumsum([0] + [t.n_theta for t in self._terms])
        # (structure, its slice of theta) per merged term: what lambdas() evaluates
        self._slices = [
            (t.structure.factor, slice(int(a), int(b)))
            for t, a, b in zip(self._terms, offsets[:-1], offsets[1:], strict=True)
        ]
        first = self._terms[0]
        m1, s1 = first.n_levels, first.n_columns
        self.m1, self.s1, self.q1 = m1, s1, m1 * s1
        if cp.a11_flat.shape != (m1, s1 * s1) or cp.axy.shape != (self.p + 1, self.p + 1):
            raise ValueError("the cross-products do not match the random-effects terms")
        # Z1'Z1 as (m1, S*S) and Z1'[X y] as (S, m1, p+1): the layouts one BLAS call uses.
        self.a11_flat = np.ascontiguousarray(cp.a11_flat, dtype=float)
        self.a1xy = np.ascontiguousarray(cp.a1xy, dtype=float)
        self._dof = float(self.n - self.p if reml else self.n)
        self.axy = cp.axy
        rest = self._terms[1:]
        self.q2 = sum(t.n_levels * t.n_columns for t in rest)
        self.a21 = self.a22 = self.a2xy = None
        self._dense = None  # SmallModelSystem of a small model with several terms
        self._scalar_rest = False  # whether _scalar_rest_schur applies
        if rest:
            self._rest_cross_products(cp, rest)

    def _rest_cross_products(self, cp: CrossProducts, rest: tuple[ReTerm, ...]) -> None:
        if cp.a21 is None or cp.a21.shape != (self.q2, self.q1):
            raise ValueError("the cross-products do not match the random-effects terms")
        self.a21 = cp.a21.tocoo()
        self.a22 = cp.a22
        self.a2xy = cp.a2xy
        # Z2'Z1 by (level of term 1, row of block 2) pairs: L21 keeps this block pattern.
        # Pairs are ordered by level, so that a nested design (one pair per level and term)
        # reads the first term's arrays without gathering.
        m1, s1, q2 = self.m1, self.s1, self.q2
        level = self.a21.col // s1
        key = level.astype(np.int64) * q2 + self.a21.row
        pairs, pair_of = np.unique(key, return_inverse=True)
        self._pair_level = (pairs // q2).astype(np.int64)
        self._pair_row = (pairs % q2).astype(np.int64)
        self._level_identity = pairs.size == m1 and bool(
            np.array_equal(self._pair_level, np.arange(m1))
        )
        self._a21_blocks = np.zeros((pairs.size, s1))
        self._a21_blocks[pair_of, self.a21.col % s1] = self.a21.data
        # Sum over the pairs of each row of block 2, as one sparse product.
        npairs = pairs.size
        self._row_sum = sp.csr_matrix(
            (np.ones(npairs), (self._pair_row, np.arange(npairs))), shape=(q2, npairs)
        )
        # CSR layout of L21 (rows of block 2), built only when L21 itself is needed.
        self._csr_perm = np.argsort(self._pair_row, kind="stable")
        self._l21_indices = (self._pair_level[self._csr_perm, None] * s1 + np.arange(s1)).ravel()
        counts = np.bincount(self._pair_row, minlength=q2) * s1
        self._l21_indptr = np.concatenate([[0], np.cumsum(counts)])
        # Lambda_2 = diag(I_{m_k} (x) lambda_k), k >= 2: diagonal when every such term is scalar.
        self._rest_scalar = all(t.n_columns == 1 for t in rest)
        self._pair_layout()
        # Lambda_2's entries: the pattern of each term's lambda, once per level; the values
        # are gathered from the terms' factors raveled one after the other.
        rows, cols, which = [], [], []
        offset = entry = 0
        for t in rest:
            r, c = t.structure.pattern
            base = offset + t.n_columns * np.arange(t.n_levels)[:, None]
            rows.append((base + r).ravel())
            cols.append((base + c).ravel())
            which.append(np.tile(entry + r * t.n_columns + c, t.n_levels))
            offset += t.n_levels * t.n_columns
            entry += t.n_columns * t.n_columns
        self._lam2_rows = np.concatenate(rows)
        self._lam2_cols = np.concatenate(cols)
        self._lam2_entry = np.concatenate(which)
        small = self.q1 + self.q2 + self.p < 128
        self._dense = SmallModelSystem.from_deviance(self) if small else None
        # Scalar terms above a first term of one or two columns: _scalar_rest_schur.
        self._scalar_rest = self._dense is None and self.s1 <= 2 and self._rest_scalar
        if self._nested:  # every row of block 2 meets only its own levels: Z2'Z2 is diagonal
            self._a22_diagonal = np.diag(self.a22).copy()
            if np.count_nonzero(self.a22) > np.count_nonzero(self._a22_diagonal):
                self._scalar_rest = False

    def _pair_layout(self) -> None:
        """Where each level's pairs start and whether the terms above nest in the first.

        Pairs ``(level i, row r)`` are ordered by level, then row, so that
        ``_level_ptr[i]:_level_ptr[i + 1]`` are level ``i``'s. The terms above the first are
        nested in it (patients within hospitals) when no level meets two rows of block 2:
        then ``L21 L21'`` and ``Z2'Z2`` are diagonal.
        """
        counts = np.bincount(self._pair_level, minlength=self.m1)
        self._level_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._nested = bool(counts.max(initial=0) <= 1)
        if self._rest_scalar and not self._nested:
            r, c = np.nonzero(np.triu(self.a22))  # Z2'Z2's upper nonzeros
            self._a22_upper = (r * self.q2 + c, r, c, self.a22[r, c])

    # ------------------------------------------------------------------ per evaluation
    def _internal(self, theta: np.ndarray) -> np.ndarray:
        """``theta`` (order of the terms given) in the order of the merged terms."""
        theta = np.asarray(theta, float)
        return theta if self._perm is None else theta[self._perm]

    def lambdas(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """One lower-triangular relative covariance factor per merged term (its structure's
        :meth:`~lmm_core.design.covariance.CovarianceStructure.factor`)."""
        theta = self._internal(theta)
        return tuple(factor(theta[part]) for factor, part in self._slices)

    def factor(self, theta: np.ndarray) -> BlockedFactor:
        """Blocked Cholesky factor of the augmented cross-product matrix at ``theta``."""
        lams = self.lambdas(theta)
        ldl2_1, r1, l11, w11 = self._first_block(lams[0], full=True)
        s1 = self.s1
        m33 = self.axy - r1[0].T @ r1[0]
        for i in range(1, s1):
            m33 -= r1[i].T @ r1[i]
        l21 = l22 = r2 = None
        if self.a21 is not None:
            l21, l22, r2 = self._factor_rest(lams, w11, r1)  # l21: its sparse parts
            m33 -= r2.T @ r2
        l33 = cholesky(m33)
        ldl2 = ldl2_1 + (logdet_tril(l22) if l22 is not None else 0.0)
        ldrx2 = logdet_tril(l33[:-1, :-1]) if self.p else 0.0
        return BlockedFactor(lams, l11, w11, r1, l21, l22, r2, l33, ldl2, ldrx2)

    def _factor_rest(self, lams, w11, r1):
        """``L21 = Lambda2' Z2'Z1 Lambda1 L11^{-T}``, ``L22`` and ``L32'`` (module docstring)."""
        s1, lam1 = self.s1, lams[0]
        lam2_values = np.concatenate([lam.ravel() for lam in lams[1:]])[self._lam2_entry]
        # Block (r, i) of A21 Lambda1 L11^{-T} is v' lambda1 W_i' with v the A21 block:
        # u = v' lambda1 for all pairs in one product, then the lower-triangular W_i.
        u = self._a21_blocks @ lam1
        w = w11 if self._level_identity else w11[self._pair_level]
        blocks = np.empty_like(u)
        for b in range(s1):
            blocks[:, b] = u[:, 0] * w[:, b, 0]
            for c in range(1, b + 1):
                blocks[:, b] += u[:, c] * w[:, b, c]
        shape = (self.q2, self.q1)
        if self._rest_scalar:
            d2 = np.zeros(self.q2)
            d2[self._lam2_rows] = lam2_values
            blocks *= d2[self._pair_row, None]
            # L21 [L31' rows]: each block meets the rows of its own level of term 1.
            r1_at = r1 if self._level_identity else r1[:, self._pair_level]
            contrib = blocks[:, 0, None] * r1_at[0]
            for b in range(1, s1):
                contrib += blocks[:, b, None] * r1_at[b]
            t2 = d2[:, None] * self.a2xy - self._row_sum @ contrib
            diag = np.arange(self.q2) * (self.q2 + 1)
            if self._nested:  # only diagonal products
                m22 = d2[:, None] * self.a22 * d2[None, :]
                vals = np.einsum("ij,ij->i", blocks, blocks)
                m22.flat[diag] -= np.bincount(self._pair_row, vals, minlength=self.q2)
                m22.flat[diag] += 1.0
                l22 = cholesky(m22)
            elif s1 <= 2:
                # Crossed: (L21 L21')[r, r'] = d2_r d2_r' sum_i v_ri' K_i v_r'i with
                # K_i = lambda1 W_i'W_i lambda1', the upper triangle only (the upper
                # Cholesky reads nothing else).
                k_lev = (lam1 @ (np.swapaxes(w11, 1, 2) @ w11) @ lam1.T).reshape(self.m1, -1)
                weights = k_lev[:, [0, 1, 3]] if s1 == 2 else np.pad(k_lev, ((0, 0), (0, 2)))
                u22 = cholesky(self._crossed_m22(weights, d2), lower=False)
                return self._l21_parts(blocks), u22.T, tri_solve(u22, t2, trans=True, upper=True)
            else:
                m22 = d2[:, None] * self.a22 * d2[None, :]
                l21 = _csr(self._l21_parts(blocks))
                m22 -= (l21 @ l21.T).toarray()
                m22.flat[diag] += 1.0
                l22 = cholesky(m22)
            return self._l21_parts(blocks), l22, tri_solve(l22, t2)
        # Random slopes above the first term: Lambda2 mixes the rows of a level's block.
        r1_rows = r1.transpose(1, 0, 2).reshape(self.q1, -1)
        lam2 = sp.csr_matrix(
            (lam2_values, (self._lam2_rows, self._lam2_cols)),
            shape=(self.q2, self.q2),
        )
        l21 = (lam2.T @ _csr(self._l21_parts(blocks))).tocsr()
        m22 = np.asarray(lam2.T @ np.asarray(lam2.T @ self.a22).T)
        t2 = np.asarray(lam2.T @ self.a2xy)
        m22 -= (l21 @ l21.T).toarray()
        m22[np.diag_indices_from(m22)] += 1.0
        l22 = cholesky(m22)
        t2 = t2 - l21 @ r1_rows
        r2 = tri_solve(l22, t2)
        order = np.arange(l21.nnz)
        return (l21.data, order, l21.indices, l21.indptr, shape), l22, r2

    def _scalar_rest_schur(self, lams: tuple[np.ndarray, ...]) -> tuple[float, np.ndarray]:
        """``log|L_Z|^2`` and the Schur complement of ``[X y]`` when the terms above the first
        are scalar (nested in it or crossed with it), through
        ``K_i = lambda1 M_i^{-1} lambda1'`` (:mod:`lmm_core.model.kernels`) without forming
        ``L21``.

        With ``Y_a`` the rows ``a`` of ``Z1'[X y]`` (``(m1, p + 1)`` each), ``d`` the
        diagonal of ``Lambda2`` and, for a pair ``n`` (row ``r`` of block 2, level ``i`` of
        term 1) with ``Z2'Z1`` block ``v_n``, ``u_n = K_i v_n``::

            L3Z1 L3Z1' = sum_i sum_ab K_iab Y_ia' Y_ib
            (L21 L21')[r, r'] = d_r d_r' sum_i v_ri' K_i v_r'i      (nested: only r = r')
            L32' (before L22^{-1}) = d_r (Z2'[X y]_r - sum_{n in r} sum_a u_na Y_a[i_n])

        (``L21 L31' = d_r sum_n v_n' lambda1 W_i' W_i lambda1' Z_i'[X y]``), then ``L22``
        (diagonal for nested terms: ``Z2'Z2`` is), ``L32'`` and the Schur complement as in
        :meth:`factor`. Equal to the blocked factor's criterion to rounding, in a few
        passes over the levels and pairs.
        """
        ldl2, m33, weights = level_schur(lams[0], self.a11_flat, self.a1xy, self.axy)
        if math.isnan(ldl2):
            raise np.linalg.LinAlgError("block not positive definite")
        diag_sum, met = nested_pairs(
            weights, self.a1xy, self._pair_level, self._pair_row, self._a21_blocks, self.q2
        )
        lam2_values = np.concatenate([lam.ravel() for lam in lams[1:]])[self._lam2_entry]
        d2 = np.zeros(self.q2)
        d2[self._lam2_rows] = lam2_values
        rhs = d2[:, None] * (self.a2xy - met)
        if self._nested:  # Z2'Z2, hence L22, is diagonal
            m22 = d2 * d2 * (self._a22_diagonal - diag_sum) + 1.0
            if not m22.min() > 0.0:  # also catches NaN
                raise np.linalg.LinAlgError("block not positive definite")
            r2 = rhs / np.sqrt(m22)[:, None]
            ldl2 += float(np.log(m22).sum())
        else:
            u22 = cholesky(self._crossed_m22(weights, d2), lower=False)
            r2 = tri_solve(u22, rhs, trans=True, upper=True)
            ldl2 += logdet_tril(u22)
        m33 -= r2.T @ r2
        return ldl2, m33

    def _crossed_m22(self, weights: np.ndarray, d2: np.ndarray) -> np.ndarray:
        """Upper triangle of ``M22 = Lambda2' Z2'Z2 Lambda2 + I - L21 L21'`` for scalar terms
        crossed with the first (:func:`lmm_core.model.kernels.crossed_gram`): only the
        nonzeros of ``Z2'Z2`` and of the pattern are written into zeros."""
        m22 = np.zeros((self.q2, self.q2))
        crossed_gram(weights, self._level_ptr, self._pair_row, self._a21_blocks, d2, m22)
        a_flat, a_rows, a_cols, a_vals = self._a22_upper
        m22.flat[a_flat] += d2[a_rows] * a_vals * d2[a_cols]
        m22.flat[:: self.q2 + 1] += 1.0
        return m22

    def _l21_parts(self, blocks: np.ndarray) -> tuple:
        """``(blocks, order, indices, indptr, shape)``: L21 in CSR form once the blocks are
        put in ``order`` (by rows of block 2), which :attr:`BlockedFactor.l21` does."""
        return blocks, self._csr_perm, self._l21_indices, self._l21_indptr, (self.q2, self.q1)

    def _from_m33(self, m33: np.ndarray, ldl2: float) -> float:
        """The criterion from ``ldL2`` and the Schur complement ``[X y]'[X y] - L3Z L3Z'``."""
        l33 = cholesky(m33)
        d = l33.diagonal()
        pwrss = float(d[-1] * d[-1])
        dof = self.n - self.p if self.reml else self.n
        out = ldl2 + dof * (1.0 + LOG_2PI + np.log(pwrss / dof))
        if self.reml and self.p:
            out += 2.0 * float(np.log(d[:-1]).sum())
        return float(out)

    def criterion(self, factor: BlockedFactor) -> float:
        """REML criterion or ML deviance from a factor (module docstring)."""
        dof = self.n - self.p if self.reml else self.n
        out = factor.ldl2 + dof * (1.0 + LOG_2PI + np.log(factor.pwrss / dof))
        if self.reml:
            out += factor.ldrx2
        return float(out)

    def __call__(self, theta: np.ndarray) -> float:
        if self.a21 is None and self.s1 <= 2:  # the commonest case, in one compiled call
            lam1 = self._slices[0][0](self._internal(theta))
            out = one_term_criterion(lam1, self.a11_flat, self.a1xy, self.axy, self._dof, self.reml)
            if math.isnan(out):
                raise np.linalg.LinAlgError("block not positive definite")
            return out
        if self._dense is not None:
            return self._dense.criterion_at(self, theta)
        schur = self._schur(theta)
        if schur is None:
            return self.criterion(self.factor(theta))
        return self._from_m33(schur[1], schur[0])

    def _schur(self, theta: np.ndarray) -> tuple[float, np.ndarray] | None:
        """``(log|L_Z|^2, [X y]'[X y] - L3Z L3Z')`` without a :class:`BlockedFactor`, for one
        term or scalar terms above the first (``None`` otherwise)."""
        if self.a21 is None:
            lam1 = self._slices[0][0](self._internal(theta))
            if self.s1 <= 2:
                ldl2, m33, _ = level_schur(lam1, self.a11_flat, self.a1xy, self.axy)
                if math.isnan(ldl2):
                    raise np.linalg.LinAlgError("block not positive definite")
                return ldl2, m33
            ldl2, r1, _, _ = self._first_block(lam1, full=False)
            m33 = self.axy - r1[0].T @ r1[0]
            for i in range(1, self.s1):
                m33 -= r1[i].T @ r1[i]
            return ldl2, m33
        if self._scalar_rest:
            return self._scalar_rest_schur(self.lambdas(theta))
        return None

    def ldl2_pwrss(self, theta: np.ndarray) -> tuple[float, float]:
        """``log|L_Z|^2`` and the penalized residual sum of squares ``r^2`` at ``theta``.

        What the ML deviance at a given ``sigma``, ``ldL2 + r^2 / sigma^2 + n log(2 pi
        sigma^2)``, needs (lme4's ``devfun2`` in profiles), by the fastest path: ``r^2`` is
        the last pivot squared of the Cholesky factor of the Schur complement of ``[X y]``.
        """
        schur = self._schur(theta)
        if schur is None:
            f = self.factor(theta)
            return f.ldl2, f.pwrss
        d = cholesky(schur[1]).diagonal()
        return schur[0], float(d[-1] * d[-1])

    def _first_block(self, lam1: np.ndarray, full: bool) -> tuple:
        """``log|L11|^2``, ``L31'`` as ``(S, m1, p + 1)`` and, with ``full``, the blocks of
        ``L11`` and their inverses ``W = L11^{-1}`` (``(m1, S, S)``; else ``None``).

        Per level ``i``, ``M_i = lambda' A_i lambda + I = L_i L_i'`` and
        ``L31'_i = L_i^{-1} lambda' Z_i'[X y]``. For ``S <= 2`` in closed form, with as few
        array operations as the math allows (this runs once per optimizer evaluation):
        ``S = 1``: ``L_i = sqrt(M_i)``; ``S = 2``: ``L00 = sqrt(M00)``, ``L10 = M10 / L00``,
        ``L11 = sqrt(M11 - L10^2)``, with ``M00 = l0^2 a00 + 2 l0 l1 a01 + l1^2 a11 + 1``,
        ``M10 = l2 (l0 a01 + l1 a11)``, ``M11 = l2^2 a11 + 1`` for ``lambda = [[l0, 0],
        [l1, l2]]``. Larger blocks: one product with ``lambda (x) lambda`` and numpy's batched
        Cholesky.
        """
        a, xy, s1 = self.a11_flat, self.a1xy, self.s1
        if s1 == 1:
            lam = lam1[0, 0]
            m00 = (lam * lam) * a[:, 0] + 1.0
            if not m00.min() > 0.0:  # also catches NaN
                raise np.linalg.LinAlgError("block not positive definite")
            c00 = np.sqrt(m00)
            r1 = (xy[0] * (lam / c00)[:, None])[None]
            if not full:
                return float(np.log(m00).sum()), r1, None, None
            l11 = c00.reshape(-1, 1, 1)
            return float(np.log(m00).sum()), r1, l11, 1.0 / l11
        if s1 == 2:
            l0, l1, l2 = lam1[0, 0], lam1[1, 0], lam1[1, 1]
            rows = self.__dict__.get("_a11_rows")
            if rows is None:  # (a00, a01, a11) as contiguous rows, kept for later calls
                rows = self._a11_rows = np.ascontiguousarray(a[:, [0, 1, 3]].T)
            coef = np.array(
                [[l0 * l0, 2.0 * l0 * l1, l1 * l1], [0.0, l2 * l0, l2 * l1], [0.0, 0.0, l2 * l2]]
            )
            m = coef @ rows
            m[0] += 1.0
            m[2] += 1.0
            c00 = np.sqrt(m[0])
            c10 = m[1] / c00
            d = m[2] - c10 * c10
            if not (m[0].min() > 0.0 and d.min() > 0.0):  # also catches NaN
                raise np.linalg.LinAlgError("block not positive definite")
            c11 = np.sqrt(d)
            ldl2 = float(np.log(m[0] * d).sum())
            r1 = np.empty_like(xy)
            np.divide(l0 * xy[0] + l1 * xy[1], c00[:, None], out=r1[0])
            np.divide(l2 * xy[1] - c10[:, None] * r1[0], c11[:, None], out=r1[1])
            if not full:
                return ldl2, r1, None, None
            l11 = np.zeros((self.m1, 2, 2))
            l11[:, 0, 0], l11[:, 1, 0], l11[:, 1, 1] = c00, c10, c11
            w11 = np.zeros((self.m1, 2, 2))
            w11[:, 0, 0], w11[:, 1, 1] = 1.0 / c00, 1.0 / c11
            w11[:, 1, 0] = -c10 * w11[:, 0, 0] * w11[:, 1, 1]
            return ldl2, r1, l11, w11
        m1 = self.m1
        # vec(lambda' A_i lambda) = (lambda (x) lambda)' vec(A_i), all levels in one product.
        kron = (lam1[:, None, :, None] * lam1[None, :, None, :]).reshape(s1 * s1, s1 * s1)
        m11 = (a @ kron).reshape(m1, s1, s1)
        m11[:, np.arange(s1), np.arange(s1)] += 1.0
        l11 = batched_cholesky(m11)
        w11 = batched_tril_inverse(l11)
        # lambda' Z1'[X y] as (S, m1, p + 1)
        c1 = (lam1.T @ xy.reshape(s1, -1)).reshape(xy.shape)
        r1 = np.empty_like(c1)  # L11^{-1} c1 = L31' by columns of the blocks
        for i in range(s1):
            acc = w11[:, i, 0, None] * c1[0]
            for k in range(1, i + 1):
                acc += w11[:, i, k, None] * c1[k]
            r1[i] = acc
        return batched_logdet_tril(l11), r1, l11, w11

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """Fixed effects, spherical and actual random effects, sigma and cov(beta) at theta."""
        theta = np.asarray(theta, float)
        f = self.factor(theta)
        p = self.p
        lxx, lyx = f.l33[:p, :p], f.l33[p, :p]
        beta = tri_solve(lxx, lyx, trans=True) if p else np.zeros(0)
        us = []
        r1 = f.r1
        rhs1 = r1[:, p] - r1[:, :p] @ beta
        if f.l22 is not None:
            u2 = tri_solve(f.l22, f.r2[:, p] - f.r2[:, :p] @ beta, trans=True)
            rhs1 = rhs1 - f.l21.T @ u2
        m1, s1 = f.l11.shape[0], f.l11.shape[1]
        u1 = np.einsum("mji,mj->mi", f.w11, rhs1.reshape(m1, s1))
        us.append(u1)
        if f.l22 is not None:
            offset = 0
            for t in self._terms[1:]:
                size = t.n_levels * t.n_columns
                us.append(u2[offset : offset + size].reshape(t.n_levels, t.n_columns))
                offset += size
        bs = [u @ lam.T for u, lam in zip(us, f.lambdas, strict=True)]
        dof = self.n - p if self.reml else self.n
        sigma2 = f.pwrss / dof
        if p:
            lxx_inv = tri_solve(lxx, np.eye(p))
            vcov = sigma2 * (lxx_inv.T @ lxx_inv)
        else:
            vcov = np.zeros((0, 0))
        return PLSSolution(
            theta=theta.copy(),
            beta=beta,
            u=self._split(us),
            b=self._split(bs),
            ldl2=f.ldl2,
            ldrx2=f.ldrx2,
            pwrss=f.pwrss,
            sigma=float(np.sqrt(sigma2)),
            objective=self.criterion(f),
            vcov_beta=vcov,
            factor=f,
        )

    def conditional_covariances(
        self, factor: BlockedFactor, sigma: float, chunk: int = 4_000_000
    ) -> tuple[np.ndarray, ...]:
        """Conditional covariance blocks of ``b`` given ``y``, one ``(levels, S, S)`` per term
        (:func:`lmm_core.model.conditional_variance.conditional_covariances`)."""
        return self._split(conditional_covariances(self, factor, sigma, chunk), covariance=True)

    def _split(self, arrays: list[np.ndarray], covariance: bool = False) -> tuple[np.ndarray, ...]:
        """Per-merged-term ``(levels, S)`` arrays (or ``(levels, S, S)`` covariances) back to
        one per term given, in their order."""
        out: list[np.ndarray | None] = [None] * len(self.reterms)
        for arr, pieces in zip(arrays, self._parts, strict=True):
            for k, cols in pieces:
                out[k] = arr[:, cols, cols] if covariance else arr[:, cols]
        return tuple(out)


def _csr(parts: tuple) -> sp.csr_matrix:
    """CSR matrix from ``(values, order, indices, indptr, shape)``."""
    values, order, indices, indptr, shape = parts
    return sp.csr_matrix((values[order].ravel(), indices, indptr), shape=shape)
