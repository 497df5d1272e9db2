"""Does the curve earn its keep?  The population curve of time as a line, a parabola or a spline.

Pure logic, no Streamlit. The competing shapes of the active model's population curve are
planned by :func:`dashboard.analysis.curve_plan.plan_curves` (the formulas rewritten by
:mod:`dashboard.analysis.time_shape_rewrite`); this module fits them, tests them, picks one
and says why.

All shapes are fitted by maximum likelihood (the fixed effects differ, so REML criteria are
not comparable). The straight line is nested in every curved shape (a natural spline or a
polynomial with an intercept can be a straight line), so each curved shape is tested against
it by the likelihood ratio ``2 (logLik_curve - logLik_line)`` referred to chi-square with
``npar_curve - npar_line`` degrees of freedom (:func:`lmm_core.lrt`, nesting checked by
:func:`lmm_core.inference.nesting.check_nesting`). The quadratic and the splines are not nested
in each other, so they are compared by ``AIC = -2 logLik + 2 npar`` and
``BIC = -2 logLik + npar log(n)`` only.

The plan's names (:class:`Shape`, :class:`CurvePlan`, :func:`plan_curves`) and the rewriting
(:func:`time_expression`, :func:`shape_node`, :func:`with_time_shape`) are importable from
here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from dashboard.analysis.curve_plan import CurvePlan, Shape, plan_curves
from dashboard.analysis.formula_text import model_key
from dashboard.analysis.records import FitRecord, timed_fit
from dashboard.analysis.time_shape_rewrite import shape_node, time_expression, with_time_shape
from dashboard.base.markup import code_span, escape_message
from lmm_core import ComparisonError, LMMResult, lrt
from lmm_core.inference.nesting import check_nesting

__all__ = [
    "ALPHA",
    "CurveComparison",
    "CurvePlan",
    "CurveSettings",
    "Shape",
    "ShapeFit",
    "ShapeTest",
    "StoredCurves",
    "analyse_curves",
    "curve_records",
    "curve_table",
    "fit_shapes",
    "plan_curves",
    "shape_node",
    "time_expression",
    "with_time_shape",
]

ALPHA = 0.05
#: AIC within this of the lowest counts as an equally good fit (the simplest such shape wins)
AIC_TIE = 2.0


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class ShapeFit:
    """A fitted (or failed) shape: the ML fit or the error, and the seconds taken."""

    shape: Shape
    result: LMMResult | None
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


def fit_shapes(
    shapes: Sequence[Shape],
    fit: Callable[[str], LMMResult],
    on_shape: Callable[[int, Shape], None] | None = None,
) -> list[ShapeFit]:
    """Fit every shape with ``fit(formula)`` (an ML fit); a shape that fails keeps its error
    and the others go on. ``on_shape(index, shape)`` is called before each fit."""
    fits = []
    for i, shape in enumerate(shapes):
        if on_shape is not None:
            on_shape(i, shape)
        fits.append(ShapeFit(shape, *timed_fit(fit, shape.formula)))
    return fits


# --------------------------------------------------------------------------- comparing
@dataclass(frozen=True)
class ShapeTest:
    """Likelihood-ratio test of a curved shape against the straight line.

    ``chisq = 2 (logLik_shape - logLik_line)``, ``df = npar_shape - npar_line``,
    ``p = P(chi-square(df) > chisq)``; ``p`` is NaN when the test is not valid (``reason``).
    """

    chisq: float
    df: float
    p: float
    nested: bool
    reason: str


@dataclass(frozen=True)
class CurveComparison:
    """Everything the page shows: fits, tests, table, the recommended shape and sentences.

    Attributes
    ----------
    plan
        What was fitted.
    fits
        One per shape, in the plan's order.
    tests
        Shape key -> its test against the straight line (curved shapes only).
    recommended
        The shape to use (``None`` when nothing could be fitted).
    verdict
        Sentences (Markdown), the main one first.
    advice
        What to do (Markdown).
    problems
        Failed fits and fits to treat with caution (Markdown).
    """

    plan: CurvePlan
    fits: tuple[ShapeFit, ...]
    tests: dict[str, ShapeTest]
    recommended: Shape | None
    verdict: tuple[str, ...]
    advice: str
    problems: tuple[str, ...]

    @property
    def fitted(self) -> list[ShapeFit]:
        return [f for f in self.fits if f.ok]

    @property
    def table(self) -> pd.DataFrame:
        """:func:`curve_table` of this comparison."""
        return curve_table(self)


def _test(line: LMMResult, other: LMMResult, names: list[str]) -> ShapeTest:
    nesting = check_nesting(line, other)
    try:
        table = lrt(line, other, names=names)
    except ComparisonError as error:
        return ShapeTest(np.nan, np.nan, np.nan, False, str(error))
    row = table.loc[names[1]]
    df = float(row["Df"])
    if not nesting.nested or not df > 0:
        reason = nesting.reason if not nesting.nested else "it has no more parameters"
        return ShapeTest(float(row["Chisq"]), df, np.nan, False, reason)
    return ShapeTest(float(row["Chisq"]), df, float(row["Pr(>Chisq)"]), True, nesting.reason)


def _pick(fits: Sequence[ShapeFit]) -> ShapeFit:
    """The simplest shape whose AIC is within :data:`AIC_TIE` of the lowest (ties: lower AIC)."""
    best = min(f.result.aic for f in fits)
    close = [f for f in fits if f.result.aic <= best + AIC_TIE]
    return min(close, key=lambda f: (f.result.npar, f.result.aic))


def _decide(
    fitted: Sequence[ShapeFit], line: ShapeFit | None, tests: dict[str, ShapeTest]
) -> ShapeFit:
    """The shape to use: :func:`_pick`, unless it is a curve that is nested in the straight
    line's model and not significantly better than it (then the line)."""
    pick = _pick(fitted)
    if line is None or pick is line:
        return pick
    test = tests[pick.shape.key]
    return line if np.isfinite(test.p) and test.p >= ALPHA else pick


