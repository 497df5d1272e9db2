"""Compiled per-level loops of the profiled criterion (numba), for its two commonest shapes.

An evaluation of :class:`lmm_core.model.deviance.ProfiledDeviance` with a first term of one or
two columns (``(1 | g)``, ``(t | g)``, ``(t || g)``) runs over the levels of that term only
(the cross-products are formed once). In numpy that is a dozen array operations, each a
pass over memory, plus a fixed cost of a few microseconds per call that dominates small
fits (sleepstudy: 18 levels, 43 evaluations). These loops do the same arithmetic in one
pass per level, in closed form for ``S <= 2``:

``M_i = lambda' A_i lambda + I`` (``A_i = Z_i'Z_i``), ``det_i = |M_i|`` and
``K_i = lambda M_i^{-1} lambda'`` (entries ``K00, K01, K11``); with ``Y_ia`` row ``a`` of
``Z_i'[X y]``::

    log|L11|^2 = sum_i log det_i
    [X y]'[X y] - L31 L31' = [X y]'[X y] - sum_i sum_ab K_iab Y_ia' Y_ib

``S = 1``: ``K_i = l^2 / M_i``. ``S = 2``, ``lambda = [[l0, 0], [l1, l2]]``, ``M_i`` entries
``m0 = l0^2 a00 + 2 l0 l1 a01 + l1^2 a11 + 1``, ``m1 = l2 (l0 a01 + l1 a11)``,
``m2 = l2^2 a11 + 1``, ``det_i = m0 m2 - m1^2``::

    K00 = l0^2 m2 / det,   K01 = (l0 l1 m2 - l0 l2 m1) / det,
    K11 = (l1^2 m2 - 2 l1 l2 m1 + l2^2 m0) / det.

With terms above the
first that are scalar and nested in it (patients within hospitals), a pair ``n`` (row ``r``
of block 2, level ``i``) with ``Z2'Z1`` block ``v_n`` adds, with ``u_n = K_i v_n``::

    diag_r += v_n' u_n,       met_r += sum_a u_na Y_ia

(:meth:`ProfiledDeviance._nested_criterion`). The loops accumulate the upper triangle
only and never allocate per level. A block that is not positive definite returns ``nan``
for the log-determinant (the caller raises ``LinAlgError``).

Compiled on first use and cached next to this file (``cache=True``): a fresh interpreter
loads the machine code in milliseconds instead of compiling it again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _weights(s1: int, l0: float, l1: float, l2: float, a: np.ndarray, i: int):
    """``(det_i, K00, K01, K11)`` of level ``i`` (``a``: rows ``(a00, a01, a10, a11)`` or
    ``(a00,)``); ``det_i <= 0`` when ``M_i`` is not positive definite."""
    if s1 == 1:
        l00 = l0 * l0
        m0 = l00 * a[i, 0] + 1.0
        return m0, l00 / m0, 0.0, 0.0
    a00, a01, a11 = a[i, 0], a[i, 1], a[i, 3]
    m0 = l0 * l0 * a00 + 2.0 * l0 * l1 * a01 + l1 * l1 * a11 + 1.0
    m1 = l2 * (l0 * a01 + l1 * a11)
    m2 = l2 * l2 * a11 + 1.0
    det = m0 * m2 - m1 * m1
    inv = 1.0 / det
    k00 = l0 * l0 * m2 * inv
    k01 = (l0 * l1 * m2 - l0 * l2 * m1) * inv
    k11 = (l1 * l1 * m2 - 2.0 * l1 * l2 * m1 + l2 * l2 * m0) * inv
    return det, k00, k01, k11


@njit(cache=True, nogil=True, inline="always")
def _log_product(log_sum: float, product: float) -> float:
    return log_sum + math.log(product)


@njit(cache=True, nogil=True, inline="always")
def _subtract_level(m33: np.ndarray, xy: np.ndarray, i: int, k00: float, k01: float, k11: float):
    """``M33 -= sum_ab K_iab Y_ia' Y_ib`` for level ``i``, upper triangle only."""
    s1, _, k = xy.shape
    if s1 == 1:
        for c in range(k):
            w = k00 * xy[0, i, c]
            for d in range(c, k):
                m33[c, d] -= w * xy[0, i, d]
        return
    for c in range(k):
        w0 = k00 * xy[0, i, c] + k01 * xy[1, i, c]
        w1 = k01 * xy[0, i, c] + k11 * xy[1, i, c]
        for d in range(c, k):
            m33[c, d] -= w0 * xy[0, i, d] + w1 * xy[1, i, d]


