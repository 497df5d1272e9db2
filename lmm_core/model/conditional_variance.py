"""Conditional covariances of the random effects given the data (lme4's ``condVar``).

``Var(b | y) = sigma^2 Lambda M^{-1} Lambda'`` with ``M = Lambda'Z'Z Lambda + I``. With the
blocked factor ``L_Z = [[L11, 0], [L21, L22]]`` of
:class:`lmm_core.model.deviance.ProfiledDeviance`, ``W_i = L11_i^{-1}`` and
``G = L22^{-1} L21 L11^{-1}``, the diagonal blocks of ``M^{-1}`` are ``W_i'W_i + G_i'G_i``
for the first term and those of ``L22^{-T} L22^{-1}`` for the others. Computed once per fit,
after the optimum (never inside the optimizer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from lmm_core.model.linalg import tri_solve

if TYPE_CHECKING:
    from lmm_core.model.deviance import BlockedFactor, ProfiledDeviance

#: Largest number of same-level pairs listed for :func:`_add_gtg_by_pattern`.
MAX_LEVEL_PAIRS = 8_000_000


def conditional_covariances(
    dev: ProfiledDeviance, factor: BlockedFactor, sigma: float, chunk: int = 4_000_000
) -> list[np.ndarray]:
    """Conditional covariance blocks, one ``(levels, S, S)`` array per merged term.

    Parameters
    ----------
    dev
        The criterion (its layout of the blocks).
    factor
        The blocked factor at the optimum.
    sigma
        Residual standard deviation.
    chunk
        Largest number of entries of ``G`` formed at once when the terms above the first
        are not scalar (or have too many same-level pairs).
    """
    w = factor.w11
    minv1 = np.swapaxes(w, 1, 2) @ w
    out = []
    l22_inv = None
    if factor.l22 is not None:
        l22_inv = tri_solve(factor.l22, np.eye(factor.l22.shape[0]))
        pairs = _level_pairs(dev) if dev._rest_scalar else None
        if pairs is not None:
            _add_gtg_by_pattern(dev, minv1, factor, l22_inv, pairs)
        else:
            _add_gtg_by_chunks(minv1, factor, chunk)
    lam1 = factor.lambdas[0]
    out.append(sigma**2 * (lam1 @ minv1 @ lam1.T))
    if l22_inv is not None:
        offset = 0
        for t, lam in zip(dev._terms[1:], factor.lambdas[1:], strict=True):
            m, s = t.n_levels, t.n_columns
            g = l22_inv[:, offset : offset + m * s].reshape(-1, m, s)
            minv = np.einsum("rca,rcb->cab", g, g)
            out.append(sigma**2 * (lam @ minv @ lam.T))
            offset += m * s
    return out


def _level_pairs(dev: ProfiledDeviance) -> tuple[np.ndarray, np.ndarray] | None:
    """Pairs ``a <= b`` of L21 blocks of the same level of the first term (the products in
    ``L21 L21'``; pairs are ordered by level, ``dev._level_ptr`` delimits them), or ``None``
    when there would be more than :data:`MAX_LEVEL_PAIRS`."""
    n_pairs = dev._pair_level.size
    run = dev._level_ptr[dev._pair_level + 1] - np.arange(n_pairs)  # b = a, ..., level end
    if int(run.sum()) > MAX_LEVEL_PAIRS:
        return None
    a = np.repeat(np.arange(n_pairs), run)
    b = a + np.arange(a.size) - np.repeat(np.cumsum(run) - run, run)
    return a, b


def _add_gtg_by_pattern(
    dev: ProfiledDeviance,
    minv1: np.ndarray,
    factor: BlockedFactor,
    l22_inv: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
) -> None:
    """Add ``G_i'G_i`` through the block pattern of L21 (scalar terms above the first).

    Column block ``i`` of ``L21 L11^{-1}`` has one row vector ``v_n = B_n W_i`` per pair
    ``n = (r, i)``, so ``G_i'G_i = sum_{n, n'} K[r_n, r_n'] v_n v_n'`` with
    ``K = L22^{-T} L22^{-1}``: the pairs met in the product ``L21 L21'`` again.
    """
    blocks = factor.l21_parts[0]
    w = factor.w11 if dev._level_identity else factor.w11[dev._pair_level]
    v = np.einsum("nb,nbc->nc", blocks, w)
    a, b = pairs
    k = l22_inv.T @ l22_inv
    weight = k[dev._pair_row[a], dev._pair_row[b]]
    outer = weight[:, None, None] * (v[a][:, :, None] * v[b][:, None, :])
    twice = a != b
    if twice.any():
        outer[twice] += np.swapaxes(outer[twice], 1, 2)
    s1 = minv1.shape[1]
    levels = dev._pair_level[a]
    for i in range(s1):
        for j in range(s1):
            minv1[:, i, j] += np.bincount(levels, outer[:, i, j], minlength=minv1.shape[0])


def _add_gtg_by_chunks(minv1: np.ndarray, factor: BlockedFactor, chunk: int) -> None:
    """Add ``G_i'G_i`` with ``G = L22^{-1} L21 L11^{-1}`` formed a chunk at a time."""
    w = factor.w11
    m1, s1 = w.shape[0], w.shape[1]
    block_diag = sp.bsr_matrix((w, np.arange(m1), np.arange(m1 + 1)), shape=(m1 * s1, m1 * s1))
    l21_w = (factor.l21 @ block_diag).tocsc()
    per = max(1, chunk // max(1, factor.l22.shape[0] * s1))
    for start in range(0, m1, per):
        stop = min(m1, start + per)
        cols = l21_w[:, start * s1 : stop * s1].toarray()
        g = tri_solve(factor.l22, cols)
        g = g.reshape(g.shape[0], stop - start, s1)
        minv1[start:stop] += np.einsum("rca,rcb->cab", g, g)


__all__ = ["MAX_LEVEL_PAIRS", "conditional_covariances"]
