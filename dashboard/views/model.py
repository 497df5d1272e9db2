"""Render the summary of a fitted model on the Model page (Streamlit; numbers come from
:mod:`dashboard.analysis.model_summary`)."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis import model_summary as ms
from dashboard.analysis.mmrm_models import is_mmrm
from dashboard.analysis.records import FitRecord
from dashboard.analysis.time_shape import curve_terms
from dashboard.base.markup import code_span, escape_message
from dashboard.base.numbers import MISSING, fmt_criterion, styled
from dashboard.help.texts import help_text
from dashboard.views import inference as inference_view
from dashboard.views.glmm_summary import render_glmm_summary
from dashboard.views.help import column, how_to_read
from dashboard.views.mmrm import render_mmrm_summary
from lmm_core import LMMResult

__all__ = ["curve_sentence", "render_ols_section", "render_summary", "simpler_button"]

_RENDER = {"success": st.success, "warning": st.warning, "info": st.info}


def render_status(result: LMMResult) -> None:
    """Convergence, singular fit and data notes in plain words."""
    for status in ms.status_messages(result):
        _RENDER[status.level](status.text)
    for note in ms.data_notes(result):
        st.info(note)
    how_to_read("convergence", "singular_fit", label="What convergence and singular fits mean")


def simpler_button(result: LMMResult) -> str | None:
    """A button offering the simpler model of a singular fit; its formula when clicked."""
    simpler = ms.simpler_formula(result) if result.is_singular else None
    if simpler is None:
        return None
    clicked = st.button(
        f"Fit the simpler model: {simpler}",
        key="model_fit_simpler",
        type="primary",
        help="Fits the same fixed effects without the random-effects part estimated at zero.",
    )
    return simpler if clicked else None


def render_numbers(result: LMMResult) -> None:
    """Observations, groups and the fit criteria as metrics."""
    groups = ", ".join(f"{g}: {n:,} groups" for g, n in result.ngroups.items())
    cols = st.columns(5)
    cols[0].metric(
        "Observations", f"{result.nobs:,}", help=f"Groups: {groups}.\n\n{help_text('observations')}"
    )
    crit = "REML criterion" if result.reml else "Deviance (-2 logLik)"
    crit_key = "reml_criterion" if result.reml else "deviance"
    cols[1].metric(crit, fmt_criterion(result.objective), help=help_text(crit_key))
    cols[2].metric("logLik", fmt_criterion(result.loglik), help=help_text("loglik"))
    cols[3].metric("AIC", fmt_criterion(result.aic), help=help_text("aic"))
    cols[4].metric("BIC", fmt_criterion(result.bic), help=help_text("bic"))
    st.caption(
        f"{result.nobs:,} observations ({groups}). AIC and BIC weigh fit against the number "
        f"of parameters ({result.npar}); lower is better, but only between models fitted to "
        "the same rows (and, for REML fits, with the same fixed effects): compare models on "
        "the Compare page."
        + (
            ""
            if result.reml
            else " This is a maximum-likelihood (ML) fit: its variances are slightly too "
            "small, but its likelihood can compare models with different fixed effects."
        )
    )


def render_fixed(record: FitRecord) -> None:
    """The fixed-effects table with an explanation: estimates, df, p-values and confidence
    intervals with a choice of df method."""
    result: LMMResult = record.result
    st.markdown("**Fixed effects: the population-average trend**", help=help_text("fixed_effect"))
    inference_view.render_fixed_inference(record)
    st.caption(
        f"Each row is a coefficient of the average {result.response}: `(Intercept)` is the "
        "expected value when every covariate is 0 (and categories are at their reference "
        "level); a numeric column's row is the change per unit; a category's row is the "
        "difference from the reference level; `a:b` rows say how the effect of a changes "
        "with b. The standard error measures the uncertainty; a |t value| above about 2 "
        "suggests an effect that is unlikely to be chance."
    )
    spec = result.design.spec
    curves = curve_terms(spec)
    if curves:
        crossed = any(len(t) > 1 and set(t) & set(curves) for t in spec.fixed.terms)
        st.caption(curve_sentence(curves, crossed), help=help_text("natural_spline"))


def _named(labels: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` as code spans."""
    spans = [code_span(label) for label in labels]
    return spans[0] if len(spans) == 1 else ", ".join(spans[:-1]) + " and " + spans[-1]


def curve_sentence(curves: list[str], interactions: bool = False) -> str:
    """How to read the rows of spline and polynomial terms (they draw a curve together;
    ``interactions``: some of them interact with other columns)."""
    also = " (and of their interactions)" if interactions else ""
    return (
        f"**Curved time:** the rows of {_named(curves)}{also} are "
        "weights of a curve's building blocks, not changes per unit of time, so no single "
        "one means anything alone: read the curve itself on the **Trajectories** page, and "
        "test it as a whole by the F test of its term (all its rows together, R's "
        "`anova(fit)`), not by the t test of one row."
    )


