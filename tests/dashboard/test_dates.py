"""Dates as the time (issue 11 item 2): reading dates, the time since the first visit or a
date column in four units, the role guess that never takes a per-subject constant as the
time, and the validation report's findings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.io.dates import (
    FIRST_VISIT,
    UNITS,
    DateConversionError,
    add_time_from_dates,
    date_columns,
    looks_like_dates,
    read_dates,
    suggest_unit,
    time_column_name,
    time_since,
)
from dashboard.io.loading import read_table
from dashboard.io.roles import Roles, constant_within_subjects, guess_roles
from dashboard.io.validation import DATES_FIX, validate
from dashboard.views.upload import assess
from tests.fixtures.clinic_bp import clinic_csv, clinic_frame


@pytest.mark.parametrize(
    ("values", "label", "first"),
    [
        (["2024-03-15", "2024-04-01", None], "ISO dates", "2024-03-15"),
        (["2024-03-15 10:30", "2024-03-16T08:00:00"], "ISO dates", "2024-03-15 10:30"),
        (["15/03/2024", "01/04/2024"], "day/month/year", "2024-03-15"),
        (["15.03.2024", "1.4.2024"], "day/month/year", "2024-03-15"),
        (["03/15/2024", "04/01/2024"], "month/day/year", "2024-03-15"),
        (["15 Mar 2024", "1 April 2024"], "dates with month names", "2024-03-15"),
    ],
)
def test_text_dates_are_read_in_their_one_format(values, label, first):
    reading = read_dates(pd.Series(values, dtype=object))
    assert reading is not None and reading.label == label and not reading.ambiguous
    assert reading.values.iloc[0] == pd.Timestamp(first)
    assert reading.values.isna().sum() == sum(v is None for v in values)


def test_datetimes_with_a_time_zone_are_dates():
    series = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"]).tz_localize("UTC"))
    reading = read_dates(series)
    assert reading is not None and reading.values.dt.tz is None


@pytest.mark.parametrize(
    "values",
    [["1", "2", "3"], [1.0, 2.0], ["A", "B"], ["P001", "P002"], ["week 1", "week 2"], [None]],
)
def test_numbers_ids_and_words_are_not_dates(values):
    assert read_dates(pd.Series(values)) is None


def test_day_month_order_that_cannot_be_told_is_ambiguous_with_a_message():
    series = pd.Series(["03/04/2024", "05/06/2024", "07/08/2024"])
    reading = read_dates(series)
    assert reading is not None and "can be read as day/month/year or as month/day/year" in (
        reading.ambiguous
    )
    assert not looks_like_dates(series)
    frame = pd.DataFrame({"id": ["a", "a", "b"], "d": series})
    with pytest.raises(DateConversionError, match="2024-03-15"):
        time_since(frame, "d", subject="id")


def test_a_few_typos_leave_the_column_dates_and_are_counted():
    values = [f"2024-01-{d:02d}" for d in range(1, 29)] + ["2024-02-30", "unknown"]
    reading = read_dates(pd.Series(values))
    assert reading is not None and reading.n_unreadable == 2
    assert set(reading.unreadable) == {"2024-02-30", "unknown"}


def _visits() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Patient ID": ["b", "b", "a", "a", "a"],
            "Visit date": ["2024-03-01", "2024-01-01", "2024-01-10", "2024-02-09", None],
            "Randomisé le": ["2023-12-31"] * 2 + ["2024-01-20"] * 3,
        }
    )


@pytest.mark.parametrize("unit", list(UNITS))
def test_time_since_the_subjects_first_visit_in_each_unit(unit):
    days = np.array([60.0, 0.0, 0.0, 30.0, np.nan])  # b's first visit is its second row
    got = time_since(_visits(), "Visit date", subject="Patient ID", unit=unit, origin=FIRST_VISIT)
    np.testing.assert_allclose(got.to_numpy(), days / UNITS[unit])
    assert UNITS["months"] == 30.4375 and UNITS["years"] == 365.25


def test_time_since_a_randomisation_date_can_be_negative():
    got = time_since(_visits(), "Visit date", subject=None, origin="Randomisé le")
    np.testing.assert_allclose(got.to_numpy(), [61.0, 1.0, -10.0, 20.0, np.nan])


def test_added_column_says_its_unit_and_origin_and_replaces_an_earlier_one():
    data = _visits()
    out, name, note = add_time_from_dates(data, "Visit date", subject="Patient ID", unit="weeks")
    assert name == "Visit date (weeks since first visit)" == time_column_name("Visit date", "weeks")
    assert list(out.columns) == ["Patient ID", "Visit date", name, "Randomisé le"]
    assert list(data.columns) == ["Patient ID", "Visit date", "Randomisé le"]  # a copy
    assert "1 week = 7 days" in note and "1 row(s) without a readable date" in note
    again, _, _ = add_time_from_dates(out, "Visit date", subject="Patient ID", unit="weeks")
    assert list(again.columns) == list(out.columns)
    _, name2, note2 = add_time_from_dates(
        data, "Visit date", subject=None, unit="days", origin="Randomisé le"
    )
    assert name2 == "Visit date (days since Randomisé le)"
    assert "1 visit(s) come before 'Randomisé le' (negative times)" in note2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"unit": "fortnights"}, "Unknown unit"),
        ({"subject": None}, "Choose the subject id column first"),
        ({"origin": "nowhere"}, "no column 'nowhere'"),
        ({"origin": "Visit date"}, "other than the visit dates"),
        ({"date_column": "Patient ID"}, "does not hold dates"),
    ],
)
def test_conversion_errors_say_what_to_do(kwargs, words):
    args = {"date_column": "Visit date", "subject": "Patient ID", **kwargs}
    with pytest.raises(DateConversionError, match=words):
        time_since(_visits(), args.pop("date_column"), **args)


def test_suggested_unit_follows_the_follow_up_length():
    frame = _visits()
    assert suggest_unit(frame, "Visit date", "Patient ID") == "days"  # 60 days
    frame.loc[0, "Visit date"] = "2024-09-01"
    assert suggest_unit(frame, "Visit date", "Patient ID") == "weeks"
    clinic = clinic_frame()
    assert suggest_unit(clinic, "Visit date", "Patient ID") == "months"  # two years
    assert suggest_unit(frame, "Visit date", None) == "days"  # cannot tell


def test_constant_within_subjects():
    frame = clinic_frame()
    assert constant_within_subjects(frame, "Patient ID", "Age")
    assert not constant_within_subjects(frame, "Patient ID", "Visit date")
    assert not constant_within_subjects(frame, "Patient ID", "Patient ID")
    one_visit = pd.DataFrame({"id": ["a", "b"], "t": [1, 2]})
    assert not constant_within_subjects(one_visit, "id", "t")  # nothing can be said


def test_guess_never_takes_a_per_subject_constant_as_time_and_keeps_it_as_covariate():
    data = read_table(clinic_csv(), "clinic.csv").data
    roles = guess_roles(data)
    assert (roles.subject, roles.time, roles.outcome) == ("Patient ID", "Visit date", "SBP (mmHg)")
    assert roles.covariates == ("Age", "Sex", "Treatment")
    numeric = data.drop(columns="Visit date").assign(
        Day=lambda d: d.groupby("Patient ID").cumcount() * 30
    )
    assert guess_roles(numeric).time == "Day"
    no_time = data.drop(columns="Visit date")
    assert guess_roles(no_time).time is None  # Age is no time, whatever its name says
    assert date_columns(data) == ["Visit date"]


def test_report_offers_the_conversion_and_the_upload_is_not_held_back():
    data = read_table(clinic_csv(), "clinic.csv").data
    found = assess(data)
    (error,) = found.report.errors
    assert error.fix == DATES_FIX and "holds dates (ISO dates)" in error.message
    assert "convert dates before uploading" not in error.message
    assert found.usable and found.repairs == []
    converted, name, _ = add_time_from_dates(
        data, "Visit date", subject="Patient ID", unit="months"
    )
    assert validate(converted, Roles("Patient ID", None, name, "SBP (mmHg)")).ok


def test_dates_beside_another_error_keep_the_other_repair():
    data = read_table(clinic_csv(), "clinic.csv").data
    data["SBP (mmHg)"] = data["SBP (mmHg)"].astype(object)
    data.loc[3, "SBP (mmHg)"] = "high"
    found = assess(data)
    assert not found.usable and found.repairs == ["outcome_text"]


def test_report_warns_when_the_time_never_changes_within_a_subject():
    data = read_table(clinic_csv(), "clinic.csv").data
    report = validate(data, Roles("Patient ID", None, "Age", "SBP (mmHg)"))
    (warning,) = [f for f in report.findings if f.level == "warning"]
    assert "The time 'Age' never changes within a subject" in warning.message
    assert "choose 'Visit date' as the time and convert it" in warning.message
    report = validate(data.drop(columns="Visit date"), Roles("Patient ID", None, "Age", "Sex"))
    assert any(
        "never changes" in f.message and "Visit date" not in f.message for f in report.findings
    )


def test_ambiguous_or_plain_text_time_gets_a_clear_error():
    frame = pd.DataFrame(
        {"id": list("aabb"), "d": ["03/04/2024", "05/04/2024"] * 2, "y": [1.0, 2.0, 3.0, 4.0]}
    )
    (error,) = validate(frame, Roles("id", None, "d", "y")).errors
    assert "holds dates, but" in error.message and error.fix == ""
    frame["d"] = ["baseline", "week 4"] * 2
    (error,) = validate(frame, Roles("id", None, "d", "y")).errors
    assert "The time 'd' is not numeric" in error.message and "can be converted" in error.message


def test_page_guard_says_a_date_time_can_be_converted():
    from dashboard.io.roles import missing_longitudinal_roles

    data = read_table(clinic_csv(), "clinic.csv").data
    (missing,) = missing_longitudinal_roles(data, guess_roles(data))
    assert "'Visit date' holds dates: the Data page converts them in one click" in missing
    plain = missing_longitudinal_roles(data, Roles("Patient ID", None, "Sex", "SBP (mmHg)"))
    assert plain == ["a numeric time column"]
