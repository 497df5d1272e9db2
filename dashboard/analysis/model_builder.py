"""The Model page's builder: choices -> an lme4 formula and a short label. No Streamlit here.

A model is described by :class:`BuilderChoices`: the outcome, the fixed-effect columns, the
two-way interactions the user added, an optional rescaling of time (:class:`TimeScale`) and
the grouping levels (:class:`GroupLevel`): the subject, optionally a cluster above it
(nested: each subject belongs to one cluster) and optionally a crossed factor (e.g. a rater
who sees many subjects). Each level has a random intercept and/or random slopes on chosen
numeric columns, correlated (``(time | patient)``) or independent (``(time || patient)``).

:func:`build_formula` writes the formula as lme4 users write it, every column name through
:func:`lmm_core.formula.quoting.quote_name`; :func:`formula_label` names a model from its
random-effects structure ("random intercept", "random slope", "random slope + hospital
intercept") and :func:`model_label` adds what else differs ("random slope + Age").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import pandas as pd

from lmm_core.formula.grammar import Call, Name, NAry, Num, strip_parens
from lmm_core.formula.quoting import deparse, quote_name, r_number, unquote_label
from lmm_core.formula.spec import ModelSpec, RandomSpec
from lmm_core.formula.terms import parse_formula

__all__ = [
    "BuilderChoices",
    "GroupLevel",
    "TimeScale",
    "build_formula",
    "deparse_spec",
    "formula_label",
    "ids_repeat_across",
    "group_text",
    "model_key",
    "model_label",
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
    """

    group: str | tuple[str, ...]
    intercept: bool = True
    slopes: tuple[str, ...] = ()
    correlated: bool = True

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
    """

    outcome: str
    fixed: tuple[str, ...] = ()
    interactions: tuple[tuple[str, str], ...] = ()
    levels: tuple[GroupLevel, ...] = field(default_factory=tuple)
    time_scale: TimeScale | None = None


def _variable(column: str, scale: TimeScale | None) -> str:
    """Formula text of a column: quoted when needed, rescaled when it is the scaled time."""
    if scale is not None and column == scale.column and scale.divisor != 1:
        return scale.expression()
    return quote_name(column)


def group_text(columns: Sequence[str]) -> str:
    """Formula text of a grouping factor: ``g``, or ``cluster:subject`` for nested ids."""
    return ":".join(quote_name(part) for part in columns)


def random_term(level: GroupLevel, scale: TimeScale | None = None) -> str:
    """One random-effects term: ``(1 | g)``, ``(t | g)``, ``(t || g)`` or ``(0 + t | g)``.

    Returns an empty string when the level has no random effect.
    """
    if level.n_effects == 0:
        return ""
    group = group_text(level.columns)
    slopes = [_variable(s, scale) for s in level.slopes]
    if not slopes:
        return f"(1 | {group})"
    bar = "|" if level.correlated or level.n_effects == 1 else "||"
    lhs = " + ".join(slopes) if level.intercept else "0 + " + " + ".join(slopes)
    return f"({lhs} {bar} {group})"


def build_formula(choices: BuilderChoices) -> str:
    """The lme4 formula of the builder's choices.

    Main effects first, then each interaction the user added as ``a:b`` (one notation, not
    a mix of ``*`` and ``:``), then the random-effects terms.

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
    scale = choices.time_scale
    parts = [_variable(col, scale) for col in dict.fromkeys(choices.fixed)]
    for a, b in dict.fromkeys(choices.interactions):
        if a != b:
            parts.append(f"{_variable(a, scale)}:{_variable(b, scale)}")
    randoms = [random_term(level, scale) for level in choices.levels]
    randoms = [t for t in randoms if t]
    rhs = " + ".join(parts + randoms) if parts else " + ".join(["1", *randoms])
    return f"{quote_name(choices.outcome)} ~ {rhs}"


def ids_repeat_across(data: pd.DataFrame, subject: str, cluster: str) -> bool:
    """Whether some subject id occurs in more than one cluster.

    Then the ids only name subjects within a cluster (patient 1 of hospital A is not patient 1
    of hospital B) and the subject level must be written ``cluster:subject``.
    """
    pairs = data[[subject, cluster]].dropna().drop_duplicates()
    return bool(pairs[subject].duplicated().any())


