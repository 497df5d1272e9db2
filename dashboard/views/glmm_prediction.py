"""The Prediction page for a GLMM (Streamlit): the typical patient's and a new patient's
(population-averaged) probability or rate over time, from
:func:`dashboard.analysis.glmm_curves.population_curves`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.analysis.glmm_curves import exposure_column, population_curves
from dashboard.base.markup import escape_message
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.views.help import how_to_read
from lmm_core.predict.prediction import population_grid

__all__ = ["MAX_TIMES", "glmm_forecast_table", "render_glmm_forecast"]

MAX_TIMES = 12


def glmm_forecast_table(result, data: pd.DataFrame, time: str) -> tuple[pd.DataFrame, dict]:
    """The typical patient's and the population-averaged mean at the data's time values
    (at most :data:`MAX_TIMES`, evenly spread), other covariates held typical."""
    used = pd.to_numeric(data.iloc[result.design.rows][time], errors="coerce").dropna()
    times = np.unique(used.to_numpy(dtype=float))
    if times.size > MAX_TIMES:
        times = np.unique(np.quantile(times, np.linspace(0, 1, MAX_TIMES)))
    grid, held = population_grid(result, data, time, n_points=2)
    grid = grid.iloc[[0] * len(times)].reset_index(drop=True)
    grid[time] = times
    typical, averaged = population_curves(result, grid)
    return pd.DataFrame({time: times, "typical patient": typical, "new patient": averaged}), held


def render_glmm_forecast(record, data: pd.DataFrame, time: str | None) -> None:
    """The forecast table for a typical and a new patient, and what is not available."""
    result = record.result
    rate = result.family.name == "poisson"
    exposure = exposure_column(result)
    what = (
        f"rate per unit of {escape_message(exposure)}"
        if rate and exposure
        else ("expected count" if rate else f"probability of {escape_message(result.response)} = 1")
    )
    if time is None or time not in data.columns:
        st.info("A forecast over time needs a numeric time column (set it on the Data page).")
        return
    table, held = glmm_forecast_table(result, data, time)
    st.subheader("Forecast for a typical patient and a new patient")
    st.dataframe(styled(table, 3), hide_index=True, key="pred_glmm_table", placeholder=MISSING)
    held_text = ", ".join(f"{k} = {fmt(v)}" for k, v in held.items())
    st.markdown(
        f"The {what} over {escape_message(time)}"
        + (f", with {escape_message(held_text)}" if held_text else "")
        + ". **Typical patient**: a patient whose random effects are 0 (the fixed effects "
        "alone). **New patient**: a patient not in the data, whose random effects are "
        "unknown: the forecast averages over their distribution (the population-averaged "
        "value, also the expected share of new patients with the outcome), closer to the "
        "middle than the typical patient's."
    )
    st.caption(
        "A forecast of a known patient from their own visits (with a prediction band) is "
        "not available for GLMMs: the Trajectories page draws each fitted patient's own "
        "curve."
    )
    how_to_read("population_averaged", "glmm_curves", label="Typical vs new patient")
