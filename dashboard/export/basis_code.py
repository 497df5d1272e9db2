"""Spline and polynomial terms (``ns``, ``bs``, ``poly``) in the exported code.

A basis is learned from the fitting data (knots at quantiles, boundary knots at the range,
orthogonal-polynomial coefficients; :class:`lmm_core.design.splines.BasisState`). The code
that refits a model elsewhere must use *that* basis, not learn a new one, or a refit on a
subset of the rows would fit another model. So:

- R gets every basis written out (:meth:`BasisState.r_call`): ``ns(Days, knots = c(3, 6),
  Boundary.knots = c(0, 9))``, ``poly(Days, 2, coefs = list(alpha = ..., norm2 = ...))``;
- Python gets the formula with the splines' knots written out (:func:`python_formula`); our
  grammar takes no ``coefs``, so an orthogonal ``poly`` stays as written;
- SAS (PROC MIXED has no spline effect) gets a DATA step that computes the basis columns
  (:func:`sas_basis_lines`). A spline of degree ``d`` is a polynomial of degree ``d`` between
  two knots and a polynomial beyond the boundary knots (``ns``: linear; ``bs``: the first or
  last piece continued), so each column is written on each interval as
  ``c0 + c1*u + c2*u**2 + c3*u**3`` with ``u = (x - origin) / scale``
  (:func:`basis_pieces`); an orthogonal polynomial is R's three-term recurrence
  ``P_{j+1} = (x - alpha_j) P_j - (n_{j+1} / n_j) P_{j-1}``, column ``j`` being
  ``P_j / sqrt(n_{j+1})``.

Pure functions, no Streamlit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.design.splines import BasisState
from lmm_core.formula.grammar import BASIS_FUNCTIONS, Call, Name, Node, Num, Vec, strip_parens
from lmm_core.formula.quoting import deparse
from lmm_core.formula.spec import ModelSpec

__all__ = [
    "Piece",
    "basis_calls",
    "basis_kind",
    "basis_pieces",
    "learned_bases",
    "python_formula",
    "sas_basis_lines",
]

_NOISE = 1e-12  # relative size below which a fitted piece coefficient is rounding noise
SAS_WIDTH = 96  # longest line of a written polynomial


def basis_calls(spec: ModelSpec) -> dict[str, Call]:
    """The basis calls of a formula by label (``{"ns(Days, 3)": Call(...)}``), fixed part
    first, then each random term, in order of appearance."""
    out: dict[str, Call] = {}
    for tl in [spec.fixed] + [r.lhs for r in spec.random]:
        for label in tl.variables:
            node = strip_parens(tl.exprs[label])
            if isinstance(node, Call) and node.func in BASIS_FUNCTIONS:
                out.setdefault(label, node)
    return out


def learned_bases(
    spec: ModelSpec, data: pd.DataFrame, bases: Mapping[str, BasisState] | None = None
) -> dict[str, BasisState]:
    """The learned basis of every basis call of ``spec``.

    ``bases`` is the fit's own (``result.design.bases``); without it they are learned from
    ``data`` as the fit learns them (:func:`lmm_core.design.build.build_design`).

    Raises
    ------
    ValueError
        When ``bases`` lacks a basis of the formula (a fit of another formula).
    """
    labels = basis_calls(spec)
    if not labels:
        return {}
    if bases is None:
        from lmm_core.design.build import build_design

        bases = build_design(spec, data).bases
    missing = [label for label in labels if label not in bases]
    if missing:
        raise ValueError(f"The fit has no basis for {', '.join(missing)}: another formula?")
    return {label: bases[label] for label in labels}


def basis_kind(state: BasisState) -> str:
    """Plain-language kind: ``natural cubic spline``, ``B-spline of degree 2``, ..."""
    if state.func == "ns":
        kind = "natural cubic spline"
    elif state.func == "bs":
        kind = "cubic B-spline" if state.degree == 3 else f"B-spline of degree {state.degree}"
    else:
        kind = f"{'raw' if state.raw else 'orthogonal'} polynomial of degree {state.degree}"
    return kind + (" with intercept" if state.intercept else "")


# --------------------------------------------------------------------------- Python
def _spline_options(state: BasisState) -> tuple[tuple[str, Node], ...]:
    """``knots``, ``degree``, ``Boundary.knots`` and ``intercept`` as formula options."""
    opts: list[tuple[str, Node]] = []
    if state.knots:
        opts.append(("knots", Vec(tuple(state.knots), 0)))
    if state.func == "bs":
        opts.append(("degree", Num(float(state.degree), 0)))
    opts.append(("Boundary.knots", Vec(tuple(state.boundary), 0)))
    if state.intercept:
        opts.append(("intercept", Name("TRUE", 0)))
    return tuple(opts)


def _rewrite(node: Node, change: Callable[[Call], Call]) -> Node:
    """``node`` with every basis call replaced by ``change(call)`` (other nodes kept)."""
    if isinstance(node, Call):
        return change(node) if node.func in BASIS_FUNCTIONS else node
    fields = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if f.name in ("operand", "left", "right", "expr"):
            fields[f.name] = _rewrite(value, change)
        elif f.name == "items":
            fields[f.name] = tuple(_rewrite(v, change) for v in value)
    return dataclasses.replace(node, **fields) if fields else node


def python_formula(spec: ModelSpec, bases: Mapping[str, BasisState]) -> str:
    """The formula with each spline's learned knots written out (``ns(Time, 3)`` becomes
    ``ns(Time, knots = c(6, 14), Boundary.knots = c(0, 21))``); polynomials as written.

    Returns the formula text unchanged when it has no ``ns``/``bs`` term.
    """
    if not any(bases[label].func in ("ns", "bs") for label in basis_calls(spec)):
        return spec.text
    from lmm_core.formula.grammar import parse_sides

    lhs, rhs = parse_sides(spec.text)

    def change(call: Call) -> Call:
        state = bases[deparse(call)]
        if state.func == "poly":
            return call
        return Call(call.func, call.arg, call.pos, _spline_options(state))

    return f"{deparse(lhs)} ~ {deparse(_rewrite(rhs, change))}"


# --------------------------------------------------------------------------- SAS
@dataclass(frozen=True)
class Piece:
    """The basis on one interval of ``x`` as polynomials in ``u = (x - origin) / scale``.

    Attributes
    ----------
    lower, upper
        The interval: ``lower <= x < upper`` (``x <= upper`` when ``closed``); None for an
        open end (below or above the boundary knots).
    origin, scale
        ``u = (x - origin) / scale``.
    coefs
        ``(degree + 1, n_columns)``: column ``j`` is ``sum_k coefs[k, j] u^k``.
    """

    lower: float | None
    upper: float | None
    closed: bool
    origin: float
    scale: float
    coefs: np.ndarray

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """The piece's polynomials at ``x`` (whether or not ``x`` lies in the interval)."""
        u = (np.asarray(x, dtype=float) - self.origin) / self.scale
        return (u[:, None] ** np.arange(self.coefs.shape[0])) @ self.coefs


