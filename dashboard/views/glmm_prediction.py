"""The Prediction page for a GLMM (Streamlit): the typical patient's and a new patient's
(population-averaged) probability or rate over time, per group (e.g. per arm), from
:func:`dashboard.analysis.glmm_curves.population_curves`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.analysis.glmm_curves import exposure_column, population_curves
from dashboard.base.markup import escape_text
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.views.help import how_to_read
from lmm_core.predict.prediction import population_grid

__all__ = ["INTRO", "MAX_TIMES", "glmm_forecast_table", "render_glmm_forecast"]

MAX_TIMES = 12
TYPICAL, NEW = "typical patient", "new patient"
#: the Prediction page's caption when a GLMM is active
INTRO = (
    "What the model expects for a patient over time: a typical patient (the effects of the "
    "Model page) and a new patient not in the data (averaged over how much patients differ). "
    "The fitted model is kept as it is."
)


def glmm_forecast_table(
    result, data: pd.DataFrame, time: str, by: str | None = None
) -> tuple[pd.DataFrame, dict]:
    """The typical patient's ``h(x'beta)`` and a new patient's (population-averaged)
    ``E[h(x'beta + z'b)]`` at the data's time values (at most :data:`MAX_TIMES`, evenly
    spread), per value of ``by``, other covariates held typical.

    Returns
    -------
    table, held
        Long table with ``time``, ``group`` (``"all"`` without ``by``), ``typical patient``
        and ``new patient``; the values the other covariates are held at.
    """
    used = pd.to_numeric(data.iloc[result.design.rows][time], errors="coerce").dropna()
    times = np.unique(used.to_numpy(dtype=float))
    if times.size > MAX_TIMES:
        times = np.unique(np.quantile(times, np.linspace(0, 1, MAX_TIMES)))
    grid, held = population_grid(result, data, time, by, n_points=2)
    firsts = np.arange(0, len(grid), 2)  # one row per group (the grid has 2 points each)
    grid = grid.iloc[np.repeat(firsts, len(times))].reset_index(drop=True)
    grid[time] = np.tile(times, len(firsts))
    typical, averaged = population_curves(result, grid)
    table = pd.DataFrame(
        {
            time: grid[time].to_numpy(dtype=float),
            "group": grid[by].astype(str).to_numpy() if by else "all",
            TYPICAL: typical,
            NEW: averaged,
        }
    )
    return table, held


def _wide(table: pd.DataFrame, time: str, percent: bool) -> pd.DataFrame:
    """One row per time; per group the typical and the new patient (in % for shares)."""
    unit = " (%)" if percent else ""
    scale = 100.0 if percent else 1.0
    out = pd.DataFrame({time: pd.unique(table[time])})
    for group, part in table.groupby("group", sort=False):
        prefix = "" if group == "all" else f"{group}: "
        for name in (TYPICAL, NEW):
            out[f"{prefix}{name}{unit}"] = part[name].to_numpy(dtype=float) * scale
    return out


def _what(result) -> str:
    if result.family.name != "poisson":
        return f"probability (%) of {result.response} = 1"
    exposure = exposure_column(result)
    return f"rate of {result.response} per unit of {exposure}" if exposure else "expected count"


def render_glmm_forecast(record, data: pd.DataFrame, time: str | None, by: str | None) -> None:
    """The forecast table for a typical and a new patient (per value of ``by``), what the
    two mean, and what is not available."""
    result = record.result
    if time is None or time not in data.columns:
        st.info("A forecast over time needs a numeric time column (set it on the Data page).")
        return
    rate = result.family.name == "poisson"
    table, held = glmm_forecast_table(result, data, time, by)
    st.subheader("Forecast for a typical patient and a new patient")
    wide = _wide(table, time, percent=not rate)
    st.dataframe(styled(wide, 3), hide_index=True, key="pred_glmm_table", placeholder=MISSING)
    held_text = ", ".join(f"{k} = {fmt(v, 3)}" for k, v in held.items())
    where = (
        "higher than the typical patient's (a few patients with a high rate raise the mean)"
        if rate
        else "closer to 50% than the typical patient's"
    )
    st.markdown(
        f"The {escape_text(_what(result))} over {escape_text(time)}"
        + (f" per {escape_text(by)}" if by else "")
        + (f", with {escape_text(held_text)}" if held_text else "")
        + ". **Typical patient**: a patient whose random effects are 0 (the effects of the "
        "Model page alone). **New patient**: a patient not in the data, whose own random "
        "effects are unknown: the forecast averages over how much patients differ (the "
        "population-averaged value, also the expected "
        + ("mean rate over new patients" if rate else "share of new patients with the outcome")
        + f"), {where}."
    )
    st.caption(
        "A forecast of a known patient from their own visits (with a prediction band) is "
        "not available for GLMMs: the Trajectories page draws each fitted patient's own "
        "curve."
    )
    how_to_read("population_averaged", "glmm_curves", label="Typical vs new patient")
