"""The random-effects ladder: how much random-effects structure do the data support?

Pure logic, no Streamlit. On one dataset and one fixed part, four models are fitted, each
adding one piece of random-effects structure to the one before:

1. ``(1 | subject)``: each subject has its own level (random intercept);
2. ``(time || subject)``: + each subject has its own rate of change (random slope), independent
   of its level;
3. ``(time | subject)``: + the level and the rate of change may be correlated;
3b. ``(ns(time, 2) | subject)``: + each subject has its own curve, when the active model has
   such a spline or polynomial of time in its random part (the straight line is nested in it);
4. ``(time | subject) + (1 | cluster)``: + each cluster (hospital) has its own level, when a
   cluster column is set. When subject ids repeat across clusters (patient 1 of each
   hospital), the subject is the pair ``cluster:subject`` in every step (lme4's nesting).

Every step keeps the fixed effects, so the fits may be REML fits: the likelihood-ratio
statistic ``2 (logLik_k - logLik_{k-1})`` of REML fits is valid when the fixed effects are
equal (and ML fits work too). Its reference distribution depends on what the step adds
(Self & Liang 1987; Stram & Lee 1994; :mod:`lmm_core.inference.nesting`):

* a new variance (steps 2 and 4) is tested at zero, the edge of its allowed values: the
  p-value is the 50:50 chi-bar-square mixture of chi-square(0) and chi-square(1), i.e. half
  the chi-square(1) p-value (:func:`lmm_core.chibar_pvalue`);
* a correlation (step 3) is free in (-1, 1), so 0 is inside: plain chi-square(1).

``AIC = -2 logLik + 2 npar`` and ``BIC = -2 logLik + npar log(n)`` of each step are
comparable because all steps use the same rows and fixed effects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.analysis.compare import StepTest, step_test
from dashboard.analysis.formula_text import deparse_spec, model_key
from dashboard.analysis.model_builder import ids_repeat_across
from dashboard.analysis.model_summary import zero_components
from dashboard.analysis.records import FitRecord, timed_fit
from dashboard.analysis.time_shape import basis_of
from dashboard.base.markup import code_span, escape_message
from dashboard.figures.style import PALETTE, style_figure
from dashboard.io.roles import Roles, missing_longitudinal_roles
from lmm_core import LMMError, LMMResult
from lmm_core.formula.grammar import Name, strip_parens
from lmm_core.formula.quoting import deparse, quote_name
from lmm_core.formula.terms import parse_formula

__all__ = [
    "Ladder",
    "LadderPlan",
    "LadderSpec",
    "LadderStep",
    "StepVerdict",
    "analyse_ladder",
    "ladder_data",
    "ladder_figure",
    "ladder_records",
    "ladder_status",
    "ladder_table",
    "plan_ladder",
    "run_ladder",
]

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class LadderSpec:
    """One rung of the ladder.

    Attributes
    ----------
    label
        Short name (``"random slope"``).
    formula
        The lme4 formula fitted.
    adds
        What this rung adds over the one before, as a noun phrase for the verdict
        (``"the random slope"``), empty for the first rung.
    kind
        ``"base"``, ``"variance"`` (a new variance: boundary test) or ``"correlation"``.
    """

    label: str
    formula: str
    adds: str
    kind: str


@dataclass(frozen=True)
class LadderPlan:
    """The rungs to fit, and notes on how they were built (plain words)."""

    specs: tuple[LadderSpec, ...]
    notes: tuple[str, ...]
    complete_columns: tuple[str, ...]


def _fixed_part(outcome: str, time: str, active_formula: str | None) -> tuple[str, str]:
    """``"y ~ fixed"`` from the active model, or ``outcome ~ time``; and a note."""
    default = f"{quote_name(outcome)} ~ {quote_name(time)}"
    shown = code_span(default)
    if not active_formula:
        return default, f"Fixed effects: {shown} (no active model, so outcome ~ time)."
    try:
        spec = parse_formula(active_formula)
    except LMMError:
        return default, f"Fixed effects: {shown} (the active model's formula did not parse)."
    if spec.response_label != outcome:
        return default, (
            f"Fixed effects: {shown}: the active model describes "
            f"{escape_message(spec.response_label)}, not the outcome {escape_message(outcome)}."
        )
    fixed = deparse_spec(spec, [])
    return fixed, f"Fixed effects of the active model: {code_span(fixed)}."


def _random_curve(active_formula: str | None, time: str) -> str | None:
    """The spline or polynomial of ``time`` in the active model's random part, as written
    (``ns(Days, 2)``), or None."""
    if not active_formula:
        return None
    try:
        spec = parse_formula(active_formula)
    except LMMError:
        return None
    for term in spec.random:
        for node in term.lhs.exprs.values():
            arg = strip_parens(node.arg) if basis_of(node) is not None else None
            if isinstance(arg, Name) and arg.name == time:
                return deparse(node)
    return None


def plan_ladder(
    data: pd.DataFrame,
    roles: Roles,
    active_formula: str | None = None,
) -> LadderPlan:
    """The formulas of the ladder for ``data`` with its column ``roles``.

    Parameters
    ----------
    data
        The active dataset (long format).
    roles
        Column roles: subject, numeric time and outcome are required; cluster is optional.
    active_formula
        Formula of the active model: its fixed part is kept (``outcome ~ time`` without one,
        or when it models another response).

    Raises
    ------
    lmm_core.ModelError
        When a role needed by the ladder is missing (the message says which).
    """
    from lmm_core import ModelError

    missing = missing_longitudinal_roles(data, roles)
    if missing:
        raise ModelError(f"The ladder needs {' and '.join(missing)}: set them on the Data page.")
    subject, time, cluster = roles.subject, roles.time, roles.cluster
    fixed, note = _fixed_part(roles.outcome, time, active_formula)
    notes = [note]
    group = quote_name(subject)
    if cluster is not None and ids_repeat_across(data, subject, cluster):
        group = f"{quote_name(cluster)}:{quote_name(subject)}"
        notes.append(
            f"Subject ids repeat across {escape_message(cluster)} levels, so a subject is the "
            f"pair {code_span(group)} in every step (lme4's nesting)."
        )
    t = quote_name(time)
    specs = [
        LadderSpec("random intercept", f"{fixed} + (1 | {group})", "", "base"),
        LadderSpec("+ random slope", f"{fixed} + ({t} || {group})", "the random slope", "variance"),
        LadderSpec(
            "+ correlation",
            f"{fixed} + ({t} | {group})",
            "the correlation between intercept and slope",
            "correlation",
        ),
    ]
    top = t
    curve = _random_curve(active_formula, time)
    if curve is not None:
        specs.append(
            LadderSpec(
                "+ random curve",
                f"{fixed} + ({curve} | {group})",
                f"the random curve (each subject's own {escape_message(curve)} instead of a "
                "straight line)",
                "variance",
            )
        )
        top = curve
        notes.append(
            f"The active model gives each subject a curve ({code_span(curve)}), so the "
            "ladder ends with that rung."
        )
    columns = [c for c in (roles.outcome, subject, time) if c]
    if cluster is not None:
        specs.append(
            LadderSpec(
                f"+ {cluster} level",
                f"{fixed} + ({top} | {group}) + (1 | {quote_name(cluster)})",
                f"the {escape_message(cluster)} level (a random intercept per "
                f"{escape_message(cluster)})",
                "variance",
            )
        )
        columns.append(cluster)
    return LadderPlan(tuple(specs), tuple(notes), tuple(columns))


@dataclass(frozen=True)
class LadderStep:
    """A fitted (or failed) rung: its spec, the fit or the error, and the time taken."""

    spec: LadderSpec
    result: LMMResult | None
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


def run_ladder(
    specs: Sequence[LadderSpec],
    fit: Callable[[str], LMMResult],
    on_step: Callable[[int, LadderSpec], None] | None = None,
) -> list[LadderStep]:
    """Fit every rung with ``fit(formula)``; a rung that fails is kept with its error.

    Parameters
    ----------
    specs
        The rungs (:attr:`LadderPlan.specs`).
    fit
        Fits one formula (e.g. :func:`dashboard.state.cached.fit_model` with the data bound).
    on_step
        Called with ``(index, spec)`` before each fit (progress display).
    """
    steps = []
    for i, spec in enumerate(specs):
        if on_step is not None:
            on_step(i, spec)
        steps.append(LadderStep(spec, *timed_fit(fit, spec.formula)))
    return steps


def ladder_status(steps: Sequence[LadderStep], took: str) -> tuple[str, str]:
    """Header of the ladder's status box and its state, true to what happened.

    ``("Ladder fitted in 0.31 s", "complete")`` when every rung fitted; otherwise it says how
    many failed (``"error"`` when none fitted, so the box is not a green tick).
    """
    failed = sum(not s.ok for s in steps)
    if not failed:
        return f"Ladder fitted in {took} s", "complete"
    if failed == len(steps):
        return f"No step of the ladder could be fitted ({failed} failed; see below)", "error"
    return (
        f"Ladder: {len(steps) - failed} of {len(steps)} steps fitted, {failed} failed "
        f"(see below), in {took} s",
        "complete",
    )


@dataclass(frozen=True)
class StepVerdict:
    """The test of one rung against the rung below it, and its verdict in words.

    Attributes
    ----------
    index
        Position of the rung tested (1 for the second rung).
    against
        Position of the rung it is tested against (the last one that was fitted).
    test
        The likelihood-ratio test (:class:`dashboard.analysis.compare.StepTest`).
    reference
        The reference distribution in words.
    delta_aic, delta_bic
        Change in AIC and BIC from the lower rung (negative: the new rung is better).
    sentence
        The verdict (Markdown).
    """

    index: int
    against: int
    test: StepTest
    reference: str
    delta_aic: float
    delta_bic: float
    sentence: str


@dataclass(frozen=True)
class Ladder:
    """The fitted ladder: rungs, tests between consecutive fitted rungs, notes."""

    steps: tuple[LadderStep, ...]
    verdicts: tuple[StepVerdict, ...]
    reml: bool
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fitted(self) -> list[LadderStep]:
        return [s for s in self.steps if s.ok]


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p not available"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def _change(word: str, delta: float) -> str:
    if abs(delta) < 0.05:
        return f"{word} is unchanged"
    return f"{word} {'drops' if delta < 0 else 'rises'} by {abs(delta):.1f}"


def _reference(test: StepTest) -> str:
    if test.p_chibar is not None:
        k = test.boundary.mixture_df
        return f"chi-bar-square, df {k - 1}:{k}"
    if test.boundary.on_boundary:
        return f"chi-square({test.df:.0f}), cautious"
    return f"chi-square({test.df:.0f})"


def _sentence(spec: LadderSpec, test: StepTest, d_aic: float, d_bic: float) -> str:
    what = spec.adds[:1].upper() + spec.adds[1:]
    numbers = f"{_fmt_p(test.p)}, {_change('AIC', d_aic)}, {_change('BIC', d_bic)}"
    if not test.nested:
        return f"{what}: no valid test ({test.reason}); AIC and BIC only: {numbers}."
    if test.significant and d_aic < 0 and d_bic < 0:
        return f"**{what} is needed**: {numbers}."
    if test.significant:
        return (
            f"**{what} helps a little**: {numbers}. The test and AIC favour it, BIC (which "
            "penalises extra parameters more) does not: a borderline gain."
        )
    if d_aic < -2:
        return f"**{what} is borderline**: {numbers}; not significant at the 5% level."
    return f"**{what} adds nothing**: {numbers}."


def _step_name(i: int, step: LadderStep) -> str:
    return f"Step {i + 1} ({step.spec.label.lstrip('+ ')})"


def _singular_note(i: int, step: LadderStep) -> str:
    zeros = zero_components(step.result)
    parts = []
    for z in zeros:
        effect = "intercept" if z.column == INTERCEPT else f"slope on {z.column}"
        if z.kind == "variance":
            parts.append(f"the variance of the {effect} of {z.group} is estimated as zero")
        elif z.kind == "dependence":
            parts.append(f"the {effect} of {z.group} is a combination of its other effects")
        else:
            parts.append(
                f"the correlation of the {effect} with the {z.partner or 'intercept'} of "
                f"{z.group} is estimated as {z.value:+.0f}"
            )
    detail = "; ".join(parts) or "a variance component is on its boundary"
    return (
        f"{_step_name(i, step)}: the fit is singular ({detail}). The data do not support "
        "this much structure; its test above still says whether the step helps."
    )


def _slope_variance_zero(result: LMMResult) -> bool:
    """Some random slope of the fit has its variance estimated as zero."""
    return any(z.kind == "variance" and z.column != INTERCEPT for z in zero_components(result))


def analyse_ladder(steps: Sequence[LadderStep], reml: bool, notes: Sequence[str] = ()) -> Ladder:
    """Tests, AIC/BIC changes and verdicts between consecutive fitted rungs.

    A rung that failed is skipped: the next fitted rung is tested against the last fitted one
    (a valid test when it is nested in it, see :func:`lmm_core.inference.nesting.check_nesting`).
    """
    verdicts = []
    problems = []
    previous = None
    for i, step in enumerate(steps):
        if not step.ok:
            problems.append(
                f"Step {escape_message(step.spec.label)} ({code_span(step.spec.formula)}) could "
                f"not be fitted: {escape_message(step.error)}"
            )
            continue
        if step.result.is_singular:
            problems.append(_singular_note(i, step))
        if not step.result.converged:
            problems.append(
                f"{_step_name(i, step)}: the optimizer did not confirm convergence; treat its "
                "numbers with caution."
            )
        if previous is not None:
            small, large = steps[previous].result, step.result
            test = step_test(small, large, (steps[previous].spec.label, step.spec.label))
            d_aic, d_bic = large.aic - small.aic, large.bic - small.bic
            sentence = _sentence(step.spec, test, d_aic, d_bic)
            if step.spec.kind == "correlation" and _slope_variance_zero(small):
                sentence += (
                    " The step below estimated the slope's variance as zero, so this step in "
                    "fact brings in the slope together with its correlation: the slope is "
                    "supported only with it."
                    if test.significant
                    else " (The step below estimated the slope's variance as zero.)"
                )
            verdicts.append(
                StepVerdict(
                    i,
                    previous,
                    test,
                    _reference(test),
                    d_aic,
                    d_bic,
                    sentence,
                )
            )
        previous = i
    return Ladder(tuple(steps), tuple(verdicts), reml, tuple(notes), tuple(problems))


def ladder_table(ladder: Ladder) -> pd.DataFrame:
    """One row per rung: formula, npar, criterion, logLik, AIC, BIC and the step's test.

    Columns ``step, formula, npar, criterion, logLik, AIC, BIC, Chisq, Df, p, reference,
    singular, seconds``; ``criterion`` is the REML criterion (REML fits) or the deviance
    (ML fits). Failed rungs keep their row with empty numbers.
    """
    by_index = {v.index: v for v in ladder.verdicts}
    rows = []
    for i, step in enumerate(ladder.steps):
        r, v = step.result, by_index.get(i)
        rows.append(
            {
                "step": f"{i + 1}. {step.spec.label}",
                "formula": step.spec.formula,
                "npar": r.npar if r is not None else np.nan,
                "criterion": r.objective if r is not None else np.nan,
                "logLik": r.loglik if r is not None else np.nan,
                "AIC": r.aic if r is not None else np.nan,
                "BIC": r.bic if r is not None else np.nan,
                "Chisq": v.test.chisq if v else np.nan,
                "Df": v.test.df if v else np.nan,
                "p": v.test.p if v else np.nan,
                "reference": v.reference if v else "",
                "singular": ("yes" if r.is_singular else "no") if r is not None else "failed",
                "seconds": step.seconds,
            }
        )
    return pd.DataFrame(rows)


def ladder_figure(ladder: Ladder) -> go.Figure:
    """AIC and BIC per rung (lines with markers; lower is better), the best marked."""
    fig = go.Figure()
    fitted = [(i, s) for i, s in enumerate(ladder.steps) if s.ok]
    labels = [f"{i + 1}. {s.spec.label}" for i, s in fitted]
    for k, crit in enumerate(("AIC", "BIC")):
        values = np.array([getattr(s.result, crit.lower()) for _, s in fitted])
        best = int(np.argmin(values)) if values.size else 0
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=values,
                mode="lines+markers",
                name=crit,
                line={"color": PALETTE[k]},
                marker={
                    "size": [14 if j == best else 8 for j in range(values.size)],
                    "symbol": ["star" if j == best else "circle" for j in range(values.size)],
                },
                hovertemplate=f"%{{x}}<br>{crit} = %{{y:.1f}}<extra></extra>",
            )
        )
    style_figure(fig, "AIC and BIC along the ladder (lower is better; star = best)", "", "")
    fig.update_yaxes(tickformat=",.0f")
    fig.update_layout(
        height=340,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        margin={"t": 70},
    )
    return fig


class LadderSettings(NamedTuple):
    """What a fitted ladder depends on: the rows' key, the method and the rungs' formulas."""

    fit_key: str
    reml: bool
    formulas: tuple[str, ...]


class StoredLadder(NamedTuple):
    """A fitted ladder kept in the session with the settings it was fitted with."""

    settings: LadderSettings
    ladder: Ladder


def ladder_data(data: pd.DataFrame, plan: LadderPlan) -> tuple[pd.DataFrame, int]:
    """The rows every rung can use (no missing value in the ladder's role columns).

    The fixed-effect columns are the same in every rung, so rows missing one of them drop
    out of every fit alike; a missing cluster would drop rows from the last rung only, and
    then the rungs could not be compared. Returns the rows and how many were left out.
    """
    complete = data.dropna(subset=list(plan.complete_columns))
    return (data, 0) if len(complete) == len(data) else (complete, len(data) - len(complete))


def ladder_records(
    ladder: Ladder, *, data_key: str, data_name: str, existing: Sequence[FitRecord]
) -> list[FitRecord]:
    """Fit records (see :mod:`dashboard.state.fits`) of the fitted rungs not already in
    ``existing``.

    A rung counts as existing when a record of the same data, model (the same
    :func:`dashboard.analysis.formula_text.model_key`, however the formula is spelled) and
    method is there. The records' names are their labels (``"ladder random slope"``): the
    caller renames each one (:meth:`~dashboard.analysis.records.FitRecord.renamed`) with
    :func:`dashboard.state.fits.next_name` just before storing it, so the numbers stay distinct.
    """
    have = {(r.data_key, model_key(r.formula), bool(r.reml)) for r in existing}
    records = []
    for step in ladder.fitted:
        key = (data_key, model_key(step.result.formula), ladder.reml)
        if key in have:
            continue
        records.append(
            FitRecord(
                name=f"ladder {step.spec.label.lstrip('+ ')}",
                formula=step.result.formula,
                reml=ladder.reml,
                data_key=data_key,
                data_name=data_name,
                result=step.result,
                seconds=step.seconds,
            )
        )
        have.add(key)
    return records
