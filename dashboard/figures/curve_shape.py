"""Competing population curves of time over the observed means (pure plotly, no Streamlit).

Each fitted shape (straight line, quadratic, natural splines...) gives a population curve
``x(t)' beta``: the fixed part evaluated on a fine grid of time with every random effect at
zero (:func:`lmm_core.predict.prediction.population_grid` and
:func:`~lmm_core.predict.prediction.population_curve`); the stored spline bases are reused, so
the curves are the fitted ones. They are drawn over the observed mean outcome per visit time
(per time bin when the times are irregular, :func:`dashboard.figures.explore.time_bins`) with
a t-based 95% interval for each mean. When a factor (the treatment arm) interacts with time,
each level gets a panel, as long as there are at most :data:`MAX_PANELS`; otherwise the
curves are those of its reference level, and the note says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.numbers import fmt, hover
from dashboard.figures.explore import prepare_mean_trajectory
from dashboard.figures.style import MODEBAR_PX, PALETTE, TEMPLATE, style_figure
from dashboard.io.roles import is_numeric
from lmm_core import LMMError, LMMResult
from lmm_core.predict.prediction import held_column, population_curve, population_grid

__all__ = ["MAX_PANELS", "N_POINTS", "ShapeCurves", "curve_shape_figure", "shape_curves"]

#: most panels (levels of the factor that interacts with time) drawn side by side
MAX_PANELS = 6
#: grid points of each curve
N_POINTS = 121
#: most distinct times shown as they are; more are binned
MAX_TIMES = 15
ALL = "all"
BOTTOM_PX = 120  # bottom margin: tick labels, axis title and the legend
LEGEND_PX = 62  # the legend's top, below the plot area
MEAN_COLOR = "#555555"


@dataclass(frozen=True)
class ShapeCurves:
    """What the figure draws.

    Attributes
    ----------
    curves
        Columns ``shape``, ``group`` (str; ``"all"`` without panels), ``time``, ``fit``.
    means
        Columns ``group``, ``time`` (mean time of the bin), ``n``, ``mean``, ``lower``,
        ``upper`` (95% t interval of the mean; NaN for a single observation).
    by
        The column with one panel per level, or ``None``.
    groups
        The panels' levels (``("all",)`` without panels).
    notes
        What the curves hold fixed (plain text), for a caption.
    failed
        Shapes whose curve could not be computed.
    """

    curves: pd.DataFrame
    means: pd.DataFrame
    by: str | None
    groups: tuple[str, ...]
    notes: tuple[str, ...]
    failed: tuple[str, ...] = field(default_factory=tuple)


def _levels(values: pd.Series) -> list:
    """Levels in the model's order: categories of a categorical, else sorted as text."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return sorted(pd.unique(values.dropna()), key=str)


def _held_text(held: dict[str, object]) -> str:
    parts = [
        f"{name} = {fmt(value, 3) if isinstance(value, int | float) else value}"
        for name, value in held.items()
    ]
    return "Other covariates are held at typical values: " + ", ".join(parts) + "."


def _grid(
    first: LMMResult, data: pd.DataFrame, time: str, by: str | None, n_points: int, panels: int
) -> tuple[pd.DataFrame, str | None, object, list[str]]:
    """The prediction grid, the panel column, the reference level used instead, and notes."""
    used = data.iloc[first.design.rows]
    notes = []
    facet, reference = None, None
    if by is not None and by in used.columns and not is_numeric(used[by]):
        levels = _levels(used[by])
        if 1 < len(levels) <= panels:
            facet = by
        elif levels:
            reference = levels[0]
            notes.append(
                f"Curves for {by} = {reference} (the reference level): {len(levels)} levels "
                f"are too many panels to read."
            )
    grid, held = population_grid(first, data, time, facet, n_points=n_points)
    if reference is not None:
        grid[by] = held_column(used[by], reference, len(grid))
        held.pop(by, None)
    if held:
        notes.append(_held_text(held))
    return grid, facet, reference, notes


def _means(
    first: LMMResult, data: pd.DataFrame, time: str, facet: str | None, by: str | None, ref
) -> tuple[pd.DataFrame, str]:
    """Observed mean response per visit time (or time bin), per panel."""
    used = data.iloc[first.design.rows]
    frame = pd.DataFrame({"time": used[time].to_numpy(), "y": np.asarray(first.y, float)})
    if facet is not None:
        frame["group"] = used[facet].astype(str).to_numpy()
    elif ref is not None:
        frame = frame[(used[by] == ref).to_numpy()]
    means = prepare_mean_trajectory(frame, "time", "y", "group" if facet else None)
    n_times = pd.to_numeric(used[time], errors="coerce").nunique()
    how = (
        "Points: observed mean per visit time"
        if n_times <= MAX_TIMES
        else "Points: observed mean per bin of time (the times are irregular)"
    )
    return means.drop(columns="sd"), how + ", with its 95% interval."


