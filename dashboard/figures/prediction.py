"""Forecast of a new patient: layered bands, population curve, observed and later visits.

Pure functions, no Streamlit. The numbers come from
:func:`lmm_core.predict.forecast.new_subject_forecast`
(a :class:`~lmm_core.predict.forecast.SubjectForecast`); these functions only draw them. The
figure's forecast runs on a fine grid of time (:func:`future_rows`, with the visits' own times
added), so the curve and its bands follow a spline or polynomial model between and after the
visits; the table picks the rows at the future visits out of the same forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.base.numbers import fmt
from dashboard.figures.knots import knot_trace, value_span
from dashboard.figures.style import PALETTE, TEMPLATE, rgba, style_figure
from lmm_core import LMMResult
from lmm_core.predict.forecast import SubjectForecast, new_subject_forecast

__all__ = [
    "BANDS",
    "band_width_figure",
    "band_widths",
    "forecast_figure",
    "forecast_table",
    "future_rows",
]

#: band suffix -> (legend label, colour, opacity), drawn widest first
BANDS = {
    "total": ("+ residual: where a new measurement will fall", PALETTE[0], 0.12),
    "mean": ("+ patient's own deviation (given the visits)", PALETTE[0], 0.22),
    "fixed": ("fixed-effect uncertainty only", PALETTE[0], 0.45),
}
POP_COLOR = PALETTE[1]


def _band(fig: go.Figure, x: np.ndarray, lower, upper, name: str, color: str, alpha: float):
    """A filled band between ``lower`` and ``upper`` (one closed polygon, no hover)."""
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([x, x[::-1]]),
            y=np.concatenate([np.asarray(upper, float), np.asarray(lower, float)[::-1]]),
            fill="toself",
            fillcolor=rgba(color, alpha),
            line={"width": 0},
            hoverinfo="skip",
            name=name,
        )
    )


def forecast_figure(
    forecast: SubjectForecast,
    x: pd.Series | np.ndarray,
    observed: pd.DataFrame,
    *,
    later: pd.DataFrame | None = None,
    x_label: str = "time",
    y_label: str = "outcome",
    knots: tuple[tuple[float, str], ...] = (),
) -> go.Figure:
    """The forecast with its three nested bands and the population curve.

    Parameters
    ----------
    forecast
        The forecast; ``forecast.table`` rows are the future points, in the order of ``x``.
    x
        Horizontal position of each future row (e.g. the time column of ``future``).
    observed
        The visits the forecast was conditioned on: columns ``x`` and ``y``.
    later
        Optional later visits actually measured (columns ``x`` and ``y``), drawn as open
        circles: they were not used by the forecast.
    x_label, y_label
        Axis titles.
    knots
        Spline knots of the time axis (:func:`dashboard.figures.knots.axis_knots`),
        drawn first as thin dotted lines (``"spline knots"``) when given.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces in drawing order: the knot lines (when ``knots``), the three bands (widest
        first, named by :data:`BANDS`), the population curve (``"population average"``, its
        Wald band in the hover), the forecast line (``"forecast for this patient"``), the
        observed visits (``"visits used"``) and, when given, ``"later visits (not used)"``.
    """
    t = forecast.table
    xs = np.asarray(x, dtype=float)
    order = np.argsort(xs, kind="stable")
    xs, t = xs[order], t.iloc[order]
    pct = f"{forecast.level:.0%}"
    fig = go.Figure()
    if knots:
        drawn = [t["lower_total"], t["upper_total"], observed["y"]]
        drawn += [later["y"]] if later is not None else []
        fig.add_trace(knot_trace(knots, x_label, *value_span(*drawn)))
    for band, (label, color, alpha) in BANDS.items():
        lower, upper = t[f"lower_{band}"], t[f"upper_{band}"]
        _band(fig, xs, lower, upper, f"{pct} band: {label}", color, alpha)
    _add_curves(fig, xs, t, pct, x_label, y_label)
    _add_visits(fig, observed, later, x_label, y_label)
    n = forecast.n_observed
    title = f"Forecast for a new patient from {n} visit{'s' if n != 1 else ''}"
    style_figure(fig, title, x_label, y_label)
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"b": 170},
    )
    return fig


def _add_curves(
    fig: go.Figure, xs: np.ndarray, t: pd.DataFrame, pct: str, x_label: str, y_label: str
) -> None:
    """The population curve (its Wald band in the hover) and the forecast line."""
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=t["population"],
            mode="lines",
            line={"color": POP_COLOR, "width": 3, "dash": "dash"},
            name="population average",
            customdata=np.column_stack([t["population_lower"], t["population_upper"]]),
            hovertemplate=(
                f"population average<br>{x_label} = %{{x:.3~g}}<br>{y_label} = %{{y:.4~g}}<br>"
                f"{pct} CI %{{customdata[0]:.4~g}} to %{{customdata[1]:.4~g}}<extra></extra>"
            ),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=t["fit"],
            mode="lines",
            line={"color": PALETTE[0], "width": 3.5},
            name="forecast for this patient",
            customdata=np.column_stack(
                [
                    t[f"{side}_{band}"]
                    for band in ("fixed", "mean", "total")
                    for side in ("lower", "upper")
                ]
            ),
            hovertemplate=(
                f"forecast<br>{x_label} = %{{x:.3~g}}<br>{y_label} = %{{y:.4~g}}<br>"
                f"{pct} bands: fixed %{{customdata[0]:.4~g}} to %{{customdata[1]:.4~g}}; "
                "+ patient %{customdata[2]:.4~g} to %{customdata[3]:.4~g}; "
                "+ residual %{customdata[4]:.4~g} to %{customdata[5]:.4~g}<extra></extra>"
            ),
        )
    )


def _add_visits(
    fig: go.Figure,
    observed: pd.DataFrame,
    later: pd.DataFrame | None,
    x_label: str,
    y_label: str,
) -> None:
    """The visits the forecast used and, when given, the later ones it did not."""
    fig.add_trace(
        go.Scatter(
            x=observed["x"],
            y=observed["y"],
            mode="markers",
            marker={"size": 11, "color": "#000000", "symbol": "circle"},
            name="visits used",
            hovertemplate=f"visit used<br>{x_label} = %{{x:.3~g}}<br>{y_label} = %{{y:.4~g}}"
            "<extra></extra>",
        )
    )
    if later is not None and len(later):
        fig.add_trace(
            go.Scatter(
                x=later["x"],
                y=later["y"],
                mode="markers",
                marker={
                    "size": 10,
                    "color": PALETTE[3],
                    "symbol": "circle-open",
                    "line": {"width": 2},
                },
                name="later visits (not used)",
                hovertemplate=f"later visit (not used)<br>{x_label} = %{{x:.3~g}}<br>"
                f"{y_label} = %{{y:.4~g}}<extra></extra>",
            )
        )


def band_widths(
    result: LMMResult, observed: pd.DataFrame, row: pd.DataFrame, *, group: str, level: float
) -> pd.DataFrame:
    """Width of each band at the one-row frame ``row`` using the first 0, 1, ... visits.

    Returns a frame indexed by the number of visits used, columns ``fixed``, ``mean``,
    ``total`` (upper minus lower, from :func:`lmm_core.predict.forecast.new_subject_forecast`).
    """
    out = {}
    for j in range(len(observed) + 1):
        t = new_subject_forecast(result, observed.head(j), row, level=level, group=group).table
        out[j] = {b: float(t[f"upper_{b}"].iloc[0] - t[f"lower_{b}"].iloc[0]) for b in BANDS}
    return pd.DataFrame.from_dict(out, orient="index")


def band_width_figure(widths: pd.DataFrame, *, x_value: float, x_label: str) -> go.Figure:
    """Width of each band at one future time against the number of visits used.

    Parameters
    ----------
    widths
        Index: number of visits used (0, 1, ...); columns ``fixed``, ``mean``, ``total`` (band
        widths, upper minus lower).
    x_value, x_label
        The future time at which the widths were taken, for the title.

    The vertical axis starts at 0. Bands 2 and 3 can be almost equally wide (when the
    residual is small against the spread between patients), so each line is drawn thinner
    than the one before it: a wider line underneath stays visible as a halo.
    """
    fig = go.Figure()
    labels = {"total": "prediction band (3)", "mean": "patient band (2)", "fixed": "fixed (1)"}
    looks = {
        "total": (PALETTE[0], 7.0, 11),
        "mean": (PALETTE[2], 3.5, 7),
        "fixed": (PALETTE[4], 2.0, 5),
    }
    for band, (color, width, size) in looks.items():
        fig.add_trace(
            go.Scatter(
                x=widths.index.to_numpy(),
                y=widths[band].to_numpy(float),
                mode="lines+markers",
                line={"color": rgba(color, 0.55) if band == "total" else color, "width": width},
                marker={"size": size, "color": color},
                name=labels[band],
                hovertemplate="%{x} visits used: width %{y:.4~g}<extra>"
                + labels[band]
                + "</extra>",
            )
        )
    style_figure(
        fig,
        f"How the bands narrow: width at {x_label} = {fmt(x_value, 3)}",
        "visits used",
        "band width",
    )
    fig.update_layout(
        height=380,
        xaxis={"dtick": 1},
        yaxis={"rangemode": "tozero"},
        legend={"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0},
        margin={"b": 90},
    )
    return fig


def forecast_table(
    forecast: SubjectForecast,
    x: pd.Series | np.ndarray,
    x_name: str,
    max_rows: int = 12,
    *,
    at: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A readable table of the forecast: one row per future visit, or evenly spaced rows.

    Parameters
    ----------
    forecast
        The forecast; ``forecast.table`` rows are in the order of ``x``.
    x
        Time of each forecast row.
    x_name
        Name of the time column in the table.
    max_rows
        Without ``at``: up to this many evenly spaced rows (the first and last kept).
    at
        The future visits: column ``x`` (times, each one of ``x``) and optionally ``y``
        (a measured value the forecast did not use, NaN where there is none). One table row
        per visit, ascending in time; ``x`` values not among the forecast rows are skipped.

    Returns
    -------
    pandas.DataFrame
        Columns ``x_name``, (``measured (not used)`` when ``at`` has ``y``), ``forecast``,
        ``population``, and the lower/upper limits of the patient band (2) and the
        prediction band (3).
    """
    t = forecast.table
    xs = np.asarray(x, dtype=float)
    order = np.argsort(xs, kind="stable")
    if at is None:
        steps = np.linspace(0, len(order) - 1, min(max_rows, len(order))).round()
        keep = order[np.unique(steps).astype(int)]
        extra: dict[str, np.ndarray] = {}
    else:
        visits = at.sort_values("x", kind="stable")
        visits = visits[np.isin(visits["x"].to_numpy(dtype=float), xs)]
        first = {v: i for i, v in reversed(list(enumerate(xs)))}  # the first row at each time
        keep = np.array([first[v] for v in visits["x"].to_numpy(dtype=float)], dtype=int)
        extra = {"measured (not used)": visits["y"].to_numpy(float)} if "y" in at else {}
    rows = t.iloc[keep]
    return pd.DataFrame(
        {
            x_name: xs[keep],
            **extra,
            "forecast": rows["fit"].to_numpy(),
            "population": rows["population"].to_numpy(),
            "patient band low": rows["lower_mean"].to_numpy(),
            "patient band high": rows["upper_mean"].to_numpy(),
            "prediction low": rows["lower_total"].to_numpy(),
            "prediction high": rows["upper_total"].to_numpy(),
        }
    )


