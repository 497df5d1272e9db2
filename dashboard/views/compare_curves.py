"""Compare page, "Does the curve earn its keep?": the active model refitted by ML with time as
a straight line, a quadratic and natural splines (a job of the runner), the verdict, the table,
the curves and the button that keeps the fits (:mod:`dashboard.analysis.curve_shape`)."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from dashboard.analysis import curve_shape as cs
from dashboard.analysis.chart_text import curves_sentence
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.base.numbers import MISSING, styled
from dashboard.figures import curve_shape as fcs
from dashboard.help.texts import ENTRIES, help_text
from dashboard.io.roles import Roles, is_numeric
from dashboard.state import work
from dashboard.state.fits import MODEL_PAGE, active_record
from dashboard.state.session import Keys, current_data, current_roles
from dashboard.views import jobs as jobs_view
from dashboard.views.compare_shared import (
    CRITERIA_COLUMNS,
    DELTA_COLUMNS,
    RULES,
    cached_fit,
    keep_fits,
    linear_only,
    show_kept_notice,
)
from dashboard.views.help import how_to_read
from dashboard.views.widgets import DATA_PAGE, show_figure
from lmm_core import LMMError

__all__ = [
    "CURVE_NOTICE",
    "CURVE_STATE",
    "CURVES",
    "W_CURVE_ADD",
    "W_CURVE_RUN",
    "curve_section",
    "show_curves",
]

CURVES = "curves"  # job kind
CURVE_STATE = "curve_shapes"  # session: data key -> cs.StoredCurves, fitted on request
CURVE_NOTICE = "curve_shapes_notice"  # text shown once after adding the shapes' fits
W_CURVE_RUN = "curve_run"  # widget: the button that fits the shapes
W_CURVE_ADD = "curve_add"  # widget: add the shapes' fits to the fitted models
CURVE_HELP = "curve_comparison"  # glossary entry of this section (when there is one)
CURVE_COLUMNS = {
    "shape": st.column_config.TextColumn("shape"),
    **CRITERIA_COLUMNS,
    **DELTA_COLUMNS,
    "Chisq": st.column_config.NumberColumn(
        "Chisq",
        help="Likelihood-ratio statistic against the straight line: twice the gain in "
        "log-likelihood.",
    ),
    "Df": st.column_config.NumberColumn(
        "Df", help="Parameters the shape adds to the straight line."
    ),
    "p": st.column_config.NumberColumn(
        "p vs line",
        help="p-value of the likelihood-ratio test against the straight line (chi-square with "
        "Df degrees of freedom). A small p says the curve fits better than chance would give.",
    ),
    "formula": st.column_config.TextColumn("formula"),
}


def _curve_state() -> dict:
    if CURVE_STATE not in st.session_state:
        st.session_state[CURVE_STATE] = {}
    return st.session_state[CURVE_STATE]


def _start_curves(plan: cs.CurvePlan, data: pd.DataFrame, settings: cs.CurveSettings) -> None:
    """Fit the shapes by ML as a job of the runner (progress per shape, Cancel between
    shapes) and store the comparison for the active dataset."""

    def store(comparison: cs.CurveComparison) -> str:
        st.session_state[CURVE_STATE] = {
            **_curve_state(),
            settings.data_key: cs.StoredCurves(settings, comparison),
        }
        return f"Shapes of the curve compared ({len(comparison.fitted)} fitted)"

    jobs_view.launch(
        (CURVES, *settings),
        lambda job: work.curve_shapes(
            plan, cached_fit(settings.data_key, False, data, job), job.report
        ),
        kind=CURVES,
        label=f"Fitting {len(plan.shapes)} shapes of the curve of {escape_message(plan.time)}",
        store=store,
    )


def _add_curve_fits(data_key: str) -> None:
    """Store the shapes' ML fits as session fit records; the active model stays active."""
    stored = _curve_state().get(data_key)
    if stored is None:
        return
    keep_fits(
        partial(cs.curve_records, stored.comparison),
        data_key,
        CURVE_NOTICE,
        "Every shape is already among the fitted models.",
    )


def _curve_figure(comparison: cs.CurveComparison, data: pd.DataFrame) -> None:
    """The competing population curves over the observed means, with what is held fixed."""
    plan = comparison.plan
    fits = [(f.shape.label, f.result) for f in comparison.fitted]
    try:
        prep = fcs.shape_curves(fits, data, plan.time, by=plan.by)
    except (LMMError, ValueError, KeyError) as error:
        st.warning(f"The curves could not be drawn: {escape_message(str(error))}")
        return
    fig = fcs.curve_shape_figure(
        prep,
        time_label=plan.time,
        outcome_label=plan.outcome,
        highlight=comparison.recommended.label if comparison.recommended else None,
    )
    show_figure(
        fig,
        key="curve_figure",
        description=curves_sentence(
            [label for label, _ in fits],
            comparison.recommended.label if comparison.recommended else None,
            plan.time,
            plan.outcome,
        ),
    )
    lines = [*prep.notes]
    if prep.failed:
        lines.append(f"No curve could be drawn for: {', '.join(prep.failed)}.")
    lines.append(
        "The curves are population averages (every random effect at zero); the thick one is "
        "the recommended shape."
    )
    st.caption(" ".join(escape_message(line) for line in lines))


