"""Teach page, section 4: the study repeated many times (a job of the runner)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from dashboard.analysis.teach_controls import truth_key
from dashboard.analysis.teach_results import RepeatRun, StoredRepeat, coverage_error
from dashboard.analysis.teach_texts import count_of, naive_text, singular_text
from dashboard.base.numbers import fmt
from dashboard.figures import teach_repeat as ft
from dashboard.figures.teach_style import slope_word
from dashboard.state import work
from dashboard.state.isolation import in_child
from dashboard.state.session import Keys
from dashboard.views import jobs as jobs_view
from dashboard.views.teach import LEVEL, W, kept
from dashboard.views.widgets import show_figure
from lmm_core.simulation.teaching_truth import SHAPES

if TYPE_CHECKING:  # annotations only: the lab is run through dashboard
    from lmm_core.simulation.teaching_truth import LabTruth

__all__ = ["DF_CHOICES", "repeat_section", "show_replicates"]

REPEAT = "teach"  # job kind of the repeated study
DF_CHOICES = {
    "subjects": "subjects − 1 (fast)",
    "satterthwaite": "Satterthwaite (as on the Model page; about twice as slow)",
}


def repeat_controls():
    """Section 4's choices: the number of studies and the interval's degrees of freedom;
    also returns the column left for the Repeat button."""
    left, middle, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    n_rep = left.number_input(
        "Number of studies",
        min_value=10,
        max_value=1000,
        step=10,
        **kept(W + "replicates", "replicates", 100, fix=int),
        help="How many studies to simulate and fit (seeded: the same seed gives the same runs).",
    )
    df = middle.radio(
        "Degrees of freedom of the mixed-model interval",
        list(DF_CHOICES),
        format_func=DF_CHOICES.get,
        **kept(W + "df", "df", "subjects", options=list(DF_CHOICES)),
        horizontal=True,
        help="subjects − 1: the slope is learnt from the subjects' own slopes; exact when "
        "every visit is seen. Satterthwaite: the Model page's method; nearly the same here.",
    )
    return int(n_rep), df, right


def start_repeat(truth: LabTruth, seed: int, n_rep: int, df: str) -> None:
    """Run the repeated study as a job (progress, Cancel; it goes on across page switches)."""
    run_key = RepeatRun(truth_key(truth), seed, n_rep, df)

    def store(summary) -> str:
        st.session_state[Keys.TEACH_REPLICATES] = StoredRepeat(run_key, summary)
        took = f"{summary.seconds:.1f} s"  # fixed: timing
        return f"Repeated the study {n_rep:,} times in {took}: see the Teach page."

    jobs_view.launch(
        (REPEAT, *run_key),
        in_child(work.teaching_repeat, truth, n_rep, seed, LEVEL, df),
        kind=REPEAT,
        label=f"Repeating the simulated study **{n_rep:,} times**",
        store=store,
    )


def _curved_note(truth: LabTruth) -> str:
    """What the slope of this section is when the truth or the fit bends."""
    name = SHAPES[truth.time_df][0]
    text = (
        f"With a curve, *slope* here means the **average slope** from time 0 to "
        f"{truth.span:g}: for every study the fitted {name}'s (f̂({truth.span:g}) − f̂(0)) / "
        f"{truth.span:g}, with its interval, against the true β₁. Everything below applies to "
        "any shape of time: the random part is (time | subject) in every fit."
    )
    if truth.time_df == 1 and truth.curvature != 0:
        text += (
            " A straight line fitted to a bent truth still estimates the average slope when "
            "every visit is seen (the bend is symmetric, so it does not tilt the line); "
            "dropout removes late visits and can tilt it."
        )
    return text


def repeat_section(truth: LabTruth, seed: int) -> None:
    """Section 4: the study repeated many times (a job of the runner)."""
    st.subheader("4. Repeat the study")
    word = slope_word(truth)
    st.markdown(
        "One study can be lucky or unlucky. Repeating it with the same truth shows the "
        f"**sampling distribution**: how much the {word} estimate varies from study to study, "
        "how often the fit is singular, and whether the confidence intervals keep their "
        "promise of containing the truth 95% of the time."
    )
    if word != "slope":
        st.caption(_curved_note(truth))
    n_rep, df, button_col = repeat_controls()
    run_key = RepeatRun(truth_key(truth), seed, n_rep, df)
    jobs_view.show_notice(REPEAT)
    if button_col.button(f"Repeat {n_rep} times", key=W + "run", type="primary"):
        start_repeat(truth, seed, n_rep, df)
    if jobs_view.show_progress((REPEAT, *run_key)):
        return
    stored = st.session_state[Keys.TEACH_REPLICATES]
    if stored is None:
        st.info(f"Press **Repeat {n_rep} times** to run the lab.")
        return
    if not stored.run.same_study(run_key):
        st.info(
            "The truth, seed, fitted shape or interval method changed since the last run: "
            f"press **Repeat {n_rep} times** to repeat the study with the current settings."
        )
        return
    show_replicates(stored.summary)


def show_replicates(summary) -> None:
    """Timing, sampling distribution, singular fits and coverage of one run."""
    if summary.failures:
        st.warning(
            f"{summary.failures} of {summary.n + summary.failures} studies could not be fitted "
            f"and are left out; the first said: {summary.failure_message}"
        )
    if summary.n == 0:
        return
    sampling_section(summary)
    singular_section(summary)
    coverage_section(summary)


def sampling_section(summary) -> None:
    """How long the run took and how the slope estimates spread over the studies."""
    t = summary.table
    word = slope_word(summary.truth)
    cols = st.columns(4)
    per_fit_ms = 1000 * summary.fit_seconds / summary.n
    cols[0].metric(
        f"Time for {summary.n + summary.failures} studies",
        f"{summary.seconds:.2f} s",  # fixed: timing
        help=f"Wall time of the whole run: simulating, fitting and the intervals. The fits "
        f"alone took {summary.fit_seconds:.2f} s ({per_fit_ms:.0f} ms each).",  # fixed: timing
    )
    cols[1].metric(
        "Mean slope estimate",
        fmt(t["slope"].mean(), 3),
        delta=f"{fmt(t['slope'].mean() - summary.truth.slope, 2, sign=True)} vs truth",
        delta_color="off",
        help=f"Average of the estimated {word}s over the studies; the truth is "
        f"{fmt(summary.truth.slope, 3)}. Close to it: the estimator is unbiased.",
    )
    cols[2].metric(
        "Spread of estimates",
        fmt(summary.empirical_sd(), 3),
        help=f"How much the {word} estimate varies from study to study: the true standard "
        "error, which a good standard error should match.",
    )
    cols[3].metric(
        "Singular fits",
        f"{summary.singular_count():,} of {summary.n:,}",
        help="Studies whose fit put a variance at zero or the correlation at ±1 (see "
        f"below): {count_of(summary.singular_count(), summary.n)}. Studies that could not be "
        "fitted are not counted, here or in the figure.",
    )
    show_figure(ft.slope_histogram_figure(summary), key="teach_hist")


def singular_section(summary) -> None:
    """How often the fits were singular, of which kind, and why."""
    st.markdown("#### Singular fits")
    st.markdown(singular_text(summary))
    show_figure(ft.slope_sd_histogram_figure(summary), key="teach_sd_hist")
    st.caption(
        "Each bar counts studies by their estimated SD of the subject slopes, coloured by the "
        "kind of fit. The black line is the true SD: estimates scatter around it. Fits with "
        "the slope SD at zero sit at the left edge; fits that are singular in another way "
        "(the correlation at ±1 or the intercept SD at zero) can have any slope SD."
    )


def coverage_section(summary) -> None:
    """Coverage of the mixed-model and the naive intervals, and why the naive ones fail."""
    st.markdown("#### Do the intervals keep their promise?")
    t = summary.table
    word = slope_word(summary.truth)
    mixed, naive = summary.rate("covered"), summary.rate("covered_ols")
    mc_mixed = coverage_error(mixed, summary.n)
    mc_naive = coverage_error(naive, summary.n)
    cols = st.columns(4)
    cols[0].metric(
        "Coverage, mixed",
        f"{mixed:.1%}",
        help=f"Share of the studies whose {summary.level:.0%} mixed-model interval contains the "
        f"true {word}. Should be near {summary.level:.0%}; ± {mc_mixed:.1%} "
        "is the simulation's own uncertainty with this many studies.",
    )
    cols[1].metric(
        "Coverage, naive",
        f"{naive:.1%}",
        help="The same for ordinary least squares that ignores who is who (every row counted "
        f"as an independent person); ± {mc_naive:.1%}.",
    )
    cols[2].metric(
        "Mean SE, mixed",
        fmt(t["se"].mean(), 3),
        help="The standard error the mixed model reports, averaged over the studies. Compare "
        "with the spread of the estimates above.",
    )
    cols[3].metric(
        "Mean SE, naive",
        fmt(t["se_ols"].mean(), 3),
        help="The standard error naive regression reports, averaged over the studies.",
    )
    left, right = st.columns(2)
    with left:
        show_figure(ft.coverage_figure(summary), key="teach_coverage")
    with right:
        show_figure(ft.interval_ladder_figure(summary), key="teach_ladder")
    st.caption(
        f"Left: the share of intervals containing the true {word}, with the simulation's own "
        f"uncertainty (with {summary.n} studies, about "
        f"±{coverage_error(summary.level, summary.n):.1%} around a true "
        f"{summary.level:.0%}): "
        "the mixed model's share should reach the dashed line within that error. Right: the "
        f"first {min(summary.n, ft.MAX_LADDER)} studies' intervals, misses in red."
    )
    st.markdown(naive_text(summary))