def analyse_curves(plan: CurvePlan, fits: Sequence[ShapeFit]) -> CurveComparison:
    """Tests against the straight line, the recommended shape and the verdict in words.

    The recommended shape is the simplest one (fewest parameters) whose AIC is within 2 of
    the lowest, kept only when its likelihood-ratio test against the straight line is
    significant at :data:`ALPHA` (else the straight line).
    """
    problems = [
        f"The {escape_message(f.shape.label)} ({code_span(f.shape.formula)}) could not be "
        f"fitted: {escape_message(f.error.rstrip('.'))}."
        for f in fits
        if not f.ok
    ]
    problems += [
        f"The {escape_message(f.shape.label)}: the optimizer did not confirm convergence; "
        "treat its numbers with caution."
        for f in fits
        if f.ok and not f.result.converged
    ]
    fitted = [f for f in fits if f.ok]
    line = next((f for f in fitted if f.shape.key == "line"), None)
    tests = {}
    if line is not None:
        for f in fitted:
            if f is not line:
                names = [line.shape.label, f.shape.label]
                tests[f.shape.key] = _test(line.result, f.result, names)
    if not fitted:
        verdict = ("No shape could be fitted, so the curve cannot be judged (see below).",)
        return CurveComparison(plan, tuple(fits), tests, None, verdict, "", tuple(problems))
    chosen = _decide(fitted, line, tests)
    return CurveComparison(
        plan,
        tuple(fits),
        tests,
        chosen.shape,
        _verdict(fitted, line, chosen, tests),
        _advice(chosen, line),
        tuple(problems),
    )


# --------------------------------------------------------------------------- words
def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "no valid test"
    if p < 0.001:
        return "LRT p < 0.001"
    # fixed: a p-value of at least 0.001 (smaller ones read "< 0.001")
    return f"LRT p = {p:.3f}" if p < 0.1 else f"LRT p = {p:.2f}"


def _by(value: float) -> str:
    """The size of an AIC or BIC difference."""
    return f"{abs(value):.1f}"  # fixed: a criterion difference (only differences matter)


def _the(label: str) -> str:
    return label if label.startswith("the ") else f"the {label}"


