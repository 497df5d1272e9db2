"""What an outcome column looks like: a measurement, a yes/no (two values) or counts.

A linear mixed model treats every outcome as a continuous measurement. A yes/no outcome
(0/1, true/false, or two categories such as "yes"/"no") fits a logistic mixed model, a
count outcome (whole numbers from 0) a Poisson mixed model: generalised linear mixed models
(GLMMs), which the Model page offers under "Kind of outcome". This module says which one
fits, in plain words (the Data page's validation report and the Model page show it). No
Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FAMILY_OF_KIND", "OutcomeKind", "binary_columns", "outcome_kind", "outcome_note"]

#: Counts: non-negative whole numbers up to this value, or any such column containing zeros
#: whose median is at most :data:`COUNT_MEDIAN`.
COUNT_MAX = 20
COUNT_MEDIAN = 20
#: the GLMM family that fits each kind of outcome ("gaussian": a linear mixed model)
FAMILY_OF_KIND = {"binary": "binomial", "counts": "poisson", "continuous": "gaussian"}
_OFFER = {
    "binary": (
        "The Model page offers a logistic mixed model for it (Kind of outcome: yes/no, a "
        "binomial GLMM): its effects are odds ratios and its predictions stay between 0 and 1."
    ),
    "counts": (
        "The Model page offers a Poisson mixed model for it (Kind of outcome: counts, a "
        "Poisson GLMM): its effects are rate ratios, its predictions stay above 0, and an "
        "exposure column (time at risk) can make them rates."
    ),
}


@dataclass(frozen=True)
class OutcomeKind:
    """Shape of an outcome's values.

    Attributes
    ----------
    kind
        ``"binary"`` (exactly two distinct values), ``"counts"`` (small non-negative whole
        numbers) or ``"continuous"``.
    values
        The two values (binary), or the smallest and largest value (counts, continuous);
        ``(0, 1)`` for a logical or two-category outcome.
    labels
        The two categories of a logical or text outcome (the second is coded 1), else None.
    """

    kind: str
    values: tuple[float, float]
    labels: tuple[str, str] | None = None

    @property
    def family(self) -> str:
        """The model family that fits: ``"binomial"``, ``"poisson"`` or ``"gaussian"``."""
        return FAMILY_OF_KIND[self.kind]

    @property
    def glmm_ready(self) -> bool:
        """Whether :func:`lmm_core.fit_glmm` takes the column as it is (a 0/1, logical or
        two-category yes/no outcome, or counts); a binary column of other numbers (1/2)
        must be recoded to 0/1 first."""
        if self.kind == "binary":
            return self.labels is not None or self.values == (0.0, 1.0)
        return self.kind == "counts"


def _category_kind(series: pd.Series) -> OutcomeKind | None:
    """A logical or text column with exactly two values: binary (first sorted value 0)."""
    values = series.dropna()
    if values.empty:
        return None
    distinct = sorted(values.unique().tolist(), key=str)
    if pd.api.types.is_bool_dtype(series) or set(distinct) <= {True, False}:
        return OutcomeKind("binary", (0.0, 1.0), ("False", "True"))
    if len(distinct) != 2:
        return None
    return OutcomeKind("binary", (0.0, 1.0), (str(distinct[0]), str(distinct[1])))


def outcome_kind(series: pd.Series) -> OutcomeKind | None:
    """Classify an outcome; ``None`` when it has no values, or is text with other than two
    categories.

    Parameters
    ----------
    series
        The outcome column: numbers, logical, or text/categories (two of them: binary).

    Returns
    -------
    OutcomeKind or None
    """
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return _category_kind(series)
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    distinct = np.unique(values)
    low, high = float(distinct[0]), float(distinct[-1])
    if distinct.size == 2:
        return OutcomeKind("binary", (low, high))
    whole = bool(np.all(values == np.round(values)))
    if (
        whole
        and distinct.size >= 3
        and low >= 0
        and (high <= COUNT_MAX or (low == 0 and np.median(values) <= COUNT_MEDIAN))
    ):
        return OutcomeKind("counts", (low, high))
    return OutcomeKind("continuous", (low, high))


def binary_columns(data: pd.DataFrame) -> list[str]:
    """Columns that are not numbers but a yes/no outcome (logical, or two categories): the
    Model page offers them as outcomes of a logistic model."""
    out = []
    for name in data.columns:
        col = data[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            continue
        found = _category_kind(col)
        if found is not None:
            out.append(str(name))
    return out


def _num(x: float) -> str:
    return f"{x:g}"


def _binary_note(found: OutcomeKind, name: str) -> str:
    low, high = found.values
    if found.labels is not None:
        zero, one = found.labels
        return (
            f"The outcome '{name}' has two categories ('{zero}' and '{one}'): it looks like a "
            f"yes/no (binary) outcome. A logistic model gives the probability of '{one}' "
            "(coded 1). " + _OFFER["binary"]
        )
    zero_one = (low, high) == (0.0, 1.0)
    what = "a yes/no (binary) outcome" if zero_one else "a two-valued (binary) outcome"
    meaning = (
        "the fixed effects are differences in the proportion of 1s (a linear probability model)"
        if zero_one
        else f"the fixed effects are differences in the average between {_num(low)} and "
        f"{_num(high)}, i.e. in the share of {_num(high)}s"
    )
    offer = (
        _OFFER["binary"]
        if zero_one
        else f"Recode it to 0 and 1 (1 for {_num(high)}) to fit a logistic mixed model "
        "(Kind of outcome: yes/no on the Model page)."
    )
    return (
        f"The outcome '{name}' has only two values ({_num(low)} and {_num(high)}): it looks "
        f"like {what}. A linear mixed model treats it as a continuous measurement: "
        f"{meaning}, predictions can fall outside {_num(low)} to {_num(high)}, and the "
        "residuals cannot follow a normal distribution, so standard errors, p-values and "
        f"intervals are only approximate. {offer}"
    )


def outcome_note(series: pd.Series, name: str) -> str | None:
    """A plain-language note when the outcome is binary or looks like counts, else ``None``.

    Parameters
    ----------
    series
        The outcome column.
    name
        Its name, as the user wrote it.

    Returns
    -------
    str or None
        What the outcome looks like, what a linear mixed model would make of it, and which
        GLMM family fits it (binomial or Poisson), offered on the Model page.
    """
    found = outcome_kind(series)
    if found is None or found.kind == "continuous":
        return None
    if found.kind == "binary":
        return _binary_note(found, name)
    low, high = found.values
    return (
        f"The outcome '{name}' holds only whole numbers from {_num(low)} to {_num(high)}: it "
        "looks like counts (or a score on a short scale). A linear mixed model treats it as a "
        "continuous measurement: the fixed effects are differences in the average count, "
        "which reads well, but predictions can fall below 0, and the spread of counts usually "
        "grows with their mean and is skewed, so standard errors, p-values and intervals can "
        f"be off, most when the counts are small. {_OFFER['counts']}"
    )
