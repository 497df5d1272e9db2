"""The options of a basis function (``ns``, ``bs``, ``poly``), matched as R matches them.

R matches a call's arguments to the function's formals: exact names first, then unique
prefixes (only for formals before ``...``), then the rest by position. The formals are

- ``ns(x, df, knots, intercept = FALSE, Boundary.knots = range(x))`` (splines::ns);
- ``bs(x, df, knots, degree = 3, intercept = FALSE, Boundary.knots = range(x))`` (splines::bs);
- ``poly(x, ..., degree = 1, raw = FALSE)`` (stats::poly; one positional number after ``x``
  is the degree, names after ``...`` must be exact).

:func:`basis_call` checks every option (types, ranges, knots inside the boundary knots) and
returns a :class:`BasisCall`; the data-dependent checks (enough distinct values) are made
where the basis is built, in :mod:`lmm_core.design.splines`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmm_core.errors import FormulaError
from lmm_core.formula.grammar import Call, Name, Node, Num, Vec

_FORMALS = {
    "ns": ("df", "knots", "intercept", "Boundary.knots"),
    "bs": ("df", "knots", "degree", "intercept", "Boundary.knots"),
    "poly": ("degree", "raw"),
}
_EXAMPLES = {
    "ns": "`ns(time, df = 3)` or `ns(time, knots = c(2, 5), Boundary.knots = c(0, 10))`",
    "bs": "`bs(time, df = 4)` or `bs(time, knots = c(3, 6), degree = 2)`",
    "poly": "`poly(time, 2)` or `poly(time, 2, raw = TRUE)`",
}
MAX_DEGREE = 10
MAX_DF = 50


@dataclass(frozen=True)
class BasisCall:
    """The options of one basis call after R's argument matching.

    Attributes
    ----------
    func
        ``"ns"``, ``"bs"`` or ``"poly"``.
    df
        Degrees of freedom (columns) asked for, or None.
    knots
        Interior knots given by the user, or None (then placed at quantiles from ``df``).
    boundary
        ``Boundary.knots`` given by the user (sorted), or None (then the data range).
    intercept
        Whether the basis includes the constant (ns, bs).
    degree
        Polynomial degree (bs: of the pieces; poly: of the polynomial; ns: 3).
    raw
        ``poly(..., raw = TRUE)``: plain powers instead of orthogonal polynomials.
    """

    func: str
    df: int | None = None
    knots: tuple[float, ...] | None = None
    boundary: tuple[float, float] | None = None
    intercept: bool = False
    degree: int = 3
    raw: bool = False


def basis_call(node: Call) -> BasisCall:
    """Match and check the options of a basis call.

    Raises
    ------
    FormulaError
        For an unknown or repeated option, a value of the wrong kind, a non-integer df or
        degree, knots outside the boundary knots, or ``poly`` of several columns.
    """
    func = node.func
    matched = _match(node)
    values: dict[str, object] = {}
    for formal, value in matched.items():
        values[formal] = _convert(node, formal, value)
    degree = int(values.get("degree", 1 if func == "poly" else 3))  # type: ignore[arg-type]
    call = BasisCall(
        func=func,
        df=values.get("df"),  # type: ignore[arg-type]
        knots=values.get("knots"),  # type: ignore[arg-type]
        boundary=values.get("Boundary.knots"),  # type: ignore[arg-type]
        intercept=bool(values.get("intercept", False)),
        degree=3 if func == "ns" else degree,
        raw=bool(values.get("raw", False)),
    )
    _check_knots(node, call)
    return call


def _fail(node: Call, message: str) -> FormulaError:
    return FormulaError(
        f"`{node.func}()` at position {node.pos}: {message} Write e.g. {_EXAMPLES[node.func]}.",
        node.pos,
        node.func,
    )


def _match(node: Call) -> dict[str, Node]:
    formals = _FORMALS[node.func]
    matched: dict[str, Node] = {}
    positional: list[Node] = []
    for key, value in node.options:
        if key is None:
            positional.append(value)
            continue
        name = _formal_name(node, key, formals)
        if name in matched:
            raise _fail(node, f"the option `{name}` is given twice.")
        matched[name] = value
    if node.func == "poly":
        if len(positional) > 1 or any(isinstance(v, Name) for v in positional):
            raise _fail(
                node,
                "polynomials of several columns are not supported; use one `poly()` per column.",
            )
        if positional:
            if "degree" in matched:
                raise _fail(node, "the degree is given twice.")
            matched["degree"] = positional[0]
        return matched
    free = [f for f in formals if f not in matched]
    if len(positional) > len(free):
        raise _fail(node, f"it takes at most {len(formals)} options after the column.")
    matched.update(zip(free, positional, strict=False))
    return matched


def _formal_name(node: Call, key: str, formals: tuple[str, ...]) -> str:
    if key in formals:
        return key
    if key == "coefs":
        raise _fail(node, "`coefs` is learned from the data when the model is fitted.")
    partial = [f for f in formals if f.startswith(key)] if node.func != "poly" else []
    if len(partial) == 1:
        return partial[0]
    raise _fail(
        node, f"unknown option `{key}`; its options are {', '.join(f'`{f}`' for f in formals)}."
    )


def _convert(node: Call, formal: str, value: Node) -> object:
    if formal in ("intercept", "raw"):
        if isinstance(value, Name) and value.name in ("TRUE", "FALSE", "T", "F"):
            return value.name in ("TRUE", "T")
        raise _fail(node, f"`{formal}` must be TRUE or FALSE.")
    numbers = _numbers(node, formal, value)
    if formal in ("df", "degree"):
        if len(numbers) != 1 or numbers[0] != int(numbers[0]) or numbers[0] < 1:
            raise _fail(node, f"`{formal}` must be a whole number of at least 1.")
        limit = MAX_DEGREE if formal == "degree" else MAX_DF
        if numbers[0] > limit:
            raise _fail(node, f"`{formal}` = {numbers[0]:g} is more than the limit of {limit}.")
        return int(numbers[0])
    if formal == "Boundary.knots":
        if len(numbers) != 2 or numbers[0] == numbers[1]:
            raise _fail(node, "`Boundary.knots` must be two different numbers `c(low, high)`.")
        return (min(numbers), max(numbers))
    if len(numbers) > MAX_DF:
        raise _fail(node, f"more than {MAX_DF} knots.")
    return tuple(sorted(numbers))


def _numbers(node: Call, formal: str, value: Node) -> tuple[float, ...]:
    if isinstance(value, Num):
        return (value.value,)
    if isinstance(value, Vec):
        return value.values
    raise _fail(node, f"`{formal}` must be a number or numbers written `c(1, 2)`.")


def _check_knots(node: Call, call: BasisCall) -> None:
    if call.knots is None or call.boundary is None:
        return
    low, high = call.boundary
    outside = [k for k in call.knots if not low < k < high]
    if outside:
        raise _fail(
            node,
            f"the knot{'s' * (len(outside) > 1)} {', '.join(f'{k:g}' for k in outside)} "
            f"{'are' if len(outside) > 1 else 'is'} not strictly inside the boundary knots "
            f"({low:g}, {high:g}).",
        )
