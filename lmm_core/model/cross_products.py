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
from dataclasses import dataclass, replace

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
        Every block by ``bincount`` over level codes: ``Z1'Z1`` and ``Z1'[X y]`` over the
        codes of term 1, ``Z2'[X y]`` and the diagonal blocks of ``Z2'Z2`` over each other
        term's codes, and ``Z2'Z1`` (and ``Z2'Z2``'s blocks between two other terms) over the
        codes of the (level, level) pairs that occur (:func:`pair_codes`), ``[X y]'[X y]`` by
        one matrix product. Each entry is the sum over rows, in row order, of the products
        ``z_r[a] w_r[b]``: the same numbers as the sparse products ``Z2'Z1`` and ``Z2'Z2``
        (which sum the same products in the same order), without building ``Z``. ``Z2'Z1``
        keeps only its nonzero sums (as a sparse product does), in canonical CSR form.
    """
    first = merged_terms[0]
    return _cross_products(X, y, first.codes, first.n_levels, first.z, merged_terms[1:])


def local_cross_products(
    X: np.ndarray, y: np.ndarray, merged_terms: tuple[ReTerm, ...]
) -> tuple[CrossProducts, np.ndarray]:
    """:func:`cross_products` of a batch of rows over the levels of term 1 it has.

    Returns
    -------
    cp, seen
        ``seen`` the levels of the first merged term present in the rows (increasing);
        ``cp`` its blocks at those levels only: ``a11_flat[k]``, ``a1xy[:, k]`` and the
        columns ``k * S1 + a`` of ``a21`` belong to level ``seen[k]``. Every other level's
        blocks are zero, so adding ``cp`` at ``seen`` into the blocks of other rows gives the
        same numbers as adding the whole table's layout (:class:`BlockTotal`), at a cost that
        follows the batch, not the number of levels.
    """
    first = merged_terms[0]
    present = np.bincount(first.codes, minlength=first.n_levels) > 0
    seen = np.flatnonzero(present)
    local = (np.cumsum(present) - 1)[first.codes]
    cp = _cross_products(X, y, local, seen.size, first.z, merged_terms[1:])
    return cp, seen


def _cross_products(
    X: np.ndarray,
    y: np.ndarray,
    codes1: np.ndarray,
    m1: int,
    z1: np.ndarray,
    rest: tuple[ReTerm, ...],
) -> CrossProducts:
    X = np.asarray(X, float)
    xy = np.column_stack([X, np.asarray(y, float)])
    a11_flat, a1xy = _level_blocks(codes1, z1, xy, m1)
    a11_flat = a11_flat.reshape(m1, -1)
    axy = xy.T @ xy
    blocks = {}
    if rest:
        blocks = _rest_blocks(codes1, m1, z1, rest, xy)
    return CrossProducts(
        n=int(xy.shape[0]), p=int(X.shape[1]), a11_flat=a11_flat, a1xy=a1xy, axy=axy, **blocks
    )


def _level_blocks(
    codes: np.ndarray, z: np.ndarray, xy: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per level ``i`` of one term: ``sum_r z_r z_r'`` as ``(m, S, S)`` and ``sum_r z_r
    [x_r y_r]`` as ``(S, m, p + 1)`` (rows ``r`` of level ``i``, in row order)."""
    s = z.shape[1]
    zz = np.empty((m, s, s))
    for a in range(s):
        for b in range(a + 1):
            col = np.bincount(codes, weights=z[:, a] * z[:, b], minlength=m)
            zz[:, a, b] = col
            zz[:, b, a] = col
    zxy = np.empty((s, m, xy.shape[1]))
    for a in range(s):
        for j in range(xy.shape[1]):
            zxy[a, :, j] = np.bincount(codes, weights=z[:, a] * xy[:, j], minlength=m)
    return zz, zxy


