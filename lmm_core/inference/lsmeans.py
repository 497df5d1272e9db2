"""Least-squares means (estimated marginal means, emmeans' default) and their contrasts.

The reference grid (emmeans' ``ref_grid``) has one row per combination of the levels of every
factor of the fixed part; numeric covariates sit at their mean over the rows used in the fit
(a covariate inside a spline, ``log()`` or ``scale()`` is set at the mean of the data column,
then transformed, as emmeans does). ``X_g`` is the fixed-effects matrix of the grid, built by
the design's own recipe (:meth:`Design.fixed_matrix <lmm_core.design.build.Design>`), so that
interactions and spline bases need nothing special.

The LS-mean of a cell ``c`` of the ``specs`` (and ``by``) factors averages the grid rows of
that cell over the levels ``o`` of the other factors: ``l_c = sum_o w_o x_{c,o}``, estimate
``l_c' b``, standard error ``sqrt(l_c' C l_c)`` and the df of :func:`row_tests
<lmm_core.inference.estimable.row_tests>` (Satterthwaite or Kenward-Roger, with its adjusted
covariance, for either kind of fit). Weights ``w_o``: ``"equal"`` (``1 / #o``, emmeans'
default) or ``"proportional"`` (the frequencies of the combinations ``o`` in the rows used, emmeans'
``weights = "proportional"``; needs ``data``). Interval: ``estimate -/+ t_{df, (1+level)/2}
std_error``.

Contrasts (:func:`lsmeans_contrasts`) compare the cells within each ``by`` group:
``"revpairwise"`` (every later level minus every earlier one, emmeans' ``pairs(reverse =
TRUE)``: ``TRT - PBO``) or ``"trt.vs.ctrl"`` (every level minus a reference); each has its
own df, interval and unadjusted two-sided p value.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.design.model_matrix import series_value
from lmm_core.errors import LMMError
from lmm_core.formula.grammar import Call, Name, names_in, strip_parens
from lmm_core.inference.estimable import row_tests

WEIGHTS = ("equal", "proportional")
CONTRASTS = ("revpairwise", "trt.vs.ctrl")


def _factor_columns(design) -> dict[str, str]:
    """Data column -> the fixed part's factor variable (``AVISIT``, ``factor(age)``)."""
    recipe = design.fixed_recipe
    out = {}
    for label in recipe.levels:
        node = strip_parens(recipe.exprs[label])
        if isinstance(node, Call) and node.func in ("factor", "C"):
            node = strip_parens(node.arg)
        if not isinstance(node, Name):
            raise LMMError(
                f"LS-means need every factor of the model to be a data column; `{label}` is "
                "not (make it a column of the data first)."
            )
        out[node.name] = label
    return out


def _numeric_columns(design, factors: dict[str, str]) -> list[str]:
    recipe = design.fixed_recipe
    cols: list[str] = []
    for label, expr in recipe.exprs.items():
        if label in recipe.levels:
            continue
        for nm in names_in(expr):
            if nm.name not in cols and nm.name not in factors:
                cols.append(nm.name)
    return cols


