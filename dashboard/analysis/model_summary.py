"""Tables and plain-language sentences about a fitted model. No Streamlit here.

Everything takes an :class:`lmm_core.LMMResult` and returns DataFrames or text for the Model
page: the fixed effects, the variance components (SD and correlation), the intraclass
correlation (ICC), the fit status in words (convergence, singular fit naming the component at
its boundary, with the simpler formula to try), notes about the rows and columns used, and
ordinary least squares side by side with the mixed model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.analysis.formula_text import deparse_spec
from dashboard.base.markup import code_span, plain_index
from dashboard.base.numbers import fmt, fmt_pct
from lmm_core import LMMResult
from lmm_core.design.reterms import column_rms
from lmm_core.formula.quoting import unquote_label
from lmm_core.formula.spec import RandomSpec
from lmm_core.model.ols import ols_fit

__all__ = [
    "Status",
    "ZeroComponent",
    "correlation_table",
    "data_notes",
    "fixed_effects_table",
    "icc_sentences",
    "icc_table",
    "ols_comparison",
    "simpler_formula",
    "status_messages",
    "variance_table",
    "zero_components",
]

INTERCEPT = "(Intercept)"
ZERO_TOL = 1e-4  # lme4's isSingular tolerance, on the unit-free diagonal of theta


@dataclass(frozen=True)
class Status:
    """One sentence about the fit and how serious it is (success, info or warning)."""

    level: str
    text: str


@dataclass(frozen=True)
class ZeroComponent:
    """A part of the random effects estimated on its boundary.

    Attributes
    ----------
    term
        Index of the random-effects term in ``result.reterms``.
    group
        Its grouping factor.
    column
        The random effect (``"(Intercept)"`` or a slope column).
    kind
        ``"variance"`` (estimated as zero), ``"correlation"`` (estimated as +/-1 with
        ``partner``) or ``"dependence"`` (an exact combination of several of the term's other
        random effects: their covariance matrix is singular without any single correlation
        being +/-1; this happens with three or more effects, e.g. a random curve).
    partner
        For a correlation: the other random effect.
    value
        The boundary value (0 for a variance, +/-1 for a correlation).
    """

    term: int
    group: str
    column: str
    kind: str
    partner: str | None = None
    value: float = 0.0


_CURVE_COLUMN = re.compile(r"^(ns|bs|poly)\(.*\)\d+$")


def _effect_name(column: str) -> str:
    """``intercept``, ``slope on Days`` or, for a column of a spline or polynomial,
    ``curve term ns(Days, 2)1``."""
    if column == INTERCEPT:
        return "intercept"
    if _CURVE_COLUMN.match(column):
        return f"curve term {unquote_label(column)}"
    return f"slope on {unquote_label(column)}"


# --------------------------------------------------------------------------- tables
def fixed_effects_table(result: LMMResult) -> pd.DataFrame:
    """Estimate, standard error and t value of each fixed effect (index: lme4 names shown
    without backticks, e.g. ``Visit day:SexM``)."""
    table = plain_index(result.fixef_table()[["estimate", "std_error", "t_value"]])
    return table.rename(columns={"estimate": "Estimate", "std_error": "Std. error",
                                 "t_value": "t value"})  # fmt: skip


def variance_table(result: LMMResult) -> pd.DataFrame:
    """One row per random effect and the residual: level, effect, variance, SD."""
    vc = result.varcorr_table()
    rows = vc[vc["var2"].isna()]
    effect = [
        "residual (within)" if g == "Residual" else _effect_name(str(v))
        for g, v in zip(rows["group"], rows["var1"], strict=True)
    ]
    return pd.DataFrame(
        {
            "Level": rows["group"].to_numpy(),
            "Random effect": effect,
            "Variance": rows["vcov"].to_numpy(float),
            "SD": rows["sdcor"].to_numpy(float),
        }
    )


def correlation_table(result: LMMResult) -> pd.DataFrame:
    """Correlations between random effects of the same level (empty when there are none)."""
    vc = result.varcorr_table()
    rows = vc[vc["var2"].notna()]
    return pd.DataFrame(
        {
            "Level": rows["group"].to_numpy(),
            "Between": [
                f"{_effect_name(str(a))} and {_effect_name(str(b))}"
                for a, b in zip(rows["var1"], rows["var2"], strict=True)
            ],
            "Correlation": rows["sdcor"].to_numpy(float),
        }
    )


# --------------------------------------------------------------------------- ICC
def _nested_in(result: LMMResult) -> dict[int, set[int]]:
    """Term index -> indices of terms whose groups contain each of its groups."""
    terms = result.reterms
    out: dict[int, set[int]] = {i: set() for i in range(len(terms))}
    for i, inner in enumerate(terms):
        for j, outer in enumerate(terms):
            if i == j or inner.group == outer.group or inner.n_levels <= outer.n_levels:
                continue
            pairs = pd.DataFrame({"i": inner.codes, "o": outer.codes})
            if (pairs.groupby("i")["o"].nunique() <= 1).all():
                out[i].add(j)
    return out


def _intercept_variance(cov: np.ndarray, cnames: tuple[str, ...]) -> float:
    return (
        float(cov[cnames.index(INTERCEPT), cnames.index(INTERCEPT)]) if INTERCEPT in cnames else 0.0
    )


def has_slopes(result: LMMResult) -> bool:
    """Whether any random-effects term has a column other than the intercept."""
    return any(c != INTERCEPT for t in result.reterms for c in t.cnames)


def icc_table(result: LMMResult) -> pd.DataFrame:
    """Intraclass correlation per grouping level, from the intercept variances.

    With random intercepts only, the total variance of an observation is
    ``sum_g var_g + sigma^2``. ``Share`` is ``var_g / total``, the part of the variance that
    lies between levels of ``g``. ``ICC`` is the correlation of two observations of the same
    level of ``g``: ``(var_g + var of every level g is nested in) / total`` (two measurements
    of one patient also share the patient's hospital). With random slopes these are the
    values where every slope column is 0 (the variance changes with the slope columns).
    """
    covs = result.covariance_matrices()
    variances = [
        _intercept_variance(c, t.cnames) for c, t in zip(covs, result.reterms, strict=True)
    ]
    total = float(sum(variances) + result.sigma**2)
    nested = _nested_in(result)
    rows = []
    for i, term in enumerate(result.reterms):
        shared = variances[i] + sum(variances[j] for j in nested[i])
        rows.append(
            {
                "Level": term.group,
                "Intercept variance": variances[i],
                "Share": variances[i] / total,
                "ICC": shared / total,
                "Nested in": ", ".join(result.reterms[j].group for j in sorted(nested[i])),
            }
        )
    table = pd.DataFrame(rows)
    return table.groupby("Level", sort=False, as_index=False).agg(
        {"Intercept variance": "sum", "Share": "sum", "ICC": "max", "Nested in": "first"}
    )


def _slopes_and_origin(result: LMMResult) -> tuple[list[str], str]:
    """What the random slopes vary along (a curve's columns count as its variable) and where
    the ICC below is taken: every slope column 0 (a natural or B-spline without intercept is
    0 at its lower boundary knot)."""
    columns = {c for t in result.reterms for c in t.cnames if c != INTERCEPT}
    along, origin = set(), []
    for label, cols in result.design.basis_columns().items():
        mine = {c for c in columns if c.startswith(label) and _CURVE_COLUMN.match(c)}
        if not mine:
            continue
        columns -= mine
        along.update(cols)
        state = result.design.bases[label]
        if state.func in ("ns", "bs") and not state.intercept and len(cols) == 1:
            origin.append(f"{unquote_label(cols[0])} = {fmt(state.boundary[0], 4)}")
        else:
            origin.append(f"every column of {unquote_label(label)} = 0")
    plain = sorted(unquote_label(c) for c in columns)
    at = " and ".join([" = ".join([*plain, "0"])] * bool(plain) + sorted(set(origin)))
    return sorted({*plain, *(unquote_label(c) for c in along)}), at


def icc_sentences(
    result: LMMResult, subject: str | None = None, time: str | None = None
) -> list[str]:
    """The ICC in words, one sentence per level, with the caveat for slope models."""
    table = icc_table(result)
    outcome = result.response
    out = []
    for row in table.to_dict("records"):
        level, icc, share = row["Level"], row["ICC"], row["Share"]
        within = f" (this includes the {row['Nested in']} share)" if row["Nested in"] else ""
        out.append(
            f"**{level}**: ICC = {fmt(icc, 2)}. Two measurements of {outcome} from the same "
            f"{level} correlate {fmt(icc, 2)}{within}; {fmt_pct(share)} of the variance left after "
            f"the fixed effects lies between levels of {level}."
        )
    if has_slopes(result):
        slopes, at = _slopes_and_origin(result)
        where = (
            f" (how strongly two measurements of one {subject} correlate changes with {time})"
            if subject and time
            else ""
        )
        out.insert(
            0,
            "With random slopes the variance between groups changes along "
            f"{', '.join(slopes)}, so the ICC is not one number{where}. The values below are "
            f"at {at}. The Trajectories page shows how the groups spread out over time.",
        )
    return out


# --------------------------------------------------------------------------- status
def zero_components(result: LMMResult, tol: float = ZERO_TOL) -> list[ZeroComponent]:
    """Variances estimated as zero and correlations estimated as +/-1, term by term."""
    out: list[ZeroComponent] = []
    for k, (term, raw) in enumerate(zip(result.reterms, result.lambdas, strict=True)):
        lam = column_rms(term)[:, None] * raw  # unit-free (lmm_core.design.reterms.theta_scale)
        for j, column in enumerate(term.cnames):
            if abs(lam[j, j]) >= tol:
                continue
            if np.all(np.abs(lam[j, :]) < tol):
                out.append(ZeroComponent(k, term.group, column, "variance"))
            else:
                row = lam[j, :j]
                partner = int(np.argmax(np.abs(row)))
                norm = np.linalg.norm(lam[partner, : partner + 1]) * np.linalg.norm(lam[j, :])
                value = float(lam[j, :j] @ lam[partner, :j]) / norm if norm > 0 else 1.0
                if abs(value) < 0.999:  # a combination of several effects, not one
                    out.append(ZeroComponent(k, term.group, column, "dependence"))
                    continue
                out.append(
                    ZeroComponent(
                        k,
                        term.group,
                        column,
                        "correlation",
                        term.cnames[partner],
                        float(np.sign(value)),
                    )
                )
    return out


def _spec_terms(result: LMMResult) -> list[tuple[RandomSpec, tuple[str, ...], bool]]:
    """The formula's random terms as ``(term, lhs labels, intercept)``."""
    return [(r, tuple(r.lhs.labels()), r.lhs.intercept) for r in result.design.spec.random]


def _match(result: LMMResult, k: int) -> int | None:
    """Index in the formula's random terms of ``result.reterms[k]``."""
    term = result.reterms[k]
    has_icpt = INTERCEPT in term.cnames
    candidates = [
        i
        for i, r in enumerate(result.design.spec.random)
        if r.group == term.group
        and r.lhs.intercept == has_icpt
        and len(r.lhs.labels()) == len(term.cnames) - int(has_icpt)
    ]
    return candidates[0] if len(candidates) >= 1 else None


def _owner(labels: tuple[str, ...], column: str) -> str | None:
    """The left-hand-side label that produced model-matrix column ``column``."""
    if column in labels:
        return column
    owners = [lab for lab in labels if ":" not in lab and column.startswith(lab)]
    return max(owners, key=len) if owners else None


def simpler_formula(result: LMMResult) -> str | None:
    """The formula without the components on the boundary, or None when none can be dropped.

    A variance at zero removes that random effect (the whole term when it was its only one);
    a correlation at +/-1 makes the term's random effects independent. Returns None when the
    fit is not singular or when nothing would be left of the random effects.
    """
    zeros = zero_components(result)
    if not zeros:
        return None
    terms = [list(t) for t in _spec_terms(result)]
    split: list[int] = []
    for z in zeros:
        i = _match(result, z.term)
        if i is None:
            return None
        spec_term, labels, intercept = terms[i]
        if z.kind in ("correlation", "dependence"):
            split.append(i)
        elif z.column == INTERCEPT:
            terms[i][2] = False
        else:
            owner = _owner(labels, z.column)
            if owner is None:
                return None
            terms[i][1] = tuple(lab for lab in labels if lab != owner)
    rewritten = _rewrite_terms(terms, split)
    if not rewritten:
        return None
    return deparse_spec(result.design.spec, rewritten)


def _rewrite_terms(
    terms: list[list], split: list[int]
) -> list[tuple[RandomSpec, tuple[str, ...], bool]]:
    """Terms ``[spec, labels, intercept]`` as deparse_spec takes them: the ``split`` ones (a
    correlation at +/-1) one per effect, empty ones left out."""
    rewritten: list[tuple[RandomSpec, tuple[str, ...], bool]] = []
    for i, (spec_term, labels, intercept) in enumerate(terms):
        if i in split and len(labels) + int(intercept) > 1:
            if intercept:
                rewritten.append((spec_term, (), True))
            rewritten.extend((spec_term, (lab,), False) for lab in labels)
        elif labels or intercept:
            rewritten.append((spec_term, labels, intercept))
    return rewritten


def _singular_sentence(z: ZeroComponent, outcome: str) -> str:
    if z.kind == "dependence":
        return (
            f"The {_effect_name(z.column)} of {z.group} is estimated as an exact combination of "
            f"the other random effects of {z.group}: their covariance matrix is singular, so "
            "the model has more random effects per group than the data can tell apart."
        )
    if z.kind == "correlation":
        return (
            f"The correlation between the {_effect_name(z.partner or INTERCEPT)} and the "
            f"{_effect_name(z.column)} of {z.group} is estimated as {z.value:+.0f}: the data "
            "cannot tell these two random effects apart, so the model is more complex than "
            "the data support."
        )
    if z.column == INTERCEPT:
        return (
            f"The variance of the random intercept of {z.group} is estimated as zero: these "
            f"data show no evidence that the level of {outcome} differs from one {z.group} to "
            "another (beyond what the fixed effects and the other random effects explain)."
        )
    return (
        f"The variance of the random slope on {unquote_label(z.column)} for {z.group} is "
        f"estimated as zero: these data show no evidence that the rate of change of {outcome} "
        f"along {unquote_label(z.column)} "
        f"differs from one {z.group} to another."
    )


def status_messages(result: LMMResult) -> list[Status]:
    """Convergence and singular-fit status in plain words, most important first."""
    out: list[Status] = []
    opt = result.opt
    if result.converged:
        out.append(
            Status(
                "success",
                "The fit converged: the optimizer found the best-fitting variance parameters "
                f"(lowest {'REML criterion' if result.reml else 'deviance'}) after "
                f"{opt.n_evals} evaluations ({opt.method}).",
            )
        )
    else:
        out.append(
            Status(
                "warning",
                "The optimizer could not confirm that it found the best fit. Treat the "
                "numbers with caution; a simpler random-effects structure or rescaled "
                "covariates (e.g. time in years instead of days) often helps.",
            )
        )
    zeros = zero_components(result) if result.is_singular else []
    for z in zeros:
        out.append(Status("warning", _singular_sentence(z, result.response)))
    if zeros:
        simpler = simpler_formula(result)
        tail = (
            f"Consider the simpler model {code_span(simpler)}."
            if simpler
            else "Consider fewer random effects per group (fewer random slopes, or a straight "
            "line instead of a curve per group)."
        )
        out.append(Status("warning", "This is called a singular fit. " + tail))
    for msg in opt.messages:
        if "singular" not in msg.lower():
            out.append(Status("info", msg[0].upper() + msg[1:]))
    return out


def data_notes(result: LMMResult) -> list[str]:
    """Rows left out for missing values and fixed-effect columns dropped as aliased."""
    design = result.design
    notes = []
    if design.n_dropped:
        n_total = design.n_dropped + result.nobs
        for msg in design.messages:
            if "missing" in msg:
                notes.append(
                    f"{msg[0].upper()}{msg[1:]}: the model uses {result.nobs:,} of "
                    f"{n_total:,} rows."
                )
    if design.aliased:
        names = ", ".join(code_span(unquote_label(a)) for a in design.aliased)
        notes.append(
            f"{names} could not be estimated: each is an exact combination of other "
            "fixed-effect columns (for example a category with no rows, or a covariate that "
            "repeats another), so it was dropped from the model, as R's lme4 does."
        )
    return notes


# --------------------------------------------------------------------------- OLS
def ols_comparison(result: LMMResult) -> pd.DataFrame:
    """Same fixed effects by OLS (grouping ignored) next to the mixed model.

    Columns: ``Mixed estimate``, ``OLS estimate``, ``Mixed SE``, ``OLS SE`` and
    ``Design effect`` = ``(Mixed SE / OLS SE)^2``, the ratio of the variances: how much the
    naive variance must be inflated to account for the grouping.
    """
    design = result.design
    ols = ols_fit(design.X, design.y, list(design.x_names))
    mixed = result.fixef_table()
    table = pd.DataFrame(
        {
            "Mixed estimate": mixed["estimate"],
            "OLS estimate": ols["estimate"],
            "Mixed SE": mixed["std_error"],
            "OLS SE": ols["std_error"],
        }
    )
    table["Design effect"] = (table["Mixed SE"] / table["OLS SE"]) ** 2
    return plain_index(table)
