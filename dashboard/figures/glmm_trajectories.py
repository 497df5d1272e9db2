"""The Trajectories figure of a GLMM: patients' own curves, the typical patient's curve, the
population-averaged curve and the observed shares (or rates), on the probability (or rate)
scale. Pure plotly, no Streamlit; the numbers come from
:func:`dashboard.analysis.glmm_curves.glmm_curves`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import PALETTE, TEMPLATE, rgba, style_figure

__all__ = ["AVERAGED", "TYPICAL", "glmm_trajectories_figure"]

#: legend names of the two population curves (tests find the traces by them)
TYPICAL = "typical patient (b = 0)"
AVERAGED = "population average"


def _subjects(fig: go.Figure, frame: pd.DataFrame, color: str, label: str, legend: bool) -> None:
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
            line={"color": rgba(color, 0.35), "width": 1},
            name=f"patients' own curves{label}",
            legendgroup="own",
            showlegend=legend,
            customdata=ids,
            hovertemplate="patient <b>%{customdata}</b><br>%{x:.3g}: %{y:.3g}<extra></extra>",
            connectgaps=False,
        )
    )


def _population(fig: go.Figure, pop: pd.DataFrame, color: str, label: str, scale: str) -> None:
    """Typical patient (dashed) and population average (solid, thick)."""
    fig.add_trace(
        go.Scatter(
            x=pop["x"],
            y=pop["typical"],
            mode="lines",
            line={"color": color, "width": 3, "dash": "dash"},
            name=f"{TYPICAL}{label}",
            hovertemplate=f"typical patient{label}: {scale} %{{y:.3g}}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=pop["x"],
            y=pop["averaged"],
            mode="lines",
            line={"color": color, "width": 4},
            name=f"{AVERAGED}{label}",
            hovertemplate=f"population average{label}: {scale} %{{y:.3g}}<extra></extra>",
        )
    )


def _observed(fig: go.Figure, obs: pd.DataFrame, color: str, label: str, what: str) -> None:
    fig.add_trace(
        go.Scatter(
            x=obs["x"],
            y=obs["value"],
            mode="markers",
            marker={"color": color, "size": 9, "symbol": "diamond", "line": {"width": 1}},
            name=f"observed {what}{label}",
            customdata=obs["n"],
            hovertemplate=f"observed {what}{label}: %{{y:.3g}} (%{{customdata}} rows)"
            "<extra></extra>",
        )
    )


def glmm_trajectories_figure(
    curves: Any, *, x_label: str = "time", y_label: str = "", by_label: str | None = None
) -> go.Figure:
    """``curves``: a :class:`dashboard.analysis.glmm_curves.GLMMCurves`. Per colour group:
    the patients' own curves (thin), the typical patient's curve
    (dashed), the population-averaged curve (thick solid) and the observed shares or rates
    (diamonds); the y axis on the probability (0 to 1) or rate scale."""
    pop, subjects, obs = curves.population, curves.subjects, curves.observed
    what = "share" if curves.scale == "probability" else "rate"
    fig = go.Figure()
    for i, name in enumerate(pd.unique(pop["group"])):
        color = PALETTE[i % len(PALETTE)] if by_label else "#000000"
        label = f" ({name})" if by_label else ""
        own = subjects[subjects["group"] == name]
        if not own.empty:
            _subjects(fig, own, PALETTE[i % len(PALETTE)], label, True)
        _population(fig, pop[pop["group"] == name], color, label, curves.scale)
        seen = obs[obs["group"] == name]
        if not seen.empty:
            _observed(fig, seen, color, label, what)
    title = "Model trajectories: the typical patient vs the population average"
    style_figure(fig, title, x_label, y_label or curves.scale)
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.19, "x": 0},
        margin={"b": 150},
    )
    if curves.scale == "probability":
        fig.update_yaxes(range=[0, 1])
    else:
        fig.update_yaxes(rangemode="tozero")
    return fig
