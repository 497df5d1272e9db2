"""Simulation-lab figures (Teach page), one study: truth vs estimate, and shrinkage.

Pure functions, no Streamlit. The numbers come from :mod:`lmm_core.simulation.teaching` and
:mod:`lmm_core.simulation.teaching_shrinkage`; these functions only draw them. The study's
curves are drawn by :mod:`dashboard.figures.teach_curves`, repeated studies by
:mod:`dashboard.figures.teach_repeat`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.constants import CONFIDENCE_LEVEL
from dashboard.base.numbers import fmt
from dashboard.figures.style import TEMPLATE, rgba
from dashboard.figures.teach_style import EST, GREY, MISS, OWN, TRUTH, legend_entry, legend_top
from lmm_core.simulation.teaching_shrinkage import expected_slope_weight

__all__ = ["MAX_SUBJECTS", "recovery_figure", "slope_shrinkage_figure", "weight_curve_figure"]

MAX_SUBJECTS = 60  # subjects drawn in the shrinkage figure; more are sampled


def recovery_figure(table: pd.DataFrame, *, level: float = CONFIDENCE_LEVEL) -> go.Figure:
    """Truth (black diamond) and estimate with its interval, one small panel per parameter.

    ``table`` is :func:`lmm_core.simulation.teaching.recovery_table`. An estimate whose interval
    misses the truth is drawn in red; a parameter without an interval shows the estimate alone.
    Traces: per parameter, the estimate then the truth drawn over it (12 for the lab's six
    parameters), plus one legend entry for a missed interval.
    """
    n = len(table)
    cols = 3
    rows = -(-n // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=list(table["parameter"]),
        vertical_spacing=0.32 / rows,
        horizontal_spacing=0.06,
    )
    for k, (_, r) in enumerate(table.iterrows()):
        legend = (k == _legend_row(table), k == 0)  # the estimate's entry in its own colour
        _add_parameter(fig, r, level, legend, row=k // cols + 1, col=k % cols + 1)
    legend_entry(fig, "interval misses the truth", legendrank=3, marker={"size": 11, "color": MISS})
    fig.update_layout(template=TEMPLATE, height=150 + 150 * rows, margin={"t": 90, "l": 30})
    legend_top(fig, 1.08)
    return fig


def _misses(r: pd.Series) -> bool:
    has_ci = bool(np.isfinite(r["lower"]) and np.isfinite(r["upper"]))
    return has_ci and not r["lower"] <= r["truth"] <= r["upper"]


def _legend_row(table: pd.DataFrame) -> int:
    """Position of the first parameter whose interval does not miss (its estimate, drawn in
    the estimate's colour, carries the legend entry); 0 when every interval misses."""
    return next((k for k, (_, r) in enumerate(table.iterrows()) if not _misses(r)), 0)


def _add_parameter(
    fig: go.Figure,
    r: pd.Series,
    level: float,
    legend: tuple[bool, bool],
    *,
    row: int,
    col: int,
) -> None:
    """One parameter's panel: the estimate with its interval (red when it misses the truth),
    the truth drawn over it, and an x range holding all three; ``legend`` says whether the
    estimate and the truth show their legend entries."""
    has_ci = bool(np.isfinite(r["lower"]) and np.isfinite(r["upper"]))
    color = MISS if _misses(r) else EST
    interval = (
        f"{level:.0%} interval %{{customdata[0]:.4~g}} to %{{customdata[1]:.4~g}} ({r['interval']})"
        if has_ci
        else "no interval computed"
    )
    error_x = (
        {
            "type": "data",
            "symmetric": False,
            "array": [r["upper"] - r["estimate"]],
            "arrayminus": [r["estimate"] - r["lower"]],
            "color": color,
            "thickness": 2,
            "width": 6,
        }
        if has_ci
        else None
    )
    fig.add_trace(
        go.Scatter(
            x=[r["estimate"]],
            y=[0],
            mode="markers",
            name=f"estimate with {level:.0%} interval",
            legendgroup="estimate",
            legendrank=1,
            showlegend=legend[0],
            marker={"size": 11, "color": color},
            error_x=error_x,
            customdata=[[r["lower"], r["upper"]]],
            hovertemplate=(
                f"{r['parameter']}<br>estimate %{{x:.4~g}}<br>{interval}<extra></extra>"
            ),
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=[r["truth"]],
            y=[0],
            mode="markers",
            name="truth",
            legendgroup="truth",
            legendrank=2,
            showlegend=legend[1],
            marker={
                "symbol": "diamond",
                "size": 12,
                "color": TRUTH,
                "line": {"color": "white", "width": 1.5},
            },
            hovertemplate=f"{r['parameter']}<br>truth %{{x:.4~g}}<extra></extra>",
        ),
        row=row,
        col=col,
    )
    lo = np.nanmin([r["truth"], r["estimate"], r["lower"]])
    hi = np.nanmax([r["truth"], r["estimate"], r["upper"]])
    pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    fig.update_xaxes(range=[lo - pad, hi + pad], row=row, col=col)
    fig.update_yaxes(visible=False, range=[-1, 1], row=row, col=col)


def _sample(table: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    if len(table) <= max_rows:
        return table
    rng = np.random.default_rng(seed)
    return table.iloc[np.sort(rng.choice(len(table), size=max_rows, replace=False))]


def slope_shrinkage_figure(table: pd.DataFrame, *, max_subjects: int = MAX_SUBJECTS) -> go.Figure:
    """Each subject's own slope, mixed-model slope and true slope, sorted by the truth.

    ``table`` is :func:`lmm_core.simulation.teaching_shrinkage.slope_shrinkage`. Traces: grey
    arrows own → mixed, own slopes (orange, size growing with the visits), mixed-model slopes
    (blue), true slopes (black x); a dashed vertical line marks the estimated population slope.
    Subjects without an own slope are left out; above ``max_subjects`` a seeded sample is drawn.
    """
    t = _sample(table[table["own"].notna()], max_subjects).sort_values("truth")
    labels = t.index.astype(str).to_numpy()
    m = len(t)
    xs = np.column_stack([t["own"], t["mixed"], np.full(m, np.nan)]).ravel()
    ys = np.column_stack([labels, labels, np.full(m, None)]).ravel()
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers",
            line={"color": GREY, "width": 1},
            marker={"symbol": "arrow", "angleref": "previous", "size": np.tile([0, 8, 0], m)},
            name="own → mixed",
            hoverinfo="skip",
        )
    )
    custom = t[["n", "own", "mixed", "truth", "factor"]].to_numpy(dtype=float)
    hover = (
        "subject %{y} (%{customdata[0]:.0f} visits)<br>own slope %{customdata[1]:.3~g}"
        "<br>mixed-model slope %{customdata[2]:.3~g}<br>true slope %{customdata[3]:.3~g}"
        "<br>shrinkage factor %{customdata[4]:.3~g}"
    )
    n = t["n"].to_numpy(dtype=float)
    own_size = 5.0 + 9.0 * (n - n.min()) / (n.max() - n.min()) if m and n.max() > n.min() else 9.0
    for name, column, color, symbol, size in (
        ("own data only (least squares; bigger = more visits)", "own", OWN, "circle", own_size),
        ("mixed model (BLUP)", "mixed", EST, "circle", 8),
        ("truth", "truth", TRUTH, "x", 8),
    ):
        fig.add_trace(
            go.Scatter(
                x=t[column],
                y=labels,
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": size, "color": rgba(color, 0.85)},
                customdata=custom,
                hovertemplate=hover + f"<extra>{name}</extra>",
            )
        )
    if m:
        pop = float(t["population"].iloc[0])
        fig.add_vline(x=pop, line={"color": TRUTH, "dash": "dash", "width": 1.2})
        legend_entry(fig, "estimated population slope", line={"color": TRUTH, "dash": "dash"})
    fig.update_layout(
        template=TEMPLATE,
        height=max(360, 140 + 14 * m),
        xaxis_title="slope (change in y per time unit)",
        yaxis_title="subject (sorted by true slope)",
        margin={"t": 70},
    )
    fig.update_yaxes(showticklabels=m <= 40, type="category")
    legend_top(fig)
    return fig