def _clearly_better(pick: ShapeFit, line: ShapeFit, test: ShapeTest) -> str:
    """The main sentence when a curved shape beats the straight line."""
    d_aic = pick.result.aic - line.result.aic
    d_bic = pick.result.bic - line.result.bic
    strength = "clearly better" if test.p < 0.01 and d_aic < -10 else "better"
    sentence = (
        f"**{_the(pick.shape.label).capitalize()}** fits {strength} than a straight line "
        f"({_p_text(test.p)}; AIC lower by {_by(d_aic)}"
        + (f", BIC lower by {_by(d_bic)})." if d_bic < 0 else ").")
    )
    if d_bic >= 0:
        sentence += (
            f" BIC, which penalises extra parameters more, still prefers the straight line "
            f"(by {_by(d_bic)}): the curvature is real but modest."
        )
    return sentence


def _line_enough(fitted: Sequence[ShapeFit], line: ShapeFit, tests: dict[str, ShapeTest]) -> str:
    """The main sentence when the straight line is the choice; it names the curve closest to
    beating it (a significant one first, then the lowest AIC)."""
    curved = [f for f in fitted if f.shape.key in tests and np.isfinite(tests[f.shape.key].p)]
    if not curved:
        return "**A straight line is the best fit** by AIC; no curved shape could be tested."
    best = min(curved, key=lambda f: (tests[f.shape.key].p >= ALPHA, f.result.aic))
    test = tests[best.shape.key]
    d_aic = best.result.aic - line.result.aic
    change = f"AIC {'higher' if d_aic > 0 else 'lower'} by {_by(d_aic)}"
    if test.p < ALPHA:
        return (
            f"**A straight line is enough**: {_the(best.shape.label)} fits slightly better "
            f"({_p_text(test.p)}; {change}), but not by enough to be worth its extra "
            "parameters: the line is a fair simplification."
        )
    return (
        "**A straight line is enough**: no curved shape fits significantly better (closest: "
        f"{_the(best.shape.label)}, {_p_text(test.p)}; {change})."
    )


def _others(fitted: Sequence[ShapeFit], pick: ShapeFit) -> list[str]:
    """How the other curved shapes compare with the pick (AIC), and what BIC prefers."""
    out = []
    for f in fitted:
        if f is pick or f.shape.key == "line":
            continue
        d = f.result.aic - pick.result.aic
        if abs(d) < AIC_TIE:
            what = f"fits as well (AIC {'lower' if d < 0 else 'higher'} by {_by(d)})"
            more = f.result.npar - pick.result.npar
            if more > 0:
                what += f" with {more} more parameter{'s' if more > 1 else ''}"
        elif d <= 4:
            what = f"is nearly as good (AIC higher by {_by(d)})"
        else:
            what = f"fits {'somewhat ' if d <= 10 else ''}worse (AIC higher by {_by(d)})"
        out.append(f"{_the(f.shape.label).capitalize()} {what}.")
    best_bic = min(fitted, key=lambda f: f.result.bic)
    if best_bic is not pick:
        d = pick.result.bic - best_bic.result.bic
        fewer = pick.result.npar - best_bic.result.npar
        detail = f", with {fewer} fewer parameters" if fewer > 0 else ""
        out.append(
            f"BIC prefers {_the(best_bic.shape.label)} (lower by {_by(d)}{detail}): "
            "BIC favours simpler models more than AIC does."
        )
    return out


def _aic_only(pick: ShapeFit, line: ShapeFit) -> str:
    """The main sentence when the best shape cannot be tested against the straight line."""
    d_aic, d_bic = pick.result.aic - line.result.aic, pick.result.bic - line.result.bic
    return (
        f"**{_the(pick.shape.label).capitalize()}** has the lowest AIC (lower than the "
        f"straight line's by {_by(d_aic)}; BIC {'lower' if d_bic < 0 else 'higher'} by "
        f"{_by(d_bic)}); it does not contain the straight line, so there is no valid test."
    )


