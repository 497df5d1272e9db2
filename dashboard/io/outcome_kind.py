"""What an outcome column looks like: a measurement, a yes/no (two values) or counts.

A linear mixed model treats every outcome as a continuous measurement. For a binary or a
small-count outcome that is an approximation the user should know about; this module says
so in plain words (the Data page's validation report and the Model page show it). No
Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["OutcomeKind", "outcome_kind", "outcome_note"]

#: Counts: non-negative whole numbers up to this value, or any such column containing zeros
#: whose median is at most :data:`COUNT_MEDIAN`.
COUNT_MAX = 20
COUNT_MEDIAN = 20
_GLMM = (
    "Mixed models made for binary and count outcomes (generalised linear mixed models, "
    "GLMMs: logistic and Poisson) are coming to LMM Explorer; until then read the results "
    "with these limits in mind."
)


@dataclass(frozen=True)
class OutcomeKind:
    """Shape of an outcome's values.

    Attributes
    ----------
    kind
        ``"binary"`` (exactly two distinct values), ``"counts"`` (small non-negative whole
        numbers) or ``"continuous"``.
    values
        The two values (binary), or the smallest and largest value (counts, continuous).
    """

    kind: str
    values: tuple[float, float]


def outcome_kind(series: pd.Series) -> OutcomeKind | None:
    """Classify a numeric outcome; ``None`` when it is not numeric or has no values.

    Parameters
    ----------
    series
        The outcome column.

    Returns
    -------
    OutcomeKind or None
    """
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
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


def _num(x: float) -> str:
    return f"{x:g}"


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
        What the outcome looks like, that a linear mixed model treats it as continuous,
        what that means for reading the results, and that GLMMs are coming.
    """
    found = outcome_kind(series)
    if found is None or found.kind == "continuous":
        return None
    low, high = found.values
    if found.kind == "binary":
        zero_one = (low, high) == (0.0, 1.0)
        what = "a yes/no (binary) outcome" if zero_one else "a two-valued (binary) outcome"
        meaning = (
            "the fixed effects are differences in the proportion of 1s (a linear probability model)"
            if zero_one
            else f"the fixed effects are differences in the average between {_num(low)} and "
            f"{_num(high)}, i.e. in the share of {_num(high)}s"
        )
        return (
            f"The outcome '{name}' has only two values ({_num(low)} and {_num(high)}): it looks "
            f"like {what}. A linear mixed model treats it as a continuous measurement: "
            f"{meaning}, predictions can fall outside {_num(low)} to {_num(high)}, and the "
            "residuals cannot follow a normal distribution, so standard errors, p-values and "
            f"intervals are only approximate. {_GLMM}"
        )
    return (
        f"The outcome '{name}' holds only whole numbers from {_num(low)} to {_num(high)}: it "
        "looks like counts (or a score on a short scale). A linear mixed model treats it as a "
        "continuous measurement: the fixed effects are differences in the average count, "
        "which reads well, but predictions can fall below 0, and the spread of counts usually "
        "grows with their mean and is skewed, so standard errors, p-values and intervals can "
        f"be off, most when the counts are small. {_GLMM}"
    )
