"""From formula and data to the model matrices ``y``, ``X`` and the random-effects terms.

Steps (as lme4's ``lFormula``):

1. Parse the formula (:func:`lmm_core.formula.terms.parse_formula`) and check that every column
   exists (unknown names are a :class:`FormulaError` naming the closest column).
2. Drop, once, every row with a missing value in any column the formula uses, and count them.
3. Evaluate the response, the fixed part (R's ``model.matrix``, treatment contrasts; see
   :mod:`lmm_core.design.model_matrix`) and each random term: its left-hand side (own intercept
   rule) and its grouping factor (levels present in the rows used, sorted; an interaction
   ``a:b`` has levels ``"aval:bval"`` ordered by ``a`` then ``b``).
4. Check the model as lme4 does (a grouping factor needs >= 2 levels and fewer levels than
   observations; fewer random effects than observations; no random slope on a constant). The
   two comparisons with the number of observations are lmer's; glmer skips them
   (``check_nobs=False``: an observation-level random effect is identifiable in a GLMM).
5. Order terms as lme4's ``mkReTrms``: if the numbers of levels ever increase along the
   formula order, the order becomes ``rev(order(n_levels))`` (decreasing; ties reversed,
   exactly as R does); otherwise formula order is kept.
6. Drop aliased columns of ``X``: a column whose residual norm after projection on the
   kept earlier columns is below ``1e-7`` times its norm (R's ``qr(X, tol = 1e-7)``).
7. Evaluate the offset ``o = sum_k e_k`` of the terms ``offset(e_k)`` (zeros without one), and
   for a response ``cbind(s, f)`` the successes ``y = s`` and the trials ``s + f``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd

from lmm_core.design.covariance import GeneralCovariance
from lmm_core.design.model_matrix import (
    Basis,
    Evaluator,
    Factor,
    MatrixRecipe,
    Numeric,
    model_matrix,
)
from lmm_core.design.residual import ResidualTerm, residual_term
from lmm_core.design.reterms import ReTerm
from lmm_core.design.splines import BasisState
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.formula.grammar import Call, Name, names_in, strip_parens, suggest
from lmm_core.formula.quoting import deparse
from lmm_core.formula.spec import ModelSpec
from lmm_core.formula.terms import parse_formula

RANK_TOL = 1e-7


@dataclass(frozen=True)
class TermRecipe:
    """Everything needed to evaluate one random term on new data."""

    lhs: MatrixRecipe
    group_vars: tuple[Name, ...]
    levels: tuple[str, ...]
    stats: dict = field(repr=False)

    def evaluate(self, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, z)`` on ``newdata``; code -1 for unseen levels and missing values."""
        ev = Evaluator(newdata, self.stats, new_data=True)
        fac = combine([ev.column(nm, as_factor=True) for nm in self.group_vars])
        if fac.labels == self.levels:
            codes = fac.codes.copy()
        else:  # each label of the new data looked up once in the cached index of the levels
            lookup = np.append(self.level_index.get_indexer(list(fac.labels)), -1)
            codes = lookup[fac.codes].astype(np.int64, copy=False)  # code -1 picks the -1
        values = {v: ev.variable(self.lhs.exprs[v]) for v in _lhs_vars(self.lhs)}
        return codes, _build_new(self.lhs, values, len(newdata), "random-effects term")

    @cached_property
    def level_index(self) -> pd.Index:
        """The levels as a hashed index, built on first use and kept (a streamed fit codes
        every batch against the same millions of levels)."""
        return pd.Index(self.levels, dtype=object)


def _lhs_vars(recipe: MatrixRecipe) -> list[str]:
    return sorted({v for parts in recipe.columns for v, _ in parts})


