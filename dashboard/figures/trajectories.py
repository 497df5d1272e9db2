"""Trajectories of a fitted model: observed points, population curve with band, patient curves.

Pure functions, no Streamlit. The page's choices (:func:`axis_options`, :func:`by_options`,
:func:`choose_subjects`) come first; :func:`prepare_trajectories` then asks :mod:`lmm_core`
for every number (population curve and band, patient and cluster predictions), and
:func:`trajectories_figure` lays out the panels and draws the prepared frames with the
traces of :mod:`dashboard.figures.trajectory_traces`. Every curve is computed on a fine grid
of the horizontal axis (:func:`lmm_core.predict.prediction.subject_grid` for the patients,
``population_grid`` for the average), so a spline or polynomial in time is drawn as the curve
it is, not as straight segments between visits; the interior knots of a spline of the axis
column are marked with thin dotted lines (:mod:`dashboard.figures.knots`). Only the chosen
subset of subjects is drawn, with WebGL traces once the points are many, so thousands of
subjects never reach the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.constants import CONFIDENCE_LEVEL, NONE_CHOICE
from dashboard.figures.knots import axis_knots, knot_trace, value_span
from dashboard.figures.model_inputs import model_variables
from dashboard.figures.style import PALETTE, TEMPLATE, WEBGL_ROWS, style_figure
from dashboard.figures.trajectory_traces import (
    TraceLook,
    add_highlight,
    add_population,
    add_subjects,
)
from dashboard.io.roles import Roles, is_numeric
from lmm_core import LMMResult
from lmm_core.predict.prediction import (
    fixed_variables,
    population_curve,
    population_grid,
    predict_groups,
    subject_grid,
)

__all__ = [
    "CHOICE_MODES",
    "GRID_POINTS",
    "TrajectoryData",
    "axis_options",
    "by_options",
    "choose_subjects",
    "prepare_trajectories",
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


def _varying(rows: pd.DataFrame, subject: str, columns: list[str]) -> tuple[str, ...]:
    """Columns of ``rows`` with more than one value within some subject."""
    present = [c for c in columns if c in rows.columns and c != subject]
    if rows.empty or not present:
        return ()
    counts = rows.groupby(subject, observed=True)[present].nunique(dropna=False)
    return tuple(c for c in present if (counts[c] > 1).any())


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
    varying = _varying(rows, subject, [c for c in model_variables(result) if c != x])
    return TrajectoryData(observed, curves, population, held, level, axis_knots(result, x), varying)


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
    look = TraceLook(
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
        add_population(fig, p, look, name, label, pop_color, i == 0 or not facets, where)
        g = obs[obs["group"] == name]
        if not g.empty:
            add_subjects(fig, g, curves[curves["group"] == name], look, color, i == 0, where)
    for sid in highlight:
        h = curves[curves["subject"] == str(sid)]
        if h.empty:
            continue
        col = groups.index(h["group"].iloc[0]) + 1 if facets else None
        add_highlight(fig, h, look, sid, {"row": 1, "col": col} if facets else {})
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


def _add_knots(fig: go.Figure, prep: TrajectoryData, x_label: str, panels: int) -> None:
    """The knot lines of the axis in every panel (legend entry on the first), spanning
    every value the figure draws."""
    low, high = value_span(
        prep.population[["lower", "upper"]],
        prep.observed["y"],
        prep.curves[["fitted", "cluster_fit"]],
    )
    for col in range(1, panels + 1):
        trace = knot_trace(prep.knots, x_label, low, high)
        trace.showlegend = col == 1
        fig.add_trace(trace, **({"row": 1, "col": col} if panels > 1 else {}))
