"""Diagnostic figures of a fitted mixed model: pure functions, no Streamlit.

Data preparation (``prepare_*``, ``qq_points``, ``binned_means``, ``outlying_groups``) is kept
apart from drawing (``*_figure``). Large fits are handled by sampling points for scatter plots
(all flagged points are always kept) while summaries (binned means, QQ quantiles, outliers) use
every row; QQ plots of many values are drawn on a quantile grid that keeps both tails exact.
Standardized residuals are ``residual / sigma`` (lme4's Pearson residuals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from dashboard.base.markup import plain_name
from dashboard.base.numbers import fmt
from dashboard.figures.style import PALETTE, TEMPLATE, WEBGL_ROWS, style_figure
from lmm_core import LMMResult

__all__ = [
    "QQData",
    "ResidualData",
    "binned_means",
    "group_residuals_figure",
    "observed_fitted_figure",
    "outlying_groups",
    "prepare_residuals",
    "qq_figure",
    "qq_points",
    "ranef_qq_figure",
    "ranef_qq_panels",
    "residuals_fitted_figure",
    "sample_points",
]

LIMIT = 3.0  # |standardized residual| or |random-effect z| beyond which we flag
MAX_POINTS = 2000  # scatter points drawn before sampling (SVG: quick to draw everywhere)
MAX_QQ_POINTS = 1000  # at most WEBGL_ROWS: QQ plots stay SVG (cheap to draw)
MAX_PANELS = 6
MAX_BOXES = 30
FLAG_COLOR = PALETTE[3]
LINE_COLOR = "#555555"


@dataclass(frozen=True)
class ResidualData:
    """Per-observation values of a fit.

    Attributes
    ----------
    frame
        Columns ``observed``, ``fitted``, ``residual``, ``std_resid`` (residual / sigma),
        ``group`` (level label of the grouping factor), one row per observation used.
    group
        Name of the grouping factor.
    sigma
        Residual standard deviation of the fit.
    """

    frame: pd.DataFrame
    group: str
    sigma: float


@dataclass(frozen=True)
class QQData:
    """Points of a normal QQ plot and its reference line.

    Attributes
    ----------
    theoretical, sample
        Normal quantiles (R's ``ppoints``) and the sorted values at the same positions; all
        values, or a grid with exact tails when there are many.
    slope, intercept
        Reference line through the first and third quartiles (R's ``qqline``).
    n
        Number of values (not of points drawn).
    """

    theoretical: np.ndarray
    sample: np.ndarray
    slope: float
    intercept: float
    n: int


def group_names(result: LMMResult) -> list[str]:
    """The grouping factors of a fit, each once, in the order of its terms."""
    return list(dict.fromkeys(t.group for t in result.reterms))


def prepare_residuals(result: LMMResult, group: str | None = None) -> ResidualData:
    """Observed, fitted, raw and standardized residuals with the level of ``group``.

    Parameters
    ----------
    result
        A fit.
    group
        One of its grouping factors (the first one when None).
    """
    group = group or group_names(result)[0]
    term = next(t for t in result.reterms if t.group == group)
    levels = np.asarray(term.levels, dtype=object)
    residual = np.asarray(result.residuals, dtype=float)
    frame = pd.DataFrame(
        {
            "observed": np.asarray(result.y, dtype=float),
            "fitted": np.asarray(result.fitted, dtype=float),
            "residual": residual,
            "std_resid": residual / result.sigma,
            "group": levels[term.codes],
        }
    )
    return ResidualData(frame, group, float(result.sigma))


def sample_points(
    frame: pd.DataFrame, max_points: int = MAX_POINTS, seed: int = 0
) -> tuple[pd.DataFrame, str]:
    """A seeded random sample of rows, keeping every flagged row (|std_resid| > 3).

    Returns the rows to draw and a note (empty when every row is drawn).
    """
    if len(frame) <= max_points:
        return frame, ""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(frame), dtype=bool)
    keep[rng.choice(len(frame), size=max_points, replace=False)] = True
    keep |= np.abs(frame["std_resid"].to_numpy()) > LIMIT
    note = (
        f"Showing a random sample of {max_points:,} of {len(frame):,} observations (plus every "
        "flagged one) so the plot stays fast; the smoother uses all observations."
    )
    return frame[keep], note


def binned_means(x: np.ndarray, y: np.ndarray, bins: int = 20) -> pd.DataFrame:
    """Mean of ``y`` in quantile bins of ``x`` (columns ``x``, ``y``, ``n``): a smoother."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return pd.DataFrame({"x": [x.mean()], "y": [y.mean()], "n": [len(x)]})
    codes = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    n = np.bincount(codes, minlength=len(edges) - 1)
    ok = n > 0
    mx = np.bincount(codes, weights=x, minlength=len(n))[ok] / n[ok]
    my = np.bincount(codes, weights=y, minlength=len(n))[ok] / n[ok]
    return pd.DataFrame({"x": mx, "y": my, "n": n[ok]})


def qq_points(values: np.ndarray, max_points: int = MAX_QQ_POINTS) -> QQData:
    """Normal QQ points of ``values`` (all of them, or a grid keeping the tails exact)."""
    v = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    n = v.size
    a = 3 / 8 if n <= 10 else 0.5
    idx = np.arange(n)
    if n > max_points:
        tail = max_points // 10
        middle = np.linspace(tail, n - tail - 1, max_points - 2 * tail).round().astype(int)
        idx = np.unique(np.concatenate([np.arange(tail), middle, np.arange(n - tail, n)]))
    theoretical = stats.norm.ppf((idx + 1 - a) / (n + 1 - 2 * a))
    q_sample = np.quantile(v, [0.25, 0.75]) if n else np.array([0.0, 0.0])
    q_norm = stats.norm.ppf([0.25, 0.75])
    slope = float((q_sample[1] - q_sample[0]) / (q_norm[1] - q_norm[0]))
    intercept = float(q_sample[0] - slope * q_norm[0])
    return QQData(theoretical, v[idx], slope, intercept, n)


LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}


def _legend_below(fig: go.Figure) -> go.Figure:
    """Put the legend under the plot (half-width figures have no room at the side)."""
    fig.update_layout(legend=LEGEND_BELOW, margin={"b": 110})
    return fig


def _trace_class(n: int):
    """WebGL above 3,000 points. Below, SVG draws faster: measured in headless chromium, whose
    software WebGL costs about 0.5 s per chart."""
    return go.Scattergl if n > 3 * WEBGL_ROWS else go.Scatter


def residuals_fitted_figure(prep: ResidualData, points: pd.DataFrame) -> go.Figure:
    """Residuals against fitted values, a zero line and binned means of all rows.

    Parameters
    ----------
    prep
        Output of :func:`prepare_residuals` (all rows: the smoother uses them).
    points
        The rows to draw (e.g. from :func:`sample_points`).
    """
    frame = prep.frame
    bins = int(np.clip(len(frame) // 30, 5, 20))  # about 30 or more points per bin
    smooth = binned_means(frame["fitted"].to_numpy(), frame["residual"].to_numpy(), bins)
    flagged = np.abs(points["std_resid"].to_numpy()) > LIMIT
    cls = _trace_class(len(points))
    fig = go.Figure()
    for mask, name, color in (
        (~flagged, "observation", PALETTE[0]),
        (flagged, "|r| > 3", FLAG_COLOR),
    ):
        sub = points[mask]
        fig.add_trace(
            cls(
                x=sub["fitted"],
                y=sub["residual"],
                mode="markers",
                name=name,
                marker={
                    "size": 5,
                    "color": color,
                    "opacity": 0.55 if name == "observation" else 0.9,
                },
                customdata=np.column_stack([sub["group"].astype(str), sub["std_resid"]]),
                hovertemplate=(
                    f"{prep.group} %{{customdata[0]}}<br>fitted = %{{x:.4~g}}<br>residual = "
                    "%{y:.4~g}<br>standardized = %{customdata[1]:.3~g}<extra></extra>"
                ),
            )
        )
    fig.add_trace(
        cls(  # same layer as the points: WebGL traces are drawn above SVG ones
            x=smooth["x"],
            y=smooth["y"],
            mode="lines+markers",
            name="binned mean",
            line={"color": PALETTE[1], "width": 3},
            marker={"size": 6},
            customdata=smooth["n"],
            hovertemplate="mean residual %{y:.3~g}<br>n = %{customdata}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line={"color": LINE_COLOR, "dash": "dash", "width": 1})
    style_figure(fig, "Residuals vs fitted values", "fitted value", "residual")
    return _legend_below(fig)


def observed_fitted_figure(prep: ResidualData, points: pd.DataFrame) -> go.Figure:
    """Observed against fitted values with the identity line ``y = x``."""
    cls = _trace_class(len(points))
    lo = float(min(prep.frame["fitted"].min(), prep.frame["observed"].min()))
    hi = float(max(prep.frame["fitted"].max(), prep.frame["observed"].max()))
    fig = go.Figure(
        cls(
            x=points["fitted"],
            y=points["observed"],
            mode="markers",
            name="observation",
            marker={"size": 5, "color": PALETTE[0], "opacity": 0.55},
            customdata=points["group"].astype(str),
            hovertemplate=(
                f"{prep.group} %{{customdata}}<br>fitted = %{{x:.4~g}}<br>observed = %{{y:.4~g}}"
                "<extra></extra>"
            ),
        )
    )
    fig.add_trace(
        cls(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="identity (observed = fitted)",
            line={"color": LINE_COLOR, "dash": "dash"},
            hoverinfo="skip",
        )
    )
    style_figure(fig, "Observed vs fitted values", "fitted value", "observed value")
    return _legend_below(fig)


def _qq_traces(qq: QQData, name: str, color: str, show_legend: bool) -> list[go.Scatter]:
    cls = _trace_class(qq.sample.size)
    x_end = np.array([qq.theoretical.min(), qq.theoretical.max()]) if qq.n else np.zeros(2)
    return [
        cls(
            x=qq.theoretical,
            y=qq.sample,
            mode="markers",
            name=name,
            marker={"size": 5, "color": color, "opacity": 0.7},
            showlegend=show_legend,
            hovertemplate="normal quantile %{x:.3~g}<br>value %{y:.4~g}<extra></extra>",
        ),
        go.Scatter(
            x=x_end,
            y=qq.intercept + qq.slope * x_end,
            mode="lines",
            name="reference line (quartiles)",
            line={"color": LINE_COLOR, "dash": "dash"},
            showlegend=show_legend,
            hoverinfo="skip",
        ),
    ]


def qq_figure(qq: QQData, *, title: str, y_label: str) -> go.Figure:
    """Normal QQ plot with its quartile reference line."""
    fig = go.Figure(_qq_traces(qq, "value", PALETTE[0], True))
    style_figure(fig, title, "standard normal quantile", y_label)
    return _legend_below(fig)


def ranef_qq_panels(result: LMMResult) -> list[tuple[str, str, QQData]]:
    """``(group, term, QQData)`` of each random effect's conditional modes (BLUPs)."""
    panels = []
    for group, frame in result.ranef.items():
        for column in frame.columns:
            panels.append((group, plain_name(str(column)), qq_points(frame[column].to_numpy())))
    return panels[:MAX_PANELS]


def ranef_qq_figure(panels: list[tuple[str, str, QQData]], what: str = "BLUPs") -> go.Figure:
    """One normal QQ panel per random effect (output of :func:`ranef_qq_panels`); ``what``
    names the estimates in the title (BLUPs, or a GLMM's conditional modes)."""
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    titles = [f"{group}: {term} ({qq.n:,} levels)" for group, term, qq in panels]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles)
    for k, (_, _, qq) in enumerate(panels):
        for trace in _qq_traces(qq, "random effect", PALETTE[2], k == 0):
            fig.add_trace(trace, row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(
        template=TEMPLATE,
        title={"text": f"Normal QQ plots of the random effects ({what})"},
        height=380 * rows,
        showlegend=False,
    )
    fig.update_xaxes(title_text="standard normal quantile")
    fig.update_yaxes(title_text="random effect", col=1)
    return fig


def group_residuals_figure(
    prep: ResidualData, *, max_groups: int = MAX_BOXES, seed: int = 0
) -> tuple[go.Figure, str]:
    """Box plot of residuals per level of the grouping factor, ordered by mean residual.

    With more than ``max_groups`` levels, the levels with the largest ``|std_resid|`` (up to
    a third of the boxes) and a seeded random sample of the others are shown; the note says so.
    """
    frame = prep.frame
    worst = (frame["std_resid"].abs().groupby(frame["group"], sort=False).max()).sort_values(
        ascending=False
    )
    note = ""
    chosen = list(worst.index)
    if len(chosen) > max_groups:
        top = [g for g in worst.index[: max_groups // 3] if worst[g] > LIMIT]
        rest = [g for g in worst.index if g not in set(top)]
        rng = np.random.default_rng(seed)
        chosen = top + list(rng.choice(rest, size=max_groups - len(top), replace=False))
        note = (
            f"Showing {max_groups} of {len(worst):,} levels of {prep.group}: "
            f"{len(top)} with the most extreme residuals and a random sample of the others."
        )
    sub = frame[frame["group"].isin(chosen)]
    order = sub.groupby("group")["residual"].mean().sort_values().index.astype(str)
    per_group = len(sub) / max(len(chosen), 1)
    fig = go.Figure(
        go.Box(
            x=sub["group"].astype(str),
            y=sub["residual"],
            name="residuals",
            marker={"color": PALETTE[0], "size": 4},
            boxpoints="all" if per_group <= 30 else "outliers",
            jitter=0.3,
            pointpos=0,
            line={"width": 1},
            hovertemplate=f"{prep.group} %{{x}}<br>residual %{{y:.4~g}}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line={"color": LINE_COLOR, "dash": "dash", "width": 1})
    style_figure(
        fig, f"Residuals by {prep.group} (ordered by mean residual)", prep.group, "residual"
    )
    fig.update_xaxes(
        categoryorder="array",
        categoryarray=list(order),
        type="category",
        tickangle=-45,
        automargin=True,
    )
    return fig, note


def outlying_groups(result: LMMResult, prep: ResidualData, *, limit: float = LIMIT) -> pd.DataFrame:
    """Levels of the grouping factor with an outlying observation or random effect.

    A level is flagged when one of its observations has ``|residual / sigma| > limit`` or
    when one of its random effects lies more than ``limit`` standard deviations (of that
    effect's fitted distribution) from 0.

    Returns
    -------
    pandas.DataFrame
        Index: level; columns ``n_obs``, ``n_outlying``, ``max_abs_std_resid``, one
        ``z: <term>`` column per random effect of the group, and ``why`` (plain words);
        ordered by the largest problem first. Empty when nothing is flagged.
    """
    frame = prep.frame
    abs_r = frame["std_resid"].abs()
    grouped = pd.DataFrame({"a": abs_r, "out": (abs_r > limit).astype(int)}).groupby(
        frame["group"], sort=False
    )
    table = pd.DataFrame(
        {
            "n_obs": grouped.size(),
            "n_outlying": grouped["out"].sum(),
            "max_abs_std_resid": grouped["a"].max(),
        }
    )
    z_cols = []
    for term, b, cov in zip(result.reterms, result.b, result.covariance_matrices(), strict=True):
        if term.group != prep.group:
            continue
        sd = np.sqrt(np.diag(cov))
        for j, name in enumerate(term.cnames):
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(sd[j] > 0, b[:, j] / sd[j], np.nan)
            col = f"z: {plain_name(name)}"
            table[col] = pd.Series(z, index=list(term.levels)).reindex(table.index)
            z_cols.append(col)
    flagged = table["n_outlying"] > 0
    for col in z_cols:
        flagged |= table[col].abs() > limit
    table = table[flagged].copy()
    why = []
    for _, row in table.iterrows():
        reasons = []
        if row["n_outlying"]:
            reasons.append(
                f"{int(row['n_outlying'])} observation(s) with |standardized residual| > "
                f"{limit:g} (largest {fmt(row['max_abs_std_resid'], 2)})"
            )
        for col in z_cols:
            if np.isfinite(row[col]) and abs(row[col]) > limit:
                side = "above" if row[col] > 0 else "below"
                reasons.append(f"random {col[3:]} is {fmt(abs(row[col]), 2)} SD {side} average")
        why.append("; ".join(reasons))
    table["why"] = why
    severity = table[["max_abs_std_resid", *z_cols]].abs().max(axis=1)
    table = table.loc[severity.sort_values(ascending=False).index]
    table.index.name = prep.group
    return table
