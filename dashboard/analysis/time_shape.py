"""The shape of time: a straight line, a quadratic or a natural spline. No Streamlit here.

:class:`TimeShape` is the shape of a curve over time the Model page's builder offers, for the
population curve and for each subject's own curve. :func:`spline_dfs` is the one rule for the
natural-spline df the data allow (fewer than the distinct times, at most
:data:`MAX_SPLINE_DF`, and quantile knots that do not coincide), used by the builder
(:func:`shape_options`) and the Compare page's curve comparison
(:mod:`dashboard.analysis.curve_plan`). :func:`spline_basis` learns a spline's knots exactly as
the engine will; :func:`shape_note`, :func:`knots_text` and :func:`flexibility_note` say in
words what a shape draws. :func:`basis_of` and :func:`curve_terms` find the spline and
polynomial terms of any formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.base.markup import code_span, escape_text
from dashboard.base.numbers import fmt
from lmm_core import DataError
from lmm_core.design.splines import BasisState, learn_basis
from lmm_core.formula.basis_args import BasisCall, basis_call
from lmm_core.formula.grammar import BASIS_FUNCTIONS, Call, Node, strip_parens
from lmm_core.formula.quoting import quote_name
from lmm_core.formula.spec import ModelSpec

__all__ = [
    "LINE",
    "MAX_SPLINE_DF",
    "QUADRATIC",
    "SPLINE",
    "TimeShape",
    "basis_of",
    "curve_terms",
    "flexibility_note",
    "knots_text",
    "shape_note",
    "shape_options",
    "spline_basis",
    "spline_dfs",
    "typical_visits",
]

LINE, QUADRATIC, SPLINE = "line", "quadratic", "spline"
MAX_SPLINE_DF = 10  # the builder offers ns(time, k) up to this k; more can be typed


@dataclass(frozen=True)
class TimeShape:
    """The shape of a curve over time: a straight line, a quadratic or a natural spline.

    - straight line: ``time`` (1 coefficient: the slope);
    - quadratic: ``poly(time, 2)``, orthogonal polynomials of degree 2 (2 coefficients);
    - natural spline: ``ns(time, df)``, a natural cubic spline with ``df`` coefficients:
      cubic pieces joined smoothly at ``df - 1`` interior knots (quantiles of the time
      values), straight beyond the boundary knots (the range of the data).

    ``df`` is the number of coefficients the shape adds (``1`` for a line, ``2`` for a
    quadratic), which measures its flexibility.

    Attributes
    ----------
    column
        The time column.
    kind
        ``"line"``, ``"quadratic"`` or ``"spline"``.
    df
        Degrees of freedom: 1 (line), 2 (quadratic), ``k >= 2`` (spline).
    """

    column: str
    kind: str = LINE
    df: int = 1

    def __post_init__(self) -> None:
        fixed_df = {LINE: 1, QUADRATIC: 2}
        if self.kind in fixed_df and self.df != fixed_df[self.kind]:
            raise ValueError(f"a {self.kind} has {fixed_df[self.kind]} df, not {self.df}")
        if self.kind == SPLINE and not (isinstance(self.df, int) and self.df >= 2):
            raise ValueError(f"a natural spline needs at least 2 df, not {self.df!r}")
        if self.kind not in (LINE, QUADRATIC, SPLINE):
            raise ValueError(f"unknown shape {self.kind!r}")

    @classmethod
    def line(cls, column: str) -> TimeShape:
        """A straight line in ``column``."""
        return cls(column)

    @classmethod
    def quadratic(cls, column: str) -> TimeShape:
        """``poly(column, 2)``."""
        return cls(column, QUADRATIC, 2)

    @classmethod
    def spline(cls, column: str, df: int) -> TimeShape:
        """``ns(column, df)``."""
        return cls(column, SPLINE, int(df))

    @property
    def curved(self) -> bool:
        """Whether the shape can bend (not a straight line)."""
        return self.kind != LINE

    def expression(self) -> str:
        """Formula text: ``time``, ``poly(time, 2)`` or ``ns(`Visit day`, 3)``."""
        name = quote_name(self.column)
        if self.kind == QUADRATIC:
            return f"poly({name}, 2)"
        if self.kind == SPLINE:
            return f"ns({name}, {self.df})"
        return name

    def words(self) -> str:
        """Plain words: ``"straight line"``, ``"quadratic"``, ``"natural spline (3 df)"``."""
        return {LINE: "straight line", QUADRATIC: "quadratic"}.get(
            self.kind, f"natural spline ({self.df} df)"
        )

    def basis_call(self) -> BasisCall | None:
        """The engine's reading of the spline's call (``None`` for the other shapes)."""
        return BasisCall("ns", df=self.df) if self.kind == SPLINE else None


def _finite(values: np.ndarray | pd.Series | Sequence[float]) -> np.ndarray:
    """The finite numbers among ``values`` as a float array (NaN, ``pd.NA`` left out)."""
    array = pd.Series(values).to_numpy(dtype=float, na_value=np.nan)
    return array[np.isfinite(array)]


def spline_dfs(
    times: np.ndarray | pd.Series | Sequence[float], max_df: int | None = None
) -> list[int]:
    """The df ``k`` of the natural splines ``ns(time, k)`` the data allow, smallest first.

    ``k`` is allowed when ``2 <= k <= min(n - 1, MAX_SPLINE_DF, max_df)``, with ``n`` the
    number of distinct times (a spline has fewer coefficients than distinct times), and the
    ``k - 1`` interior knots at the quantiles ``j / k`` (``j = 1..k-1``) of the times are
    distinct with data between them (see :func:`lmm_core.design.splines.learn_basis`): with
    many tied times (most visits at 0) some ``k`` are left out while a larger one fits.

    Parameters
    ----------
    times
        The whole time column, as the engine learns a basis from (NaN ignored).
    max_df
        Largest df wanted, or ``None`` (then :data:`MAX_SPLINE_DF`).
    """
    values = _finite(times)
    limit = min(np.unique(values).size - 1, MAX_SPLINE_DF)
    if max_df is not None:
        limit = min(limit, max_df)
    allowed = []
    for k in range(2, limit + 1):
        try:
            learn_basis(BasisCall("ns", df=k), values, f"ns(time, {k})")
        except DataError:  # quantile knots coincide on these times
            continue
        allowed.append(k)
    return allowed


def shape_options(
    column: str, times: np.ndarray | pd.Series, max_df: int | None = None
) -> list[TimeShape]:
    """The shapes of time the data allow, least flexible first.

    A straight line always; a quadratic with 3 or more distinct times (and ``max_df`` of 2 or
    more); a natural spline for each df of :func:`spline_dfs`. ``max_df`` bounds the df
    further (for a patient's own curve: the typical number of visits per patient minus one).

    Parameters
    ----------
    column
        The time column.
    times
        Its values: the whole column, as the engine learns a basis from (NaN ignored).
    max_df
        Largest df offered, or ``None``.
    """
    n_times = np.unique(_finite(times)).size
    shapes = [TimeShape.line(column)]
    if n_times >= 3 and (max_df is None or max_df >= 2):
        shapes.append(TimeShape.quadratic(column))
    shapes += [TimeShape.spline(column, k) for k in spline_dfs(times, max_df)]
    return shapes


def spline_basis(shape: TimeShape, times: np.ndarray | pd.Series) -> BasisState | None:
    """The natural spline's basis as the engine learns it from ``times`` (knots at the
    quantiles ``j / df``, ``j = 1..df-1``, of the values, boundary knots at their range);
    ``None`` for a line or a quadratic.

    Raises
    ------
    lmm_core.DataError
        When the times cannot carry that many knots.
    """
    call = shape.basis_call()
    if call is None:
        return None
    return learn_basis(call, _finite(times), shape.expression())


def _join(values: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def knots_text(knots: Sequence[float], column: str, unit: str = "") -> str:
    """The knots in words, in the time unit: ``"knots at 6 and 14 days"``, ``"knot at 10
    days"``, ``"knots at Time = 6 and 14"`` when the unit is unknown; ``""`` without knots."""
    if not len(knots):
        return ""
    where = _join([fmt(float(k), 3) for k in knots])
    noun = "knot" if len(knots) == 1 else "knots"
    return f"{noun} at {where} {unit}s" if unit else f"{noun} at {column} = {where}"


