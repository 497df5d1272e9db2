"""The Trajectories page for a GLMM (Streamlit): the chart of
:mod:`dashboard.figures.glmm_trajectories` and what its curves mean."""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.chart_text import trajectories_sentence
from dashboard.analysis.glmm_curves import largest_gap
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import escape_message, escape_text
from dashboard.base.numbers import fmt, fmt_pct
from dashboard.figures.glmm_trajectories import glmm_trajectories_figure
from dashboard.figures.style import reserve_modebar
from dashboard.state import cached
from dashboard.state.session import Keys
from dashboard.views.help import how_to_read

__all__ = ["CHART", "render_glmm_trajectories", "subject_word"]

CHART = "traj_glmm_chart"


def _legend_lines(curves, subject: str, response: str, ratios: str) -> list[str]:
    """What each kind of curve of the chart is."""
    what = "probability" if curves.scale == "probability" else "rate"
    observed = (
        f"the share of rows with {response} = 1 in each time bin"
        if what == "probability"
        else f"the observed rate in each time bin (counts of {response} summed over the bin, "
        "divided by the exposure summed over it)"
        if "per unit" in curves.scale
        else f"the mean count of {response} per row in each time bin"
    )
    return [
        f"**Thin lines**: each drawn {subject}'s own curve, the model's estimate for that "
        f"{subject} (the average effects plus the {subject}'s own random deviation).",
        f"**Dashed line**: the typical {subject}, one whose random deviation is 0: the curve "
        f"the {ratios} of the Model page describe, for one {subject}.",
        f"**Thick line**: the population average, the mean {what} over all {subject}s at "
        f"each time (the model's curve averaged over how much {subject}s differ).",
        f"**Diamonds**: {observed}: the population average is the curve they should follow.",
    ]


def _gap_sentence(curves, x: str, by: str | None) -> str:
    """Where the two population curves differ most, in numbers."""
    row = largest_gap(curves.population)
    where = f"{x} = {fmt(row['x'], 3)}" + (f" ({by} {row['group']})" if by else "")
    if curves.scale == "probability":
        typical, averaged = fmt_pct(row["typical"], 3), fmt_pct(row["averaged"], 3)
    else:
        typical, averaged = fmt(row["typical"], 3), fmt(row["averaged"], 3)
    return (
        f"Here the two curves differ most at {where}: {typical} for the typical patient, "
        f"{averaged} on average over the patients ({curves.scale})."
    )


def _why(curves, subject: str) -> str:
    """Why the population average is not the typical patient's curve."""
    if curves.scale == "probability":
        return (
            f"The population average lies closer to 50% and is flatter than the curve of the "
            f"average {subject} (the typical one): on the probability scale the curve bends, "
            f"so {subject}s far above and far below the typical one do not cancel out (a "
            f"{subject} with a high risk cannot go above 1, one with a low risk cannot go "
            "below 0). The two curves answer different questions: what a treatment does for "
            f"one {subject} (dashed, subject-specific odds ratios) and what share of "
            f"{subject}s have the outcome (solid, population-averaged)."
        )
    return (
        f"The population average lies above the typical {subject}'s curve: a rate is the "
        f"exponential of the model's linear part, which bends upward, so {subject}s with a "
        f"high rate raise the mean more than {subject}s with a low rate lower it (with a "
        "random intercept of SD τ alone, the mean is the typical rate times exp(τ²/2) at "
        "every time). The two curves answer different questions: what a treatment does for "
        f"one {subject} (dashed, subject-specific rate ratios) and the mean rate over all "
        f"{subject}s (solid, population-averaged)."
    )


def _explain(curves, subject: str, response: str, counts: tuple[int, int], axis) -> None:
    ratios = "odds ratios" if curves.scale == "probability" else "rate ratios"
    who = escape_text(subject)
    lines = _legend_lines(curves, who, escape_text(response), ratios)
    lines.append(f"Drawn: {counts[0]:,} of {counts[1]:,} {who}s.")
    if curves.held:
        held = ", ".join(f"{k} = {fmt(v, 3)}" for k, v in curves.held.items())
        lines.append(f"The population curves hold {escape_text(held)} (a typical value).")
    st.markdown("\n\n".join(f"- {line}" for line in lines))
    st.info(escape_message(_gap_sentence(curves, *axis) + " " + _why(curves, subject)))
    how_to_read("glmm_curves", "population_averaged", "attenuation", label="How to read this chart")


def render_glmm_trajectories(
    record: FitRecord,
    data,
    subject: str,
    x: str,
    by: str | None,
    subjects: list,
    n_all: int,
    facet: bool = False,
) -> None:
    """The GLMM chart (patients' curves, typical patient, population average, observed
    shares or rates; one panel per value of ``by`` with ``facet``) and its reading guide."""
    result = record.result
    curves = cached.glmm_curves(record.key, subject, x, tuple(subjects), by, result, data)
    units = st.session_state[Keys.UNITS]
    fig = glmm_trajectories_figure(
        curves,
        x_label=x + (f" ({units[x]})" if x in units else ""),
        y_label=f"{curves.scale} of {result.response}",
        by_label=by,
        facet=facet,
    )
    st.caption(trajectories_sentence(result, time=x, subject=subject, n_subjects=n_all))
    st.plotly_chart(reserve_modebar(fig), theme=None, key=CHART, config={"displaylogo": False})
    shown = curves.subjects["subject"].nunique()
    _explain(curves, subject_word(subject), result.response, (shown, n_all), (x, by))


def subject_word(subject: str) -> str:
    """The subject column's name when it reads as a word in a sentence ("patient",
    "child"), else "patient" ("Patient n°" would read badly as "each Patient n°'s")."""
    return subject if subject.isidentifier() and subject.islower() else "patient"