def shape_curves(
    fits: Sequence[tuple[str, LMMResult]],
    data: pd.DataFrame,
    time: str,
    *,
    by: str | None = None,
    n_points: int = N_POINTS,
    max_panels: int = MAX_PANELS,
) -> ShapeCurves:
    """Population curves of each fit on one grid of ``time``, and the observed means.

    Parameters
    ----------
    fits
        ``(shape label, fit)`` in legend order; fits of the same rows, differing only in how
        time enters the fixed part.
    data
        The data the models were fitted to.
    time
        The time column (numeric).
    by
        A factor interacting with time: one panel per level (at most ``max_panels``, else its
        reference level only).
    n_points
        Grid points per curve, from the first to the last observed time.

    Returns
    -------
    ShapeCurves
        Curves ``x(t)' beta`` (random effects at zero), means and notes.
    """
    if not fits:
        raise ValueError("shape_curves needs at least one fit")
    first = fits[0][1]
    grid, facet, reference, notes = _grid(first, data, time, by, n_points, max_panels)
    groups = grid[facet].astype(str).to_numpy() if facet else np.full(len(grid), ALL)
    parts, failed = [], []
    for label, result in fits:
        try:
            fit = population_curve(result, grid)["fit"].to_numpy()
        except (LMMError, ValueError, KeyError, np.linalg.LinAlgError):
            failed.append(label)
            continue
        parts.append(
            pd.DataFrame({"shape": label, "group": groups, "time": grid[time], "fit": fit})
        )
    curves = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["shape", "group", "time", "fit"])
    )
    means, how = _means(first, data, time, facet, by, reference)
    if facet is None:
        means["group"] = ALL
    return ShapeCurves(
        curves, means, facet, tuple(dict.fromkeys(groups)), (how, *notes), tuple(failed)
    )


def _layout(n: int) -> tuple[int, int]:
    """Rows and columns of ``n`` panels: one row up to 3, then two rows."""
    return (1, n) if n <= 3 else (2, -(-n // 2))


def _add_means(fig: go.Figure, means: pd.DataFrame, where: dict, first: bool, labels) -> None:
    time_label, outcome_label = labels
    half_up = (means["upper"] - means["mean"]).to_numpy(dtype=float)
    half_down = (means["mean"] - means["lower"]).to_numpy(dtype=float)
    fig.add_trace(
        go.Scatter(
            x=means["time"],
            y=means["mean"],
            mode="markers",
            name="observed mean",
            legendgroup="observed mean",
            legendrank=1,
            showlegend=first,
            marker={"color": MEAN_COLOR, "size": 7, "symbol": "circle-open", "line": {"width": 2}},
            error_y={
                "type": "data",
                "array": np.nan_to_num(half_up),
                "arrayminus": np.nan_to_num(half_down),
                "color": "rgba(85,85,85,0.45)",
                "thickness": 1.2,
                "width": 0,
            },
            customdata=means[["n"]].to_numpy(),
            hovertemplate=f"{time_label} ≈ %{{x:{hover(3)}}}<br>mean {outcome_label} = "
            f"%{{y:{hover()}}}<br>n = %{{customdata[0]}}<extra>observed</extra>",
        ),
        **where,
    )


def curve_shape_figure(
    prep: ShapeCurves,
    *,
    time_label: str = "time",
    outcome_label: str = "outcome",
    highlight: str | None = None,
) -> go.Figure:
    """One colour per shape, over the observed means; one panel per level of ``prep.by``.

    Parameters
    ----------
    prep
        :func:`shape_curves`.
    time_label, outcome_label
        Axis titles.
    highlight
        The shape drawn thicker (the recommended one).
    """
    shapes = list(pd.unique(prep.curves["shape"]))
    n = len(prep.groups)
    rows, cols = _layout(n)
    if prep.by is not None:
        fig = make_subplots(
            rows=rows,
            cols=cols,
            shared_yaxes="all",
            shared_xaxes="all",
            subplot_titles=[f"{prep.by} = {g}" for g in prep.groups],
            horizontal_spacing=0.04,
            vertical_spacing=0.1,
        )
    else:
        fig = go.Figure()
    labels = (time_label, outcome_label)
    for k, group in enumerate(prep.groups):
        where = {"row": k // cols + 1, "col": k % cols + 1} if prep.by is not None else {}
        _add_means(fig, prep.means[prep.means["group"] == group], where, k == 0, labels)
        order = sorted(range(len(shapes)), key=lambda j: shapes[j] == highlight)  # it on top
        for i in order:
            shape = shapes[i]
            c = prep.curves[(prep.curves["shape"] == shape) & (prep.curves["group"] == group)]
            fig.add_trace(
                go.Scatter(
                    x=c["time"],
                    y=c["fit"],
                    mode="lines",
                    name=shape,
                    legendgroup=shape,
                    legendrank=i + 2,
                    showlegend=k == 0,
                    line={
                        "color": PALETTE[i % len(PALETTE)],
                        "width": 3.5 if shape == highlight else 2,
                    },
                    hovertemplate=f"{time_label} = %{{x:{hover(3)}}}<br>{outcome_label} = "
                    f"%{{y:{hover()}}}<extra>{shape}</extra>",
                ),
                **where,
            )
    title = "Population curve of each shape over the observed means"
    style_figure(fig, title + (f", by {prep.by}" if prep.by else ""), time_label, outcome_label)
    height = 440 if rows == 1 else 640
    plot_px = height - (50 + MODEBAR_PX) - BOTTOM_PX  # the plot area, once the toolbar strip
    fig.update_layout(  # is reserved: the legend sits LEGEND_PX below it, under the axis title
        template=TEMPLATE,
        height=height,
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -LEGEND_PX / plot_px, "x": 0},
        margin={"t": 50, "b": BOTTOM_PX},
    )
    if prep.by is not None:
        for k in range(n):
            row, col = k // cols + 1, k % cols + 1
            fig.update_xaxes(title_text=time_label if row == rows else None, row=row, col=col)
            fig.update_yaxes(title_text=outcome_label if col == 1 else None, row=row, col=col)
    return fig