@njit(cache=True, nogil=True)
def level_schur(lam: np.ndarray, a: np.ndarray, xy: np.ndarray, axy: np.ndarray):
    """``(sum_i log det_i, [X y]'[X y] - L31 L31', K)`` for a first term of ``S <= 2``
    columns.

    Parameters
    ----------
    lam
        The term's ``S x S`` lower-triangular relative covariance factor.
    a
        ``Z_i'Z_i`` per level as ``(m1, S*S)`` (row-major blocks).
    xy
        ``Z_i'[X y]`` as ``(S, m1, p + 1)``.
    axy
        ``[X y]'[X y]``.

    Returns
    -------
    tuple
        ``log|L11|^2`` (``nan`` if a block is not positive definite), the Schur complement
        (full symmetric ``(p+1, p+1)``) and the weights ``K`` as ``(m1, 3)``.
    """
    s1, m1, k = xy.shape
    l0 = lam[0, 0]
    l1 = lam[1, 0] if s1 == 2 else 0.0
    l2 = lam[1, 1] if s1 == 2 else 0.0
    m33 = axy.copy()
    weights = np.empty((m1, 3))
    log_sum = 0.0
    product = 1.0
    for i in range(m1):
        det, k00, k01, k11 = _weights(s1, l0, l1, l2, a, i)
        if not det > 0.0:  # also catches NaN
            return math.nan, m33, weights
        weights[i, 0], weights[i, 1], weights[i, 2] = k00, k01, k11
        product *= det
        if product > 1e150:  # log of a running product (each det_i >= 1: no underflow)
            log_sum = _log_product(log_sum, product)
            product = 1.0
        _subtract_level(m33, xy, i, k00, k01, k11)
    for c in range(k):
        for d in range(c + 1, k):
            m33[d, c] = m33[c, d]
    return _log_product(log_sum, product), m33, weights


@njit(cache=True, nogil=True)
def nested_pairs(
    weights: np.ndarray,
    xy: np.ndarray,
    pair_level: np.ndarray,
    pair_row: np.ndarray,
    v: np.ndarray,
    q2: int,
):
    """``(diag, met)``: per row ``r`` of block 2, ``sum_n v_n' u_n`` and
    ``sum_n sum_a u_na Y_a[i_n]`` over its pairs, ``u_n = K_{i_n} v_n`` (module docstring).

    ``weights`` is :func:`level_schur`'s ``K`` as ``(m1, 3)``; ``v`` the ``Z2'Z1`` blocks as
    ``(pairs, S)``.
    """
    s1, _, k = xy.shape
    diag = np.zeros(q2)
    met = np.zeros((q2, k))
    for n in range(pair_level.size):
        i, r = pair_level[n], pair_row[n]
        if s1 == 1:
            u0 = weights[i, 0] * v[n, 0]
            diag[r] += u0 * v[n, 0]
            for c in range(k):
                met[r, c] += u0 * xy[0, i, c]
        else:
            u0 = weights[i, 0] * v[n, 0] + weights[i, 1] * v[n, 1]
            u1 = weights[i, 1] * v[n, 0] + weights[i, 2] * v[n, 1]
            diag[r] += u0 * v[n, 0] + u1 * v[n, 1]
            for c in range(k):
                met[r, c] += u0 * xy[0, i, c] + u1 * xy[1, i, c]
    return diag, met


@njit(cache=True, nogil=True)
def crossed_gram(
    weights: np.ndarray,
    level_ptr: np.ndarray,
    pair_row: np.ndarray,
    v: np.ndarray,
    d2: np.ndarray,
    m22: np.ndarray,
) -> None:
    """``M22[r, r'] -= d_r d_r' sum_i v_ri' K_i v_r'i`` (``r <= r'``, upper triangle only).

    ``(L21 L21')[r, r']`` for scalar terms above the first, crossed with it (a student meets
    many teachers): the pairs ``n = (level i, row r)`` are ordered by level, then row
    (``level_ptr[i]:level_ptr[i + 1]`` are level ``i``'s), so the products of level ``i``
    are its pairs ``a <= b``. ``weights`` is :func:`level_schur`'s ``K`` as ``(m1, 3)``,
    ``v`` the ``Z2'Z1`` blocks as ``(pairs, S)``, ``d2`` the diagonal of ``Lambda2``.
    """
    s1 = v.shape[1]
    for i in range(level_ptr.size - 1):
        k00, k01, k11 = weights[i, 0], weights[i, 1], weights[i, 2]
        for a in range(level_ptr[i], level_ptr[i + 1]):
            ra = pair_row[a]
            if s1 == 1:
                u0, u1 = k00 * v[a, 0] * d2[ra], 0.0
            else:
                u0 = (k00 * v[a, 0] + k01 * v[a, 1]) * d2[ra]
                u1 = (k01 * v[a, 0] + k11 * v[a, 1]) * d2[ra]
            for b in range(a, level_ptr[i + 1]):
                rb = pair_row[b]
                value = u0 * v[b, 0]
                if s1 == 2:
                    value += u1 * v[b, 1]
                m22[ra, rb] -= value * d2[rb]


