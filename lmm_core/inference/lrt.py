"""Likelihood-ratio tests between nested fits: lme4's ``anova(fit1, fit2, ...)``.

Models are ordered by their number of parameters ``k``. For consecutive models
``Chisq = 2 max(0, logLik_i - logLik_{i-1})`` on ``Df = k_i - k_{i-1}`` degrees of freedom,
``p = P(chi^2_Df > Chisq)``. A likelihood-ratio test needs maximum-likelihood fits: as lme4
does by default, REML fits are refitted with ML first, and the table says so.

When the larger model adds variance parameters, the null value sits on the boundary of the
parameter space and the chi-square p-value is conservative (the 50:50 chi-bar-square mixture
is the better reference; see :func:`chibar_pvalue`).

GLMM fits (:class:`~lmm_core.glmm.results.GLMMResult`) go to
:func:`lmm_core.inference.glmm_lrt.glmm_lrt`, which returns the same table (no REML, nothing
to refit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.errors import ComparisonError
from lmm_core.glmm.results import GLMMResult
from lmm_core.inference.glmm_lrt import glmm_lrt
from lmm_core.inference.lrt_table import chisq_table
from lmm_core.model.fit import fit_design
from lmm_core.model.results import LMMResult

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"


def lrt(*results: LMMResult, names: list[str] | None = None, refit: bool = True) -> pd.DataFrame:
    """lme4's ``anova()`` table for two or more fits of the same rows.

    Parameters
    ----------
    *results
        Fits of the same response on the same rows (linear mixed models, or GLMMs: then
        :func:`~lmm_core.inference.glmm_lrt.glmm_lrt`).
    names
        Row labels (the formulas if omitted).
    refit
        Refit REML fits with maximum likelihood (lme4's default). With ``refit=False`` REML
        fits are compared as they are, which is valid only when their fixed effects are the
        same.

    Returns
    -------
    pd.DataFrame
        Columns ``npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)``, ordered by
        ``npar``; ``table.attrs["messages"]`` says whether models were refitted, and
        ``table.attrs["fits"]`` holds the fits the table was computed from.

    Raises
    ------
    ComparisonError
        Fewer than two models, different responses, or different rows.
    """
    if len(results) < 2:
        raise ComparisonError("Choose at least two fitted models to compare.")
    if any(isinstance(r, GLMMResult) for r in results):
        return glmm_lrt(*results, names=names)
    labels = list(names) if names is not None else [r.formula for r in results]
    if len(labels) != len(results):
        raise ComparisonError("Give one name per model.")
    _check_same_rows(results, labels)
    messages = []
    fits = list(results)
    if any(r.reml for r in fits):
        if refit:
            fits = [_ml_refit(r) for r in fits]
            messages.append(REFIT_MESSAGE)
        elif len({tuple(r.x_names) for r in fits}) > 1:
            raise ComparisonError(
                "These REML fits have different fixed effects: their REML criteria are not "
                "comparable. Compare them with maximum likelihood (refit=True)."
            )
    table = chisq_table(fits, labels)
    table.attrs["messages"] = messages
    return table


def _ml_refit(result: LMMResult) -> LMMResult:
    if not result.reml:
        return result
    if hasattr(result, "refit_ml"):  # a streamed fit: from its blocks (lmm_core.stream)
        return result.refit_ml()
    return fit_design(result.design, reml=False, start=result.theta)


def _check_same_rows(results: tuple[LMMResult, ...], labels: list[str]) -> None:
    first = results[0]
    for r, label in zip(results[1:], labels[1:], strict=True):
        if r.response != first.response:
            raise ComparisonError(
                f"'{label}' models {r.response} but '{labels[0]}' models {first.response}: "
                "a likelihood-ratio test compares models of the same response."
            )
        same = r.nobs == first.nobs and np.array_equal(r.design.rows, first.design.rows)
        if not same or not np.array_equal(r.y, first.y):
            raise ComparisonError(
                f"'{label}' was fitted to {r.nobs} rows and '{labels[0]}' to {first.nobs} "
                "(or to different rows): missing values in a variable used by one model only "
                "change the rows. Compare models fitted to the same rows, e.g. after removing "
                "rows with missing values in every variable involved."
            )
