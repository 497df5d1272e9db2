"""Pass 1 of a streamed fit: what the design needs, learned with SQL aggregates.

The in-memory path learns, from the whole table (:func:`lmm_core.design.build.build_design`):
which rows are used (no missing value in a used column), the levels of every factor and
grouping factor among those rows (sorted by our rules: numbers numerically, strings by code
point, interactions ``a:b`` by ``a`` then ``b``), the constants of ``scale()``/``center()``
and the knots of ``ns()``/``bs()`` (from the finite values of the argument over every row;
quantile knots by linear interpolation, R's type 7). Here each of these is one aggregate
query where the data live (``SELECT DISTINCT``, ``avg``/``stddev_samp``, ``quantile_cont``).
A factor of an expression (``factor(dose / 2)``, ``C(visit + shift)``) is learned from the
distinct combinations of its columns among the rows used (one ``SELECT DISTINCT``), on which
our own evaluator computes it: the same doubles as in memory, so the same levels, labels
(``0.5``, ``1``, ``-Inf``), numeric order and reference level, for every expression of the
grammar (``scale()``/``center()`` inside with the whole table's constants; refused: a NaN
value in a row used, more than :data:`MAX_FACTOR_COMBINATIONS` combinations).

The design itself is then built by our own design code on a *template*: a small table with
every level of the fixed-part factors and spread numeric values (the columns of a factor of
an expression take those combinations together, so that it has exactly the levels of the
table: spread values would make spurious ones), so that
:func:`~lmm_core.design.build.build_design` returns the recipes (columns, names, contrasts),
evaluated with the learned constants instead of the template's (its ``stats``), and each
random-effects term gets the grouping levels of the whole table (zero-row
:class:`~lmm_core.design.reterms.ReTerm` templates, in lme4's order by number of levels).
Pass 2 (:mod:`lmm_core.stream.batches`) evaluates the recipes on each batch as on new data.

Before any row is streamed, the memory the blocks will need is estimated from the level
counts (:func:`block_memory`) and a model above the limit is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import Design, _check_columns, _check_terms, build_design, combine
from lmm_core.design.covariance import GeneralCovariance
from lmm_core.design.model_matrix import Evaluator, Factor
from lmm_core.design.reterms import ReTerm
from lmm_core.design.splines import BasisState, _check_given_knots, _check_spline
from lmm_core.errors import DataError, ModelError
from lmm_core.formula.basis_args import basis_call
from lmm_core.formula.grammar import (
    BASIS_FUNCTIONS,
    FACTOR_FUNCTIONS,
    Call,
    Name,
    names_in,
    strip_parens,
    walk,
)
from lmm_core.formula.quoting import deparse
from lmm_core.formula.spec import ModelSpec
from lmm_core.formula.terms import parse_formula
from lmm_core.glmm.response import GLMM_RESIDUAL_MESSAGE
from lmm_core.stream.sql import to_sql

GIB = 1024**3
#: Distinct values of a spline argument fetched for the checks of its knots (above: skipped,
#: an interval between quantile knots cannot be empty with that many values).
MAX_DISTINCT_CHECKED = 200_000
#: Distinct values (combinations of its columns) of a factor of an expression fetched in pass 1.
MAX_FACTOR_COMBINATIONS = 1_000_000
#: Up to this many combinations the template holds them all (the columns' own values for
#: their other uses, a spline or a slope); beyond, one per level.
TEMPLATE_COMBINATIONS = 4096


@dataclass(frozen=True)
class StreamPlan:
    """What pass 1 learned.

    Attributes
    ----------
    spec
        The parsed formula.
    design
        Template design: recipes with the whole table's constants; its ``X``/``y`` are those
        of the template (not data), its fixed recipe keeps every column (aliasing is decided
        after pass 2).
    reterms
        Random-effects terms with the whole table's levels and no rows, in lme4's order.
    columns
        The table's columns the formula uses.
    where
        SQL condition selecting the rows used (no missing value in a used column).
    n_total, n_used
        Rows in the table and rows used.
    messages
        Notes as the in-memory path writes them (rows left out).
    memory_bytes
        Estimated memory of the blocks and of one evaluation (:func:`block_memory`).
    """

    spec: ModelSpec
    design: Design
    reterms: tuple[ReTerm, ...]
    columns: list[str]
    where: str
    n_total: int
    n_used: int
    messages: tuple[str, ...]
    memory_bytes: int

    @property
    def x_names(self) -> tuple[str, ...]:
        """Names of every fixed-effects column before aliased ones are dropped."""
        return tuple(self.design.fixed_recipe.names)


def plan_stream(
    formula: str,
    engine,
    *,
    max_memory_gib: float = 2.0,
    glmm: str | None = None,
    residual: bool = False,
) -> StreamPlan:
    """Pass 1 (module docstring) over ``engine``'s table.

    Parameters
    ----------
    formula
        Model formula.
    engine
        :class:`~lmm_core.stream.sources.DuckDBEngine` (or any engine with ``query``,
        ``empty_frame``, ``columns`` and a ``dialect``).
    max_memory_gib
        Largest estimated memory of the blocks accepted, in GiB.
    glmm
        The family (``"binomial"``, ``"poisson"``) of a GLMM (:mod:`lmm_core.stream.glmm`):
        ``cbind(successes, failures)`` is then accepted and a grouping factor may have one
        level per row (glmer's observation-level random effect); ``None``: a linear mixed
        model.
    residual
        Accept a covariance structure of the visits (``us(visit | id)``): the caller is
        :func:`lmm_core.stream.mmrm.plan_mmrm_stream`, which learns the visits and patterns;
        the template then has one subject per row.

    Raises
    ------
    FormulaError, DataError, ModelError
        As the in-memory path, and a :class:`ModelError` with the memory estimate for a
        model whose blocks would exceed ``max_memory_gib``.
    """
    spec = parse_formula(formula)
    if spec.residual is not None and not residual:  # a GLMM's formula
        raise ModelError(GLMM_RESIDUAL_MESSAGE.format(term=spec.residual.label))
    if spec.cbind is not None and glmm is None:
        raise ModelError(GLMM_MESSAGE)
    if spec.cbind is not None and glmm != "binomial":
        raise ModelError(
            "`cbind(successes, failures)` is a binomial outcome: choose family='binomial'."
        )
    if not spec.random and spec.residual is None:
        raise ModelError(
            "Formula has no random-effects term `( … | group)`; add one such as "
            "`(1 | patient)`, or use ordinary regression."
        )
    used = _check_columns(spec, pd.DataFrame(columns=engine.columns()))
    d = engine.dialect
    schema = engine.empty_frame(used)
    is_float = {c: pd.api.types.is_float_dtype(schema[c].dtype) for c in used}
    numeric = {c: _is_numeric(schema[c]) for c in used}
    where = " AND ".join(d.present(c, is_float[c]) for c in used)

    counts = _missing_counts(engine, used, is_float, where)
    n_total, n_used = counts["n_total"], counts["n_used"]
    with_missing = [c for c in used if counts[c] > 0]
    messages: list[str] = []
    if n_used == 0:
        raise DataError(
            f"No rows left: every row has a missing value in {', '.join(with_missing)}."
            if with_missing
            else "The data have no rows."
        )
    if with_missing:
        k = n_total - n_used
        messages.append(
            f"{k} row{'s' * (k > 1)} with missing values in {', '.join(with_missing)} "
            f"{'were' if k > 1 else 'was'} left out"
        )
    _check_infinite(engine, [c for c in used if is_float[c]], where)

    categorical = _categorical_columns(spec, numeric)
    model_vars = _model_variables(spec)
    stats = _learn_stats(spec, engine)
    groups = [
        (cols, _expression_rows(engine, cols, calls, categorical, model_vars, where, stats))
        for cols, calls in _factor_expressions(spec)
    ]
    in_groups = {c for cols, _ in groups for c in cols}
    distinct = {
        c: engine.query(f"SELECT DISTINCT {d.ident(c)} FROM {{table}} WHERE {where}")
        for c in used
        if c in categorical and c not in in_groups
    }
    counts = [len(distinct[c]) for c in distinct if c in model_vars]
    k_levels = max([2] + counts + [k for _, (_, k) in groups])
    numbers = [c for c in used if c not in categorical and c not in in_groups]
    ranges = _numeric_ranges(engine, numbers, where)
    rows = {c: frame for cols, (frame, _) in groups for c in cols}
    template = _template(used, schema, distinct, ranges, categorical, model_vars, k_levels, rows)
    if spec.residual is not None:
        template = _one_subject_per_row(template, spec.residual.subject.name, schema)
    design = build_design(spec, template, stats=stats)  # the whole table's constants
    design = replace(design, kept_columns=np.arange(len(design.fixed_recipe.names)))
    reterms = _global_terms(spec, design, template, engine, where)
    _check_terms(list(reterms), n_used, glmm is None)
    memory = block_memory(reterms, len(design.fixed_recipe.names), n_used) if reterms else 0
    if memory > max_memory_gib * GIB:
        raise ModelError(_too_large(reterms, memory, max_memory_gib))
    return StreamPlan(spec, design, reterms, used, where, n_total, n_used, tuple(messages), memory)


GLMM_MESSAGE = (
    "`cbind(successes, failures)` is a GLMM outcome, not a linear mixed model's: fit it with "
    "lmm_core.fit_glmm(formula, source, family='binomial') (streamed on DuckDB, one pass over "
    "the rows per iteration of penalized IRLS; not on Spark)."
)


def _is_numeric(series: pd.Series) -> bool:
    dt = series.dtype
    if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dt):
        return False
    return bool(pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_complex_dtype(dt))


def _model_variables(spec: ModelSpec) -> set[str]:
    """Columns used inside the fixed part, the random terms' left-hand sides, the response
    and the offsets (not as grouping factors only)."""
    nodes = [spec.response, *(c.arg for c in spec.offsets)]
    for tl in [spec.fixed] + [r.lhs for r in spec.random]:
        nodes.extend(tl.exprs[v] for v in tl.variables)
    return {nm.name for node in nodes for nm in names_in(node)}


def _categorical_columns(spec: ModelSpec, numeric: dict[str, bool]) -> set[str]:
    """Columns that are factors: not numeric, grouping factors, and ``factor(x)``/``C(x)``
    of a column ``x`` (a factor of an expression is :func:`_factor_expressions`')."""
    out = {c for c, is_num in numeric.items() if not is_num}
    for r in spec.random:
        out.update(nm.name for nm in r.group_vars)
    for call in _factor_calls(spec):
        arg = strip_parens(call.arg)
        if isinstance(arg, Name):
            out.add(arg.name)
    return out


def _factor_calls(spec: ModelSpec) -> list[Call]:
    """Every ``factor()``/``C()`` of the fixed part and of the random terms' left sides."""
    out: dict[str, Call] = {}
    for tl in [spec.fixed] + [r.lhs for r in spec.random]:
        for v in tl.variables:
            for node in walk(tl.exprs[v]):
                if isinstance(node, Call) and node.func in FACTOR_FUNCTIONS:
                    out.setdefault(deparse(node), node)
    return list(out.values())


def _factor_expressions(spec: ModelSpec) -> list[tuple[list[str], list[Call]]]:
    """The factors of an expression (``factor(time / 30)``, ``C(dose * 2)``), gathered by
    the columns they use: each item is ``(columns, calls)``, two calls sharing a column in
    the same item (their levels depend on the same rows' combinations of values).
    """
    groups: list[tuple[list[str], list[Call]]] = []
    for call in _factor_calls(spec):
        if isinstance(strip_parens(call.arg), Name):
            continue
        cols = list(dict.fromkeys(nm.name for nm in names_in(call.arg)))
        joined = [g for g in groups if set(g[0]) & set(cols)]
        merged_cols = list(dict.fromkeys([c for g in joined for c in g[0]] + cols))
        merged_calls = [c for g in joined for c in g[1]] + [call]
        groups = [g for g in groups if g not in joined] + [(merged_cols, merged_calls)]
    return groups


def _expression_rows(
    engine, columns: list[str], calls: list[Call], categorical, model_vars, where: str, stats
) -> tuple[pd.DataFrame, int]:
    """Template rows of the columns of factors of expressions, and their largest number of
    levels.

    The distinct combinations of ``columns`` among the rows used are one SQL query; each
    factor is then evaluated on them by our own :class:`~lmm_core.design.model_matrix.Evaluator`,
    so its levels are exactly those of the in-memory path on the whole table: the same
    values in double precision, sorted numerically and labelled as R prints them
    (``factor(pnum / 2)``: ``0.5``, ``1``, ``1.5``, ...). A template holding every
    combination (or, beyond :data:`TEMPLATE_COMBINATIONS`, one combination per level of each
    factor and of each categorical column among them) has exactly those levels.

    Raises
    ------
    ModelError
        More than :data:`MAX_FACTOR_COMBINATIONS` combinations.
    DataError
        An expression that is not a number (NaN: ``log`` of a negative value, ``0 / 0``) in a
        row used: that row would have no level.
    FormulaError
        Arithmetic on a categorical column, as in memory.
    """
    d = engine.dialect
    cols = ", ".join(d.ident(c) for c in columns)
    frame = engine.query(
        f"SELECT DISTINCT {cols} FROM {{table}} WHERE {where} LIMIT {MAX_FACTOR_COMBINATIONS + 1}"
    )
    labels = ", ".join(f"`{deparse(c)}`" for c in calls)
    if len(frame) > MAX_FACTOR_COMBINATIONS:
        raise ModelError(
            f"{labels}: the columns {', '.join(columns)} take more than "
            f"{MAX_FACTOR_COMBINATIONS:,} distinct values (or combinations) in the rows used, "
            "too many for the levels of a factor; check the expression, or add it as a column "
            "of the table."
        )
    frame = frame.reset_index(drop=True)
    ev = Evaluator(frame)
    ev.stats.update(stats)  # scale()/center() inside: the whole table's constants
    factors = []
    for call in calls:
        fac = ev.variable(call)
        assert isinstance(fac, Factor)
        k = int((fac.codes < 0).sum())
        if k:
            raise DataError(
                f"`{deparse(call)}` is not a number in the rows used for {k} distinct "
                f"value{'s' * (k > 1)} of {', '.join(columns)} (e.g. log or sqrt of a negative "
                "value, or 0 / 0), so those rows have no level; check the values or change "
                "the expression."
            )
        factors.append((fac, True))
    for c in columns:
        if c in categorical:
            factors.append((ev.column(Name(c, 0), as_factor=True), c in model_vars))
    n_levels = max([2] + [len(f.labels) for f, in_model in factors if in_model])
    if len(frame) > TEMPLATE_COMBINATIONS:
        keep: set[int] = set()
        for fac, in_model in factors:
            codes, first = np.unique(fac.codes, return_index=True)
            keep.update(first[codes >= 0][: None if in_model else 2].tolist())
        frame = frame.iloc[sorted(keep)].reset_index(drop=True)
    return frame, n_levels


def _missing_counts(engine, used, is_float, where) -> dict[str, int]:
    d = engine.dialect
    parts = ["count(*) AS n_total", f"count(*) FILTER (WHERE {where}) AS n_used"]
    parts += [
        f"count(*) FILTER (WHERE NOT {d.present(c, is_float[c])}) AS m{i}"
        for i, c in enumerate(used)
    ]
    row = engine.query(f"SELECT {', '.join(parts)} FROM {{table}}").iloc[0]
    out = {"n_total": int(row["n_total"]), "n_used": int(row["n_used"] or 0)}
    out.update({c: int(row[f"m{i}"] or 0) for i, c in enumerate(used)})
    return out


def _check_infinite(engine, columns: list[str], where: str) -> None:
    d = engine.dialect
    if not columns:
        return
    parts = [
        f"count(*) FILTER (WHERE NOT {d.finite(d.ident(c))}) AS c{i}" for i, c in enumerate(columns)
    ]
    row = engine.query(f"SELECT {', '.join(parts)} FROM {{table}} WHERE {where}").iloc[0]
    for i, c in enumerate(columns):
        k = int(row[f"c{i}"] or 0)
        if k:
            raise DataError(
                f"Column `{c}` has {k} infinite value{'s' * (k > 1)} in the rows used; "
                "replace or remove them."
            )


def _numeric_ranges(engine, columns: list[str], where: str) -> dict[str, tuple[float, float]]:
    if not columns:
        return {}
    d = engine.dialect
    parts = []
    for i, c in enumerate(columns):
        x = f"CAST({d.ident(c)} AS DOUBLE)"
        parts += [f"min({x}) AS lo{i}", f"max({x}) AS hi{i}"]
    row = engine.query(f"SELECT {', '.join(parts)} FROM {{table}} WHERE {where}").iloc[0]
    return {c: (float(row[f"lo{i}"]), float(row[f"hi{i}"])) for i, c in enumerate(columns)}


def _template(
    used, schema, distinct, ranges, categorical, model_vars, k_levels, rows
) -> pd.DataFrame:
    """A small table on which build_design yields the recipes of the whole table: every
    level of the factors of the model (a grouping factor only needs two), numbers spread
    over the range of the rows used, and the columns of a factor of an expression taken
    together from ``rows`` (column -> frame of :func:`_expression_rows`: combinations that
    give every level of the whole table and no other)."""
    size = max([16 * max(64, k_levels)] + [len(f) for f in rows.values()])
    cols = {}
    for c in used:
        if c in rows:
            idx = np.resize(np.arange(len(rows[c])), size)
            cols[c] = rows[c][c].iloc[idx].reset_index(drop=True)
        elif c in categorical:
            values = distinct[c][c]
            keep = len(values) if c in model_vars else min(2, len(values))
            idx = np.resize(np.arange(keep), size)
            cols[c] = values.iloc[idx].reset_index(drop=True)
        else:
            lo, hi = ranges[c]
            cols[c] = pd.Series(np.linspace(lo, hi, size), dtype=float)
    frame = pd.DataFrame(cols)
    return frame.astype({c: schema[c].dtype for c in used if c in categorical or c in rows})


def _one_subject_per_row(template: pd.DataFrame, subject: str, schema) -> pd.DataFrame:
    """The template with a distinct subject in each row, so that no subject has a visit
    twice (its covariance term is only built, not used: the plan learns the real one)."""
    ids = np.arange(len(template))
    numeric = _is_numeric(schema[subject])
    values = pd.Series(ids if numeric else [f"s{i}" for i in ids])
    out = template.copy()
    out[subject] = values.astype(schema[subject].dtype) if numeric else values
    return out


def _calls(spec: ModelSpec) -> list[Call]:
    nodes = [spec.response, *(c.arg for c in spec.offsets)]
    for tl in [spec.fixed] + [r.lhs for r in spec.random]:
        nodes.extend(tl.exprs[v] for v in tl.variables)
    out: dict[str, Call] = {}
    for node in nodes:
        for nd in walk(node):
            if isinstance(nd, Call) and (
                nd.func in BASIS_FUNCTIONS or nd.func in ("scale", "center")
            ):
                out.setdefault(deparse(nd), nd)
    return list(out.values())


def _learn_stats(spec: ModelSpec, engine) -> dict:
    """``scale()``/``center()`` constants and basis states over the whole table."""
    d = engine.dialect
    stats: dict = {}
    for call in _calls(spec):
        label = deparse(call)
        x = to_sql(call.arg, d)
        ok = d.finite(x)
        if call.func in ("scale", "center"):
            row = engine.query(
                f"SELECT avg({x}) AS m, stddev_samp({x}) AS s, count(*) AS n FROM {{table}} "
                f"WHERE {ok}"
            ).iloc[0]
            n = int(row["n"])
            mean = float(row["m"]) if n else float("nan")
            sd = float(row["s"]) if n > 1 else float("nan")
            if call.func == "scale" and not (sd > 0):
                raise DataError(f"`{label}`: the values are constant, so they cannot be scaled.")
            stats[label] = (mean, sd if call.func == "scale" else 1.0)
            continue
        stats[label] = _learn_basis(call, label, x, ok, engine)
    return stats


def _centred_moments(x: str, ok: str, order: int, engine) -> tuple[float, np.ndarray]:
    """``(c, [sum (x - c)^k for k = 0..order])`` with ``c`` the mean, by two SQL passes."""
    c = float(engine.query(f"SELECT avg({x}) AS c FROM {{table}} WHERE {ok}").iloc[0]["c"])
    u = f"(({x}) - ({c!r}))"
    sums = ", ".join(f"sum(power({u}, {k})) AS m{k}" for k in range(order + 1))
    row = engine.query(f"SELECT {sums} FROM {{table}} WHERE {ok}").iloc[0]
    return c, np.array([float(row[f"m{k}"]) for k in range(order + 1)])


def poly_from_moments(moments: tuple[float, np.ndarray]) -> tuple[tuple, tuple]:
    """R's ``poly`` coefficients ``(alpha, norm2)`` from the centred power sums of ``x``.

    The monic orthogonal polynomials of the values (Stieltjes): ``P_0 = 1``,
    ``P_{j+1} = (u - a_j) P_j - (n_j / n_{j-1}) P_{j-1}`` in ``u = x - c``, with
    ``n_j = <P_j, P_j>`` and ``a_j = <u P_j, P_j> / n_j``, where ``<p, q> = sum_k (pq)_k m_k``
    for the coefficients of the product ``pq`` and the power sums ``m_k = sum (x - c)^k``.
    Returns ``alpha_j = a_j + c`` (``j = 0..d``, the caller keeps ``d``) and
    ``norm2 = (1, n_0, ..., n_d)``: what :func:`lmm_core.design.splines._poly_coefficients`
    computes from the values by a QR factorization (equal to rounding for the small degrees
    of a time trend). ``d`` is ``(len(m) - 1) // 2``.
    """
    c, m = moments
    degree = (m.size - 1) // 2

    def inner(p: np.ndarray, q: np.ndarray) -> float:
        prod = np.convolve(p, q)
        return float(prod @ m[: prod.size])

    prev, cur = np.zeros(1), np.ones(1)
    norms, alphas, n_prev = [], [], 1.0
    for j in range(degree + 1):
        n_j = inner(cur, cur)
        a_j = inner(np.concatenate([[0.0], cur]), cur) / n_j
        norms.append(n_j)
        alphas.append(a_j + c)
        shifted = np.concatenate([[0.0], cur])  # u P_j
        nxt = shifted - a_j * np.pad(cur, (0, 1))
        if j:
            nxt -= (n_j / n_prev) * np.pad(prev, (0, nxt.size - prev.size))
        prev, cur, n_prev = cur, nxt, n_j
    return tuple(alphas), (1.0, *norms)


def _learn_basis(call: Call, label: str, x: str, ok: str, engine) -> BasisState:
    bc = basis_call(call)
    row = engine.query(
        f"SELECT min({x}) AS lo, max({x}) AS hi, count(DISTINCT {x}) AS k FROM {{table}} WHERE {ok}"
    ).iloc[0]
    n_distinct = int(row["k"])
    if n_distinct < 2:
        raise DataError(f"`{label}`: the values are all the same, so they have no shape to fit.")
    if bc.func == "poly":
        if bc.degree >= n_distinct:
            raise DataError(
                f"`{label}`: the degree ({bc.degree}) must be less than the number of distinct "
                f"values ({n_distinct})."
            )
        if bc.raw:
            return BasisState("poly", bc.degree, raw=True)
        alpha, norm2 = poly_from_moments(_centred_moments(x, ok, 2 * bc.degree + 1, engine))
        return BasisState("poly", bc.degree, alpha=alpha[: bc.degree], norm2=norm2)
    boundary = bc.boundary or (float(row["lo"]), float(row["hi"]))
    if bc.knots is not None:
        _check_given_knots(bc.knots, boundary, label)
        knots = tuple(float(k) for k in bc.knots)
    else:
        knots = _quantile_knots(bc, x, ok, boundary, engine)
    state = BasisState(bc.func, bc.degree, knots, boundary, bc.intercept)
    if n_distinct <= MAX_DISTINCT_CHECKED:
        values = engine.query(f"SELECT DISTINCT {x} AS v FROM {{table}} WHERE {ok}")["v"]
        _check_spline(state, np.sort(values.to_numpy(dtype=float)), label)
    return state


def _quantile_knots(bc, x: str, ok: str, boundary: tuple[float, float], engine) -> tuple:
    """Interior knots at quantiles, as :func:`lmm_core.design.splines.learn_basis`."""
    if bc.df is None:
        return ()
    order = 4 if bc.func == "ns" else bc.degree + 1
    extra = 1 + int(bc.intercept) if bc.func == "ns" else order - 1 + int(bc.intercept)
    n_knots = max(bc.df - extra, 0)
    if n_knots == 0:
        return ()
    probs = np.linspace(0.0, 1.0, n_knots + 2)[1:-1].tolist()
    lo, hi = (repr(float(b)) for b in boundary)
    q = engine.dialect.quantiles(x, probs)
    row = engine.query(
        f"SELECT {q} AS q FROM {{table}} WHERE {ok} AND {x} >= {lo} AND {x} <= {hi}"
    ).iloc[0]
    return tuple(float(v) for v in row["q"])


def lme4_order(n_levels: list[int]) -> list[int]:
    """lme4's term order (:func:`lmm_core.design.build.build_design`, step 5): formula order,
    unless the numbers of levels ever increase, then decreasing (ties reversed, as R)."""
    order = list(range(len(n_levels)))
    if any(b > a for a, b in zip(n_levels, n_levels[1:], strict=False)):
        order = list(reversed(sorted(order, key=lambda i: n_levels[i])))
    return order


def _group_labels(frame: pd.DataFrame, group_vars) -> tuple[str, ...]:
    ev = Evaluator(frame)
    return combine([ev.column(nm, as_factor=True) for nm in group_vars]).labels


def _global_terms(spec, design: Design, template, engine, where: str) -> tuple[ReTerm, ...]:
    """The template's terms with the whole table's levels, in lme4's order for them."""
    d = engine.dialect
    t_counts = [len(_group_labels(template, r.group_vars)) for r in spec.random]
    by_spec = dict(zip(lme4_order(t_counts), design.reterms, strict=True))
    labels = []
    for r in spec.random:
        cols = ", ".join(d.ident(nm.name) for nm in r.group_vars)
        frame = engine.query(f"SELECT DISTINCT {cols} FROM {{table}} WHERE {where}")
        labels.append(_group_labels(frame, r.group_vars))
    terms = []
    for i in lme4_order([len(lab) for lab in labels]):
        t = by_spec[i]
        s = t.n_columns
        terms.append(
            ReTerm(
                group=t.group,
                levels=labels[i],
                codes=np.zeros(0, dtype=np.int64),
                z=np.zeros((0, s)),
                cnames=t.cnames,
                structure=GeneralCovariance(s),
                rebuild=replace(t.rebuild, levels=labels[i]),
            )
        )
    return tuple(terms)


def block_memory(reterms: tuple[ReTerm, ...], p: int, n: int) -> int:
    """Estimated bytes of the blocks and of one evaluation of the criterion.

    With the terms merged by grouping factor, ``m1`` levels of ``S1`` columns for the first
    and ``q2`` random effects for the others: ``a11``, ``a1xy`` and the factor's
    ``L11``/its inverse/``L31`` take ``8 m1 (3 S1^2 + 2 S1 (p + 1))`` bytes; ``a22``, ``L22``,
    its working copy and the inverse for the conditional covariances ``4 * 8 q2^2``; ``a21``
    and ``L21`` at most one ``S1 x S2`` block per row (``n``) or per pair of levels.
    """
    groups: dict[tuple, list[int]] = {}
    for t in reterms:
        groups.setdefault((t.group, t.levels), []).append(t.n_columns)
    sizes = [(len(key[1]), sum(cols)) for key, cols in groups.items()]
    m1, s1 = sizes[0]
    first = 8 * m1 * (3 * s1 * s1 + 2 * s1 * (p + 1))
    q2 = sum(m * s for m, s in sizes[1:])
    pairs = sum(min(n, m1 * m) * s1 * s for m, s in sizes[1:])
    return int(first + 4 * 8 * q2 * q2 + 3 * 12 * pairs + 8 * (p + 1) ** 2)


def _too_large(reterms, memory: int, limit_gib: float) -> str:
    merged: dict[tuple, int] = {}
    for t in reterms:
        merged[(t.group, len(t.levels))] = merged.get((t.group, len(t.levels)), 0) + t.n_columns
    parts = [f"`{g}` {m:,} levels x {s}" for (g, m), s in merged.items()]
    first = parts[0]
    rest = ", ".join(parts[1:])
    why = (
        f"the random effects of {rest} form a dense block (q2 x q2, q2 = "
        f"{sum(m * s for (_, m), s in list(merged.items())[1:]):,}) beside the first "
        f"grouping factor ({first})"
        if rest
        else f"the grouping factor {first} has that many per-level blocks"
    )
    return (
        f"This model needs about {memory / GIB:.1f} GiB for its cross-product blocks, above "
        f"the limit of {limit_gib:g} GiB: {why}. A crossed factor with that many levels "
        "cannot be fitted in one pass; fit it on a sample, or make it a fixed effect or a "
        "nested term."
    )


__all__ = ["GLMM_MESSAGE", "StreamPlan", "block_memory", "lme4_order", "plan_stream"]
