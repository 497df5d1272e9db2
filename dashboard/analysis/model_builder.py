"""The Model page's builder: choices -> an lme4 formula. No Streamlit here.

A model is described by :class:`BuilderChoices`: the outcome, the fixed-effect columns, the
two-way interactions the user added, the shape of the population curve over time
(:class:`dashboard.analysis.time_shape.TimeShape`: a straight line, a quadratic
``poly(time, 2)`` or a natural spline ``ns(time, k)``), an optional rescaling of time
(:class:`TimeScale`, for straight lines only) and the grouping levels (:class:`GroupLevel`):
the subject, optionally a cluster above it (nested: each subject belongs to one cluster) and
optionally a crossed factor (e.g. a rater who sees many subjects). Each level has a random
intercept and/or random slopes on chosen numeric columns, correlated (``(time | patient)``)
or independent (``(time || patient)``); a level's random slope on time may be a curve of its
own (``(ns(time, 2) | patient)``). Instead of the subject's random effects, the visits of a
subject may have a covariance structure (:class:`VisitStructure`, mmrm's
``ar1(visit | patient)``: an MMRM); random effects of higher levels stay.

:func:`build_formula` writes the formula as lme4 users write it, every column name through
:func:`lmm_core.formula.quoting.quote_name`; :func:`model_rows` are the rows the engine will
fit. The shapes the data allow are in :mod:`dashboard.analysis.time_shape`, a model's name
from its formula in :mod:`dashboard.analysis.model_label`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from dashboard.analysis.time_shape import TimeShape
from lmm_core.formula.quoting import quote_name, r_number

__all__ = [
    "BuilderChoices",
    "GroupLevel",
    "TimeScale",
    "VisitStructure",
    "build_formula",
    "replaced_levels",
    "group_text",
    "ids_repeat_across",
    "model_rows",
    "random_term",
    "time_scales",
    "time_unit",
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
class VisitStructure:
    """A covariance structure of a subject's visits: mmrm's ``ar1(visit | patient)``.

    Attributes
    ----------
    structure
        mmrm's name: ``us``, ``ar1``, ``ar1h``, ``cs``, ``toep``, ``ad``...
    visit
        The visit column (a factor: its values index the visits).
    subject
        The subject column: each subject's visits share one covariance matrix.
    """

    structure: str
    visit: str
    subject: str

    def term(self) -> str:
        """``ar1(visit | patient)`` with quoted names."""
        return f"{self.structure}({quote_name(self.visit)} | {quote_name(self.subject)})"


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
    visits
        A covariance structure of the subject's visits (an MMRM), or ``None``: it replaces
        the random effects of the subject's level (:func:`replaced_levels`).
    shape
        The shape of the population curve along ``shape.column`` (the time column among
        ``fixed``), carried by its interactions too (``ns(time, 3):arm``); ``None``: a line.
    exposure
        For a Poisson model of counts, the column of each row's exposure (time at risk):
        written ``offset(log(exposure))`` so the model describes rates per unit of exposure;
        ``None``: no offset.
    """

    outcome: str
    fixed: tuple[str, ...] = ()
    interactions: tuple[tuple[str, str], ...] = ()
    levels: tuple[GroupLevel, ...] = field(default_factory=tuple)
    time_scale: TimeScale | None = None
    shape: TimeShape | None = None
    visits: VisitStructure | None = None
    exposure: str | None = None


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
    >>> build_formula(BuilderChoices("y", ("visit",), levels=(GroupLevel("patient"),),
    ...     visits=VisitStructure("ar1", "visit", "patient")))
    'y ~ visit + ar1(visit | patient)'
    >>> build_formula(BuilderChoices("n", ("arm",), levels=(GroupLevel("patient"),),
    ...     exposure="days at risk"))
    'n ~ arm + offset(log(`days at risk`)) + (1 | patient)'
    """
    shape = choices.shape
    scale = None if shape is not None and shape.curved else choices.time_scale
    parts = [_variable(col, scale, shape) for col in dict.fromkeys(choices.fixed)]
    for a, b in dict.fromkeys(choices.interactions):
        if a != b:
            parts.append(f"{_variable(a, scale, shape)}:{_variable(b, scale, shape)}")
    if choices.exposure is not None:
        parts.append(f"offset(log({quote_name(choices.exposure)}))")
    replaced = replaced_levels(choices)
    randoms = [random_term(level, scale) for level in choices.levels if level not in replaced]
    randoms = [t for t in randoms if t]
    if choices.visits is not None:
        randoms.append(choices.visits.term())
    rhs = " + ".join(parts + randoms) if parts else " + ".join(["1", *randoms])
    return f"{quote_name(choices.outcome)} ~ {rhs}"


def replaced_levels(choices: BuilderChoices) -> tuple[GroupLevel, ...]:
    """The levels whose random effects a covariance structure of the visits replaces: those
    of the structure's subject (``(time | patient)`` and ``ar1(visit | patient)`` both model
    the correlation of one patient's visits; mmrm takes the covariance alone). Levels above
    the subject (the hospital) keep theirs."""
    if choices.visits is None:
        return ()
    subject = choices.visits.subject
    return tuple(lv for lv in choices.levels if lv.n_effects and lv.columns[-1] == subject)


def _used_columns(choices: BuilderChoices) -> list[str]:
    """Every column the built formula refers to, once each, in order."""
    columns = [choices.outcome, *choices.fixed, *(c for pair in choices.interactions for c in pair)]
    replaced = replaced_levels(choices)
    for level in choices.levels:
        if level.n_effects and level not in replaced:
            columns += [*level.columns, *level.slopes]
    if choices.visits is not None:
        columns += [choices.visits.visit, choices.visits.subject]
    return list(dict.fromkeys(columns))


def model_rows(data: pd.DataFrame, choices: BuilderChoices) -> pd.DataFrame:
    """The rows the engine will fit: those with a value in every column of the formula
    (as :func:`lmm_core.design.build.build_design` leaves out rows with missing values).

    A spline's knots are not learned from these rows but from the whole time column (see
    :func:`dashboard.analysis.time_shape.shape_note`); the rows count the visits per subject
    (:func:`dashboard.analysis.time_shape.typical_visits`).
    """
    columns = [c for c in _used_columns(choices) if c in data.columns]
    return data.loc[data[columns].notna().all(axis=1)]


def ids_repeat_across(data: pd.DataFrame, subject: str, cluster: str) -> bool:
    """Whether some subject id occurs in more than one cluster.

    Then the ids only name subjects within a cluster (patient 1 of hospital A is not patient 1
    of hospital B) and the subject level must be written ``cluster:subject``.
    """
    pairs = data[[subject, cluster]].dropna().drop_duplicates()
    return bool(pairs[subject].duplicated().any())
