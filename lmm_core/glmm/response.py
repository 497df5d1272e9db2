"""From a GLMM formula and data to the response, prior weights, offset and design matrices.

lme4's ``glmer`` formula adds three things to a linear mixed model formula, all read by our
grammar (:mod:`lmm_core.formula.terms`) and evaluated by
:func:`lmm_core.design.build.build_design` (``Design.trials``, ``Design.offset``):

* ``cbind(successes, failures) ~ ...`` (binomial): the response is the proportion
  ``y = s / (s + f)`` with prior weight ``w = s + f`` trials (rows with no trial have ``y = 0``
  and weight 0, so they contribute nothing);
* ``offset(expr)`` among the fixed terms (joined with ``+``; several add up): a known term
  added to the linear predictor, e.g. ``offset(log(exposure))`` for rates;
* a proportion with ``weights = "n"`` (the number of trials): ``w_i = n_i``, as glmer's
  ``weights`` argument.

A binary outcome may be 0/1 numbers, logical (``True`` = 1) or a factor or text with two
values: the first level (R's order: categories as declared, text sorted) is 0, the other 1.
Rows with a missing value in any column used (also those of ``cbind``, ``offset`` and the
weights) are left out once, with a message. A grouping factor may have one level per row
(glmer's observation-level random effect): the design is built with ``check_nobs=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.design.build import Design, build_design
from lmm_core.design.model_matrix import Factor, series_value
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.formula.grammar import Name, Node, names_in, strip_parens
from lmm_core.formula.quoting import deparse
from lmm_core.formula.spec import ModelSpec
from lmm_core.formula.terms import parse_formula


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
        """The offset evaluated on new data (0 without ``offset()``).

        Raises
        ------
        FormulaError
            If ``newdata`` lacks a column of an offset.
        """
        columns = {str(c) for c in newdata.columns}
        for call in self.design.spec.offsets:
            missing = [nm.name for nm in names_in(call) if nm.name not in columns]
            if missing:
                raise FormulaError(
                    f"Unknown column `{missing[0]}` in {deparse(call)}: the new data need the "
                    "offset's columns.",
                    None,
                    missing[0],
                )
        return self.design.offset_values(newdata)


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


def _check_weights(weights: object, data: pd.DataFrame) -> None:
    if weights is not None and not isinstance(weights, str):
        raise DataError("weights must be the name of a column (the number of trials per row).")
    if weights is not None and weights not in [str(c) for c in data.columns]:
        raise DataError(f"The weights {weights!r} are not a column of the data.")


# --------------------------------------------------------------------------- build
def _drop_missing_weights(data: pd.DataFrame, weights: str | None):
    """Rows with a missing weight left out (the formula's columns are the design's job)."""
    if weights is None or not data[weights].isna().any():
        return data, np.arange(len(data)), []
    missing = data[weights].isna().to_numpy()
    kept = np.flatnonzero(~missing)
    k = int(missing.sum())
    note = f"{k} row{'s' * (k > 1)} with missing values in {weights} left out"
    return data.iloc[kept], kept, [note]


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


def _code_response(spec: ModelSpec, data: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """:func:`code_binary` when the binomial response is a plain column."""
    node = strip_parens(spec.response)
    if isinstance(node, Name) and node.name in [str(c) for c in data.columns]:
        return code_binary(data, node.name)
    return data, None


GLMM_RESIDUAL_MESSAGE = (
    "`{term}`: a covariance structure of the visits (an MMRM) is for a Gaussian outcome; a "
    "GLMM models the correlation of a patient's visits with random effects, e.g. "
    "`(1 | patient)` or `(time | patient)`."
)


def build_glmm_data(
    formula: str, data: pd.DataFrame, family: str, weights: str | None = None
) -> GLMMData:
    """Evaluate a glmer formula: design, response, prior weights and offset.

    Raises
    ------
    FormulaError, DataError, ModelError
        As :func:`lmm_core.design.build.build_design`, plus a ``cbind()`` response outside the
        binomial family and an outcome the family cannot model.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError("The data must be a table (pandas DataFrame).")
    spec = parse_formula(formula)
    if spec.residual is not None:
        raise ModelError(GLMM_RESIDUAL_MESSAGE.format(term=spec.residual.label))
    if spec.cbind is not None and family != "binomial":
        raise FormulaError(
            "`cbind(successes, failures)` is a binomial outcome: choose family='binomial'.",
            spec.response.pos,
            "cbind",
        )
    _check_weights(weights, data)
    sub, kept, messages = _drop_missing_weights(data, weights)
    if family == "binomial" and spec.cbind is None:
        sub, note = _code_response(spec, sub)
        messages += [note] if note else []
    design = build_design(spec, sub, check_nobs=False)
    rows = design.rows
    w = _weights(sub, weights, rows)
    y = design.y
    label = spec.response_label
    if design.trials is not None:
        parts = tuple(deparse(nd) for nd in spec.cbind)  # type: ignore[union-attr]
        y, w = _proportion(y, design.trials - y, parts)
    elif family == "binomial":
        _check_binomial(y, label, weights)
    else:
        _check_counts(y, label, "counts")
    return GLMMData(
        design=design,
        y=np.ascontiguousarray(y, dtype=float),
        weights=np.ascontiguousarray(w, dtype=float),
        offset=np.asarray(design.offset, dtype=float),
        rows=kept[rows],
        response_label=label,
        offsets=tuple(call.arg for call in spec.offsets),
        messages=tuple(list(design.messages) + messages),
    )


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


__all__ = ["GLMMData", "build_glmm_data", "code_binary"]