# --------------------------------------------------------------------------- labels
def _term_words(term: RandomSpec) -> tuple[bool, list[str]]:
    return term.lhs.intercept, list(term.lhs.labels())


def _merged(spec: ModelSpec) -> dict[str, tuple[bool, list[str], bool]]:
    """Group -> (intercept, slope labels, correlated), merging ``||`` pieces of one group."""
    out: dict[str, tuple[bool, list[str], bool]] = {}
    counts: dict[str, int] = {}
    for term in spec.random:
        icpt, slopes = _term_words(term)
        counts[term.group] = counts.get(term.group, 0) + 1
        if term.group in out:
            old_icpt, old_slopes, _ = out[term.group]
            out[term.group] = (old_icpt or icpt, old_slopes + slopes, False)
        else:
            out[term.group] = (icpt, slopes, True)
    return out


def _describe(intercept: bool, slopes: list[str], correlated: bool) -> str:
    if not slopes:
        return "random intercept"
    noun = "random slope" if len(slopes) == 1 else "random slopes"
    if not intercept:
        return f"{noun} only"
    if not correlated:
        return f"uncorrelated {noun}"
    return noun


def formula_label(formula: str | ModelSpec, subject: str | None = None) -> str:
    """A short name for a model from its random-effects structure.

    The subject's level (``subject``, or the group with the most terms when unknown) is
    described first ("random intercept", "random slope", "uncorrelated random slopes");
    other levels follow as "+ hospital intercept" or "+ hospital slope".

    Parameters
    ----------
    formula
        Formula text or a parsed :class:`lmm_core.formula.spec.ModelSpec`.
    subject
        Name of the subject column, if known.

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec = parse_formula(formula) if isinstance(formula, str) else formula
    groups = _merged(spec)
    if not groups:
        return "no random effects"
    main = None
    if subject is not None:
        columns = {r.group: {v.name for v in r.group_vars} for r in spec.random}
        main = next((g for g in groups if subject in columns[g]), None)
    if main is None:
        main = next(iter(groups))
    words = [_describe(*groups[main])]
    for name, (icpt, slopes, _) in groups.items():
        if name == main:
            continue
        kind = "slope" if slopes else "intercept"
        if slopes and icpt:
            kind = "intercept + slope"
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


def _fixed_words(spec: ModelSpec, time: str | None) -> list[str]:
    """What the fixed part adds to ``outcome ~ time``, as plain words, and how time enters."""
    words: list[str] = []
    divisors: set[float] = set()
    for term in spec.fixed.terms:
        shown = []
        for v in term:
            divisor = _time_divisor(spec.fixed.exprs[v], time)
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
    """A short name that says what distinguishes a model: its random effects, the fixed
    effects beyond time, the method when it is ML.

    ``"random slope"`` for ``y ~ time + (time | id)``; ``"random slope + Age"`` with Age;
    ``"random intercept + Sex + time x Sex (ML)"``; ``"random slope (time/7)"`` with time
    rescaled. A label already in ``taken`` (the labels of the other fits of the data) gets
    ``#2``, ``#3``..., so two fits never share a name.

    Parameters
    ----------
    formula
        Formula text or a parsed :class:`lmm_core.formula.spec.ModelSpec`.
    subject, time
        The subject and time columns, if known.
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
    label = " ".join([formula_label(spec, subject), *_fixed_words(spec, time)])
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
    ``a + b + a:b``, ``(t || g)`` against ``(1 | g) + (0 + t | g)`` and ``(t | g)`` against
    ``(1 + t | g)`` do not matter: the key holds the response, the intercept and the set of
    fixed terms, and the set of random terms (group, intercept, terms).

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec = parse_formula(formula) if isinstance(formula, str) else formula

    def terms(tl) -> tuple:
        return tl.intercept, tuple(sorted(tuple(sorted(t)) for t in tl.terms))

    randoms = sorted((r.group, terms(r.lhs)) for r in spec.random)
    return (deparse(spec.response), terms(spec.fixed), tuple(randoms))
