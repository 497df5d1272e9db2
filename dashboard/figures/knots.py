"""Spline knots on a time axis: where they are, a line trace for each, and a caption.

Pure functions, no Streamlit. A natural or B-spline of the axis column (``ns(Time, 3)``)
is made of polynomial pieces joined at its interior knots, which the fit learned from the
data and keeps for every prediction (``result.design.spline_knots()``). The Trajectories
and Prediction figures mark them with thin dotted vertical lines (:func:`knot_trace`) that
run over the height of what the figure draws (:func:`value_span`), and the pages explain
them in one sentence (:func:`knots_caption`). A polynomial has no knots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from lmm_core import LMMResult

__all__ = ["KNOT_COLOR", "axis_knots", "knot_trace", "knots_caption", "value_span"]

KNOT_COLOR = "#555555"  # apart from the palette under colour-blind vision


def axis_knots(result: LMMResult, x: str) -> tuple[tuple[float, str], ...]:
    """Interior knots of the model's splines of column ``x``, each with its terms' labels.

    Uses ``result.design.spline_knots()`` (splines of the plain column only, not of a
    transformed one such as ``ns(x / 7, 3)``); a polynomial has no knots.

    Returns
    -------
    tuple
        ``(knot, "ns(x, 3) and ns(x, 2)")`` pairs in increasing order of the knot.
    """
    knots = result.design.spline_knots().get(x, ())
    if not knots:
        return ()
    columns = result.design.basis_columns()
    labels = [
        (label, set(state.knots))
        for label, state in result.design.bases.items()
        if columns.get(label) == (x,) and state.knots and set(state.knots) <= set(knots)
    ]
    return tuple(
        (float(k), " and ".join(label for label, own in labels if k in own)) for k in knots
    )


def knots_caption(result: LMMResult, x: str, knots: tuple[tuple[float, str], ...]) -> str:
    """One sentence for under a figure with knot lines: where they are and what they are,
    with the spline terms written out as R calls with their learned knots (Markdown)."""
    where = ", ".join(f"{k:.6g}" for k, _ in knots)
    calls = "; ".join(
        f"`{state.r_call(x)}`"
        for label, state in result.design.bases.items()
        if any(label in terms.split(" and ") for _, terms in knots)
    )
    return (
        f"Dotted vertical lines: the spline's knots ({x} = {where}), the points where the "
        "pieces of the spline curve join (each piece a smooth polynomial); the fitted model "
        f"keeps them for every prediction: {calls}."
    )


def value_span(*values: Any) -> tuple[float, float]:
    """Lowest and highest finite number among ``values`` (arrays, series or frames of any
    shape): the vertical extent of the knot lines, so that they span what a figure draws."""
    drawn = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values])
    drawn = drawn[np.isfinite(drawn)]
    return float(drawn.min()), float(drawn.max())


def knot_trace(
    knots: tuple[tuple[float, str], ...], x_label: str, low: float, high: float
) -> go.Scatter:
    """Thin dotted vertical lines at ``knots`` (from :func:`axis_knots`) from ``low`` to
    ``high``, named ``"spline knots"``; each line holds a few points so that hovering
    anywhere along it names the knot and its spline terms."""
    steps = np.linspace(low, high, 9)
    xs = np.concatenate([np.append(np.full(len(steps), k), np.nan) for k, _ in knots])
    ys = np.tile(np.append(steps, np.nan), len(knots))
    terms = np.concatenate([[t] * (len(steps) + 1) for _, t in knots])
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": KNOT_COLOR, "width": 1, "dash": "dot"},
        name="spline knots",
        legendgroup="knots",
        customdata=terms,
        hovertemplate=f"knot at {x_label} = %{{x:.4~g}}<br>of %{{customdata}}<extra>knot</extra>",
    )
