"""The parsed model: fixed-effects term list, random-effects terms and the whole formula.

Plain records built by :func:`lmm_core.formula.terms.build_spec` from the syntax tree of
:mod:`lmm_core.formula.grammar`; :mod:`lmm_core.design` evaluates them on data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmm_core.formula.grammar import Call, Name, Node, names_in, strip_parens
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
    coordinates
        Every coordinate column: ``(visit,)``, or for ``sp_exp(x, y | subject)`` the columns
        ``(x, y)`` whose Euclidean distances the structure uses (``visit`` is the first).
    """

    structure: str
    visit: Name
    subject: Name
    group: Name | None
    pos: int
    coordinates: tuple[Name, ...] = ()

    def __post_init__(self) -> None:
        if not self.coordinates:
            object.__setattr__(self, "coordinates", (self.visit,))

    @property
    def label(self) -> str:
        """The term as written by mmrm: ``us(AVISIT | USUBJID)``, ``sp_exp(x, y | id)``."""
        by = f"{quote_name(self.group.name)} / " if self.group else ""
        coords = ", ".join(quote_name(c.name) for c in self.coordinates)
        return f"{self.structure}({coords} | {by}{quote_name(self.subject.name)})"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed formula: response, fixed part, random terms (in formula order), at most
    one residual covariance structure, and the offsets.

    ``offsets`` are the ``offset(expr)`` calls of the right-hand side in formula order; the
    model's offset is the sum of their arguments (R's ``model.offset``). A response written
    ``cbind(successes, failures)`` is a binomial count: :attr:`cbind` gives its two
    expressions.
    """

    text: str
    response: Node
    response_label: str
    fixed: TermList
    random: tuple[RandomSpec, ...]
    residual: ResidualSpec | None = None
    offsets: tuple[Call, ...] = ()

    @property
    def cbind(self) -> tuple[Node, Node] | None:
        """``(successes, failures)`` of a ``cbind(s, f)`` response, else ``None``."""
        inner = strip_parens(self.response)
        if isinstance(inner, Call) and inner.func == "cbind":
            return inner.arg, inner.extra[0]
        return None

    def column_refs(self) -> list[Name]:
        """Every column reference (response, fixed, random lhs, grouping, offsets), in text
        order."""
        refs = names_in(self.response)
        for call in self.offsets:
            refs.extend(names_in(call.arg))
        for tl in [self.fixed] + [r.lhs for r in self.random]:
            for v in tl.variables:
                refs.extend(names_in(tl.exprs[v]))
        for r in self.random:
            refs.extend(r.group_vars)
        if self.residual is not None:
            res = self.residual
            refs.extend(nm for nm in (*res.coordinates, res.group, res.subject) if nm is not None)
        return sorted(refs, key=lambda nm: nm.pos)
