"""Detect wide format (one column per visit) and convert it to long format. No Streamlit.

A table is wide when at least three numeric columns share a name stem and end in a number,
such as ``y1, y2, y3``, ``sbp_0, sbp_6, sbp_12`` or ``week0, week4, week8``. The trailing
number becomes the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from dashboard.io.roles import is_numeric

__all__ = ["WideSpec", "detect_wide", "wide_to_long"]

_STEM_NUMBER = re.compile(r"^(?P<stem>.*?[A-Za-z][A-Za-z _.\-]*?)[ _.\-]?(?P<num>\d+(?:\.\d+)?)$")
MIN_VISIT_COLUMNS = 3
TIME_STEMS = {"t", "time", "visit", "day", "days", "week", "weeks", "month", "months", "year"}


@dataclass(frozen=True)
class WideSpec:
    """How a wide table maps to long format.

    Attributes
    ----------
    stem
        Shared name stem, used as the outcome name (e.g. ``"sbp"``).
    columns
        The visit columns in time order.
    times
        The number at the end of each visit column.
    id_column
        Column identifying the subject, or ``None`` (row numbers are then used).
    outcome_name, time_name
        Names of the outcome and time columns of the long table. When the stem names the
        time itself (``week0, week4``), the time column takes the stem and the outcome is
        called ``value``.
    """

    stem: str
    columns: tuple[str, ...]
    times: tuple[float, ...]
    id_column: str | None
    outcome_name: str = "value"
    time_name: str = "time"


def detect_wide(data: pd.DataFrame) -> WideSpec | None:
    """Return a :class:`WideSpec` if ``data`` looks wide, else ``None``.

    The largest group of at least three numeric columns named ``<stem><number>`` wins. The id
    column is the first non-visit column whose values are all distinct.
    """
    groups: dict[str, list[tuple[float, str]]] = {}
    for col in data.columns:
        match = _STEM_NUMBER.match(str(col).strip())
        if match and is_numeric(data[col]):
            stem = match["stem"].strip(" _.-")
            groups.setdefault(stem, []).append((float(match["num"]), col))
    best = max(groups.items(), key=lambda kv: len(kv[1]), default=None)
    if best is None or len(best[1]) < MIN_VISIT_COLUMNS:
        return None
    stem, members = best
    members.sort()
    if len({t for t, _ in members}) != len(members):
        return None
    visit_cols = {c for _, c in members}
    id_col = None
    for col in data.columns:
        if col in visit_cols:
            continue
        values = data[col]
        if values.notna().all() and values.nunique() == len(data):
            id_col = col
            break
    stem = stem or "value"
    stem_is_time = stem.lower() in TIME_STEMS
    return WideSpec(
        stem=stem,
        columns=tuple(c for _, c in members),
        times=tuple(t for t, _ in members),
        id_column=id_col,
        outcome_name="value" if stem_is_time else stem,
        time_name=stem if stem_is_time else "time",
    )


def wide_to_long(data: pd.DataFrame, spec: WideSpec, *, drop_missing: bool = True) -> pd.DataFrame:
    """Convert a wide table to one row per subject and visit.

    Parameters
    ----------
    data
        The wide table.
    spec
        Output of :func:`detect_wide` (or built by hand).
    drop_missing
        Leave out visits whose value is missing (a missed visit is no observation).

    Returns
    -------
    pandas.DataFrame
        Columns: the id (``subject`` when the table had none), the other non-visit columns
        (repeated on every row), ``spec.time_name`` and ``spec.outcome_name``, sorted by id
        and time.
    """
    frame = data.copy()
    id_col = spec.id_column
    if id_col is None:
        id_col = "subject" if "subject" not in frame.columns else "subject_row"
        frame.insert(0, id_col, [f"S{i + 1:04d}" for i in range(len(frame))])
    keep = [c for c in frame.columns if c not in spec.columns]
    value_name = spec.outcome_name if spec.outcome_name not in keep else f"{spec.outcome_name}_y"
    time_name = spec.time_name if spec.time_name not in keep else f"{spec.time_name}_t"
    long = frame.melt(
        id_vars=keep, value_vars=list(spec.columns), var_name="_col", value_name=value_name
    )
    long.insert(
        len(keep), time_name, long.pop("_col").map(dict(zip(spec.columns, spec.times, strict=True)))
    )
    if drop_missing:
        long = long[long[value_name].notna()]
    times = long[time_name]
    if (times == times.round()).all():
        long[time_name] = times.astype(int)
    order = pd.Categorical(long[id_col], categories=pd.unique(frame[id_col]), ordered=True)
    long = long.assign(_order=order).sort_values(["_order", time_name], kind="stable")
    return long.drop(columns="_order").reset_index(drop=True)
