"""Compare page: likelihood-ratio tests, AIC and BIC of fitted models; the random-effects ladder.

The page draws the fitted models' comparison; the sections "Does the curve earn its keep?"
and "Random-effects ladder" are drawn by :mod:`dashboard.views.compare_curves` and
:mod:`dashboard.views.compare_ladder` (their tables' formats in
:mod:`dashboard.views.compare_shared`).
"""

from __future__ import annotations

import streamlit as st

from dashboard.analysis import compare as compare_view
from dashboard.analysis.chart_text import criteria_sentence
from dashboard.analysis.compare_glmm import is_glmm
from dashboard.analysis.mmrm_models import is_mmrm
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import escape_message, plain_name
from dashboard.base.numbers import MISSING, styled
from dashboard.help.texts import help_text
from dashboard.state import cached
from dashboard.state.fits import (
    MODEL_PAGE,
    active_record,
    records_for_active_data,
    same_model_groups,
)
from dashboard.state.session import Keys, init_state, persistent_widget
from dashboard.views.compare_curves import curve_section
from dashboard.views.compare_glmm import glmm_comparison_section, glmm_quadrature_section
from dashboard.views.compare_ladder import ladder_section
from dashboard.views.compare_mmrm import mmrm_comparison_section
from dashboard.views.compare_shared import DELTA_COLUMNS, LRT_COLUMNS, RULES
from dashboard.views.help import column, text_column
from dashboard.views.widgets import dataset_caption, show_figure

P_CHIBAR_HELP = help_text("chibar")


# --------------------------------------------------------------------------- fitted models
def choose_models(records: list[FitRecord]) -> list[FitRecord]:
    """The multiselect of models; new fits join the selection, removed ones leave it."""
    names = [r.name for r in records]
    known = set(st.session_state[Keys.COMPARE_KNOWN])
    stored = st.session_state[Keys.COMPARE_SELECTION]
    chosen = [n for n in stored if n in names] + [n for n in names if n not in known]
    if not known and not chosen:
        chosen = names
    st.session_state[Keys.COMPARE_SELECTION] = chosen
    st.session_state[Keys.COMPARE_KNOWN] = sorted(known | set(names))
    picked = st.multiselect(
        "Models to compare",
        names,
        **persistent_widget(
            Keys.W_COMPARE_PICK, st.session_state, Keys.COMPARE_SELECTION, chosen, options=names
        ),
        help="All fitted models of the active dataset are chosen at first.",
    )
    return [r for r in records if r.name in picked]


def show_not_comparable(comparison: compare_view.Comparison) -> None:
    """The warning and the criteria as fitted, without deltas or preferences."""
    st.warning(
        f"These models cannot be compared: {comparison.problem} AIC and BIC are comparable "
        "only between fits of the same observations, so neither the test nor the criteria "
        "below can pick a model."
    )
    table = comparison.criteria.drop(columns=["delta_AIC", "delta_BIC"])
    st.dataframe(
        styled(table, RULES),
        column_config={
            "AIC": LRT_COLUMNS["AIC"],
            "BIC": LRT_COLUMNS["BIC"],
            "npar": LRT_COLUMNS["npar"],
            "method": text_column("reml_vs_ml", "method"),
        },
        key="compare_as_fitted",
        placeholder=MISSING,
    )
    st.caption("AIC and BIC of each model as fitted (not comparable across these models).")


def show_tests(comparison: compare_view.Comparison) -> None:
    """lme4's table, the refit note, and the consecutive tests with their validity."""
    st.subheader("Likelihood-ratio tests (lme4's anova table)")
    if comparison.refit_note:
        st.info(comparison.refit_note)
    st.dataframe(
        styled(comparison.lrt_table, RULES),
        column_config=LRT_COLUMNS,
        key="compare_lrt",
        placeholder=MISSING,
    )
    st.caption(
        "Models are ordered by their number of parameters (npar). Each row is tested against "
        "the row above it: Chisq is twice the gain in log-likelihood, Df the number of added "
        "parameters, Pr(>Chisq) the p-value. A small p-value (below 0.05) says the extra "
        "parameters improve the fit by more than chance would."
    )
    for step in comparison.not_nested:
        st.warning(
            f"{step.smaller} and {step.larger} are not nested. {step.reason} The "
            "likelihood-ratio test between them is not valid: compare them by AIC and BIC only."
        )
    same = [s for s in comparison.steps if s.df == 0]
    if same:
        pairs = "; ".join(f"{s.smaller} and {s.larger}" for s in same)
        st.info(
            f"Same number of parameters, so no likelihood-ratio test: {pairs}. Models with "
            "the same formula are the same model; otherwise compare them by AIC and BIC."
        )
    steps = compare_view.steps_frame(comparison)
    if len(steps):
        st.dataframe(
            styled(steps, RULES),
            hide_index=True,
            key="compare_steps",
            column_config={
                "Chisq": LRT_COLUMNS["Chisq"],
                "Df": LRT_COLUMNS["Df"],
                "p (chi-square)": column("p_value", "p (chi-square)"),
                "p (chi-bar-square)": column("chibar", "p (chi-bar-square)"),
                "nested": st.column_config.TextColumn(
                    help="Is the smaller model a special case of the larger one? Only then "
                    "is the likelihood-ratio test valid."
                ),
                "verdict": st.column_config.TextColumn(),
            },
            placeholder=MISSING,
        )
    if comparison.boundary_steps:
        tested = "; ".join(
            f"{s.smaller} vs {s.larger} adds the variance of "
            + ", ".join(plain_name(v).replace(": ", " ") for v in s.boundary.added_variances)
            + (" and its correlation" if s.boundary.added_covariances else "")
            + f", chi-bar-square with df {s.boundary.mixture_df}"
            for s in comparison.boundary_steps
        )
        st.markdown(f"**Testing a variance on the boundary** ({tested}).", help=P_CHIBAR_HELP)
        st.caption(compare_view.CHIBAR_EXPLANATION)
    elif any(s.boundary.on_boundary for s in comparison.steps if s.nested):
        st.caption(
            "Some tests add several variances at once: their chi-square p-values are too large "
            "(cautious), and no simple correction applies."
        )


