"""Shrinkage figures: own-data estimates vs mixed-model estimates, and the caterpillar plot.

Pure functions, no Streamlit. The numbers come from
:func:`lmm_core.per_group.shrinkage_estimates` (a :class:`ShrinkageEstimates`); these functions
only draw them. Arrows run from each subject's own least-squares estimate to its mixed-model
estimate; the arrowhead is a marker oriented along the segment (``angleref="previous"``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import PALETTE, WEBGL_ROWS, _rgba, _style
from lmm_core.per_group import ShrinkageEstimates, covariance_ellipse

__all__ = [
    "MAX_ARROWS",
    "caterpillar_figure",
    "population_centres",
    "sample_levels",
    "shrinkage_1d_figure",
    "shrinkage_2d_figure",
    "shrinkage_by_n",
]

MAX_ARROWS = 300  # subjects drawn with arrows; more are sampled
MAX_ELLIPSES = 4
OWN, MIXED, POP, GREY = PALETTE[1], PALETTE[0], "#000000", "#999999"


def sample_levels(est: ShrinkageEstimates, max_levels: int = MAX_ARROWS, seed: int = 0) -> list:
    """Levels with an own-data fit, a seeded random sample of ``max_levels`` when more."""
    levels = est.table.index[est.table["fitted_own"].to_numpy()]
    if len(levels) <= max_levels:
        return list(levels)
    rng = np.random.default_rng(seed)
    return list(levels[np.sort(rng.choice(len(levels), size=max_levels, replace=False))])


def population_centres(est: ShrinkageEstimates, columns: list[str]) -> pd.DataFrame:
    """Distinct population values of ``columns`` (e.g. one per arm) with the number of
    subjects at each; rounded to 10 significant digits before grouping."""
    fitted = est.table[est.table["fitted_own"]]
    pop = fitted[[f"population:{c}" for c in columns]]
    key = pop.apply(lambda s: s.map(lambda v: float(f"{v:.10g}")))
    out = pop.groupby([key[c] for c in key.columns], sort=True).mean()
    out["subjects"] = key.groupby(list(key.columns), sort=True).size().to_numpy()
    return out.reset_index(drop=True)


def _hover(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, str]:
    """customdata and hover template: subject, n, own, mixed, population and factor."""
    cols = ["level", "n"]
    lines = []
    for j, c in enumerate(columns):
        cols += [f"own:{c}", f"mixed:{c}", f"population:{c}", f"shrinkage:{c}"]
        k = 2 + 4 * j
        lines.append(
            f"<b>{c}</b>: own %{{customdata[{k}]:.4g}} → mixed %{{customdata[{k + 1}]:.4g}} "
            f"(population %{{customdata[{k + 2}]:.4g}}; factor %{{customdata[{k + 3}]:.2f}})"
        )
    data = frame.reset_index(names="level")[cols].to_numpy(dtype=object)
    return data, "<br>".join(lines)


def _marker_sizes(n: pd.Series, lo: float = 6.0, hi: float = 20.0) -> np.ndarray:
    """Marker diameters growing with the square root of the number of observations."""
    root = np.sqrt(n.to_numpy(dtype=float))
    span = root.max() - root.min()
    return lo + (hi - lo) * ((root - root.min()) / span if span > 0 else 0.5)


def _arrows(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> go.Scatter:
    """One trace of segments (x0, y0) -> (x1, y1), an arrowhead at each end point."""
    m = len(x0)
    xs = np.column_stack([x0, x1, np.full(m, np.nan)]).ravel()
    ys = np.column_stack([y0, y1, np.full(m, np.nan)]).ravel()
    sizes = np.tile([0.0, 9.0, 0.0], m)
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines+markers",
        line={"color": GREY, "width": 1},
        marker={"symbol": "arrow", "angleref": "previous", "size": sizes, "color": GREY},
        hoverinfo="skip",
        name="own → mixed",
        connectgaps=False,
    )


def shrinkage_1d_figure(
    est: ShrinkageEstimates,
    column: str,
    *,
    levels: list | None = None,
    subject_label: str = "subject",
) -> go.Figure:
    """Own estimate (top row) to mixed-model estimate (bottom row) of one coefficient.

    Traces: the arrows (one segment per subject), own estimates (size = observations),
    mixed-model estimates, and a vertical dashed line per distinct population value.
    """
    levels = sample_levels(est) if levels is None else levels
    t = est.table.loc[levels]
    custom, lines = _hover(t, list(est.columns))
    hover = f"{subject_label} <b>%{{customdata[0]}}</b> (n = %{{customdata[1]}})<br>{lines}"
    own, mixed = t[f"own:{column}"].to_numpy(), t[f"mixed:{column}"].to_numpy()
    ones = np.ones(len(t))
    fig = go.Figure(_arrows(own, ones, mixed, 0 * ones))
    for name, values, y, color, size in (
        ("own data only", own, ones, OWN, _marker_sizes(t["n"])),
        ("mixed model", mixed, 0 * ones, MIXED, 7),
    ):
        fig.add_trace(
            go.Scatter(
                x=values,
                y=y,
                mode="markers",
                name=name,
                marker={"size": size, "color": _rgba(color, 0.75), "line": {"width": 0.5}},
                customdata=custom,
                hovertemplate=hover + f"<extra>{name}</extra>",
            )
        )
    centres = population_centres(est, [column])
    for value in centres[f"population:{column}"].head(MAX_ELLIPSES):
        fig.add_vline(x=value, line={"color": POP, "dash": "dash", "width": 1.5})
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="lines",
            name="population value",
            line={"color": POP, "dash": "dash"},
        )  # fmt: skip
    )
    _style(fig, f"{column}: own estimate → mixed-model estimate", column, "")
    fig.update_yaxes(
        tickvals=[0, 1], ticktext=["mixed model", "own data"], range=[-0.35, 1.35], showgrid=False
    )
    fig.update_layout(height=330, legend={"orientation": "h", "y": -0.25, "x": 0})
    return fig


def shrinkage_2d_figure(
    est: ShrinkageEstimates,
    x: str,
    y: str,
    *,
    levels: list | None = None,
    subject_label: str = "subject",
    level: float = 0.95,
) -> go.Figure:
    """Coefficient ``y`` against ``x``: own and mixed estimates with arrows, the population
    value(s) and the fitted random-effects ellipse holding ``level`` of the population."""
    levels = sample_levels(est) if levels is None else levels
    t = est.table.loc[levels]
    custom, lines = _hover(t, list(est.columns))
    hover = f"{subject_label} <b>%{{customdata[0]}}</b> (n = %{{customdata[1]}})<br>{lines}"
    ox, oy = t[f"own:{x}"].to_numpy(), t[f"own:{y}"].to_numpy()
    mx, my = t[f"mixed:{x}"].to_numpy(), t[f"mixed:{y}"].to_numpy()
    fig = go.Figure(_arrows(ox, oy, mx, my))
    scatter = go.Scattergl if len(t) > WEBGL_ROWS else go.Scatter
    for name, xs, ys, color, size in (
        ("own data only", ox, oy, OWN, _marker_sizes(t["n"])),
        ("mixed model", mx, my, MIXED, 7),
    ):
        fig.add_trace(
            scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=name,
                marker={"size": size, "color": _rgba(color, 0.75), "line": {"width": 0.5}},
                customdata=custom,
                hovertemplate=hover + f"<extra>{name}</extra>",
            )
        )
    i, j = est.columns.index(x), est.columns.index(y)
    cov = est.covariance[np.ix_([i, j], [i, j])]
    centres = population_centres(est, [x, y]).head(MAX_ELLIPSES)
    for k, row in centres.iterrows():
        centre = row[[f"population:{x}", f"population:{y}"]].to_numpy(dtype=float)
        pts = covariance_ellipse(centre, cov, level)
        fig.add_trace(
            go.Scatter(
                x=pts[:, 0],
                y=pts[:, 1],
                mode="lines",
                line={"color": POP, "width": 1.5, "dash": "dash"},
                name=f"{level:.0%} of the population (model)",
                legendgroup="ellipse",
                showlegend=k == 0,
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=centres[f"population:{x}"],
            y=centres[f"population:{y}"],
            mode="markers",
            name="population value",
            marker={"symbol": "x", "size": 14, "color": POP},
            customdata=centres["subjects"],
            hovertemplate=(
                f"population: {x} %{{x:.4g}}, {y} %{{y:.4g}}<br>"
                f"%{{customdata}} {subject_label}(s)<extra></extra>"
            ),
        )
    )
    _style(fig, f"{y} against {x}: own → mixed, with the model's population ellipse", x, y)
    fig.update_layout(height=560, legend={"orientation": "h", "y": -0.14, "x": 0})
    return fig


def caterpillar_figure(
    est: ShrinkageEstimates, column: str, *, subject_label: str = "subject", z: float = 1.96
) -> go.Figure:
    """BLUPs of one column, sorted, with ``+/- z`` conditional-SD intervals (every level).

    Two traces: intervals that exclude 0 and those that include it.
    """
    t = est.table.sort_values(f"blup:{column}", kind="stable")
    b, sd = t[f"blup:{column}"].to_numpy(), t[f"blup_sd:{column}"].to_numpy()
    rank = np.arange(len(t))
    away = np.abs(b) > z * sd
    many = len(t) > WEBGL_ROWS
    scatter = go.Scattergl if many else go.Scatter
    fig = go.Figure()
    for name, mask, color in (
        ("interval includes 0", ~away, GREY),
        ("interval excludes 0", away, PALETTE[3]),
    ):
        fig.add_trace(
            scatter(
                x=b[mask],
                y=rank[mask],
                mode="markers",
                name=name,
                marker={"size": 3 if many else 6, "color": color},
                error_x={
                    "type": "data",
                    "array": z * sd[mask],
                    "color": _rgba(color, 0.5) if color.startswith("#") else color,
                    "thickness": 1,
                    "width": 0,
                },
                customdata=np.column_stack(
                    [t.index[mask].astype(str), t["n"].to_numpy()[mask], sd[mask]]
                ),
                hovertemplate=(
                    f"{subject_label} <b>%{{customdata[0]}}</b> (n = %{{customdata[1]}})<br>"
                    f"BLUP of {column} = %{{x:.4g}} ± {z:g} × %{{customdata[2]:.3g}}"
                    "<extra></extra>"
                ),
            )
        )
    fig.add_vline(x=0, line={"color": POP, "width": 1})
    _style(fig, f"Random effects (BLUPs) of {column}, sorted, ±{z:g} conditional SD", column, "")
    show_names = len(t) <= 60
    fig.update_yaxes(
        tickvals=rank if show_names else None,
        ticktext=list(t.index.astype(str)) if show_names else None,
        showticklabels=show_names,
        title_text=subject_label if show_names else f"{len(t):,} {subject_label}s, sorted",
    )
    fig.update_layout(
        height=max(380, min(900, 14 * len(t) + 120)),
        legend={"orientation": "h", "y": -0.12, "x": 0},
    )
    return fig


def shrinkage_by_n(est: ShrinkageEstimates, column: str) -> pd.DataFrame:
    """Median shrinkage factor and median distance moved, by number of observations.

    Returns
    -------
    pandas.DataFrame
        Columns ``observations``, ``subjects``, ``median factor`` (kept share of the own
        deviation) and ``median move`` (``|mixed - own|``); only subjects with an own fit.
    """
    t = est.table[est.table["fitted_own"]]
    move = (t[f"mixed:{column}"] - t[f"own:{column}"]).abs()
    out = (
        pd.DataFrame({"n": t["n"], "factor": t[f"shrinkage:{column}"], "move": move})
        .groupby("n")
        .agg(subjects=("factor", "size"), factor=("factor", "median"), move=("move", "median"))
        .reset_index()
    )
    return out.rename(
        columns={"n": "observations", "factor": "median factor", "move": "median move"}
    )
