"""How a GLMM's estimates and log-likelihood settle as the quadrature points grow.

Pure plotly, no Streamlit; the data are the parts of a
:class:`dashboard.analysis.quadrature.QuadratureLadder` (figures do not import analysis).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.style import PALETTE, TEMPLATE

__all__ = ["quadrature_figure"]


def quadrature_figure(
    table: pd.DataFrame, estimates: pd.DataFrame, std_errors: pd.DataFrame, group: str
) -> go.Figure:
    """Three panels against ``nagq`` (evenly spaced, labelled by value): each fixed effect's
    distance from its value at the largest ``nagq`` in standard errors, the random-effect SD,
    and the log-likelihood. Laplace is ``nagq = 1``, the leftmost point.

    ``table`` has columns ``nagq``, ``sd`` and ``loglik``; ``estimates`` and ``std_errors``
    one row per ``nagq`` and one column per fixed effect; ``group`` names the random effect.
    """
    t = table
    labels = [str(int(q)) for q in t["nagq"]]
    est, se = estimates, std_errors
    shift = (est - est.iloc[-1]) / se.iloc[-1]
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "Fixed effects: change (SEs)",
            f"SD of the {group} effects",
            "Log-likelihood",
        ),
        horizontal_spacing=0.1,
    )
    for i, name in enumerate(est.columns):
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=shift[name],
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate=f"{name}<br>nagq = %{{x}}<br>%{{y:+.3~g}} SE from the last"
                "<extra></extra>",
            ),
            row=1,
            col=1,
        )
    panels = ((t["sd"], "SD", ".4f"), (t["loglik"], "log-likelihood", ".3f"))
    for col, (values, name, form) in enumerate(panels, start=2):
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=values,
                mode="lines+markers",
                name=name,
                showlegend=False,
                line={"color": "#000000"},
                hovertemplate=f"nagq = %{{x}}<br>{name} = %{{y:{form}}}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text="quadrature points (nagq)", type="category")
    fig.update_layout(
        template=TEMPLATE,
        height=420,
        title={"text": "Laplace (nagq = 1) against adaptive quadrature"},
        legend={"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0},
        margin={"t": 90, "b": 140},
    )
    return fig
