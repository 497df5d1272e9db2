"""Shrinkage of whole curves, for a random part that is a spline or polynomial in time.

Pure functions, no Streamlit. With ``(ns(Time, 2) | Chick)`` a subject's random effects
multiply basis curves and mean little one by one, so the Shrinkage page shows, for a few
subjects (:func:`curve_levels`), three curves over time on a fine grid
(:func:`prepare_curves`): the subject's own least-squares fit on the same basis, the mixed
model's curve and the population curve; :func:`shrinkage_curves_figure` draws them, one small
panel per subject, in the colours of :mod:`dashboard.figures.shrinkage`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.markup import plain_name
from dashboard.figures.shrinkage import GREY, MIXED, OWN, POP
from dashboard.figures.style import TEMPLATE
from lmm_core import LMMResult
from lmm_core.predict.per_group import ShrinkageEstimates
from lmm_core.predict.prediction import subject_grid

__all__ = [
    "CURVE_PANELS",
    "CURVE_POINTS",
    "CURVE_STYLE",
    "basis_effects",
    "curve_levels",
    "prepare_curves",
    "shrinkage_curves_figure",
]

CURVE_PANELS = 6
CURVE_POINTS = 50  # evenly spaced points of each curve between the first and last visit


def basis_effects(result: LMMResult, columns: list[str] | tuple[str, ...]) -> list[str]:
    """The random-effect columns that belong to a spline or polynomial term
    (``ns(Time, 2)1``), names compared without formula backticks."""
    labels = [plain_name(label) for label in result.design.bases]
    return [c for c in columns if any(plain_name(c).startswith(label) for label in labels)]


def curve_levels(est: ShrinkageEstimates, k: int = CURVE_PANELS) -> list:
    """``k`` levels with an own fit that show shrinkage best: fewest observations first,
    then the largest move from the own estimate, measured as ``sum_j |mixed_j - own_j| /
    sd_j`` with ``sd_j`` the random effect's standard deviation (``sqrt`` of the diagonal
    of ``est.covariance``; a zero SD counts as 1)."""
    t = est.table[est.table["fitted_own"]]
    sd = np.sqrt(np.diag(est.covariance))
    sd = np.where(sd > 0, sd, 1.0)
    moved = sum((t[f"mixed:{c}"] - t[f"own:{c}"]).abs() / sd[j] for j, c in enumerate(est.columns))
    order = pd.DataFrame({"n": t["n"], "moved": -moved}).sort_values(["n", "moved"], kind="stable")
    return list(order.index[:k])


def prepare_curves(
    result: LMMResult,
    data: pd.DataFrame,
    est: ShrinkageEstimates,
    x: str,
    levels: list,
    n_points: int = CURVE_POINTS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The three curves of each level on a fine grid of ``x``, and its observations.

    For level ``i`` with random-effects basis ``z(t)`` (e.g. ``1, ns(t, 2)1, ns(t, 2)2``):
    **own** ``= z(t)' own_i`` (its least-squares fit on the same basis, alone), **mixed**
    ``= x(t)' beta + sum_k z_k(t)' b_k`` (the model's curve, ``result.predict``) and
    **population** ``= x(t)' beta`` (its covariates, no random effects), evaluated on
    :func:`lmm_core.predict.prediction.subject_grid` (visits and ``n_points`` even steps).

    Parameters
    ----------
    result, data
        The fit and its data; ``est.group`` must be a column of ``data``.
    est
        Shrinkage estimates of that group (own coefficients ``own:c`` in the order of the
        group's random-effects columns).
    x
        Numeric column of the horizontal axis (the time of the spline).
    levels
        Levels (as in ``est.table``) to draw.

    Returns
    -------
    curves, points
        ``curves``: ``level``, ``x``, ``own``, ``mixed``, ``population``; ``points``:
        ``level``, ``x``, ``y`` (the observations).
    """
    group = est.group
    used = data.iloc[result.design.rows]
    raw = {str(v): v for v in pd.unique(used[group])}
    ids = [raw[str(v)] for v in levels if str(v) in raw]
    grid = subject_grid(result, data, group, x, ids, n_points)
    ks = [k for k, term in enumerate(result.reterms) if term.group == group]
    z = np.hstack([result.design.random_matrix(k, grid)[1] for k in ks])
    labels = grid[group].astype(str)
    own = est.table.loc[labels, [f"own:{c}" for c in est.columns]].to_numpy(dtype=float)
    curves = pd.DataFrame(
        {
            "level": labels.to_numpy(),
            "x": grid[x].to_numpy(dtype=float),
            "own": np.einsum("ij,ij->i", z, own),
            "mixed": result.predict(grid),
            "population": result.predict(grid, include_re=False),
        }
    )
    rows = used[used[group].isin(ids)]
    points = pd.DataFrame(
        {
            "level": rows[group].astype(str).to_numpy(),
            "x": pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float),
            "y": result.design.response_values(rows),
        }
    )
    return curves, points


#: curve -> (legend name, colour, width, dash)
CURVE_STYLE = {
    "population": ("population", POP, 1.5, "dot"),
    "mixed": ("mixed model", MIXED, 2.5, "solid"),
    "own": ("own data only", OWN, 2.0, "dash"),  # dashes on top: both stay visible
}


def shrinkage_curves_figure(
    curves: pd.DataFrame,
    points: pd.DataFrame,
    n: pd.Series,
    *,
    subject_label: str = "subject",
    x_label: str = "time",
    y_label: str = "outcome",
) -> go.Figure:
    """One small panel per level: its observations, the population curve, its own fit and
    the mixed model's curve (between the two: shrinkage of the whole curve).

    ``n`` gives each level's number of observations (index: level). Panels run three to a
    row in the order of the levels in ``curves``, all on one vertical scale. Traces per
    panel: observations, population, mixed, own (legend entries on the first panel).
    """
    levels = list(pd.unique(curves["level"]))
    cols = min(3, len(levels))
    rows = math.ceil(len(levels) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        shared_yaxes="all",
        subplot_titles=[f"{subject_label} {v} (n = {int(n[v])})" for v in levels],
        horizontal_spacing=0.04,
        vertical_spacing=0.32 / rows,
    )
    for i, v in enumerate(levels):
        where = {"row": i // cols + 1, "col": i % cols + 1}
        c, p = curves[curves["level"] == v], points[points["level"] == v]
        fig.add_trace(
            go.Scatter(
                x=p["x"],
                y=p["y"],
                mode="markers",
                marker={"size": 6, "color": GREY},
                name="observed",
                legendgroup="observed",
                showlegend=i == 0,
                hovertemplate=f"{x_label} = %{{x:.3~g}}<br>observed {y_label} = %{{y:.4~g}}"
                "<extra></extra>",
            ),
            **where,
        )
        for key, (name, color, width, dash) in CURVE_STYLE.items():
            fig.add_trace(
                go.Scatter(
                    x=c["x"],
                    y=c[key],
                    mode="lines",
                    line={"color": color, "width": width, "dash": dash},
                    name=name,
                    legendgroup=key,
                    showlegend=i == 0,
                    hovertemplate=f"{x_label} = %{{x:.3~g}}<br>{name}: %{{y:.4~g}}<extra></extra>",
                ),
                **where,
            )
    for col in range(1, cols + 1):
        fig.update_xaxes(title_text=x_label, row=rows, col=col)
    fig.update_yaxes(title_text=y_label, row=1, col=1)
    fig.update_layout(
        template=TEMPLATE,
        height=120 + 250 * rows,
        margin={"t": 70, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0 + 0.1 / rows, "x": 0},
    )
    return fig
