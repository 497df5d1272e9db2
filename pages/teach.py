"""Teach page: a simulation lab. Set the truth, simulate a study, fit it, compare, repeat."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import streamlit as st

from dashboard.analysis.teach import (
    CONTROLS,
    DEFAULT_SEED,
    INTEGER_FIELDS,
    INTRO,
    RepeatRun,
    StoredRepeat,
    count_of,
    coverage_error,
    default_value,
    naive_text,
    settings_to_truth,
    singular_text,
    slope_shrinkage_numbers,
    truth_key,
    weight_note,
)
from dashboard.base.constants import CONFIDENCE_LEVEL
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.figures import teach as ft
from dashboard.figures.explore import prepare_spaghetti, spaghetti_figure
from dashboard.io.roles import Roles
from dashboard.state import cached, work
from dashboard.state.session import Keys, activate_dataset, init_state, persistent_widget
from dashboard.views import jobs as jobs_view
from dashboard.views.widgets import show_figure
from lmm_core import LMMError

if TYPE_CHECKING:  # annotations only: the lab is run through dashboard
    from lmm_core.simulation.teaching import LabTruth

W = Keys.TEACH_W
LEVEL = CONFIDENCE_LEVEL
REPEAT = "teach"  # job kind of the repeated study
DF_CHOICES = {
    "subjects": "subjects − 1 (fast)",
    "satterthwaite": "Satterthwaite (as on the Model page; about twice as slow)",
}


def _settings() -> dict[str, Any]:
    return st.session_state[Keys.TEACH_SETTINGS]


def _in_range(name: str):
    """Cast a stored value of truth field ``name`` to its control's type and range."""
    c = CONTROLS[name]
    cast = int if name in INTEGER_FIELDS else float
    return lambda value: cast(min(max(value, c.low), c.high))


def _kept(key: str, name: str, default: Any, **kw: Any) -> dict[str, Any]:
    """Widget ``key`` whose value lasts in the Teach settings under ``name``."""
    return persistent_widget(key, _settings(), name, default, **kw)


def _control(name: str, where=st, suffix: str = "") -> None:
    """A truth control whose value lives in the settings dict (several widgets may share it)."""
    c = CONTROLS[name]
    cast = int if name in INTEGER_FIELDS else float
    default = default_value(name)
    kw = _kept(W + name + suffix, name, default, fix=_in_range(name))
    kw["help"] = c.help
    lo, hi, step = cast(c.low), cast(c.high), cast(c.step)
    if c.kind == "number":
        where.number_input(c.label, min_value=lo, max_value=hi, step=step, **kw)
    else:
        where.slider(c.label, min_value=lo, max_value=hi, step=step, **kw)


def _new_seed() -> None:
    _settings()["seed"] = int(_settings().get("seed", DEFAULT_SEED)) % 999_999 + 1


def truth_controls() -> None:
    """Section 1: the truth and the design."""
    st.subheader("1. Set the truth")
    with st.container(border=True):
        left, middle, right = st.columns(3)
        left.markdown("**Population (fixed effects)**")
        for name in ("intercept", "slope", "sigma"):
            _control(name, left)
        middle.markdown("**How subjects differ (random effects)**")
        for name in ("sd_intercept", "sd_slope", "corr"):
            _control(name, middle)
        right.markdown("**Study design**")
        for name in ("n_subjects", "n_visits", "dropout"):
            _control(name, right)
    seed_col, button_col = st.columns([1, 3], vertical_alignment="bottom")
    seed_col.number_input(
        "Seed",
        min_value=0,
        max_value=999_999,
        step=1,
        **_kept(W + "seed", "seed", DEFAULT_SEED, fix=int),
        help="The random seed: the same truth and seed always give the same study.",
    )
    button_col.button(
        "Draw a new study",
        key=W + "new_study",
        on_click=_new_seed,
        help="Same truth, new random subjects and noise (the seed goes up by one).",
    )


