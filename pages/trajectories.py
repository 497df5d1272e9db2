"""Trajectories page: the population-average curve with its band, and patients' own curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.analysis.chart_text import trajectories_sentence
from dashboard.analysis.mmrm_models import combined_sentence, has_random_effects, is_mmrm
from dashboard.base.constants import NONE_CHOICE
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.figures import trajectories as ft
from dashboard.figures.knots import knots_caption
from dashboard.figures.style import reserve_modebar
from dashboard.help.texts import help_text
from dashboard.state import cached
from dashboard.state.fits import require_fit
from dashboard.state.session import Keys, init_state, persistent_widget
from dashboard.views.glmm_model import require_model_data
from dashboard.views.glmm_trajectories import render_glmm_trajectories
from dashboard.views.help import column, how_to_read
from dashboard.views.mmrm import needs_random_effects
from dashboard.views.streamed_notice import show_sample_notice
from dashboard.views.widgets import model_caption

MAX_DRAWN = 200
CHART = Keys.TRAJ_W + "chart"


def _settings() -> dict[str, Any]:
    return st.session_state[Keys.TRAJ_SETTINGS]


def _seed(name: str, default: Any, options: list | None = None, **kw: Any) -> dict[str, Any]:
    """Widget ``name`` kept in the Trajectories settings (see ``persistent_widget``)."""
    return persistent_widget(Keys.TRAJ_W + name, _settings(), name, default, options=options, **kw)


def choose(visits: pd.Series, record, data, subject: str) -> list:
    """The subject-choice controls; returns the subjects to draw."""
    result = record.result
    modes = list(ft.CHOICE_MODES)
    left, mid, right = st.columns([2, 1, 1])
    mode = ft.CHOICE_MODES[
        left.selectbox(
            f"Which {subject}s to draw",
            modes,
            **_seed("mode", modes[0], modes),
            help="Only the chosen subjects are drawn, so the page stays fast with thousands.",
        )
    ]
    top = min(MAX_DRAWN, len(visits))
    if mode == "pick":
        options = list(visits.index)
        picked = left.multiselect(
            f"{subject} ids (type to search)", options, **_seed("picked", options[:3], options)
        )
        return ft.choose_subjects(visits, "pick", 1, picked=picked)
    count = mid.number_input(
        f"Number of {subject}s",
        min_value=1,
        max_value=top,
        step=1,
        **_seed("count", min(12, top), fix=lambda n: min(int(n), top)),
    )
    seed = 0
    if mode == "random":
        seed = right.number_input(
            "Random seed",
            min_value=0,
            max_value=10**6,
            step=1,
            **_seed("seed", 0),
            help="Another seed draws another sample.",
        )
    deviation = cached.deviation(record.key, subject, result, data) if mode == "deviation" else None
    return ft.choose_subjects(visits, mode, int(count), seed=int(seed), deviation=deviation)


def selected_subjects() -> list[str]:
    """Subjects clicked in the chart (its selection state), without repeats."""
    event = st.session_state.get(CHART)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    out: list[str] = []
    for p in points:
        custom = p.get("customdata")
        sid = custom[0] if isinstance(custom, list) and custom else None
        if sid and sid not in out:
            out.append(str(sid))
    return out


@dataclass(frozen=True)
class View:
    """How the chart is drawn: axis, colour, panels and cluster curves."""

    x: str
    by: str | None
    facet: bool
    cluster: str | None  # the cluster column, when its curves are drawn
    cluster_group: str | None  # the model's group of that column


def view_controls(data: pd.DataFrame, roles, result) -> View:
    """The chart's axis, colour, panels and cluster-curve choices."""
    x_opts = ft.axis_options(data, roles)
    b_opts, b_default = ft.by_options(data, roles, result)
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    x = c1.selectbox("Horizontal axis", x_opts, **_seed("x", roles.time, x_opts))
    by = c2.selectbox(
        "Colour by",
        b_opts,
        **_seed("by", b_default, b_opts),
        help="One population curve per value, e.g. per treatment arm.",
    )
    facet = c3.checkbox("Separate panels", **_seed("facet", False))
    cluster_group = roles.cluster if roles.cluster in result.ngroups else None
    show_clusters = False
    if cluster_group:
        show_clusters = c4.checkbox(
            f"{roles.cluster} curves",
            **_seed("clusters", True),
            help=f"Population curve shifted by the {roles.cluster}'s random effect.",
        )
    return View(
        x,
        None if by == NONE_CHOICE else by,
        bool(facet),
        roles.cluster if show_clusters else None,
        cluster_group if show_clusters else None,
    )


def chart_section(prep, view: View, roles, response: str, description: str) -> list[str]:
    """The trajectories chart (click a subject to highlight it) under its one-sentence
    ``description``; returns the highlighted subjects."""
    highlight = selected_subjects()
    units = st.session_state[Keys.UNITS]
    fig = ft.trajectories_figure(
        prep,
        subject_label=roles.subject,
        x_label=view.x + (f" ({units[view.x]})" if view.x in units else ""),
        y_label=response,
        by_label=view.by,
        cluster_label=roles.cluster or "cluster",
        facet=view.facet,
        show_clusters=view.cluster is not None,
        highlight=highlight,
    )
    st.caption(description)
    st.plotly_chart(
        reserve_modebar(fig),
        theme=None,
        key=CHART,
        on_select="rerun",
        selection_mode="points",
        config={"displaylogo": False},
    )
    return highlight