def _at(value: float, column: str, unit: str) -> str:
    """``"21 days"`` or ``"Time = 21"`` when the unit is unknown."""
    return f"{fmt(float(value), 3)} {unit}s" if unit else f"{column} = {fmt(float(value), 3)}"


def shape_note(shape: TimeShape | None, times: np.ndarray | pd.Series, unit: str = "") -> str:
    """What the chosen shape draws, as Markdown (the call as code, the rest escaped), with a
    spline's knots as the engine places them on ``times``; ``""`` for a straight line.

    The engine (as R's ``model.frame``) learns a basis from every value of the time column,
    before rows with a missing value elsewhere are left out: pass the whole column.

    Raises
    ------
    lmm_core.DataError
        When the times cannot carry the spline's knots.
    """
    if shape is None or shape.kind == LINE:
        return ""
    if shape.kind == QUADRATIC:
        words = (
            "a parabola (one bend). Its two coefficients are orthogonal polynomials, not the "
            "plain time and time-squared terms."
        )
    else:
        basis = spline_basis(shape, times)
        low, high = basis.boundary
        where = "the median" if len(basis.knots) == 1 else "quantiles"
        words = (
            f"{knots_text(basis.knots, shape.column, unit)} ({where} of {shape.column}), "
            "smooth cubic pieces between them, straight before "
            f"{_at(low, shape.column, unit)} and after {_at(high, shape.column, unit)}."
        )
    return f"{code_span(shape.expression())}: {escape_text(words)}"


