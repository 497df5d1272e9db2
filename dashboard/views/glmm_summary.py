"""The Model page's summary of a GLMM fit (Streamlit; numbers from
:mod:`dashboard.analysis.glmm_summary`)."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.glmm_summary import fixed_table, random_sentences, random_table, ratio_name
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.base.numbers import MISSING, fmt_criterion, styled
from dashboard.help.texts import help_text
from dashboard.views.help import how_to_read

__all__ = ["render_glmm_summary"]

LEVEL = 0.95


def _seconds(seconds: float) -> str:
    """A fit's duration: ``0.15 s``, ``< 0.01 s`` (a fit found again in the cache)."""
    return "< 0.01 s" if seconds < 0.005 else f"{seconds:.2f} s"  # fixed: timing


def _status(result) -> None:
    if result.converged:
        st.success("The fit converged.")
    else:
        st.warning(
            "The fit did not converge: its numbers are not reliable. Try a simpler model "
            "(fewer random slopes) or rescale the covariates."
        )
    if result.is_singular:
        st.warning(
            "Singular fit: a variance of the random effects is estimated at (or near) zero, "
            "or a correlation at +-1. The model is more complex than the data support; "
            "consider dropping that random term."
        )
    for message in result.messages:
        st.info(escape_message(message))


def _numbers(record: FitRecord) -> None:
    result = record.result
    groups = ", ".join(f"{g}: {n:,} groups" for g, n in result.ngroups.items())
    cols = st.columns(4)
    cols[0].metric("Observations", f"{result.nobs:,}", help=f"Groups: {groups}.")
    cols[1].metric("logLik", fmt_criterion(result.loglik), help=help_text("loglik"))
    cols[2].metric("AIC", fmt_criterion(result.aic), help=help_text("aic"))
    cols[3].metric("BIC", fmt_criterion(result.bic), help=help_text("bic"))
    st.caption(
        f"{result.nobs:,} observations ({groups}), {result.npar} parameters, fitted by "
        f"{escape_message(record.method)}. AIC and BIC compare models of the same outcome "
        "fitted to the same rows; lower is better."
    )


def _fixed(result) -> None:
    name = ratio_name(result.link)
    st.markdown(
        "**Fixed effects: the typical patient's course**",
        help=help_text("odds_ratio" if result.link == "logit" else "rate_ratio")
        if name
        else help_text("fixed_effect"),
    )
    table = fixed_table(result, LEVEL)
    if name:  # the ratio's interval only (exp of the estimate's): the table fits 1024 px
        lo, hi = f"{LEVEL:.0%} CI lower", f"{LEVEL:.0%} CI upper"
        table = table.drop(columns=[lo, hi]).rename(
            columns={f"{name} lower": lo, f"{name} upper": hi}
        )
    st.dataframe(styled(table, {"p": "p"}, default=3), key="model_glmm_fixed", placeholder=MISSING)
    scale = {"logit": "log odds", "log": "log rate"}.get(result.link, f"{result.link} scale")
    text = (
        f"The estimates are on the {scale} scale: each is the change per unit of a covariate "
        "(or of a category against its reference) for one and the same patient. z and p are "
        "Wald tests (estimate / SE), as glmer's summary."
    )
    if name:
        what = "odds" if name == "Odds ratio" else "expected count (rate)"
        text += (
            f" **{name}s** (exp of the estimates) are what a clinician reads: how many times "
            f"the {what} {'are' if what == 'odds' else 'is'} multiplied, 1 meaning no effect, "
            f"with their {LEVEL:.0%} confidence interval (exp of the estimate's Wald "
            "interval). The `(Intercept)` row's exp is the "
            f"{'odds' if name == 'Odds ratio' else 'rate'} of a patient at the reference, "
            "not a ratio."
        )
    st.caption(text)


def _random(result) -> None:
    scale = {"logit": "log-odds", "log": "log-rate"}.get(result.link, f"{result.link} link")
    st.markdown(
        f"**Random effects: how much patients differ (on the {scale} scale)**",
        help=help_text("random_intercept"),
    )
    table = random_table(result)
    if table["Correlation"].isna().all():  # one random effect per group: no correlation
        table = table.drop(columns="Correlation")
    st.dataframe(styled(table, 3), key="model_glmm_random", hide_index=True, placeholder=MISSING)
    for sentence in random_sentences(result):
        st.markdown(escape_message(sentence))
    st.caption(
        "There is no residual SD: for yes/no and count outcomes the spread around a "
        "patient's own probability or rate follows from the distribution itself."
    )


def render_glmm_summary(record: FitRecord) -> None:
    """The Model page's summary of a GLMM fit: status, criteria, fixed effects with odds or
    rate ratios, random-effects SDs in words."""
    result = record.result
    kind = {"binomial": "logistic (binomial)", "poisson": "Poisson"}.get(record.family, "")
    st.markdown(
        f"Formula {code_span(result.formula)}, a {escape_message(kind)} mixed model "
        f"({escape_message(result.link)} link), estimated by {escape_message(record.method)} "
        f"on {escape_message(record.data_name)} in {_seconds(record.seconds)}."
    )
    _status(result)
    _numbers(record)
    _fixed(result)
    _random(result)
    how_to_read(
        "family_binomial" if record.family == "binomial" else "family_poisson",
        "glmm_curves",
        "laplace_quadrature",
        label="How to read a GLMM",
    )
