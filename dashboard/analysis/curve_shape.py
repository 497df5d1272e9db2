"""Does the curve earn its keep?  The population curve of time as a line, a parabola or a spline.

Pure logic, no Streamlit. From the active model, competing models are built that differ only
in the **shape of the population curve** of the time column ``t``:

* a straight line, ``beta_1 t``;
* a quadratic, ``poly(t, 2)`` (orthogonal polynomial: ``t`` and ``t^2``);
* natural cubic splines ``ns(t, k)`` with ``k`` = 3 and 4 degrees of freedom (knots at the
  quantiles of ``t``; cubic between knots, straight beyond the boundary knots), never more
  than the number of distinct times minus one.

The rewriting works on the syntax tree of the formula (:mod:`lmm_core.formula.grammar`): every
fixed-part variable that is a function of time alone (``t``, ``I(t/7)``, ``ns(t, 5)``,
``I(t^2)``) is replaced by the shape, so ``t * arm`` becomes ``ns(t, 3) * arm``; the random
part and every other fixed term stay as written. The result is checked against R's term
algebra on the :class:`lmm_core.formula.spec.TermList` (terms with the time variables
replaced); when they disagree, the term list is written out instead.

All shapes are fitted by maximum likelihood (the fixed effects differ, so REML criteria are
not comparable). The straight line is nested in every curved shape (a natural spline or a
polynomial with an intercept can be a straight line), so each curved shape is tested against
it by the likelihood ratio ``2 (logLik_curve - logLik_line)`` referred to chi-square with
``npar_curve - npar_line`` degrees of freedom (:func:`lmm_core.lrt`, nesting checked by
:func:`lmm_core.inference.nesting.check_nesting`). The quadratic and the splines are not nested
in each other, so they are compared by ``AIC = -2 logLik + 2 npar`` and
``BIC = -2 logLik + npar log(n)`` only.
"""

from __future__ import annotations

import math
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from dashboard.analysis.model_builder import model_key
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.io.roles import is_numeric
from lmm_core import ComparisonError, LMMError, LMMResult, ModelError, lrt
from lmm_core.formula.basis_args import basis_call
from lmm_core.formula.grammar import (
    BASIS_FUNCTIONS,
    BinOp,
    Call,
    Name,
    NAry,
    Node,
    Num,
    Paren,
    Unary,
    names_in,
    parse_sides,
    strip_parens,
)
from lmm_core.formula.quoting import deparse, unquote_label
from lmm_core.formula.spec import ModelSpec
from lmm_core.formula.terms import parse_formula
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
#: spline degrees of freedom tried (each only when the data have more distinct times)
SPLINE_DF = (3, 4)
#: AIC within this of the lowest counts as an equally good fit (the simplest such shape wins)
AIC_TIE = 2.0
#: functions that keep time on a straight line: ``I(t/7)``, ``scale(t)``, ``center(t)``
_AFFINE = frozenset({"I", "scale", "center"})


# --------------------------------------------------------------------------- rewriting
def _time_only(node: Node, time: str) -> bool:
    """Whether the column names in ``node`` are exactly ``{time}``."""
    return {n.name for n in names_in(node)} == {time}


def _degree(node: Node, time: str) -> float:
    """Polynomial degree of ``node`` in ``time`` (0 for constants, ``inf`` when not a
    polynomial): ``t`` and ``I(t/7 - 1)`` have degree 1, ``I(t^2)`` and ``log(t)`` ``inf``."""
    node = strip_parens(node)
    if isinstance(node, Name):
        return 1.0 if node.name == time else 0.0
    if isinstance(node, Num):
        return 0.0
    if isinstance(node, Unary):
        return _degree(node.operand, time)
    if isinstance(node, Call):
        inner = _degree(node.arg, time)
        return inner if inner == 0 or node.func in _AFFINE else math.inf
    if isinstance(node, BinOp):  # a power: constant only when base and exponent are
        return 0.0 if _degree(node.left, time) + _degree(node.right, time) == 0 else math.inf
    if isinstance(node, NAry) and node.kind == "sum":
        return max(_degree(item, time) for item in node.items)
    if isinstance(node, NAry) and node.kind == "prod":
        total = _degree(node.items[0], time)
        for op, item in zip(node.ops, node.items[1:], strict=True):
            d = _degree(item, time)
            if op == "/" and d > 0:
                return math.inf
            total += d if op == "*" else 0.0
        return total
    return math.inf


