"""Compare page: likelihood-ratio tests, AIC and BIC of two or more fitted models."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import cached, compare_view
from dashboard.fits import MODEL_PAGE, records_for_active_data, require_fit
from dashboard.state import Keys, init_state
from dashboard.widgets import dataset_caption, show_figure

P_FORMAT = "%.4g"
NUMBER = st.column_config.NumberColumn(format="%.2f")
LRT_COLUMNS = {
    "npar": st.column_config.NumberColumn("npar", format="%d"),
    "AIC": NUMBER,
    "BIC": NUMBER,
    "logLik": NUMBER,
    "deviance": NUMBER,
    "Chisq": st.column_config.NumberColumn("Chisq", format="%.4f"),
    "Df": st.column_config.NumberColumn("Df", format="%d"),
    "Pr(>Chisq)": st.column_config.NumberColumn("Pr(>Chisq)", format=P_FORMAT),
}


def _keep_selection() -> None:
    st.session_state[Keys.COMPARE_SELECTION] = list(st.session_state[Keys.W_COMPARE_PICK])


def choose_models(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The multiselect of models; new fits join the selection, removed ones leave it."""
    names = [r["name"] for r in records]
    known = set(st.session_state[Keys.COMPARE_KNOWN])
    stored = st.session_state[Keys.COMPARE_SELECTION]
    chosen = [n for n in stored if n in names] + [n for n in names if n not in known]
    if not known and not chosen:
        chosen = names
    st.session_state[Keys.COMPARE_SELECTION] = chosen
    st.session_state[Keys.COMPARE_KNOWN] = sorted(known | set(names))
    st.session_state[Keys.W_COMPARE_PICK] = chosen
    picked = st.multiselect(
        "Models to compare",
        names,
        key=Keys.W_COMPARE_PICK,
        on_change=_keep_selection,
        help="All fitted models of the active dataset are chosen at first.",
    )
    return [r for r in records if r["name"] in picked]


def show_not_comparable(comparison: compare_view.Comparison) -> None:
    """The warning and the criteria as fitted, without deltas or preferences."""
    st.warning(
        f"These models cannot be compared: {comparison.problem} AIC and BIC are comparable "
        "only between fits of the same observations, so neither the test nor the criteria "
        "below can pick a model."
    )
    table = comparison.criteria.drop(columns=["delta_AIC", "delta_BIC"])
    st.dataframe(table, column_config={"AIC": NUMBER, "BIC": NUMBER}, key="compare_as_fitted")
    st.caption("AIC and BIC of each model as fitted (not comparable across these models).")


def show_tests(comparison: compare_view.Comparison) -> None:
    """lme4's table, the refit note, and the consecutive tests with their validity."""
    st.subheader("Likelihood-ratio tests (lme4's anova table)")
    if comparison.refit_note:
        st.info(comparison.refit_note)
    st.dataframe(comparison.lrt_table, column_config=LRT_COLUMNS, key="compare_lrt")
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
            steps,
            hide_index=True,
            key="compare_steps",
            column_config={
                "Chisq": st.column_config.NumberColumn(format="%.4f"),
                "Df": st.column_config.NumberColumn(format="%d"),
                "p (chi-square)": st.column_config.NumberColumn(format=P_FORMAT),
                "p (chi-bar-square)": st.column_config.NumberColumn(format=P_FORMAT),
                "verdict": st.column_config.TextColumn(width="large"),
            },
        )
    if comparison.boundary_steps:
        tested = "; ".join(
            f"{s.smaller} vs {s.larger} adds the variance of "
            + ", ".join(v.replace(": ", " ") for v in s.boundary.added_variances)
            + (" and its correlation" if s.boundary.added_covariances else "")
            + f", chi-bar-square with df {s.boundary.mixture_df}"
            for s in comparison.boundary_steps
        )
        st.markdown(f"**Testing a variance on the boundary** ({tested}).")
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
        criteria,
        key="compare_criteria",
        column_config={
            "npar": st.column_config.NumberColumn(format="%d"),
            "AIC": NUMBER,
            "BIC": NUMBER,
            "delta_AIC": st.column_config.NumberColumn("delta AIC", format="%.2f"),
            "delta_BIC": st.column_config.NumberColumn("delta BIC", format="%.2f"),
        },
    )
    show_figure(compare_view.criteria_figure(comparison.criteria), key="compare_figure")
    st.caption(
        "AIC and BIC balance fit against complexity: lower is better, and only differences "
        "matter. delta is the distance from the best model: under 2 is a tie, 4 to 7 is "
        "moderate, above 10 is strong. BIC penalises extra parameters more than AIC, so it "
        "leans to simpler models. Unlike the test, they also compare models that are not "
        "nested."
    )
    st.subheader("Verdict")
    for sentence in compare_view.verdict_sentences(comparison):
        st.markdown(f"- {sentence}")


def main() -> None:
    """Render the Compare page."""
    init_state()
    st.title("Compare")
    st.caption(
        "Is the more complex model worth it? Compare fitted models with likelihood-ratio "
        "tests (for models where one is a special case of the other) and with AIC and BIC."
    )
    require_fit("The Compare page")
    st.markdown(dataset_caption())
    records = records_for_active_data()
    if len(records) < 2:
        st.info(
            "Comparing needs at least two fitted models of this dataset; there is "
            f"{len(records)}. Fit another one on the Model page, e.g. the same model with a "
            "random slope, or without it."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        st.stop()
    chosen = choose_models(records)
    if len(chosen) < 2:
        st.info("Choose at least two models above.")
        st.stop()
    key = tuple((r["name"], r["formula"], bool(r["reml"])) for r in chosen)
    comparison = cached.compare_models(st.session_state[Keys.DATA_KEY], key, tuple(chosen))
    if not comparison.comparable:
        show_not_comparable(comparison)
        return
    show_tests(comparison)
    show_criteria(comparison)


main()
