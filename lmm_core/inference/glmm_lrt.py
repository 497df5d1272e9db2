"""Likelihood-ratio tests between nested GLMMs: lme4's ``anova(glmer1, glmer2, ...)``.

The same table as :func:`lmm_core.inference.lrt.lrt` (which calls this one for GLMM fits):
models ordered by their number of parameters ``k = p + len(theta)``, and for consecutive
models ``Chisq = 2 max(0, logLik_i - logLik_{i-1})`` on ``Df = k_i - k_{i-1}``,
``p = P(chi^2_Df > Chisq)``. GLMMs have no REML: the fits are compared as they are. They must
model the same response (values, trials and offset) on the same rows with the same family and
link; their log-likelihoods carry every constant, so fits with different ``nagq`` are
comparable too (the quadrature value is the more accurate one).

When the larger model adds one variance (and covariances of that effect) and the fixed
effects are the same, the null value is on the boundary of the parameter space: the naive
chi-square p-value is conservative and the 50:50 chi-bar-square mixture is the reference
(:func:`lmm_core.inference.nesting.boundary_test_info`); its p-value is reported in
``table.attrs["p_chibar"]`` with a note in ``table.attrs["messages"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.errors import ComparisonError
from lmm_core.glmm.results import GLMMResult
from lmm_core.inference.lrt_table import chibar_pvalue, chisq_table
from lmm_core.inference.nesting import boundary_test_info, check_nesting


def glmm_lrt(*results: GLMMResult, names: list[str] | None = None) -> pd.DataFrame:
    """lme4's ``anova()`` table for two or more GLMM fits of the same rows.

    Parameters
    ----------
    *results
        GLMM fits of the same response on the same rows, same family and link.
    names
        Row labels (the formulas if omitted).

    Returns
    -------
    pd.DataFrame
        Columns ``npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)`` ordered by
        ``npar`` (``deviance`` is ``-2 logLik``, as anova's column); ``attrs``: ``messages``
        (boundary notes), ``fits`` (the fits in table order) and ``p_chibar`` (per row: the
        chi-bar-square p-value of the test against the row above, NaN when it does not apply).

    Raises
    ------
    ComparisonError
        Fewer than two models, a linear mixed model among them, or different responses,
        rows, families or links.
    """
    if len(results) < 2:
        raise ComparisonError("Choose at least two fitted models to compare.")
    if not all(isinstance(r, GLMMResult) for r in results):
        raise ComparisonError(
            "A likelihood-ratio test compares models of the same kind: these mix a linear "
            "mixed model with a binomial or Poisson (GLMM) fit."
        )
    labels = list(names) if names is not None else [r.formula for r in results]
    if len(labels) != len(results):
        raise ComparisonError("Give one name per model.")
    check_same_model_data(results, labels)
    table = chisq_table(results, labels)
    fits, labels = table.attrs["fits"], list(table.index)
    chisq = table["Chisq"].to_numpy()
    p_chibar, messages = _boundary(fits, labels, chisq)
    table.attrs["messages"] = messages
    table.attrs["p_chibar"] = p_chibar
    return table


def _boundary(fits: list[GLMMResult], labels: list[str], chisq: np.ndarray):
    """Chi-bar-square p-values and notes for the consecutive tests on the boundary."""
    p_chibar = [np.nan] * len(fits)
    messages = []
    for i in range(1, len(fits)):
        small, large = fits[i - 1], fits[i]
        if not check_nesting(small, large).nested:
            continue
        info = boundary_test_info(small, large)
        if info.mixture_df is None:
            continue
        df = info.mixture_df
        p_chibar[i] = chibar_pvalue(chisq[i], df)
        messages.append(
            f"'{labels[i]}' adds a variance to '{labels[i - 1]}' (null value 0, on the boundary "
            "of the parameter space): the chi-square p-value is conservative; the 50:50 mixture "
            f"of chi-square({df - 1}) and chi-square({df}) gives p = {p_chibar[i]:.4g}."
        )
    return p_chibar, messages


def check_same_model_data(results, labels: list[str]) -> None:
    """Raise :class:`ComparisonError` unless the fits share response, rows, trials, offset,
    family and link."""
    first = results[0]
    for r, label in zip(results[1:], labels[1:], strict=True):
        if r.family.name != first.family.name or r.link != first.link:
            raise ComparisonError(
                f"'{label}' is a {r.family.name} model with the {r.link} link and "
                f"'{labels[0]}' a {first.family.name} model with the {first.link} link: a "
                "likelihood-ratio test compares models of the same family and link."
            )
        if r.response != first.response:
            raise ComparisonError(
                f"'{label}' models {r.response} but '{labels[0]}' models {first.response}: "
                "a likelihood-ratio test compares models of the same response."
            )
        a, b = r.data, first.data
        same = a.y.size == b.y.size and np.array_equal(a.rows, b.rows)
        if not same or not (np.array_equal(a.y, b.y) and np.array_equal(a.weights, b.weights)):
            raise ComparisonError(
                f"'{label}' was fitted to {r.nobs} rows and '{labels[0]}' to {first.nobs} "
                "(or to different rows): missing values in a variable used by one model only "
                "change the rows. Compare models fitted to the same rows, e.g. after removing "
                "rows with missing values in every variable involved."
            )
        if not np.allclose(a.offset, b.offset, rtol=1e-12, atol=1e-12):
            raise ComparisonError(
                f"'{label}' and '{labels[0]}' have different offsets: their likelihoods "
                "describe different models of the counts; give both the same offset()."
            )


__all__ = ["check_same_model_data", "glmm_lrt"]
