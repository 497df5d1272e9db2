"""The binary simulation lab's figures: the subject-specific and averaged curves, and the
attenuation of the log odds ratio as the SD between subjects grows.

Pure functions, no Streamlit; data from :mod:`dashboard.analysis.teach_binary`-shaped frames.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import PALETTE, rgba, style_figure
from dashboard.figures.teach_style import EST, GREY, TRUTH, legend_entry, legend_top

__all__ = ["AVERAGED", "GLM", "attenuation_figure", "binary_curves_figure"]

#: the population-averaged truth (green) and the logistic regression ignoring subjects (orange)
AVERAGED, GLM = PALETTE[2], PALETTE[1]


def _x_axis(fig: go.Figure, effect: str, n_visits: int) -> None:
    if effect == "treatment":
        fig.update_xaxes(tickvals=[0, 1], ticktext=["untreated", "treated"], range=[-0.15, 1.15])
    else:
        fig.update_xaxes(range=[-0.2, n_visits - 0.8], dtick=1 if n_visits <= 15 else 2)


def _subject_lines(fig: go.Figure, subjects: pd.DataFrame) -> None:
    """All sampled subjects' own curves as one grey trace (gaps between subjects)."""
    xs, ys = [], []
    for _, part in subjects.groupby("subject", sort=False):
        xs += [*part["x"], None]
        ys += [*part["p"], None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": rgba(GREY, 0.45), "width": 1},
            name="Subjects' own curves (truth)",
            hoverinfo="skip",
        )
    )


def binary_curves_figure(
    curves: pd.DataFrame,
    subjects: pd.DataFrame,
    observed: pd.DataFrame,
    effect: str,
    n_visits: int,
) -> go.Figure:
    """Probability against treatment or visit: sampled subjects' true curves (grey), the
    typical subject's true curve (black), the true population average (green), the GLMM's
    typical curve (blue, dashed) and averaged curve (green, dashed), the logistic
    regression's curve (orange, dotted) and the observed share of 1s (markers)."""
    fig = go.Figure()
    _subject_lines(fig, subjects)
    mode = "lines" if effect == "time" else "lines+markers"
    lines = (
        ("typical", "Typical subject (truth, b = 0)", TRUTH, "solid", 3),
        ("averaged", "Population average (truth)", AVERAGED, "solid", 4),
        ("glmm_typical", "GLMM: typical subject", EST, "dash", 2.5),
        ("glmm_averaged", "GLMM: population average", AVERAGED, "dash", 2),
        ("glm", "Logistic regression ignoring subjects", GLM, "dot", 2.5),
    )
    for column, name, colour, dash, width in lines:
        fig.add_trace(
            go.Scatter(
                x=curves["x"],
                y=curves[column],
                mode=mode,
                name=name,
                line={"color": colour, "dash": dash, "width": width},
                hovertemplate=f"{name}<br>x = %{{x:.2~g}}<br>P = %{{y:.3~g}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=observed["x"],
            y=observed["share"],
            mode="markers",
            name="Observed share of 1s",
            marker={"color": "white", "size": 9, "line": {"color": TRUTH, "width": 1.5}},
            customdata=observed["n"],
            hovertemplate="x = %{x}<br>share = %{y:.3~g} of %{customdata} rows<extra></extra>",
        )
    )
    x_title = "Treatment" if effect == "treatment" else "Visit"
    style_figure(fig, "Subject-specific and population-averaged probability", x_title, "P(y = 1)")
    fig.update_yaxes(range=[0, 1])
    _x_axis(fig, effect, n_visits)
    legend_top(fig)
    fig.update_layout(height=520, margin={"t": 130})
    return fig


def attenuation_figure(curve: pd.DataFrame, sd: float, glm_estimate: float) -> go.Figure:
    """The log odds ratio against the SD between subjects: within a subject (flat, black),
    population-averaged by integration (green) and by the approximation (dashed); the study's
    SD as a vertical line and the logistic regression's estimate as a point."""
    fig = go.Figure()
    series = (
        ("conditional", "Within a subject (β₁)", TRUTH, "solid"),
        ("marginal", "Population-averaged (exact)", AVERAGED, "solid"),
        ("approximate", "Approximation β₁ / √(1 + 0.346 τ²)", PALETTE[4], "dash"),
    )
    for column, name, colour, dash in series:
        fig.add_trace(
            go.Scatter(
                x=curve["sd"],
                y=curve[column],
                mode="lines",
                name=name,
                line={"color": colour, "dash": dash, "width": 2.5},
                hovertemplate=f"{name}<br>τ = %{{x:.2~g}}<br>log OR = %{{y:.3~g}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[sd],
            y=[glm_estimate],
            mode="markers",
            name="Logistic regression, this study",
            marker={"color": GLM, "size": 11, "symbol": "diamond"},
            hovertemplate="this study's estimate: %{y:.3~g}<extra></extra>",
        )
    )
    fig.add_vline(x=sd, line={"color": GREY, "dash": "dot"})
    legend_entry(fig, "τ of this study", line={"color": GREY, "dash": "dot"})
    style_figure(
        fig, "The averaged effect shrinks as subjects differ more", "SD τ (logit scale)",
        "log odds ratio",
    )  # fmt: skip
    legend_top(fig)
    fig.update_layout(margin={"t": 110})
    return fig
