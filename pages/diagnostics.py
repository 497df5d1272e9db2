"""Diagnostics page: residual plots, QQ plots of residuals and random effects, outliers, and the
correlation between visits that the model implies next to the one in the data."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.chart_text import qq_sentence, residual_sentence
from dashboard.analysis.compare_glmm import is_glmm
from dashboard.analysis.mmrm_models import is_mmrm
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.figures import correlation as fc
from dashboard.figures import diagnostics as fd
from dashboard.help.texts import help_text
from dashboard.state.fits import records_for_active_data, require_fit
from dashboard.state.session import Keys, current_data, current_roles, init_state, persistent_widget
from dashboard.views.diagnostics_combined import render_combined_diagnostics
from dashboard.views.diagnostics_glmm import render_glmm_diagnostics
from dashboard.views.help import how_to_read
from dashboard.views.mmrm import render_mmrm_diagnostics
from dashboard.views.streamed_notice import show_sample_notice
from dashboard.views.widgets import dataset_caption, show_figure
from lmm_core import LMMError

CHANCE = 0.0027  # P(|Z| > 3) for a standard normal
SOURCES = {
    "residuals": "Residuals from the fixed effects (y - X beta)",
    "outcome": "The outcome itself",
}


def controls(record: FitRecord) -> tuple[FitRecord, str | None]:
    """The model shown (the active fit by default) and the grouping factor."""
    records = records_for_active_data()
    names = [r.name for r in records]
    left, right = st.columns([2, 1])
    name = left.selectbox(  # the choice is the active fit (kept as Keys.ACTIVE_FIT)
        "Model",
        names,
        **persistent_widget(
            Keys.W_DIAG_MODEL, st.session_state, Keys.ACTIVE_FIT, record.name, options=names
        ),
    )
    record = next(r for r in records if r.name == name)
    if is_mmrm(record.result) or is_glmm(record.result):  # views of their own
        return record, None
    groups = fd.group_names(record.result)
    subject = current_roles().subject
    group = right.selectbox(
        "Grouping factor",
        groups,
        **persistent_widget(
            Keys.W_DIAG_GROUP,
            st.session_state,
            Keys.DIAG_GROUP,
            subject if subject in groups else groups[0],
            options=groups,
        ),
        disabled=len(groups) == 1,
        help="Residuals by group and the outlier table use this grouping.",
    )
    return record, group


def residual_section(prep: fd.ResidualData, points, note: str) -> None:
    """Residuals vs fitted and the QQ plot of residuals, side by side."""
    left, right = st.columns(2)
    with left:
        show_figure(
            fd.residuals_fitted_figure(prep, points),
            key="diag_resid_fitted",
            description=residual_sentence(
                prep.frame["fitted"], prep.frame["std_resid"], "standardized residuals", sd=1.0
            ),
        )
        st.caption(
            "Each point is one observation: its residual (observed minus fitted) against its "
            "fitted value. Good: a shapeless band around 0 and a flat orange line of binned "
            "means. A problem: a curve in the orange line (a missing term, e.g. a curved time "
            "trend) or a funnel that widens (the spread grows with the level). A slight upward "
            "tilt is normal in mixed models: shrinkage pulls each subject's curve towards the "
            "average, so high fitted values keep slightly positive residuals."
        )
    with right:
        qq = fd.qq_points(prep.frame["std_resid"].to_numpy())
        fig = fd.qq_figure(qq, title="Normal QQ plot of residuals", y_label="standardized residual")
        show_figure(
            fig, key="diag_qq_resid", description=qq_sentence(prep.frame["std_resid"].to_numpy())
        )
        st.caption(
            "Sorted standardized residuals against the values a normal distribution would "
            "give. Good: points on the dashed line. A problem: an S shape or ends that bend "
            "away (heavy tails, outliers) or a curve (skewness)."
            + (f" {qq.n:,} residuals drawn on a quantile grid." if qq.n > fd.MAX_QQ_POINTS else "")
        )
    if note:
        st.caption(note)


def ranef_section(result) -> None:
    """QQ plots of every random effect."""
    panels = fd.ranef_qq_panels(result)
    show_figure(fd.ranef_qq_figure(panels), key="diag_qq_ranef")
    st.caption(
        "One panel per random effect: each point is one group's estimated deviation from the "
        "average (its BLUP). The model assumes these deviations are normal. Good: points near "
        "the line. A problem: one or two points far off the line (an unusual subject) or two "
        "clumps (perhaps a missing covariate such as the treatment arm). BLUPs are shrunk "
        "towards 0, so their spread is smaller than the fitted SD: judge the shape, not the scale."
    )


def group_section(prep: fd.ResidualData) -> None:
    """Residuals per group (all levels or a sample) and observed vs fitted."""
    fig, note = fd.group_residuals_figure(prep)
    show_figure(fig, key="diag_by_group")
    st.caption(
        f"One box per {prep.group}: the spread of its residuals around its own fitted curve. "
        "Good: boxes of similar height, all centred near 0. A problem: some boxes much taller "
        f"(a {prep.group} the model fits badly or a variance that differs between groups)."
        + (f" {note}" if note else "")
    )


def observed_section(prep: fd.ResidualData, points) -> None:
    """Observed vs fitted with the identity line."""
    left, right = st.columns(2)
    with left:
        show_figure(fd.observed_fitted_figure(prep, points), key="diag_obs_fitted")
    right.markdown("**Observed vs fitted**")
    right.caption(
        "Each point is an observation; the dashed line is where observed equals fitted. "
        "Points close to the line mean the model (fixed effects plus each group's own "
        "random effects) reproduces the data well. Points far from it are the large "
        "residuals; a tilt away from the line at the ends means the model misses a trend."
    )


def outlier_section(result, prep: fd.ResidualData) -> None:
    """The table of flagged groups with the reason."""
    st.subheader(f"Outlying {prep.group} levels")
    table = fd.outlying_groups(result, prep)
    n_obs = len(prep.frame)
    n_groups = prep.frame["group"].nunique()
    n_z = len([c for c in table.columns if c.startswith("z: ")]) or 1
    chance = (
        f"By chance alone about {fmt(CHANCE * n_obs, 2)} of {n_obs:,} observations and "
        f"{fmt(CHANCE * n_groups * n_z, 2)} of the {n_groups:,} x {n_z} random effects would lie "
        "beyond 3 SD, so a few flags are expected in large data; look at them, don't delete "
        "them automatically."
    )
    if table.empty:
        st.success(
            f"No {prep.group} has an observation with |standardized residual| > 3 or a "
            "random effect more than 3 SD from average."
        )
    else:
        st.dataframe(
            styled(table, {"n_obs": "int", "n_outlying": "int"}, default=3),
            key="diag_outliers",
            column_config={
                "n_obs": st.column_config.NumberColumn(
                    "observations", help=f"Observations of this {prep.group}."
                ),
                "n_outlying": st.column_config.NumberColumn(
                    "outlying obs.",
                    help="Observations whose standardized residual (residual / sigma) is "
                    "beyond 3 in absolute value.",
                ),
                "max_abs_std_resid": st.column_config.NumberColumn(
                    "largest |std. residual|",
                    help="The largest residual of this group, in units of the residual SD "
                    "(sigma). Beyond 3 is unusual for a normal error.",
                ),
                **{
                    c: st.column_config.NumberColumn(
                        help="This group's random effect (BLUP) divided by its fitted SD: "
                        "how many SDs it lies from the average group. Beyond 3 is unusual.",
                    )
                    for c in table.columns
                    if c.startswith("z: ")
                },
            },
            placeholder=MISSING,
        )
    st.caption(
        "Standardized residual = residual / residual SD (sigma); z = random effect / its "
        f"fitted SD. Flagged when beyond 3 in absolute value. {chance}"
    )


def main() -> None:
    """Render the Diagnostics page."""
    init_state()
    st.title("Diagnostics")
    st.caption(
        "Does the model describe the data? The plots below check its assumptions: residuals "
        "without pattern and roughly normal, random effects roughly normal, no subject far "
        "from the rest; for a linear model of repeated visits, at the bottom, the correlation "
        "between visits that the model implies next to the one in the data."
    )
    record = require_fit("The Diagnostics page")
    st.markdown(dataset_caption())
    record, group = controls(record)
    show_sample_notice(record, "the residual plots need the rows: they show")
    result = record.result
    if is_glmm(result):  # binary or count outcome: its own residuals
        render_glmm_diagnostics(record)
        return
    if group is None and getattr(result, "reterms", None):  # random effects + visits
        render_combined_diagnostics(record, current_data())
        return
    if group is None:  # an MMRM: its residuals whitened, its structure beside the data
        render_mmrm_diagnostics(record, current_data())
        return
    st.markdown(
        f"{code_span(record.formula)} ({'REML' if record.reml else 'ML'}), "
        f"{result.nobs:,} observations, residual SD {fmt(result.sigma)}.",
        help=help_text("residual_sd"),
    )
    prep = fd.prepare_residuals(result, group)
    points, note = fd.sample_points(prep.frame)
    residual_section(prep, points, note)
    ranef_section(result)
    group_section(prep)
    observed_section(prep, points)
    outlier_section(result, prep)
    correlation_section(result)


def correlation_controls(irregular: bool) -> tuple[str, int]:
    """The observed values (residuals or outcome) and the number of time bins."""
    kept = st.session_state[Keys.DIAG_CORR]
    left, right = st.columns([2, 1])
    source = left.radio(
        "Observed correlation of",
        list(SOURCES),
        format_func=SOURCES.get,
        horizontal=True,
        **persistent_widget(Keys.W_DIAG_CORR_SOURCE, kept, "source", "residuals"),
        help="Residuals from the fixed effects are what the model's random effects and "
        "error must explain: the fair comparison. The raw outcome also carries the fixed "
        "effects (e.g. a treatment effect), which add correlation of their own.",
    )
    bins = int(kept.get("bins", fc.MAX_BINS))
    if irregular:
        bins = right.slider(
            "Time bins",
            3,
            12,
            **persistent_widget(Keys.W_DIAG_CORR_BINS, kept, "bins", fc.MAX_BINS, fix=int),
            help="Visit times differ between subjects, so they are grouped into this many "
            "bins around typical visit times.",
        )
    return source, bins


def correlation_metrics(view: fc.CorrelationView, time: str) -> None:
    """ICC at the first and last time and the largest gap between model and data."""
    curve = view.curve
    cols = st.columns(3)
    first, last = curve.iloc[0], curve.iloc[-1]
    icc_help = help_text("icc_time")
    for col, row in zip(cols[:2], (first, last), strict=True):
        col.metric(f"ICC at {time} {fmt(row['time'], 3)}", fmt(row["icc"], 2), help=icc_help)
    gap = view.largest_gap()
    cols[2].metric(
        "Largest gap, model vs data",
        fmt(gap, 2),
        help="The largest difference between the implied and the observed correlation over "
        "all pairs of visit times. Gaps of 0.1 or less are common with a few dozen subjects; "
        "a pattern (e.g. the data's correlation falling off with distance while the model's "
        "stays flat) matters more than one cell.",
    )


def correlation_section(result) -> None:
    """Implied vs observed correlation between visits, and variance and ICC over time."""
    st.subheader("Correlation between visits: model vs data")
    st.caption(
        "A mixed model says how strongly two measurements of one subject are correlated: a "
        "random intercept alone makes every pair of visits equally correlated; a random slope "
        "makes the correlation and the variance change with time. Left: what the fitted model "
        "implies; right: what the data show. If the model fits, the two look alike."
    )
    roles = current_roles()
    if roles.subject is None or roles.time is None:
        st.info("This section needs the subject and time columns: set them on the Data page.")
        return
    data = current_data()
    irregular = fc.bin_times(data[roles.time].to_numpy(dtype=float, na_value=float("nan"))).binned
    source, bins = correlation_controls(irregular)
    try:
        view = fc.prepare_correlation(
            data,
            result,
            subject=roles.subject,
            time=roles.time,
            cluster=roles.cluster,
            source=source,
            max_bins=bins,
        )
    except LMMError as error:
        st.info(f"No implied correlation for this model: {error}")
        return
    correlation_metrics(view, roles.time)
    fig = fc.correlation_heatmaps(view.implied, view.observed, view.bins, roles.time)
    show_figure(fig, key="diag_corr_heatmaps")
    shared = [k for k, v in view.implied.shared.items() if v and k != view.group]
    st.caption(
        f"Implied: V = Z G Z' + sigma^2 I for one {view.group} at these times, from the fitted "
        "random-effects covariance and residual variance"
        + (f", including the shared {', '.join(shared)} level" if shared else "")
        + ". Observed: the correlation across subjects of the "
        + ("residuals from the fixed effects (y - X beta)" if source == "residuals" else "outcome")
        + f", each pair of times using the subjects measured at both (pairs with fewer than "
        f"{fc.MIN_PAIRS} subjects stay blank; hover for the count). " + view.bins.describe()
    )
    show_figure(fc.variance_icc_figure(view.curve, roles.time), key="diag_corr_icc")
    st.caption(
        "Left: the variance of one measurement at each time, total and by source (the "
        "random effects of each level and the residual). Right: the intra-class correlation "
        "(ICC), the share of that variance that lies between subjects, which is also the "
        "correlation of two measurements of one subject taken at the same time."
    )
    how_to_read("implied_correlation", "residual_marginal", "icc_time")


main()