def _verdict(
    fitted: Sequence[ShapeFit],
    line: ShapeFit | None,
    chosen: ShapeFit,
    tests: dict[str, ShapeTest],
) -> tuple[str, ...]:
    """The main sentence, the other shapes against the chosen one, and the nesting note."""
    if line is None:
        lead = (
            "The straight line could not be fitted, so there are no tests; by AIC "
            f"**{_the(chosen.shape.label)}** is the best of the shapes fitted."
        )
    elif chosen is line:
        lead = _line_enough(fitted, line, tests)
    elif not np.isfinite(tests[chosen.shape.key].p):
        lead = _aic_only(chosen, line)
    else:
        lead = _clearly_better(chosen, line, tests[chosen.shape.key])
    sentences = [lead, *_others(fitted, chosen)]
    keys = {f.shape.key for f in fitted}
    if "poly2" in keys and keys & {"ns3", "ns4"}:
        sentences.append(
            "The quadratic and the splines are not nested in each other (neither is a special "
            "case of the other), so they are compared by AIC and BIC only; each is tested "
            "against the straight line, which both contain."
        )
    return tuple(sentences)


def _advice(chosen: ShapeFit, line: ShapeFit | None) -> str:
    """What to do with the chosen shape (Markdown)."""
    if chosen is line:
        return (
            "Keep the straight line: a curve adds parameters the data do not need. "
            f"Formula: {code_span(line.shape.formula)}."
        )
    if chosen.shape.active:
        return f"Keep the active model's shape of time: {code_span(chosen.shape.formula)}."
    return (
        f"Use it: on the Model page set the shape of time to **{chosen.shape.label}** in the "
        f"model builder, or fit {code_span(chosen.shape.formula)}."
    )


# --------------------------------------------------------------------------- table, records
def curve_table(comparison: CurveComparison) -> pd.DataFrame:
    """One row per shape: ``shape, formula, npar, logLik, AIC, BIC, delta_AIC, delta_BIC,
    Chisq, Df, p`` (the test against the straight line); failed shapes keep an empty row.

    ``delta`` is the distance from the lowest value among the fitted shapes (0: the best).
    """
    rows = []
    for f in comparison.fits:
        r, t = f.result, comparison.tests.get(f.shape.key)
        active = f.shape.active and f.shape.key != "active"
        label = f.shape.label + (" (active model)" if active else "")
        rows.append(
            {
                "shape": label,
                "formula": f.shape.formula,
                "npar": r.npar if r is not None else np.nan,
                "logLik": r.loglik if r is not None else np.nan,
                "AIC": r.aic if r is not None else np.nan,
                "BIC": r.bic if r is not None else np.nan,
                "Chisq": t.chisq if t is not None else np.nan,
                "Df": t.df if t is not None else np.nan,
                "p": t.p if t is not None else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    table.insert(6, "delta_AIC", table["AIC"] - table["AIC"].min())
    table.insert(7, "delta_BIC", table["BIC"] - table["BIC"].min())
    return table


def curve_records(
    comparison: CurveComparison, *, data_key: str, data_name: str, existing: Sequence[FitRecord]
) -> list[FitRecord]:
    """Fit records (ML) of the fitted shapes not already in ``existing`` (same data, model and
    method); named ``"curve <shape>"`` until the caller numbers them."""
    have = {(r.data_key, model_key(r.formula), bool(r.reml)) for r in existing}
    records = []
    for f in comparison.fitted:
        key = (data_key, model_key(f.result.formula), False)
        if key in have:
            continue
        records.append(
            FitRecord(
                name=f"curve {f.shape.label}",
                formula=f.result.formula,
                reml=False,
                data_key=data_key,
                data_name=data_name,
                result=f.result,
                seconds=f.seconds,
            )
        )
        have.add(key)
    return records


class CurveSettings(NamedTuple):
    """What a stored comparison depends on: the data, the active model, time and the shapes."""

    data_key: str
    active_formula: str
    time: str
    formulas: tuple[str, ...]


class StoredCurves(NamedTuple):
    """A comparison kept in the session with the settings it was made with."""

    settings: CurveSettings
    comparison: CurveComparison
