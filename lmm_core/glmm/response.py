"""From a GLMM formula and data to the response, prior weights, offset and design matrices.

lme4's ``glmer`` formula adds three things to a linear mixed model formula; they are read here
and the rest goes to :func:`lmm_core.design.build.build_design` unchanged:

* ``cbind(successes, failures) ~ ...`` (binomial): the response is the proportion
  ``y = s / (s + f)`` with prior weight ``w = s + f`` trials (rows with no trial have ``y = 0``
  and weight 0, so they contribute nothing);
* ``offset(expr)`` among the fixed terms (joined with ``+``): a known term added to the
  linear predictor, e.g. ``offset(log(exposure))`` for rates;
* a proportion with ``weights = "n"`` (the number of trials): ``w_i = n_i``, as glmer's
  ``weights`` argument.

A binary outcome may be 0/1 numbers, logical (``True`` = 1) or a factor or text with two
values: the first level (R's order: categories as declared, text sorted) is 0, the other 1.
Rows with a missing value in any column used (also those of ``cbind``, ``offset`` and the
weights) are left out once, with a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import Design, _random_term, build_design, combine
from lmm_core.design.model_matrix import Evaluator, Factor, series_value
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.formula.grammar import Name, Node, names_in, parse_sides, strip_parens, suggest
from lmm_core.formula.terms import parse_formula

_CBIND = re.compile(r"^\s*cbind\s*\((.*)\)\s*$", re.S)
_OFFSET = re.compile(r"^\s*offset\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class GLMMData:
    """The evaluated GLMM: the design plus what the binomial/Poisson response needs.

    Attributes
    ----------
    design
        Fixed and random parts on the rows used (its response is not used for fitting).
    y
        Response: a proportion in ``[0, 1]`` (binomial) or a count (Poisson).
    weights
        Prior weights (trials for a binomial proportion, 1 otherwise).
    offset
        Known part of the linear predictor (0 without ``offset()``).
    rows
        Positions (``iloc``) in the caller's data of the rows used.
    response_label
        The response as written (``cbind(incidence, size - incidence)``).
    offsets
        Syntax trees of the ``offset()`` arguments (evaluated again on new data).
    messages
        Plain-language notes (rows left out, outcome coding).
    """

    design: Design
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    rows: np.ndarray
    response_label: str
    offsets: tuple[Node, ...]
    messages: tuple[str, ...]

    def offset_values(self, newdata: pd.DataFrame) -> np.ndarray:
        """The offset evaluated on new data (0 without ``offset()``)."""
        total = np.zeros(len(newdata))
        ev = Evaluator(newdata)
        for node in self.offsets:
            _check_names(node, newdata, "offset()")
            total = total + ev.numeric(node)
        return total


# --------------------------------------------------------------------------- text
def _top_level(text: str, chars: str) -> list[int]:
    """Positions of ``chars`` outside parentheses and backticks."""
    depth, quoted, out = 0, False, []
    for i, ch in enumerate(text):
        if ch == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in chars:
            out.append(i)
    return out


def _split(text: str, at: list[int]) -> list[str]:
    bounds = [-1, *at, len(text)]
    return [text[a + 1 : b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def split_formula(text: str) -> tuple[str, tuple[str, str] | None, str, list[str]]:
    """``(lhs, cbind parts or None, rhs without offsets, offset expressions)`` of ``text``."""
    if not isinstance(text, str):
        raise FormulaError("The formula must be text such as `y ~ time + (1 | patient)`.")
    tildes = _top_level(text, "~")
    if len(tildes) != 1:
        parse_sides(text)  # the grammar's own message (no `~`, or two)
        raise FormulaError("The formula needs exactly one `~`.")
    lhs, rhs = text[: tildes[0]], text[tildes[0] + 1 :]
    parts = None
    m = _CBIND.match(lhs)
    if m and not _unbalanced(m.group(1)):
        commas = _top_level(m.group(1), ",")
        if len(commas) != 1:
            raise FormulaError(
                "`cbind()` takes two columns: the successes and the failures, e.g. "
                "`cbind(incidence, size - incidence)`."
            )
        a, b = _split(m.group(1), commas)
        parts = (a.strip(), b.strip())
    pieces = _split(rhs, _top_level(rhs, "+"))
    kept, offsets = [], []
    for piece in pieces:
        om = _OFFSET.match(piece)
        if om and not _unbalanced(om.group(1)):
            offsets.append(om.group(1).strip())
        elif re.search(r"(^|[^\w.`])offset\s*\(", piece) and not _inside_parens(piece):
            raise FormulaError(
                "Write `offset(...)` as a term of its own joined with `+`, e.g. "
                "`count ~ time + offset(log(exposure)) + (1 | patient)`."
            )
        else:
            kept.append(piece)
    rest = "+".join(kept).strip()
    if not rest or rest.startswith("-"):
        rest = "1" if not rest else "1 " + rest
    return lhs.strip(), parts, rest, offsets


def _unbalanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return True
    return depth != 0


def _inside_parens(piece: str) -> bool:
    """Whether every ``offset(`` of ``piece`` sits inside parentheses (a random term)."""
    pos = [m.start() for m in re.finditer(r"offset\s*\(", piece)]
    return all(piece[:p].count("(") > piece[:p].count(")") for p in pos)


def _expression(text: str, what: str) -> Node:
    """The syntax tree of one arithmetic expression (a column, ``size - incidence``)."""
    if not text:
        raise FormulaError(f"{what} is empty.")
    lhs, _ = parse_sides(f"{text} ~ 1")
    return lhs


def _check_names(node: Node, data: pd.DataFrame, what: str) -> None:
    columns = [str(c) for c in data.columns]
    for nm in names_in(node):
        if nm.name not in columns:
            close = suggest(nm.name, columns)
            hint = f"; did you mean `{close}`?" if close else ""
            raise FormulaError(f"Unknown column `{nm.name}` in {what}{hint}", None, nm.name)


# --------------------------------------------------------------------------- outcome coding
def code_binary(data: pd.DataFrame, name: str) -> tuple[pd.DataFrame, str | None]:
    """Replace a logical, factor or text outcome column by 0/1 (first level 0).

    Returns the data (a copy when changed) and a note on the coding (``None`` if numeric).
    """
    col = data[name]
    value = series_value(col)
    if not isinstance(value, Factor):
        return data, None
    present = sorted(set(value.codes[value.codes >= 0].tolist()))
    if len(present) > 2:
        shown = ", ".join(repr(value.labels[k]) for k in present[:5])
        raise DataError(
            f"The outcome `{name}` has {len(present)} categories ({shown}...): a binomial "
            "model needs two (event / no event). Recode it, or choose another outcome."
        )
    levels = value.labels
    zero_code = present[0] if len(present) == 2 else 0
    one_code = present[1] if len(present) == 2 else min(1, len(levels) - 1)
    zero, one = levels[zero_code], levels[one_code]
    coded = np.where(value.codes < 0, np.nan, (value.codes != zero_code).astype(float))
    note = f"the outcome `{name}` is coded 1 for {one!r} and 0 for {zero!r}"
    return data.assign(**{name: coded}), note


def _check_columns(nodes: list[Node], weights: object, data: pd.DataFrame) -> None:
    for node in nodes:
        _check_names(node, data, "the formula")
    if weights is not None and not isinstance(weights, str):
        raise DataError("weights must be the name of a column (the number of trials per row).")
    if weights is not None and weights not in [str(c) for c in data.columns]:
        raise DataError(f"The weights {weights!r} are not a column of the data.")


def _code_response(data: pd.DataFrame, response: str) -> tuple[pd.DataFrame, str | None]:
    """:func:`code_binary` when the binomial response is a plain column."""
    node = strip_parens(_expression(response, "The response"))
    if isinstance(node, Name) and node.name in [str(c) for c in data.columns]:
        return code_binary(data, node.name)
    return data, None


# --------------------------------------------------------------------------- build
def _drop_missing(data: pd.DataFrame, nodes: list[Node], weights: str | None):
    """Rows with a missing value in the columns of the extra expressions, left out."""
    cols = list(dict.fromkeys([nm.name for node in nodes for nm in names_in(node)]))
    if weights is not None:
        cols.append(weights)
    if not cols:
        return data, np.arange(len(data)), []
    frame = data[[c for c in dict.fromkeys(cols)]]
    missing = frame.isna().any(axis=1).to_numpy()
    if not missing.any():
        return data, np.arange(len(data)), []
    kept = np.flatnonzero(~missing)
    k = int(missing.sum())
    note = f"{k} row{'s' * (k > 1)} with missing values in {', '.join(cols)} left out"
    return data.iloc[kept], kept, [note]


def _numeric(ev: Evaluator, node: Node, label: str, rows: np.ndarray) -> np.ndarray:
    values = ev.numeric(node)[rows]
    if not np.all(np.isfinite(values)):
        k = int((~np.isfinite(values)).sum())
        raise DataError(
            f"`{label}` is not a finite number in {k} row{'s' * (k > 1)} (e.g. the log of 0); "
            "check the values."
        )
    return values


def _weights(data: pd.DataFrame, weights: str | None, rows: np.ndarray) -> np.ndarray:
    if weights is None:
        return np.ones(rows.size)
    col = data[weights]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise DataError(f"The weights column `{weights}` must hold numbers (trials per row).")
    w = col.to_numpy(dtype=float)[rows]
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise DataError(f"The weights column `{weights}` must hold finite numbers >= 0.")
    return w


def build_glmm_data(
    formula: str, data: pd.DataFrame, family: str, weights: str | None = None
) -> GLMMData:
    """Evaluate a glmer formula: design, response, prior weights and offset.

    Raises
    ------
    FormulaError, DataError, ModelError
        As :func:`lmm_core.design.build.build_design`, plus a malformed ``cbind()`` or
        ``offset()`` and an outcome the family cannot model.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError("The data must be a table (pandas DataFrame).")
    lhs, parts, rest, offset_texts = split_formula(formula)
    offsets = [_expression(t, "`offset()`") for t in offset_texts]
    fail = None
    if parts is not None:
        if family != "binomial":
            raise FormulaError("`cbind(successes, failures)` is a binomial outcome.")
        fail = _expression(parts[1], "`cbind()` argument")
    extra = offsets + ([fail] if fail is not None else [])
    _check_columns(extra, weights, data)
    sub, kept, messages = _drop_missing(data, extra, weights)
    response = lhs if parts is None else parts[0]
    if family == "binomial" and parts is None:
        sub, note = _code_response(sub, response)
        messages += [note] if note else []
    design, local = glmm_design(response, rest, sub)
    if local is not None:
        sub, kept = sub.iloc[local], kept[local]
    rows = design.rows
    ev = Evaluator(sub)
    offset = np.zeros(rows.size)
    for node, text in zip(offsets, offset_texts, strict=True):
        offset = offset + _numeric(ev, node, f"offset({text})", rows)
    w = _weights(sub, weights, rows)
    y = design.y
    if parts is not None and fail is not None:
        y, w = _proportion(y, _numeric(ev, fail, parts[1], rows), parts)
    elif family == "binomial":
        _check_binomial(y, lhs, weights)
    else:
        _check_counts(y, lhs, "counts")
    messages = list(design.messages) + messages
    return GLMMData(
        design=design,
        y=np.ascontiguousarray(y, dtype=float),
        weights=np.ascontiguousarray(w, dtype=float),
        offset=offset,
        rows=kept[rows],
        response_label=lhs,
        offsets=tuple(offsets),
        messages=tuple(messages),
    )


def glmm_design(response: str, rest: str, data: pd.DataFrame) -> tuple[Design, np.ndarray | None]:
    """The design of ``response ~ rest``, allowing observation-level random effects.

    glmer accepts a grouping factor with one level per row (an observation-level random
    effect for overdispersed counts: ``(1 | INDEX)``), which a linear mixed model cannot
    separate from the residual and :func:`~lmm_core.design.build.build_design` refuses. Such
    terms are left out of the design's formula, the rows with a missing value in their
    columns are left out first (returned positions), and every random term is then evaluated
    in formula order and ordered as lme4 does.
    """
    text = f"{response} ~ {rest}"
    try:
        return build_design(text, data), None
    except ModelError as err:
        if "must be < number of observations" not in str(err):
            raise
    spec = parse_formula(text)
    used = list(dict.fromkeys(nm.name for nm in spec.column_refs()))
    local = np.flatnonzero(~data[used].isna().any(axis=1).to_numpy())
    sub = data.iloc[local]
    n = local.size
    ev = Evaluator(sub)
    pieces = _split(rest, _top_level(rest, "+"))
    kept_pieces = []
    for piece in pieces:
        inner = _top_level_spec(piece)
        if inner and any(_n_levels(ev, r) >= n for r in inner):
            continue
        kept_pieces.append(piece)
    if len(kept_pieces) == len(pieces) or not any(_top_level_spec(p) for p in kept_pieces):
        raise err_again(text, sub)
    design = build_design(f"{response} ~ {'+'.join(kept_pieces)}", sub)
    rows = np.arange(n)
    terms = [_random_term(ev, r, rows, n) for r in spec.random]
    nl = [t.n_levels for t in terms]
    if any(b > a for a, b in zip(nl, nl[1:], strict=False)):
        order = sorted(range(len(nl)), key=lambda i: nl[i])
        terms = [terms[i] for i in reversed(order)]
    return replace(design, reterms=tuple(terms)), local


def err_again(text: str, data: pd.DataFrame) -> Exception:
    """The design's own error for ``text`` (no term could be set aside)."""
    try:
        build_design(text, data)
    except ModelError as err:
        return err
    return ModelError("The random-effects terms cannot be estimated from these data.")


def _top_level_spec(piece: str) -> tuple:
    """The random terms of one ``+`` piece of the right-hand side (empty if none)."""
    if "|" not in piece:
        return ()
    try:
        return parse_formula(f"y ~ 0 + {piece}").random
    except FormulaError:
        return ()


def _n_levels(ev: Evaluator, r) -> int:
    return len(combine([ev.column(nm, as_factor=True) for nm in r.group_vars]).labels)


def _proportion(succ: np.ndarray, fail: np.ndarray, parts: tuple[str, str]):
    """``(s / (s + f), s + f)`` of ``cbind(s, f)`` (0 and weight 0 where there is no trial)."""
    _check_counts(succ, parts[0], "successes")
    _check_counts(fail, parts[1], "failures")
    w = succ + fail
    return np.divide(succ, w, out=np.zeros_like(succ), where=w > 0), w


def _check_counts(values: np.ndarray, label: str, what: str) -> None:
    if (values < 0).any():
        k = int((values < 0).sum())
        raise DataError(
            f"`{label}` has {k} negative value{'s' * (k > 1)}: {what} must be whole numbers >= 0."
        )
    if not np.allclose(values, np.round(values), rtol=0, atol=1e-8):
        raise DataError(
            f"`{label}` has values that are not whole numbers: {what} must be whole numbers "
            ">= 0 (for a continuous outcome use a linear mixed model)."
        )


def _check_binomial(y: np.ndarray, label: str, weights: str | None) -> None:
    outside = (y < 0) | (y > 1)
    if outside.any():
        shown = ", ".join(f"{v:g}" for v in np.unique(y[outside])[:4])
        raise DataError(
            f"The outcome `{label}` has values other than 0 and 1 ({shown}): a binomial model "
            "needs a 0/1 outcome, `cbind(successes, failures)`, or a proportion with weights "
            "= the number of trials. For counts choose family='poisson'."
        )
    if np.ptp(y) == 0 and weights is None:
        raise DataError(
            f"The outcome `{label}` takes one value ({y[0]:g}) in every row used: there is "
            "nothing to model."
        )
    if weights is None and not np.all((y == 0) | (y == 1)):
        raise DataError(
            f"The outcome `{label}` has values between 0 and 1: for proportions give the "
            "number of trials as weights (weights='n'), or use `cbind(successes, failures)`."
        )


__all__ = ["GLMMData", "build_glmm_data", "code_binary", "split_formula"]
