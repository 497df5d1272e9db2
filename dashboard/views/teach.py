"""Teach page, sections 1 and 2: the truth and the fitted shape, one study against its truth.

Also the helpers every section of the page shares: the settings dict and the widgets whose
values last in it. Sections 3 and 4 are in :mod:`dashboard.views.teach_shrinkage` and
:mod:`dashboard.views.teach_repeat`; ``pages/teach.py`` puts them in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from dashboard.analysis.teach_controls import (
    CONTROLS,
    DEFAULT_SEED,
    INTEGER_FIELDS,
    SHAPE_CHOICES,
    default_value,
    truth_key,
)
from dashboard.analysis.teach_curves import curve_note, slope_note, study_curves
from dashboard.base.constants import CONFIDENCE_LEVEL
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.figures.explore import prepare_spaghetti, spaghetti_figure
from dashboard.figures.teach import recovery_figure
from dashboard.figures.teach_curves import study_curves_figure
from dashboard.help.texts import help_text
from dashboard.io.roles import Roles
from dashboard.state import cached
from dashboard.state.session import Keys, activate_dataset, persistent_widget
from dashboard.views.widgets import show_figure
from lmm_core import LMMError
from lmm_core.simulation.teaching_curves import is_curved, lab_formula

if TYPE_CHECKING:  # annotations only: the lab is run through dashboard
    from lmm_core.simulation.teaching_truth import LabTruth

__all__ = [
    "LEVEL",
    "W",
    "control",
    "in_range",
    "kept",
    "one_study",
    "settings",
    "truth_controls",
]

W = Keys.TEACH_W
LEVEL = CONFIDENCE_LEVEL


def settings() -> dict[str, Any]:
    """The Teach page's settings (truth, seed and choices), kept in the session."""
    return st.session_state[Keys.TEACH_SETTINGS]


def in_range(name: str):
    """Cast a stored value of truth field ``name`` to its control's type and range."""
    c = CONTROLS[name]
    cast = int if name in INTEGER_FIELDS else float
    return lambda value: cast(min(max(value, c.low), c.high))


def kept(key: str, name: str, default: Any, **kw: Any) -> dict[str, Any]:
    """Widget ``key`` whose value lasts in the Teach settings under ``name``."""
    return persistent_widget(key, settings(), name, default, **kw)


def control(name: str, where=st, suffix: str = "") -> None:
    """A truth control whose value lives in the settings dict (several widgets may share it)."""
    c = CONTROLS[name]
    cast = int if name in INTEGER_FIELDS else float
    default = default_value(name)
    kw = kept(W + name + suffix, name, default, fix=in_range(name))
    kw["help"] = c.help
    lo, hi, step = cast(c.low), cast(c.high), cast(c.step)
    if c.kind == "number":
        where.number_input(c.label, min_value=lo, max_value=hi, step=step, **kw)
    else:
        where.slider(c.label, min_value=lo, max_value=hi, step=step, **kw)


def _new_seed() -> None:
    settings()["seed"] = int(settings().get("seed", DEFAULT_SEED)) % 999_999 + 1


def shape_control() -> None:
    """The shape of time in the fitted model (a truth field: ``time_df``) and its formula."""
    c = CONTROLS["time_df"]
    choices = list(SHAPE_CHOICES)
    st.radio(
        c.label,
        choices,
        format_func=SHAPE_CHOICES.get,
        horizontal=True,
        help=c.help,
        **kept(W + "time_df", "time_df", default_value("time_df"), options=choices),
    )
    time_df = settings().get("time_df", default_value("time_df"))
    st.caption(f"Fitted model: `{lab_formula(time_df if time_df in choices else 1)}`")


def truth_controls() -> None:
    """Section 1: the truth, the design and the shape of time fitted."""
    st.subheader("1. Set the truth")
    with st.container(border=True):
        left, middle, right = st.columns(3)
        left.markdown("**Population (fixed effects)**")
        for name in ("intercept", "slope", "curvature", "sigma"):
            control(name, left)
        middle.markdown("**How subjects differ (random effects)**")
        for name in ("sd_intercept", "sd_slope", "corr"):
            control(name, middle)
        right.markdown("**Study design**")
        for name in ("n_subjects", "n_visits", "dropout"):
            control(name, right)
        shape_control()
    seed_row(
        kept(W + "seed", "seed", DEFAULT_SEED, fix=int),
        W + "new_study",
        _new_seed,
        "Same truth, new random subjects and noise (the seed goes up by one).",
    )


def seed_row(
    seed_widget: dict[str, Any], button_key: str, new_seed: Callable[[], None], draw_help: str
) -> None:
    """The lab's seed box (``seed_widget``: its key and value from the lab's persistent-widget
    helper) and the "Draw a new study" button, which calls ``new_seed``."""
    seed_col, button_col = st.columns([1, 3], vertical_alignment="bottom")
    seed_col.number_input(
        "Seed",
        min_value=0,
        max_value=999_999,
        step=1,
        help="The random seed: the same truth and seed always give the same study.",
        **seed_widget,
    )
    button_col.button("Draw a new study", key=button_key, on_click=new_seed, help=draw_help)


def _study_metrics(truth: LabTruth, data, result) -> None:
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


def study_curves_panel(truth: LabTruth, lab, result) -> None:
    """The true and fitted population curves (and three subjects') on a fine grid of time."""
    curves = study_curves(lab, result)
    show_figure(study_curves_figure(curves), key="teach_curves")
    note = curve_note(truth)
    if curves.knots:
        knots = ", ".join(fmt(k, 3) for k in curves.knots)
        note += (
            f" Dash-dotted vertical lines: the spline's interior knots (at times {knots}, the "
            "tertiles of the observed visit times), where its cubic pieces join."
        )
    st.caption(note)


def one_study(truth: LabTruth, seed: int):
    """Section 2: one simulated study, its fit, and truth next to estimate."""
    st.subheader("2. One simulated study: truth vs estimate")
    try:
        lab, result = cached.teach_study(truth_key(truth), seed)
    except LMMError as err:
        st.error(f"This study could not be fitted: {err}")
        return None, None
    data = lab.data
    _study_metrics(truth, data, result)
    study_curves_panel(truth, lab, result)
    profile = st.toggle(
        "Profile-likelihood intervals for the SDs, the correlation and σ",
        **kept(W + "profile", "profile", True, fix=bool),
        help="Profile intervals are the accurate ones for variance parameters but need about "
        "a second of refits whenever the truth changes. Off: only the fixed effects get "
        "intervals.",
    )
    table = cached.teach_recovery(truth_key(truth), seed, LEVEL, profile, result)
    show_figure(recovery_figure(table, level=LEVEL), key="teach_recovery")
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
    if is_curved(truth):
        st.caption(slope_note(truth), help=help_text("average_slope"))
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