def time_expression(spec: ModelSpec, time: str) -> Node:
    """How the model writes time on a straight line: ``t``, ``I(t/7)``, or the argument of a
    basis already used (``t`` of ``ns(t, 5)``); the bare column when the model has none."""
    variables = [spec.fixed.exprs[v] for v in spec.fixed.variables]
    for node in variables:
        if _time_only(node, time) and _degree(node, time) == 1:
            return node
    for node in variables:
        if isinstance(node, Call) and node.func in BASIS_FUNCTIONS and _time_only(node, time):
            return strip_parens(node.arg)
    return Name(time, 0)


def shape_node(kind: str, time_expr: Node, df: int = 0) -> Node:
    """The syntax tree of a shape of ``time_expr``: ``"line"`` (the expression itself),
    ``"poly"`` (``poly(t, df)``) or ``"ns"`` (``ns(t, df)``)."""
    if kind == "line":
        return time_expr
    if kind not in ("poly", "ns"):
        raise ValueError(f"unknown shape {kind!r}")
    return Call(kind, time_expr, 0, ((None, Num(float(df), 0)),))


def _substitute(node: Node, time: str, shape: Node, keep_paren: bool = False) -> Node:
    """``node`` with every variable that is a function of time alone replaced by ``shape``;
    terms repeated in a sum after the replacement are dropped (R would drop them too)."""
    if isinstance(node, Name | Call):
        return shape if _time_only(node, time) else node
    if isinstance(node, Paren):
        inner = _substitute(node.expr, time, shape)
        return inner if isinstance(inner, Name | Call) and not keep_paren else Paren(inner, 0)
    if isinstance(node, Unary):
        return Unary(node.op, _substitute(node.operand, time, shape), node.pos)
    if isinstance(node, BinOp):  # ``(a + b)^2``: the crossing keeps its parentheses
        return BinOp(node.op, _substitute(node.left, time, shape, True), node.right, node.pos)
    if isinstance(node, NAry):
        items = [_substitute(item, time, shape) for item in node.items]
        ops = list(node.ops)
        if node.kind == "sum":
            items, ops = _drop_repeats(items, ops)
        return items[0] if len(items) == 1 else NAry(node.kind, tuple(items), tuple(ops), 0)
    return node


def _drop_repeats(items: list[Node], ops: list[str]) -> tuple[list[Node], list[str]]:
    """A sum's items without repeats of an earlier (sign, item) pair."""
    seen: set[tuple[str, str]] = set()
    kept: list[tuple[str, Node]] = []
    for op, item in zip(["+", *ops], items, strict=True):
        key = (op, deparse(item))
        if key not in seen:
            seen.add(key)
            kept.append((op, item))
    return [item for _, item in kept], [op for op, _ in kept[1:]]


def _fixed_terms(pairs: list[tuple[str, Node]]) -> tuple[bool, frozenset]:
    """Intercept and set of terms of a fixed part given as ``(sign, item)`` pairs."""
    body = "".join(f" {op} {deparse(item)}" for op, item in pairs).lstrip(" +")
    fixed = parse_formula(f"1 ~ {body or '1'}").fixed
    return fixed.intercept, frozenset(frozenset(t) for t in fixed.terms)


def _drop_redundant(pairs: list[tuple[str, Node]]) -> list[tuple[str, Node]]:
    """The fixed items without those that add no term to the items before them
    (``ns(t, 3) * arm + ns(t, 3)`` is ``ns(t, 3) * arm``)."""
    kept: list[tuple[str, Node]] = []
    for op, item in pairs:
        if op == "+" and kept and _fixed_terms([*kept, (op, item)]) == _fixed_terms(kept):
            continue
        kept.append((op, item))
    return kept


def _is_bar(node: Node) -> bool:
    inner = strip_parens(node)
    return isinstance(inner, BinOp) and inner.op in ("|", "||")


def _expected_terms(spec: ModelSpec, time: str, label: str) -> list[tuple[str, ...]]:
    """The fixed terms the rewritten model must have (R's term algebra on the term list)."""
    terms = [
        tuple(label if _time_only(spec.fixed.exprs[v], time) else v for v in term)
        for term in spec.fixed.terms
    ]
    if not any(label in t for t in terms):
        terms.insert(0, (label,))
    return list(dict.fromkeys(tuple(dict.fromkeys(t)) for t in terms))


def _term_text(intercept: bool, terms: list[tuple[str, ...]], random: list[str]) -> str:
    parts = [":".join(t) for t in terms]
    parts = (parts or ["1"]) if intercept else ["0", *parts]
    return " + ".join(parts + random)


