"""The Model page's builder: choices -> an lme4 formula and a short label. No Streamlit here.

A model is described by :class:`BuilderChoices`: the outcome, the fixed-effect columns, the
two-way interactions the user added, the shape of the population curve over time
(:class:`TimeShape`: a straight line, a quadratic ``poly(time, 2)`` or a natural spline
``ns(time, k)``), an optional rescaling of time (:class:`TimeScale`, for straight lines only)
and the grouping levels (:class:`GroupLevel`): the subject, optionally a cluster above it
(nested: each subject belongs to one cluster) and optionally a crossed factor (e.g. a rater
who sees many subjects). Each level has a random intercept and/or random slopes on chosen
numeric columns, correlated (``(time | patient)``) or independent (``(time || patient)``); a
level's random slope on time may be a curve of its own (``(ns(time, 2) | patient)``).

:func:`build_formula` writes the formula as lme4 users write it, every column name through
:func:`lmm_core.formula.quoting.quote_name`; :func:`formula_label` names a model from its
shape of time and random-effects structure ("random intercept", "random slope", "quadratic +
random slope", "natural spline (3 df) + random curve (2 df)") and :func:`model_label` adds
what else differs ("random slope + Age"). :func:`shape_options` lists the shapes the data
allow and :func:`spline_basis` learns a spline's knots exactly as the engine will.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dashboard.base.markup import code_span, escape_text
from dashboard.base.numbers import fmt
from lmm_core import DataError
from lmm_core.design.splines import BasisState, learn_basis
from lmm_core.formula.basis_args import BasisCall, basis_call
from lmm_core.formula.grammar import BASIS_FUNCTIONS, Call, Name, NAry, Node, Num, strip_parens
from lmm_core.formula.quoting import deparse, quote_name, r_number, unquote_label
from lmm_core.formula.spec import ModelSpec, RandomSpec, TermList
from lmm_core.formula.terms import parse_formula

__all__ = [
    "BuilderChoices",
    "GroupLevel",
    "TimeScale",
    "TimeShape",
    "build_formula",
    "curve_terms",
    "deparse_spec",
    "flexibility_note",
    "formula_label",
    "group_text",
    "ids_repeat_across",
    "knots_text",
    "model_key",
    "model_label",
    "model_rows",
    "random_term",
    "shape_note",
    "shape_options",
    "spline_basis",
    "time_scales",
    "time_unit",
    "typical_visits",
]


@dataclass(frozen=True)
class TimeScale:
    """Time divided by a constant in the formula, so that its coefficients are per ``unit``.

    Written ``I(time/divisor)``: the data stay as they are (every page keeps its time axis and
    predictions vary the time column itself), and R reads the same formula.

    Attributes
    ----------
    column
        The time column.
    divisor
        What time is divided by (7 turns days into weeks).
    unit
        The unit of the result, for labels (``"week"``); empty when unknown.
    """

    column: str
    divisor: float
    unit: str = ""

    def expression(self) -> str:
        """``I(`Visit day`/7)``: the formula text of the rescaled time."""
        return f"I({quote_name(self.column)}/{r_number(self.divisor)})"


#: unit word -> (singular, [(larger unit, how many of this unit it holds), ...])
_UNITS = {
    "minute": [("hour", 60.0), ("day", 1440.0)],
    "hour": [("day", 24.0), ("week", 168.0)],
    "day": [("week", 7.0), ("month", 30.4375), ("year", 365.25)],
    "week": [("month", 30.4375 / 7), ("year", 365.25 / 7)],
    "month": [("year", 12.0)],
    "year": [("decade", 10.0)],
}
_UNIT_WORD = re.compile(r"\b(minute|hour|day|week|month|year)s?\b", re.IGNORECASE)


def time_unit(column: str, unit_text: str = "") -> str:
    """The unit of a time column (``"day"``, ``"week"``...) from its unit text or its name.

    ``""`` when neither says it.
    """
    for text in (unit_text, column):
        found = _UNIT_WORD.search(str(text or "").replace("_", " "))
        if found:
            return found.group(1).lower()
    return ""


def time_scales(column: str, unit_text: str = "") -> list[TimeScale]:
    """The rescalings worth offering for a time column: per week, month, year for days...

    Empty when the unit is unknown (the page then asks for a divisor).
    """
    unit = time_unit(column, unit_text)
    return [TimeScale(column, div, larger) for larger, div in _UNITS.get(unit, [])]


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


def _floats(values: np.ndarray | pd.Series | Sequence[float]) -> np.ndarray:
    """Numbers as a float array, missing values (NaN, ``pd.NA``) as NaN."""
    return pd.Series(values).to_numpy(dtype=float, na_value=np.nan)


def shape_options(
    column: str, times: np.ndarray | pd.Series, max_df: int | None = None
) -> list[TimeShape]:
    """The shapes of time the data allow, least flexible first.

    A straight line always; a quadratic with 3 or more distinct times; a natural spline with
    ``k`` df for ``2 <= k <= MAX_SPLINE_DF`` when ``k`` is less than the number of distinct
    times and the engine can place its quantile knots (distinct, with data between them: see
    :func:`lmm_core.design.splines.learn_basis`). ``max_df`` bounds the df further (for a
    patient's own curve: the typical number of visits per patient minus one).

    Parameters
    ----------
    column
        The time column.
    times
        Its values: the whole column, as the engine learns a basis from (NaN ignored).
    max_df
        Largest df offered, or ``None``.
    """
    values = _floats(times)
    values = values[np.isfinite(values)]
    limit = min(np.unique(values).size - 1, MAX_SPLINE_DF)
    if max_df is not None:
        limit = min(limit, max_df)
    shapes = [TimeShape.line(column)]
    if limit >= 2:
        shapes.append(TimeShape.quadratic(column))
    for k in range(2, limit + 1):
        shape = TimeShape.spline(column, k)
        try:
            spline_basis(shape, values)
        except DataError:  # quantile knots coincide on these times
            continue
        shapes.append(shape)
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
    return learn_basis(call, _floats(times), shape.expression())


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


@dataclass(frozen=True)
class GroupLevel:
    """Random effects of one grouping level.

    Attributes
    ----------
    group
        Grouping column (``"patient"``), or a pair ``(cluster, subject)`` for a subject id
        that is only unique within its cluster (written ``hospital:patient_in_hospital``).
        A single name is always one column, even when it contains ``:``.
    intercept
        A random intercept: each group has its own baseline.
    slopes
        Numeric columns with a random slope: each group has its own rate of change.
    correlated
        Whether intercepts and slopes of a group may be correlated (``|``) or are independent
        (``||``). Irrelevant with fewer than two random effects.
    curve
        The shape of each group's own curve along ``curve.column`` when that column is among
        ``slopes`` (``(ns(time, 2) | patient)``); ``None`` or a straight line: a slope.
    """

    group: str | tuple[str, ...]
    intercept: bool = True
    slopes: tuple[str, ...] = ()
    correlated: bool = True
    curve: TimeShape | None = None

    @property
    def n_effects(self) -> int:
        """Number of random effects per group."""
        return int(self.intercept) + len(self.slopes)

    @property
    def columns(self) -> tuple[str, ...]:
        """The grouping column(s)."""
        return (self.group,) if isinstance(self.group, str) else tuple(self.group)


@dataclass(frozen=True)
class BuilderChoices:
    """Everything the builder asks.

    Attributes
    ----------
    outcome
        The response column.
    fixed
        Columns entered as fixed effects (main effects), in order.
    interactions
        Pairs of fixed-effect columns whose interaction the user added (``time:arm``).
    levels
        Grouping levels, the subject first; levels without any random effect are skipped.
    time_scale
        Time rescaled in the formula (fixed effect and random slopes alike), or ``None``.
        Only used when the population curve is a straight line: a spline or polynomial basis
        has no unit, so a curved ``shape`` writes time as it is everywhere.
    shape
        The shape of the population curve along ``shape.column`` (the time column among
        ``fixed``), carried by its interactions too (``ns(time, 3):arm``); ``None``: a line.
    """

    outcome: str
    fixed: tuple[str, ...] = ()
    interactions: tuple[tuple[str, str], ...] = ()
    levels: tuple[GroupLevel, ...] = field(default_factory=tuple)
    time_scale: TimeScale | None = None
    shape: TimeShape | None = None


def _variable(column: str, scale: TimeScale | None, shape: TimeShape | None = None) -> str:
    """Formula text of a column: its curve when it is the shaped time, else quoted when
    needed and rescaled when it is the scaled time."""
    if shape is not None and column == shape.column and shape.curved:
        return shape.expression()
    if scale is not None and column == scale.column and scale.divisor != 1:
        return scale.expression()
    return quote_name(column)


def group_text(columns: Sequence[str]) -> str:
    """Formula text of a grouping factor: ``g``, or ``cluster:subject`` for nested ids."""
    return ":".join(quote_name(part) for part in columns)


def random_term(level: GroupLevel, scale: TimeScale | None = None) -> str:
    """One random-effects term: ``(1 | g)``, ``(t | g)``, ``(t || g)``, ``(0 + t | g)``, or
    with the level's curve ``(ns(t, 2) | g)``.

    Returns an empty string when the level has no random effect.
    """
    if level.n_effects == 0:
        return ""
    group = group_text(level.columns)
    slopes = [_variable(s, scale, level.curve) for s in level.slopes]
    if not slopes:
        return f"(1 | {group})"
    bar = "|" if level.correlated or level.n_effects == 1 else "||"
    lhs = " + ".join(slopes) if level.intercept else "0 + " + " + ".join(slopes)
    return f"({lhs} {bar} {group})"


def build_formula(choices: BuilderChoices) -> str:
    """The lme4 formula of the builder's choices.

    Main effects first, then each interaction the user added as ``a:b`` (one notation, not
    a mix of ``*`` and ``:``), then the random-effects terms. The shaped time is written as
    its curve wherever it enters the fixed part (``ns(time, 3) + arm + ns(time, 3):arm``),
    and each level's slope on time as that level's curve. The time scale applies only when
    the population curve is a straight line.

    Raises
    ------
    lmm_core.FormulaError
        When a column name cannot be written in a formula (see
        :func:`lmm_core.formula.quoting.quote_name`).

    Examples
    --------
    >>> build_formula(BuilderChoices("y", ("time", "arm"), (("time", "arm"),),
    ...     (GroupLevel("patient", slopes=("time",)), GroupLevel("hospital"))))
    'y ~ time + arm + time:arm + (time | patient) + (1 | hospital)'
    """
    shape = choices.shape
    scale = None if shape is not None and shape.curved else choices.time_scale
    parts = [_variable(col, scale, shape) for col in dict.fromkeys(choices.fixed)]
    for a, b in dict.fromkeys(choices.interactions):
        if a != b:
            parts.append(f"{_variable(a, scale, shape)}:{_variable(b, scale, shape)}")
    randoms = [random_term(level, scale) for level in choices.levels]
    randoms = [t for t in randoms if t]
    rhs = " + ".join(parts + randoms) if parts else " + ".join(["1", *randoms])
    return f"{quote_name(choices.outcome)} ~ {rhs}"


def _used_columns(choices: BuilderChoices) -> list[str]:
    """Every column the built formula refers to, once each, in order."""
    columns = [choices.outcome, *choices.fixed, *(c for pair in choices.interactions for c in pair)]
    for level in choices.levels:
        if level.n_effects:
            columns += [*level.columns, *level.slopes]
    return list(dict.fromkeys(columns))


def model_rows(data: pd.DataFrame, choices: BuilderChoices) -> pd.DataFrame:
    """The rows the engine will fit: those with a value in every column of the formula
    (as :func:`lmm_core.design.build.build_design` leaves out rows with missing values).

    A spline's knots are not learned from these rows but from the whole time column (see
    :func:`shape_note`); the rows count the visits per subject (:func:`typical_visits`).
    """
    columns = [c for c in _used_columns(choices) if c in data.columns]
    return data.loc[data[columns].notna().all(axis=1)]


def typical_visits(rows: pd.DataFrame, subject: Sequence[str]) -> int:
    """The median number of rows per subject (rounded down); 0 without rows.

    Parameters
    ----------
    rows
        The model's rows.
    subject
        The subject's grouping column(s) (``(cluster, subject)`` for nested ids).
    """
    if rows.empty:
        return 0
    return int(np.floor(rows.groupby(list(subject), observed=True).size().median()))


def ids_repeat_across(data: pd.DataFrame, subject: str, cluster: str) -> bool:
    """Whether some subject id occurs in more than one cluster.

    Then the ids only name subjects within a cluster (patient 1 of hospital A is not patient 1
    of hospital B) and the subject level must be written ``cluster:subject``.
    """
    pairs = data[[subject, cluster]].dropna().drop_duplicates()
    return bool(pairs[subject].duplicated().any())


# --------------------------------------------------------------------------- labels
def _basis(node: Node) -> BasisCall | None:
    """The options of a spline or polynomial call, or ``None`` for any other expression."""
    node = strip_parens(node)
    if isinstance(node, Call) and node.func in BASIS_FUNCTIONS:
        return basis_call(node)  # already checked by the parser: no error here
    return None


def _basis_df(call: BasisCall) -> int:
    """Number of columns of a basis: its degree (poly), its df, or counted from its knots."""
    if call.func == "poly":
        return call.degree
    if call.df is not None:
        return call.df
    base = 1 if call.func == "ns" else call.degree
    return len(call.knots or ()) + base + int(call.intercept)


def _curve_words(call: BasisCall, random: bool = False) -> str:
    """``"natural spline (3 df)"`` (``"curve (3 df)"`` for a random one), ``"quadratic"``,
    ``"cubic"``, ``"polynomial (degree 4)"``, ``"B-spline (5 df)"``."""
    df = _basis_df(call)
    if call.func == "poly":
        return {2: "quadratic", 3: "cubic"}.get(df, f"polynomial (degree {df})")
    if call.func == "bs":
        return f"B-spline ({df} df)"
    return f"curve ({df} df)" if random else f"natural spline ({df} df)"


def _time_basis(node: Node, time: str | None) -> BasisCall | None:
    """The basis call when ``node`` is a spline or polynomial of ``time`` (or of
    ``I(time/k)``), else ``None``."""
    call = _basis(node)
    if call is None or _time_divisor(strip_parens(node).arg, time) is None:
        return None
    return call


def _guess_time(spec: ModelSpec) -> str | None:
    """The column of the first spline or polynomial of a plain column (fixed part first)."""
    for tl in [spec.fixed, *(r.lhs for r in spec.random)]:
        for v in tl.variables:
            node = strip_parens(tl.exprs[v])
            if _basis(node) is not None and isinstance(strip_parens(node.arg), Name):
                return strip_parens(node.arg).name
    return None


def curve_terms(spec: ModelSpec, random: bool = False) -> list[str]:
    """Labels of the spline and polynomial terms of the fixed part (or, with ``random``, of
    the random-effects terms): ``["ns(Time, 3)"]``. Their coefficients have no meaning one
    by one; together they draw a curve."""
    lists = [r.lhs for r in spec.random] if random else [spec.fixed]
    labels = [v for tl in lists for v in tl.variables if _basis(tl.exprs[v]) is not None]
    return list(dict.fromkeys(labels))


def _slope_words(term: RandomSpec) -> tuple[int, list[str]]:
    """Straight slopes (count) and curves (words: a spline or polynomial of any column) on a
    term's left-hand side."""
    straight, curves = 0, []
    for t in term.lhs.terms:
        call = _basis(term.lhs.exprs[t[0]]) if len(t) == 1 else None
        if call is None:
            straight += 1
        else:
            curves.append(_curve_words(call, random=True))
    return straight, curves


