"""Prediction page: forecast a new patient's course from their first visits, without refitting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.analysis.mmrm_models import is_mmrm
from dashboard.base.markup import escape_text, plain_index, plain_name
from dashboard.base.numbers import MISSING, fmt_pct, styled
from dashboard.figures import prediction as fp
from dashboard.figures import trajectories as ft
from dashboard.figures.knots import axis_knots, knots_caption
from dashboard.figures.model_inputs import model_columns, subject_group
from dashboard.help.texts import help_text
from dashboard.io.roles import is_numeric
from dashboard.state import cached
from dashboard.state.fits import require_fit
from dashboard.state.session import Keys, init_state, persistent_widget
from dashboard.views.glmm_model import require_model_data
from dashboard.views.glmm_prediction import INTRO as GLMM_INTRO
from dashboard.views.glmm_prediction import render_glmm_forecast
from dashboard.views.help import column, how_to_read
from dashboard.views.mmrm import needs_random_effects
from dashboard.views.streamed_notice import show_sample_notice
from dashboard.views.widgets import model_caption, show_figure
from lmm_core import LMMError

W = Keys.PRED_W
NEW = "(a new one)"
LEVEL = 0.95


def _settings() -> dict[str, Any]:
    return st.session_state[Keys.PRED_SETTINGS]


def _seed(name: str, default: Any, options: list | None = None, **kw: Any) -> dict[str, Any]:
    """Widget ``name`` kept in the Prediction settings (see ``persistent_widget``)."""
    return persistent_widget(W + name, _settings(), name, default, options=options, **kw)


def patient_inputs(data, used, roles, result, covariates, groups):
    """Patient, number of visits, horizon and covariates; returns the choices."""
    subject, time = roles.subject, roles.time
    visits = used.groupby(subject, sort=False, observed=True).size()
    ids = [str(s) for s in visits.index]
    default = str(visits.idxmax())
    c1, c2, c3 = st.columns(3)
    patient = c1.selectbox(
        f"Start from a {subject} of the data",
        ids,
        **_seed("patient", default, ids),
        help="Their first visits fill the table below; the model treats them as a new "
        f"{subject} (their own random effects from the fit are not used).",
    )
    rows = used[used[subject].astype(str) == patient].sort_values(time)
    n_max = len(rows)
    k_default = min(2, n_max)
    k = c2.number_input(
        "Visits to use (the first k)",
        min_value=0,
        max_value=n_max,
        step=1,
        **_seed("k", k_default, fix=lambda k: k if 0 <= k <= n_max else k_default),
        help="0 gives the population forecast; add visits to see the bands narrow.",
    )
    t_all = pd.to_numeric(used[time], errors="coerce")
    horizon = c3.number_input(
        f"Forecast up to {time}", step=1.0, **_seed("horizon", float(t_all.max()), fix=float)
    )
    first = rows.iloc[0]
    values: dict[str, object] = {}
    others = [c for c in covariates if c != time] + [g for g in groups if g != subject]
    cols = st.columns(max(1, len(others))) if others else []
    for col, box in zip(others, cols, strict=False):
        if col in groups:
            options = [NEW, *sorted(map(str, used[col].dropna().unique()))]
            chosen = box.selectbox(
                f"{col} of the patient",
                options,
                **_seed(f"cov_{col}", str(first[col]), options),
                help=f"A {col} of the fit adds its estimated effect; a new one adds none.",
            )
            values[col] = None if chosen == NEW else chosen
        elif is_numeric(data[col]):
            values[col] = box.number_input(
                f"{col} (held fixed)", **_seed(f"cov_{col}", float(first[col]))
            )
        else:
            options = sorted(map(str, used[col].dropna().unique()))
            values[col] = box.selectbox(
                f"{col} of the patient", options, **_seed(f"cov_{col}", str(first[col]), options)
            )
    return patient, rows, int(k), float(horizon), values


def visits_editor(rows: pd.DataFrame, k: int, time: str, response: str, patient: str):
    """The editable table of observed visits (prefilled with the first ``k``)."""
    start = rows[[time, response]].head(k).reset_index(drop=True).astype(float)
    st.markdown(
        f"**Observed visits of the new patient** (prefilled from {patient}'s first {k}; "
        "edit values, add or delete rows)"
    )
    edited = st.data_editor(
        start,
        num_rows="dynamic",
        key=f"{W}visits_{patient}_{k}",
        column_config={
            time: st.column_config.NumberColumn(time, required=True),
            response: st.column_config.NumberColumn(response, required=True),
        },
        hide_index=True,
    )
    return pd.DataFrame(edited).apply(pd.to_numeric, errors="coerce").dropna()


def with_covariates(frame: pd.DataFrame, values: dict, used: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the patient's covariates, with the data's column types."""
    out = frame.copy()
    for col, v in values.items():
        series = pd.Series([v] * len(out), index=out.index, dtype=object)
        dtype = used[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) and v is not None:
            series = series.astype(dtype)
        elif is_numeric(used[col]):
            series = series.astype(float)
        out[col] = series
    return out