def with_time_shape(formula: str, time: str, shape: Node) -> str:
    """The formula with the population curve of ``time`` replaced by ``shape``.

    Every fixed-part variable that is a function of ``time`` alone (``t``, ``I(t/7)``,
    ``I(t^2)``, ``ns(t, 5)``) becomes ``shape``, inside interactions too; a model without
    time in its fixed part gets ``shape`` as a main effect. The random part and every other
    fixed term are kept as written.

    Parameters
    ----------
    formula
        The model's formula (lme4 syntax).
    time
        The time column (its name in the data, without backticks).
    shape
        The new shape's syntax tree (:func:`shape_node`).

    Returns
    -------
    str
        The rewritten formula, e.g. ``weight ~ ns(Time, 3) * Diet + (Time | Chick)``.

    Raises
    ------
    lmm_core.FormulaError
        When ``formula`` does not parse.
    """
    spec = parse_formula(formula)
    lhs, rhs = parse_sides(formula)
    pairs = list(zip(("+", *rhs.ops), rhs.items, strict=True)) if _is_sum(rhs) else [("+", rhs)]
    fixed = [(op, _substitute(item, time, shape)) for op, item in pairs if not _is_bar(item)]
    random = [(op, item) for op, item in pairs if _is_bar(item)]
    label = deparse(shape)
    has_time = any(_time_only(spec.fixed.exprs[v], time) for v in spec.fixed.variables)
    if not has_time:
        fixed.append(("+", shape))
    pairs = _drop_redundant(fixed) + random
    items, ops = [i for _, i in pairs], [o for o, _ in pairs][1:]
    body = items[0] if len(items) == 1 else NAry("sum", tuple(items), tuple(ops), 0)
    text = f"{deparse(lhs, backtick=not isinstance(lhs, Name))} ~ {deparse(body)}"
    expected = _expected_terms(spec, time, label)
    new = parse_formula(text)
    if new.fixed.intercept == spec.fixed.intercept and {frozenset(t) for t in new.fixed.terms} == {
        frozenset(t) for t in expected
    }:
        return text
    written = _term_text(spec.fixed.intercept, expected, [deparse(i) for _, i in random])
    return f"{deparse(lhs, backtick=not isinstance(lhs, Name))} ~ {written}"


def _is_sum(node: Node) -> bool:
    return isinstance(node, NAry) and node.kind == "sum"


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Shape:
    """One competing shape of the population curve.

    Attributes
    ----------
    key
        ``"line"``, ``"poly2"``, ``"ns3"``, ``"ns4"`` or ``"active"`` (the active model's own
        shape when it is none of the others).
    label
        Plain words: ``"straight line"``, ``"quadratic"``, ``"natural spline (3 df)"``.
    formula
        The model fitted.
    active
        Whether this is the active model's fixed part.
    """

    key: str
    label: str
    formula: str
    active: bool = False


@dataclass(frozen=True)
class CurvePlan:
    """The shapes to fit and what they were built from.

    Attributes
    ----------
    time
        The time column.
    time_expr
        How time enters on a straight line (``"Time"``, ``"I(`Visit day`/7)"``).
    active_formula
        The formula of the active model.
    shapes
        The models to fit, the straight line first.
    n_times
        Distinct values of time in the data.
    by
        A factor that interacts with time (its curves differ per level), or ``None``.
    outcome
        The response as the user wrote it (``weight``, ``log(y)``; no backticks), for labels.
    notes
        How the shapes were built (Markdown).
    """

    time: str
    time_expr: str
    active_formula: str
    shapes: tuple[Shape, ...]
    n_times: int
    by: str | None
    outcome: str
    notes: tuple[str, ...]


def _same_shape(node: Node, shape: Node) -> bool:
    """Whether two shape trees are the same basis (``ns(t, df = 3)`` is ``ns(t, 3)``)."""
    if deparse(node) == deparse(shape):
        return True
    if not (isinstance(node, Call) and isinstance(shape, Call)):
        return False
    if node.func not in BASIS_FUNCTIONS or shape.func not in BASIS_FUNCTIONS:
        return False
    return deparse(node.arg) == deparse(shape.arg) and basis_call(node) == basis_call(shape)


def _active_shape(spec: ModelSpec, time: str) -> Node | None:
    """The one variable through which time enters the active fixed part, if it is one."""
    nodes = {deparse(n): n for n in spec.fixed.exprs.values() if _time_only(n, time)}
    return next(iter(nodes.values())) if len(nodes) == 1 else None