def main() -> None:
    """Render the Trajectories page."""
    init_state()
    st.title("Trajectories")
    st.caption(
        "What the fitted model says about change over time: the average course in the "
        "population, and each patient's own course as the model estimates it."
    )
    data, roles = require_model_data("The Trajectories page")
    record = require_fit("The Trajectories page")
    show_sample_notice(record, "this chart shows")
    result = record.result
    if is_mmrm(result):  # no patient-level random effects: nothing patient-specific to show
        st.markdown(model_caption(record))
        if has_random_effects(result):
            st.info(combined_sentence(result, "trajectories"))
        else:
            needs_random_effects("trajectories")
        st.stop()
    st.markdown(model_caption(record))
    subject = roles.subject
    used = data.iloc[result.design.rows]
    visits = used.groupby(subject, sort=True, observed=True).size()
    view = view_controls(data, roles, result)
    subjects = choose(visits, record, data, subject)
    if not subjects:
        st.info(f"Choose at least one {subject} to draw.")
        st.stop()
    if record.is_glmm:  # probabilities or rates: patients, typical patient, population average
        render_glmm_trajectories(
            record, data, subject, view.x, view.by, subjects, len(visits), view.facet
        )
        st.stop()
    prep = cached.trajectories(
        record.key,
        subject,
        view.x,
        tuple(subjects),
        view.by,
        view.cluster,
        view.cluster_group,
        result,
        data,
    )
    description = trajectories_sentence(
        result, time=view.x, subject=subject, n_subjects=len(visits)
    )
    highlight = chart_section(prep, view, roles, result.response, description)
    knots_note(result, prep, view.x)
    explain(prep, subject, view.x, view.by, view.cluster is not None, roles.cluster, len(visits))
    if highlight:
        show_selected(prep, highlight, subject, view.x, result.response)


def knots_note(result, prep, x: str) -> None:
    """One sentence under the chart on the dotted knot lines (only when there are knots)."""
    if prep.knots:
        st.caption(knots_caption(result, x, prep.knots), help=help_text("knots"))


def explain(prep, subject, x, by, show_clusters, cluster, n_all) -> None:
    """Plain-language reading guide under the chart."""
    lines = [
        f"**Thick line**: the population average, the course of a typical {subject} "
        "(fixed effects only). **Shaded band**: its 95% confidence interval, the uncertainty "
        "about that average (a Wald interval; it says nothing about how much individual "
        f"{subject}s vary).",
        f"**Thin lines**: each drawn {subject}'s own fitted course (fixed effects plus the "
        f"{subject}'s random effects, the BLUPs), computed at {ft.GRID_POINTS} points from "
        f"the first to the last visit, so a curved model draws curves; **dots**: what was "
        "actually measured. Hover over a line or dot to see who it is; click one to "
        "highlight it.",
    ]
    if prep.varying:
        names = ", ".join(prep.varying)
        lines.append(
            f"{names} change{'s' if len(prep.varying) == 1 else ''} between visits: between "
            f"two visits the thin lines hold {names} at the value of the nearest visit (so a "
            "line can jump half-way between visits)."
        )
    if show_clusters:
        lines.append(
            f"**Dotted lines**: the {cluster} of each drawn {subject}: the population curve "
            f"shifted by that {cluster}'s random effect. The gap between a dotted and a thin "
            f"line is the {subject}'s own deviation within its {cluster}."
        )
    if prep.held:
        held = ", ".join(f"{k} = {fmt(v)}" for k, v in prep.held.items())
        lines.append(f"The population curve holds {held} (a typical value).")
    shown = prep.observed["subject"].nunique()
    lines.append(f"Drawn: {shown:,} of {n_all:,} {subject}s.")
    st.markdown("\n\n".join(f"- {line}" for line in lines))
    if by:
        st.caption(f"Colours: {by}. With {by} in the model, each value has its own average.")
    how_to_read(
        "trajectory_chart",
        "population_prediction",
        "subject_prediction",
        "blup",
        "confidence_vs_prediction",
        label="How to read this chart",
    )


def show_selected(prep, highlight: list[str], subject: str, x: str, response: str) -> None:
    """Observed and fitted values of the clicked subjects."""
    rows = prep.observed[prep.observed["subject"].isin(highlight)]
    table = rows.rename(
        columns={
            "subject": subject,
            "x": x,
            "y": f"observed {response}",
            "fitted": f"fitted ({subject})",
            "cluster_fit": "cluster level",
        }
    ).drop(columns=["group", "cluster"])
    table = table.dropna(axis=1, how="all")
    st.markdown(f"**Selected {subject}(s)**: {', '.join(highlight)} (drawn in black)")
    st.dataframe(
        styled(table),
        hide_index=True,
        width="stretch",
        column_config={
            f"observed {response}": st.column_config.NumberColumn(
                help=f"The {response} measured at this visit."
            ),
            f"fitted ({subject})": column("subject_prediction"),
            "cluster level": column("cluster_prediction"),
        },
        placeholder=MISSING,
    )


main()