def _effect(name: str, curved: bool) -> str:
    """A random effect in words, Markdown-safe: the intercept is the level, a spline or
    polynomial column a coefficient of the curve, any other column a slope."""
    if name == "(Intercept)":
        return "its intercept (level)"
    shown = escape_text(plain_name(name))
    return f"its curve coefficient {shown}" if curved else f"its {shown} slope"


def _is_basis(name: str, result) -> bool:
    """True for a column of a spline or polynomial term (``ns(Time, 2)1``)."""
    return any(plain_name(name).startswith(label) for label in result.design.bases)


def explain(fc, n: int, subject: str, time: str, result) -> None:
    """Plain words: how much the visits have taught the model about this patient."""
    learned = fc.learned
    curved = [_is_basis(name, result) for name in learned.index]
    parts = [
        f"{_effect(name, bent)}: **{fmt_pct(share)}**"
        for (name, share), bent in zip(learned.items(), curved, strict=True)
    ]
    if n == 0:
        lead = (
            "With no visits the model knows nothing about this patient yet: the forecast is "
            "the population average and the band holds the whole spread between patients."
        )
    elif learned.mean() < 0.5:
        lead = (
            f"With {n} visit{'s' if n > 1 else ''} the model still mostly trusts the "
            "population: the forecast is pulled only part of the way towards this patient."
        )
    else:
        lead = (
            f"With {n} visits the model follows this patient: their own level"
            + (" and rate of change" if len(learned) > 1 and not any(curved) else "")
            + (" and shape of change over time" if any(curved) else "")
            + " now dominate the forecast."
        )
    st.markdown(
        f"{lead} Share of the between-{subject} uncertainty the visits have removed: "
        + ", ".join(parts)
        + "."
    )
    st.markdown(
        "- **Darkest band**: uncertainty of the population average only (the fixed effects).\n"
        f"- **Middle band**: + what is still unknown about this {subject}'s own deviation "
        "(their random effects given the visits): where their true course lies.\n"
        "- **Lightest band**: + the scatter of single measurements (the residual): where a "
        f"new measurement will fall, {LEVEL:.0%} of the time.\n"
        "- **Dashed line**: the population average, for comparison. The model is not "
        f"refitted: the new {subject}'s random effects are estimated from the visits with "
        "the fitted variances (the BLUP formula)."
    )
    if any(curved):
        st.caption(
            f"The curve coefficients multiply the smooth basis curves of the model's spline "
            f"or polynomial in {time}; together with the level they make this {subject}'s own "
            f"curve, so each one alone is not a rate of change."
        )


def later_visits(rows: pd.DataFrame, k: int, horizon: float, time: str, response: str):
    """The chosen patient's visits after the first ``k``, up to the horizon: ``x``, ``y``."""
    later = rows.iloc[k:]
    later = pd.DataFrame({"x": later[time].to_numpy(float), "y": later[response].to_numpy(float)})
    return later[later["x"] <= horizon].reset_index(drop=True)