def _fit_piece(state: BasisState, origin: float, scale: float, u: np.ndarray) -> np.ndarray:
    """Coefficients of the polynomial through the basis at ``origin + scale * u`` (as many
    points as coefficients, so the polynomial of that degree is recovered exactly)."""
    values = state.evaluate(origin + scale * u)
    coefs = np.linalg.solve(u[:, None] ** np.arange(u.size), values)
    size = max(1.0, float(np.abs(coefs).max()))
    coefs[np.abs(coefs) < _NOISE * size] = 0.0
    return coefs


def basis_pieces(state: BasisState) -> list[Piece]:
    """A spline basis (``ns``, ``bs``) as polynomial pieces: below the lower boundary knot,
    between consecutive knots and above the upper boundary knot."""
    if state.func not in ("ns", "bs"):
        raise ValueError(f"{state.func}() is a polynomial, not a spline with pieces")
    low, high = state.boundary
    width = high - low
    edges = [low, *state.knots, high]
    outside = 1 if state.func == "ns" else state.degree  # ns continues linearly
    steps = np.arange(1, outside + 2) / (outside + 1)
    pieces = [Piece(None, low, False, low, width, _fit_piece(state, low, width, -steps))]
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        u = np.linspace(0.0, 1.0, state.degree + 1)
        last = i == len(edges) - 2
        pieces.append(Piece(a, b, last, a, b - a, _fit_piece(state, a, b - a, u)))
    pieces.append(Piece(high, None, False, high, width, _fit_piece(state, high, width, steps)))
    return pieces


