"""The Diagnostics page for a GLMM (binomial or Poisson mixed model): binned residuals
(binomial), randomized quantile residuals with their seed, the dispersion check (counts) and
the normal QQ plots of the random effects (numbers from
:mod:`dashboard.analysis.glmm_diagnostics`, figures from
:mod:`dashboard.figures.glmm_diagnostics`)."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis import chart_text as ct
from dashboard.analysis import glmm_diagnostics as gd
from dashboard.analysis.compare_glmm import family_label
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.base.numbers import fmt
from dashboard.figures import diagnostics as fd
from dashboard.figures import glmm_diagnostics as fg
from dashboard.help.texts import help_text
from dashboard.state.session import Keys, persistent_widget
from dashboard.views.help import how_to_read
from dashboard.views.widgets import show_figure

__all__ = ["render_glmm_diagnostics"]

MAX_SEED = 2**31 - 1


def _binned(outcome: gd.GLMMOutcome) -> None:
    st.subheader("Binned residuals", help=help_text("binned_residuals"))
    table = gd.binned_table(outcome)
    label = "fitted probability" if outcome.binary else "fitted proportion"
    show_figure(
        fg.binned_figure(table, label),
        key="diag_glmm_binned",
        description=ct.binned_sentence(table, label.removeprefix("fitted ")),
    )
    st.markdown(gd.binned_sentence(table))
    st.caption(
        "A 0/1 outcome's raw residuals form two bands and show nothing, so the rows are sorted "
        "by their fitted probability and cut into bins: each point is a bin's mean residual "
        "(observed share minus fitted probability). The grey band is 2 standard errors of "
        "that mean under the model. Good: points scattered inside the band around 0. A "
        "problem: a run of points outside it, or a curve (the model is off at those "
        "probabilities). The fitted probabilities include each subject's predicted effect, "
        "which is shrunk towards the average: a gentle upward tilt from left to right is "
        "expected in a mixed model and is not a misfit."
    )


def _seed_controls() -> int:
    def again() -> None:
        st.session_state[Keys.DIAG_QRES_SEED] = int(st.session_state[Keys.DIAG_QRES_SEED]) + 1

    left, right = st.columns([2, 1], vertical_alignment="bottom")
    seed = left.number_input(
        "Seed of the random draws",
        min_value=0,
        max_value=MAX_SEED,
        step=1,
        **persistent_widget(Keys.W_DIAG_QRES_SEED, st.session_state, Keys.DIAG_QRES_SEED, 1),
        help="Quantile residuals of a discrete outcome draw a uniform number per row: the "
        "same seed gives the same residuals.",
    )
    right.button(
        "Draw again",
        key=Keys.W_DIAG_QRES_AGAIN,
        on_click=again,
        help="New random draws (the next seed): a pattern that stays is real, one that "
        "moves was chance.",
    )
    return int(seed)


def _quantile(outcome: gd.GLMMOutcome) -> None:
    st.subheader("Randomized quantile residuals", help=help_text("quantile_residual"))
    seed = _seed_controls()
    table = gd.quantile_table(outcome, seed)
    counts = outcome.family == "poisson"
    x_label = "fitted count (log scale)" if counts else "fitted probability"
    left, right = st.columns(2)
    with left:
        show_figure(
            fg.quantile_qq_figure(table["residual"].to_numpy()),
            key="diag_glmm_qq",
            description=ct.qq_sentence(table["residual"].to_numpy(), "quantile residuals"),
        )
    with right:
        fig = fg.quantile_fitted_figure(table, x_label, log_x=counts)
        show_figure(
            fig,
            key="diag_glmm_qres_fitted",
            description=ct.residual_sentence(
                table["fitted"], table["residual"], "quantile residuals", sd=1.0
            ),
        )
    beyond = int((table["residual"].abs() > 2).sum())
    st.caption(
        "Each row's place in the model's distribution of its outcome, turned into a normal "
        "score; for a discrete outcome the place is drawn at random within the step of the "
        "distribution, so the residuals change with the seed (use Draw again). When the model "
        "is right they are standard normal: the QQ points follow the line y = x and the "
        f"smoother stays flat at 0. Here {beyond:,} of {len(table):,} lie beyond ±2 "
        f"(about {0.0455 * len(table):,.0f} would by chance)."
    )


def _dispersion(result, outcome: gd.GLMMOutcome) -> None:
    check = gd.dispersion(result, outcome)
    if check is None:
        return
    st.subheader("Overdispersion", help=help_text("overdispersion"))
    cols = st.columns(3)
    cols[0].metric("Dispersion ratio", fmt(check.ratio, 3), help=help_text("overdispersion"))
    cols[1].metric(
        "Pearson chi-square",
        fmt(check.chi2),
        help=f"On {check.df:,} degrees of freedom (observations minus the model's "
        "parameters).\n\n" + help_text("overdispersion"),
    )
    cols[2].metric(
        "p-value",
        f"{check.p_value:.3g}" if check.p_value >= 1e-4 else "< 0.0001",
        help="Upper-tail chi-square probability of the Pearson statistic: small when the "
        "counts vary more than the model allows.\n\n" + help_text("p_value"),
    )
    st.markdown(gd.dispersion_verdict(check))


def _ranef(result) -> None:
    st.subheader("Random effects", help=help_text("blup"))
    panels = fd.ranef_qq_panels(result)
    show_figure(fd.ranef_qq_figure(panels, "conditional modes"), key="diag_glmm_ranef")
    st.caption(
        "One panel per random effect: each point is one group's conditional mode (its "
        "predicted deviation from the typical group, on the link scale: log odds or log "
        "rate). The model assumes these are normal. Good: points near the line. A problem: "
        "a few points far off (unusual groups) or two clumps (a missing covariate). The modes "
        "are shrunk towards 0: judge the shape, not the scale."
    )


def render_glmm_diagnostics(record: FitRecord) -> None:
    """The Diagnostics page for a GLMM fit."""
    result = record.result
    outcome = gd.glmm_outcome(result)
    groups = ", ".join(f"{n:,} levels of {escape_message(g)}" for g, n in result.ngroups.items())
    st.markdown(
        f"{code_span(record.formula)}: a {family_label(result)} mixed model (GLMM), "
        f"{result.nobs:,} observations of {groups}. Its outcome is "
        + ("0/1" if outcome.binary else "a count" if outcome.family == "poisson" else "a share")
        + ", so the residual checks of a linear model do not apply; these do."
    )
    if outcome.family == "binomial":
        _binned(outcome)
    _quantile(outcome)
    _dispersion(result, outcome)
    _ranef(result)
    how_to_read("binned_residuals", "quantile_residual", "overdispersion", "blup")
