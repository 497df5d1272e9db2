"""Simulation-lab figures (Teach page, section 4): the study repeated many times.

Pure functions, no Streamlit. The replicates are
:func:`lmm_core.simulation.teaching_repeat.run_replicates`; these functions only draw their
:class:`~lmm_core.simulation.teaching_repeat.ReplicateSummary`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.constants import CONFIDENCE_LEVEL, z_value
from dashboard.base.numbers import fmt
from dashboard.figures.style import PALETTE, TEMPLATE, rgba
from dashboard.figures.teach_style import (
    EST,
    GREY,
    MISS,
    OWN,
    TRUTH,
    legend_entry,
    legend_top,
    slope_word,
)
from lmm_core.simulation.teaching_repeat import ReplicateSummary, monte_carlo_se

__all__ = [
    "BOUNDARIES",
    "MAX_LADDER",
    "coverage_figure",
    "interval_ladder_figure",
    "slope_histogram_figure",
    "slope_sd_histogram_figure",
]

MAX_LADDER = 50  # replicate intervals drawn in the interval ladder


#: replicate boundary label -> (legend name, colour), in drawing order
BOUNDARIES: dict[str, tuple[str, str]] = {
    "none": ("regular fit", EST),
    "slope SD = 0": ("singular: slope SD estimated as 0", MISS),
    "correlation = ±1": ("singular: correlation estimated as ±1", PALETTE[4]),
    "intercept SD = 0": ("singular: intercept SD estimated as 0", PALETTE[2]),
    "other boundary": ("singular: other", GREY),
}


def slope_histogram_figure(summary: ReplicateSummary) -> go.Figure:
    """Histogram of the slope estimates over the replicates, the truth and their mean (the
    average slope over the study when the truth or the fit bends)."""
    word = slope_word(summary.truth)
    slopes = summary.table["slope"].to_numpy(dtype=float)
    fig = go.Figure(
        go.Histogram(
            x=slopes,
            name="slope estimates",
            marker={"color": rgba(EST, 0.7), "line": {"color": "white", "width": 0.5}},
            hovertemplate="%{x}: %{y} studies<extra></extra>",
        )
    )
    fig.add_vline(x=summary.truth.slope, line={"color": TRUTH, "width": 2.5})
    if len(slopes):
        fig.add_vline(x=float(np.mean(slopes)), line={"color": EST, "dash": "dash", "width": 1.5})
    for name, color, dash in (
        (f"true {word} {fmt(summary.truth.slope, 3)}", TRUTH, "solid"),
        ("mean of the estimates", EST, "dash"),
    ):
        legend_entry(fig, name, line={"color": color, "dash": dash})
    fig.update_layout(
        template=TEMPLATE,
        height=360,
        xaxis_title=f"estimated population {word} β̂₁",
        yaxis_title="number of studies",
        bargap=0.02,
        margin={"t": 60},
    )
    legend_top(fig)
    return fig


def slope_sd_histogram_figure(summary: ReplicateSummary) -> go.Figure:
    """Histogram of the estimated slope SD, stacked by the kind of fit (regular or which
    boundary a singular fit reached; one trace per kind present), and the true SD."""
    t = summary.table
    counts = summary.boundary_counts()  # the same counts as the page's sentence
    fig = go.Figure()
    for label, (name, color) in BOUNDARIES.items():
        part = t.loc[t["boundary"] == label, "sd_slope"]
        if len(part):
            fig.add_trace(
                go.Histogram(
                    x=part,
                    name=f"{name} ({counts.get(label, 0):,} of {summary.n:,})",
                    marker={"color": rgba(color, 0.8)},
                    hovertemplate="%{x}: %{y} studies<extra></extra>",
                )
            )
    fig.add_vline(x=summary.truth.sd_slope, line={"color": TRUTH, "width": 2.5})
    legend_entry(fig, f"true slope SD {fmt(summary.truth.sd_slope, 3)}", line={"color": TRUTH})
    fig.update_layout(
        template=TEMPLATE,
        barmode="stack",
        height=360,
        xaxis={"title": "estimated SD of the subject slopes τ̂₁", "rangemode": "tozero"},
        yaxis_title="number of studies",
        margin={"t": 70},
    )
    legend_top(fig)
    return fig


def coverage_figure(summary: ReplicateSummary, *, level: float = CONFIDENCE_LEVEL) -> go.Figure:
    """Coverage of the mixed-model and the naive interval, with Monte Carlo error bars at
    ``level`` (``z sqrt(p (1 - p) / R)``, z = 1.96 for 95%) and the nominal level as a dashed
    line."""
    names = ["mixed model", "naive regression"]
    rates = [summary.rate("covered"), summary.rate("covered_ols")]
    errors = [z_value(level) * monte_carlo_se(p, summary.n) for p in rates]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=rates,
            marker={"color": [EST, OWN]},
            error_y={"type": "data", "array": errors, "color": TRUTH},
            text=[f"{p:.1%}" for p in rates],
            textposition="inside",
            insidetextanchor="middle",
            textfont={"size": 16, "color": "white"},
            width=0.5,
            hovertemplate=f"%{{x}}: %{{y:.1%}} of intervals contain the true "
            f"{slope_word(summary.truth)}<extra></extra>",
            showlegend=False,
        )
    )
    fig.add_hline(
        y=summary.level,
        line={"color": TRUTH, "dash": "dash"},
        annotation_text=f"promised {summary.level:.0%}",
        annotation_position="top right",
    )
    fig.update_layout(
        template=TEMPLATE,
        height=360,
        xaxis={"range": [-0.5, 2.0]},  # room on the right for the label of the line
        yaxis={"range": [0, 1.05], "tickformat": ".0%", "title": "intervals containing the truth"},
        margin={"t": 30},
    )
    return fig


def interval_ladder_figure(summary: ReplicateSummary, *, max_rows: int = MAX_LADDER) -> go.Figure:
    """The first ``max_rows`` replicates' intervals, mixed model (left) and naive (right).

    Each row is one simulated study's interval for the slope; intervals that miss the true
    slope (solid vertical line) are red. Traces per panel: covering intervals, missing ones;
    then two legend-only entries.
    """
    t = summary.table.head(max_rows)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=["mixed model", "naive regression"],
    )
    for col, (lo, hi, cov) in enumerate(
        (("lower", "upper", "covered"), ("lower_ols", "upper_ols", "covered_ols")), start=1
    ):
        for hit, color, name in ((True, EST, "contains the truth"), (False, MISS, "misses it")):
            part = t[t[cov].astype(bool) == hit]
            k = len(part)
            xs = np.column_stack([part[lo], part[hi], np.full(k, np.nan)]).ravel()
            ys = np.repeat(part["replicate"].to_numpy(dtype=float), 3)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": color, "width": 2},
                    name=name,
                    legendgroup=name,
                    showlegend=False,
                    hovertemplate="study %{y}: %{x:.3~g}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.add_vline(x=summary.truth.slope, line={"color": TRUTH, "width": 1.5}, row=1, col=col)
        fig.update_xaxes(title_text=slope_word(summary.truth), row=1, col=col)
    for color, name in ((EST, "contains the truth"), (MISS, "misses it")):
        legend_entry(fig, name, line={"color": color, "width": 2}, legendgroup=name)
    fig.update_yaxes(title_text="simulated study", autorange="reversed", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=200 + 9 * len(t), margin={"t": 80})
    legend_top(fig, 1.06)
    return fig
