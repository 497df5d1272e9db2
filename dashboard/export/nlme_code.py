"""R code for random effects above the subject together with a covariance structure of the
subject's visits (``y ~ time * arm + (1 | hospital) + ar1(visit | patient)``): R's ``mmrm``
cannot fit them, ``nlme::lme`` can. Pure (no Streamlit).

The model is ``y = X beta + Z b + e`` with ``b ~ N(0, G)`` and, within a subject, ``e ~
N(0, Sigma)`` of the structure. ``lme`` writes ``Sigma = sigma^2 A^1/2 R A^1/2``: a correlation
``R`` (``correlation =``, grouped by the random effects' groups and then the subject,
``~ t | hospital/patient``) and variance weights ``A`` (``weights = varIdent(form = ~ 1 |
visit)``: one SD per visit). mmrm's structures map to them as follows:

=========  ==========================================================================
``us``     ``corSymm`` on the visit's position (1..K) + ``varIdent`` by visit
``cs``     ``corCompSymm``
``csh``    ``corCompSymm`` + ``varIdent`` by visit
``ar1``    ``corAR1`` on the visit's position (rho^|j - k| between positions j, k)
``ar1h``   ``corAR1`` + ``varIdent`` by visit
``sp_exp`` ``corExp`` on the time(s): ``exp(-d / range)``, i.e. ``rho^d`` with
           ``rho = exp(-1 / range)``
=========  ==========================================================================

Toeplitz (``toep``, ``toeph``), ante-dependence (``ad``, ``adh``) and structures with a
covariance per group (``us(visit | arm / patient)``) have no ``nlme`` counterpart, nor do
crossed random effects (``lme`` nests its grouping factors): the code says so instead of
fitting another model.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from dashboard.export.mmrm_code import visit_copy_name, visit_levels
from dashboard.export.r_text import r_name, r_plain, r_string
from lmm_core.formula.spec import ModelSpec, RandomSpec, ResidualSpec, TermList

__all__ = ["NLME_STRUCTURES", "R_LIBRARY", "r_lme_lines", "random_chain", "visit_index_name"]

R_LIBRARY = "library(nlme)  # lme(): random effects and a correlation of the visits together"
#: mmrm structure -> (nlme correlation class, on the visit position?, varIdent by visit?)
NLME_STRUCTURES: dict[str, tuple[str, bool, bool]] = {
    "us": ("corSymm", True, True),
    "cs": ("corCompSymm", False, False),
    "csh": ("corCompSymm", False, True),
    "ar1": ("corAR1", True, False),
    "ar1h": ("corAR1", True, True),
    "sp_exp": ("corExp", False, False),
}
CONTROL = "lmeControl(maxIter = 500, msMaxIter = 500, msTol = 1e-12, tolerance = 1e-10)"


def visit_index_name(res: ResidualSpec) -> str:
    """The column holding the visit's position 1..K in visit order (a plain R name, as nlme
    needs): ``visit_index``."""
    return f"{r_plain(res.visit.name)}_index"


def random_chain(spec: ModelSpec) -> tuple[list[tuple[str, RandomSpec]], str]:
    """The random terms from the outermost group in, each with the grouping column it adds
    (``(1 | hospital) + (1 | ward:hospital)``: hospital, then ward), or ``([], reason)``
    when ``lme`` cannot nest them (crossed factors, two terms of one group)."""
    chain: list[tuple[str, RandomSpec]] = []
    seen: set[str] = set()
    for r in sorted(spec.random, key=lambda r: len(r.group_vars)):
        names = {v.name for v in r.group_vars}
        new = names - seen
        if not seen <= names or len(new) != 1:
            return [], (
                "nlme::lme nests its random effects (hospital, then ward within hospital); "
                "these random-effects terms are crossed or share a grouping factor"
            )
        chain.append((new.pop(), r))
        seen = names
    return chain, ""


def _random_arg(chain: list[tuple[str, RandomSpec]], terms: Callable[[TermList], list[str]]) -> str:
    """``~ 1 + time | hospital``, or ``list(hospital = ~ 1, ward = ~ 1)`` for nested groups."""
    if len(chain) == 1:
        group, r = chain[0]
        return f"~ {' + '.join(terms(r.lhs))} | {r_name(group)}"
    parts = [f"{r_name(group)} = ~ {' + '.join(terms(r.lhs))}" for group, r in chain]
    return f"list({', '.join(parts)})"


def _why_not(res: ResidualSpec, chain_groups: list[str], reason: str) -> str:
    if reason:
        return reason
    if res.structure not in NLME_STRUCTURES:
        return f"nlme has no correlation structure like mmrm's `{res.structure}`"
    if res.group is not None:
        return "nlme has no correlation structure with a covariance per group"
    if res.subject.name in chain_groups[:-1]:
        return "the subject of the structure is not nested in the random effects' groups"
    return ""


def r_lme_lines(
    spec: ModelSpec,
    fixed_formula: str,
    reml: bool,
    data: pd.DataFrame,
    terms: Callable[[TermList], list[str]],
) -> list[str]:
    """The lines of an R script (after ``d`` is read) that fit the model with
    ``nlme::lme``: visit position and visit factor columns, the call, what it prints; or
    comments saying why ``lme`` cannot fit it.

    ``fixed_formula`` is the fixed part in R (``y ~ 1 + time + arm + time:arm``); ``terms``
    writes a random term's left-hand side as its R terms (``["1", "time"]``).
    """
    res = spec.residual
    assert res is not None
    chain, reason = random_chain(spec)
    groups = [g for g, _ in chain]
    why = _why_not(res, groups, reason)
    if why:
        return [
            f"# R cannot fit this model: {why}; and mmrm, which has the structure, fits no",
            "# random effects above the subject. The Python and SAS code fit it.",
        ]
    cls, on_position, by_visit = NLME_STRUCTURES[res.structure]
    path = groups + ([res.subject.name] if res.subject.name != groups[-1] else [])
    grouping = "/".join(r_name(g) for g in path)
    levels = ", ".join(r_string(v) for v in visit_levels(res, data))
    visit = f"d[[{r_string(res.visit.name)}]]"
    prep = ["# mmrm cannot fit random effects above the subject: nlme::lme fits the same model"]
    if res.structure == "sp_exp":
        coords = " + ".join(r_name(c.name) for c in res.coordinates)
        corr = f"{cls}(form = ~ {coords} | {grouping})"
        prep.append("# corExp: exp(-d / range) = rho^d with rho = exp(-1 / range)")
    elif on_position:
        index = visit_index_name(res)
        prep += [
            "# The visit's position 1..K in visit order (the correlation's time index)",
            f"d[[{r_string(index)}]] <- as.integer(factor({visit}, levels = c({levels})))",
        ]
        corr = f"{cls}(form = ~ {r_name(index)} | {grouping})"
    else:
        corr = f"{cls}(form = ~ 1 | {grouping})"
    args = [
        f"fixed = {fixed_formula}",
        f"random = {_random_arg(chain, terms)}",
        f"correlation = {corr}",
    ]
    if by_visit:
        copy = visit_copy_name(res)
        prep += [
            "# One SD per visit (varIdent): the visit as a factor",
            f"d[[{r_string(copy)}]] <- factor({visit}, levels = c({levels}))",
        ]
        args.append(f"weights = varIdent(form = ~ 1 | {r_name(copy)})")
    method = "REML" if reml else "ML"
    args += [f'data = d, method = "{method}", na.action = na.omit', f"control = {CONTROL}"]
    return [
        *prep,
        "m <- lme(",
        *(f"  {a}," for a in args[:-1]),
        f"  {args[-1]}",
        ")",
        "summary(m)",
        "VarCorr(m)  # the random effects; summary() shows the correlation and variances",
        "logLik(m)",
    ]
