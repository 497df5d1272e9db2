"""Tests and intervals for the fixed effects: t tests, contrasts and an ANOVA table.

Public entry points (what lmerTest's ``summary``, ``contest`` and ``anova`` give in R):

- :func:`fixef_inference`: one row per coefficient with ``df``, ``t_value``, ``p_value`` and a
  confidence interval ``estimate -/+ t_{df, (1 + level) / 2} * std_error``;
- :func:`contrast_test`: a t test (one row of ``L``) or an F test (several rows) of
  ``L beta = rhs``;
- :func:`anova_table`: one F test per model term, lmerTest's type-III hypotheses.

Methods for the denominator degrees of freedom:

- ``"satterthwaite"`` (default, as lmerTest): :mod:`lmm_core.inference.satterthwaite`;
- ``"kenward-roger"``: adjusted covariance and df of :mod:`lmm_core.inference.kenward_roger`
  (level by level for one grouping factor, dense in the number of random effects for
  several); the standard error is the adjusted one;
- ``"wald"``: normal reference distribution (``df = inf``), F tests as chi-square / q.

The derivatives behind each method, and each fixed-effects table, are computed once per fit
and kept in the result's :class:`~lmm_core.model.results.DerivedCache`, so further tables and
contrasts cost microseconds. Importing this module installs :func:`fixef_inference` behind
:meth:`LMMResult.fixef_table <lmm_core.model.results.LMMResult.fixef_table>`
(:func:`~lmm_core.model.results.register_fixef_inference`).

Type-III hypotheses (lmerTest's ``get_contrasts_type3`` for treatment contrasts): the
model's columns are related to the over-parametrized coding with indicators of every factor
level (``L' = X^+ X_full``, evaluated on a grid of all factor-level combinations, so that
the hypotheses depend on the model, not on the data); for each term, in decreasing order
of the number of variables, its columns of ``L`` are made orthogonal to those of the terms
containing it (a term contains another when it has all its variables, more of them, and the
same numeric ones); the term's hypothesis is the rows of ``L`` for the model's own columns.
A single-term model uses type-I (Doolittle) hypotheses, as lmerTest does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.design.model_matrix import Basis, Factor, Numeric
from lmm_core.errors import LMMError
from lmm_core.inference.kenward_roger import KRAdjustment, kr_adjustment, kr_ddf
from lmm_core.inference.satterthwaite import (
    VarparDerivatives,
    satterthwaite_f,
    satterthwaite_row_df,
    varpar_derivatives,
)
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.results import FIXEF_COLUMNS, LMMResult, register_fixef_inference

METHODS = ("satterthwaite", "kenward-roger", "wald")
_ALIASES = {"kr": "kenward-roger", "kenward_roger": "kenward-roger", "normal": "wald"}


@dataclass(frozen=True)
class ContrastTest:
    """Result of a test of ``L beta = rhs``.

    ``estimate``, ``std_error`` and ``t_value`` are set for a one-row ``L`` (NaN otherwise);
    ``F`` is then ``t_value ** 2``. ``f_scale`` is Kenward-Roger's scaling of ``F`` (1 for
    the other methods).
    """

    F: float
    num_df: int
    den_df: float
    p_value: float
    method: str
    estimate: float = float("nan")
    std_error: float = float("nan")
    t_value: float = float("nan")
    f_scale: float = 1.0


def _method(method: str) -> str:
    m = str(method).lower().replace(" ", "-")
    m = _ALIASES.get(m, m)
    if m not in METHODS:
        raise LMMError(
            f"Unknown degrees-of-freedom method {method!r}; choose one of "
            "'satterthwaite', 'kenward-roger' or 'wald'."
        )
    return m


def satterthwaite_derivatives(result: LMMResult) -> VarparDerivatives:
    """The Satterthwaite derivatives of a fit, computed once and kept in ``result.derived``."""

    def compute() -> VarparDerivatives:
        d = result.design
        dev = ProfiledDeviance(d.X, d.y, d.reterms, result.reml)
        return varpar_derivatives(dev, result.theta, result.sigma)

    return result.derived.get("satterthwaite", compute)


def kenward_roger_adjustment(result: LMMResult) -> KRAdjustment:
    """The Kenward-Roger adjustment of a fit, computed once and kept in ``result.derived``."""
    return result.derived.get("kenward-roger", lambda: kr_adjustment(result))


def _row_test(result, row: np.ndarray, method: str, rhs: float = 0.0) -> ContrastTest:
    est = float(row @ result.beta) - rhs
    if method == "kenward-roger":
        adj = kenward_roger_adjustment(result)
        var = float(row @ adj.vcov_adj @ row)
        df = kr_ddf(adj, row)[0]
    else:
        var = float(row @ result.vcov_beta @ row)
        if method == "satterthwaite":
            df = satterthwaite_row_df(satterthwaite_derivatives(result), result.vcov_beta, row)
        else:
            df = float("inf")
    se = float(np.sqrt(var))
    t = est / se if se > 0 else float("nan")
    p = float(2.0 * stats.t.sf(abs(t), df)) if np.isfinite(t) else float("nan")
    return ContrastTest(t * t, 1, df, p, method, est, se, t)


def contrast_test(
    result, L: np.ndarray, method: str = "satterthwaite", rhs: float | np.ndarray = 0.0
) -> ContrastTest:
    """Test ``L beta = rhs`` (lmerTest's ``contest``).

    Parameters
    ----------
    result
        A fitted :class:`lmm_core.model.results.LMMResult`.
    L
        Contrast: a vector of length ``p`` (t test) or a ``(q, p)`` matrix (F test).
    method
        ``"satterthwaite"``, ``"kenward-roger"`` or ``"wald"``.
    rhs
        Hypothesized value(s) of ``L beta``.

    Returns
    -------
    ContrastTest
        For several rows: Satterthwaite ``F = (L b - rhs)'(L C L')^{-1}(L b - rhs) / q`` with
        lmerTest's combined df; Kenward-Roger the scaled ``F`` with ``Phi_A`` and df ``m``;
        Wald ``F`` with infinite df (the chi-square test divided by ``q``).
    """
    method = _method(method)
    L = np.atleast_2d(np.asarray(L, float))
    p = len(result.beta)
    if L.shape[1] != p:
        raise LMMError(f"The contrast has {L.shape[1]} columns; the model has {p} coefficients.")
    rhs_vec = np.broadcast_to(np.asarray(rhs, float), (L.shape[0],))
    if L.shape[0] == 1:
        return _row_test(result, L[0], method, float(rhs_vec[0]))
    diff = L @ result.beta - rhs_vec
    scaling = 1.0
    if method == "satterthwaite":
        deriv = satterthwaite_derivatives(result)
        f, q, ddf = satterthwaite_f(deriv, result.beta, result.vcov_beta, L, rhs_vec)
    elif method == "kenward-roger":
        adj = kenward_roger_adjustment(result)
        # rows spanning the same hypothesis, full rank (KR is invariant to L -> A L)
        _, sv, vt = np.linalg.svd(np.column_stack([L, rhs_vec]), full_matrices=False)
        q = int(np.sum(sv > sv[0] * 1e-10)) if sv.size and sv[0] > 0 else 0
        lr, rr = vt[:q, :-1], vt[:q, -1]
        ddf, scaling = kr_ddf(adj, lr)
        d = lr @ result.beta - rr
        f = scaling * float(d @ np.linalg.solve(lr @ adj.vcov_adj @ lr.T, d)) / q
    else:
        vl = L @ result.vcov_beta @ L.T
        q = int(np.linalg.matrix_rank(vl))
        f = float(diff @ np.linalg.pinv(vl) @ diff) / q
        ddf = float("inf")
    p_value = float(stats.f.sf(f, q, ddf)) if np.isfinite(ddf) else float(stats.chi2.sf(f * q, q))
    return ContrastTest(float(f), int(q), float(ddf), p_value, method, f_scale=float(scaling))


@register_fixef_inference
def fixef_inference(
    result: LMMResult, method: str = "satterthwaite", level: float = 0.95
) -> pd.DataFrame:
    """Fixed-effects table with df, t, p and a confidence interval for each coefficient.

    Columns as :meth:`LMMResult.fixef_table`: ``estimate, std_error, df, t_value, p_value,
    ci_lower, ci_upper``; the interval is ``estimate -/+ t_{df, (1 + level)/2} std_error``. With
    Kenward-Roger, ``std_error`` is the adjusted standard error ``sqrt(diag Phi_A)``; with
    Wald, ``df`` is ``inf`` (normal quantiles). Computed once per method and level (kept in
    ``result.derived``); every call returns its own copy.
    """
    method = _method(method)
    if not 0.0 < level < 1.0:
        raise LMMError(f"The confidence level must be between 0 and 1, not {level}.")
    table = result.derived.get(
        ("fixef_table", method, float(level)), lambda: _table(result, method, level)
    )
    return table.copy()


def _table(result: LMMResult, method: str, level: float) -> pd.DataFrame:
    p = len(result.beta)
    rows = [_row_test(result, e, method) for e in np.eye(p)]
    table = pd.DataFrame(
        index=pd.Index(result.x_names, name="term"), columns=FIXEF_COLUMNS, dtype=float
    )
    table["estimate"] = result.beta
    table["std_error"] = [r.std_error for r in rows]
    table["df"] = [r.den_df for r in rows]
    table["t_value"] = [r.t_value for r in rows]
    table["p_value"] = [r.p_value for r in rows]
    quant = stats.t.ppf(0.5 + level / 2.0, table["df"].to_numpy())
    table["ci_lower"] = table["estimate"] - quant * table["std_error"]
    table["ci_upper"] = table["estimate"] + quant * table["std_error"]
    return table


# ---------------------------------------------------------------------- ANOVA (type III)
def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    mx = float(np.max(np.abs(x))) if x.size else 0.0
    if mx <= 0:
        return x
    return np.round(x, max(0, int(digits - np.ceil(np.log10(mx)))))


def _type1(design, terms: list[str]) -> dict[str, np.ndarray]:
    """Doolittle (type-I) hypotheses: rows of ``D^{-1} R`` for ``X'X = R'R``."""
    r = np.linalg.cholesky(design.X.T @ design.X).T
    lt = r / np.diag(r)[:, None]
    owners = np.array(design.x_terms)
    return {t: lt[owners == t] for t in terms}


def _grid(recipe, factor_vars: list[str], numeric_vars: list[str], seed: int = 1):
    """Every combination of factor levels, repeated, with random values of the numeric
    variables (a basis ``ns(t, 3)`` gets one random column per basis column)."""
    combos = list(itertools.product(*(range(len(recipe.levels[v])) for v in factor_vars)))
    width = {v: recipe.bases.get(v, 1) for v in numeric_vars}
    reps = 2 + 2 ** sum(width.values())
    n = len(combos) * reps
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.array(combos, dtype=np.int64).reshape(len(combos), -1), reps, axis=0)
    values = {v: Factor(codes[:, i], recipe.levels[v]) for i, v in enumerate(factor_vars)}
    for v in numeric_vars:
        if v in recipe.bases:
            values[v] = Basis(rng.normal(size=(n, width[v])))
        else:
            values[v] = Numeric(rng.normal(size=n))
    return values, n


def _full_coding(
    recipe, terms: list[tuple[str, ...]], values: dict, n: int
) -> tuple[np.ndarray, list[str]]:
    """The over-parametrized coding on the grid: an indicator of every factor level (times
    the numeric variables and each column of a basis) per term, with R's column names."""
    cols, names = ([np.ones(n)], ["(Intercept)"]) if recipe.intercept else ([], [])
    for parts in terms:
        choices = [_choices(recipe, v) for v in parts]
        for combo in itertools.product(*reversed(choices)):
            col, name = np.ones(n), []
            for v, j in zip(parts, reversed(combo), strict=True):
                col = col * _column(values[v], j)
                name.append(v if j is None else v + _suffix(recipe, v, j))
            cols.append(col)
            names.append(":".join(name))
    return np.column_stack(cols), names


