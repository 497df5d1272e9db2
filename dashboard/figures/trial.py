"""Figures of the Trial page: who is seen at which visit, and the correlation between visits
estimated by an MMRM beside the one observed in the data.

Pure plotly, no Streamlit; the inputs are the tables of :mod:`dashboard.analysis.trial`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.correlation import heatmap_pair
from dashboard.figures.style import PALETTE, style_figure

__all__ = [
    "correlation_pair",
    "difference_forest",
    "dropout_figure",
    "lsmeans_figure",
    "pattern_figure",
]


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


def pattern_figure(cells: pd.DataFrame, counts: pd.DataFrame, visit_label: str) -> go.Figure:
    """The patterns of visits seen: one row per pattern (most frequent on top), a filled cell
    where its patients have a value, and the number of patients beside each row.

    Parameters
    ----------
    cells, counts
        Patterns x visits (1 seen, 0 missed, a share on a pooled row) and the patterns'
        ``pattern``, ``patients`` and ``by_arm`` (:func:`dashboard.analysis.trial.visit_patterns`).
    visit_label
        Name of the visit column (axis title).
    """
    rows = [f"{p} ({n:,})" for p, n in zip(counts["pattern"], counts["patients"], strict=True)]
    arms = ["<br>".join(f"{a}: {k:,}" for a, k in d.items()) for d in counts["by_arm"]]
    visits = [str(v) for v in cells.columns]
    values = cells.to_numpy(float)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=visits,
            y=rows,
            zmin=0.0,
            zmax=1.0,
            colorscale=[[0.0, "#f2f2f2"], [1.0, PALETTE[0]]],
            showscale=False,
            xgap=2,
            ygap=2,
            customdata=np.array([[a] * len(visits) for a in arms], dtype=object),
            hovertemplate=f"%{{y}}<br>{visit_label} %{{x}}: seen %{{z:.0%}}<br>"
            "%{customdata}<extra></extra>",
        )
    )
    style_figure(fig, "Patterns of visits seen (patients in brackets)", visit_label, "")
    fig.update_layout(
        xaxis_type="category",
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
        height=max(260, 100 + 28 * len(rows)),
    )
    return fig


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
    model_hover = np.full((n, n), "estimated by the model", dtype=object)
    pair_hover = np.vectorize(lambda k: f"{k:,} patients seen at both")(pairs.to_numpy())
    return heatmap_pair(
        model.to_numpy(float),
        observed.to_numpy(float),
        labels,
        (model_hover, pair_hover),
        titles=(title, "Observed (residuals of the fixed part)"),
        title="Estimated and observed",
        axis_label=visit_label,
        zmin=-1.0,
        unit="visits",
        height=480,
    )


def lsmeans_figure(table: pd.DataFrame, visit: str, arm: str, outcome: str) -> go.Figure:
    """The arms' LS-means over the visits with their 95% intervals (error bars).

    Parameters
    ----------
    table
        ``visit``, ``arm``, ``estimate``, ``ci_lower``, ``ci_upper`` per cell
        (:func:`dashboard.analysis.trial.arm_lsmeans`).
    visit, arm, outcome
        Column names (the first two are columns of ``table``; axis titles).
    """
    fig = go.Figure()
    for i, (level, rows) in enumerate(table.groupby(arm, sort=False, observed=True)):
        est = rows["estimate"].to_numpy(float)
        fig.add_scatter(
            x=[str(v) for v in rows[visit]],
            y=est,
            name=str(level),
            mode="lines+markers",
            marker_color=PALETTE[i % len(PALETTE)],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": rows["ci_upper"].to_numpy(float) - est,
                "arrayminus": est - rows["ci_lower"].to_numpy(float),
            },
            customdata=np.c_[rows["ci_lower"], rows["ci_upper"]],
            hovertemplate=f"{level}<br>{visit} %{{x}}<br>LS-mean %{{y:.4~g}}<br>95% CI "
            "%{customdata[0]:.4~g} to %{customdata[1]:.4~g}<extra></extra>",
        )
    style_figure(fig, "LS-means per arm and visit (95% CI)", visit, outcome)
    fig.update_layout(
        xaxis_type="category",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    return fig


def difference_forest(table: pd.DataFrame, visit: str, outcome: str) -> go.Figure:
    """Forest plot of the treatment difference at each visit with its 95% interval and a
    line at zero (no difference).

    Parameters
    ----------
    table
        ``visit``, ``contrast``, ``estimate``, ``ci_lower``, ``ci_upper``, ``p_value``
        (:func:`dashboard.analysis.trial.treatment_differences`).
    visit, outcome
        Column names (axis titles).
    """
    est = table["estimate"].to_numpy(float)
    labels = [str(v) for v in table[visit]]
    fig = go.Figure()
    fig.add_vline(x=0.0, line={"color": "#888", "dash": "dash"})
    fig.add_scatter(
        x=est,
        y=labels,
        mode="markers",
        marker={"color": PALETTE[0], "size": 9, "symbol": "square"},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": table["ci_upper"].to_numpy(float) - est,
            "arrayminus": est - table["ci_lower"].to_numpy(float),
        },
        customdata=np.c_[table["ci_lower"], table["ci_upper"], table["p_value"]],
        hovertemplate=f"{visit} %{{y}}<br>difference %{{x:.4~g}}<br>95% CI %{{customdata[0]:.4~g}}"
        " to %{customdata[1]:.4~g}<br>p %{customdata[2]:.3~g}<extra></extra>",
        showlegend=False,
    )
    contrast = str(table["contrast"].iloc[0]) if len(table) else "difference"
    style_figure(fig, f"Treatment difference per visit: {contrast} (95% CI)", outcome, visit)
    fig.update_layout(yaxis={"type": "category", "autorange": "reversed"}, height=360)
    return fig