def one_study(truth: LabTruth, seed: int):
    """Section 2: one simulated study, its fit, and truth next to estimate."""
    st.subheader("2. One simulated study: truth vs estimate")
    try:
        lab, result = cached.teach_study(truth_key(truth), seed)
    except LMMError as err:
        st.error(f"This study could not be fitted: {err}")
        return None, None
    data = lab.data
    per_subject = data.groupby("subject", observed=True).size()
    cols = st.columns(4)
    cols[0].metric(
        "Observations",
        f"{len(data):,}",
        help=f"Rows in this study: {truth.n_subjects} subjects × up to {truth.n_visits} visits, "
        "minus the visits lost to dropout.",
    )
    cols[1].metric(
        "Visits per subject",
        fmt(per_subject.mean(), 3),
        help=f"Visits actually seen per subject, on average (planned: {truth.n_visits}; "
        f"expected with this dropout: {fmt(truth.expected_visits(), 3)}).",
    )
    cols[2].metric(
        "Fit time",
        f"{result.opt.seconds * 1000:.0f} ms",
        help="Time the optimizer took to fit this study (REML).",
    )
    cols[3].metric(
        "Singular fit",
        "yes" if result.is_singular else "no",
        help="Yes when a variance is estimated as zero or the correlation as ±1: the data "
        "cannot support that part of the model (see section 4).",
    )
    profile = st.toggle(
        "Profile-likelihood intervals for the SDs, the correlation and σ",
        **_kept(W + "profile", "profile", True, fix=bool),
        help="Profile intervals are the accurate ones for variance parameters but need about "
        "a second of refits whenever the truth changes. Off: only the fixed effects get "
        "intervals.",
    )
    table = cached.teach_recovery(truth_key(truth), seed, LEVEL, profile, result)
    show_figure(ft.recovery_figure(table, level=LEVEL), key="teach_recovery")
    st.dataframe(
        styled(recovery_display(table)),
        hide_index=True,
        width="stretch",
        column_config=RECOVERY_COLUMNS,
        placeholder=MISSING,
    )
    hits = table["covered"].dropna()
    st.caption(
        f"{int(hits.sum())} of {len(hits)} intervals contain the truth in this study. Each "
        f"{LEVEL:.0%} interval should miss about 1 time in 20, so an occasional miss is "
        "expected; section 4 counts misses over many studies. Fixed effects: t intervals with "
        "Satterthwaite degrees of freedom. SDs, correlation and σ: profile-likelihood "
        "intervals (computed around the maximum-likelihood fit, as lme4 does)."
    )
    with st.expander("The simulated data (one line per subject)"):
        prep = prepare_spaghetti(data, "subject", "time", "y", max_subjects=200)
        show_figure(spaghetti_figure(prep, time_label="time", outcome_label="y"), "teach_data")
    st.button(
        "Use this study as the active dataset",
        key=W + "use_study",
        on_click=use_study,
        args=(data, seed),
        help="Make the simulated visits the dataset of the other pages (Explore, Model, "
        "Shrinkage, ...), to fit your own models to data whose truth you know. Your "
        "fitted models of other datasets are kept.",
    )
    return lab, result


def use_study(data, seed: int) -> None:
    """Make the simulated study the session's active dataset (roles set)."""
    activate_dataset(
        data[["subject", "time", "y"]].astype({"subject": str}),
        name=f"teach_study_seed{seed}",
        source="simulation",
        roles=Roles(subject="subject", time="time", outcome="y"),
        title="Simulated study from the Teach page",
        note=f"Drawn on the Teach page (seed {seed}) from the truth set there.",
    )
    st.toast("The simulated study is now the active dataset: see the Data page.")


RECOVERY_COLUMNS = {
    "parameter": st.column_config.TextColumn("parameter", help="What the number describes."),
    "truth": st.column_config.NumberColumn(
        "truth", help="The value you set: what the study was simulated from."
    ),
    "estimate": st.column_config.NumberColumn(
        "estimate", help="What the mixed model (REML) estimated from the data."
    ),
    "lower": st.column_config.NumberColumn(
        "lower", help=f"Lower end of the {LEVEL:.0%} confidence interval."
    ),
    "upper": st.column_config.NumberColumn(
        "upper", help=f"Upper end of the {LEVEL:.0%} confidence interval."
    ),
    "interval": st.column_config.TextColumn("interval", help="How the interval is computed."),
    "truth inside?": st.column_config.TextColumn(
        "truth inside?", help="Does the interval contain the true value?"
    ),
}


def recovery_display(table):
    """The recovery table as shown: the covered flag in words."""
    out = table.drop(columns="covered").copy()
    out["truth inside?"] = [
        "–" if math.isnan(c) else ("yes" if c else "no") for c in table["covered"]
    ]
    return out


#: section 3's own copies of these truth fields (section 1's truth is never changed here)
SHRINK_FIELDS = ("n_visits", "sigma")


