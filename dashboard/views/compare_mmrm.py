"""The Compare page's table when MMRMs are among the chosen models: every model as fitted,
the likelihood-ratio tests between nested structures, and what may be compared (numbers from
:mod:`dashboard.analysis.compare_mmrm`)."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis import compare_mmrm as cm
from dashboard.analysis.records import FitRecord
from dashboard.base.numbers import MISSING, styled
from dashboard.help.texts import help_text
from dashboard.views.compare_shared import DELTA_COLUMNS, LRT_COLUMNS, RULES
from dashboard.views.help import column, how_to_read, text_column

__all__ = ["mmrm_comparison_section"]


def mmrm_comparison_section(records: list[FitRecord]) -> None:
    """One table of MMRMs and random-effects models, the tests between nested structures
    and the notes on what is comparable."""
    st.subheader("MMRMs and random-effects models", help=help_text("mmrm_vs_lmm"))
    table = cm.criteria_table(records)
    st.dataframe(
        styled(table, RULES),
        key="compare_mmrm_criteria",
        column_order=[  # numbers first, the long formula last (a 1024 px screen)
            "kind",
            "npar",
            "AIC",
            "BIC",
            "delta_AIC",
            "logLik",
            "fitted by",
            "converged",
            "formula",
        ],  # fmt: skip
        column_config={
            "npar": LRT_COLUMNS["npar"],
            "logLik": LRT_COLUMNS["logLik"],
            "AIC": LRT_COLUMNS["AIC"],
            "BIC": LRT_COLUMNS["BIC"],
            "delta_AIC": DELTA_COLUMNS["delta_AIC"],
            "fitted by": text_column("reml_vs_ml", "fitted by"),
            "kind": text_column("visit_correlation", "kind"),
            "converged": text_column("convergence", "converged"),
        },
        placeholder=MISSING,
    )
    st.caption(
        "Each model as fitted (no refits): lower AIC and BIC are better, a delta under 2 is a "
        "tie. AIC between an MMRM and a random-effects model is comparable only with the same "
        "fixed effects under REML (or by ML), and a likelihood-ratio test between two models "
        "only where one is a special case of the other."
    )
    for note in cm.comparison_notes(records):
        st.info(note)
    tests = cm.structure_tests(records)
    st.markdown(
        "**Likelihood-ratio tests between nested structures**", help=help_text("mmrm_vs_lmm")
    )
    if tests.empty:
        st.caption(
            "No pair qualifies: a test needs two MMRMs with the same fixed effects, rows and "
            "method whose structures are nested (compound symmetry or AR(1) inside "
            "unstructured, AR(1) inside heterogeneous AR(1) or Toeplitz...)."
        )
    else:
        st.dataframe(
            styled(tests, RULES),
            hide_index=True,
            key="compare_mmrm_tests",
            column_config={
                "Chisq": LRT_COLUMNS["Chisq"],
                "Df": LRT_COLUMNS["Df"],
                "p": column("p_value", "p"),
            },
            placeholder=MISSING,
        )
        st.caption(
            "Chisq is twice the gain in log-likelihood of the larger structure, Df its added "
            "covariance parameters; under REML the test is valid because the fixed effects "
            "are the same."
        )
    how_to_read("mmrm_vs_lmm", "aic", "covariance_structure")
