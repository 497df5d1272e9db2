"""Trial page sections: a randomized study with scheduled visits analysed by an MMRM.

The arm chosen by the user, the drop-out pattern (no fit needed), then on request the MMRM
fitted with every covariance structure as a job of the runner
(:func:`dashboard.state.work.trial_structures`): the comparison table and the verdict of the
analysis plan's fallback, the coefficients of the primary model, and the correlation between
visits it estimates beside the observed one. The logic is in :mod:`dashboard.analysis.trial`,
the figures in :mod:`dashboard.figures.trial`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard.analysis import trial as tr
from dashboard.analysis.chart_text import difference_sentence, lsmeans_sentence
from dashboard.base.markup import code_span, escape_message, escape_text
from dashboard.base.numbers import MISSING, styled
from dashboard.figures.trial import (
    correlation_pair,
    difference_forest,
    dropout_figure,
    lsmeans_figure,
    pattern_figure,
)
from dashboard.help.texts import help_text
from dashboard.io.roles import Roles
from dashboard.state import work
from dashboard.state.isolation import in_child
from dashboard.state.session import Keys, current_data, current_roles, persistent_widget
from dashboard.views import jobs as jobs_view
from dashboard.views.help import column, how_to_read, text_column
from dashboard.views.widgets import DATA_PAGE, show_figure
from lmm_core import LMMError

__all__ = [
    "TRIAL",
    "choose_arm",
    "dropout_section",
    "results_section",
]

TRIAL = "trial"  # job kind

TABLE_ROW_PX = 35  # st.dataframe's row height: tables shown whole, without a scroll bar
RULES: dict[str, int | str] = {
    **dict.fromkeys(["AIC", "BIC", "logLik"], "criterion"),
    "parameters": "int",
    "seconds": 2,
}
TABLE_COLUMNS = {
    "structure": text_column("covariance_structure", "structure", width="large"),
    "term": st.column_config.TextColumn("term", help="The structure's name in the formula."),
    "parameters": column("parameters", "parameters"),
    "logLik": column("loglik", "logLik"),
    "AIC": column("aic", "AIC"),
    "BIC": column("bic", "BIC"),
    "converged": text_column("convergence", "converged"),
    "seconds": st.column_config.NumberColumn("seconds", help="Time taken by this fit."),
}


@dataclass(frozen=True)
class StoredTrial:
    """The fits of one trial analysis and what they were fitted for."""

    settings: tuple
    fits: tuple


def _kept(key: str, name: str, default: str, options: list) -> dict:
    """Widget ``key`` whose value lasts in the Trial settings under ``name``."""
    store = st.session_state[Keys.TRIAL_SETTINGS]
    return persistent_widget(key, store, name, default, options=options)


def choose_arm(data: pd.DataFrame, roles: Roles) -> str | None:
    """The arm selectbox (two-level columns, one named like an arm first); ``None`` with a
    message when the data have no such column."""
    options = tr.arm_candidates(data, roles)
    if not options:
        st.info(
            "The Trial page compares two arms, but no column has exactly two values. Load a "
            "trial with a treatment column (e.g. the example trial_visits) on the Data page."
        )
        st.page_link(DATA_PAGE, label="Go to the Data page")
        return None
    return st.selectbox(
        "Arm (treatment) column",
        options,
        **_kept(Keys.W_TRIAL_ARM, "arm", options[0], options),
        help="A column with two values: the first in sort order is the reference (control).",
    )


def plan_or_message(data: pd.DataFrame, roles: Roles, arm: str) -> tr.TrialPlan | None:
    """:func:`dashboard.analysis.trial.plan_trial`, or its message and a link to Data."""
    try:
        return tr.plan_trial(data, roles, arm)
    except LMMError as error:
        st.info(escape_message(str(error)))
        st.page_link(DATA_PAGE, label="Go to the Data page")
        return None


def dropout_section(plan: tr.TrialPlan) -> None:
    """Who is seen at which visit, per arm: bars and sentences."""
    st.header("Drop-out", help=help_text("dropout"))
    per_visit, per_arm = tr.dropout_summary(plan)
    for sentence in tr.dropout_sentences(plan, per_arm):
        st.markdown(f"- {escape_text(sentence)}")
    show_figure(dropout_figure(per_visit, plan.visit), key="trial_dropout")
    cells, counts = tr.visit_patterns(plan)
    st.markdown(f"- {escape_text(tr.pattern_sentence(counts))}")
    show_figure(pattern_figure(cells, counts, plan.visit), key="trial_patterns")
    st.caption(
        "An MMRM uses every visit a patient has: a patient who leaves early still counts "
        "until then. Its estimates are unbiased when leaving depends only on what was "
        "observed before (missing at random), not on the unseen values."
    )


def _start(plan: tr.TrialPlan, settings: tuple) -> None:
    data_key = st.session_state[Keys.DATA_KEY]

    def store(fits: list[tr.StructureFit]) -> str:
        st.session_state[Keys.TRIAL_RESULTS] = {
            **st.session_state[Keys.TRIAL_RESULTS],
            data_key: StoredTrial(settings, tuple(fits)),
        }
        return f"{sum(f.ok for f in fits)} of {len(fits)} covariance structures fitted"

    jobs_view.launch(
        (TRIAL, *settings),
        in_child(work.trial_structures, plan),
        kind=TRIAL,
        label=f"Fitting the MMRM with {len(tr.STRUCTURES)} covariance structures",
        store=store,
    )


def _comparison(fits: tuple) -> None:
    st.subheader("Covariance structures compared")
    st.dataframe(
        styled(tr.comparison_table(fits), RULES),
        hide_index=True,
        key="trial_structures",
        column_config=TABLE_COLUMNS,
        column_order=[*TABLE_COLUMNS][1:] + ["structure"],  # the long names last (1024 px)
        placeholder=MISSING,
    )
    for f in fits:
        if f.result is None:
            st.warning(f"{tr.STRUCTURES[f.structure]} ({f.structure}): {escape_message(f.error)}")
    st.markdown("**Verdict**", help=help_text("sap_fallback"))
    for sentence in tr.verdict(fits):
        st.markdown(f"- {escape_text(sentence)}")
    st.caption(
        "Every structure is fitted by REML with the same fixed effects, so their AIC and BIC "
        "compare (lower is better; parameters counts the covariance parameters, BIC uses the "
        "number of patients)."
    )


def _coefficients(primary: tr.StructureFit) -> None:
    st.subheader("Coefficients of the primary model")
    st.markdown(code_span(primary.formula))
    table = primary.result.fixef_table("satterthwaite").reset_index()
    st.dataframe(
        styled(table, {"df": 3, "p_value": "p"}),
        key="trial_coefficients",
        hide_index=True,
        height=TABLE_ROW_PX * (len(table) + 1) + 3,
        column_config={
            "term": st.column_config.TextColumn("term", width="medium"),
            "estimate": column("estimate"),
            **_test_columns(),
        },
        placeholder=MISSING,
    )
    st.caption(
        "REML estimates, model-based standard errors and Satterthwaite df. With treatment "
        "contrasts, the arm row is the difference between the arms at the first visit and "
        "each arm:visit row how much that difference changes at a later visit."
    )


def _test_columns() -> dict:
    """Column settings of an estimate's SE, df, t, p and 95% interval."""
    return {
        "std_error": column("std_error", "SE"),
        "df": column("df_satterthwaite", "df"),
        "t_value": column("t_value", "t"),
        "p_value": column("p_value", "p"),
        "ci_lower": column("confidence_interval", "95% low"),
        "ci_upper": column("confidence_interval", "95% high"),
    }