def pair_codes(
    codes_a: np.ndarray, m_a: int, codes_b: np.ndarray, m_b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (level of ``a``, level of ``b``) pairs that occur, and each row's pair.

    Returns
    -------
    pair, level_a, level_b
        ``pair[r]`` indexes the pairs (in no particular order); pair ``k`` is
        ``(level_a[k], level_b[k])``. When one factor is nested in the other (each of its
        levels occurs with one level of the other), a row's pair is read from its level of
        the nested factor (one pass, no sort); otherwise from the key
        ``level_a * m_b + level_b`` (a ``bincount`` over the keys when there are few, else a
        sort).
    """
    for inner, m_in, outer, swap in ((codes_a, m_a, codes_b, False), (codes_b, m_b, codes_a, True)):
        owner = np.full(m_in, -1, dtype=np.int64)
        owner[inner] = outer
        if np.array_equal(owner[inner], outer):  # nested: a level of inner has one of outer
            seen = np.flatnonzero(owner >= 0)
            if seen.size == m_in:
                pair, lin, lout = inner, seen, owner
            else:
                index = np.full(m_in, -1, dtype=np.int64)
                index[seen] = np.arange(seen.size)
                pair, lin, lout = index[inner], seen, owner[seen]
            return (pair, lout, lin) if swap else (pair, lin, lout)
    key = codes_a.astype(np.int64) * m_b + codes_b
    if m_a * m_b <= 4 * key.size + 1_000_000:
        present = np.bincount(key, minlength=m_a * m_b) > 0
        keys = np.flatnonzero(present)
        index = np.cumsum(present) - 1
        pair = index[key]
    else:
        keys, pair = np.unique(key, return_inverse=True)
    return pair.reshape(-1), keys // m_b, keys % m_b


def _pair_sums(pair: np.ndarray, n_pairs: int, za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """``(n_pairs, Sa, Sb)``: per pair of levels, ``sum_r za_r zb_r'`` over its rows."""
    sa, sb = za.shape[1], zb.shape[1]
    out = np.empty((n_pairs, sa, sb))
    for a in range(sa):
        for b in range(sb):
            out[:, a, b] = np.bincount(pair, weights=za[:, a] * zb[:, b], minlength=n_pairs)
    return out


def _rest_blocks(
    codes1: np.ndarray, m1: int, z1: np.ndarray, rest: tuple[ReTerm, ...], xy: np.ndarray
) -> dict:
    """``a21`` (canonical CSR, nonzero sums only), ``a22`` and ``a2xy`` of the other terms."""
    s1 = z1.shape[1]
    sizes = [t.n_levels * t.n_columns for t in rest]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    q2 = int(offsets[-1])
    a22 = np.zeros((q2, q2))
    a2xy = np.empty((q2, xy.shape[1]))
    rows, cols, vals = [], [], []
    for k, t in enumerate(rest):
        m, s, o = t.n_levels, t.n_columns, int(offsets[k])
        zz, zxy = _level_blocks(t.codes, t.z, xy, m)
        a2xy[o : o + m * s] = zxy.transpose(1, 0, 2).reshape(m * s, -1)
        idx = o + np.arange(m * s).reshape(m, s)
        a22[idx[:, :, None], idx[:, None, :]] = zz
        # Z_t'Z1: pairs (level of t, level of term 1)
        pair, lt, l1 = pair_codes(t.codes, m, codes1, m1)
        sums = _pair_sums(pair, lt.size, t.z, z1)
        rows.append(
            np.broadcast_to(
                (o + lt * s)[:, None, None] + np.arange(s)[None, :, None], sums.shape
            ).ravel()
        )
        cols.append(
            np.broadcast_to(
                (l1 * s1)[:, None, None] + np.arange(s1)[None, None, :], sums.shape
            ).ravel()
        )
        vals.append(sums.ravel())
        for u in range(k + 1, len(rest)):  # Z_u'Z_t, and its transpose
            other = rest[u]
            mu, su, ou = other.n_levels, other.n_columns, int(offsets[u])
            pair, lu, lt2 = pair_codes(other.codes, mu, t.codes, m)
            sums = _pair_sums(pair, lu.size, other.z, t.z)
            r = (ou + lu * su)[:, None, None] + np.arange(su)[None, :, None]
            c = (o + lt2 * s)[:, None, None] + np.arange(s)[None, None, :]
            a22[r, c] = sums
            a22[c, r] = sums
    data = np.concatenate(vals)
    nz = data != 0
    a21 = sp.csr_matrix(
        (data[nz], (np.concatenate(rows)[nz], np.concatenate(cols)[nz])), shape=(q2, m1 * s1)
    )
    a21.sum_duplicates()
    return {"a21": a21, "a22": a22, "a2xy": a2xy}


class BlockTotal:
    """Running sum of row batches' cross-products, each added at the levels it saw.

    A batch's :func:`local_cross_products` are added into whole-table arrays by index:
    ``a11_flat[seen] += ...`` and ``a1xy[:, seen] += ...`` (the other levels gain zero),
    ``axy``, ``a22`` and ``a2xy`` whole (small). ``Z2'Z1``'s nonzeros are kept as
    (key, value) pairs, ``key = row * q1 + column``, and summed per key in the order of the
    batches (:func:`_ordered_sums`), compacted as they grow. Every entry is therefore
    ``((b_1 + b_2) + b_3) + ...`` over the batches that have it, the same floating-point sums
    as adding whole :class:`CrossProducts` one batch after the other, without touching
    every level per batch.
    """

    def __init__(self) -> None:
        self._cp: CrossProducts | None = None
        self._n = 0
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._pending = 0
        self._compacted = 0

    def add(self, cp: CrossProducts, seen: np.ndarray, m1: int) -> None:
        """Add a batch's blocks at the levels ``seen`` of term 1 (of ``m1`` in the table)."""
        s1 = cp.a1xy.shape[0]
        if self._cp is None:
            self._cp = CrossProducts(
                n=0,
                p=cp.p,
                a11_flat=np.zeros((m1, s1 * s1)),
                a1xy=np.zeros((s1, m1, cp.p + 1)),
                axy=np.zeros_like(cp.axy),
                a22=None if cp.a22 is None else np.zeros_like(cp.a22),
                a2xy=None if cp.a2xy is None else np.zeros_like(cp.a2xy),
            )
            self._q1 = m1 * s1
        total = self._cp
        if cp.p != total.p or (cp.a22 is None) != (total.a22 is None):
            raise ValueError("cross-products of different models cannot be added")
        total.a11_flat[seen] += cp.a11_flat
        total.a1xy[:, seen, :] += cp.a1xy
        total.axy[...] += cp.axy
        self._n += cp.n
        if cp.a21 is None:
            return
        total.a22[...] += cp.a22
        total.a2xy[...] += cp.a2xy
        a21 = cp.a21.tocoo()
        cols = seen[a21.col // s1] * s1 + a21.col % s1
        self._keys.append(a21.row.astype(np.int64) * self._q1 + cols)
        self._values.append(a21.data)
        self._pending += a21.nnz
        if self._pending > max(2 * self._compacted, 1_000_000):
            self._compact()

    def _compact(self) -> None:
        keys, values = _ordered_sums(np.concatenate(self._keys), np.concatenate(self._values))
        self._keys, self._values = [keys], [values]
        self._pending = self._compacted = keys.size

    def total(self) -> CrossProducts:
        """The summed blocks (``a21`` in canonical CSR, its nonzero sums only)."""
        if self._cp is None:
            raise ValueError("no batch of rows to accumulate")
        total = replace(self._cp, n=self._n)
        if total.a22 is None:
            return total
        self._compact()
        keys, values = self._keys[0], self._values[0]
        nz = values != 0
        keys, values = keys[nz], values[nz]
        q2 = total.a22.shape[0]
        rows = keys // self._q1
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=q2))])
        a21 = sp.csr_matrix((values, keys % self._q1, indptr), shape=(q2, self._q1))
        return replace(total, a21=a21)


def _ordered_sums(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` (increasing) and the sums of their ``values`` taken in the order
    given: ``((v_1 + v_2) + v_3) + ...`` per key (a stable sort, then one vectorized add per
    rank of repetition)."""
    if not keys.size:
        return keys, values
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    new = np.empty(k.size, dtype=bool)
    new[0] = True
    np.not_equal(k[1:], k[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    rank = np.arange(k.size) - starts[group]
    by_rank = np.argsort(rank, kind="stable")
    out = np.zeros(starts.size)
    at = 0
    for count in np.bincount(rank).tolist():
        sel = by_rank[at : at + count]
        out[group[sel]] += v[sel]  # one entry per key in each rank
        at += count
    return k[starts], out


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
