"""What the general pages show for an MMRM (a covariance structure of the visits, no random
effects): its summary on the Model page, its diagnostics, and the one sentence of the pages
that need random effects. Numbers from :mod:`dashboard.analysis.mmrm_diagnostics`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.analysis import mmrm_diagnostics as md
from dashboard.analysis.chart_text import qq_sentence, residual_sentence
from dashboard.analysis.mmrm_models import NEEDS_RANDOM_EFFECTS, structure_label
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.base.numbers import MISSING, fmt, fmt_criterion, styled
from dashboard.figures import mmrm_diagnostics as fm
from dashboard.help.texts import help_text
from dashboard.views.help import column, how_to_read
from dashboard.views.widgets import show_figure
from lmm_core import LMMError

__all__ = [
    "needs_random_effects",
    "normalized_outliers",
    "render_mmrm_diagnostics",
    "render_mmrm_summary",
]

DF_METHODS = {
    "Satterthwaite": "satterthwaite",
    "Kenward-Roger": "kenward-roger",
    "Residual (n - p)": "residual",
}
CHANCE = 0.0027  # P(|Z| > 3) for a standard normal


def needs_random_effects(page: str) -> None:
    """The page's one sentence about an MMRM (see
    :data:`dashboard.analysis.mmrm_models.NEEDS_RANDOM_EFFECTS`)."""
    st.info(NEEDS_RANDOM_EFFECTS[page], icon=":material/info:")


def _structure(result) -> str:
    spec = result.design.spec.residual
    return structure_label(spec.structure)


# --------------------------------------------------------------------------- Model page
def _numbers(result) -> None:
    cols = st.columns(5)
    cols[0].metric(
        "Observations",
        f"{result.nobs:,}",
        help=f"{result.n_subjects:,} patients.\n\n{help_text('observations')}",
    )
    crit, key = ("REML criterion", "reml_criterion") if result.reml else ("Deviance", "deviance")
    cols[1].metric(crit, fmt_criterion(result.objective), help=help_text(key))
    cols[2].metric("logLik", fmt_criterion(result.loglik), help=help_text("loglik"))
    cols[3].metric("AIC", fmt_criterion(result.aic), help=help_text("aic"))
    cols[4].metric("BIC", fmt_criterion(result.bic), help=help_text("bic"))
    st.caption(
        f"{result.nobs:,} observations of {result.n_subjects:,} patients. AIC and BIC as "
        f"mmrm counts them: the {result.npar} covariance parameters only, and BIC with the "
        "log of the number of patients (the Compare page counts the fixed effects too, as "
        "lme4 does, to set these models beside random-effects ones)."
    )


def _fixed(result) -> None:
    st.markdown("**Fixed effects: the population means**", help=help_text("fixed_effect"))
    label = st.radio(
        "Degrees of freedom",
        list(DF_METHODS),
        horizontal=True,
        key="model_mmrm_df",
        help=help_text("df_satterthwaite") + "\n\n" + help_text("df_kenward_roger"),
    )
    try:
        table = result.fixef_table(df_method=DF_METHODS[label])
    except (LMMError, np.linalg.LinAlgError) as err:
        st.warning(f"No {label} table for this fit: {escape_message(str(err))}")
        return
    st.dataframe(
        styled(table),
        key="model_mmrm_fixef",
        column_config={
            "estimate": column("estimate"),
            "std_error": column("std_error"),
            "p_value": column("p_value"),
        },
        placeholder=MISSING,
    )
    st.caption(
        "As mmrm reports them: model-based standard errors (Kenward-Roger adjusts them for "
        "the estimated covariance), t tests with the chosen degrees of freedom."
    )


def _covariance(result) -> None:
    st.markdown(
        f"**Covariance between visits: {escape_message(_structure(result))}**",
        help=help_text("covariance_structure"),
    )
    cov = result.residual_covariance()
    frames = cov if isinstance(cov, dict) else {"": cov}
    for group, frame in frames.items():
        sd = pd.Series(np.sqrt(np.diag(frame.to_numpy(float))), index=frame.index)
        corr = frame / np.outer(sd, sd)
        shown = corr.copy()
        shown.insert(0, "SD", sd)
        shown.index = [str(v) for v in shown.index]
        shown.columns = [str(c) for c in shown.columns]
        if group:
            st.caption(f"Group {escape_message(str(group))}")
        st.dataframe(styled(shown, 3), key=f"model_mmrm_cov_{group}", placeholder=MISSING)
    st.caption(
        "SD: the spread of the outcome at each visit around the population mean; the other "
        "columns: the correlation between two visits of one patient, in the shape the "
        "structure allows. The Diagnostics page sets it beside the data's."
    )


def render_mmrm_summary(record: FitRecord) -> None:
    """The Model page's summary of an MMRM fit."""
    result = record.result
    st.markdown(
        f"Formula {code_span(result.formula)}, an MMRM ({escape_message(_structure(result))} "
        f"covariance of the visits, no random effects), estimated by {record.method} on "
        f"{escape_message(record.data_name)} in {record.seconds:.2f} s."  # fixed: timing
    )
    if result.converged:
        st.success("The fit converged.")
    else:
        st.warning(
            "The fit did not converge: its numbers are not reliable. Try a simpler structure "
            "(e.g. AR(1) or compound symmetry instead of unstructured)."
        )
    for message in result.messages:
        st.info(escape_message(message))
    _numbers(result)
    _fixed(result)
    _covariance(result)
    how_to_read("mmrm", "covariance_structure", "visit_correlation")


