"""The content of each step of the guided tour: its sentences and its one chart (or table).

:func:`build_step` turns a step of :mod:`dashboard.analysis.tour` into a :class:`StepView`
from the active data and the tour's fitted models (fit records, see
:mod:`dashboard.views.tour`), with the figure functions of the other pages and their caches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.analysis import tour_texts as texts
from dashboard.analysis.compare import criteria_figure
from dashboard.analysis.model_summary import fixed_effects_table, ols_comparison, variance_table
from dashboard.analysis.records import FitRecord
from dashboard.analysis.tour import INTERCEPT, SLOPE, StepSpec, TourColumns
from dashboard.figures import explore as fe
from dashboard.figures import prediction as fp
from dashboard.figures import shrinkage as fs
from dashboard.figures import trajectories as ft
from dashboard.figures.model_inputs import subject_group
from dashboard.figures.style import PALETTE
from dashboard.state import cached
from lmm_core.model.ols import ols_fit

__all__ = ["MAX_LINES", "StepView", "TourContext", "build_step"]

#: subjects drawn with their fitted lines (a random sample beyond)
MAX_LINES = 12
#: visits of the new patient used by the forecast step
FORECAST_VISITS = 2
LEVEL = 0.95
MODEL_WORDS = {INTERCEPT: "random-intercept model", SLOPE: "random-slope model"}


@dataclass(frozen=True)
class TourContext:
    """What every step reads: the data, the roles and the tour's fits (model name ->
    record) of the active data."""

    data: pd.DataFrame
    columns: TourColumns
    fits: dict[str, FitRecord]
    data_key: str

    @property
    def n_subjects(self) -> int:
        return int(self.data[self.columns.subject].nunique())

    @property
    def best(self) -> str:
        """The richest model fitted: the random slope when there is one."""
        return SLOPE if SLOPE in self.fits else INTERCEPT


@dataclass
class StepView:
    """Sentences (Markdown), one figure or one table, and the model to show on leaving."""

    sentences: list[str]
    figure: go.Figure | None = None
    table: pd.DataFrame | None = None
    model: str | None = None
    notes: list[str] = field(default_factory=list)


def _spaghetti_figure(ctx: TourContext) -> go.Figure:
    c = ctx.columns
    prep = fe.prepare_spaghetti(ctx.data, c.subject, c.time, c.outcome, None, max_subjects=400)
    return fe.spaghetti_figure(
        prep, subject_label=c.subject, time_label=c.time, outcome_label=c.outcome
    )


def spaghetti(ctx: TourContext) -> StepView:
    return StepView(texts.spaghetti_sentences(ctx.data, ctx.columns), _spaghetti_figure(ctx))


def ols(ctx: TourContext) -> StepView:
    record = ctx.fits[INTERCEPT]
    design = record.result.design
    table = ols_fit(design.X, design.y, list(design.x_names))
    best = ctx.fits[ctx.best].result
    sentences = texts.ols_sentences(table, best, MODEL_WORDS[ctx.best], ctx.columns, ctx.n_subjects)
    if ctx.columns.time is None:
        return StepView(sentences, table=ols_comparison(best), model=ctx.best)
    fig = _spaghetti_figure(ctx)
    t = pd.to_numeric(ctx.data[ctx.columns.time], errors="coerce")
    xs = np.array([t.min(), t.max()], dtype=float)
    ys = table["estimate"].iloc[0] + table["estimate"].iloc[1] * xs
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", name="OLS: one line", line={"color": PALETTE[7], "width": 6}
        )
    )
    return StepView(sentences, fig, model=ctx.best)


def _lines_figure(ctx: TourContext, name: str) -> go.Figure:
    record, c = ctx.fits[name], ctx.columns
    visits = ctx.data.groupby(c.subject, observed=True).size()
    subjects = ft.choose_subjects(visits, "random", min(MAX_LINES, len(visits)), seed=0)
    prep = cached.trajectories(
        record.key, c.subject, c.time, tuple(subjects), None, None, None, record.result, ctx.data
    )
    return ft.trajectories_figure(prep, subject_label=c.subject, x_label=c.time, y_label=c.outcome)


def _se(record: FitRecord, columns: TourColumns) -> float:
    term = columns.slope_term or "(Intercept)"
    return float(record.result.fixef_table().loc[term, "std_error"])


def intercept(ctx: TourContext) -> StepView:
    record = ctx.fits[INTERCEPT]
    design = record.result.design
    naive = ols_fit(design.X, design.y, list(design.x_names))
    term = ctx.columns.slope_term or "(Intercept)"
    sentences = texts.intercept_sentences(
        record.result, ctx.columns, float(naive.loc[term, "std_error"])
    )
    if ctx.columns.time is None:
        return StepView(sentences, table=variance_table(record.result), model=INTERCEPT)
    return StepView(sentences, _lines_figure(ctx, INTERCEPT), model=INTERCEPT)


def slope(ctx: TourContext) -> StepView:
    sentences = texts.slope_sentences(
        ctx.fits[SLOPE].result, ctx.columns, _se(ctx.fits[INTERCEPT], ctx.columns)
    )
    return StepView(sentences, _lines_figure(ctx, SLOPE), model=SLOPE)


def shrinkage(ctx: TourContext) -> StepView:
    record = ctx.fits[ctx.best]
    group = subject_group(record.result, ctx.columns.subject)
    est = cached.shrinkage(record.key, group, record.result)
    if len(est.columns) >= 2:
        fig = fs.shrinkage_2d_figure(
            est, est.columns[0], est.columns[1], subject_label=ctx.columns.subject
        )
    else:
        fig = fs.shrinkage_1d_figure(est, subject_label=ctx.columns.subject)
    return StepView(texts.shrinkage_sentences(est, ctx.columns), fig, model=ctx.best)


def forecast(ctx: TourContext) -> StepView:
    record, c = ctx.fits[ctx.best], ctx.columns
    result = record.result
    used = ctx.data.iloc[result.design.rows]
    visits = used.groupby(c.subject, sort=False, observed=True).size()
    patient = visits.idxmax()
    rows = used[used[c.subject] == patient].sort_values(c.time)
    k = min(FORECAST_VISITS, len(rows) - 1)
    observed = rows[[c.time, c.outcome]].head(k).astype(float).reset_index(drop=True)
    later = rows.iloc[k:]
    horizon = float(later[c.time].iloc[-1])
    t_min = float(pd.to_numeric(used[c.time]).min())
    at = rows[c.time].to_numpy(float)
    future = fp.future_rows({}, c.time, t_min, horizon, at=at)
    group = subject_group(result, c.subject)
    fc = cached.forecast(record.key, observed, future, LEVEL, group, result)
    fig = fp.forecast_figure(
        fc,
        future[c.time],
        pd.DataFrame({"x": observed[c.time], "y": observed[c.outcome]}),
        later=pd.DataFrame(
            {"x": later[c.time].to_numpy(float), "y": later[c.outcome].to_numpy(float)}
        ),
        x_label=c.time,
        y_label=c.outcome,
    )
    actual = float(later[c.outcome].iloc[-1])
    return StepView(
        texts.forecast_sentences(fc, c, str(patient), horizon, actual), fig, model=ctx.best
    )


def _comparison(ctx: TourContext):
    records = tuple(ctx.fits[name] for name in (INTERCEPT, SLOPE) if name in ctx.fits)
    key = tuple((r.name, r.formula, r.reml) for r in records)
    return cached.compare_models(ctx.data_key, key, records)


def compare(ctx: TourContext) -> StepView:
    comparison = _comparison(ctx)
    fig = criteria_figure(comparison.criteria) if comparison.comparable else None
    return StepView(texts.compare_sentences(comparison), fig, model=ctx.best)


def _chosen(ctx: TourContext) -> tuple[str, str]:
    """The model to report and why (the one AIC prefers when two were compared)."""
    if SLOPE not in ctx.fits:
        return INTERCEPT, "the only model of the tour without time."
    comparison = _comparison(ctx)
    preferred = comparison.preferred.get("AIC") if comparison.comparable else None
    for name in (INTERCEPT, SLOPE):
        if ctx.fits[name].name == preferred:
            return name, f"chosen by AIC ({ctx.fits[name].name})."
    return SLOPE, "the richer model (the comparison gave no verdict)."


def report(ctx: TourContext) -> StepView:
    name, why = _chosen(ctx)
    result = ctx.fits[name].result
    sentences = texts.report_sentences(result, ctx.columns, why, ctx.n_subjects)
    table = fixed_effects_table(result)
    ci = result.fixef_table()[["ci_lower", "ci_upper"]].to_numpy()
    table["95% CI low"], table["95% CI high"] = ci[:, 0], ci[:, 1]
    return StepView(sentences, table=table, model=name)


BUILDERS: dict[str, Callable[[TourContext], StepView]] = {
    "spaghetti": spaghetti,
    "ols": ols,
    "intercept": intercept,
    "slope": slope,
    "shrinkage": shrinkage,
    "forecast": forecast,
    "compare": compare,
    "report": report,
}


def build_step(step: StepSpec, ctx: TourContext) -> StepView:
    """The sentences and chart of ``step`` (its models must be in ``ctx.fits``)."""
    return BUILDERS[step.key](ctx)
