"""The traces of the trajectories figure: population band and curve, subjects, highlight.

Pure plotly, no Streamlit. :func:`dashboard.figures.trajectories.trajectories_figure` lays
out the panels and calls these, one group (and panel) at a time, with the frames of a
:class:`~dashboard.figures.trajectories.TrajectoryData`. The subjects' points and curves go
into one trace per kind with a NaN break between subjects (:func:`_gapped`), so a figure
of hundreds of subjects holds a handful of traces; :attr:`TraceLook.scatter` is
``go.Scattergl`` once the points are many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import rgba

__all__ = ["TraceLook", "add_highlight", "add_population", "add_subjects"]


@dataclass(frozen=True)
class TraceLook:
    """What every trace of the trajectories figure shares: labels, hover start, trace type.

    Attributes
    ----------
    subject_label, x_label, y_label, cluster_label
        Names of the subject, the axes and the cluster in legends and hover text.
    hover_id
        Start of a subject's hover text (its id, and its cluster when ``has_cluster``).
    pct
        Coverage of the population band as a percentage (``"95%"``).
    scatter
        ``go.Scatter`` or ``go.Scattergl`` for the subjects' points and curves.
    has_cluster
        Whether the cluster curves are drawn.
    """

    subject_label: str
    x_label: str
    y_label: str
    cluster_label: str
    hover_id: str
    pct: str
    scatter: type
    has_cluster: bool


def _gapped(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, values and subject/customdata with a NaN break between subjects."""
    subj = frame["subject"].to_numpy(dtype=object)
    breaks = np.flatnonzero(subj[1:] != subj[:-1]) + 1
    xs = np.insert(frame["x"].to_numpy(dtype=float), breaks, np.nan)
    ys = np.insert(frame[column].to_numpy(dtype=float), breaks, np.nan)
    custom = np.insert(
        np.column_stack([subj, frame["cluster"].to_numpy(dtype=object)]), breaks, "", axis=0
    )
    return xs, ys, custom


def _subjects_trace(look: TraceLook, frame: pd.DataFrame, column: str, **style: Any) -> Any:
    """One trace of ``column`` against ``x`` for every subject of ``frame`` (broken between
    subjects; customdata: subject and cluster), drawn as ``style`` says."""
    xs, ys, custom = _gapped(frame, column)
    return look.scatter(x=xs, y=ys, customdata=custom, **style)


def add_population(
    fig: go.Figure,
    p: pd.DataFrame,
    look: TraceLook,
    name: Any,
    label: str,
    pop_color: str,
    show_legend: bool,
    where: dict,
) -> None:
    """The confidence band and the population curve of one group (``p``: ``x``, ``fit``,
    ``lower``, ``upper``), in the panel ``where``."""
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([p["x"], p["x"][::-1]]),
            y=np.concatenate([p["upper"], p["lower"][::-1]]),
            fill="toself",
            mode="lines",
            fillcolor=rgba(pop_color, 0.18),
            line={"width": 0},
            hoverinfo="skip",
            name=f"{look.pct} confidence band{label}",
            legendgroup=f"pop{name}",
            showlegend=False,
        ),
        **where,
    )
    fig.add_trace(
        go.Scatter(
            x=p["x"],
            y=p["fit"],
            mode="lines",
            line={"color": pop_color, "width": 5},
            name=f"population average{label}",
            legendgroup=f"pop{name}",
            customdata=np.column_stack([p["lower"], p["upper"]]),
            hovertemplate=(
                f"population average{label}<br>{look.x_label} = %{{x:.3~g}}<br>{look.y_label} = "
                f"%{{y:.4~g}}<br>{look.pct} CI %{{customdata[0]:.4~g}} to "
                "%{customdata[1]:.4~g}<extra></extra>"
            ),
            showlegend=show_legend,
        ),
        **where,
    )


def add_subjects(
    fig: go.Figure,
    g: pd.DataFrame,
    c: pd.DataFrame,
    look: TraceLook,
    color: str,
    first: bool,
    where: dict,
) -> None:
    """Observed points (``g``), own fitted curves and cluster curves (on the grid ``c``) of
    one group's subjects, in the panel ``where`` (legend entries when ``first``)."""
    at_x = f"{look.x_label} = %{{x:.3~g}}<br>"
    y_label, hover_id = look.y_label, look.hover_id
    fig.add_trace(
        _subjects_trace(
            look,
            g,
            "y",
            mode="markers",
            marker={"size": 6, "color": color, "opacity": 0.55},
            name="observed",
            legendgroup="observed",
            hovertemplate=f"{hover_id}<br>{at_x}observed {y_label} = %{{y:.4~g}}<extra></extra>",
            showlegend=first,
        ),
        **where,
    )
    fig.add_trace(
        _subjects_trace(
            look,
            c,
            "fitted",
            mode="lines",
            line={"color": color, "width": 1.5},
            opacity=0.6,
            connectgaps=False,
            name=f"{look.subject_label} curves",
            legendgroup="subjects",
            hovertemplate=(
                f"{hover_id}<br>{at_x}fitted {y_label} = %{{y:.4~g}}<extra>own curve</extra>"
            ),
            showlegend=first,
        ),
        **where,
    )
    if look.has_cluster:
        cluster = look.cluster_label
        fig.add_trace(
            _subjects_trace(
                look,
                c,
                "cluster_fit",
                mode="lines",
                line={"color": color, "width": 1.2, "dash": "dot"},
                opacity=0.7,
                connectgaps=False,
                name=f"{cluster} curves",
                legendgroup="clusters",
                hovertemplate=(
                    f"{cluster} <b>%{{customdata[1]}}</b> of {look.subject_label} "
                    f"%{{customdata[0]}}<br>{at_x}{y_label} = "
                    f"%{{y:.4~g}}<extra>{cluster} curve</extra>"
                ),
                showlegend=first,
            ),
            **where,
        )


def add_highlight(fig: go.Figure, h: pd.DataFrame, look: TraceLook, sid: Any, where: dict) -> None:
    """One highlighted subject's fitted curve (on its grid ``h``), drawn thick and black,
    with a dot at each visit, in the panel ``where``."""
    visit = h["visit"].to_numpy(dtype=bool)
    fig.add_trace(
        go.Scatter(
            x=h["x"],
            y=h["fitted"],
            mode="lines+markers",
            line={"color": "#000000", "width": 3.5},
            marker={"size": np.where(visit, 8, 0), "color": "#000000"},
            name=f"{look.subject_label} {sid}",
            customdata=np.column_stack([h["subject"], h["cluster"]]),
            hovertemplate=(
                f"{look.hover_id}<br>{look.x_label} = %{{x:.3~g}}<br>fitted {look.y_label} = "
                "%{y:.4~g}<extra>selected</extra>"
            ),
        ),
        **where,
    )
