"""Which shapes of the population curve of time to compare: the plan.

Pure logic, no Streamlit. From the active model, competing models are built that differ only
in the **shape of the population curve** of the time column ``t``
(:func:`dashboard.analysis.time_shape_rewrite.with_time_shape`):

* a straight line, ``beta_1 t``;
* a quadratic, ``poly(t, 2)`` (orthogonal polynomial: ``t`` and ``t^2``);
* natural cubic splines ``ns(t, k)`` with ``k`` = 3 and 4 degrees of freedom (knots at the
  quantiles of ``t``; cubic between knots, straight beyond the boundary knots), each only
  when the data allow it (:func:`dashboard.analysis.time_shape.spline_dfs`, the Model page's
  rule: fewer df than distinct times, quantile knots that do not coincide).

The shape equal to the active model is flagged; an active shape that is none of these is
added as a shape of its own. The fits, tests and verdict are in
:mod:`dashboard.analysis.curve_shape`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from dashboard.analysis.formula_text import model_key
from dashboard.analysis.time_shape import TimeShape, spline_dfs
from dashboard.analysis.time_shape_rewrite import (
    is_time_only,
    shape_node,
    time_expression,
    with_time_shape,
)
from dashboard.base.markup import escape_message
from dashboard.io.roles import is_numeric
from lmm_core import ModelError
from lmm_core.formula.grammar import Node, names_in
from lmm_core.formula.quoting import deparse, unquote_label
from lmm_core.formula.spec import ModelSpec
from lmm_core.formula.terms import parse_formula

__all__ = ["SPLINE_DF", "CurvePlan", "Shape", "plan_curves"]

#: spline degrees of freedom tried (each only when the data allow it: :func:`spline_dfs`)
SPLINE_DF = (3, 4)


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


def _by_factor(spec: ModelSpec, data: pd.DataFrame, time: str) -> str | None:
    """The first categorical column that forms an interaction with time in the fixed part."""
    for term in spec.fixed.terms:
        nodes = [spec.fixed.exprs[v] for v in term]
        if len(term) < 2 or not any(is_time_only(n, time) for n in nodes):
            continue
        for node in nodes:
            names = {n.name for n in names_in(node)}
            if len(names) == 1 and time not in names:
                (column,) = names
                if column in data.columns and not is_numeric(data[column]):
                    return column
    return None


def _candidates(formula: str, time: str, expr: Node, spline_df: Sequence[int]) -> list[Shape]:
    """The straight line, the quadratic and the splines with ``spline_df`` df, named in the
    Model page's words (:meth:`dashboard.analysis.time_shape.TimeShape.words`)."""
    options = [
        ("line", TimeShape.line(time), expr),
        ("poly2", TimeShape.quadratic(time), shape_node("poly", expr, 2)),
    ]
    options += [(f"ns{k}", TimeShape.spline(time, k), shape_node("ns", expr, k)) for k in spline_df]
    return [
        Shape(key, shape.words(), with_time_shape(formula, time, node))
        for key, shape, node in options
    ]


def _mark_active(shapes: list[Shape], spec: ModelSpec, formula: str, time: str) -> list[Shape]:
    """Flag the shape that is the active model (the same :func:`model_key`: ``ns(t, df = 3)``
    is ``ns(t, 3)``), or add the active model as its own shape when time is in its fixed part."""
    key = model_key(spec)
    for i, shape in enumerate(shapes):
        if model_key(shape.formula) == key:
            shapes[i] = replace(shape, active=True)
            return shapes
    if any(is_time_only(n, time) for n in spec.fixed.exprs.values()):
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
    allowed = spline_dfs(data[time], max(SPLINE_DF))
    spline_df = tuple(k for k in SPLINE_DF if k in allowed)
    shapes = _mark_active(_candidates(formula, time, expr, spline_df), spec, formula, time)
    notes = _plan_notes(spec, time, n_times, spline_df)
    line = parse_formula(shapes[0].formula)
    by = _by_factor(line, data, time)
    outcome = unquote_label(spec.response_label)
    return CurvePlan(time, deparse(expr), formula, tuple(shapes), n_times, by, outcome, notes)


def _plan_notes(
    spec: ModelSpec, time: str, n_times: int, spline_df: tuple[int, ...]
) -> tuple[str, ...]:
    """What the user should know of the plan: time added, splines left out, random part kept."""
    notes = []
    if not any(is_time_only(n, time) for n in spec.fixed.exprs.values()):
        notes.append(
            f"The active model has no fixed term in {escape_message(time)}: every shape adds "
            "one as a main effect."
        )
    too_many = [k for k in SPLINE_DF if k >= n_times]
    if too_many:
        notes.append(
            f"{escape_message(time)} has {n_times} distinct values, so splines with more than "
            f"{n_times - 1} df are left out (a spline needs fewer df than distinct times)."
        )
    tied = [k for k in SPLINE_DF if k < n_times and k not in spline_df]
    if tied:
        one = len(tied) == 1
        dfs = " and ".join(str(k) for k in tied)
        notes.append(
            f"The natural spline{'' if one else 's'} with {dfs} df {'is' if one else 'are'} "
            f"left out: many visits share a few values of {escape_message(time)}, so "
            f"{'its' if one else 'their'} knots (at quantiles of {escape_message(time)}) would "
            "coincide or have no time between them."
        )
    if any(is_time_only(n, time) for r in spec.random for n in r.lhs.exprs.values()):
        notes.append(
            "The random part stays as it is: each subject's own deviation keeps its shape "
            "around whichever population curve."
        )
    return tuple(notes)