def _num(value: float) -> str:
    """A double as SAS (and Python) read it back exactly: shortest round-trip digits, whole
    numbers without a decimal point."""
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _polynomial(coefs: np.ndarray, u: str) -> list[str]:
    """The terms of ``c0 + c1*u + c2*u**2 + c3*u**3`` without the zero ones, each but the
    first with its sign (``["-0.5", "+ 2*u", "- 3*u**3"]``; ``["0"]`` when all are zero)."""
    terms: list[str] = []
    for k, c in enumerate(coefs):
        if c == 0:
            continue
        power = "" if k == 0 else f"*{u}" if k == 1 else f"*{u}**{k}"
        if terms:
            terms.append(f"{'-' if c < 0 else '+'} {_num(abs(c))}{power}")
        else:
            terms.append(f"{_num(c)}{power}")
    return terms or ["0"]


def _assignment(name: str, terms: list[str], indent: str) -> list[str]:
    """``name = terms;`` on lines of at most :data:`SAS_WIDTH` characters (continuation
    lines start with the next term's sign, under the first term)."""
    lines = [f"{indent}{name} = {terms[0]}"]
    pad = " " * (len(indent) + len(name) + 3)
    for term in terms[1:]:
        if len(lines[-1]) + 1 + len(term) > SAS_WIDTH:
            lines.append(f"{pad}{term}")
        else:
            lines[-1] += f" {term}"
    lines[-1] += ";"
    return lines


def _condition(piece: Piece, x: str) -> str:
    if piece.upper is None:
        return "ELSE DO;"
    return f"ELSE IF {x} {'<=' if piece.closed else '<'} {_num(piece.upper)} THEN DO;"


def _spline_lines(state: BasisState, names: list[str], x: str, u: str) -> list[str]:
    lines = [f"  IF MISSING({x}) THEN CALL MISSING({', '.join(names)});"]
    for piece in basis_pieces(state):
        where = (
            f"below {_num(piece.upper)}"
            if piece.lower is None
            else f"above {_num(piece.lower)}"
            if piece.upper is None
            else f"{_num(piece.lower)} to {_num(piece.upper)}"
        )
        lines.append(f"  {_condition(piece, x)}  /* {where} */")
        lines.append(f"    {u} = ({x} - {_num(piece.origin)}) / {_num(piece.scale)};")
        for j, name in enumerate(names):
            lines += _assignment(name, _polynomial(piece.coefs[:, j], u), "    ")
        lines.append("  END;")
    return lines


def _poly_lines(state: BasisState, names: list[str], x: str, temp: str) -> list[str]:
    if state.raw:
        return [f"  {name} = {x}{f'**{j}' if j > 1 else ''};" for j, name in enumerate(names, 1)]
    p = [f"{temp}{j}" for j in range(state.degree + 1)]
    lines = [f"  {p[0]} = 1;", f"  {p[1]} = {x} - {_num(state.alpha[0])};"]
    for i in range(1, state.degree):
        ratio = state.norm2[i + 1] / state.norm2[i]
        lines.append(
            f"  {p[i + 1]} = ({x} - {_num(state.alpha[i])}) * {p[i]} - {_num(ratio)} * {p[i - 1]};"
        )
    for j, name in enumerate(names, start=1):
        lines.append(f"  {name} = {p[j]} / {_num(np.sqrt(state.norm2[j + 1]))};")
    return lines


def sas_basis_lines(
    label: str, state: BasisState, x_expr: str, names: list[str], temp: str
) -> tuple[list[str], list[str]]:
    """DATA-step statements that set the columns ``names`` of the basis ``state`` of
    ``x_expr`` (a SAS expression), and the temporary variables they use (to be dropped);
    ``temp`` prefixes the temporary names."""
    x, u = f"{temp}x", f"{temp}u"
    desc = f"{label} in LMM Explorer: {basis_kind(state)}"
    if state.func != "poly":
        knots = ", ".join(_num(k) for k in state.knots) or "none"
        desc += f", knots {knots}, boundary knots {', '.join(_num(b) for b in state.boundary)}"
        body = _spline_lines(state, names, x, u)
        temps = [x, u]
    else:
        if not state.raw:
            desc += ", R's coefficients alpha and norm2"
        body = _poly_lines(state, names, x, f"{temp}p")
        temps = [x] + ([] if state.raw else [f"{temp}p{j}" for j in range(state.degree + 1)])
    return [f"  /* {desc.replace('*/', '* /')} */", f"  {x} = {x_expr};", *body], temps


def sas_stem(label: str) -> str:
    """Plain SAS name stem of a basis label: ``ns(Time, 3)`` gives ``ns_Time_3``."""
    stem = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]+", "_", label)).strip("_") or "basis"
    return ("_" + stem if stem[0].isdigit() else stem)[:26]
