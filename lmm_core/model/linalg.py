"""Small dense kernels for stacks of ``S x S`` blocks.

The first random-effects term contributes one ``S x S`` diagonal block per level of its
grouping factor (MixedModels' ``UniformBlockDiagonal``). These helpers work on a stacked
``(m, S, S)`` array at once, with closed forms for ``S = 1`` and ``S = 2`` (the common random
intercept, and intercept + slope) and numpy's batched routines otherwise.
"""

from __future__ import annotations

import contextlib

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import ThreadpoolController

_BLAS = ThreadpoolController()


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """Context in which OpenBLAS runs on one thread.

    Fits run one BLAS thread: with the other core busy (a second user, a test runner),
    OpenBLAS's threaded kernels wait for each other, and a 1,142 x 1,142 Cholesky took
    199 ms instead of 15 ms on this 2-core machine; idle, two threads save only a quarter.
    """
    return _BLAS.limit(limits=1, user_api="blas")


def batched_cholesky(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of symmetric positive-definite matrices.

    Parameters
    ----------
    a
        Array ``(m, S, S)``.

    Returns
    -------
    np.ndarray
        ``L`` with ``L[i] @ L[i].T == a[i]``.

    Raises
    ------
    np.linalg.LinAlgError
        If some block is not positive definite.
    """
    s = a.shape[-1]
    if s == 1:
        if not (a > 0).all():
            raise np.linalg.LinAlgError("block not positive definite")
        return np.sqrt(a)
    if s == 2:
        a11, a21, a22 = a[:, 0, 0], a[:, 1, 0], a[:, 1, 1]
        if not (a11 > 0).all():
            raise np.linalg.LinAlgError("block not positive definite")
        l11 = np.sqrt(a11)
        l21 = a21 / l11
        d = a22 - l21 * l21
        if not (d > 0).all():
            raise np.linalg.LinAlgError("block not positive definite")
        out = np.zeros(a.shape)
        out[:, 0, 0] = l11
        out[:, 1, 0] = l21
        out[:, 1, 1] = np.sqrt(d)
        return out
    return np.linalg.cholesky(a)


def batched_tril_inverse(low: np.ndarray) -> np.ndarray:
    """Inverses of a stack of nonsingular lower-triangular matrices ``(m, S, S)``."""
    s = low.shape[-1]
    if s == 1:
        return 1.0 / low
    if s == 2:
        l11, l21, l22 = low[:, 0, 0], low[:, 1, 0], low[:, 1, 1]
        out = np.zeros(low.shape)
        out[:, 0, 0] = 1.0 / l11
        out[:, 1, 1] = 1.0 / l22
        out[:, 1, 0] = -l21 / (l11 * l22)
        return out
    return np.linalg.inv(low)


def batched_logdet_tril(low: np.ndarray) -> float:
    """``log |L L'|`` summed over a stack of lower-triangular factors (``2 sum log diag``)."""
    return 2.0 * float(np.log(low.diagonal(axis1=-2, axis2=-1)).sum())


def logdet_tril(low: np.ndarray) -> float:
    """``log |L L'| = 2 sum log diag(L)`` for one lower-triangular factor."""
    return 2.0 * float(np.log(low.diagonal()).sum())


def cholesky(a: np.ndarray, *, lower: bool = True) -> np.ndarray:
    """Cholesky factor of one dense symmetric positive-definite matrix (LAPACK potrf).

    Lower ``L`` with ``L L' = a`` (reads the lower triangle of ``a``), or with
    ``lower=False`` upper ``U`` with ``U'U = a`` (reads only the upper triangle, so a caller
    may fill just that one). Called directly rather than through ``np.linalg.cholesky``,
    which costs about twice as much for the sizes met here (a few to a few thousand rows).
    """
    low, info = lapack.dpotrf(a, lower=1 if lower else 0, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError("matrix not positive definite")
    return low


def tri_solve(
    low: np.ndarray, b: np.ndarray, *, trans: bool = False, upper: bool = False
) -> np.ndarray:
    """Solve ``L x = b`` (or ``L' x = b`` with ``trans``) for lower-triangular ``L`` (trtrs).

    With ``upper``, ``low`` is an upper-triangular ``U`` and the system is ``U x = b`` (or
    ``U' x = b``): a factor from ``cholesky(..., lower=False)`` is used as it is, without
    the copy a transposed (C-ordered) view would cost.

    A right-hand side of a few columns is solved column by column: OpenBLAS's threaded
    matrix kernel costs about a millisecond per call in thread start-up alone, far more than
    the arithmetic of a small solve.
    """
    if b.ndim == 2 and b.shape[1] <= 8:
        return np.column_stack(
            [tri_solve(low, b[:, j], trans=trans, upper=upper) for j in range(b.shape[1])]
        )
    x, info = lapack.dtrtrs(low, b, lower=0 if upper else 1, trans=1 if trans else 0)
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return x
