"""Diagnostics page: residual plots, QQ plots of residuals and random effects, outliers."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import figures_diagnostics as fd
from dashboard.fits import records_for_active_data, require_fit, set_active
from dashboard.state import Keys, current_roles, init_state
from dashboard.widgets import dataset_caption, show_figure

CHANCE = 0.0027  # P(|Z| > 3) for a standard normal


def _keep_model() -> None:
    set_active(st.session_state[Keys.W_DIAG_MODEL])


def _keep_group() -> None:
    st.session_state[Keys.DIAG_GROUP] = st.session_state[Keys.W_DIAG_GROUP]


def controls(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The model shown (the active fit by default) and the grouping factor."""
    records = records_for_active_data()
    names = [r["name"] for r in records]
    st.session_state[Keys.W_DIAG_MODEL] = record["name"]
    left, right = st.columns([2, 1])
    name = left.selectbox("Model", names, key=Keys.W_DIAG_MODEL, on_change=_keep_model)
    record = next(r for r in records if r["name"] == name)
    groups = fd.group_names(record["result"])
    wanted = st.session_state[Keys.DIAG_GROUP]
    if wanted not in groups:
        subject = current_roles().subject
        wanted = subject if subject in groups else groups[0]
    st.session_state[Keys.W_DIAG_GROUP] = wanted
    group = right.selectbox(
        "Grouping factor",
        groups,
        key=Keys.W_DIAG_GROUP,
        on_change=_keep_group,
        disabled=len(groups) == 1,
        help="Residuals by group and the outlier table use this grouping.",
    )
    return record, group


def residual_section(prep: fd.ResidualData, points, note: str) -> None:
    """Residuals vs fitted and the QQ plot of residuals, side by side."""
    left, right = st.columns(2)
    with left:
        show_figure(fd.residuals_fitted_figure(prep, points), key="diag_resid_fitted")
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
        show_figure(fig, key="diag_qq_resid")
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
        f"By chance alone about {CHANCE * n_obs:.1f} of {n_obs:,} observations and "
        f"{CHANCE * n_groups * n_z:.1f} of the {n_groups:,} x {n_z} random effects would lie "
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
            table,
            key="diag_outliers",
            column_config={
                "n_obs": st.column_config.NumberColumn("observations", format="%d"),
                "n_outlying": st.column_config.NumberColumn("outlying obs.", format="%d"),
                "max_abs_std_resid": st.column_config.NumberColumn(
                    "largest |std. residual|", format="%.2f"
                ),
                **{
                    c: st.column_config.NumberColumn(format="%.2f")
                    for c in table.columns
                    if c.startswith("z: ")
                },
            },
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
        "from the rest."
    )
    record = require_fit("The Diagnostics page")
    st.markdown(dataset_caption())
    record, group = controls(record)
    result = record["result"]
    st.markdown(
        f"`{record['formula']}` ({'REML' if record['reml'] else 'ML'}), "
        f"{result.nobs:,} observations, residual SD {result.sigma:.4g}."
    )
    prep = fd.prepare_residuals(result, group)
    points, note = fd.sample_points(prep.frame)
    residual_section(prep, points, note)
    ranef_section(result)
    group_section(prep)
    observed_section(prep, points)
    outlier_section(result, prep)


main()