def render_variances(result: LMMResult) -> None:
    """Variance components (SD) and correlations with an explanation."""
    st.markdown(
        "**Random effects: how much groups differ around that trend**",
        help=help_text("random_intercept") + "\n\n" + help_text("random_slope"),
    )
    st.dataframe(
        styled(ms.variance_table(result)),
        key="model_varcomp",
        hide_index=True,
        column_config={
            "Variance": column("re_variance"),
            "SD": st.column_config.NumberColumn(
                help=help_text("re_sd") + "\n\n" + help_text("residual_sd")
            ),
        },
        placeholder=MISSING,
    )
    corr = ms.correlation_table(result)
    if not corr.empty:
        st.dataframe(
            styled(corr, 3),
            key="model_corr",
            hide_index=True,
            column_config={"Correlation": column("re_correlation")},
            placeholder=MISSING,
        )
    st.caption(
        "The SD of a random intercept is how far a typical group's level lies from the "
        "average; the SD of a random slope is how much a typical group's rate of change "
        "differs from the average rate. About 95% of groups lie within 2 SD of the average. "
        "The residual SD is the scatter of single measurements around their group's own "
        "line. A correlation near +1 or -1 between intercept and slope means groups that "
        "start high tend to change faster (or slower)."
    )
    curves = curve_terms(result.design.spec, random=True)
    if curves:
        st.caption(
            f"**Random curves:** the SDs of {_named(curves)} say together how much the "
            "groups' own curves differ in shape from the average curve; like the fixed "
            "coefficients of a curve, they have no meaning one by one: the Trajectories page "
            "draws the groups' curves."
        )


def render_icc(result: LMMResult, subject: str | None, time: str | None) -> None:
    """The intraclass correlation in words."""
    st.markdown(
        "**Intraclass correlation (ICC): how alike measurements of one group are**",
        help=help_text("icc"),
    )
    for sentence in ms.icc_sentences(result, subject, time):
        st.markdown(sentence)


def render_summary(record: FitRecord, subject: str | None, time: str | None) -> str | None:
    """Everything about the active fit except the OLS comparison.

    Returns the simpler formula when the user asked to fit it (singular fits), else None.
    An MMRM (no random effects) has its own summary (:mod:`dashboard.views.mmrm`), a GLMM
    too (:mod:`dashboard.views.glmm_summary`).
    """
    if record.is_glmm:
        render_glmm_summary(record)
        return None
    if is_mmrm(record.result):
        render_mmrm_summary(record)
        return None
    result: LMMResult = record.result
    method = "REML" if record.reml else "ML"
    st.markdown(
        f"Formula {code_span(result.formula)}, estimated by {method} on "
        f"{escape_message(record.data_name)} "
        f"in {record.seconds:.2f} s."  # fixed: timing
    )
    render_status(result)
    simpler = simpler_button(result)
    render_numbers(result)
    render_fixed(record)
    render_variances(result)
    render_icc(result, subject, time)
    inference_view.render_variance_explained(result, time)
    inference_view.render_profile(record)
    inference_view.render_bootstrap(record)
    return simpler


def render_ols_section(result: LMMResult) -> None:
    """Ordinary regression (grouping ignored) against the mixed model: SEs, design effect."""
    with st.expander("Ordinary regression vs mixed model", expanded=False):
        table = ms.ols_comparison(result)
        st.dataframe(
            styled(table),
            key="model_ols",
            column_config={
                "Mixed estimate": column("estimate"),
                "OLS estimate": column("ols_vs_mixed"),
                "Mixed SE": column("std_error"),
                "OLS SE": column("ols_vs_mixed"),
                "Design effect": column("design_effect"),
            },
            placeholder=MISSING,
        )
        st.caption(
            "Ordinary least squares (OLS) fits the same fixed effects as if every row were an "
            "independent person. The design effect is (mixed SE / OLS SE)^2: how much the "
            "grouping inflates the variance of each estimate."
        )
        st.markdown(
            "Repeated measurements of one subject are alike, so they carry less information "
            "than the same number of independent people: for effects that differ *between* "
            "subjects (the intercept, treatment arm) the naive OLS standard errors are too "
            "small (design effect above 1) and give false confidence; for effects estimated "
            "*within* subjects (such as time, with every subject measured repeatedly) each "
            "subject serves as its own control, and the OLS standard errors may be too large "
            "(design effect below 1) unless subjects' slopes differ a lot."
        )
