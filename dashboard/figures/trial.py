"""Figures of the Trial page: who is seen at which visit, and the correlation between visits
estimated by an MMRM beside the one observed in the data.

Pure plotly, no Streamlit; the inputs are the tables of :mod:`dashboard.analysis.trial`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.numbers import fmt
from dashboard.figures.style import PALETTE, TEMPLATE, style_figure

__all__ = ["correlation_pair", "dropout_figure"]


def dropout_figure(per_visit: pd.DataFrame, visit_label: str) -> go.Figure:
    """Bars per visit and arm: the share of the arm's randomised patients seen at the visit.

    Parameters
    ----------
    per_visit
        ``arm``, ``visit``, ``seen``, ``patients``, ``share``
        (:func:`dashboard.analysis.trial.dropout_summary`).
    visit_label
        Name of the visit column (axis title).
    """
    fig = go.Figure()
    for i, (arm, rows) in enumerate(per_visit.groupby("arm", sort=False)):
        fig.add_bar(
            x=[str(v) for v in rows["visit"]],
            y=100.0 * rows["share"],
            name=str(arm),
            marker_color=PALETTE[i % len(PALETTE)],
            text=[f"{k:,}" for k in rows["seen"]],
            textposition="inside",
            customdata=np.c_[rows["seen"], rows["patients"]],
            hovertemplate=f"{arm}<br>{visit_label} %{{x}}<br>seen %{{customdata[0]:,}} of "
            "%{customdata[1]:,} (%{y:.0f}%)<extra></extra>",
        )
    style_figure(fig, "Patients seen at each visit", visit_label, "% of the arm's patients")
    fig.update_layout(
        barmode="group",
        yaxis_range=[0, 105],
        xaxis_type="category",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        height=380,
    )
    return fig


def _heatmap(z: np.ndarray, labels: list[str], hover: np.ndarray, show: bool) -> go.Heatmap:
    text = np.where(np.isfinite(z), np.vectorize(lambda v: fmt(v, 2))(np.nan_to_num(z)), "")
    return go.Heatmap(
        z=z,
        x=labels,
        y=labels,
        zmin=-1.0,
        zmax=1.0,
        colorscale="RdBu",
        reversescale=True,
        text=text,
        texttemplate="%{text}",
        customdata=hover,
        hovertemplate="visits %{y} and %{x}<br>correlation %{z:.3~g}<br>%{customdata}"
        "<extra></extra>",
        showscale=show,
        colorbar={"title": {"text": "corr."}, "len": 0.9},
    )


def correlation_pair(
    model: pd.DataFrame, observed: pd.DataFrame, pairs: pd.DataFrame, title: str, visit_label: str
) -> go.Figure:
    """Two heatmaps on one colour scale (-1 to 1): the correlation between visits estimated
    by the model and the observed one.

    Parameters
    ----------
    model
        Visits x visits correlation of the fitted structure.
    observed
        Visits x visits pairwise-complete correlation of the residuals (same order).
    pairs
        Visits x visits number of patients seen at both visits.
    title
        What the left panel shows (the structure).
    visit_label
        Name of the visit column (axis titles).
    """
    labels = [str(v) for v in model.index]
    n = len(labels)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(title, "Observed (residuals of the fixed part)"),
        horizontal_spacing=0.08,
    )
    model_hover = np.full((n, n), "estimated by the model", dtype=object)
    pair_hover = np.vectorize(lambda k: f"{k:,} patients seen at both")(pairs.to_numpy())
    fig.add_trace(_heatmap(model.to_numpy(float), labels, model_hover, False), row=1, col=1)
    fig.add_trace(_heatmap(observed.to_numpy(float), labels, pair_hover, True), row=1, col=2)
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "Estimated and observed"},
        height=480,
        margin={"t": 90, "l": 70, "r": 20, "b": 60},
    )
    for col in (1, 2):
        fig.update_xaxes(title_text=visit_label, type="category", row=1, col=col)
        fig.update_yaxes(
            title_text=visit_label if col == 1 else None,
            type="category",
            autorange="reversed",
            scaleanchor=f"x{'' if col == 1 else col}",
            row=1,
            col=col,
        )
    return fig