def _build_new(recipe: MatrixRecipe, values: dict, n: int, what: str) -> np.ndarray:
    for label, lev in recipe.levels.items():
        fac = values[label]
        if not isinstance(fac, Factor):
            raise DataError(f"`{label}` is numeric in the new data but was categorical in the fit.")
        unseen = sorted(set(fac.labels) - set(lev))
        if unseen and (fac.recode(lev) == -2).any():
            shown = ", ".join(repr(u) for u in unseen[:5])
            raise DataError(
                f"The new data have levels of `{label}` not seen in the fit ({shown}); the "
                f"{what} has no coefficient for them."
            )
    for label in {v for parts in recipe.columns for v, j in parts if j is None}:
        if not isinstance(values[label], Numeric):
            raise DataError(f"`{label}` is categorical in the new data but was numeric in the fit.")
    for label in recipe.bases:
        if not isinstance(values[label], Basis):
            raise DataError(f"`{label}` cannot be evaluated on the new data.")
    return recipe.build(values, n)


def combine(factors: list[Factor]) -> Factor:
    """Interaction of factors: levels ``"a:b"`` ordered by the first, then the second..."""
    acc = factors[0]
    for fac in factors[1:]:
        nf = len(fac.labels)
        valid = (acc.codes >= 0) & (fac.codes >= 0)
        key = acc.codes[valid] * nf + fac.codes[valid]
        uniq, inv = np.unique(key, return_inverse=True)
        codes = np.full(len(valid), -1, dtype=np.int64)
        codes[valid] = inv
        labels = tuple(f"{acc.labels[k // nf]}:{fac.labels[k % nf]}" for k in uniq.tolist())
        acc = Factor(codes, labels)
    return acc


