"""Figures of an MMRM's residuals: residuals against fitted values with a smoother, and the
normal QQ plot of the normalized (Cholesky-whitened) residuals. The numbers come from
:func:`dashboard.analysis.mmrm_diagnostics.mmrm_residuals` (passed in as a frame with
``fitted``, ``residual`` and ``normalized`` columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.correlation import heatmap_pair
from dashboard.figures.diagnostics import binned_means, qq_figure, qq_points
from dashboard.figures.style import PALETTE, WEBGL_ROWS, style_figure

__all__ = ["normalized_qq_figure", "residuals_vs_fitted_figure", "visit_correlation_figure"]

LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}


def residuals_vs_fitted_figure(frame: pd.DataFrame, outcome: str) -> go.Figure:
    """Residuals ``y - X b`` against the fitted population means ``X b``, a zero line and a
    binned-means smoother (a curve in it: the mean model misses a trend)."""
    x = frame["fitted"].to_numpy(float)
    y = frame["residual"].to_numpy(float)
    cls = go.Scattergl if len(frame) > WEBGL_ROWS else go.Scatter
    smooth = binned_means(x, y)
    fig = go.Figure(
        [
            cls(
                x=x,
                y=y,
                mode="markers",
                name="observation",
                marker={"size": 5, "color": PALETTE[0], "opacity": 0.5},
                customdata=np.stack([frame["visit"].astype(str).to_numpy()], axis=1),
                hovertemplate="visit %{customdata[0]}<br>fitted %{x:.4~g}<br>"
                "residual %{y:.4~g}<extra></extra>",
            ),
            go.Scatter(
                x=smooth["x"],
                y=smooth["y"],
                mode="lines",
                name="mean of residuals (binned)",
                line={"color": PALETTE[1], "width": 3},
                hoverinfo="skip",
            ),
        ]
    )
    fig.add_hline(y=0, line_dash="dash", line_color="#888888")
    style_figure(
        fig, "Residuals vs fitted", f"fitted {outcome} (population mean)", "residual (y - Xb)"
    )
    fig.update_layout(legend=LEGEND_BELOW)
    return fig


def normalized_qq_figure(frame: pd.DataFrame) -> go.Figure:
    """Normal QQ plot of the normalized residuals ``L_i^-1 r_i`` (standard normal when the
    model is right: the points follow the line of slope 1)."""
    return qq_figure(
        qq_points(frame["normalized"].to_numpy(float)),
        title="QQ of normalized residuals",
        y_label="normalized residual",
    )


def visit_correlation_figure(
    model: pd.DataFrame, observed: pd.DataFrame, pairs: pd.DataFrame, visit: str
) -> go.Figure:
    """The fitted structure's correlation between visits (left) beside the residuals'
    observed correlation (right), on one colour scale; the hover gives the patients seen at
    both visits. All three frames are visits x visits with the same labels."""
    labels = [str(v) for v in model.index]
    both = pairs.to_numpy(int)
    data_hover = np.vectorize(lambda n: f"{n:,} patients seen at both")(both).astype(object)
    model_hover = np.full(both.shape, "fitted structure", dtype=object)
    low = float(np.nanmin(np.concatenate([model.to_numpy(float), observed.to_numpy(float)])))
    return heatmap_pair(
        model.to_numpy(float),
        observed.to_numpy(float),
        labels,
        (model_hover, data_hover),
        titles=("Model (fitted structure)", "Data (residuals y - Xb)"),
        title="Correlation between visits",
        axis_label=visit,
        zmin=0.0 if low >= 0 else -1.0,
        unit=visit,
        height=460,
    )