def _merged(spec: ModelSpec) -> dict[str, tuple[bool, int, list[str], bool]]:
    """Group -> (intercept, straight slopes, curves, correlated), merging the ``||`` pieces
    of one group."""
    out: dict[str, tuple[bool, int, list[str], bool]] = {}
    for term in spec.random:
        icpt = term.lhs.intercept
        straight, curves = _slope_words(term)
        if term.group in out:
            old_icpt, old_straight, old_curves, _ = out[term.group]
            out[term.group] = (
                old_icpt or icpt,
                old_straight + straight,
                old_curves + curves,
                False,
            )
        else:
            out[term.group] = (icpt, straight, curves, True)
    return out


def _effects_noun(straight: int, curves: list[str]) -> str:
    """``"slope"``, ``"slopes"``, ``"curve (2 df)"``, ``"quadratic and slope"``."""
    words = list(curves)
    if straight:
        words.append("slope" if straight == 1 else "slopes")
    return " and ".join(words)


def _describe(intercept: bool, straight: int, curves: list[str], correlated: bool) -> str:
    if not straight and not curves:
        return "random intercept"
    noun = f"random {_effects_noun(straight, curves)}"
    if not intercept:
        return f"{noun} only"
    if not correlated:
        return f"uncorrelated {noun}"
    return noun


