"""Simulation-lab figure (Teach page, section 2): the true and the fitted curves of one study.

Pure functions, no Streamlit. The curves on a fine grid of time are
:func:`dashboard.analysis.teach_curves.study_curves`; this module only draws them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import PALETTE, TEMPLATE, rgba
from dashboard.figures.teach_style import EST, GREY, TRUTH, legend_entry, legend_top

__all__ = ["SUBJECT_COLORS", "study_curves_figure"]

#: colours of the few subjects drawn in section 2 (none is the estimate's blue or the miss red)
SUBJECT_COLORS = (PALETTE[1], PALETTE[2], PALETTE[4], PALETTE[5])


def study_curves_figure(curves: Any) -> go.Figure:
    """The true and the fitted population curve on a fine grid of time, a few subjects.

    ``curves`` is :func:`dashboard.analysis.teach_curves.study_curves` (a ``StudyCurves``). Traces:
    the observed mean per visit (grey diamonds); per shown subject its visits (dots), its
    fitted curve (line; the subject's legend entry) and its true curve (dotted), grouped in
    the legend; then the true population curve (black) and the fitted one (blue, dashed,
    drawn last so that it stays visible where it lies on the truth); a legend entry for the
    subjects' dotted true curves; and, for a spline, its interior knots as dash-dotted
    vertical lines (with a legend entry). The legend lists the population curves first.
    """
    m = curves.means
    fig = go.Figure(
        go.Scatter(
            x=m["time"],
            y=m["y"],
            mode="markers",
            name="observed mean at each visit",
            legendrank=3,
            marker={"symbol": "diamond", "size": 9, "color": GREY},
            customdata=m["n"],
            hovertemplate="time %{x:.3~g}: mean %{y:.4~g} (%{customdata} subjects)<extra></extra>",
        )
    )
    for j, (subject, part) in enumerate(curves.subjects.groupby("subject", sort=False)):
        _add_subject(fig, subject, part, curves.points, SUBJECT_COLORS[j % len(SUBJECT_COLORS)])
    g = curves.grid
    for rank, (column, name, color, dash) in enumerate(
        (
            ("truth", "true population curve", TRUTH, "solid"),
            ("fitted", f"fitted population curve ({curves.shape})", EST, "dash"),
        ),
        start=1,
    ):
        fig.add_trace(
            go.Scatter(
                x=g["time"],
                y=g[column],
                mode="lines",
                name=name,
                legendrank=rank,
                line={"color": color, "width": 3, "dash": dash},
                hovertemplate=f"{name}<br>time %{{x:.3~g}}: %{{y:.4~g}}<extra></extra>",
            )
        )
    legend_only = [("a subject's true curve", "dot", 1.6)] if len(curves.subjects) else []
    for k in curves.knots:
        fig.add_vline(x=k, line={"color": GREY, "dash": "dashdot", "width": 1})
    if curves.knots:
        legend_only.append(("spline knot", "dashdot", 1.0))
    for name, dash, width in legend_only:
        legend_entry(fig, name, legendrank=30, line={"color": GREY, "dash": dash, "width": width})
    fig.update_layout(
        template=TEMPLATE,
        height=460,
        xaxis_title="time (visit)",
        yaxis_title="y",
        margin={"t": 90},
    )
    legend_top(fig)
    return fig


def _add_subject(
    fig: go.Figure, subject: str, curve: pd.DataFrame, points: pd.DataFrame, color: str
) -> None:
    """One shown subject: its visits, its fitted curve (legend entry) and its true curve."""
    seen = points[points["subject"] == subject]
    common = {"legendgroup": subject, "showlegend": False}
    fig.add_trace(
        go.Scatter(
            x=seen["time"],
            y=seen["y"],
            mode="markers",
            marker={"size": 7, "color": rgba(color, 0.85)},
            name=f"{subject}: visits",
            hovertemplate=f"{subject}<br>time %{{x:.3~g}}: y %{{y:.4~g}}<extra></extra>",
            **common,
        )
    )
    for column, dash, name in (("fitted", "solid", f"subject {subject}"), ("truth", "dot", "")):
        fig.add_trace(
            go.Scatter(
                x=curve["time"],
                y=curve[column],
                mode="lines",
                line={"color": rgba(color, 0.8), "width": 1.6, "dash": dash},
                name=name or f"{subject}: true curve",
                legendrank=10,
                hovertemplate=(
                    f"{subject}, {'fitted' if column == 'fitted' else 'true'} curve"
                    "<br>time %{x:.3~g}: %{y:.4~g}<extra></extra>"
                ),
                legendgroup=subject,
                showlegend=column == "fitted",
            )
        )