def show_curves(comparison: cs.CurveComparison, data: pd.DataFrame, data_key: str) -> None:
    """Verdict, advice, problems, the table, the figure and the button to keep the fits."""
    st.markdown("**Verdict**")
    st.markdown("\n".join(f"- {sentence}" for sentence in comparison.verdict))
    if comparison.advice:
        st.info(comparison.advice)
    for problem in comparison.problems:
        st.warning(problem)
    if not comparison.fitted:
        return
    table = cs.curve_table(comparison)
    st.dataframe(
        styled(table, RULES),
        hide_index=True,
        key="curve_table",
        column_order=[c for c in table.columns if c != "formula"] + ["formula"],  # 1024 px
        column_config=CURVE_COLUMNS,
        placeholder=MISSING,
    )
    st.caption(
        "All shapes are fitted by maximum likelihood (their fixed effects differ, so REML "
        "criteria could not be compared). AIC and BIC: lower is better; delta is the distance "
        "from the best shape. Each curve is tested against the straight line, which it "
        "contains."
    )
    _curve_figure(comparison, data)
    show_kept_notice(CURVE_NOTICE)
    st.button(
        "Add the shapes' models to the fitted models",
        key=W_CURVE_ADD,
        on_click=_add_curve_fits,
        args=(data_key,),
        help="Keep these ML fits in the session so the Model, Diagnostics and other pages can "
        "show them (the active model stays as it is).",
    )


def _curve_plan(data: pd.DataFrame, roles: Roles) -> tuple[cs.CurvePlan, FitRecord] | None:
    """The shapes to compare, or ``None`` after saying what is missing."""
    time = roles.time
    if time is None or time not in data.columns or not is_numeric(data[time]):
        st.info(
            "Comparing shapes of the curve needs a numeric time column: set it on the Data page."
        )
        st.page_link(DATA_PAGE, label="Go to the Data page")
        return None
    active = active_record()
    if active is None:
        st.info(
            "Comparing shapes of the curve starts from a fitted model: fit one on the Model "
            "page first (its formula is kept, only the shape of time changes)."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        return None
    why = linear_only("Comparing shapes of the curve", active)
    if why is not None:
        st.info(why)
        return None
    try:
        return cs.plan_curves(active.formula, data, time), active
    except LMMError as error:
        st.info(str(error))
        return None


def curve_section() -> None:
    """Compare shapes of the population curve of time on request and show them."""
    help_md = help_text(CURVE_HELP) if CURVE_HELP in ENTRIES else None
    st.header("Does the curve earn its keep?", help=help_md)
    st.caption(
        "Is a curved population trend worth its extra parameters? One click refits the "
        "active model with time as a straight line, a quadratic and natural splines "
        "(everything else as it is) and tests each curve against the straight line."
    )
    data = current_data()
    planned = _curve_plan(data, current_roles())
    if planned is None:
        return
    plan, active = planned
    st.markdown(
        f"Active model: {code_span(active.formula)}. Shapes of {escape_message(plan.time)}:"
    )
    st.markdown(
        "\n".join(
            f"{i + 1}. {s.label}{' (active model)' if s.active and s.key != 'active' else ''}: "
            f"{code_span(s.formula)}"
            for i, s in enumerate(plan.shapes)
        )
    )
    for note in plan.notes:
        st.caption(note)
    data_key = st.session_state[Keys.DATA_KEY]
    settings = cs.CurveSettings(
        data_key, active.formula, plan.time, tuple(s.formula for s in plan.shapes)
    )
    if st.button("Compare the shapes", key=W_CURVE_RUN, type="primary"):
        _start_curves(plan, data, settings)
    jobs_view.show_notice(CURVES)
    if jobs_view.show_progress((CURVES, *settings)):
        return
    stored = _curve_state().get(data_key)
    if stored is None:
        return
    if stored.settings != settings:
        st.info(
            "The shapes were compared for another active model or time column. Click "
            "'Compare the shapes' to compare them again."
        )
        return
    show_curves(stored.comparison, data, data_key)
    keys = [k for k in (CURVE_HELP, "lrt", "aic", "bic") if k in ENTRIES]
    how_to_read(*keys, label="How to read the comparison of shapes")
