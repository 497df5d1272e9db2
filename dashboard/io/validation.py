"""Validation report of a long-format table under given column roles. No Streamlit here.

The report is plain data (counts, small tables and a list of findings with a level and a
message that says what to do); the Data page only renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dashboard.io.dates import date_columns, read_dates
from dashboard.io.outcome_kind import outcome_kind, outcome_note
from dashboard.io.roles import Roles, constant_within_subjects, is_numeric, numeric_share

__all__ = ["DATES_FIX", "Finding", "ValidationReport", "repair", "validate", "visits_per_subject"]


@dataclass(frozen=True)
class Finding:
    """One problem or remark. ``level`` is ``"error"`` (must be fixed before modelling),
    ``"warning"`` (the data can be used, but look at it) or ``"info"``."""

    level: str
    message: str
    fix: str = ""  # name of an automatic repair offered by the page, if any


@dataclass(frozen=True)
class ValidationReport:
    """Summary of a dataset under its roles.

    Attributes
    ----------
    n_observations, n_subjects, n_clusters
        Rows, distinct subjects, distinct clusters (``None`` when the role is unset).
    visits_summary
        ``min``, ``median``, ``mean``, ``max`` visits per subject (empty without a subject).
    visits_distribution
        Number of subjects (``subjects``) having each number of visits (``visits``).
    missing
        Per column: ``column``, ``missing`` (count), ``percent``.
    time_range
        ``(min, max)`` of the time column, or ``None``.
    single_visit_subjects
        Ids of subjects seen only once.
    findings
        Errors, warnings and remarks, errors first.
    """

    n_observations: int
    n_subjects: int | None
    n_clusters: int | None
    visits_summary: dict[str, float]
    visits_distribution: pd.DataFrame
    missing: pd.DataFrame
    time_range: tuple[float, float] | None
    single_visit_subjects: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Findings of level ``"error"``."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def ok(self) -> bool:
        """True when nothing blocks modelling."""
        return not self.errors


def visits_per_subject(data: pd.DataFrame, subject: str) -> pd.Series:
    """Number of rows per subject (missing ids excluded), indexed by subject."""
    return data.groupby(subject, observed=True, sort=False).size()


def _text_examples(series: pd.Series, k: int = 3) -> tuple[int, list[str], list[int]]:
    values = series.dropna()
    as_num = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    bad = values[as_num.isna()]
    rows = [int(i) + 2 for i in bad.index[:k]]  # +2: header line and 1-based numbering
    return len(bad), [str(v) for v in bad.iloc[:k]], rows


def _yes_no_labels(series: pd.Series) -> tuple[str, str] | None:
    """The two categories of a text (or logical) outcome with exactly two values, else
    ``None`` (numbers, free text, more categories)."""
    if is_numeric(series) and not pd.api.types.is_bool_dtype(series):
        return None
    found = outcome_kind(series)
    if found is None or found.kind != "binary" or found.labels is None:
        return None
    return found.labels


def _yes_no_note(name: str, labels: tuple[str, str]) -> str:
    """A text outcome with two categories: a logistic model fits it, a linear one cannot."""
    zero, one = labels
    return (
        f"The outcome '{name}' has two categories ('{zero}' and '{one}'): a yes/no outcome. "
        "Fit it on the Model page as a logistic mixed model (Kind of outcome: yes/no), which "
        f"gives the probability of '{one}' (coded 1) and odds ratios. A linear mixed model "
        f"needs numbers: it is not offered for '{name}' (recode it to 0 and 1 for one)."
    )


def _outcome_value_findings(y: pd.Series, name: str) -> list[Finding]:
    """No values or text (errors); two categories of text: a yes/no outcome (a note)."""
    out: list[Finding] = []
    if y.notna().sum() == 0:
        out.append(Finding("error", f"The outcome '{name}' has no values."))
    elif not is_numeric(y) and _yes_no_labels(y) is not None:
        out.append(Finding("info", _yes_no_note(name, _yes_no_labels(y))))
    elif not is_numeric(y):
        n_bad, examples, rows = _text_examples(y)
        shown = ", ".join(f"'{e}' (line {r})" for e, r in zip(examples, rows, strict=False))
        repair = "outcome_text" if numeric_share(y) >= 0.5 else ""
        out.append(
            Finding(
                "error",
                f"The outcome '{name}' contains text: {n_bad:,} value(s) are not "
                f"numbers, e.g. {shown}. The outcome must be numeric: correct or blank "
                "those cells, or choose another outcome column.",
                fix=repair,
            )
        )
    return out


def _role_findings(data: pd.DataFrame, roles: Roles) -> list[Finding]:
    out: list[Finding] = []
    for role, label in (("subject", "subject id"), ("time", "time"), ("outcome", "outcome")):
        if getattr(roles, role) is None:
            out.append(
                Finding("error", f"No {label} column is chosen. Pick one under Column roles.")
            )
    used = [c for c in (roles.subject, roles.cluster, roles.time, roles.outcome) if c]
    dup = sorted({c for c in used if used.count(c) > 1})
    for col in dup:
        out.append(
            Finding("error", f"'{col}' is used for two roles; give each role its own column.")
        )
    if roles.outcome is not None:
        out.extend(_outcome_value_findings(data[roles.outcome], roles.outcome))
    out.extend(_extreme_findings(data, roles))
    if roles.time is not None and not is_numeric(data[roles.time]):
        out.append(_time_text_finding(data, roles.time))
    out.extend(_time_constant_findings(data, roles))
    if roles.outcome is not None and is_numeric(data[roles.outcome]):
        note = outcome_note(data[roles.outcome], roles.outcome)
        if note:
            out.append(Finding("warning", note))
    return out


#: ``Finding.fix`` of a time column holding dates: the Data page offers the conversion.
DATES_FIX = "time_dates"


def _time_text_finding(data: pd.DataFrame, time: str) -> Finding:
    """The time is not numeric: dates get the conversion offer, other text says what to do."""
    reading = read_dates(data[time])
    if reading is not None and reading.ambiguous:
        return Finding("error", f"The time '{time}' holds dates, but: {reading.ambiguous}")
    if reading is not None:
        return Finding(
            "error",
            f"The time '{time}' holds dates ({reading.label}), and a model needs time as a "
            'number. Convert it with one click under "Use dates as the time": the time '
            "since each subject's first visit (or since another date column, such as a "
            "randomisation date), in days, weeks, months or years.",
            fix=DATES_FIX,
        )
    return Finding(
        "error",
        f"The time '{time}' is not numeric. Use a number such as days, weeks or years since "
        "baseline, or a column of dates (e.g. 2024-03-15), which can be converted here.",
    )


def _time_constant_findings(data: pd.DataFrame, roles: Roles) -> list[Finding]:
    """The chosen time never changes within a subject (an age at baseline, not a time)."""
    if roles.subject is None or roles.time is None:
        return []
    if not constant_within_subjects(data, roles.subject, roles.time):
        return []
    others = [c for c in date_columns(data) if c != roles.time]
    hint = (
        f" To use the visit dates, choose '{others[0]}' as the time and convert it."
        if others
        else ""
    )
    return [
        Finding(
            "warning",
            f"The time '{roles.time}' never changes within a subject: each subject has the "
            f"same '{roles.time}' at every visit, so it cannot say when the visits happened "
            "and a model cannot estimate change over time from it. It looks like a "
            "characteristic of the subject (such as age at entry); use it as a covariate and "
            f"choose a time that differs between visits (days, weeks, a visit date).{hint}",
        )
    ]


#: Largest magnitude accepted in the time and outcome columns: squares and sums of larger
#: values overflow double precision inside the model fit.
MAX_MAGNITUDE = 1e100


def _extreme_findings(data: pd.DataFrame, roles: Roles) -> list[Finding]:
    """Infinite values (repairable: treat them as missing) and overflowing magnitudes."""
    out: list[Finding] = []
    for role in ("time", "outcome"):
        col = getattr(roles, role)
        if col is None or not is_numeric(data[col]):
            continue
        values = data[col].to_numpy(dtype=float, na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            out.append(
                Finding(
                    "error",
                    f"The {role} '{col}' has {n_inf:,} infinite value(s) ('inf'); models cannot "
                    "use them. Blank those cells, or treat them as missing.",
                    fix="nonfinite",
                )
            )
        finite = np.abs(values[np.isfinite(values)])
        if finite.size and finite.max() > MAX_MAGNITUDE:
            out.append(
                Finding(
                    "error",
                    f"The {role} '{col}' has values as large as {finite.max():.3g}, too large "
                    "to compute with. Check the column, or rescale it (another unit).",
                )
            )
    return out


def validate(data: pd.DataFrame, roles: Roles) -> ValidationReport:
    """Check a dataset under its roles and summarise it.

    Parameters
    ----------
    data
        Long-format table, one row per visit.
    roles
        Column roles; unset roles are reported as errors.

    Returns
    -------
    ValidationReport
    """
    roles = roles.restricted_to(data.columns)
    findings = _role_findings(data, roles)
    missing = _missing_table(data, findings)
    visits = _visit_findings(data, roles.subject, findings)
    n_clusters = _cluster_findings(data, roles, findings)
    time_range = _time_and_outcome_findings(data, roles, findings)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.level])
    n_subjects, summary, distribution, single = visits
    return ValidationReport(
        n_observations=int(len(data)),
        n_subjects=n_subjects,
        n_clusters=n_clusters,
        visits_summary=summary,
        visits_distribution=distribution,
        missing=missing,
        time_range=time_range,
        single_visit_subjects=single,
        findings=findings,
    )


def _missing_table(data: pd.DataFrame, findings: list[Finding]) -> pd.DataFrame:
    """Missing cells per column; an error for columns empty in every row."""
    n_missing = data.isna().sum()
    missing = pd.DataFrame(
        {
            "column": list(data.columns),
            "missing": n_missing.to_numpy(dtype=int),
            "percent": np.round(100.0 * n_missing.to_numpy() / max(len(data), 1), 1),
        }
    )
    empty = [c for c in data.columns if n_missing[c] == len(data)]
    if empty:
        names = ", ".join(f"'{c}'" for c in empty)
        findings.append(
            Finding(
                "error",
                f"Column(s) {names} are empty in every row. Remove them from the file, or "
                "load the data without them.",
                fix="drop_empty",
            )
        )
    return missing


def _visit_findings(data: pd.DataFrame, subject: str | None, findings: list[Finding]):
    """``(n_subjects, visits summary, visits distribution, single-visit subjects)``, with
    findings for single visits and missing ids."""
    summary: dict[str, float] = {}
    distribution = pd.DataFrame({"visits": [], "subjects": []}, dtype=int)
    if subject is None:
        return None, summary, distribution, []
    counts = visits_per_subject(data, subject)
    n_subjects = int(counts.size)
    if n_subjects:
        summary = {
            "min": float(counts.min()),
            "median": float(counts.median()),
            "mean": float(counts.mean()),
            "max": float(counts.max()),
        }
        vc = counts.value_counts().sort_index()
        distribution = pd.DataFrame({"visits": vc.index.astype(int), "subjects": vc.values})
    single = [str(s) for s in counts.index[counts.to_numpy() == 1]]
    if n_subjects and len(single) == n_subjects:
        findings.append(
            Finding(
                "error",
                "Every subject has exactly one row, so there is nothing longitudinal to "
                "model. Check the subject column; if the file has one column per visit, "
                "convert it to long format.",
            )
        )
    elif single:
        findings.append(
            Finding(
                "warning",
                f"{len(single):,} subject(s) have a single visit; they inform the "
                "intercept but not the slope.",
            )
        )
    n_id_missing = int(data[subject].isna().sum())
    if n_id_missing:
        findings.append(
            Finding("warning", f"{n_id_missing:,} row(s) have no subject id; they are ignored.")
        )
    return n_subjects, summary, distribution, single


def _cluster_findings(data: pd.DataFrame, roles: Roles, findings: list[Finding]) -> int | None:
    """Number of clusters; a warning for subjects seen in more than one cluster."""
    if roles.cluster is None:
        return None
    n_clusters = int(data[roles.cluster].nunique())
    if roles.subject is not None:
        per = data.groupby(roles.subject, observed=True)[roles.cluster].nunique()
        moved = int((per > 1).sum())
        if moved:
            findings.append(
                Finding(
                    "warning",
                    f"{moved:,} subject(s) appear in more than one '{roles.cluster}'; "
                    "subjects are usually nested in one cluster.",
                )
            )
    return n_clusters


def _time_and_outcome_findings(
    data: pd.DataFrame, roles: Roles, findings: list[Finding]
) -> tuple[float, float] | None:
    """The numeric time's range (an error when it has one value); a note on missing outcomes."""
    time_range = None
    if roles.time is not None and is_numeric(data[roles.time]) and data[roles.time].notna().any():
        t = data[roles.time]
        time_range = (float(t.min()), float(t.max()))
        if time_range[0] == time_range[1]:
            findings.append(Finding("error", f"The time '{roles.time}' has a single value."))
    if roles.outcome is not None and is_numeric(data[roles.outcome]):
        n_y_missing = int(data[roles.outcome].isna().sum())
        if 0 < n_y_missing < len(data):
            findings.append(
                Finding(
                    "info",
                    f"{n_y_missing:,} row(s) have no outcome value; models leave them out.",
                )
            )
    return time_range


def repair(data: pd.DataFrame, roles: Roles, fixes: list[str]) -> pd.DataFrame:
    """Apply the automatic repairs named in ``Finding.fix``.

    ``drop_empty`` removes columns that are empty in every row; ``outcome_text`` turns the
    text values of the outcome column into missing values; ``nonfinite`` turns infinite
    values of the time and outcome columns into missing values.
    """
    out = data.copy()
    if "nonfinite" in fixes:
        for col in {roles.time, roles.outcome} - {None}:
            if col in out.columns and is_numeric(out[col]):
                out[col] = out[col].where(~np.isinf(out[col].to_numpy(dtype=float)))
    if "drop_empty" in fixes:
        out = out.loc[:, out.notna().any()]
    if "outcome_text" in fixes and roles.outcome in out.columns:
        out[roles.outcome] = pd.to_numeric(
            out[roles.outcome].astype(str).str.strip(), errors="coerce"
        )
    return out
