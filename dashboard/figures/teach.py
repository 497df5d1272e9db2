"""Simulation-lab figures (Teach page): truth vs estimate, shrinkage, repeated studies.

Pure functions, no Streamlit. The numbers come from :mod:`lmm_core.simulation.teaching` (one
study) and :mod:`lmm_core.simulation.teaching_repeat` (many); these functions only draw them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.constants import CONFIDENCE_LEVEL, z_value
from dashboard.base.numbers import fmt
from dashboard.figures.style import PALETTE, TEMPLATE, rgba
from lmm_core.simulation.teaching import expected_slope_weight, is_curved
from lmm_core.simulation.teaching_repeat import ReplicateSummary, monte_carlo_se

__all__ = [
    "BOUNDARIES",
    "SUBJECT_COLORS",
    "coverage_figure",
    "interval_ladder_figure",
    "recovery_figure",
    "slope_histogram_figure",
    "slope_sd_histogram_figure",
    "slope_shrinkage_figure",
    "study_curves_figure",
    "weight_curve_figure",
]

EST, OWN, TRUTH, MISS, GREY = PALETTE[0], PALETTE[1], "#000000", PALETTE[3], "#999999"
MAX_SUBJECTS = 60  # subjects drawn in the shrinkage figure; more are sampled
MAX_LADDER = 50  # replicate intervals drawn in the interval ladder
#: colours of the few subjects drawn in section 2 (none is the estimate's blue or the miss red)
SUBJECT_COLORS = (PALETTE[1], PALETTE[2], PALETTE[4], PALETTE[5])


def _legend_top(fig: go.Figure, y: float = 1.02) -> None:
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": y, "x": 0})


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
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name="interval misses the truth",
            legendrank=3,
            marker={"size": 11, "color": MISS},
        )
    )
    fig.update_layout(template=TEMPLATE, height=150 + 150 * rows, margin={"t": 90, "l": 30})
    _legend_top(fig, 1.08)
    return fig


def study_curves_figure(curves: Any) -> go.Figure:
    """The true and the fitted population curve on a fine grid of time, a few subjects.

    ``curves`` is :func:`dashboard.analysis.teach.study_curves` (a ``StudyCurves``). Traces:
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
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=name,
                legendrank=30,
                line={"color": GREY, "dash": dash, "width": width},
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        height=460,
        xaxis_title="time (visit)",
        yaxis_title="y",
        margin={"t": 90},
    )
    _legend_top(fig)
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

    ``table`` is :func:`lmm_core.simulation.teaching.slope_shrinkage`. Traces: grey arrows own →
    mixed, own slopes (orange, size growing with the visits), mixed-model slopes (blue),
    true slopes (black x); a dashed
    vertical line marks the estimated population slope. Subjects without an own slope are
    left out; above ``max_subjects`` a seeded sample is drawn.
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
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name="estimated population slope",
                line={"color": TRUTH, "dash": "dash"},
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        height=max(360, 140 + 14 * m),
        xaxis_title="slope (change in y per time unit)",
        yaxis_title="subject (sorted by true slope)",
        margin={"t": 70},
    )
    fig.update_yaxes(showticklabels=m <= 40, type="category")
    _legend_top(fig)
    return fig


def weight_curve_figure(
    sd_slope: float, sigma: float, n_visits: int, observed: float | None = None
) -> go.Figure:
    """The weight on a subject's own slope against the number of visits.

    The curve is :func:`lmm_core.simulation.teaching.expected_slope_weight` for 3 to 30 visits at
    the chosen slope SD and residual SD; a diamond marks the chosen number of visits and, when
    given, a circle the median shrinkage factor observed in the simulated study.
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
    _legend_top(fig)
    return fig


def slope_histogram_figure(summary: ReplicateSummary) -> go.Figure:
    """Histogram of the slope estimates over the replicates, the truth and their mean (the
    average slope over the study when the truth or the fit bends)."""
    word = _slope_word(summary)
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
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="lines", name=name, line={"color": color, "dash": dash}
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        height=360,
        xaxis_title=f"estimated population {word} β̂₁",
        yaxis_title="number of studies",
        bargap=0.02,
        margin={"t": 60},
    )
    _legend_top(fig)
    return fig


def _slope_word(summary: ReplicateSummary) -> str:
    return "average slope" if is_curved(summary.truth) else "slope"


#: replicate boundary label -> (legend name, colour), in drawing order
BOUNDARIES: dict[str, tuple[str, str]] = {
    "none": ("regular fit", EST),
    "slope SD = 0": ("singular: slope SD estimated as 0", MISS),
    "correlation = ±1": ("singular: correlation estimated as ±1", PALETTE[4]),
    "intercept SD = 0": ("singular: intercept SD estimated as 0", PALETTE[2]),
    "other boundary": ("singular: other", GREY),
}


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
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="lines",
            name=f"true slope SD {fmt(summary.truth.sd_slope, 3)}",
            line={"color": TRUTH},
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        barmode="stack",
        height=360,
        xaxis={"title": "estimated SD of the subject slopes τ̂₁", "rangemode": "tozero"},
        yaxis_title="number of studies",
        margin={"t": 70},
    )
    _legend_top(fig)
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
            f"{_slope_word(summary)}<extra></extra>",
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
        fig.update_xaxes(title_text=_slope_word(summary), row=1, col=col)
    for color, name in ((EST, "contains the truth"), (MISS, "misses it")):  # legend only
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line={"color": color, "width": 2},
                name=name,
                legendgroup=name,
            )  # fmt: skip
        )
    fig.update_yaxes(title_text="simulated study", autorange="reversed", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=200 + 9 * len(t), margin={"t": 80})
    _legend_top(fig, 1.06)
    return fig
