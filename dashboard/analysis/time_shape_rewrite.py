"""A formula with another shape of time: the time terms of the fixed part rewritten.

Pure logic on the syntax tree of a formula (:mod:`lmm_core.formula.grammar`), no Streamlit.
:func:`with_time_shape` replaces every fixed-part variable that is a function of the time
column ``t`` alone (``t``, ``I(t/7)``, ``ns(t, 5)``, ``I(t^2)``) by a new shape of time, the
syntax tree made by :func:`shape_node`: ``t`` itself, ``poly(t, d)`` or ``ns(t, k)``. So
``t * arm`` becomes ``ns(t, 3) * arm``; the random part and every other fixed term stay as
written, and a model without time in its fixed part gets the shape as a main effect.

The tree is rewritten where it stands (keeping the user's spelling of the other terms), then
checked against R's term algebra: the fixed terms of the new formula must be the terms of
:class:`lmm_core.formula.spec.TermList` with every time variable replaced by the shape (and
repeats dropped), with the same intercept. When they disagree (``t + I(t^2) - I(t^2)``: the
tree would lose time altogether), the term list is written out instead.

:func:`time_expression` finds how the model writes time on a straight line (``t``,
``I(t/7)``; the argument of a basis already used), the expression every shape is built on.
"""

from __future__ import annotations

import math

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
from lmm_core.formula.quoting import deparse
from lmm_core.formula.spec import ModelSpec
from lmm_core.formula.terms import parse_formula

__all__ = ["is_time_only", "shape_node", "time_expression", "with_time_shape"]

#: functions that keep time on a straight line: ``I(t/7)``, ``scale(t)``, ``center(t)``
_AFFINE = frozenset({"I", "scale", "center"})


def is_time_only(node: Node, time: str) -> bool:
    """Whether the column names in ``node`` are exactly ``{time}`` (a function of time alone:
    ``t``, ``I(t/7)``, ``ns(t, 3)``, ``log(t)``; not ``t:arm`` nor a constant)."""
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
        if is_time_only(node, time) and _degree(node, time) == 1:
            return node
    for node in variables:
        if isinstance(node, Call) and node.func in BASIS_FUNCTIONS and is_time_only(node, time):
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
        return shape if is_time_only(node, time) else node
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
        tuple(label if is_time_only(spec.fixed.exprs[v], time) else v for v in term)
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
    has_time = any(is_time_only(spec.fixed.exprs[v], time) for v in spec.fixed.variables)
    if not has_time:
        fixed.append(("+", shape))
    pairs = _drop_redundant(fixed) + random
    items, ops = [i for _, i in pairs], [o for o, _ in pairs][1:]
    body = items[0] if len(items) == 1 else NAry("sum", tuple(items), tuple(ops), 0)
    text = f"{deparse(lhs)} ~ {deparse(body)}"
    expected = _expected_terms(spec, time, label)
    new = parse_formula(text)
    if new.fixed.intercept == spec.fixed.intercept and {frozenset(t) for t in new.fixed.terms} == {
        frozenset(t) for t in expected
    }:
        return text
    written = _term_text(spec.fixed.intercept, expected, [deparse(i) for _, i in random])
    return f"{deparse(lhs)} ~ {written}"


def _is_sum(node: Node) -> bool:
    return isinstance(node, NAry) and node.kind == "sum"