def _choices(recipe, v: str) -> list[int | None]:
    if v in recipe.levels:
        return list(range(len(recipe.levels[v])))
    return list(range(recipe.bases[v])) if v in recipe.bases else [None]


def _column(value, j: int | None) -> np.ndarray:
    if j is None:
        return value.values
    if isinstance(value, Basis):
        return value.values[:, j]
    return (value.codes == j).astype(float)


def _suffix(recipe, v: str, j: int) -> str:
    return recipe.levels[v][j] if v in recipe.levels else str(j + 1)


def _orthogonalize(
    L: np.ndarray, term_vars: dict[str, tuple[str, ...]], factors: set, cmap: dict
) -> None:
    """In place, highest order first: each term's columns of ``L`` made orthogonal to those of
    the terms containing it (all its variables and more, the same numeric ones)."""
    terms = list(term_vars)
    numeric = {t: {v for v in term_vars[t] if v not in factors} for t in terms}

    def contains(a: str, b: str) -> bool:
        va, vb = set(term_vars[a]), set(term_vars[b])
        return va < vb and numeric[a] == numeric[b]

    for order in sorted({len(term_vars[t]) for t in terms}, reverse=True):
        for t in (t for t in terms if len(term_vars[t]) == order):
            bigger = [b for b in terms if contains(t, b)]
            if not bigger:
                continue
            basis = L[:, np.concatenate([cmap[b] for b in bigger])]
            y = L[:, cmap[t]]
            coef = np.linalg.lstsq(basis, y, rcond=None)[0]
            L[:, cmap[t]] = _zapsmall(y - basis @ coef)


