"""Trajectories of a fitted model: observed points, population curve with band, patient curves.

Pure functions, no Streamlit. :func:`prepare_trajectories` asks :mod:`lmm_core` for every
number (population curve and band, patient and cluster predictions); the drawing function
only turns the prepared frames into traces. Every curve is computed on a fine grid of the
horizontal axis (:func:`lmm_core.predict.prediction.subject_grid` for the patients,
``population_grid`` for the average), so a spline or polynomial in time is drawn as the curve
it is, not as straight segments between visits; the interior knots of a spline of the axis
column are marked with thin dotted lines. Only the chosen subset of subjects is drawn, with
WebGL traces once the points are many, so thousands of subjects never reach the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.constants import CONFIDENCE_LEVEL, NONE_CHOICE
from dashboard.figures.style import PALETTE, TEMPLATE, WEBGL_ROWS, rgba, style_figure
from dashboard.io.roles import Roles, is_numeric
from lmm_core import LMMResult
from lmm_core.formula.grammar import names_in
from lmm_core.predict.prediction import (
    fixed_variables,
    population_curve,
    population_grid,
    predict_groups,
    subject_grid,
)

__all__ = [
    "CHOICE_MODES",
    "TrajectoryData",
    "axis_knots",
    "axis_options",
    "by_options",
    "choose_subjects",
    "knot_trace",
    "knots_caption",
    "prepare_trajectories",
    "subject_group",
    "trajectories_figure",
]

#: label -> mode of :func:`choose_subjects`
CHOICE_MODES = {
    "Random sample": "random",
    "Most visits": "most",
    "Fewest visits": "fewest",
    "Largest deviation from the population": "deviation",
    "Pick by id": "pick",
}
MAX_FACETS = 6
MAX_BY_LEVELS = 8
#: evenly spaced points of each patient's curve between the first and last visit
GRID_POINTS = 50
KNOT_COLOR = "#777777"


def axis_options(data: pd.DataFrame, roles: Roles) -> list[str]:
    """Numeric columns other than the outcome, the time role first."""
    cols = [roles.time] + [c for c in data.columns if c != roles.time]
    skip = {roles.outcome, roles.subject, roles.cluster}
    return [c for c in cols if c not in skip and is_numeric(data[c])]


def by_options(data: pd.DataFrame, roles: Roles, result: LMMResult) -> tuple[list[str], str]:
    """Columns with 2-8 values to colour or facet by, and the default (a variable of the
    model's fixed effects); the first option is :data:`NONE_CHOICE`."""
    model_vars = fixed_variables(result)
    candidates = [*model_vars, *roles.covariates, *data.columns]
    options = [NONE_CHOICE]
    for col in candidates:
        if col in options or col in (roles.subject, roles.outcome, roles.time):
            continue
        if col in data.columns and 2 <= data[col].nunique() <= MAX_BY_LEVELS:
            options.append(col)
    default = next((c for c in options[1:] if c in model_vars), NONE_CHOICE)
    return options, default


def subject_group(result: LMMResult, subject: str) -> str:
    """The model's grouping factor for the subject column (the largest one if none matches)."""
    groups = result.ngroups
    if subject in groups:
        return subject
    for g in groups:
        if subject in g.split(":"):
            return g
    return max(groups, key=groups.get)


def choose_subjects(
    visits: pd.Series,
    mode: str,
    k: int,
    *,
    seed: int = 0,
    deviation: pd.Series | None = None,
    picked: list | tuple = (),
) -> list:
    """Which subjects to draw.

    Parameters
    ----------
    visits
        Number of observations per subject (index: subject id).
    mode
        ``"random"`` (seeded sample), ``"most"`` / ``"fewest"`` visits, ``"deviation"`` (largest
        values of ``deviation``), ``"pick"`` (``picked`` as given).
    k
        How many subjects (ignored for ``"pick"``).
    seed
        Seed of the random sample.
    deviation
        Per-subject distance from the population curve (for ``"deviation"``).
    picked
        Subjects chosen by hand.

    Returns
    -------
    list
        Subject ids; ties in visit counts are broken by the order of ``visits``.
    """
    k = max(1, min(int(k), len(visits)))
    if mode == "pick":
        known = set(visits.index)
        return [s for s in picked if s in known]
    if mode == "random":
        rng = np.random.default_rng(seed)
        return list(visits.index[np.sort(rng.choice(len(visits), size=k, replace=False))])
    if mode in ("most", "fewest"):
        order = np.argsort(
            -visits.to_numpy() if mode == "most" else visits.to_numpy(), kind="stable"
        )
        return list(visits.index[order[:k]])
    if mode == "deviation":
        if deviation is None:
            raise ValueError("mode 'deviation' needs the per-subject deviation")
        return list(deviation.sort_values(ascending=False, kind="stable").index[:k])
    raise ValueError(f"unknown mode {mode!r}")


@dataclass(frozen=True)
class TrajectoryData:
    """Everything a trajectories figure draws.

    Attributes
    ----------
    observed
        One row per observation of the chosen subjects, sorted by group, subject and x:
        ``subject`` (str), ``x``, ``y`` (observed response), ``fitted`` (fixed + all random
        effects, as ``LMMResult.predict``), ``cluster_fit`` (fixed + the cluster's random effects
        only; NaN without a cluster), ``cluster`` (str or ""), ``group`` (str).
    curves
        The chosen subjects' curves on a fine grid (the visits and :data:`GRID_POINTS` even
        steps from the first to the last visit, :func:`subject_grid`), sorted as
        ``observed``: ``subject``, ``x``, ``fitted``, ``cluster_fit``, ``cluster``, ``group``
        and ``visit`` (True on a visit's own row).
    population
        The population-average curve: ``group``, ``x``, ``fit``, ``lower``, ``upper``.
    held
        Fixed-part variables held at a typical value for the population curve.
    level
        Coverage of the band.
    knots
        Interior knots of the model's splines of the axis column: ``(value, terms)`` with
        the labels of the spline terms that have a knot there (``"ns(Time, 3)"``).
    varying
        Model variables other than the axis that change between the visits of a drawn
        subject: between two visits the curves hold them at the nearest visit's value.
    """

    observed: pd.DataFrame
    curves: pd.DataFrame
    population: pd.DataFrame
    held: dict = field(default_factory=dict)
    level: float = CONFIDENCE_LEVEL
    knots: tuple[tuple[float, str], ...] = ()
    varying: tuple[str, ...] = ()


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


def _varying(rows: pd.DataFrame, subject: str, columns: list[str]) -> tuple[str, ...]:
    """Columns of ``rows`` with more than one value within some subject."""
    present = [c for c in columns if c in rows.columns and c != subject]
    if rows.empty or not present:
        return ()
    counts = rows.groupby(subject, observed=True)[present].nunique(dropna=False)
    return tuple(c for c in present if (counts[c] > 1).any())


def _model_variables(result: LMMResult) -> list[str]:
    """Data columns of the fixed part and of the random terms' left-hand sides."""
    spec = result.design.spec
    groups = {g.name for r in spec.random for g in r.group_vars}
    names = [nm.name for nm in spec.column_refs()]
    response = {nm.name for nm in names_in(spec.response)}
    return [n for n in dict.fromkeys(names) if n not in groups and n not in response]


def _frame(
    result: LMMResult,
    rows: pd.DataFrame,
    subject: str,
    x: str,
    groups: tuple[str | None, str | None, str | None],
    *,
    observed: bool,
) -> pd.DataFrame:
    """Subject, x, (observed y), fitted, cluster-level fit, cluster and group of ``rows``;
    ``groups`` is ``(cluster, cluster_group, by)``."""
    cluster, cluster_group, by = groups
    frame = pd.DataFrame(
        {
            "subject": rows[subject].astype(str).to_numpy(),
            "x": pd.to_numeric(rows[x], errors="coerce").to_numpy(dtype=float),
            **({"y": result.design.response_values(rows)} if observed else {}),
            "fitted": result.predict(rows),
            "cluster_fit": (
                predict_groups(result, rows, [cluster_group]) if cluster_group else np.nan
            ),
            "cluster": rows[cluster].astype(str).to_numpy() if cluster else "",
            "group": rows[by].astype(str).to_numpy() if by else "all",
        }
    ).dropna(subset=["x"])
    return frame.sort_values(["group", "subject", "x"], kind="stable").reset_index(drop=True)


def prepare_trajectories(
    result: LMMResult,
    data: pd.DataFrame,
    subject: str,
    x: str,
    subjects: list,
    *,
    by: str | None = None,
    cluster: str | None = None,
    cluster_group: str | None = None,
    level: float = CONFIDENCE_LEVEL,
    n_points: int = GRID_POINTS,
) -> TrajectoryData:
    """Observed values and model curves of the chosen subjects.

    Parameters
    ----------
    result, data
        The fit and the data it was fitted to.
    subject, x
        Subject column and the numeric column on the horizontal axis.
    subjects
        Subject ids to draw.
    by
        Column to colour or facet by (one population curve per value).
    cluster, cluster_group
        Cluster column (e.g. hospital) and the model's group name for it; when given, each
        subject also gets its cluster-level curve (population + cluster BLUP).
    level
        Coverage of the population band.
    n_points
        Evenly spaced points of each subject's curve between its first and last visit (its
        visits are added), see :func:`lmm_core.predict.prediction.subject_grid`.
    """
    used = data.iloc[result.design.rows]
    rows = used[used[subject].isin(subjects)]
    groups = (cluster, cluster_group, by)
    observed = _frame(result, rows, subject, x, groups, observed=True)
    grid = subject_grid(result, data, subject, x, subjects, n_points)
    curves = _frame(result, grid, subject, x, groups, observed=False)
    seen = set(zip(observed["subject"], observed["x"], strict=True))
    curves["visit"] = [(s, v) in seen for s, v in zip(curves["subject"], curves["x"], strict=True)]
    grid, held = population_grid(result, data, x, by)
    curve = population_curve(result, grid, level)
    population = pd.DataFrame(
        {
            "group": grid[by].astype(str).to_numpy() if by else "all",
            "x": grid[x].to_numpy(dtype=float),
            **{c: curve[c].to_numpy() for c in ("fit", "lower", "upper")},
        }
    )
    varying = _varying(rows, subject, [c for c in _model_variables(result) if c != x])
    return TrajectoryData(observed, curves, population, held, level, axis_knots(result, x), varying)


def _gapped(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, values and subject/customdata with a NaN break between subjects."""
    subj = frame["subject"].to_numpy(dtype=object)
    breaks = np.flatnonzero(subj[1:] != subj[:-1]) + 1
    xs = np.insert(frame["x"].to_numpy(dtype=float), breaks, np.nan)
    ys = np.insert(frame[column].to_numpy(dtype=float), breaks, np.nan)
    custom = np.insert(
        np.column_stack([subj, frame["cluster"].to_numpy(dtype=object)]), breaks, "", axis=0
    )
    return xs, ys, custom


@dataclass(frozen=True)
class _Look:
    """What every trace of :func:`trajectories_figure` shares: labels, hover start, trace type."""

    subject_label: str
    x_label: str
    y_label: str
    cluster_label: str
    hover_id: str
    pct: str
    scatter: type
    has_cluster: bool


def trajectories_figure(
    prep: TrajectoryData,
    *,
    subject_label: str = "subject",
    x_label: str = "time",
    y_label: str = "outcome",
    by_label: str | None = None,
    cluster_label: str = "cluster",
    facet: bool = False,
    show_clusters: bool = True,
    highlight: list | tuple = (),
    webgl: bool | None = None,
) -> go.Figure:
    """Population curve with band, and per chosen subject: points, fitted curve, cluster curve.

    Traces: the spline knots of the axis (``"spline knots"``, thin dotted vertical lines, one
    trace per panel, when ``prep.knots``); then per group, in this order: band, population
    curve, observed points, subject curves, cluster curves (when present and
    ``show_clusters``); then one highlight trace per highlighted subject. Subject, cluster
    and highlight curves run along ``prep.curves`` (a fine grid), the points are the visits.
    Hover text names the subject.
    """
    obs, pop, curves = prep.observed, prep.population, prep.curves
    groups = list(pd.unique(pop["group"]))
    facets = facet and by_label is not None and 1 < len(groups) <= MAX_FACETS
    use_gl = len(curves) + len(obs) > WEBGL_ROWS if webgl is None else webgl
    has_cluster = show_clusters and bool(obs["cluster_fit"].notna().any())
    hover_id = f"{subject_label} <b>%{{customdata[0]}}</b>"
    if has_cluster:
        hover_id += f" ({cluster_label} %{{customdata[1]}})"
    look = _Look(
        subject_label, x_label, y_label, cluster_label, hover_id, f"{prep.level:.0%}",
        go.Scattergl if use_gl else go.Scatter, has_cluster,
    )  # fmt: skip
    if facets:
        fig = make_subplots(
            rows=1,
            cols=len(groups),
            shared_yaxes=True,
            subplot_titles=[f"{by_label} = {g}" for g in groups],
            horizontal_spacing=0.04,
        )
    else:
        fig = go.Figure()
    if prep.knots:
        _add_knots(fig, prep, x_label, len(groups) if facets else 1)
    for i, name in enumerate(groups):
        color = PALETTE[i % len(PALETTE)] if by_label else PALETTE[0]
        where = {"row": 1, "col": i + 1} if facets else {}
        label = f" ({name})" if by_label else ""
        p = pop[pop["group"] == name]
        pop_color = color if by_label else "#000000"
        _add_population(fig, p, look, name, label, pop_color, i == 0 or not facets, where)
        g = obs[obs["group"] == name]
        if not g.empty:
            _add_subjects(fig, g, curves[curves["group"] == name], look, color, i == 0, where)
    for sid in highlight:
        h = curves[curves["subject"] == str(sid)]
        if h.empty:
            continue
        col = groups.index(h["group"].iloc[0]) + 1 if facets else None
        _add_highlight(fig, h, look, sid, {"row": 1, "col": col} if facets else {})
    n_shown = obs["subject"].nunique()
    title = f"Model trajectories: population average and {n_shown} {subject_label}(s)"
    style_figure(fig, title, x_label, y_label)
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.19, "x": 0},
        margin={"b": 130},
    )
    if facets:
        for i in range(len(groups)):
            fig.update_xaxes(title_text=x_label, row=1, col=i + 1)
    return fig


def _y_span(prep: TrajectoryData) -> tuple[float, float]:
    """Lowest and highest value any trace of the figure draws (the knot lines span it)."""
    values = np.concatenate(
        [
            prep.population[["lower", "upper"]].to_numpy(dtype=float).ravel(),
            prep.observed["y"].to_numpy(dtype=float),
            prep.curves[["fitted", "cluster_fit"]].to_numpy(dtype=float).ravel(),
        ]
    )
    values = values[np.isfinite(values)]
    return float(values.min()), float(values.max())


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


def _add_knots(fig: go.Figure, prep: TrajectoryData, x_label: str, panels: int) -> None:
    """The knot lines of the axis in every panel (legend entry on the first)."""
    low, high = _y_span(prep)
    for col in range(1, panels + 1):
        trace = knot_trace(prep.knots, x_label, low, high)
        trace.showlegend = col == 1
        fig.add_trace(trace, **({"row": 1, "col": col} if panels > 1 else {}))


def _add_population(
    fig: go.Figure,
    p: pd.DataFrame,
    look: _Look,
    name: Any,
    label: str,
    pop_color: str,
    show_legend: bool,
    where: dict,
) -> None:
    """The confidence band and the population curve of one group."""
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([p["x"], p["x"][::-1]]),
            y=np.concatenate([p["upper"], p["lower"][::-1]]),
            fill="toself",
            mode="lines",
            fillcolor=rgba(pop_color, 0.18),
            line={"width": 0},
            hoverinfo="skip",
            name=f"{look.pct} confidence band{label}",
            legendgroup=f"pop{name}",
            showlegend=False,
        ),
        **where,
    )
    fig.add_trace(
        go.Scatter(
            x=p["x"],
            y=p["fit"],
            mode="lines",
            line={"color": pop_color, "width": 5},
            name=f"population average{label}",
            legendgroup=f"pop{name}",
            customdata=np.column_stack([p["lower"], p["upper"]]),
            hovertemplate=(
                f"population average{label}<br>{look.x_label} = %{{x:.3~g}}<br>{look.y_label} = "
                f"%{{y:.4~g}}<br>{look.pct} CI %{{customdata[0]:.4~g}} to "
                "%{customdata[1]:.4~g}<extra></extra>"
            ),
            showlegend=show_legend,
        ),
        **where,
    )


def _add_subjects(
    fig: go.Figure,
    g: pd.DataFrame,
    c: pd.DataFrame,
    look: _Look,
    color: str,
    first: bool,
    where: dict,
) -> None:
    """Observed points (``g``), own fitted curves and cluster curves (on the grid ``c``) of
    one group's subjects."""
    x_label, y_label, hover_id = look.x_label, look.y_label, look.hover_id
    xs, ys, custom = _gapped(g, "y")
    fig.add_trace(
        look.scatter(
            x=xs,
            y=ys,
            mode="markers",
            marker={"size": 6, "color": color, "opacity": 0.55},
            name="observed",
            legendgroup="observed",
            customdata=custom,
            hovertemplate=(
                f"{hover_id}<br>{x_label} = %{{x:.3~g}}<br>observed {y_label} = "
                "%{y:.4~g}<extra></extra>"
            ),
            showlegend=first,
        ),
        **where,
    )
    xs, ys, custom = _gapped(c, "fitted")
    fig.add_trace(
        look.scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": color, "width": 1.5},
            opacity=0.6,
            connectgaps=False,
            name=f"{look.subject_label} curves",
            legendgroup="subjects",
            customdata=custom,
            hovertemplate=(
                f"{hover_id}<br>{x_label} = %{{x:.3~g}}<br>fitted {y_label} = "
                "%{y:.4~g}<extra>own curve</extra>"
            ),
            showlegend=first,
        ),
        **where,
    )
    if look.has_cluster:
        xs, ys, custom = _gapped(c, "cluster_fit")
        cluster_label = look.cluster_label
        fig.add_trace(
            look.scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": color, "width": 1.2, "dash": "dot"},
                opacity=0.7,
                connectgaps=False,
                name=f"{cluster_label} curves",
                legendgroup="clusters",
                customdata=custom,
                hovertemplate=(
                    f"{cluster_label} <b>%{{customdata[1]}}</b> of {look.subject_label} "
                    f"%{{customdata[0]}}<br>{x_label} = %{{x:.3~g}}<br>{y_label} = "
                    f"%{{y:.4~g}}<extra>{cluster_label} curve</extra>"
                ),
                showlegend=first,
            ),
            **where,
        )


def _add_highlight(fig: go.Figure, h: pd.DataFrame, look: _Look, sid: Any, where: dict) -> None:
    """One highlighted subject's fitted curve (on its grid ``h``), drawn thick and black,
    with a dot at each visit."""
    visit = h["visit"].to_numpy(dtype=bool)
    fig.add_trace(
        go.Scatter(
            x=h["x"],
            y=h["fitted"],
            mode="lines+markers",
            line={"color": "#000000", "width": 3.5},
            marker={"size": np.where(visit, 8, 0), "color": "#000000"},
            name=f"{look.subject_label} {sid}",
            customdata=np.column_stack([h["subject"], h["cluster"]]),
            hovertemplate=(
                f"{look.hover_id}<br>{look.x_label} = %{{x:.3~g}}<br>fitted {look.y_label} = "
                "%{y:.4~g}<extra>selected</extra>"
            ),
        ),
        **where,
    )
