"""Date columns as the time of a longitudinal model. No Streamlit here.

A model needs time as a number. A column of dates (ISO text such as ``2024-03-15``, datetimes
from Excel or Parquet, or text dates in one unambiguous format) becomes one with
:func:`add_time_from_dates`: the time since each subject's first visit, or since another date
column (a randomisation date), in days, weeks, months (30.4375 days) or years (365.25 days).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "FIRST_VISIT",
    "UNITS",
    "DateConversionError",
    "DateReading",
    "add_time_from_dates",
    "date_columns",
    "looks_like_dates",
    "read_dates",
    "suggest_unit",
    "time_column_name",
    "time_since",
]

#: Length of each offered unit in days (a month is a twelfth of a Julian year).
UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}
#: ``origin`` value meaning "each subject's first visit".
FIRST_VISIT = "first visit"
#: Share of the non-missing values that must read as dates for a column to count as dates.
MIN_READABLE = 0.9

_DATE_SHAPE = re.compile(
    r"^\s*(\d{4}-\d{1,2}-\d{1,2}([ T].*)?"  # ISO, with or without a time of day
    r"|\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}( .*)?"  # 15/03/2024, 03.15.2024, 15-03-24
    r"|.*\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b.*\d{4}.*)\s*$",
    re.IGNORECASE,
)
_TIMES = ("", " %H:%M", " %H:%M:%S")
_NUMERIC_FORMATS = {  # label -> date formats read the same way
    "day/month/year": ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y", "%d.%m.%y"),
    "month/day/year": ("%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y"),
    "year/month/day": ("%Y/%m/%d", "%Y.%m.%d"),
    "dates with month names": (
        "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y",
        "%B %d %Y",
    ),
}  # fmt: skip


class DateConversionError(ValueError):
    """A date column cannot be turned into a time; the message says why and what to do."""


@dataclass(frozen=True)
class DateReading:
    """How a column reads as dates.

    Attributes
    ----------
    values
        The dates (``datetime64``, same index as the column; ``NaT`` where missing or
        unreadable).
    label
        How they were read, e.g. ``"ISO dates"`` or ``"day/month/year"``.
    n_unreadable
        Non-missing values that are not dates in that format.
    unreadable
        Up to three of them, for messages.
    ambiguous
        Empty, or a message when the values read as different dates in two formats
        (``03/04/2024``: 3 April or March 4).
    """

    values: pd.Series
    label: str
    n_unreadable: int = 0
    unreadable: tuple[str, ...] = ()
    ambiguous: str = ""


def _naive(values: pd.Series) -> pd.Series:
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def _parse(unique: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Dates of ``unique`` (text) read with the first matching format of ``formats``."""
    out = pd.Series(pd.NaT, index=unique.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = out.isna()
        if not todo.any():
            break
        try:
            parsed = pd.to_datetime(unique[todo], format=fmt, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            continue
        out[todo] = _naive(parsed) if len(parsed) else parsed
    return out


def read_dates(series: pd.Series) -> DateReading | None:
    """Read a column as dates, or return ``None`` when it does not hold dates.

    Datetime columns are dates as they are. Text columns are dates when at least 90% of
    their non-missing values have the shape of a date in one format: ISO (``2024-03-15``,
    with or without a time of day), day/month/year, month/day/year, year/month/day, or with
    month names (``15 Mar 2024``). Numbers are never dates.

    Parameters
    ----------
    series
        A column of the table.

    Returns
    -------
    DateReading or None
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        return DateReading(_naive(series), "dates and times")
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return None
    present = series.dropna()
    if present.empty:
        return None
    text = present.astype(str).str.strip()
    unique = pd.Series(text.unique())
    sample = unique.head(200)
    if sample.str.match(_DATE_SHAPE).mean() < MIN_READABLE:
        return None
    if pd.to_numeric(sample, errors="coerce").notna().mean() > 0.5:
        return None
    readings: list[tuple[str, pd.Series]] = []
    iso = _naive(pd.to_datetime(unique, format="ISO8601", errors="coerce"))
    iso[~unique.str.match(r"^\d{4}-\d{1,2}-\d{1,2}")] = pd.NaT
    readings.append(("ISO dates", iso))
    for label, formats in _NUMERIC_FORMATS.items():
        readings.append((label, _parse(unique, tuple(f + t for t in _TIMES for f in formats))))
    counts = {label: int(values.notna().sum()) for label, values in readings}
    best = max(counts.values())
    if best < MIN_READABLE * len(unique):
        return None
    winners = [(label, values) for label, values in readings if counts[label] == best]
    label, values = winners[0]
    ambiguous = ""
    for other, other_values in winners[1:]:
        differ = values.notna() & other_values.notna() & (values != other_values)
        if differ.any():
            example = unique[differ].iloc[0]
            ambiguous = (
                f"Dates such as '{example}' can be read as {label} or as {other}, giving "
                "different dates. Write them in one unambiguous form (ISO: 2024-03-15) and "
                "upload again."
            )
            break
    mapping = dict(zip(unique, values, strict=True))
    dates = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    dates[text.index] = text.map(mapping).to_numpy(dtype="datetime64[ns]")
    bad = text[dates[text.index].isna()]
    return DateReading(
        dates, label, int(bad.size), tuple(bad.unique()[:3].tolist()), ambiguous=ambiguous
    )


def suggest_unit(data: pd.DataFrame, date_column: str, subject: str | None) -> str:
    """A readable unit for the time since the first visit: days for follow-up up to two
    months, weeks up to a year, months up to five years, years beyond (``"days"`` when the
    span cannot be computed)."""
    try:
        span = time_since(data, date_column, subject=subject).max()
    except DateConversionError:
        return "days"
    if not np.isfinite(span) or span <= 61:
        return "days"
    if span <= 366:
        return "weeks"
    return "months" if span <= 5 * 365.25 else "years"


def looks_like_dates(series: pd.Series) -> bool:
    """True when the column reads as dates in one unambiguous way."""
    reading = read_dates(series)
    return reading is not None and not reading.ambiguous


def date_columns(data: pd.DataFrame) -> list[str]:
    """Names of the columns that read as dates (unambiguously), in table order."""
    return [str(c) for c in data.columns if looks_like_dates(data[c])]


def time_column_name(date_column: str, unit: str, origin: str = FIRST_VISIT) -> str:
    """Name of the time column made from ``date_column``, saying its unit and origin.

    ``"Visit date (days since first visit)"``, ``"Visit date (months since Randomised)"``.
    """
    return f"{date_column} ({unit} since {origin})"


def _checked_reading(series: pd.Series, name: str) -> DateReading:
    reading = read_dates(series)
    if reading is None:
        raise DateConversionError(
            f"'{name}' does not hold dates that can be read (e.g. 2024-03-15 or 15/03/2024)."
        )
    if reading.ambiguous:
        raise DateConversionError(reading.ambiguous)
    return reading


def time_since(
    data: pd.DataFrame,
    date_column: str,
    *,
    subject: str | None,
    unit: str = "days",
    origin: str = FIRST_VISIT,
) -> pd.Series:
    """Time of each row since the subject's first visit or since a date column.

    Parameters
    ----------
    data
        Long-format table.
    date_column
        Column of visit dates.
    subject
        Subject id column (the first visit is the subject's earliest date); needed only
        when ``origin`` is :data:`FIRST_VISIT`.
    unit
        One of :data:`UNITS`.
    origin
        :data:`FIRST_VISIT`, or the name of another date column (e.g. a randomisation date;
        times before it are negative).

    Returns
    -------
    pandas.Series
        Float times (``NaN`` where a date is missing or unreadable).

    Raises
    ------
    DateConversionError
        When a column does not hold dates, the unit is unknown, or no time can be computed.
    """
    if unit not in UNITS:
        raise DateConversionError(f"Unknown unit '{unit}'; choose one of {', '.join(UNITS)}.")
    if date_column not in data.columns:
        raise DateConversionError(f"There is no column '{date_column}' in the data.")
    if origin == FIRST_VISIT and (subject is None or subject not in data.columns):
        raise DateConversionError(
            "Choose the subject id column first: the time since the first visit is counted "
            "for each subject from their own first visit."
        )
    dates = _checked_reading(data[date_column], date_column).values
    if origin == FIRST_VISIT:
        start = dates.groupby(data[subject], observed=True, sort=False).transform("min")
    elif origin in data.columns:
        if origin == date_column:
            raise DateConversionError("Choose a start date column other than the visit dates.")
        start = _checked_reading(data[origin], origin).values
    else:
        raise DateConversionError(f"There is no column '{origin}' in the data.")
    delta = (dates - start).dt.total_seconds() / 86_400.0 / UNITS[unit]
    delta = delta.astype(float)
    if not np.isfinite(delta.to_numpy()).any():
        raise DateConversionError(
            f"No time could be computed from '{date_column}' and '{origin}': the dates are "
            "missing in every row."
        )
    return delta


def add_time_from_dates(
    data: pd.DataFrame,
    date_column: str,
    *,
    subject: str | None,
    unit: str = "days",
    origin: str = FIRST_VISIT,
) -> tuple[pd.DataFrame, str, str]:
    """A copy of ``data`` with a numeric time column computed from a date column.

    The new column is named by :func:`time_column_name` and placed right after
    ``date_column`` (a column of that name is replaced). See :func:`time_since` for the
    arguments and errors.

    Returns
    -------
    data, name, note
        The new table, the new column's name and one sentence describing what was done.
    """
    times = time_since(data, date_column, subject=subject, unit=unit, origin=origin)
    name = time_column_name(date_column, unit, origin)
    out = data.drop(columns=[name]) if name in data.columns else data.copy()
    out.insert(list(out.columns).index(date_column) + 1, name, times)
    reading = read_dates(data[date_column])
    since = "each subject's first visit" if origin == FIRST_VISIT else f"'{origin}'"
    note = (
        f"Added '{name}': the time of each visit in {unit} since {since}, computed from "
        f"'{date_column}' ({reading.label if reading else 'dates'})"
    )
    if unit != "days":
        note += f"; 1 {unit[:-1]} = {UNITS[unit]:g} days"
    n_missing = int(times.isna().sum())
    if n_missing:
        note += f"; {n_missing:,} row(s) without a readable date have no time"
    if (times < 0).any():
        note += f"; {int((times < 0).sum()):,} visit(s) come before '{origin}' (negative times)"
    return out, name, note + "."
