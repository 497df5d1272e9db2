"""Evaluation of formula variables on a DataFrame, and R's model-matrix coding.

Variables are syntax trees from :mod:`lmm_core.formula`, evaluated here by a small
tree walker over numpy arrays (never ``eval``). A variable is either numeric or a factor:

- numeric dtypes are numeric unless wrapped in ``factor()``/``C()``;
- bool columns are factors with levels ``FALSE``/``TRUE``; string/object columns are
  factors with levels sorted by code point (R's C-locale order); a pandas Categorical keeps
  its category order; numbers inside ``factor()`` sort numerically and are labelled as R
  prints them (``2``, ``2.5``, ``1e+05``);
- ``scale(x)`` is ``(x - mean) / sd`` (``ddof=1``) and ``center(x)`` is ``x - mean``, with
  mean and sd taken over the non-missing values of the whole column (as R's model frame)
  and kept for new data;
- ``ns()``, ``bs()`` and ``poly()`` are :class:`Basis` variables of several columns, learned
  (knots, coefficients) from the non-missing values of the whole column and kept for new
  data (:mod:`lmm_core.design.splines`). In the model matrix they behave as a numeric
  variable per column, named ``ns(time, 3)1``, ``ns(time, 3)2``, ...

Model-matrix coding follows R's ``model.matrix`` with treatment contrasts. A factor ``F``
in term ``T`` is coded by contrasts (first level dropped) when ``T`` without ``F`` is empty
or is contained in an earlier term, and by indicators of all levels otherwise (R's
``TermCode``); without an intercept, the first factor of the first term holding a factor
gets indicators. Columns of an interaction vary fastest in its first variable; names are
joined with ``:`` (``age:SexMale``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_core.design.splines import BasisState, fitting_poly, learn_basis
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.formula.basis_args import basis_call
from lmm_core.formula.grammar import (
    BASIS_FUNCTIONS,
    BinOp,
    Call,
    Name,
    NAry,
    Node,
    Num,
    Paren,
    Unary,
)
from lmm_core.formula.quoting import deparse, r_number
from lmm_core.formula.spec import TermList

_UFUNCS = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}
#: Rows up to which a string column is coded by a sort of its values (cheaper than
#: ``pd.factorize`` for the small tables of most fits; the same levels and codes).
SMALL_STRING_COLUMN = 20_000
_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


@dataclass
class Numeric:
    """A numeric variable: float64 values (NaN where missing)."""

    values: np.ndarray


@dataclass
class Basis:
    """A variable of several numeric columns (``ns``, ``bs``, ``poly``): ``(n, k)`` values,
    NaN rows where missing; R names its columns ``label1 .. labelk``."""

    values: np.ndarray

    @property
    def suffixes(self) -> tuple[str, ...]:
        return tuple(str(j + 1) for j in range(self.values.shape[1]))


@dataclass
class Factor:
    """A categorical variable: integer codes (-1 where missing) into ``labels``."""

    codes: np.ndarray
    labels: tuple[str, ...]

    def take(self, rows: np.ndarray) -> Factor:
        """The factor on ``rows`` with unused levels dropped (order kept)."""
        codes = self.codes[rows]
        present = np.bincount(codes[codes >= 0], minlength=len(self.labels)) > 0
        if present.all():
            return Factor(codes, self.labels)
        new = np.cumsum(present) - 1
        out = np.where(codes >= 0, new[np.maximum(codes, 0)], -1)
        return Factor(out, tuple(lab for lab, p in zip(self.labels, present, strict=True) if p))

    def recode(self, levels: tuple[str, ...]) -> np.ndarray:
        """Codes into ``levels`` (training levels): -1 missing, -2 for an unseen level."""
        index = {lab: i for i, lab in enumerate(levels)}
        lookup = np.array([index.get(lab, -2) for lab in self.labels] + [-1], dtype=np.int64)
        return lookup[self.codes]  # code -1 picks the trailing -1


def _label(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return r_number(float(value))
    return str(value)


def _dedupe(codes: np.ndarray, labels: list[str], sort: bool) -> Factor:
    """Merge levels whose labels coincide (``1`` and ``1.0``); optionally sort labels."""
    uniq = sorted(set(labels)) if sort else list(dict.fromkeys(labels))
    if uniq == labels:
        return Factor(codes, tuple(labels))
    pos = {lab: i for i, lab in enumerate(uniq)}
    lookup = np.array([pos[lab] for lab in labels] + [-1], dtype=np.int64)
    return Factor(lookup[codes], tuple(uniq))


def numeric_factor(values: np.ndarray, integer: bool = False) -> Factor:
    """``factor()`` of numbers: levels sorted numerically, labelled as R prints them."""
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    labels = [str(int(u)) if integer else r_number(float(u)) for u in uniques]
    return _dedupe(codes.astype(np.int64), labels, sort=False)


def series_value(s: pd.Series, as_factor: bool = False) -> Numeric | Factor:
    """Convert a column to a :class:`Numeric` or :class:`Factor` following R's rules."""
    dt = s.dtype
    fast = _common_value(s, as_factor)
    if fast is not None:
        return fast
    if isinstance(dt, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy(dtype=np.int64)
        return _dedupe(codes, _labels(dt.categories), sort=False)
    if pd.api.types.is_bool_dtype(dt):
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        codes = np.where(np.isnan(arr), -1, arr).astype(np.int64)
        return Factor(codes, ("FALSE", "TRUE"))
    if pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_complex_dtype(dt):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if as_factor:
            return numeric_factor(values, integer=pd.api.types.is_integer_dtype(dt))
        return Numeric(values)
    if pd.api.types.is_object_dtype(dt):
        codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object)
        if pd.api.types.infer_dtype(values, skipna=False) == "string":  # sort the uniques
            order = np.argsort(values.astype(str), kind="stable")
            rank = np.empty(len(order) + 1, dtype=np.int64)
            rank[order] = np.arange(len(order))
            rank[-1] = -1
            return Factor(rank[codes], tuple(values[order].tolist()))
    try:
        codes, uniques = pd.factorize(s, sort=True, use_na_sentinel=True)
        return _dedupe(codes.astype(np.int64), _labels(uniques), sort=False)
    except TypeError:  # mixed types that do not sort: compare their labels
        codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
        return _dedupe(codes.astype(np.int64), _labels(uniques), sort=True)


