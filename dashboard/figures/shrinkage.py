"""Shrinkage figures: own-data estimates vs mixed-model estimates, and the caterpillar plot.

Pure functions, no Streamlit. The numbers come from
:func:`lmm_core.predict.per_group.shrinkage_estimates` (a :class:`ShrinkageEstimates`); these
functions only draw them. Arrows run from each subject's own least-squares estimate to its
mixed-model estimate; the arrowhead is a marker oriented along the segment
(``angleref="previous"``).

When the random part is a spline or polynomial in time (``(ns(Time, 2) | Chick)``), its
coefficients multiply basis curves and mean little one by one:
:mod:`dashboard.figures.shrinkage_curves` shows the same comparison as whole curves over time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.constants import CONFIDENCE_LEVEL, z_value
from dashboard.figures.style import MODEBAR_PX, PALETTE, TEMPLATE, WEBGL_ROWS, rgba, style_figure
from lmm_core.predict.per_group import ShrinkageEstimates, covariance_ellipse

__all__ = [
    "GREY",
    "MAX_ARROWS",
    "MIXED",
    "OWN",
    "POP",
    "caterpillar_figure",
    "caterpillar_layout",
    "caterpillar_rows",
    "main_centres",
    "population_centres",
    "sample_levels",
    "shrinkage_1d_figure",
    "shrinkage_2d_figure",
    "shrinkage_by_n",
]

MAX_ARROWS = 200  # subjects drawn with arrows; more are sampled
MAX_ELLIPSES = 4
MAX_CATERPILLAR = 600  # rows drawn in a caterpillar plot; more are thinned by rank
#: colours of the own-data estimates, the mixed-model ones, the population, the arrows
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


def main_centres(
    est: ShrinkageEstimates, columns: list[str], k: int = MAX_ELLIPSES
) -> pd.DataFrame:
    """The ``k`` population values of :func:`population_centres` shared by most subjects
    (ties: the smaller value first), in the order of their values.

    With a fixed part of another shape than the random part (``ns(Time, 3)`` fixed,
    ``ns(Time, 2)`` random) a subject's population value also depends on its visit times,
    so a subject with missed visits can have a value of its own; the main ones remain.
    """
    centres = population_centres(est, columns)
    top = centres.sort_values("subjects", ascending=False, kind="stable").head(k)
    return centres.loc[sorted(top.index)].reset_index(drop=True)


def _hover(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, str]:
    """customdata and hover template: subject, n, own, mixed, population and factor."""
    cols = ["level", "n"]
    lines = []
    for j, c in enumerate(columns):
        cols += [f"own:{c}", f"mixed:{c}", f"population:{c}", f"shrinkage:{c}"]
        k = 2 + 4 * j
        lines.append(
            f"<b>{c}</b>: own %{{customdata[{k}]:.4~g}} → mixed %{{customdata[{k + 1}]:.4~g}} "
            f"(population %{{customdata[{k + 2}]:.4~g}}; factor %{{customdata[{k + 3}]:.3~g}})"
        )
    data = frame.reset_index(names="level")[cols].to_numpy(dtype=object)
    return data, "<br>".join(lines)


def _marker_sizes(n: pd.Series, lo: float = 6.0, hi: float = 20.0) -> np.ndarray:
    """Marker diameters growing with the square root of the number of observations."""
    root = np.sqrt(n.to_numpy(dtype=float))
    span = root.max() - root.min()
    return lo + (hi - lo) * ((root - root.min()) / span if span > 0 else 0.5)


def _arrows(
    x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, *, first: bool = True
) -> go.Scatter:
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
        legendgroup="arrows",
        showlegend=first,
        connectgaps=False,
    )


def shrinkage_1d_figure(
    est: ShrinkageEstimates,
    columns: list[str] | None = None,
    *,
    levels: list | None = None,
    subject_label: str = "subject",
) -> go.Figure:
    """Own estimate (upper row) to mixed-model estimate (lower row), one panel per column.

    Traces per panel: the arrows (one segment per subject, arrowhead at the mixed end), own
    estimates (size = observations), mixed-model estimates; a vertical dashed line marks each
    distinct population value (one per covariate group, e.g. per arm).
    """
    columns = list(est.columns) if columns is None else columns
    levels = sample_levels(est) if levels is None else levels
    t = est.table.loc[levels]
    custom, lines = _hover(t, list(est.columns))
    hover = f"{subject_label} <b>%{{customdata[0]}}</b> (n = %{{customdata[1]}})<br>{lines}"
    fig = make_subplots(
        rows=len(columns),
        cols=1,
        subplot_titles=[f"{c}: own estimate → mixed-model estimate" for c in columns],
        vertical_spacing=0.42 / len(columns),
    )
    ones = np.ones(len(t))
    for r, column in enumerate(columns, start=1):
        own, mixed = t[f"own:{column}"].to_numpy(), t[f"mixed:{column}"].to_numpy()
        fig.add_trace(_arrows(own, ones, mixed, 0 * ones, first=r == 1), row=r, col=1)
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
                    legendgroup=name,
                    showlegend=r == 1,
                    marker={"size": size, "color": rgba(color, 0.75), "line": {"width": 0.5}},
                    customdata=custom,
                    hovertemplate=hover + f"<extra>{name}</extra>",
                ),
                row=r,
                col=1,
            )
        for value in main_centres(est, [column])[f"population:{column}"]:
            fig.add_vline(x=value, line={"color": POP, "dash": "dash", "width": 1.5}, row=r, col=1)
        fig.update_xaxes(title_text=column, row=r, col=1)
        fig.update_yaxes(
            tickvals=[0, 1],
            ticktext=["mixed model", "own data"],
            range=[-0.35, 1.35],
            showgrid=False,
            row=r,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="lines",
            name="population value",
            line={"color": POP, "dash": "dash"},
        )  # fmt: skip
    )
    fig.update_layout(
        template=TEMPLATE,
        height=110 + 290 * len(columns),
        margin={"l": 110, "t": 40, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0 + 0.12 / len(columns), "x": 0},
    )
    return fig


def shrinkage_2d_figure(
    est: ShrinkageEstimates,
    x: str,
    y: str,
    *,
    levels: list | None = None,
    subject_label: str = "subject",
    level: float = CONFIDENCE_LEVEL,
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
                marker={"size": size, "color": rgba(color, 0.75), "line": {"width": 0.5}},
                customdata=custom,
                hovertemplate=hover + f"<extra>{name}</extra>",
            )
        )
    i, j = est.columns.index(x), est.columns.index(y)
    cov = est.covariance[np.ix_([i, j], [i, j])]
    centres = main_centres(est, [x, y])
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
                f"population: {x} %{{x:.4~g}}, {y} %{{y:.4~g}}<br>"
                f"%{{customdata}} {subject_label}(s)<extra></extra>"
            ),
        )
    )
    style_figure(fig, f"{y} against {x}: own → mixed, with the model's population ellipse", x, y)
    fig.update_layout(height=560, legend={"orientation": "h", "y": -0.14, "x": 0})
    return fig


def caterpillar_rows(n_levels: int, max_rows: int = MAX_CATERPILLAR) -> np.ndarray:
    """Ranks drawn in a caterpillar plot: all, or ``max_rows`` evenly spaced ranks (the
    smallest and the largest included)."""
    if n_levels <= max_rows:
        return np.arange(n_levels)
    return np.unique(np.round(np.linspace(0, n_levels - 1, max_rows)).astype(int))


#: vertical pixels per labelled row of a caterpillar plot (13 px labels need about 16 px)
CATERPILLAR_ROW_PX = 16
CATERPILLAR_MARGIN = {"t": 60, "b": 60}
CATERPILLAR_MAX_HEIGHT = 1400


def caterpillar_layout(n_rows: int) -> tuple[int, int]:
    """Height of a caterpillar plot of ``n_rows`` rows and the step between labelled rows.

    The height grows by :data:`CATERPILLAR_ROW_PX` per row (at least 380 px, at most
    :data:`CATERPILLAR_MAX_HEIGHT`); when the rows no longer fit at that spacing, only every
    ``step``-th row is labelled, so that labels never overlap (60 subjects: 1,130 px, every
    row labelled; 200: every third row).

    Returns
    -------
    height, step
        Figure height in pixels and the label step (1: every row).
    """
    margins = CATERPILLAR_MARGIN["t"] + CATERPILLAR_MARGIN["b"] + MODEBAR_PX  # shown by
    # show_figure, which keeps MODEBAR_PX free for plotly's toolbar
    height = int(min(CATERPILLAR_MAX_HEIGHT, max(380, CATERPILLAR_ROW_PX * n_rows + margins + 50)))
    plot = height - margins
    step = max(1, math.ceil(n_rows * CATERPILLAR_ROW_PX / plot))
    return height, step


def caterpillar_figure(
    est: ShrinkageEstimates,
    columns: list[str] | None = None,
    *,
    subject_label: str = "subject",
    level: float = CONFIDENCE_LEVEL,
    max_rows: int = MAX_CATERPILLAR,
) -> go.Figure:
    """BLUPs of each column, sorted, with ``+/- z`` conditional-SD intervals at ``level``
    (z = 1.96 for 95%); one panel per column, side by side.

    With more than ``max_rows`` levels, evenly spaced ranks of the sorted BLUPs are drawn
    (the distribution's shape is kept, the extremes included) without level names. Two
    traces per panel: intervals that exclude 0 and those that include it. The height grows
    with the number of rows and the names are thinned so that they never overlap
    (:func:`caterpillar_layout`); every row keeps its name in the hover text.
    """
    columns = list(est.columns) if columns is None else columns
    z = z_value(level)
    m = len(est.table)
    ranks = caterpillar_rows(m, max_rows)
    height, step = caterpillar_layout(len(ranks))
    fig = make_subplots(
        rows=1,
        cols=len(columns),
        subplot_titles=[f"{c}: BLUP ± {z:.3g} SD" for c in columns],
        horizontal_spacing=0.12 if m <= 60 else 0.06,
    )
    for k, column in enumerate(columns, start=1):
        t = est.table.sort_values(f"blup:{column}", kind="stable").iloc[ranks]
        b, sd = t[f"blup:{column}"].to_numpy(), t[f"blup_sd:{column}"].to_numpy()
        away = np.abs(b) > z * sd
        for name, mask, color in (
            ("interval includes 0", ~away, GREY),
            ("interval excludes 0", away, PALETTE[3]),
        ):
            fig.add_trace(
                go.Scatter(
                    x=b[mask],
                    y=ranks[mask],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=k == 1,
                    marker={"size": 4 if len(ranks) > 200 else 6, "color": color},
                    error_x={
                        "type": "data",
                        "array": z * sd[mask],
                        "color": rgba(color, 0.45),
                        "thickness": 1,
                        "width": 0,
                    },
                    customdata=np.column_stack(
                        [t.index[mask].astype(str), t["n"].to_numpy()[mask], sd[mask]]
                    ),
                    hovertemplate=(
                        f"{subject_label} <b>%{{customdata[0]}}</b> (n = %{{customdata[1]}})"
                        f"<br>BLUP of {column} = %{{x:.4~g}} ± {z:.3g} × %{{customdata[2]:.3~g}}"
                        "<extra></extra>"
                    ),
                ),
                row=1,
                col=k,
            )
        _caterpillar_axes(fig, k, column, t, ranks, m, step, subject_label)
    fig.update_layout(
        template=TEMPLATE,
        height=height,
        margin=dict(CATERPILLAR_MARGIN),
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.06, "x": 0},
    )
    return fig


def _caterpillar_axes(
    fig: go.Figure,
    k: int,
    column: str,
    t: pd.DataFrame,
    ranks: np.ndarray,
    m: int,
    step: int,
    subject_label: str,
) -> None:
    """Panel ``k``'s zero line and axes: level names every ``step`` rows when every one of
    the ``m`` levels is drawn, else a count."""
    fig.add_vline(x=0, line={"color": POP, "width": 1}, row=1, col=k)
    show_names = len(ranks) == m  # every level drawn: its rows can carry names
    labelled = slice(None, None, step)
    fig.update_xaxes(title_text=f"random effect of {column}", row=1, col=k)
    fig.update_yaxes(
        tickvals=ranks[labelled] if show_names else None,
        ticktext=list(t.index.astype(str))[labelled] if show_names else None,
        tickfont={"size": 12},
        showticklabels=show_names,
        showgrid=False,
        title_text=(subject_label if show_names else f"{m:,} {subject_label}s, sorted")
        if k == 1
        else None,
        row=1,
        col=k,
    )


def shrinkage_by_n(est: ShrinkageEstimates, columns: list[str] | None = None) -> pd.DataFrame:
    """Median shrinkage factor and median distance moved, by number of observations.

    Returns
    -------
    pandas.DataFrame
        Columns ``observations``, ``subjects`` and, per column ``c``, ``kept: c`` (median
        shrinkage factor: the share of the own deviation the model keeps) and ``moved: c``
        (median ``|mixed - own|``); only subjects with an own fit.
    """
    columns = list(est.columns) if columns is None else columns
    t = est.table[est.table["fitted_own"]]
    parts = {"subjects": t["n"].groupby(t["n"]).size()}
    for c in columns:
        parts[f"kept: {c}"] = t[f"shrinkage:{c}"].groupby(t["n"]).median()
        parts[f"moved: {c}"] = (t[f"mixed:{c}"] - t[f"own:{c}"]).abs().groupby(t["n"]).median()
    out = pd.DataFrame(parts)
    return out.rename_axis("observations").reset_index()