def _shrink_control(name: str, truth: LabTruth, where) -> None:
    """A section-3 slider with its own value (``shrink_<name>``; unset: section 1's value)."""
    c = CONTROLS[name]
    cast = int if name in INTEGER_FIELDS else float
    where.slider(
        f"{c.label} (this section)",
        min_value=cast(c.low),
        max_value=cast(c.high),
        step=cast(c.step),
        **_kept(W + name + "_shrink", "shrink_" + name, getattr(truth, name), fix=_in_range(name)),
        help=c.help + " Changes only this section's study; section 1 keeps its own value.",
    )


def _follow_section_one() -> None:
    for name in SHRINK_FIELDS:
        _settings().pop("shrink_" + name, None)


def shrink_truth(truth: LabTruth) -> LabTruth:
    """Section 3's truth: section 1's, with this section's visits and noise when set."""
    own = {n: _settings().get("shrink_" + n) for n in SHRINK_FIELDS}
    own = {
        n: (int(v) if n in INTEGER_FIELDS else float(v)) for n, v in own.items() if v is not None
    }
    return dataclasses.replace(truth, **own) if own else truth


def shrinkage_section(truth: LabTruth, seed: int, lab, result) -> None:
    """Section 3: own slopes vs mixed-model slopes vs the truth, with its own visits and noise."""
    st.subheader("3. Shrinkage: how far each subject's own slope is trusted")
    st.markdown(
        "Each subject's **own slope** (a straight line through its data alone) is noisy. The "
        "mixed model's slope for the subject (its **BLUP**) pulls the own slope toward the "
        "population slope, by more when the own slope is unreliable: few visits, much noise, "
        "or subjects that hardly differ. Move the sliders and watch the arrows grow and shrink."
    )
    left, right = st.columns(2)
    for name, where in zip(SHRINK_FIELDS, (left, right), strict=True):
        _shrink_control(name, truth, where)
    local = shrink_truth(truth)
    same = local == truth
    if same:
        st.caption(
            f"These sliders belong to this section: they start at section 1's values "
            f"({truth.n_visits} visits, σ = {fmt(truth.sigma, 3)}) and, when moved, draw a "
            "study for this section only (same seed and other settings). Section 1's truth "
            "and study stay as they are."
        )
    else:
        note, reset = st.columns([4, 1], vertical_alignment="center")
        note.info(
            f"This section shows its own study: {local.n_visits} visits and "
            f"σ = {fmt(local.sigma, 3)} (section 1: {truth.n_visits} visits, "
            f"σ = {fmt(truth.sigma, 3)}), drawn with the same seed and other settings. "
            "Sections 1, 2 and 4 are unchanged."
        )
        reset.button(
            "Use section 1's values",
            key=W + "shrink_reset",
            on_click=_follow_section_one,
            help="Show section 1's study here again; the sliders follow section 1.",
        )
        try:
            lab, result = cached.teach_study(truth_key(local), seed)
        except LMMError as err:
            st.error(f"This section's study could not be fitted: {err}")
            return
    if result is not None:
        shrinkage_numbers(local, lab, result)


def shrinkage_numbers(local: LabTruth, lab, result) -> None:
    """Section 3's metrics, the arrows from own to mixed-model slopes and the weight curve."""
    numbers = slope_shrinkage_numbers(local, lab, result)
    table, summ, weight = numbers.table, numbers.summary, numbers.weight
    cols = st.columns(4)
    cols[0].metric(
        "Expected weight",
        fmt(weight, 2),
        help="The weight on a subject's own slope for a typical subject of the design: "
        "τ₁² / (τ₁² + σ²/Sₜₜ) with the true τ₁ and σ and Sₜₜ the spread of all the planned "
        "visit times (no dropout, no correlation). 1 = no shrinkage, 0 = everyone gets the "
        "population slope.",
    )
    cols[1].metric(
        "Median factor",
        fmt(summ["median_factor"], 2),
        help="Median shrinkage factor of this study: (mixed − population) / (own − "
        "population) per subject, the share of its own deviation the model actually kept, "
        "with the fit's estimated variances and each subject's own visits; median over "
        "subjects.",
    )
    cols[2].metric(
        "RMSE, own slopes",
        fmt(summ["rmse_own"], 3),
        help="Root mean squared distance of the subjects' own slopes from their true slopes.",
    )
    cols[3].metric(
        "RMSE, mixed slopes",
        fmt(summ["rmse_mixed"], 3),
        delta=f"{fmt(summ['rmse_mixed'] - summ['rmse_own'], 3, sign=True)} vs own",
        delta_color="inverse",
        help="The same for the mixed-model slopes (BLUPs). Usually smaller: shrinkage "
        "trades a little bias for much less noise.",
    )
    visits = float(lab.data.groupby("subject", observed=True).size().mean())
    st.caption(weight_note(local, numbers.fitted, summ["median_factor"], visits))
    show_figure(ft.slope_shrinkage_figure(table), key="teach_shrinkage")
    if len(table) > ft.MAX_SUBJECTS:
        st.caption(f"A random sample of {ft.MAX_SUBJECTS} of the {len(table)} subjects is drawn.")
    show_figure(
        ft.weight_curve_figure(local.sd_slope, local.sigma, local.n_visits, summ["median_factor"]),
        key="teach_weight",
    )
    st.caption(
        "The curve: how much of its own slope a subject keeps, for 3 to 30 visits at your τ₁ "
        "and σ. More visits spread the times wider, so an own slope becomes precise and is "
        "trusted more; more noise (σ) or smaller true differences (τ₁) lower the curve."
    )


