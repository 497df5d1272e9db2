"""The parsed model: fixed-effects term list, random-effects terms and the whole formula.

Plain records built by :func:`lmm_core.formula.terms.build_spec` from the syntax tree of
:mod:`lmm_core.formula.grammar`; :mod:`lmm_core.design` evaluates them on data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmm_core.formula.grammar import Name, Node, names_in


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
class ModelSpec:
    """A parsed formula: response, fixed part and random terms (in formula order)."""

    text: str
    response: Node
    response_label: str
    fixed: TermList
    random: tuple[RandomSpec, ...]

    def column_refs(self) -> list[Name]:
        """Every column reference (response, fixed, random lhs, grouping), in text order."""
        refs = names_in(self.response)
        for tl in [self.fixed] + [r.lhs for r in self.random]:
            for v in tl.variables:
                refs.extend(names_in(tl.exprs[v]))
        for r in self.random:
            refs.extend(r.group_vars)
        return sorted(refs, key=lambda nm: nm.pos)