def weight_curve_figure(
    sd_slope: float, sigma: float, n_visits: int, observed: float | None = None
) -> go.Figure:
    """The weight on a subject's own slope against the number of visits.

    The curve is :func:`lmm_core.simulation.teaching_shrinkage.expected_slope_weight` for 3 to
    30 visits at the chosen slope SD and residual SD; a diamond marks the chosen number of
    visits and, when given, a circle the median shrinkage factor observed in the simulated
    study.
    """
    visits = np.arange(3, max(30, int(n_visits)) + 1)
    weight = expected_slope_weight(sd_slope, sigma, visits)
    fig = go.Figure(
        go.Scatter(
            x=visits,
            y=weight,
            mode="lines",
            name=f"expected weight (τ₁ = {fmt(sd_slope, 3)}, σ = {fmt(sigma, 3)})",
            line={"color": EST, "width": 2},
            hovertemplate="%{x} visits: weight %{y:.3~g}<extra></extra>",
        )
    )
    here = float(expected_slope_weight(sd_slope, sigma, n_visits))
    fig.add_trace(
        go.Scatter(
            x=[n_visits],
            y=[here],
            mode="markers",
            name="your design",
            marker={"symbol": "diamond", "size": 13, "color": TRUTH},
            hovertemplate="%{x} visits: expected weight %{y:.3~g}<extra></extra>",
        )
    )
    if observed is not None and np.isfinite(observed):
        fig.add_trace(
            go.Scatter(
                x=[n_visits],
                y=[observed],
                mode="markers",
                name="median factor in this study",
                marker={"size": 11, "color": OWN},
                hovertemplate="median shrinkage factor %{y:.3~g}<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        height=340,
        xaxis_title="visits per subject",
        yaxis_title="weight on the subject's own slope",
        yaxis={"range": [0, 1.05]},
        margin={"t": 60},
    )
    legend_top(fig)
    return fig