def _by_factor(spec: ModelSpec, data: pd.DataFrame, time: str) -> str | None:
    """The first categorical column that forms an interaction with time in the fixed part."""
    for term in spec.fixed.terms:
        nodes = [spec.fixed.exprs[v] for v in term]
        if len(term) < 2 or not any(_time_only(n, time) for n in nodes):
            continue
        for node in nodes:
            names = {n.name for n in names_in(node)}
            if len(names) == 1 and time not in names:
                (column,) = names
                if column in data.columns and not is_numeric(data[column]):
                    return column
    return None


def _candidates(formula: str, time: str, expr: Node, n_times: int) -> list[Shape]:
    shapes = [Shape("line", "straight line", with_time_shape(formula, time, expr))]
    shapes.append(
        Shape("poly2", "quadratic", with_time_shape(formula, time, shape_node("poly", expr, 2)))
    )
    for k in SPLINE_DF:
        if k <= n_times - 1:
            node = shape_node("ns", expr, k)
            shapes.append(
                Shape(f"ns{k}", f"natural spline ({k} df)", with_time_shape(formula, time, node))
            )
    return shapes


def _mark_active(shapes: list[Shape], spec: ModelSpec, formula: str, time: str) -> list[Shape]:
    """Flag the shape equal to the active model, or add the active model as its own shape."""
    own = _active_shape(spec, time)
    key = model_key(spec)
    if own is not None and model_key(with_time_shape(formula, time, own)) == key:
        for i, shape in enumerate(shapes):
            node = _active_shape(parse_formula(shape.formula), time)
            if node is not None and _same_shape(own, node):
                shapes[i] = Shape(shape.key, shape.label, shape.formula, active=True)
                return shapes
    if any(_time_only(n, time) for n in spec.fixed.exprs.values()):
        shapes.append(Shape("active", "active model's shape", formula, active=True))
    return shapes


def plan_curves(formula: str, data: pd.DataFrame, time: str) -> CurvePlan:
    """The competing shapes of the population curve of ``time`` for the active model.

    Parameters
    ----------
    formula
        The active model's formula.
    data
        The data it was fitted to.
    time
        The time column (numeric).

    Raises
    ------
    lmm_core.LMMError
        When the formula does not parse (:class:`lmm_core.FormulaError`), the time column is
        missing or not numeric, or time has fewer than 3 distinct values (a curve needs 3).
    """
    if time not in data.columns or not is_numeric(data[time]):
        raise ModelError(
            f"The time column {escape_message(time)} is not a numeric column of the data: "
            "set a numeric time on the Data page."
        )
    n_times = int(pd.to_numeric(data[time], errors="coerce").dropna().nunique())
    if n_times < 3:
        raise ModelError(
            f"{escape_message(time)} has {n_times} distinct value{'s' if n_times != 1 else ''}: "
            "a curve needs at least 3 distinct times (a straight line is all the data can show)."
        )
    spec = parse_formula(formula)
    expr = time_expression(spec, time)
    shapes = _mark_active(_candidates(formula, time, expr, n_times), spec, formula, time)
    notes = _plan_notes(spec, time, expr, n_times)
    line = parse_formula(shapes[0].formula)
    by = _by_factor(line, data, time)
    outcome = unquote_label(spec.response_label)
    return CurvePlan(time, deparse(expr), formula, tuple(shapes), n_times, by, outcome, notes)


def _plan_notes(spec: ModelSpec, time: str, expr: Node, n_times: int) -> tuple[str, ...]:
    notes = []
    if not any(_time_only(n, time) for n in spec.fixed.exprs.values()):
        notes.append(
            f"The active model has no fixed term in {escape_message(time)}: every shape adds "
            "one as a main effect."
        )
    if n_times - 1 < max(SPLINE_DF):
        notes.append(
            f"{escape_message(time)} has {n_times} distinct values, so splines with more than "
            f"{n_times - 1} df are left out (a spline needs fewer df than distinct times)."
        )
    if any(_time_only(n, time) for r in spec.random for n in r.lhs.exprs.values()):
        notes.append(
            "The random part stays as it is: each subject's own deviation keeps its shape "
            "around whichever population curve."
        )
    return tuple(notes)


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
        start = clock.perf_counter()
        try:
            result, error = fit(shape.formula), ""
        except LMMError as exc:
            result, error = None, str(exc)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
            result = None
            error = f"the fit failed numerically ({type(exc).__name__}: {exc})"
        fits.append(ShapeFit(shape, result, error, clock.perf_counter() - start))
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
    return f"LRT p = {p:.3f}" if p < 0.1 else f"LRT p = {p:.2f}"


def _by(value: float) -> str:
    return f"{abs(value):.1f}"


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
