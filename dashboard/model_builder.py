"""The Model page's builder: choices -> an lme4 formula and a short label. No Streamlit here.

A model is described by :class:`BuilderChoices`: the outcome, the fixed-effect columns, the
two-way interactions, and the grouping levels (:class:`GroupLevel`): the subject, optionally
a cluster above it (nested: each subject belongs to one cluster) and optionally a crossed
factor (e.g. a rater who sees many subjects). Each level has a random intercept and/or random
slopes on chosen numeric columns, correlated (``(time | patient)``) or independent
(``(time || patient)``).

:func:`build_formula` writes the formula as lme4 users write it, and :func:`formula_label`
names a model from its random-effects structure ("random intercept", "random slope",
"random slope + hospital intercept"), for any formula, typed or built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from lmm_core.formula import ModelSpec, RandomSpec, parse_formula

__all__ = [
    "BuilderChoices",
    "GroupLevel",
    "build_formula",
    "deparse_spec",
    "formula_label",
    "ids_repeat_across",
    "quote",
    "random_term",
]

_PLAIN_NAME = re.compile(r"^[A-Za-z._][A-Za-z0-9._]*$")


def quote(name: str) -> str:
    """A column name as the formula grammar reads it (backticks around unusual names)."""
    return name if _PLAIN_NAME.match(name) else f"`{name}`"


@dataclass(frozen=True)
class GroupLevel:
    """Random effects of one grouping level.

    Attributes
    ----------
    group
        Grouping column (``"patient"``), or a ``":"``-joined pair for a subject id that is
        only unique within its cluster (``"hospital:patient_in_hospital"``).
    intercept
        A random intercept: each group has its own baseline.
    slopes
        Numeric columns with a random slope: each group has its own rate of change.
    correlated
        Whether intercepts and slopes of a group may be correlated (``|``) or are independent
        (``||``). Irrelevant with fewer than two random effects.
    """

    group: str
    intercept: bool = True
    slopes: tuple[str, ...] = ()
    correlated: bool = True

    @property
    def n_effects(self) -> int:
        """Number of random effects per group."""
        return int(self.intercept) + len(self.slopes)


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
        Pairs of fixed-effect columns whose interaction is added (``time:arm``).
    levels
        Grouping levels, the subject first; levels without any random effect are skipped.
    """

    outcome: str
    fixed: tuple[str, ...] = ()
    interactions: tuple[tuple[str, str], ...] = ()
    levels: tuple[GroupLevel, ...] = field(default_factory=tuple)


def random_term(level: GroupLevel) -> str:
    """One random-effects term: ``(1 | g)``, ``(t | g)``, ``(t || g)`` or ``(0 + t | g)``.

    Returns an empty string when the level has no random effect.
    """
    if level.n_effects == 0:
        return ""
    group = ":".join(quote(part) for part in level.group.split(":"))
    slopes = [quote(s) for s in level.slopes]
    if not slopes:
        return f"(1 | {group})"
    bar = "|" if level.correlated or level.n_effects == 1 else "||"
    lhs = " + ".join(slopes) if level.intercept else "0 + " + " + ".join(slopes)
    return f"({lhs} {bar} {group})"


def build_formula(choices: BuilderChoices) -> str:
    """The lme4 formula of the builder's choices.

    An interaction whose two columns are both fixed effects is written ``a * b`` in place of
    ``a + b``; other interactions are added as ``a:b``.

    Examples
    --------
    >>> build_formula(BuilderChoices("y", ("time", "arm"), (("time", "arm"),),
    ...     (GroupLevel("patient", slopes=("time",)), GroupLevel("hospital"))))
    'y ~ time * arm + (time | patient) + (1 | hospital)'
    """
    fixed = list(dict.fromkeys(choices.fixed))
    parts: list[str] = []
    used: set[str] = set()
    extra: list[str] = []
    for a, b in choices.interactions:
        if a == b:
            continue
        if a in fixed and b in fixed and a not in used and b not in used:
            parts.append(f"{quote(a)} * {quote(b)}")
            used.update((a, b))
        else:
            extra.append(f"{quote(a)}:{quote(b)}")
    for col in fixed:
        if col not in used:
            parts.append(quote(col))
    parts.extend(extra)
    randoms = [t for t in (random_term(level) for level in choices.levels) if t]
    rhs = " + ".join(parts + randoms) if parts else " + ".join(["1", *randoms])
    return f"{quote(choices.outcome)} ~ {rhs}"


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
        Formula text or a parsed :class:`lmm_core.formula.ModelSpec`.
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
        for name in groups:
            if name == subject or subject in name.split(":"):
                main = name
                break
    if main is None:
        main = next(iter(groups))
    words = [_describe(*groups[main])]
    for name, (icpt, slopes, _) in groups.items():
        if name == main:
            continue
        kind = "slope" if slopes else "intercept"
        if slopes and icpt:
            kind = "intercept + slope"
        words.append(f"{name} {kind}")
    return " + ".join(words)


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
        group = ":".join(quote(g.name) for g in term.group_vars)
        terms.append(f"({lhs} | {group})")
    return f"{spec.response_label} ~ " + " + ".join(fixed + terms)