def _population_words(spec: ModelSpec, time: str | None) -> list[str]:
    """The shape of the population curve when time enters the fixed part as a spline or
    polynomial (``["natural spline (3 df)"]``); empty for a straight line."""
    words = []
    for term in spec.fixed.terms:
        call = _time_basis(spec.fixed.exprs[term[0]], time) if len(term) == 1 else None
        if call is not None:
            words.append(_curve_words(call))
    return words


def formula_label(
    formula: str | ModelSpec, subject: str | None = None, time: str | None = None
) -> str:
    """A short name for a model from its shape of time and random-effects structure.

    A curved population curve is named first ("natural spline (3 df)", "quadratic"; nothing
    for a straight line). The subject's level (``subject``, or the first group when unknown)
    follows ("random intercept", "random slope", "uncorrelated random slopes", "random curve
    (2 df)", "random quadratic"); other levels follow as "+ hospital intercept" or "+
    hospital slope". So ``ns(t, 3) + (ns(t, 2) | id)`` is "natural spline (3 df) + random
    curve (2 df)" and ``poly(t, 2) + (t | id)`` is "quadratic + random slope".

    Parameters
    ----------
    formula
        Formula text or a parsed :class:`lmm_core.formula.spec.ModelSpec`.
    subject
        Name of the subject column, if known.
    time
        Name of the time column, if known (else the column of the first spline or
        polynomial term).

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec = parse_formula(formula) if isinstance(formula, str) else formula
    time = time if time is not None else _guess_time(spec)
    shape = _population_words(spec, time)
    groups = _merged(spec)
    if not groups:
        return " + ".join([*shape, "no random effects"])
    main = None
    if subject is not None:
        columns = {r.group: {v.name for v in r.group_vars} for r in spec.random}
        main = next((g for g in groups if subject in columns[g]), None)
    if main is None:
        main = next(iter(groups))
    words = [*shape, _describe(*groups[main])]
    for name, (icpt, straight, curves, _) in groups.items():
        if name == main:
            continue
        kind = _effects_noun(straight, curves) or "intercept"
        if (straight or curves) and icpt:
            kind = f"intercept + {kind}"
        words.append(f"{unquote_label(name)} {kind}")
    return " + ".join(words)


MAX_FIXED_CHARS = 32  # fixed terms named in a model label up to this length; more counted
MAX_TERM_CHARS = 24  # a longer term is cut


def _time_divisor(node: object, time: str | None) -> float | None:
    """1 for the time column itself, k for ``I(time/k)``, else ``None``."""
    node = strip_parens(node)
    if isinstance(node, Name):
        return 1.0 if node.name == time else None
    if not (isinstance(node, Call) and node.func == "I"):
        return None
    arg = strip_parens(node.arg)
    if (
        isinstance(arg, NAry)
        and arg.ops == ("/",)
        and isinstance(strip_parens(arg.items[0]), Name)
        and strip_parens(arg.items[0]).name == time
        and isinstance(strip_parens(arg.items[1]), Num)
    ):
        return strip_parens(arg.items[1]).value
    return None


def _how_time_enters(node: Node, time: str | None) -> float | None:
    """The divisor of time when ``node`` is time, ``I(time/k)`` or a curve of either."""
    if _time_basis(node, time) is not None:
        return _time_divisor(strip_parens(node).arg, time)
    return _time_divisor(node, time)


def _fixed_words(spec: ModelSpec, time: str | None) -> list[str]:
    """What the fixed part adds to ``outcome ~ time``, as plain words, and how time enters
    (a curve of time counts as time: its shape is named by :func:`formula_label`)."""
    words: list[str] = []
    divisors: set[float] = set()
    for term in spec.fixed.terms:
        shown = []
        for v in term:
            divisor = _how_time_enters(spec.fixed.exprs[v], time)
            if divisor is not None:
                divisors.add(divisor)
            shown.append(unquote_label(v) if divisor is None else str(time))
        if len(term) > 1 or shown[0] != time:
            words.append(" x ".join(shown))
    words = [w if len(w) <= MAX_TERM_CHARS else w[: MAX_TERM_CHARS - 3] + "..." for w in words]
    shown = 0
    while shown < len(words) and len(" + ".join(words[: shown + 1])) <= MAX_FIXED_CHARS:
        shown += 1
    if shown < len(words):
        shown = max(shown, 1)
        rest = len(words) - shown
        words = [*words[:shown], f"{rest} more term{'s' if rest > 1 else ''}"]
    words = [f"+ {w}" for w in words]
    if time is not None and not divisors:
        words.insert(0, f"without {time}")
    elif divisors - {1.0}:
        words.append(f"({time}/{r_number(max(divisors - {1.0}))})")
    return words


def model_label(
    formula: str | ModelSpec,
    subject: str | None = None,
    time: str | None = None,
    *,
    reml: bool = True,
    taken: Collection[str] = (),
) -> str:
    """A short name that says what distinguishes a model: its shape of time, its random
    effects, the fixed effects beyond time, the method when it is ML.

    ``"random slope"`` for ``y ~ time + (time | id)``; ``"random slope + Age"`` with Age;
    ``"random intercept + Sex + time x Sex (ML)"``; ``"random slope (time/7)"`` with time
    rescaled; ``"natural spline (3 df) + random curve (2 df) + arm + time x arm"`` for
    ``y ~ ns(time, 3) * arm + (ns(time, 2) | id)``. A label already in ``taken`` (the labels
    of the other fits of the data) gets ``#2``, ``#3``..., so two fits never share a name.

    Parameters
    ----------
    formula
        Formula text or a parsed :class:`lmm_core.formula.spec.ModelSpec`.
    subject, time
        The subject and time columns, if known (without ``time``, the column of the first
        spline or polynomial term counts as time).
    reml
        Whether the model is fitted by REML (the default, not mentioned).
    taken
        Labels already in use.

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec = parse_formula(formula) if isinstance(formula, str) else formula
    time = time if time is not None else _guess_time(spec)
    label = " ".join([formula_label(spec, subject, time), *_fixed_words(spec, time)])
    if not reml:
        label += " (ML)"
    candidate, k = label, 1
    while candidate in taken:
        k += 1
        candidate = f"{label} #{k}"
    return candidate


