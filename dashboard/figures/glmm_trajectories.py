"""The Trajectories figure of a GLMM: patients' own curves, the typical patient's curve, the
population-averaged curve and the observed shares (or rates), on the probability (or rate)
scale. Pure plotly, no Streamlit; the numbers come from
:func:`dashboard.analysis.glmm_curves.glmm_curves`.

The legend explains the line styles once (thin, dashed, thick, diamonds), each entry
switching every curve of its kind on or off; the colours of the groups (e.g. the arms) are
named in the legend's title, or in the panel titles with ``facet``.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.style import PALETTE, TEMPLATE, rgba, style_figure

__all__ = ["AVERAGED", "OWN", "TITLE", "TYPICAL", "glmm_trajectories_figure"]

#: legend names of the curves (tests find the traces by them)
OWN = "patients' own curves"
TYPICAL = "typical patient"
AVERAGED = "population average"
TITLE = "The typical patient vs the population average"
NEUTRAL = "#444444"


def _subjects(fig: go.Figure, frame: pd.DataFrame, color: str, label: str, cell: dict) -> None:
    """The drawn patients' own curves in one trace (NaN breaks between patients)."""
    subj = frame["subject"].to_numpy(dtype=object)
    breaks = np.flatnonzero(subj[1:] != subj[:-1]) + 1
    xs = np.insert(frame["x"].to_numpy(dtype=float), breaks, np.nan)
    ys = np.insert(frame["fitted"].to_numpy(dtype=float), breaks, np.nan)
    ids = np.insert(subj, breaks, "")
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": rgba(color, 0.45), "width": 1},
            name=f"{OWN}{label}",
            legendgroup=OWN,
            showlegend=False,
            customdata=ids,
            hovertemplate="patient <b>%{customdata}</b><br>%{x:.3g}: %{y:.3g}<extra></extra>",
            connectgaps=False,
        ),
        **cell,
    )


def _population(
    fig: go.Figure, pop: pd.DataFrame, color: str, label: str, scale: str, cell: dict
) -> None:
    """Typical patient (dashed) and population average (solid, thick)."""
    styles = ((TYPICAL, "typical", "dash", 3), (AVERAGED, "averaged", None, 4))
    for name, column, dash, width in styles:
        fig.add_trace(
            go.Scatter(
                x=pop["x"],
                y=pop[column],
                mode="lines",
                line={"color": color, "width": width, "dash": dash},
                name=f"{name}{label}",
                legendgroup=name,
                showlegend=False,
                hovertemplate=f"{name}{label}: {scale} %{{y:.3g}}<extra></extra>",
            ),
            **cell,
        )


def _observed(
    fig: go.Figure, obs: pd.DataFrame, color: str, label: str, what: str, cell: dict
) -> None:
    fig.add_trace(
        go.Scatter(
            x=obs["x"],
            y=obs["value"],
            mode="markers",
            marker={"color": color, "size": 9, "symbol": "diamond", "line": {"width": 1}},
            name=f"observed {what}{label}",
            legendgroup=f"observed {what}",
            showlegend=False,
            customdata=obs["n"],
            hovertemplate=f"observed {what}{label}: %{{y:.3g}} (%{{customdata}} rows)"
            "<extra></extra>",
        ),
        **cell,
    )


def _legend_keys(fig: go.Figure, what: str, with_subjects: bool) -> None:
    """One legend entry per kind of curve, drawn in a neutral colour (no data)."""
    keys = [
        (OWN, {"mode": "lines", "line": {"color": rgba(NEUTRAL, 0.6), "width": 1}}),
        (TYPICAL, {"mode": "lines", "line": {"color": NEUTRAL, "width": 3, "dash": "dash"}}),
        (AVERAGED, {"mode": "lines", "line": {"color": NEUTRAL, "width": 4}}),
        (
            f"observed {what}",
            {"mode": "markers", "marker": {"color": NEUTRAL, "size": 9, "symbol": "diamond"}},
        ),
    ]
    for name, style in keys[0 if with_subjects else 1 :]:
        fig.add_trace(
            go.Scatter(x=[None], y=[None], name=name, legendgroup=name, hoverinfo="skip", **style)
        )


def _colour_key(groups: list[str], by_label: str) -> str:
    """The legend title naming each group's colour (HTML spans, escaped names)."""
    spans = "   ".join(
        f"<span style='color:{PALETTE[i % len(PALETTE)]}'><b>━ {html.escape(g)}</b></span>"
        for i, g in enumerate(groups)
    )
    return f"{html.escape(by_label)}: {spans}"


def glmm_trajectories_figure(
    curves: Any,
    *,
    x_label: str = "time",
    y_label: str = "",
    by_label: str | None = None,
    facet: bool = False,
) -> go.Figure:
    """The GLMM's trajectories chart.

    Parameters
    ----------
    curves
        A :class:`dashboard.analysis.glmm_curves.GLMMCurves`.
    x_label, y_label
        Axis titles (``y_label`` defaults to the curves' scale).
    by_label
        The colour column (one colour, and one pair of population curves, per value).
    facet
        One panel per value of ``by_label`` (side by side, a shared y axis).

    Returns
    -------
    plotly.graph_objects.Figure
        Per group: the patients' own curves (thin), the typical patient's curve ``h(x'beta)``
        (dashed), the population-averaged curve ``E[h(x'beta + z'b)]`` (thick) and the
        observed shares or rates (diamonds); the y axis on the probability (0 to 1) or rate
        scale.
    """
    pop, subjects, obs = curves.population, curves.subjects, curves.observed
    what = "share" if curves.scale == "probability" else "rate"
    groups = [str(g) for g in pd.unique(pop["group"])]
    panels = bool(facet and by_label and len(groups) > 1)
    if panels:
        fig = make_subplots(
            rows=1,
            cols=len(groups),
            shared_yaxes=True,
            horizontal_spacing=0.04,
            subplot_titles=[f"{by_label} = {g}" for g in groups],
        )
    else:
        fig = go.Figure()
    for i, name in enumerate(groups):
        color = PALETTE[i % len(PALETTE)] if by_label else "#000000"
        label = f" ({name})" if by_label else ""
        cell = {"row": 1, "col": i + 1} if panels else {}
        own = subjects[subjects["group"] == name]
        if not own.empty:
            _subjects(fig, own, PALETTE[i % len(PALETTE)], label, cell)
        _population(fig, pop[pop["group"] == name], color, label, curves.scale, cell)
        seen = obs[obs["group"] == name]
        if not seen.empty:
            _observed(fig, seen, color, label, what, cell)
    _legend_keys(fig, what, not subjects.empty)
    style_figure(fig, TITLE, x_label, y_label or curves.scale)
    legend = {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}
    if by_label and not panels:
        legend["title"] = {
            "text": _colour_key(groups, by_label),
            "side": "top left",
            "font": {"size": 13},
        }
    fig.update_layout(
        template=TEMPLATE, height=560, hovermode="closest", legend=legend, margin={"b": 130}
    )
    if panels:
        fig.update_xaxes(title_text=x_label)
    if curves.scale == "probability":
        fig.update_yaxes(range=[0, 1])
    else:
        fig.update_yaxes(rangemode="tozero")
    return fig
