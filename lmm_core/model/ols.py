"""Ordinary least squares: the fixed effects fitted as if every row were independent.

Used to show what ignoring the grouping does to the standard errors. For the model
``y = X beta + e`` with ``e ~ N(0, sigma^2 I)`` and ``X`` of full column rank ``p``:

    beta_hat = (X'X)^{-1} X'y,   s^2 = ||y - X beta_hat||^2 / (n - p),
    cov(beta_hat) = s^2 (X'X)^{-1}.

Computed through the thin QR decomposition ``X = QR`` (``beta_hat = R^{-1} Q'y`` and
``(X'X)^{-1} = R^{-1} R^{-T}``), which avoids squaring the condition number of ``X``.
numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError

__all__ = ["ols_fit"]


def ols_fit(X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """Least-squares estimates and their naive standard errors.

    Parameters
    ----------
    X
        Model matrix ``(n, p)`` of full column rank (e.g. ``result.design.X``, whose aliased
        columns are already dropped).
    y
        Response ``(n,)``.
    names
        Column names of ``X`` (the index of the result).

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate`` (``beta_hat = (X'X)^{-1} X'y``) and ``std_error``
        (``sqrt(diag(s^2 (X'X)^{-1}))`` with ``s^2 = RSS / (n - p)``), one row per column.

    Raises
    ------
    lmm_core.ModelError
        When ``X`` has no more rows than columns or is rank deficient.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if len(names) != p or y.shape != (n,):
        raise ModelError(f"X is {n} x {p}, y has shape {y.shape} and there are {len(names)} names.")
    if n <= p:
        raise ModelError(f"Least squares needs more rows ({n}) than coefficients ({p}).")
    q, r = np.linalg.qr(X, mode="reduced")
    diag = np.abs(np.diag(r))
    if p and diag.min() <= 1e-10 * diag.max():
        raise ModelError(
            "The model matrix is rank deficient: some columns are combinations of others."
        )
    beta = np.linalg.solve(r, q.T @ y)
    resid = y - X @ beta
    s2 = float(resid @ resid) / (n - p)
    r_inv = np.linalg.solve(r, np.eye(p))
    cov = s2 * (r_inv @ r_inv.T)
    return pd.DataFrame(
        {"estimate": beta, "std_error": np.sqrt(np.diag(cov))},
        index=pd.Index(list(names), name="term"),
    )