def deparse_spec(spec: ModelSpec, random: list[tuple[RandomSpec, tuple[str, ...], bool]]) -> str:
    """Formula text of ``spec``'s response and fixed part with the given random terms.

    Parameters
    ----------
    spec
        The parsed formula whose response and fixed effects are kept.
    random
        ``(term, lhs labels, intercept)`` per random term to write (possibly changed).
    """
    fixed = list(spec.fixed.labels())
    if not spec.fixed.intercept:
        fixed = ["0", *fixed]
    elif not fixed:
        fixed = ["1"]
    terms = []
    for term, labels, intercept in random:
        if not labels and not intercept:
            continue
        lhs = " + ".join(labels) if intercept else " + ".join(["0", *labels])
        lhs = lhs or "1"
        group = ":".join(quote_name(g.name) for g in term.group_vars)
        terms.append(f"({lhs} | {group})")
    return f"{deparse(spec.response)} ~ " + " + ".join(fixed + terms)


def model_key(formula: str | ModelSpec) -> tuple:
    """What makes two formulas the same model, whatever their spelling.

    Spaces, backticks around plain names, the order of terms, ``a * b`` against
    ``a + b + a:b``, ``(t || g)`` against ``(1 | g) + (0 + t | g)``, ``(t | g)`` against
    ``(1 + t | g)`` and the spelling of a spline's options (``ns(t, 3)`` against
    ``ns(t, df = 3)``, ``poly(t, 2)`` against ``poly(t, degree = 2)``) do not matter: the key
    holds the response, the intercept and the set of fixed terms, and the set of random
    terms (group, intercept, terms). ``poly(t, 2, raw = TRUE)`` stays another model than
    ``poly(t, 2)`` (the same curve, other coefficients), as ``I(t/7)`` is not ``t``.

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec = parse_formula(formula) if isinstance(formula, str) else formula

    def terms(tl: TermList) -> tuple:
        name = {v: _key_text(v, tl.exprs[v]) for v in tl.variables}
        return tl.intercept, tuple(sorted(tuple(sorted(name[v] for v in t)) for t in tl.terms))

    randoms = sorted((r.group, terms(r.lhs)) for r in spec.random)
    return (deparse(spec.response), terms(spec.fixed), tuple(randoms))


def _key_text(label: str, node: Node) -> str:
    """A variable as :func:`model_key` compares it: a spline or polynomial by its matched
    options (R's argument matching), anything else by its label."""
    call = _basis(node)
    if call is None:
        return label
    return f"{deparse(strip_parens(node).arg)} {call!r}"
