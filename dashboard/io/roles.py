"""Column roles of a longitudinal table and a sensible first guess. No Streamlit here.

Roles: ``subject`` (who is measured repeatedly), ``cluster`` (a higher level such as the
hospital, optional), ``time`` (numeric), ``outcome`` (numeric) and ``covariates``. The guess
uses column names first (``patient``, ``hospital``, ``time``, ``y``...) and the shape of the
values second (an id repeats, a time varies within subject, an outcome is a measurement).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from dashboard.io.dates import looks_like_dates

__all__ = [
    "Roles",
    "constant_within_subjects",
    "guess_roles",
    "is_numeric",
    "missing_longitudinal_roles",
    "numeric_share",
]

SUBJECT_WORDS = (
    "subject", "patient", "participant", "person", "individual", "pid", "subj", "id",
    "child", "animal", "case", "worker", "student", "mouse", "rat", "code", "chick", "pig",
    "cow", "dog", "tree", "plant",
)  # fmt: skip
CLUSTER_WORDS = (
    "hospital", "center", "centre", "site", "clinic", "cluster", "school", "practice",
    "ward", "region", "country", "group", "batch", "family", "class", "team", "unit",
)  # fmt: skip
TIME_WORDS = (
    "time", "days", "day", "weeks", "week", "months", "month", "years", "year", "age",
    "hours", "hour", "occasion", "wave", "visit", "period", "t",
)  # fmt: skip
OUTCOME_WORDS = (
    "y", "outcome", "response", "value", "score", "result", "reaction", "distance",
    "measurement", "measure", "sbp", "dbp", "bp", "weight", "height", "level", "yield",
    "count", "counts", "events", "event", "status", "infection", "seizures", "symptom",
)  # fmt: skip


@dataclass(frozen=True)
class Roles:
    """Which column plays which part; every field may be unset (``None`` / empty)."""

    subject: str | None = None
    cluster: str | None = None
    time: str | None = None
    outcome: str | None = None
    covariates: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (covariates as a list) for session state."""
        out = asdict(self)
        out["covariates"] = list(self.covariates)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Roles:
        """Build from a dict such as a manifest entry's ``roles``; unknown keys are ignored."""
        raw = raw or {}
        return cls(
            subject=raw.get("subject"),
            cluster=raw.get("cluster"),
            time=raw.get("time"),
            outcome=raw.get("outcome"),
            covariates=tuple(raw.get("covariates") or ()),
        )

    def restricted_to(self, columns: list[str] | pd.Index) -> Roles:
        """Drop roles that name columns not in ``columns``."""
        cols = set(columns)

        def keep(name: str | None) -> str | None:
            return name if name in cols else None

        return Roles(
            subject=keep(self.subject),
            cluster=keep(self.cluster),
            time=keep(self.time),
            outcome=keep(self.outcome),
            covariates=tuple(c for c in self.covariates if c in cols),
        )


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _name_rank(name: str, words: tuple[str, ...]) -> int | None:
    """Position of the first matching word (lower is better), or None."""
    toks = _tokens(name)
    for rank, word in enumerate(words):
        if word in toks:
            return rank
    return None