def repeat_controls():
    """Section 4's choices: the number of studies and the interval's degrees of freedom;
    also returns the column left for the Repeat button."""
    left, middle, right = st.columns([1, 2, 1], vertical_alignment="bottom")
    n_rep = left.number_input(
        "Number of studies",
        min_value=10,
        max_value=1000,
        step=10,
        **_kept(W + "replicates", "replicates", 100, fix=int),
        help="How many studies to simulate and fit (seeded: the same seed gives the same runs).",
    )
    df = middle.radio(
        "Degrees of freedom of the mixed-model interval",
        list(DF_CHOICES),
        format_func=DF_CHOICES.get,
        **_kept(W + "df", "df", "subjects", options=list(DF_CHOICES)),
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
        lambda job: work.teaching_repeat(truth, n_rep, seed, LEVEL, df, job.report),
        kind=REPEAT,
        label=f"Repeating the simulated study **{n_rep:,} times**",
        store=store,
    )


def repeat_section(truth: LabTruth, seed: int) -> None:
    """Section 4: the study repeated many times (a job of the runner)."""
    st.subheader("4. Repeat the study")
    st.markdown(
        "One study can be lucky or unlucky. Repeating it with the same truth shows the "
        "**sampling distribution**: how much the slope estimate varies from study to study, "
        "how often the fit is singular, and whether the confidence intervals keep their "
        "promise of containing the truth 95% of the time."
    )
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
            "The truth, seed or interval method changed since the last run: press "
            f"**Repeat {n_rep} times** to repeat the study with the current settings."
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
        help=f"Average of the estimated slopes over the studies; the truth is "
        f"{fmt(summary.truth.slope, 3)}. Close to it: the estimator is unbiased.",
    )
    cols[2].metric(
        "Spread of estimates",
        fmt(summary.empirical_sd(), 3),
        help="How much the slope estimate varies from study to study: the true standard "
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
    mixed, naive = summary.rate("covered"), summary.rate("covered_ols")
    mc_mixed = coverage_error(mixed, summary.n)
    mc_naive = coverage_error(naive, summary.n)
    cols = st.columns(4)
    cols[0].metric(
        "Coverage, mixed",
        f"{mixed:.1%}",
        help=f"Share of the studies whose {summary.level:.0%} mixed-model interval contains the "
        f"true slope. Should be near {summary.level:.0%}; ± {mc_mixed:.1%} "
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
        f"Left: the share of intervals containing the true slope, with the simulation's own "
        f"uncertainty (with {summary.n} studies, about "
        f"±{coverage_error(summary.level, summary.n):.1%} around a true "
        f"{summary.level:.0%}): "
        "the mixed model's share should reach the dashed line within that error. Right: the "
        f"first {min(summary.n, ft.MAX_LADDER)} studies' intervals, misses in red."
    )
    st.markdown(naive_text(summary))


def main() -> None:
    """Render the Teach page."""
    init_state()
    st.title("Teach: simulation lab")
    st.markdown(INTRO)
    truth_controls()
    try:
        truth = settings_to_truth(_settings())
    except LMMError as err:
        st.error(f"These settings cannot be simulated: {err}")
        st.stop()
    seed = int(_settings().get("seed", DEFAULT_SEED))
    lab, result = one_study(truth, seed)
    shrinkage_section(truth, seed, lab, result)
    repeat_section(truth, seed)


main()
