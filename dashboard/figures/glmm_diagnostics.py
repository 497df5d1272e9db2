"""Figures of a GLMM's diagnostics: binned residuals with their 2-SE band, and randomized
quantile residuals (normal QQ plot, against the fitted means). The numbers come from
:mod:`dashboard.analysis.glmm_diagnostics` (passed in as frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.diagnostics import binned_means, qq_points
from dashboard.figures.style import PALETTE, WEBGL_ROWS, style_figure

__all__ = ["binned_figure", "quantile_fitted_figure", "quantile_qq_figure"]

LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}
BAND_COLOR = "#888888"
OUT_COLOR = PALETTE[3]


def binned_figure(table: pd.DataFrame, x_label: str = "fitted probability") -> go.Figure:
    """Mean residual of each bin against its mean fitted value, the band ``+-2 SE`` (grey
    lines) and the bins outside it in another colour."""
    table = table.sort_values("fitted")
    x = table["fitted"].to_numpy(float)
    se2 = 2.0 * table["se"].to_numpy(float)
    out = table["outside"].to_numpy(bool)
    custom = np.stack([table["n"].to_numpy(int), table["se"].to_numpy(float)], axis=1)
    hover = (
        "fitted %{x:.3~g}<br>mean residual %{y:.3~g}<br>%{customdata[0]} rows, "
        "SE %{customdata[1]:.3~g}<extra></extra>"
    )
    traces = [
        go.Scatter(
            x=np.r_[x, x[::-1]],
            y=np.r_[se2, -se2[::-1]],
            fill="toself",
            fillcolor="rgba(136,136,136,0.15)",
            line={"color": BAND_COLOR, "width": 1},
            name="2 SE band (model)",
            hoverinfo="skip",
        )
    ]
    for mask, name, color in ((~out, "bin inside the band", PALETTE[0]),
                              (out, "bin outside the band", OUT_COLOR)):  # fmt: skip
        traces.append(
            go.Scatter(
                x=x[mask],
                y=table["residual"].to_numpy(float)[mask],
                mode="markers",
                name=name,
                marker={"size": 8, "color": color},
                customdata=custom[mask],
                hovertemplate=hover,
            )
        )
    fig = go.Figure(traces)
    fig.add_hline(y=0, line_dash="dash", line_color=BAND_COLOR)
    style_figure(fig, "Binned residuals", x_label, "mean residual (observed - fitted)")
    fig.update_layout(legend=LEGEND_BELOW, margin={"b": 110})
    return fig


def quantile_qq_figure(residuals: np.ndarray) -> go.Figure:
    """Normal QQ plot of randomized quantile residuals with the line ``y = x`` (they are
    standard normal under the model, so the line is fixed, not fitted)."""
    qq = qq_points(np.asarray(residuals, float))
    cls = go.Scattergl if qq.sample.size > 3 * WEBGL_ROWS else go.Scatter
    ends = np.array([qq.theoretical.min(), qq.theoretical.max()]) if qq.n else np.zeros(2)
    fig = go.Figure(
        [
            cls(
                x=qq.theoretical,
                y=qq.sample,
                mode="markers",
                name="residual",
                marker={"size": 5, "color": PALETTE[0], "opacity": 0.7},
                hovertemplate="normal quantile %{x:.3~g}<br>residual %{y:.3~g}<extra></extra>",
            ),
            go.Scatter(
                x=ends,
                y=ends,
                mode="lines",
                name="standard normal (y = x)",
                line={"color": BAND_COLOR, "dash": "dash"},
                hoverinfo="skip",
            ),
        ]
    )
    style_figure(fig, "QQ of quantile residuals", "standard normal quantile", "quantile residual")
    fig.update_layout(legend=LEGEND_BELOW, margin={"b": 110})
    return fig


def quantile_fitted_figure(table: pd.DataFrame, x_label: str, log_x: bool = False) -> go.Figure:
    """Quantile residuals against the fitted means, with a binned-means smoother and the
    lines at 0 and +-2 (about 95% of the points lie between them under the model)."""
    x = table["fitted"].to_numpy(float)
    y = table["residual"].to_numpy(float)
    cls = go.Scattergl if len(table) > WEBGL_ROWS else go.Scatter
    smooth = binned_means(np.log(x) if log_x else x, y)
    fig = go.Figure(
        [
            cls(
                x=x,
                y=y,
                mode="markers",
                name="observation",
                marker={"size": 5, "color": PALETTE[0], "opacity": 0.45},
                hovertemplate="fitted %{x:.3~g}<br>residual %{y:.3~g}<extra></extra>",
            ),
            go.Scatter(
                x=np.exp(smooth["x"]) if log_x else smooth["x"],
                y=smooth["y"],
                mode="lines",
                name="mean of residuals (binned)",
                line={"color": PALETTE[1], "width": 3},
                hoverinfo="skip",
            ),
        ]
    )
    fig.add_hline(y=0, line_dash="dash", line_color=BAND_COLOR)
    for level in (-2, 2):
        fig.add_hline(y=level, line_dash="dot", line_color=BAND_COLOR)
    style_figure(fig, "Quantile residuals vs fitted", x_label, "quantile residual")
    if log_x:
        fig.update_xaxes(type="log")
    fig.update_layout(legend=LEGEND_BELOW, margin={"b": 110})
    return fig