def future_visits(later: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """The table's rows: each later visit (with its measured value) and the horizon."""
    if len(later) and later["x"].iloc[-1] == horizon:
        return later
    return pd.concat([later, pd.DataFrame({"x": [horizon], "y": [np.nan]})], ignore_index=True)


def forecast_section(fc, edited, future, later, roles, response: str, result):
    """The forecast chart with the later visits of the chosen patient, and what it says."""
    time = roles.time
    knots = axis_knots(result, time)
    fig = fp.forecast_figure(
        fc,
        future[time],
        pd.DataFrame({"x": edited[time], "y": edited[response]}),
        later=later,
        x_label=time,
        y_label=response,
        knots=knots,
    )
    show_figure(fig, W + "chart")
    if knots:
        st.caption(knots_caption(result, time, knots), help=help_text("knots"))
    explain(fc, fc.n_observed, roles.subject, time, result)


def ranef_section(fc, subject: str) -> None:
    """The new subject's random effects before any visit and given the visits."""
    st.markdown(f"**This {subject}'s random effects**: before any visit and given the visits")
    ranef = pd.DataFrame(
        {
            "SD before any visit": fc.ranef_prior_sd,
            "estimate given the visits": fc.ranef_mean,
            "SD given the visits": np.sqrt(np.diag(fc.ranef_cov)),
            "uncertainty removed": fc.learned,
        }
    )
    ranef = plain_index(ranef)  # names as written, e.g. I(Visit day/7)
    st.dataframe(
        styled(ranef, {"uncertainty removed": "pct"}),
        key=W + "ranef",
        column_config={
            "SD before any visit": column("prior_sd"),
            "estimate given the visits": column("blup"),
            "SD given the visits": column("conditional_sd"),
            "uncertainty removed": column("uncertainty_removed"),
        },
        placeholder=MISSING,
    )


def table_section(fc, future, visits: pd.DataFrame, time: str, patient: str) -> None:
    """The forecast and its bands at each later visit of the patient and at the horizon."""
    st.markdown(
        f"**Forecast** ({LEVEL:.0%} bands) at each later visit of {escape_text(patient)} "
        "and at the horizon"
    )
    table = fp.forecast_table(fc, future[time], time, at=visits)
    st.dataframe(
        styled(table),
        key=W + "table",
        hide_index=True,
        column_config={
            "measured (not used)": st.column_config.NumberColumn(
                help="What this patient actually measured at that visit; the forecast did "
                "not use it, so it shows how well the bands cover a real later value."
            ),
            "forecast": column("forecast"),
            "population": column("population_prediction"),
            "patient band low": column("band_patient"),
            "patient band high": column("band_patient"),
            "prediction low": column("band_prediction"),
            "prediction high": column("band_prediction"),
        },
        placeholder=MISSING,
    )


def band_width_section(record, observed, future, group: str, horizon: float, time: str) -> None:
    """How each band narrows as visits are added (one forecast per number of visits)."""
    widths = cached.band_widths(
        record.key, observed, future.iloc[[-1]], LEVEL, group, record.result
    )
    show_figure(fp.band_width_figure(widths, x_value=horizon, x_label=time), W + "widths")
    st.caption(
        f"Width of each band at {time} = {horizon:g} when the first 0, 1, 2... visits are "
        "used: the bands narrow as visits are added, but band 3 never gets narrower than "
        "the scatter of single measurements allows. A thick pale line under a thinner one: "
        "two bands of almost the same width."
    )


def main() -> None:
    """Render the Prediction page."""
    init_state()
    st.title("Prediction")
    intro = st.empty()  # a GLMM's page says what it shows instead
    intro.caption(
        "Forecast the course of a new patient from their first visits. The fitted model is "
        "kept as it is; the new patient's own deviation is estimated from the visits you "
        "enter, and the forecast narrows as visits are added."
    )
    data, roles = require_model_data("The Prediction page")
    record = require_fit("The Prediction page")
    show_sample_notice(record, "the times and patients offered here come from")
    result = record.result
    if is_mmrm(result):  # no random effects: nothing patient-specific to show
        st.markdown(model_caption(record))
        needs_random_effects("forecast")
        st.stop()
    if record.is_glmm:  # probabilities or rates: the typical and a new patient
        intro.caption(GLMM_INTRO)
        st.markdown(model_caption(record))
        by = ft.by_options(data, roles, result)[1]
        render_glmm_forecast(record, data, roles.time, None if by == ft.NONE_CHOICE else by)
        st.stop()
    st.markdown(model_caption(record))
    subject, time = roles.subject, roles.time
    response, covariates, groups = model_columns(result)
    if time not in covariates:
        st.warning(f"The model does not use {time}: the forecast is flat in {time}.")
    used = data.iloc[result.design.rows]
    patient, rows, k, horizon, values = patient_inputs(
        data, used, roles, result, covariates, groups
    )
    edited = visits_editor(rows, k, time, response, patient)
    observed = with_covariates(edited, values, used)
    t_min = float(pd.to_numeric(used[time]).min())
    later = later_visits(rows, k, horizon, time, response)
    visits = future_visits(later, horizon)
    times = np.concatenate([edited[time].to_numpy(float), visits["x"].to_numpy(float)])
    future = with_covariates(fp.future_rows({}, time, t_min, horizon, at=times), values, used)
    group = subject_group(result, subject)
    try:
        fc = cached.forecast(record.key, observed, future, LEVEL, group, result)
    except LMMError as err:
        st.error(f"The forecast could not be computed: {err}")
        st.stop()
    forecast_section(fc, edited, future, later, roles, response, result)
    ranef_section(fc, subject)
    table_section(fc, future, visits, time, patient)
    band_width_section(record, observed, future, group, horizon, time)
    how_to_read(
        "band_fixed",
        "band_patient",
        "band_prediction",
        "confidence_vs_prediction",
        "uncertainty_removed",
        "band_width",
        label="How to read the bands and tables",
    )


main()
