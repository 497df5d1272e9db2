"""A parsed formula written back as text, and when two formulas are the same model.

No Streamlit here. :func:`deparse_spec` writes a formula's response and fixed part with
changed random-effects terms (the random-effects ladder and the simpler formula of a singular
fit rewrite them); :func:`model_key` is what two spellings of one model share, so a fit is
found again however its formula was typed.
"""

from __future__ import annotations

from dashboard.analysis.time_shape import basis_of
from lmm_core.formula.grammar import Node, strip_parens
from lmm_core.formula.quoting import deparse, quote_name
from lmm_core.formula.spec import ModelSpec, RandomSpec, TermList
from lmm_core.formula.terms import parse_formula

__all__ = ["CANONICAL_LINK", "deparse_spec", "model_key"]


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


#: the canonical link of each family (a GLMM's key names its link even when left default)
CANONICAL_LINK = {"gaussian": "identity", "binomial": "logit", "poisson": "log"}


def model_key(formula: str | ModelSpec, family: str = "gaussian", link: str | None = None) -> tuple:
    """What makes two formulas the same model, whatever their spelling.

    Spaces, backticks around plain names, the order of terms, ``a * b`` against
    ``a + b + a:b``, ``(t || g)`` against ``(1 | g) + (0 + t | g)``, ``(t | g)`` against
    ``(1 + t | g)`` and the spelling of a spline's options (``ns(t, 3)`` against
    ``ns(t, df = 3)``, ``poly(t, 2)`` against ``poly(t, degree = 2)``) do not matter: the key
    holds the response, the intercept and the set of fixed terms, and the set of random
    terms (group, intercept, terms). ``poly(t, 2, raw = TRUE)`` stays another model than
    ``poly(t, 2)`` (the same curve, other coefficients), as ``I(t/7)`` is not ``t``. The
    covariance structure of the visits (``ar1(visit | patient)``) is part of the key: an AR(1)
    and an unstructured MMRM of the same fixed effects are two models.

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
    residual = None if spec.residual is None else spec.residual.label
    offsets = tuple(sorted(deparse(o) for o in getattr(spec, "offsets", ())))
    kind = (family, link or CANONICAL_LINK.get(family, ""))
    return (deparse(spec.response), terms(spec.fixed), tuple(randoms), residual, offsets, kind)


def _key_text(label: str, node: Node) -> str:
    """A variable as :func:`model_key` compares it: a spline or polynomial by its matched
    options (R's argument matching), anything else by its label."""
    call = basis_of(node)
    if call is None:
        return label
    return f"{deparse(strip_parens(node).arg)} {call!r}"