def _as_list(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = list(value)
    if not all(isinstance(v, str) for v in out):
        raise LMMError(f"`{what}` must be a column name or a list of column names.")
    return out


def _check_specs(design, specs: list[str], by: list[str], factors: dict[str, str]) -> None:
    if not specs:
        raise LMMError("Name at least one factor in `specs` (e.g. specs='ARMCD').")
    numeric = set(_numeric_columns(design, factors))
    for col in specs + by:
        if col in factors:
            continue
        if col in numeric:
            raise LMMError(
                f"`{col}` is a numeric covariate of the model; LS-means are computed per level "
                "of a factor (the covariate is held at its mean)."
            )
        known = ", ".join(f"`{c}`" for c in factors) or "none"
        raise LMMError(f"The model has no factor `{col}`; its factors are: {known}.")
    if len(set(specs + by)) < len(specs + by):
        raise LMMError("A factor appears twice among `specs` and `by`.")


def _used_rows(design, data: pd.DataFrame | None, col: str, why: str) -> pd.Series:
    if data is None:
        raise LMMError(f"Pass `data=` (the data the model was fitted to): {why}.")
    if col not in data.columns:
        raise LMMError(f"The data have no column `{col}`.")
    if len(data) <= int(np.max(design.rows, initial=-1)):
        raise LMMError("`data` has fewer rows than the data the model was fitted to.")
    return data[col].iloc[design.rows]


def _covariates(design, factors: dict[str, str], data, at: dict) -> dict[str, float]:
    """Each numeric data column at its mean over the rows used (or at ``at[col]``)."""
    recipe = design.fixed_recipe
    values = {}
    for col in _numeric_columns(design, factors):
        if col in at:
            values[col] = float(at[col])
        elif data is None and isinstance(recipe.exprs.get(col), Name) and col in design.x_names:
            values[col] = float(design.X[:, design.x_names.index(col)].mean())
        else:
            why = f"the covariate `{col}` is set at its mean"
            values[col] = float(pd.to_numeric(_used_rows(design, data, col, why)).mean())
    return values


def _weights(design, others: list[str], levels: dict, weights: str, data) -> np.ndarray:
    sizes = [len(levels[c]) for c in others]
    n_other = int(np.prod(sizes)) if sizes else 1
    if weights == "equal" or not others:
        return np.full(n_other, 1.0 / n_other)
    why = "proportional weights are the frequencies of the levels in the data"
    codes = [
        series_value(_used_rows(design, data, c, why), as_factor=True).recode(levels[c])
        for c in others
    ]
    ok = np.all([c >= 0 for c in codes], axis=0)
    flat = np.ravel_multi_index([c[ok] for c in codes], sizes)
    counts = np.bincount(flat, minlength=n_other).astype(float)
    return counts / counts.sum()


def reference_cells(
    result,
    specs: str | list[str],
    by: str | list[str] | None = None,
    weights: str = "equal",
    data: pd.DataFrame | None = None,
    at: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The cells of ``by`` x ``specs`` and their linear functions ``L`` (one row per cell).

    Returns
    -------
    (DataFrame, ndarray)
        The cells' factor levels (columns ``by`` then ``specs``, categorical in the model's
        level order; the first ``by`` factor varies slowest) and ``L`` of shape ``(cells, p)``.
    """
    design = result.design
    specs_l, by_l = _as_list(specs, "specs"), _as_list(by, "by")
    if weights not in WEIGHTS:
        raise LMMError(f"Unknown weights {weights!r}; choose 'equal' or 'proportional'.")
    factors = _factor_columns(design)
    _check_specs(design, specs_l, by_l, factors)
    at = dict(at or {})
    bad = [c for c in at if c not in _numeric_columns(design, factors)]
    if bad:
        raise LMMError(f"`at` sets numeric covariates of the model; `{bad[0]}` is not one.")
    levels = {c: design.fixed_recipe.levels[lab] for c, lab in factors.items()}
    cell_cols = by_l + specs_l
    others = [c for c in factors if c not in cell_cols]
    cells = list(itertools.product(*(levels[c] for c in cell_cols)))
    other = list(itertools.product(*(levels[c] for c in others)))
    grid = pd.DataFrame(
        [cell + o for cell in cells for o in other], columns=cell_cols + others, dtype=object
    )
    for col, value in _covariates(design, factors, data, at).items():
        grid[col] = value
    X = design.fixed_matrix(grid).reshape(len(cells), len(other), design.p)
    w = _weights(design, others, levels, weights, data)
    L = np.einsum("cop,o->cp", X, w)
    frame = pd.DataFrame(cells, columns=cell_cols)
    for c in cell_cols:
        frame[c] = pd.Categorical(frame[c], categories=list(levels[c]))
    return frame, L


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise LMMError(f"The confidence level must be between 0 and 1, not {level}.")


def _with_intervals(frame: pd.DataFrame, tests: pd.DataFrame, level: float) -> pd.DataFrame:
    out = pd.concat([frame.reset_index(drop=True), tests.reset_index(drop=True)], axis=1)
    q = stats.t.ppf(0.5 + level / 2.0, out["df"].to_numpy(float))
    out["ci_lower"] = out["estimate"] - q * out["std_error"]
    out["ci_upper"] = out["estimate"] + q * out["std_error"]
    return out


def lsmeans(
    result,
    specs: str | list[str],
    by: str | list[str] | None = None,
    df_method: str = "satterthwaite",
    level: float = 0.95,
    weights: str = "equal",
    data: pd.DataFrame | None = None,
    at: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Least-squares means of ``specs`` within each level of ``by`` (module docstring).

    Parameters
    ----------
    result
        A random-effects fit (:class:`~lmm_core.model.results.LMMResult`) or an MMRM fit.
    specs, by
        Factor columns of the model: the cells are their level combinations.
    df_method
        ``"satterthwaite"``, ``"kenward-roger"`` (the adjusted standard error),
        ``"kenward-roger-linear"`` and ``"residual"`` (MMRM) or ``"wald"``.
    level
        Confidence level of the intervals.
    weights
        ``"equal"`` (emmeans' default) or ``"proportional"`` over the other factors' levels.
    data
        The data the model was fitted to: needed for proportional weights and for the mean of
        a covariate that is not its own column of ``X`` (a spline's argument).
    at
        Values of numeric covariates (data columns) instead of their means.

    Returns
    -------
    DataFrame
        One row per cell: the factor columns, ``estimate``, ``std_error``, ``df``,
        ``ci_lower``, ``ci_upper``.
    """
    _check_level(level)
    frame, L = reference_cells(result, specs, by, weights, data, at)
    return _with_intervals(frame, row_tests(result, L, df_method), level)


def _pairs(labels: list[str], method: str, reference: str | None) -> list[tuple[int, int]]:
    """``(i, j)`` pairs meaning cell ``i`` minus cell ``j``."""
    if method == "revpairwise":
        return [(i, j) for i in range(1, len(labels)) for j in range(i)]
    ref = 0 if reference is None else labels.index(reference) if reference in labels else -1
    if ref < 0:
        raise LMMError(f"The reference {reference!r} is not one of the cells: {labels}.")
    return [(i, ref) for i in range(len(labels)) if i != ref]


def lsmeans_contrasts(
    result,
    specs: str | list[str],
    by: str | list[str] | None = None,
    method: str = "revpairwise",
    reference: str | None = None,
    df_method: str = "satterthwaite",
    level: float = 0.95,
    weights: str = "equal",
    data: pd.DataFrame | None = None,
    at: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Differences of LS-means within each ``by`` group (e.g. ``TRT - PBO`` at each visit).

    ``method="revpairwise"``: every later cell minus every earlier one (emmeans'
    ``pairs(reverse = TRUE)``); ``"trt.vs.ctrl"``: every cell minus ``reference`` (the first
    cell by default; a cell of several ``specs`` factors is labelled by its levels joined by
    a space). p values are two-sided and unadjusted for multiplicity.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``contrast`` (``"TRT - PBO"``), ``estimate``, ``std_error``,
        ``df``, ``t_value``, ``p_value``, ``ci_lower``, ``ci_upper``.
    """
    _check_level(level)
    if method not in CONTRASTS:
        raise LMMError(f"Unknown contrast {method!r}; choose 'revpairwise' or 'trt.vs.ctrl'.")
    frame, L = reference_cells(result, specs, by, weights, data, at)
    specs_l, by_l = _as_list(specs, "specs"), _as_list(by, "by")
    labels = frame[specs_l].astype(str).agg(" ".join, axis=1).to_numpy()
    per_group = int(np.prod([len(frame[c].cat.categories) for c in specs_l]))
    rows, groups, names = [], [], []
    for start in range(0, len(frame), per_group):
        block = list(labels[start : start + per_group])
        for i, j in _pairs(block, method, reference):
            rows.append(L[start + i] - L[start + j])
            groups.append(start)
            names.append(f"{block[i]} - {block[j]}")
    out = frame.loc[groups, by_l].reset_index(drop=True)
    out["contrast"] = names
    table = _with_intervals(out, row_tests(result, np.array(rows), df_method), level)
    table.insert(len(by_l) + 4, "t_value", table["estimate"] / table["std_error"])
    t = table["t_value"].abs().to_numpy(float)
    table.insert(len(by_l) + 5, "p_value", 2.0 * stats.t.sf(t, table["df"].to_numpy(float)))
    return table