# --------------------------------------------------------------------------- Diagnostics
def _residual_plots(frame: pd.DataFrame, outcome: str) -> None:
    left, right = st.columns(2)
    with left:
        show_figure(
            fm.residuals_vs_fitted_figure(frame, outcome),
            key="diag_mmrm_resid",
            description=residual_sentence(frame["fitted"], frame["residual"], "raw residuals"),
        )
        st.caption(
            "Raw residuals y - Xb against the population mean: no trend (the smoother flat at "
            "0) and a similar spread everywhere."
        )
    with right:
        show_figure(
            fm.normalized_qq_figure(frame),
            key="diag_mmrm_qq",
            description=qq_sentence(frame["normalized"].to_numpy(), "normalized residuals"),
        )
        st.caption(
            "Normalized residuals L_i^-1 r_i: each patient's residuals with the model's "
            "correlation and visit variances taken out, the right residuals to check for "
            "normality in a model with correlated visits (the raw ones are correlated).",
            help=help_text("normalized_residual"),
        )


def normalized_outliers(frame: pd.DataFrame, key: str) -> None:
    """How many normalized residuals lie beyond 3 (against the ``CHANCE`` share expected),
    and the 20 largest with their patient and visit."""
    big = frame.loc[frame["normalized"].abs() > 3]
    st.markdown(
        f"**{len(big):,} normalized residuals beyond 3** (by chance about "
        f"{fmt(CHANCE * len(frame), 2)} of {len(frame):,} would be).",
        help=help_text("normalized_residual"),
    )
    if big.empty:
        return
    big = big.reindex(big["normalized"].abs().sort_values(ascending=False).index).head(20)
    st.dataframe(
        styled(big[["subject", "visit", "fitted", "residual", "normalized"]], 3),
        hide_index=True,
        key=key,
        placeholder=MISSING,
    )


def _correlation(result, visit: str) -> None:
    st.subheader("Correlation between visits: model vs data")
    corr = md.visit_correlations(result)
    st.metric(
        "Largest gap, model vs data",
        fmt(corr.largest_gap(), 2),
        help="The largest difference between the structure's correlation and the residuals' "
        "observed correlation over all pairs of visits.",
    )
    fig = fm.visit_correlation_figure(corr.model, corr.observed, corr.pairs, visit)
    show_figure(fig, key="diag_mmrm_corr")
    group = f" (group {escape_message(str(corr.group))})" if corr.group is not None else ""
    st.caption(
        f"Left: the correlation the fitted {escape_message(_structure(result))} structure "
        f"gives{group}. Right: the correlation across patients of the residuals y - Xb at "
        f"each pair of visits, from the patients seen at both (fewer than {md.MIN_PAIRS}: "
        "blank). If the structure fits, the two look alike."
    )


def render_mmrm_diagnostics(record: FitRecord, data: pd.DataFrame) -> None:
    """The Diagnostics page for an MMRM: residual plots, outliers, correlation heatmaps
    (``data``: the data the model was fitted to)."""
    result = record.result
    visit = result.design.spec.residual.visit.name
    st.markdown(
        f"{code_span(record.formula)} ({record.method}), {result.nobs:,} observations of "
        f"{result.n_subjects:,} patients: an MMRM ({escape_message(_structure(result))} "
        "covariance of the visits). It has no random effects, so there are no random-effect "
        "QQ plots or per-patient estimates; its residuals are checked after taking out the "
        "modelled correlation."
    )
    try:
        frame = md.mmrm_residuals(result, data)
    except LMMError as err:
        st.info(escape_message(str(err)))
        return
    _residual_plots(frame, result.response)
    normalized_outliers(frame, "diag_mmrm_outliers")
    _correlation(result, visit)
    how_to_read("normalized_residual", "covariance_structure")
