"""The table of a likelihood-ratio test between nested fits, as lme4's ``anova()`` prints it,
for Gaussian and generalised mixed models alike.

The fits are ordered by their number of parameters ``k``; each row after the first tests the
previous model against this one: ``Chisq = 2 (l_i - l_{i-1})`` (floored at 0), ``Df = k_i -
k_{i-1}`` and ``Pr(>Chisq)`` the upper chi-square(Df) probability. When the larger model adds
variances whose null value 0 lies on the boundary of the parameter space, the chi-square p is
conservative; :func:`chibar_pvalue` gives the 50:50 mixture (Self & Liang 1987; Stram & Lee
1994).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["chibar_pvalue", "chisq_table"]


def chisq_table(fits: Sequence[Any], labels: Sequence[str]) -> pd.DataFrame:
    """``npar``, ``AIC``, ``BIC``, ``logLik``, ``deviance``, ``Chisq``, ``Df``, ``Pr(>Chisq)``
    per fit (index ``model``: the labels), smallest model first.

    Parameters
    ----------
    fits
        Fits with ``npar``, ``loglik``, ``aic`` and ``bic`` (checked comparable by the caller).
    labels
        One name per fit.

    Returns
    -------
    pandas.DataFrame
        ``attrs["fits"]`` holds the fits in the table's order.
    """
    order = sorted(range(len(fits)), key=lambda i: fits[i].npar)
    fits = [fits[i] for i in order]
    npar = np.array([r.npar for r in fits])
    loglik = np.array([r.loglik for r in fits])
    chisq = np.r_[np.nan, 2.0 * np.maximum(0.0, np.diff(loglik))]
    df = np.r_[np.nan, np.diff(npar)].astype(float)
    with np.errstate(invalid="ignore"):
        pval = np.where(df > 0, stats.chi2.sf(chisq, np.where(df > 0, df, 1)), np.nan)
    pval[0] = np.nan
    table = pd.DataFrame(
        {
            "npar": npar,
            "AIC": [r.aic for r in fits],
            "BIC": [r.bic for r in fits],
            "logLik": loglik,
            "deviance": -2.0 * loglik,
            "Chisq": chisq,
            "Df": df,
            "Pr(>Chisq)": pval,
        },
        index=pd.Index([labels[i] for i in order], name="model"),
    )
    table.attrs["fits"] = fits
    return table


def chibar_pvalue(chisq: float, df: int = 1) -> float:
    """p-value of the 50:50 mixture of chi-square(df - 1) and chi-square(df).

    The reference distribution of the LRT statistic when ``df`` variance parameters are
    added and one of them is tested on its boundary (Self & Liang 1987; Stram & Lee 1994).
    For ``df = 1`` it is half the naive chi-square(1) p-value.
    """
    if chisq <= 0:
        return 1.0
    low = stats.chi2.sf(chisq, df - 1) if df > 1 else 0.0
    return float(0.5 * low + 0.5 * stats.chi2.sf(chisq, df))
