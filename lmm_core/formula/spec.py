"""The parsed model: fixed-effects term list, random-effects terms and the whole formula.

Plain records built by :func:`lmm_core.formula.terms.build_spec` from the syntax tree of
:mod:`lmm_core.formula.grammar`; :mod:`lmm_core.design` evaluates them on data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmm_core.formula.grammar import Name, Node, names_in
from lmm_core.formula.quoting import quote_name


@dataclass(frozen=True)
class TermList:
    """R's ``terms`` of a one-sided formula: intercept flag and ordered terms.

    Attributes
    ----------
    intercept
        Whether the model matrix has an ``(Intercept)`` column.
    terms
        Each term is a tuple of variable labels in variable order; terms sorted by degree.
    variables
        Every variable label in order of first appearance (R's ``variables`` attribute).
    exprs
        Syntax tree of each variable, keyed by label.
    """

    intercept: bool
    terms: tuple[tuple[str, ...], ...]
    variables: tuple[str, ...]
    exprs: dict[str, Node] = field(compare=False, repr=False)

    def labels(self) -> tuple[str, ...]:
        """R's ``term.labels``: ``("age", "Sex", "age:Sex")``."""
        return tuple(":".join(t) for t in self.terms)


@dataclass(frozen=True)
class RandomSpec:
    """One random-effects term after ``||`` and ``/`` expansion.

    Attributes
    ----------
    lhs
        Terms of the left-hand side (its own intercept rule).
    group_vars
        Grouping columns in level-label order (``("cask", "batch")`` for ``cask:batch``).
    group
        lme4's group name (``"Subject"``, ``"cask:batch"``, ``"c:(b:a)"``).
    pos
        Position of the term in the formula text.
    """

    lhs: TermList
    group_vars: tuple[Name, ...]
    group: str
    pos: int


@dataclass(frozen=True)
class ResidualSpec:
    """The covariance structure of a subject's visits: ``us(visit | subject)``.

    Attributes
    ----------
    structure
        mmrm's name (``"us"``, ``"ar1"``, ``"toeph"``, ...).
    visit
        The visit column (a factor whose level order is the order of the visits; for
        ``sp_exp`` a numeric time).
    subject
        The subject column.
    group
        For ``us(visit | arm / subject)``: the column whose levels get separate covariances.
    pos
        Position of the term in the formula text.
    """

    structure: str
    visit: Name
    subject: Name
    group: Name | None
    pos: int

    @property
    def label(self) -> str:
        """The term as written by mmrm: ``us(AVISIT | USUBJID)``."""
        by = f"{quote_name(self.group.name)} / " if self.group else ""
        return (
            f"{self.structure}({quote_name(self.visit.name)} | {by}{quote_name(self.subject.name)})"
        )


@dataclass(frozen=True)
class ModelSpec:
    """A parsed formula: response, fixed part, random terms (in formula order) and at most
    one residual covariance structure."""

    text: str
    response: Node
    response_label: str
    fixed: TermList
    random: tuple[RandomSpec, ...]
    residual: ResidualSpec | None = None

    def column_refs(self) -> list[Name]:
        """Every column reference (response, fixed, random lhs, grouping), in text order."""
        refs = names_in(self.response)
        for tl in [self.fixed] + [r.lhs for r in self.random]:
            for v in tl.variables:
                refs.extend(names_in(tl.exprs[v]))
        for r in self.random:
            refs.extend(r.group_vars)
        if self.residual is not None:
            res = self.residual
            refs.extend(nm for nm in (res.visit, res.group, res.subject) if nm is not None)
        return sorted(refs, key=lambda nm: nm.pos)
