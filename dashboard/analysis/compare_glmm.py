"""Compare GLMMs (binomial or Poisson mixed models) of the same data. Pure (no Streamlit).

A GLMM's log-likelihood ``l`` is that of a binomial or Poisson outcome integrated over the
random effects (Laplace or adaptive quadrature, every constant kept), so two GLMMs compare
only when they model the same response on the same rows with the same family and link. The
table counts the parameters as lme4 does, ``k = p + len(theta)`` (fixed effects and
random-effects covariance parameters; no residual scale), ``AIC = -2 l + 2 k``,
``BIC = -2 l + k log(n)``, ``deviance = -2 l`` (the column of lme4's ``anova()``; glmer's
``deviance()`` is another number, the sum of squared deviance residuals at the modes).

Likelihood-ratio tests are lme4's ``anova(glmer1, glmer2, ...)``
(:func:`lmm_core.glmm_lrt`): models in order of ``k``, and for consecutive ones
``Chisq = 2 max(0, l_i - l_{i-1})`` on ``Df = k_i - k_{i-1}``, ``p = P(chi^2_Df > Chisq)``;
valid only when the smaller model is nested in the larger one
(:func:`lmm_core.inference.nesting.check_nesting`). When the larger model adds one variance
(null value 0 on the boundary), the 50:50 chi-bar-square mixture gives the p-value. GLMMs have
no REML: the fits are compared as they are, with no refits.

A GLMM and a linear (Gaussian) mixed model of the same outcome have likelihoods of different
kinds (a probability mass against a density), so their AIC values say nothing about each
other: :func:`split_records` keeps them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.analysis.records import FitRecord
from lmm_core import ComparisonError, GLMMResult, glmm_lrt
from lmm_core.inference.nesting import check_nesting

__all__ = [
    "ALPHA",
    "GLMMComparison",
    "KEEP_APART",
    "compare_glmms",
    "family_label",
    "family_groups",
    "fit_method",
    "is_glmm",
    "split_records",
]

ALPHA = 0.05
#: why GLMMs and Gaussian models of the same outcome share no AIC table
KEEP_APART = (
    "GLMMs (binomial or Poisson) and linear mixed models have likelihoods of different kinds, "
    "so their AIC and BIC cannot be compared: each kind is compared on its own."
)
TEST_COLUMNS = ["test", "Chisq", "Df", "p (chi-square)", "p (chi-bar-square)", "nested", "verdict"]


def is_glmm(result: object) -> bool:
    """Whether a fit is a GLMM (:class:`lmm_core.GLMMResult`)."""
    return isinstance(result, GLMMResult)


def family_label(result: GLMMResult) -> str:
    """``"binomial (logit link)"``, ``"Poisson (log link)"``."""
    name = "Poisson" if result.family.name == "poisson" else result.family.name
    return f"{name} ({result.link} link)"


def fit_method(result: GLMMResult) -> str:
    """How the likelihood was computed: ``"Laplace"`` or ``"quadrature, nagq = K"``."""
    return "Laplace" if int(result.nagq) <= 1 else f"quadrature, nagq = {int(result.nagq)}"


def split_records(records: Sequence[FitRecord]) -> tuple[list[FitRecord], list[FitRecord]]:
    """``(GLMMs, the other fits)``, each in the given order."""
    glmms = [r for r in records if is_glmm(r.result)]
    return glmms, [r for r in records if not is_glmm(r.result)]


def family_groups(records: Sequence[FitRecord]) -> list[list[FitRecord]]:
    """GLMM records grouped by response, family and link (the only ones a test or AIC can
    compare), in order of first appearance."""
    groups: dict[tuple[str, str, str], list[FitRecord]] = {}
    for record in records:
        r = record.result
        groups.setdefault((r.response, r.family.name, r.link), []).append(record)
    return list(groups.values())


@dataclass(frozen=True)
class GLMMComparison:
    """The comparison of GLMMs of one response, family and link.

    Attributes
    ----------
    criteria
        One row per model (index: name; ordered by ``npar`` when comparable): ``npar``,
        ``logLik``, ``AIC``, ``BIC``, ``delta_AIC``, ``delta_BIC``, ``deviance``
        (``-2 logLik``), ``method`` (Laplace or quadrature), ``converged``, ``formula``.
    tests
        Consecutive likelihood-ratio tests (:data:`TEST_COLUMNS`); empty when not comparable.
    problem
        Why the models cannot be compared (different rows, offsets...), else ``""``; the
        deltas are then NaN.
    boundary
        The engine's notes on tests of a variance on the boundary.
    """

    criteria: pd.DataFrame
    tests: pd.DataFrame
    problem: str = ""
    boundary: tuple[str, ...] = ()

    @property
    def comparable(self) -> bool:
        return not self.problem


def _short(name: str) -> str:
    """``"M2"`` of ``"M2: random slope"`` (the full names are in the table)."""
    head = name.split(":", 1)[0].strip()
    return head if head and head != name else name


def _criteria(records: Sequence[FitRecord]) -> pd.DataFrame:
    rows = []
    for record in records:
        r = record.result
        rows.append(
            {
                "model": record.name,
                "npar": int(r.npar),
                "logLik": float(r.loglik),
                "AIC": float(r.aic),
                "BIC": float(r.bic),
                "deviance": -2.0 * float(r.loglik),
                "method": fit_method(r),
                "converged": "yes" if bool(r.converged) else "no",
                "formula": record.formula,
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    at = table.columns.get_loc("BIC") + 1
    table.insert(at, "delta_AIC", table["AIC"] - table["AIC"].min())
    table.insert(at + 1, "delta_BIC", table["BIC"] - table["BIC"].min())
    return table


def _verdict(small: str, large: str, df: float, nested: bool, p: float) -> str:
    if not nested:
        return "not nested: LRT not valid, use AIC/BIC"
    if df <= 0:
        return "same number of parameters: no test"
    if np.isfinite(p) and p < ALPHA:
        return f"{_short(large)} fits significantly better (5%)"
    return f"no significant improvement over {_short(small)} (5%)"


def _tests(table: pd.DataFrame) -> pd.DataFrame:
    fits = table.attrs["fits"]
    names = list(table.index)
    rows = []
    for i in range(1, len(fits)):
        nested = check_nesting(fits[i - 1], fits[i]).nested
        df = float(table["Df"].iloc[i])
        naive = float(table["Pr(>Chisq)"].iloc[i])
        chibar = float(table.attrs["p_chibar"][i])
        p = chibar if np.isfinite(chibar) else naive
        rows.append(
            {
                "test": f"{_short(names[i - 1])} vs {_short(names[i])}",
                "Chisq": float(table["Chisq"].iloc[i]),
                "Df": df,
                "p (chi-square)": naive,
                "p (chi-bar-square)": chibar,
                "nested": "yes" if nested else "no",
                "verdict": _verdict(names[i - 1], names[i], df, nested, p),
            }
        )
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def compare_glmms(records: Sequence[FitRecord]) -> GLMMComparison:
    """Compare GLMM records of one response, family and link (:func:`family_groups`).

    Raises
    ------
    ValueError
        When a record is not a GLMM (the page keeps them apart first).
    """
    if not all(is_glmm(r.result) for r in records):
        raise ValueError("compare_glmms compares GLMM fits only")
    names = [r.name for r in records]
    try:
        table = glmm_lrt(*(r.result for r in records), names=names)
    except ComparisonError as error:
        criteria = _criteria(records)
        criteria[["delta_AIC", "delta_BIC"]] = np.nan
        return GLMMComparison(criteria, pd.DataFrame(columns=TEST_COLUMNS), str(error))
    by_name = {r.name: r for r in records}
    criteria = _criteria([by_name[n] for n in table.index])
    tests = _tests(table) if len(records) > 1 else pd.DataFrame(columns=TEST_COLUMNS)
    return GLMMComparison(criteria, tests, "", tuple(table.attrs.get("messages", ())))