def flexibility_note(population: TimeShape | None, curve: TimeShape, subject: str) -> str:
    """A warning when a subject's own curve has more df than the population curve (the
    subjects would bend in ways their average cannot); ``""`` otherwise. ``population`` is
    ``None`` when time is no fixed effect."""
    have = population.df if population is not None else 0
    if not curve.curved or curve.df <= have:
        return ""
    average = f"is {_article(population)}" if population is not None else "has no time term"
    return (
        f"Each {subject}'s own curve is {_article(curve)}, but the population curve "
        f"{average}: the individual curves would bend where their average cannot. Allowed, "
        "but the population curve is usually at least as flexible."
    )


def _article(shape: TimeShape) -> str:
    """``"a straight line"``, ``"a quadratic"``, ``"a natural spline with 3 df"``."""
    if shape.kind == SPLINE:
        return f"a natural spline with {shape.df} df"
    return f"a {shape.words()}"


def typical_visits(rows: pd.DataFrame, subject: Sequence[str]) -> int:
    """The median number of rows per subject (rounded down); 0 without rows. A subject's own
    curve gets at most this many df minus one.

    Parameters
    ----------
    rows
        The model's rows (:func:`dashboard.analysis.model_builder.model_rows`).
    subject
        The subject's grouping column(s) (``(cluster, subject)`` for nested ids).
    """
    if rows.empty:
        return 0
    return int(np.floor(rows.groupby(list(subject), observed=True).size().median()))


def basis_of(node: Node) -> BasisCall | None:
    """The options of a spline or polynomial call (``ns``, ``bs``, ``poly``), or ``None`` for
    any other expression."""
    node = strip_parens(node)
    if isinstance(node, Call) and node.func in BASIS_FUNCTIONS:
        return basis_call(node)  # already checked by the parser: no error here
    return None


def curve_terms(spec: ModelSpec, random: bool = False) -> list[str]:
    """Labels of the spline and polynomial terms of the fixed part (or, with ``random``, of
    the random-effects terms): ``["ns(Time, 3)"]``. Their coefficients have no meaning one
    by one; together they draw a curve."""
    lists = [r.lhs for r in spec.random] if random else [spec.fixed]
    labels = [v for tl in lists for v in tl.variables if basis_of(tl.exprs[v]) is not None]
    return list(dict.fromkeys(labels))
