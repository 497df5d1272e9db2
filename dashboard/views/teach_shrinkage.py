"""Teach page, section 3: shrinkage of the subjects' slopes, with its own visits and noise."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import streamlit as st

from dashboard.analysis.teach_controls import CONTROLS, INTEGER_FIELDS, truth_key
from dashboard.analysis.teach_results import slope_shrinkage_numbers
from dashboard.analysis.teach_texts import weight_note
from dashboard.base.numbers import fmt
from dashboard.figures import teach as ft
from dashboard.state import cached
from dashboard.views.teach import W, in_range, kept, settings
from dashboard.views.widgets import show_figure
from lmm_core import LMMError
from lmm_core.simulation.teaching_curves import is_curved

if TYPE_CHECKING:  # annotations only: the lab is run through dashboard
    from lmm_core.simulation.teaching_truth import LabTruth

__all__ = ["SHRINK_FIELDS", "shrink_truth", "shrinkage_section"]

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
        **kept(W + name + "_shrink", "shrink_" + name, getattr(truth, name), fix=in_range(name)),
        help=c.help + " Changes only this section's study; section 1 keeps its own value.",
    )


def _follow_section_one() -> None:
    for name in SHRINK_FIELDS:
        settings().pop("shrink_" + name, None)


def shrink_truth(truth: LabTruth) -> LabTruth:
    """Section 3's truth: section 1's, with this section's visits and noise when set."""
    own = {n: settings().get("shrink_" + n) for n in SHRINK_FIELDS}
    own = {
        n: (int(v) if n in INTEGER_FIELDS else float(v)) for n, v in own.items() if v is not None
    }
    return dataclasses.replace(truth, **own) if own else truth


def _intro(truth: LabTruth) -> None:
    st.markdown(
        "Each subject's **own slope** (a straight line through its data alone) is noisy. The "
        "mixed model's slope for the subject (its **BLUP**) pulls the own slope toward the "
        "population slope, by more when the own slope is unreliable: few visits, much noise, "
        "or subjects that hardly differ. Move the sliders and watch the arrows grow and shrink."
    )
    if is_curved(truth):
        st.caption(
            "With a curve, a subject's mixed-model slope is the average slope of its fitted "
            "curve over the study (the population's average slope plus the subject's own "
            "slope deviation), and its true slope is its true average slope. Its own slope is "
            "still a straight line through its own visits: for a subject who left early that "
            "line follows the start of the bend, not its average."
        )


def shrinkage_section(truth: LabTruth, seed: int, lab, result) -> None:
    """Section 3: own slopes vs mixed-model slopes vs the truth, with its own visits and noise."""
    st.subheader("3. Shrinkage: how far each subject's own slope is trusted")
    _intro(truth)
    left, right = st.columns(2)
    for name, where in zip(SHRINK_FIELDS, (left, right), strict=True):
        _shrink_control(name, truth, where)
    local = shrink_truth(truth)
    if local == truth:
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