def _common_value(s: pd.Series, as_factor: bool) -> Numeric | Factor | None:
    """:func:`series_value` of the common columns without pandas' conversions: numpy
    numbers, and short string columns (None for anything else)."""
    dt = s.dtype
    if isinstance(dt, np.dtype) and dt.kind in "iuf":
        values = np.array(s.to_numpy(), dtype=np.float64)
        if as_factor:
            return numeric_factor(values, integer=dt.kind != "f")
        return Numeric(values)
    if isinstance(dt, pd.StringDtype) and len(s) <= SMALL_STRING_COLUMN:
        return _small_string_factor(s.to_numpy(dtype=object))
    return None


def _small_string_factor(values: np.ndarray) -> Factor:
    """Levels of a short column of strings sorted by code point (as ``pd.factorize(sort=
    True)`` sorts them), by one small sort instead of pandas' hashing machinery."""
    missing = pd.isna(values)
    codes = np.full(values.size, -1, dtype=np.int64)
    uniques, inverse = np.unique(values[~missing], return_inverse=True)
    codes[~missing] = inverse.reshape(-1)
    return Factor(codes, tuple(uniques.tolist()))


def _labels(uniques: object) -> list[str]:
    values = np.asarray(uniques, dtype=object).tolist()
    return [v if type(v) is str else _label(v) for v in values]


