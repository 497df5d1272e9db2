"""The Compare page's sections for GLMMs (binomial or Poisson mixed models): one table per
response, family and link with lme4's likelihood-ratio tests, the sentence that keeps them apart
from linear mixed models, and the "Laplace vs quadrature" section of the active GLMM (numbers
from :mod:`dashboard.analysis.compare_glmm`, the section from
:func:`dashboard.views.quadrature.quadrature_section`)."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis import compare_glmm as cg
from dashboard.analysis.compare import CHIBAR_EXPLANATION
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import escape_message
from dashboard.base.numbers import MISSING, styled
from dashboard.help.texts import help_text
from dashboard.views.compare_shared import DELTA_COLUMNS, LRT_COLUMNS, RULES
from dashboard.views.help import column, how_to_read, text_column
from dashboard.views.quadrature import quadrature_section

__all__ = ["glmm_comparison_section", "glmm_quadrature_section"]

CRITERIA_ORDER = [  # numbers first, the long formula last (a 1024 px screen)
    "npar", "AIC", "BIC", "delta_AIC", "delta_BIC", "logLik", "deviance", "method",
    "converged", "formula",
]  # fmt: skip


def _criteria_table(comparison: cg.GLMMComparison, key: str) -> None:
    table = comparison.criteria
    if not comparison.comparable:
        table = table.drop(columns=["delta_AIC", "delta_BIC"])
    st.dataframe(
        styled(table, RULES),
        key=f"{key}_criteria",
        column_order=[c for c in CRITERIA_ORDER if c in table.columns],
        column_config={
            **{name: LRT_COLUMNS[name] for name in ("npar", "AIC", "BIC", "logLik")},
            **DELTA_COLUMNS,
            "deviance": st.column_config.NumberColumn(
                "deviance",
                help="-2 logLik, the column of lme4's anova() table (glmer's deviance() on "
                "the Model page is another number: the sum of the squared deviance residuals "
                "at the conditional modes).",
            ),
            "method": text_column("laplace_quadrature", "method"),
            "converged": text_column("convergence", "converged"),
        },
        placeholder=MISSING,
    )
    st.caption(
        "Each model as fitted (a GLMM has no REML, so there are no refits). npar counts the "
        "fixed effects and the random effects' variances and correlations, as lme4 does; "
        "lower AIC and BIC are better, a delta under 2 is a tie."
    )


def _tests(comparison: cg.GLMMComparison, key: str) -> None:
    st.markdown("**Likelihood-ratio tests (lme4's anova table)**", help=help_text("lrt"))
    st.dataframe(
        styled(comparison.tests, RULES),
        hide_index=True,
        key=f"{key}_tests",
        column_config={
            "Chisq": LRT_COLUMNS["Chisq"],
            "Df": LRT_COLUMNS["Df"],
            "p (chi-square)": column("p_value", "p (chi-square)"),
            "p (chi-bar-square)": column("chibar", "p (chi-bar-square)"),
            "nested": st.column_config.TextColumn(
                help="Is the smaller model a special case of the larger one? Only then is "
                "the likelihood-ratio test valid."
            ),
        },
        placeholder=MISSING,
    )
    st.caption(
        "Models in order of npar; each is tested against the one above it: Chisq is twice the "
        "gain in log-likelihood, compared with a chi-square on Df degrees of freedom."
    )
    if comparison.boundary:
        st.markdown(
            "**Testing a variance on the boundary**: "
            + " ".join(escape_message(m) for m in comparison.boundary),
            help=help_text("chibar"),
        )
        st.caption(CHIBAR_EXPLANATION)


def _group_section(records: list[FitRecord], index: int) -> None:
    first = records[0].result
    st.subheader(
        f"GLMMs of {escape_message(first.response)}: {cg.family_label(first)}",
        help=help_text("aic"),
    )
    key = f"compare_glmm_{index}"
    if len(records) < 2:
        st.info(
            f"Only {escape_message(records[0].name)} is a {cg.family_label(first)} model of "
            "this outcome among the chosen ones: fit another one (e.g. with or without a "
            "random slope) to compare."
        )
    comparison = cg.compare_glmms(records)
    if not comparison.comparable:
        st.warning(
            f"These models cannot be compared: {escape_message(comparison.problem)} Their "
            "AIC and BIC are shown as fitted."
        )
    _criteria_table(comparison, key)
    if comparison.comparable and len(records) > 1:
        _tests(comparison, key)


def glmm_comparison_section(records: list[FitRecord]) -> list[FitRecord]:
    """Compare the GLMMs among ``records`` (one table per response, family and link) and
    return the other records, to be compared on their own."""
    glmms, others = cg.split_records(records)
    if not glmms:
        return others
    if others:
        st.info(cg.KEEP_APART)
    groups = cg.family_groups(glmms)
    if len(groups) > 1:
        st.info(
            "The chosen GLMMs differ in outcome, family or link: each such set is compared "
            "on its own, since their likelihoods are of different models."
        )
    for i, group in enumerate(groups):
        _group_section(group, i)
    how_to_read("lrt", "chibar", "aic", "deviance")
    return others


def glmm_quadrature_section(record: FitRecord) -> None:
    """The "Laplace vs quadrature" section for the active GLMM (its own sentence says when
    quadrature does not apply, e.g. a random slope)."""
    st.header("Laplace vs quadrature", help=help_text("laplace_quadrature"))
    st.caption(f"For the active model, {escape_message(record.name)}.")
    quadrature_section(record.result, key="compare_quadrature")