def _lsmeans(plan: tr.TrialPlan, primary: tr.StructureFit) -> None:
    st.subheader("LS-means and the treatment effect per visit")
    means = tr.arm_lsmeans(plan, primary.result)
    show_figure(
        lsmeans_figure(means, plan.visit, plan.arm, plan.outcome),
        key="trial_lsmeans",
        description=lsmeans_sentence(means, plan.visit, plan.arm, plan.outcome),
    )
    diff = tr.treatment_differences(plan, primary.result)
    show_figure(
        difference_forest(diff, plan.visit, plan.outcome),
        key="trial_forest",
        description=difference_sentence(diff, plan.visit, plan.outcome),
    )
    st.dataframe(
        styled(diff, {"df": 3, "p_value": "p"}),
        hide_index=True,
        key="trial_differences",
        column_config={
            "estimate": column("estimate", "difference"),
            **_test_columns(),
        },
        placeholder=MISSING,
    )
    st.caption(
        "LS-means are the model's mean of each arm at each visit, with the covariates at "
        "their average (and equal weights over the levels of other factors), as emmeans and "
        "SAS's LSMEANS give them. The difference at the last visit is usually the trial's "
        "primary result; p-values are not adjusted for looking at several visits."
    )


def _covariance(plan: tr.TrialPlan, fits: tuple, primary: tr.StructureFit) -> None:
    st.subheader("Correlation between visits")
    fitted = [f for f in fits if f.ok]
    names = [f.structure for f in fitted]
    shown = st.selectbox(
        "Structure shown",
        names,
        **_kept(Keys.W_TRIAL_SHOWN, "shown", primary.structure, names),
        format_func=lambda s: f"{tr.STRUCTURES[s]} ({s})",
        help=help_text("covariance_structure"),
    )
    fit = fitted[names.index(shown)]
    observed, pairs = tr.observed_correlation(plan)
    model = fit.result.residual_correlation()
    title = f"Estimated: {tr.STRUCTURES[shown]}"
    show_figure(correlation_pair(model, observed, pairs, title, plan.visit), key="trial_corr")
    sd = pd.DataFrame(
        {
            "SD (model)": pd.Series(
                fit.result.residual_covariance().to_numpy().diagonal() ** 0.5, index=model.index
            ),
            "patients seen": pd.Series(pairs.to_numpy().diagonal(), index=model.index),
        }
    )
    sd.index.name = plan.visit
    st.dataframe(styled(sd.T, 3), key="trial_sd", placeholder=MISSING)
    st.caption(
        "Left: the correlation between a patient's visits that the structure estimates; "
        "right: the correlation observed between the residuals of an ordinary regression with "
        "the same fixed effects, using the patients seen at both visits. A good structure "
        "reproduces the pattern on the right (close visits more alike than distant ones, "
        "say); the SD row is the spread of the outcome at each visit after the fixed effects."
    )