@dataclass(frozen=True, eq=False)
class Design:
    """The evaluated model: response, fixed-effects matrix and random-effects terms.

    Attributes
    ----------
    formula
        The formula text.
    response
        Response label as written (``"Reaction"``, ``"log(y)"``).
    y
        ``(n,)`` float response on the rows used.
    X
        ``(n, p)`` fixed-effects matrix of full column rank.
    x_names
        lme4 column names of ``X``.
    aliased
        Names of the columns dropped for rank deficiency.
    reterms
        Random-effects terms in lme4's order.
    rows
        Positions (``iloc``) in the data of the rows used.
    n_dropped
        Rows left out for a missing value in a used column.
    messages
        Plain-language notes (rows dropped, columns aliased, ...).
    offset
        ``(n,)`` known part of the linear predictor, the sum of the ``offset()`` terms (zeros
        without one).
    trials
        For a response ``cbind(s, f)``: ``s + f`` per row (``y`` holds ``s``); else ``None``.
    """

    formula: str
    response: str
    y: np.ndarray
    X: np.ndarray
    x_names: tuple[str, ...]
    aliased: tuple[str, ...]
    reterms: tuple[ReTerm, ...]
    rows: np.ndarray
    n_dropped: int
    messages: tuple[str, ...]
    spec: ModelSpec = field(repr=False, compare=False)
    x_terms: tuple[str, ...] = field(repr=False, compare=False, default=())
    fixed_recipe: MatrixRecipe | None = field(repr=False, compare=False, default=None)
    kept_columns: np.ndarray | None = field(repr=False, compare=False, default=None)
    stats: dict = field(repr=False, compare=False, default_factory=dict)
    residual: ResidualTerm | None = field(repr=False, compare=False, default=None)
    offset: np.ndarray | None = field(repr=False, compare=False, default=None)
    trials: np.ndarray | None = field(repr=False, compare=False, default=None)
    #: the offset already subtracted from ``y`` (a Gaussian fit of ``y - o``), else None
    folded_offset: np.ndarray | None = field(repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.offset is None:
            object.__setattr__(self, "offset", np.zeros(self.y.shape[0]))

    @property
    def has_offset(self) -> bool:
        """Whether the formula has an ``offset()`` term."""
        return bool(self.spec.offsets)

    def offset_values(self, newdata: pd.DataFrame) -> np.ndarray:
        """The offset evaluated on new data (zeros without ``offset()``; NaN where missing).

        Raises
        ------
        DataError
            If ``newdata`` lacks a column of an offset.
        """
        ev = Evaluator(newdata, self.stats, new_data=True)
        total = np.zeros(len(newdata))
        for call in self.spec.offsets:
            total = total + ev.numeric(call.arg)
        return total

    @property
    def n(self) -> int:
        """Number of observations used."""
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        """Number of fixed-effects columns (after dropping aliased ones)."""
        return int(self.X.shape[1])

    @property
    def bases(self) -> dict[str, BasisState]:
        """Spline and polynomial bases learned from the data, by label (``ns(Days, 3)``)."""
        return {k: v for k, v in self.stats.items() if isinstance(v, BasisState)}

    def _basis_calls(self) -> dict[str, Call]:
        exprs = dict(self.spec.fixed.exprs)
        for r in self.spec.random:
            exprs.update(r.lhs.exprs)
        return {label: strip_parens(exprs[label]) for label in self.bases}  # type: ignore[misc]

    def basis_columns(self) -> dict[str, tuple[str, ...]]:
        """The data columns each basis is computed from, by label (``{"ns(Days, 3)":
        ("Days",)}``)."""
        return {
            label: tuple(dict.fromkeys(nm.name for nm in names_in(call.arg)))
            for label, call in self._basis_calls().items()
        }

    def spline_knots(self) -> dict[str, tuple[float, ...]]:
        """Interior knots of the splines of each plain data column (``{"Days": (3.0, 6.0)}``),
        to mark them on a time axis."""
        out: dict[str, set[float]] = {}
        for label, call in self._basis_calls().items():
            arg = strip_parens(call.arg)
            if isinstance(arg, Name):
                out.setdefault(arg.name, set()).update(self.bases[label].knots)
        return {col: tuple(sorted(k)) for col, k in out.items()}

    def fixed_matrix(self, newdata: pd.DataFrame) -> np.ndarray:
        """``X`` on new data: same columns, levels and centring; NaN rows where inputs miss.

        Raises
        ------
        DataError
            If ``newdata`` lacks a column or has a factor level not seen in the fit.
        """
        assert self.fixed_recipe is not None
        ev = Evaluator(newdata, self.stats, new_data=True)
        values = {v: ev.variable(self.fixed_recipe.exprs[v]) for v in _lhs_vars(self.fixed_recipe)}
        full = _build_new(self.fixed_recipe, values, len(newdata), "fixed part")
        return full[:, self.kept_columns]

    def random_matrix(self, k: int, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, z)`` of random term ``k`` on new data (code -1: unseen level or missing)."""
        return term_matrix(self.reterms[k], newdata)

    def response_values(self, newdata: pd.DataFrame) -> np.ndarray:
        """The response evaluated on new data (NaN where missing)."""
        value = Evaluator(newdata, self.stats, new_data=True).variable(self.spec.response)
        if not isinstance(value, Numeric):
            raise DataError(f"The response `{self.response}` is not numeric in the new data.")
        return value.values


def term_matrix(term: ReTerm, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, z)`` of a random-effects term evaluated on new data."""
    recipe = term.rebuild
    assert isinstance(recipe, TermRecipe)
    return recipe.evaluate(newdata)


# --------------------------------------------------------------------------- build
#: Parsed formulas by text (a :class:`ModelSpec` is immutable): refits of one formula, as the
#: Teach page's and the app's, parse it once.
_parse = lru_cache(maxsize=256)(parse_formula)


def aliased_message(aliased: tuple[str, ...]) -> str:
    """The note on the fixed-effects columns dropped as combinations of earlier ones (lme4's
    words)."""
    k = len(aliased)
    return (
        f"fixed-effect model matrix is rank deficient so dropping {k} column"
        f"{'s' * (k > 1)} / coefficient{'s' * (k > 1)}: {', '.join(aliased)} (each is a "
        "combination of earlier columns)"
    )


def _check_columns(spec: ModelSpec, data: pd.DataFrame) -> list[str]:
    names = [str(c) for c in data.columns]
    known = set(names)
    used: list[str] = []
    for ref in spec.column_refs():
        if ref.name not in known:
            close = suggest(ref.name, names)
            hint = f"; did you mean `{close}`?" if close else ""
            raise FormulaError(
                f"Unknown column `{ref.name}` at position {ref.pos}{hint} (columns: "
                f"{', '.join(names[:12])}{', ...' if len(names) > 12 else ''})",
                ref.pos,
                ref.name,
            )
        if ref.name not in used:
            used.append(ref.name)
    return used


def _check_finite(label: str, is_column: bool, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(bad.sum())
        if is_column:
            raise DataError(
                f"Column `{label}` has {k} infinite value{'s' * (k > 1)} in the rows used; "
                "replace or remove them."
            )
        raise DataError(
            f"`{label}` is not a finite number in {k} row{'s' * (k > 1)} (e.g. log or sqrt "
            "of a value <= 0, or division by 0); check the values or change the transformation."
        )


def _evaluate(ev: Evaluator, exprs: dict, labels, rows: np.ndarray) -> dict:
    values: dict[str, Numeric | Factor | Basis] = {}
    for v in labels:
        val = ev.variable(exprs[v])
        if isinstance(val, Factor):
            values[v] = val.take(rows)
            missing = values[v].codes < 0  # factor() of an expression that is NaN there
            if missing.any():
                _check_finite(v, False, np.where(missing, np.nan, 0.0))
        elif isinstance(val, Basis):
            values[v] = Basis(val.values[rows])
            _check_finite(v, False, values[v].values)
        else:
            values[v] = Numeric(val.values[rows])
            _check_finite(v, isinstance(exprs[v], Name), values[v].values)
    return values


def _keep_columns(X: np.ndarray) -> np.ndarray:
    """Indices of columns kept by R's sequential QR rank rule (tolerance 1e-7)."""
    p = X.shape[1]
    gram = X.T @ X
    norms = np.sqrt(np.diag(gram))
    if p == 0:
        return np.arange(0)
    if norms.all():
        # Screen through the Gram matrix: squared residual ratios well above rounding level
        # prove full rank; anything closer to the tolerance is decided below.
        scaled = gram / np.outer(norms, norms)
        try:
            ratios = np.diag(np.linalg.cholesky(scaled))
            if ratios.min() > 1e-4:
                return np.arange(p)
        except np.linalg.LinAlgError:
            pass
    # Sequential rule in one pass (as R's dqrdc2): a column is dropped when its residual after
    # projection on the columns kept before it is below RANK_TOL times its norm. Gram-Schmidt
    # with reorthogonalization gives the same residual norms as Householder QR, without one
    # QR per dropped column (hundreds of aliased terms took minutes).
    n = X.shape[0]
    basis = np.empty((n, min(n, p)))
    keep: list[int] = []
    for j in range(p):
        if norms[j] == 0 or len(keep) == basis.shape[1]:
            continue  # a zero column, or the kept columns already span every row
        resid = np.array(X[:, j], dtype=float)
        if keep:
            q = basis[:, : len(keep)]
            resid -= q @ (q.T @ resid)
            resid -= q @ (q.T @ resid)
        size = float(np.linalg.norm(resid))
        if size < RANK_TOL * norms[j]:
            continue
        basis[:, len(keep)] = resid / size
        keep.append(j)
    return np.array(keep, dtype=int)


def build_design(
    formula: str | ModelSpec,
    data: pd.DataFrame,
    *,
    check_nobs: bool = True,
    stats: dict | None = None,
) -> Design:
    """Evaluate a mixed-model formula on a table.

    Parameters
    ----------
    formula
        Formula text (``"y ~ time * arm + (time | patient)"``) or a parsed :class:`ModelSpec`.
    data
        The table; rows with missing values in used columns are left out.
    check_nobs
        Require fewer levels of each grouping factor, and fewer random effects, than
        observations (lmer's checks: with a residual, a factor with one level per row is not
        identifiable). GLMMs pass ``False``, as glmer (an observation-level random effect).
    stats
        Constants of ``scale()``/``center()`` and basis states already learned (by label),
        used instead of those of ``data``: a streamed fit builds its recipes on a small
        template with the whole table's constants (:mod:`lmm_core.stream.plan`).

    Returns
    -------
    Design

    Raises
    ------
    FormulaError
        Syntax errors and unknown columns or functions.
    DataError
        Non-numeric response, non-finite values, no rows left.
    ModelError
        No random-effects term, unsupported grouping factors, constant random slopes.
    """
    spec = _parse(formula) if isinstance(formula, str) else formula
    if not isinstance(data, pd.DataFrame):
        raise DataError("The data must be a table (pandas DataFrame).")
    used = _check_columns(spec, data)
    if not spec.random and spec.residual is None:
        raise ModelError(
            "Formula has no random-effects term `( … | group)`; add one such as "
            "`(1 | patient)` (or a covariance of the visits such as `us(visit | patient)`), "
            "or use ordinary regression."
        )
    ev = Evaluator(data)
    ev.stats.update(stats or {})
    missing = np.zeros(len(data), dtype=bool)
    with_missing = []
    for name in used:
        value = ev.column(Name(name, 0))
        m = value.codes < 0 if isinstance(value, Factor) else np.isnan(value.values)
        if m.any():
            missing |= m
            with_missing.append(name)
    rows = np.flatnonzero(~missing)
    n = rows.size
    messages: list[str] = []
    if n == 0:
        raise DataError(
            f"No rows left: every row has a missing value in {', '.join(with_missing)}."
            if with_missing
            else "The data have no rows."
        )
    if with_missing:
        k = len(data) - n
        messages.append(
            f"{k} row{'s' * (k > 1)} with missing values in {', '.join(with_missing)} "
            f"{'were' if k > 1 else 'was'} left out"
        )
    y, trials = _response(ev, spec, rows)
    offset = _offset(ev, spec, rows)

    fixed = _evaluate(ev, spec.fixed.exprs, {v for t in spec.fixed.terms for v in t}, rows)
    X_full, names, owners, recipe = model_matrix(spec.fixed, fixed, n, "the fixed part")
    keep = _keep_columns(X_full)
    aliased = tuple(nm for i, nm in enumerate(names) if i not in set(keep.tolist()))
    X = np.ascontiguousarray(X_full[:, keep]) if aliased else X_full
    if aliased:
        messages.append(aliased_message(aliased))

    terms = [_random_term(ev, r, rows, n) for r in spec.random]
    messages += [m for t in terms if (m := _curve_visits_note(t))]
    nl = [t.n_levels for t in terms]
    if any(b > a for a, b in zip(nl, nl[1:], strict=False)):
        order = sorted(range(len(nl)), key=lambda i: nl[i])  # stable ascending, as R's order()
        terms = [terms[i] for i in reversed(order)]
    _check_terms(terms, n, check_nobs)
    residual = residual_term(ev, spec.residual, rows) if spec.residual is not None else None
    return Design(
        formula=spec.text,
        response=spec.response_label,
        y=y,
        X=X,
        x_names=tuple(names[i] for i in keep),
        aliased=aliased,
        reterms=tuple(terms),
        rows=rows,
        n_dropped=len(data) - n,
        messages=tuple(messages),
        spec=spec,
        x_terms=tuple(owners[i] for i in keep),
        fixed_recipe=recipe,
        kept_columns=keep,
        stats=ev.stats,
        residual=residual,
        offset=offset,
        trials=trials,
    )


def _numeric_response(ev: Evaluator, node, label: str, rows: np.ndarray) -> np.ndarray:
    value = ev.variable(node)
    if not isinstance(value, Numeric):
        raise DataError(
            f"The response `{label}` is not numeric (it holds categories); a mixed model "
            "needs a numeric outcome."
        )
    y = np.ascontiguousarray(value.values[rows])
    _check_finite(label, isinstance(node, Name), y)
    return y


def _response(ev: Evaluator, spec: ModelSpec, rows: np.ndarray):
    """``(y, trials)``: the response, or for ``cbind(s, f)`` the successes and ``s + f``."""
    if spec.cbind is None:
        return _numeric_response(ev, spec.response, spec.response_label, rows), None
    succ, fail = (_numeric_response(ev, nd, deparse(nd), rows) for nd in spec.cbind)
    return succ, succ + fail


def _offset(ev: Evaluator, spec: ModelSpec, rows: np.ndarray) -> np.ndarray:
    """The sum of the ``offset()`` terms on the rows used (zeros without one)."""
    total = np.zeros(rows.size)
    for call in spec.offsets:
        values = ev.numeric(call.arg)[rows]
        _check_finite(deparse(call), False, values)
        total = total + values
    return total


def _random_term(ev: Evaluator, r, rows: np.ndarray, n: int) -> ReTerm:
    group = combine([ev.column(nm, as_factor=True).take(rows) for nm in r.group_vars])
    values = _evaluate(ev, r.lhs.exprs, {v for t in r.lhs.terms for v in t}, rows)
    what = f"the random-effects term for `{r.group}`"
    z, cnames, _, recipe = model_matrix(r.lhs, values, n, what)
    for j, name in enumerate(cnames):
        if name != "(Intercept)" and np.ptp(z[:, j]) == 0:
            raise ModelError(
                f"The random slope on `{name}` for `{r.group}` cannot be estimated: `{name}` "
                f"has the same value ({z[0, j]:g}) in every row used. Remove it from the "
                f"random-effects term, e.g. `(1 | {r.group})`."
            )
    rebuild = TermRecipe(recipe, r.group_vars, group.labels, ev.stats)
    return ReTerm(
        group=r.group,
        levels=group.labels,
        codes=group.codes,
        z=z,
        cnames=cnames,
        structure=GeneralCovariance(z.shape[1]),
        rebuild=rebuild,
    )


def _curve_visits_note(term: ReTerm) -> str | None:
    """A random curve (spline or polynomial) needs enough visits per group: an error when no
    group has as many observations as the curve has coefficients, a note when most do not."""
    recipe = term.rebuild
    if not (isinstance(recipe, TermRecipe) and recipe.lhs.bases):
        return None
    q = term.n_columns
    counts = np.bincount(term.codes, minlength=term.n_levels)
    simpler = f"`(1 | {term.group})`" if q > 2 else "a random intercept"
    if q > counts.max():
        raise ModelError(
            f"The random curve for `{term.group}` has {q} coefficients per group "
            f"({', '.join(term.cnames)}), but no group has more than {counts.max()} "
            f"observations, so the curves cannot be told apart from the noise. Use fewer "
            f"degrees of freedom in the random part (e.g. a straight line `(time | "
            f"{term.group})`) or {simpler}; keep the curve in the fixed part."
        )
    median = float(np.median(counts))
    if q > median:
        return (
            f"the random curve for `{term.group}` has {q} coefficients per group but half of "
            f"the groups have {median:g} observations or fewer: their curves rest mostly on "
            "the population curve; a simpler random part may fit as well (compare them)"
        )
    return None


def _check_terms(terms: list[ReTerm], n: int, check_nobs: bool = True) -> None:
    for t in terms:
        if t.n_levels < 2:
            only = f" ({t.levels[0]})" if t.levels else ""
            raise ModelError(
                f"The grouping factor `{t.group}` has only one level{only} in the rows used; "
                "a random effect needs at least two groups."
            )
        if not check_nobs:
            continue
        if t.n_levels >= n:
            raise ModelError(
                f"The grouping factor `{t.group}` has {t.n_levels} levels for {n} observations: "
                "number of levels of each grouping factor must be < number of observations. "
                "Each group needs repeated measurements; check that you chose the grouping "
                "column (e.g. patient), not a row identifier."
            )
        if t.n_levels * t.n_columns >= n:
            raise ModelError(
                f"The term for `{t.group}` has {t.n_levels * t.n_columns} random effects "
                f"({t.n_levels} levels x {t.n_columns}: {', '.join(t.cnames)}) for {n} "
                "observations: the number of random effects must be < number of "
                "observations. Use fewer random slopes, e.g. `(1 | "
                f"{t.group})`."
            )


__all__ = ["Design", "build_design", "combine", "term_matrix"]