def is_numeric(series: pd.Series) -> bool:
    """True for numeric (non-boolean) columns."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def missing_longitudinal_roles(data: pd.DataFrame, roles: Roles) -> list[str]:
    """What a longitudinal view lacks: a subject column, a numeric time, a numeric outcome."""
    missing = []
    if roles.subject is None:
        missing.append("a subject id column")
    if roles.time is None or not is_numeric(data[roles.time]):
        dates = roles.time is not None and looks_like_dates(data[roles.time])
        missing.append(
            f"a numeric time column ('{roles.time}' holds dates: the Data page converts "
            "them in one click)"
            if dates
            else "a numeric time column"
        )
    if roles.outcome is None or not is_numeric(data[roles.outcome]):
        missing.append("a numeric outcome column")
    return missing


def numeric_share(series: pd.Series) -> float:
    """Share of the non-missing values that read as numbers (1.0 for numeric columns)."""
    values = series.dropna()
    if values.empty:
        return 0.0
    if is_numeric(series):
        return 1.0
    return float(pd.to_numeric(values.astype(str).str.strip(), errors="coerce").notna().mean())


def constant_within_subjects(data: pd.DataFrame, subject: str, column: str) -> bool:
    """True when ``column`` never changes within a subject.

    Only subjects with at least two non-missing values of ``column`` count; ``False`` when
    there is none (nothing can be said) or when ``column`` is the subject column itself.

    Parameters
    ----------
    data
        Long-format table.
    subject, column
        Subject id column and the column to check (e.g. the chosen time).

    Returns
    -------
    bool
    """
    if column == subject or subject not in data.columns or column not in data.columns:
        return False
    pairs = data[[subject, column]].dropna()
    if pairs.empty:
        return False
    grouped = pairs.groupby(subject, observed=True, sort=False)[column]
    several = grouped.size() >= 2
    return bool(several.any() and (grouped.nunique()[several] <= 1).all())


def _repeats(series: pd.Series) -> bool:
    n_levels = series.nunique(dropna=True)
    return 2 <= n_levels < series.notna().sum()


def _is_nested(inner: pd.Series, outer: pd.Series) -> bool:
    """Every level of ``inner`` maps to one level of ``outer``."""
    pairs = pd.DataFrame({"i": inner, "o": outer}).dropna()
    return bool((pairs.groupby("i", observed=True)["o"].nunique() <= 1).all())


def _pick(candidates: list[tuple[Any, str]]) -> str | None:
    return min(candidates)[1] if candidates else None


def guess_roles(data: pd.DataFrame) -> Roles:
    """Guess column roles from names and values.

    One step per role, each choosing among the columns the earlier steps left: subject,
    cluster, time, outcome, then covariates.

    Parameters
    ----------
    data
        A long-format table (one row per visit).

    Returns
    -------
    Roles
        The guess; roles that cannot be guessed are left unset.
    """
    usable = [c for c in data.columns if data[c].notna().any()]
    subject = _guess_subject(data, usable)
    cluster = _guess_cluster(data, usable, subject)
    taken = {subject, cluster}
    time = _guess_time(data, usable, subject, taken)
    taken.add(time)
    outcome = _guess_outcome(data, usable, taken)
    taken.add(outcome)
    covariates = _guess_covariates(data, usable, subject, taken)
    return Roles(subject, cluster, time, outcome, tuple(covariates))


def _guess_subject(data: pd.DataFrame, usable: list) -> str | None:
    """A repeating column, by name rank, then more levels (patient over hospital)."""
    n = len(data)
    candidates = []
    for col in usable:
        s = data[col]
        if not _repeats(s) or (is_numeric(s) and not _integer_like(s)):
            continue
        rank = _name_rank(col, SUBJECT_WORDS)
        levels = s.nunique()
        if rank is None and (levels < 3 or levels > n / 1.5 or _name_rank(col, TIME_WORDS)):
            continue
        candidates.append(((rank if rank is not None else 99, -levels), col))
    return _pick(candidates)


def _guess_cluster(data: pd.DataFrame, usable: list, subject: str | None) -> str | None:
    """Named like a cluster, fewer levels than the subject, subject nested within it."""
    candidates = []
    for col in usable:
        rank = _name_rank(col, CLUSTER_WORDS)
        if col == subject or rank is None or not _repeats(data[col]):
            continue
        if subject is not None:
            if data[col].nunique() >= data[subject].nunique():
                continue
            if not _is_nested(data[subject], data[col]):
                continue
        candidates.append(((rank, data[col].nunique()), col))
    return _pick(candidates)


def _time_rank(data: pd.DataFrame, col: str, subject: str | None) -> int | None:
    """Rank of ``col`` as the time (lower is better; ``None``: not a time).

    Numeric, named like a time; otherwise numeric, varying within subject, few values.
    Dates come next (the Data page converts them to a number in one click); a text column
    named like a time comes last, so validation can say so.
    """
    s = data[col]
    rank = _name_rank(col, TIME_WORDS)
    if not is_numeric(s):
        if looks_like_dates(s):
            return 40 + (20 if rank is None else rank)
        return None if rank is None else 70 + rank
    if rank is not None:
        return rank
    varies = subject is not None and data.groupby(subject)[col].nunique().mean() > 1
    if not varies or s.nunique() > max(50, len(data) // 4):
        return None
    return 90


def _guess_time(data: pd.DataFrame, usable: list, subject: str | None, taken: set) -> str | None:
    """The best-ranked time column (fewer distinct values: more time-like); a column that
    never changes within a subject (age at baseline, a randomisation date) is never the time."""
    candidates = []
    for col in usable:
        if col in taken:
            continue
        rank = _time_rank(data, col, subject)
        if rank is not None:
            candidates.append(((rank, data[col].nunique()), col))
    return next(
        (
            col
            for _, col in sorted(candidates)
            if subject is None or not constant_within_subjects(data, subject, col)
        ),
        None,
    )


def _guess_outcome(data: pd.DataFrame, usable: list, taken: set) -> str | None:
    """By name (even if it holds some text, so validation can say so; a yes/no column written
    as text too), else the numeric column with the most distinct values, preferring
    non-integers."""
    candidates = []
    for col in usable:
        s = data[col]
        if col in taken:
            continue
        rank = _name_rank(col, OUTCOME_WORDS)
        yes_no = s.dropna().nunique() == 2  # a yes/no outcome written as text
        if rank is not None and (numeric_share(s) >= 0.5 or yes_no):
            candidates.append(((0, rank, 0), col))
        elif is_numeric(s):
            candidates.append(((1, int(_integer_like(s)), -s.nunique()), col))
    return _pick(candidates)


def _guess_covariates(data: pd.DataFrame, usable: list, subject: str | None, taken: set) -> list:
    """Numeric columns and text with 2 to 20 levels, except ids, other times and dates."""
    covariates = []
    for col in usable:
        s = data[col]
        if col in taken or _name_rank(col, SUBJECT_WORDS) is not None:
            continue
        if _name_rank(col, TIME_WORDS) is not None and not (
            subject is not None and constant_within_subjects(data, subject, col)
        ):
            continue  # another time column (a visit number), but age at baseline stays
        if not is_numeric(s) and looks_like_dates(s):
            continue
        if is_numeric(s) or 2 <= s.nunique() <= 20:
            covariates.append(col)
    return covariates


def _integer_like(series: pd.Series) -> bool:
    if not is_numeric(series):
        return True  # text ids count as "integer-like" labels
    values = series.dropna().to_numpy(dtype=float)
    return bool(len(values)) and bool((values == values.round()).all())