# --- the future rows of a forecast (pure pandas) ---------------------------------------------


def future_rows(
    covariates: dict[str, object],
    time: str,
    start: float,
    stop: float,
    n: int = 60,
    *,
    at: np.ndarray | pd.Series | list = (),
) -> pd.DataFrame:
    """``n`` evenly spaced rows of ``time`` from ``start`` to ``stop``, each carrying the
    patient's fixed covariate values (``covariates``: column -> value).

    The times ``at`` (e.g. the visits) that lie between ``start`` and ``stop`` are added, so
    that the forecast has a row exactly there; an even step within ``1e-9`` of the range
    from one of them gives way to it. Rows ascend in ``time``.
    """
    lo, hi = sorted((float(start), float(stop)))
    grid = np.linspace(float(start), float(stop), n)
    extra = np.asarray(at, dtype=float)
    extra = np.unique(extra[(extra >= lo) & (extra <= hi)])
    if extra.size:
        tol = 1e-9 * max(hi - lo, 1.0)
        near = np.abs(grid[:, None] - extra[None, :]).min(axis=1) <= tol
        grid = np.union1d(grid[~near], extra)
    frame = pd.DataFrame({time: grid})
    for col, value in covariates.items():
        if col != time:
            frame[col] = [value] * len(frame)
    return frame