@njit(cache=True, nogil=True)
def profiled_criterion(m: np.ndarray, ldl2: float, dof: float, reml: bool, q: int = 0) -> float:
    """The criterion from the lower Cholesky factor of ``m`` (a copy is factored).

    ``m`` is ``[X y]'[X y] - L3Z L3Z'`` (``q = 0``, ``log|L_Z|^2 = ldl2`` given) or a small
    model's whole ``B = T'AT + diag(I_q, 0)`` (its first ``q`` pivots give ``log|L_Z|^2``).
    Then ``r^2`` is the last pivot squared, ``ldRX2`` twice the log of the others, and the
    criterion ``ldl2 + dof (1 + log(2 pi r^2 / dof))``, plus ``ldRX2`` for REML. ``nan`` if
    ``m`` is not positive definite.
    """
    k = m.shape[0]
    low = m.copy()
    ldrx2 = 0.0
    for j in range(k):
        s = low[j, j]
        for t in range(j):
            s -= low[j, t] * low[j, t]
        if not s > 0.0:
            return math.nan
        d = math.sqrt(s)
        low[j, j] = d
        for i in range(j + 1, k):
            s = low[i, j]
            for t in range(j):
                s -= low[i, t] * low[j, t]
            low[i, j] = s / d
        if j < q:
            ldl2 += 2.0 * math.log(d)
        elif j < k - 1:
            ldrx2 += 2.0 * math.log(d)
    pwrss = low[k - 1, k - 1] * low[k - 1, k - 1]
    out = ldl2 + dof * (1.0 + math.log(2.0 * math.pi) + math.log(pwrss / dof))
    if reml:
        out += ldrx2
    return out


@njit(cache=True, nogil=True)
def small_model_criterion(
    a: np.ndarray,
    t_ptr: np.ndarray,
    t_rows: np.ndarray,
    t_source: np.ndarray,
    values: np.ndarray,
    q: int,
    dof: float,
    reml: bool,
) -> float:
    """The criterion of a small model from ``B = T'AT + diag(I_q, 0)``, ``T = diag(Lambda, I)``.

    ``T`` is sparse (a few entries per column): column ``j`` holds rows
    ``t_rows[t_ptr[j]:t_ptr[j + 1]]`` with values ``values[t_source[...]]`` (the factors'
    entries, then a 1 for the identity), so ``AT`` and ``T'(AT)`` cost ``O(size^2 S)``
    instead of two dense products; then :func:`profiled_criterion` with ``q`` pivots in
    ``log|L_Z|^2``.
    """
    n = a.shape[0]
    at = np.zeros((n, n))
    for j in range(n):
        for p in range(t_ptr[j], t_ptr[j + 1]):
            k, v = t_rows[p], values[t_source[p]]
            for i in range(n):
                at[i, j] += a[i, k] * v
    b = np.zeros((n, n))
    for j in range(n):
        for i in range(j, n):  # lower triangle: B[i, j] = sum_k T[k, i] (AT)[k, j]
            s = 0.0
            for p in range(t_ptr[i], t_ptr[i + 1]):
                s += values[t_source[p]] * at[t_rows[p], j]
            b[i, j] = s
        if j < q:
            b[j, j] += 1.0
    return profiled_criterion(b, 0.0, dof, reml, q)


@njit(cache=True, nogil=True)
def one_term_criterion(
    lam: np.ndarray, a: np.ndarray, xy: np.ndarray, axy: np.ndarray, dof: float, reml: bool
) -> float:
    """The whole criterion of a one-term model with ``S <= 2`` (``nan``: not positive
    definite): :func:`level_schur`, then :func:`profiled_criterion`."""
    ldl2, m33, _ = level_schur(lam, a, xy, axy)
    if math.isnan(ldl2):
        return math.nan
    return profiled_criterion(m33, ldl2, dof, reml)


__all__ = [
    "crossed_gram",
    "level_schur",
    "nested_pairs",
    "one_term_criterion",
    "profiled_criterion",
    "small_model_criterion",
    "warm_up",
]


def warm_up() -> None:
    """Compile (or load from the cache) every loop of this module once, on tiny inputs, so
    that no later fit pays for it (a server's fork server, a test session's start)."""
    lam = np.array([[1.0, 0.0], [0.5, 1.0]])
    a = np.array([[2.0, 1.0, 1.0, 3.0]])
    xy = np.ones((2, 1, 2))
    axy = np.array([[4.0, 1.0], [1.0, 5.0]])
    one_term_criterion(lam, a, xy, axy, 3.0, True)
    _, _, weights = level_schur(lam, a, xy, axy)
    pairs = np.zeros(1, dtype=np.int64)
    nested_pairs(weights, xy, pairs, pairs, np.ones((1, 2)), 1)
    crossed_gram(
        weights,
        np.array([0, 1], dtype=np.int64),
        pairs,
        np.ones((1, 2)),
        np.ones(1),
        np.zeros((1, 1)),
    )
    rows = np.array([0, 1], dtype=np.int64)
    small_model_criterion(
        axy, np.array([0, 1, 2], dtype=np.int64), rows, rows, np.ones(2), 1, 3.0, True
    )