class Evaluator:
    """Evaluates variables (syntax trees) on every row of ``data``.

    Parameters
    ----------
    data
        The table.
    stats
        What the fit learned, by variable label: ``scale()``/``center()`` constants and
        basis states; ``None`` computes and records them.
    new_data
        True when evaluating on new data (errors are :class:`DataError`).
    """

    def __init__(
        self,
        data: pd.DataFrame,
        stats: dict[str, tuple[float, float] | BasisState] | None = None,
        new_data: bool = False,
    ) -> None:
        self.data = data
        self.fitting = stats is None
        self.stats: dict[str, tuple[float, float] | BasisState] = {} if stats is None else stats
        self.new_data = new_data
        self._cache: dict[tuple[str, bool], Numeric | Factor] = {}
        self._keys = {str(c): c for c in data.columns}

    def column(self, node: Name, as_factor: bool = False) -> Numeric | Factor:
        key = (node.name, as_factor)
        plain = self._cache.get((node.name, False))
        if as_factor and isinstance(plain, Factor):
            return plain
        if key not in self._cache:
            if node.name not in self._keys:
                raise DataError(f"The data have no column `{node.name}`.")
            self._cache[key] = series_value(self.data[self._keys[node.name]], as_factor)
        return self._cache[key]

    def variable(self, node: Node) -> Numeric | Factor | Basis:
        """Evaluate one formula variable (a column or an allow-listed call)."""
        if isinstance(node, Call) and node.func in BASIS_FUNCTIONS:
            return self._basis(node)
        if isinstance(node, Call) and node.func in ("factor", "C"):
            arg = node.arg
            while isinstance(arg, Paren):
                arg = arg.expr
            if isinstance(arg, Name):
                return self.column(arg, as_factor=True)
            return numeric_factor(self.numeric(arg))
        if isinstance(node, Name):
            return self.column(node)
        return Numeric(self.numeric(node))

    def numeric(self, node: Node) -> np.ndarray:
        """Evaluate arithmetic to a float array."""
        with np.errstate(all="ignore"):
            return self._num(node)

    def _num(self, node: Node) -> np.ndarray:
        """Arithmetic on the tree: numbers, numeric columns, ``+ - * / ^``, functions."""
        if isinstance(node, Num):
            return np.full(len(self.data), node.value)
        if isinstance(node, Name):
            return self._numeric_column(node)
        if isinstance(node, Paren):
            return self._num(node.expr)
        if isinstance(node, Unary):
            inner = self._num(node.operand)
            return -inner if node.op == "-" else inner
        if isinstance(node, BinOp):
            return np.power(self._num(node.left), self._num(node.right))
        if isinstance(node, NAry):
            acc = self._num(node.items[0])
            for op, item in zip(node.ops, node.items[1:], strict=True):
                acc = _ARITHMETIC[op](acc, self._num(item))
            return acc
        assert isinstance(node, Call)
        return self._call(node)

    def _numeric_column(self, node: Name) -> np.ndarray:
        value = self.column(node)
        if isinstance(value, Factor):
            raise FormulaError(
                f"`{node.name}` (position {node.pos}) is categorical, but arithmetic and "
                "numeric functions need a numeric column.",
                node.pos,
                node.name,
            )
        return value.values

    def _call(self, node: Call) -> np.ndarray:
        x = self._num(node.arg)
        if node.func == "I":
            return x
        if node.func in _UFUNCS:
            return _UFUNCS[node.func](x)
        return self._standardize(node, x)

    def _basis(self, node: Call) -> Basis:
        label = deparse(node)
        x = self.numeric(node.arg)
        if label not in self.stats:
            if not self.fitting:
                raise DataError(f"`{label}` was not part of the fitted model.")
            self.stats[label] = learn_basis(basis_call(node), x, label)
        state = self.stats[label]
        assert isinstance(state, BasisState)
        if self.fitting and state.func == "poly" and not state.raw:
            return Basis(fitting_poly(x, state))  # R's values on the fitting data
        return Basis(state.evaluate(x))

    def _standardize(self, node: Call, x: np.ndarray) -> np.ndarray:
        label = deparse(node)
        if self.fitting and label not in self.stats:
            ok = x[np.isfinite(x)]
            mean = float(ok.mean()) if ok.size else float("nan")
            sd = float(ok.std(ddof=1)) if ok.size > 1 else float("nan")
            if node.func == "scale" and not (sd > 0):
                raise DataError(f"`{label}`: the values are constant, so they cannot be scaled.")
            self.stats[label] = (mean, sd if node.func == "scale" else 1.0)
        mean, sd = self.stats[label]  # type: ignore[misc]
        return (x - mean) / sd


