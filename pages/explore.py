"""Explore page: raw trajectories, mean trajectory with a band, visits per subject."""

from __future__ import annotations

import streamlit as st

from dashboard.figures import explore as figures
from dashboard.state.session import Keys, init_state, persistent_widget
from dashboard.views.help import how_to_read
from dashboard.views.widgets import dataset_caption, require_longitudinal, show_figure

NONE = "(none)"
DEFAULT_MAX_SUBJECTS = 400
MAX_MEAN_GROUPS = 8


def colour_options(data, roles) -> list[str]:
    """Cluster, covariates, then other columns with 2-12 distinct values."""
    options = [NONE]
    for col in [roles.cluster, *roles.covariates]:
        if col and col not in options:
            options.append(col)
    for col in data.columns:
        if col in options or col in (roles.subject, roles.time, roles.outcome):
            continue
        if 2 <= data[col].nunique() <= 12:
            options.append(col)
    return options


def controls(data, roles) -> tuple[str | None, int]:
    """Colour choice and, with many subjects, the number of subjects drawn."""
    options = colour_options(data, roles)
    default = roles.cluster if roles.cluster in options else NONE
    if roles.covariates and roles.covariates[0] in options:
        default = roles.covariates[0]
    n_subjects = data[roles.subject].nunique()
    left, right = st.columns([1, 2])
    colour = left.selectbox(
        "Colour by",
        options,
        **persistent_widget(
            Keys.W_EXPLORE_COLOR, st.session_state, Keys.EXPLORE_COLOR, default, options=options
        ),
        help="A cluster or a covariate; numbers with many values are split into quartiles.",
    )
    max_subjects = n_subjects
    if n_subjects > DEFAULT_MAX_SUBJECTS:
        max_subjects = right.slider(
            "Subjects drawn in the spaghetti plot",
            min_value=50,
            max_value=min(3000, int(n_subjects)),
            step=50,
            **persistent_widget(
                Keys.W_EXPLORE_MAX,
                st.session_state,
                Keys.EXPLORE_MAX_SUBJECTS,
                DEFAULT_MAX_SUBJECTS,
                fix=lambda n: min(n, n_subjects),
            ),
            help="A random sample of whole trajectories keeps the browser fast.",
        )
    return (None if colour == NONE else colour), int(max_subjects)


def _labels(roles) -> tuple[str, str]:
    """Axis titles of time and outcome, with their units when known."""
    units = st.session_state[Keys.UNITS]
    time_label = roles.time + (f" ({units[roles.time]})" if roles.time in units else "")
    y_label = roles.outcome + (f" ({units[roles.outcome]})" if roles.outcome in units else "")
    return time_label, y_label


def spaghetti_section(data, roles, colour, max_subjects: int, time_label: str, y_label: str):
    """One line per subject, coloured by ``colour``."""
    prep = figures.prepare_spaghetti(
        data, roles.subject, roles.time, roles.outcome, colour, max_subjects=max_subjects
    )
    fig = figures.spaghetti_figure(
        prep,
        subject_label=roles.subject,
        time_label=time_label,
        outcome_label=y_label,
        color_label=colour,
    )
    show_figure(fig, key="explore_spaghetti")
    if prep.note:
        st.caption(prep.note)
    st.caption(
        "Each line is one subject (hover to see who). Lines that start at different heights "
        "suggest a random intercept; lines with different steepness suggest a random slope."
    )


def mean_section(data, roles, colour, time_label: str) -> None:
    """The mean outcome over time with its confidence band, per group when few."""
    group = colour if colour and data[colour].nunique() <= MAX_MEAN_GROUPS else None
    summary = figures.prepare_mean_trajectory(data, roles.time, roles.outcome, group)
    fig = figures.mean_trajectory_figure(
        summary, time_label=time_label, outcome_label=roles.outcome, group_label=group
    )
    show_figure(fig, key="explore_mean")
    note = (
        "The line is the mean outcome at each time (irregular times are grouped into bins); "
        "the shaded band is its 95% confidence interval. It ignores who was measured, so "
        "dropout can bend it: compare it with the individual lines above."
    )
    if colour and group is None:
        note += f" '{colour}' has too many groups for separate means, so one mean is shown."
    st.caption(note)


def visits_section(data, roles) -> None:
    """How many visits each subject has."""
    counts = figures.prepare_visit_counts(data, roles.subject)
    show_figure(figures.visits_histogram(counts, subject_label=roles.subject), key="explore_visits")
    singles = int(counts.loc[counts["visits"] == 1, "subjects"].sum())
    st.caption(
        f"{int(counts['subjects'].sum()):,} subjects; most have "
        f"{int(counts.loc[counts['subjects'].idxmax(), 'visits'])} visits. "
        f"{singles:,} have a single visit. Unequal numbers of visits are fine for mixed models."
    )


def main() -> None:
    """Render the Explore page."""
    init_state()
    st.title("Explore")
    st.caption(
        "Look at the raw data before fitting anything: how each subject changes over time, "
        "how the average changes, and how many visits each subject has."
    )
    data, roles = require_longitudinal("The Explore page")
    st.markdown(dataset_caption())
    colour, max_subjects = controls(data, roles)
    time_label, y_label = _labels(roles)
    spaghetti_section(data, roles, colour, max_subjects, time_label, y_label)
    mean_section(data, roles, colour, time_label)
    visits_section(data, roles)
    how_to_read(
        "spaghetti_plot",
        "mean_trajectory",
        "visits_per_subject",
        "missing_values",
        label="How to read these plots",
    )


main()
