"""The content of each step of the guided tour: its sentences and its one chart (or table).

:func:`build_step` turns a step of :mod:`dashboard.analysis.tour` into a :class:`StepView`
from the active data and the tour's fitted models (fit records, see
:mod:`dashboard.views.tour`), with the figure functions of the other pages and their caches.
On a GLMM tour (yes/no or counts) the lines are the GLMM's curves on the probability or
count scale (the Trajectories page's GLMM chart), shrinkage is on the link scale, and the
forecast step shows the typical and a new (population-averaged) subject instead of a
forecast from visits, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.analysis import chart_text
from dashboard.analysis import tour_texts as texts
from dashboard.analysis.compare import criteria_figure
from dashboard.analysis.glmm_summary import fixed_table, random_table
from dashboard.analysis.model_summary import fixed_effects_table, ols_comparison, variance_table
from dashboard.analysis.records import FitRecord
from dashboard.analysis.tour import INTERCEPT, SLOPE, StepSpec, TourColumns, naive_fit
from dashboard.figures import explore as fe
from dashboard.figures import prediction as fp
from dashboard.figures import shrinkage as fs
from dashboard.figures import trajectories as ft
from dashboard.figures.glmm_trajectories import glmm_trajectories_figure
from dashboard.figures.model_inputs import subject_group
from dashboard.figures.style import PALETTE
from dashboard.state import cached
from dashboard.views.glmm_prediction import glmm_forecast_table

__all__ = ["MAX_LINES", "StepView", "TourContext", "build_step"]

#: subjects drawn with their fitted lines (a random sample beyond)
MAX_LINES = 12
#: visits of the new patient used by the forecast step
FORECAST_VISITS = 2
LEVEL = 0.95
MODEL_WORDS = {INTERCEPT: "random-intercept model", SLOPE: "random-slope model"}
#: points of the naive GLM's curve in the "one line for everyone" step
CURVE_POINTS = 60


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
    description: str | None = None


def _share_figure(ctx: TourContext) -> go.Figure:
    """A yes/no outcome's observed share at each time (a 0/1 spaghetti is only a lattice)."""
    c = ctx.columns
    rows = ctx.data[[c.time, c.outcome]].dropna()
    share = texts.outcome_values(rows[c.outcome]).groupby(rows[c.time]).mean()
    fig = go.Figure(
        go.Scatter(
            x=share.index.to_numpy(float), y=share.to_numpy(float), mode="lines+markers",
            name="observed share", line={"color": PALETTE[0], "width": 2}, marker={"size": 10},
        )
    )  # fmt: skip
    fig.update_layout(
        title={"text": f"Share of {c.outcome} = yes at each {c.time}"},
        xaxis_title=c.time,
        yaxis_title=f"share of {c.outcome}",
        yaxis={"range": [0, 1], "tickformat": ".0%"},
    )
    return fig


def _spaghetti_figure(ctx: TourContext) -> go.Figure:
    c = ctx.columns
    if c.family == "binomial":
        return _share_figure(ctx)
    prep = fe.prepare_spaghetti(ctx.data, c.subject, c.time, c.outcome, None, max_subjects=400)
    return fe.spaghetti_figure(
        prep, subject_label=c.subject, time_label=c.time, outcome_label=c.outcome
    )


def spaghetti(ctx: TourContext) -> StepView:
    return StepView(texts.spaghetti_sentences(ctx.data, ctx.columns), _spaghetti_figure(ctx))


def ols(ctx: TourContext) -> StepView:
    record = ctx.fits[INTERCEPT]
    table = naive_fit(record.result)
    best = ctx.fits[ctx.best].result
    sentences = texts.ols_sentences(table, best, MODEL_WORDS[ctx.best], ctx.columns, ctx.n_subjects)
    if ctx.columns.time is None:
        if ctx.columns.is_glmm:
            return StepView(sentences, table=fixed_table(best), model=ctx.best)
        return StepView(sentences, table=ols_comparison(best), model=ctx.best)
    fig = _spaghetti_figure(ctx)
    t = pd.to_numeric(ctx.data[ctx.columns.time], errors="coerce")
    xs = np.linspace(t.min(), t.max(), CURVE_POINTS if ctx.columns.is_glmm else 2)
    eta = table["estimate"].iloc[0] + table["estimate"].iloc[1] * xs
    if ctx.columns.is_glmm:  # the GLM's curve on the outcome's scale, at the mean offset
        offset = float(np.mean(record.result.data.offset))
        ys, name = record.result.family.link.linkinv(eta + offset), "GLM: one curve"
    else:
        ys, name = eta, "OLS: one line"
    fig.add_trace(
        go.Scatter(x=xs, y=ys, mode="lines", name=name, line={"color": PALETTE[7], "width": 6})
    )
    return StepView(sentences, fig, model=ctx.best)


