"""The Trajectories page for a GLMM (Streamlit): the chart of
:mod:`dashboard.figures.glmm_trajectories` and what its curves mean."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.records import FitRecord
from dashboard.base.markup import escape_message
from dashboard.base.numbers import fmt
from dashboard.figures.glmm_trajectories import glmm_trajectories_figure
from dashboard.figures.style import reserve_modebar
from dashboard.state import cached
from dashboard.state.session import Keys
from dashboard.views.help import how_to_read

__all__ = ["CHART", "render_glmm_trajectories"]

CHART = "traj_glmm_chart"


def _explain(curves, subject: str, response: str, n_shown: int, n_all: int) -> None:
    what = "probability" if curves.scale == "probability" else "rate"
    observed = (
        f"the share of rows with {response} = 1 in each time bin"
        if what == "probability"
        else f"the observed rate in each time bin (counts of {response} summed over the bin, "
        "divided by the exposure summed over it)"
    )
    lines = [
        f"**Thin lines**: each drawn {subject}'s own curve (fixed effects plus the "
        f"{subject}'s random effects, the conditional modes), on the {curves.scale} scale.",
        f"**Dashed line**: the curve of the typical {subject}, whose random effects are 0: "
        f"what the fixed effects (odds or rate ratios) describe, for one {subject}.",
        f"**Thick line**: the population average, the mean {what} over all {subject}s at "
        "each time, computed by integrating over the random effects' distribution at the "
        "fitted covariance (s² = z(t)' G z(t) at each time).",
        f"**Diamonds**: {observed}: the population average is the curve they should follow.",
        f"Drawn: {n_shown:,} of {n_all:,} {subject}s.",
    ]
    if curves.held:
        held = ", ".join(f"{k} = {fmt(v)}" for k, v in curves.held.items())
        lines.append(f"The population curves hold {escape_message(held)} (a typical value).")
    st.markdown("\n\n".join(f"- {line}" for line in lines))
    st.info(
        f"The average of the {subject}s' curves is flatter than the curve of the average "
        f"{subject}: on the {what} scale the curve bends, so {subject}s far above and far "
        f"below the typical one do not cancel out (a {subject} with a high risk cannot go "
        "above 1, one with a low risk cannot go below 0). The two curves answer different "
        f"questions: what a treatment does for one {subject} (dashed, subject-specific) and "
        f"what share of {subject}s have the outcome (solid, population-averaged)."
    )
    how_to_read("glmm_curves", "population_averaged", "attenuation", label="How to read this chart")


def render_glmm_trajectories(
    record: FitRecord, data, subject: str, x: str, by: str | None, subjects: list, n_all: int
) -> None:
    """The GLMM chart (patients' curves, typical patient, population average, observed
    shares or rates) and its reading guide."""
    result = record.result
    curves = cached.glmm_curves(record.key, subject, x, tuple(subjects), by, result, data)
    units = st.session_state[Keys.UNITS]
    y_label = f"{curves.scale} of {result.response}"
    fig = glmm_trajectories_figure(
        curves,
        x_label=x + (f" ({units[x]})" if x in units else ""),
        y_label=y_label,
        by_label=by,
    )
    st.plotly_chart(reserve_modebar(fig), theme=None, key=CHART, config={"displaylogo": False})
    _explain(curves, subject, result.response, curves.subjects["subject"].nunique(), n_all)