def type3_contrasts(design) -> dict[str, np.ndarray]:
    """lmerTest's type-III hypothesis matrix of each model term (module docstring).

    Returns
    -------
    dict
        Term label (``"age"``, ``"age:Sex"``) -> ``(rows, p)`` contrast matrix.
    """
    terms = [":".join(t) for t in design.spec.fixed.terms]
    term_vars = {":".join(t): tuple(t) for t in design.spec.fixed.terms}
    terms = [t for t in terms if t in set(design.x_terms)]
    if design.p <= 1 or len(terms) <= 1:
        return _type1(design, terms)
    recipe = design.fixed_recipe
    factors = set(recipe.levels)
    all_vars = sorted({v for t in terms for v in term_vars[t]})
    fvars = [v for v in all_vars if v in factors]
    nvars = [v for v in all_vars if v not in factors]
    if np.prod([len(recipe.levels[v]) for v in fvars]) > 20_000:
        raise LMMError("Too many factor-level combinations for type-III tests.")
    values, n = _grid(recipe, fvars, nvars)
    xg = recipe.build(values, n)[:, design.kept_columns]
    rdx, names = _full_coding(recipe, [term_vars[t] for t in terms], values, n)
    L = _zapsmall(np.linalg.lstsq(xg, rdx, rcond=None)[0].T)  # rows: full coding; cols: X
    owners = np.array(design.x_terms)
    cmap = {t: np.flatnonzero(owners == t) for t in terms}
    _orthogonalize(L, {t: term_vars[t] for t in terms}, factors, cmap)
    index = {nm: i for i, nm in enumerate(names)}
    if any(nm not in index for nm in design.x_names):
        return {t: np.eye(design.p)[cmap[t]] for t in terms}  # not hierarchical: coefficients
    L = L[[index[nm] for nm in design.x_names]]
    out = {}
    for t in terms:
        rows = L[:, cmap[t]].T
        out[t] = rows[np.abs(rows).sum(axis=1) > 1e-8]
    return out


def anova_table(result, method: str = "satterthwaite") -> pd.DataFrame:
    """F test of each model term (lmerTest's ``anova(fit)``, type III).

    Columns ``sum_sq``, ``mean_sq`` (``F * sigma^2 * num_df`` and ``F * sigma^2``, as
    lmerTest, with Kenward-Roger's ``F`` before its scaling), ``num_df``, ``den_df``, ``F``
    and ``p_value``; one row per fixed term (the intercept has none). Empty for an
    intercept-only model.
    """
    method = _method(method)
    rows = {}
    for term, L in type3_contrasts(result.design).items():
        if L.shape[0] == 0:
            continue
        test = contrast_test(result, L, method=method)
        mean_sq = test.F / test.f_scale * result.sigma**2
        rows[term] = (
            mean_sq * test.num_df,
            mean_sq,
            test.num_df,
            test.den_df,
            test.F,
            test.p_value,
        )
    columns = ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "term"
    return table