def show_criteria(comparison: compare_view.Comparison) -> None:
    """AIC/BIC table with deltas, the figure and the verdicts."""
    st.subheader("Information criteria: AIC and BIC")
    criteria = comparison.criteria.rename(columns={"method": "fitted by"})
    st.dataframe(
        styled(criteria, RULES),
        key="compare_criteria",
        column_order=[  # numbers first, the long formula last (a 1024 px screen)
            c
            for c in dict.fromkeys(
                ["npar", "AIC", "BIC", "delta_AIC", "delta_BIC", "fitted by", *criteria.columns]
            )
            if c in criteria.columns
        ],
        column_config={
            "npar": LRT_COLUMNS["npar"],
            "AIC": LRT_COLUMNS["AIC"],
            "BIC": LRT_COLUMNS["BIC"],
            "fitted by": text_column("reml_vs_ml", "fitted by"),
            **DELTA_COLUMNS,
        },
        placeholder=MISSING,
    )
    show_figure(
        compare_view.criteria_figure(comparison.criteria),
        key="compare_figure",
        description=criteria_sentence(comparison.criteria),
    )
    st.caption(
        "AIC and BIC balance fit against complexity: lower is better, and only differences "
        "matter. delta is the distance from the best model: under 2 is a tie, 4 to 7 is "
        "moderate, above 10 is strong. BIC penalises extra parameters more than AIC, so it "
        "leans to simpler models. Unlike the test, they also compare models that are not "
        "nested."
    )
    st.subheader("Verdict")
    for sentence in compare_view.verdict_sentences(comparison):
        st.markdown(
            f"- {sentence}",
            help="delta = how much higher the next best model's criterion is; p-values from "
            "the likelihood-ratio tests above (chi-bar-square where a variance is tested).",
        )


def fitted_models_section() -> None:
    """Compare the fitted models of the active dataset (guidance when there are too few)."""
    st.header("Fitted models")
    records = records_for_active_data()
    if not records:
        st.info(
            "Comparing shows fitted models. Fit one on the Model page first "
            f"(the active dataset is {st.session_state[Keys.DATA_NAME]}), or fit the "
            "random-effects ladder below."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        return
    if len(records) < 2:
        st.info(
            "Comparing needs at least two fitted models of this dataset; there is "
            f"{len(records)}. Fit another one on the Model page, e.g. the same model with a "
            "random slope, or without it, or fit the random-effects ladder below."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        return
    chosen = choose_models(records)
    if len(chosen) < 2:
        st.info("Choose at least two models above.")
        return
    linear = glmm_comparison_section(chosen)  # GLMMs apart; the rest compared below
    if len(linear) < 2:
        return
    if len(linear) < len(chosen):
        st.subheader("Linear mixed models")
    compare_linear(linear)


def compare_linear(chosen: list[FitRecord]) -> None:
    """Compare two or more linear mixed models or MMRMs (Gaussian outcomes)."""
    for names in same_model_groups(chosen):
        st.info(
            f"{' and '.join(escape_message(n) for n in names)} are the same model, fitted by "
            "REML and by ML: after the ML refits below they tie. Keep one of them to compare "
            "different models."
        )
    if any(is_mmrm(r.result) for r in chosen):  # no ML refits: the models as fitted
        mmrm_comparison_section(chosen)
        return
    key = tuple((r.name, r.formula, bool(r.reml)) for r in chosen)
    comparison = cached.compare_models(st.session_state[Keys.DATA_KEY], key, tuple(chosen))
    if not comparison.comparable:
        show_not_comparable(comparison)
        return
    show_tests(comparison)
    show_criteria(comparison)


def main() -> None:
    """Render the Compare page."""
    init_state()
    st.title("Compare")
    st.caption(
        "Is the more complex model worth it? Compare fitted models with likelihood-ratio "
        "tests (for models where one is a special case of the other) and with AIC and BIC, "
        "test whether time needs a curve, or fit the random-effects ladder."
    )
    st.markdown(dataset_caption())
    fitted_models_section()
    active = active_record()
    if active is not None and is_glmm(active.result):
        st.divider()
        glmm_quadrature_section(active)
    st.divider()
    curve_section()
    st.divider()
    ladder_section()


main()