def _lines_figure(ctx: TourContext, name: str) -> go.Figure:
    record, c = ctx.fits[name], ctx.columns
    visits = ctx.data.groupby(c.subject, observed=True).size()
    subjects = ft.choose_subjects(visits, "random", min(MAX_LINES, len(visits)), seed=0)
    if c.is_glmm:
        curves = cached.glmm_curves(
            record.key, c.subject, c.time, tuple(subjects), None, record.result, ctx.data
        )
        return glmm_trajectories_figure(
            curves, x_label=c.time, y_label=f"{curves.scale} of {c.outcome}"
        )
    prep = cached.trajectories(
        record.key, c.subject, c.time, tuple(subjects), None, None, None, record.result, ctx.data
    )
    return ft.trajectories_figure(prep, subject_label=c.subject, x_label=c.time, y_label=c.outcome)


def _description(ctx: TourContext, name: str) -> str:
    """The lines chart's one-sentence text alternative (:mod:`dashboard.analysis.chart_text`)."""
    c = ctx.columns
    return chart_text.trajectories_sentence(
        ctx.fits[name].result, time=c.time, subject=c.subject, n_subjects=ctx.n_subjects
    )


def _se(record: FitRecord, columns: TourColumns) -> float:
    term = columns.slope_term or "(Intercept)"
    return float(record.result.fixef_table().loc[term, "std_error"])


def intercept(ctx: TourContext) -> StepView:
    record = ctx.fits[INTERCEPT]
    naive = naive_fit(record.result)
    term = ctx.columns.slope_term or "(Intercept)"
    sentences = texts.intercept_sentences(
        record.result, ctx.columns, float(naive.loc[term, "std_error"])
    )
    if ctx.columns.time is None:
        table = (random_table if ctx.columns.is_glmm else variance_table)(record.result)
        return StepView(sentences, table=table, model=INTERCEPT)
    return StepView(
        sentences,
        _lines_figure(ctx, INTERCEPT),
        model=INTERCEPT,
        description=_description(ctx, INTERCEPT),
    )


def slope(ctx: TourContext) -> StepView:
    sentences = texts.slope_sentences(
        ctx.fits[SLOPE].result, ctx.columns, _se(ctx.fits[INTERCEPT], ctx.columns)
    )
    return StepView(
        sentences, _lines_figure(ctx, SLOPE), model=SLOPE, description=_description(ctx, SLOPE)
    )


def shrinkage(ctx: TourContext) -> StepView:
    record = ctx.fits[ctx.best]
    group = subject_group(record.result, ctx.columns.subject)
    if ctx.columns.is_glmm:
        est = cached.glmm_shrinkage(record.key, group, record.result, ctx.data)
    else:
        est = cached.shrinkage(record.key, group, record.result)
    if len(est.columns) >= 2:
        fig = fs.shrinkage_2d_figure(
            est, est.columns[0], est.columns[1], subject_label=ctx.columns.subject
        )
    else:
        fig = fs.shrinkage_1d_figure(est, subject_label=ctx.columns.subject)
    return StepView(
        texts.shrinkage_sentences(est, ctx.columns),
        fig,
        model=ctx.best,
        description=chart_text.shrinkage_sentence(est, ctx.columns.subject, ctx.columns.link),
    )


def _glmm_forecast(ctx: TourContext) -> StepView:
    """A GLMM has no forecast from visits here: the typical and the new subject's curves."""
    record, c = ctx.fits[ctx.best], ctx.columns
    table, _ = glmm_forecast_table(record.result, ctx.data, c.time)
    what = "probability" if c.family == "binomial" else "mean count"
    if c.exposure:
        what = f"rate per unit of {c.exposure}"
    fig = go.Figure()
    for i, (name, dash) in enumerate((("typical patient", "dash"), ("new patient", "solid"))):
        fig.add_trace(
            go.Scatter(
                x=table[c.time], y=table[name], mode="lines+markers", name=name,
                line={"color": PALETTE[i], "width": 4, "dash": dash},
            )
        )  # fmt: skip
    fig.update_layout(
        title={"text": f"A typical and a new {c.subject}: {what} of {c.outcome}"},
        xaxis_title=c.time,
        yaxis_title=f"{what} of {c.outcome}",
        yaxis_tickformat=".0%" if c.family == "binomial" else None,
    )
    return StepView(texts.glmm_forecast_sentences(table, c), fig, model=ctx.best)


def forecast(ctx: TourContext) -> StepView:
    if ctx.columns.is_glmm:
        return _glmm_forecast(ctx)
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
    return StepView(
        texts.compare_sentences(comparison),
        fig,
        model=ctx.best,
        description=chart_text.criteria_sentence(comparison.criteria),
    )


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
    if ctx.columns.is_glmm:  # estimate, SE, p and the ratio with its CI: fits 1280 px
        table = fixed_table(result)
        ratio = [c for c in table.columns if c.endswith(("ratio", "ratio lower", "ratio upper"))]
        keep = ["Estimate", "SE", "p", *ratio] if ratio else list(table.columns)
        return StepView(sentences, table=table[keep], model=name)
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