# --------------------------------------------------------------------------- model matrix
@dataclass(frozen=True)
class MatrixRecipe:
    """How to rebuild a model matrix on new data (same columns, levels and constants).

    Each column is a product of parts ``(variable, j)``: ``j`` is None for a numeric variable,
    a level index for a factor (``levels``) and a column index for a basis (``bases``).
    """

    names: tuple[str, ...]
    intercept: bool
    columns: tuple[tuple[tuple[str, int | None], ...], ...]
    levels: dict[str, tuple[str, ...]]
    exprs: dict[str, Node]
    bases: dict[str, int] = field(default_factory=dict)

    def build(self, values: dict[str, Numeric | Factor | Basis], n: int) -> np.ndarray:
        """Fill the matrix from evaluated variables (factor codes into ``levels``)."""
        out = np.empty((n, len(self.names)))
        bad = np.zeros(n, dtype=bool)
        codes = {}
        for label, lev in self.levels.items():
            val = values[label]
            assert isinstance(val, Factor)
            c = val.codes if val.labels == lev else val.recode(lev)
            codes[label] = c
            bad |= c < 0
        for label in {v for parts in self.columns for v, level in parts if level is None}:
            bad |= np.isnan(values[label].values)
        for label in self.bases:
            bad |= np.isnan(values[label].values).any(axis=1)
        j = 0
        if self.intercept:
            out[:, 0] = 1.0
            j = 1
        for parts in self.columns:
            col = np.ones(n)
            for label, level in parts:
                if level is None:
                    col = col * values[label].values
                elif label in self.bases:
                    col = col * values[label].values[:, level]
                else:
                    col = col * (codes[label] == level)
            out[:, j] = col
            j += 1
        if bad.any():
            out[bad] = np.nan
        return out


def term_codings(tl: TermList, is_factor: dict[str, bool]) -> list[dict[str, bool]]:
    """For each term, ``{factor variable: use_contrasts}`` by R's rule."""
    codings: list[dict[str, bool]] = []
    sets = [frozenset(t) for t in tl.terms]
    for k, term in enumerate(tl.terms):
        coding = {}
        for v in term:
            if not is_factor[v]:
                continue
            rest = sets[k] - {v}
            coding[v] = not rest or any(rest <= s for s in sets[:k])
        codings.append(coding)
    if not tl.intercept:
        for term, coding in zip(tl.terms, codings, strict=True):
            first = next((v for v in term if is_factor[v]), None)
            if first is not None:
                coding[first] = False
                break
    return codings


def model_matrix(
    tl: TermList, values: dict[str, Numeric | Factor | Basis], n: int, what: str
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...], MatrixRecipe]:
    """R's ``model.matrix`` of ``tl`` with treatment contrasts.

    Returns
    -------
    X, names, term_of_column, recipe
    """
    is_factor = {v: isinstance(values[v], Factor) for t in tl.terms for v in t}
    levels: dict[str, tuple[str, ...]] = {}
    for v, fac in is_factor.items():
        if fac:
            labs = values[v].labels
            if len(labs) < 2:
                only = f" ({labs[0]})" if labs else ""
                raise ModelError(
                    f"`{v}` has only one level{only} in the rows used, so it cannot be "
                    f"estimated in {what}; remove it or check the data."
                )
            levels[v] = labs
    suffixes = {v: val.suffixes for v, val in values.items() if isinstance(val, Basis)}
    names: list[str] = ["(Intercept)"] if tl.intercept else []
    owner: list[str] = ["(Intercept)"] if tl.intercept else []
    columns: list[tuple[tuple[str, int | None], ...]] = []
    for term, coding in zip(tl.terms, term_codings(tl, is_factor), strict=True):
        choices = []
        for v in term:
            if v in suffixes:
                choices.append([(v, j) for j in range(len(suffixes[v]))])
            elif v not in coding:
                choices.append([(v, None)])
            else:
                start = 1 if coding[v] else 0
                choices.append([(v, j) for j in range(start, len(levels[v]))])
        for combo in itertools.product(*reversed(choices)):
            parts = tuple(reversed(combo))
            columns.append(parts)
            names.append(":".join(_column_name(v, j, levels, suffixes) for v, j in parts))
            owner.append(":".join(term))
    if n * len(names) > 400_000_000:
        raise ModelError(
            f"{what.capitalize()} would have {len(names):,} columns for {n:,} rows, too large; "
            "use a random effect for a factor with many levels, e.g. `(1 | patient)`."
        )
    bases = {v: len(sfx) for v, sfx in suffixes.items() if any(v in t for t in tl.terms)}
    recipe = MatrixRecipe(tuple(names), tl.intercept, tuple(columns), levels, dict(tl.exprs), bases)
    return recipe.build(values, n), tuple(names), tuple(owner), recipe


def _column_name(v: str, j: int | None, levels: dict, suffixes: dict) -> str:
    if j is None:
        return v
    return v + (suffixes[v][j] if v in suffixes else levels[v][j])