def results_section(plan: tr.TrialPlan) -> None:
    """The button that fits the structures, its progress, then the fitted results."""
    st.header("MMRM: one model, several covariance structures", help=help_text("mmrm"))
    st.markdown(code_span(plan.formula("<cov>")))
    st.caption(
        f"<cov> is each of {', '.join(tr.STRUCTURES)}; {plan.visit} is a factor (one mean per "
        "arm and visit) and the patients' visits share the covariance structure."
    )
    data_key = st.session_state[Keys.DATA_KEY]
    settings = (data_key, plan.arm, plan.formula("us"))
    if st.button("Fit the covariance structures", key=Keys.W_TRIAL_RUN, type="primary"):
        _start(plan, settings)
    jobs_view.show_notice(TRIAL)
    if jobs_view.show_progress((TRIAL, *settings)):
        return
    stored = st.session_state[Keys.TRIAL_RESULTS].get(data_key)
    if stored is None:
        return
    if stored.settings != settings:
        st.info("The structures were fitted for other roles or another arm: fit them again.")
        return
    _comparison(stored.fits)
    primary = tr.primary_structure(stored.fits)
    if primary is None:
        return
    _lsmeans(plan, primary)
    _coefficients(primary)
    _covariance(plan, stored.fits, primary)
    how_to_read("mmrm", "covariance_structure", "sap_fallback", "aic", "bic")


def trial_page() -> None:
    """The Trial page below its title."""
    data, roles = current_data(), current_roles()
    arm = choose_arm(data, roles)
    if arm is None:
        return
    plan = plan_or_message(data, roles, arm)
    if plan is None:
        return
    if plan.dropped:
        st.caption(f"{plan.dropped:,} rows with a missing value are left out.")
    dropout_section(plan)
    st.divider()
    results_section(plan)
