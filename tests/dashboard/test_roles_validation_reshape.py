"""Role guessing, the validation report, and wide-to-long conversion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dashboard.io.reshape import detect_wide, wide_to_long
from dashboard.io.roles import Roles, guess_roles
from dashboard.io.validation import repair, validate
from lmm_core.datasets import list_examples, load_example


@pytest.mark.parametrize("name", [i.name for i in list_examples()])
def test_guess_matches_the_manifest_roles(name):
    data, info = load_example(name)
    expected = Roles.from_dict(info.roles)
    if name == "trial_visits":
        # the manifest takes the visit number (the Trial page's visit factor) and lists the
        # baseline first (the analysis plan's order); a guess from the columns alone prefers
        # the real time, in weeks, and keeps the table's column order
        expected = dataclasses.replace(expected, time="week", covariates=("arm", "sex", "baseline"))
    assert guess_roles(data) == expected


def test_guess_on_unusual_names_uses_values():
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "Kennung": np.repeat([f"K{i}" for i in range(10)], 5),
            "Zeitpunkt": np.tile([0, 1, 2, 3, 4], 10),
            "Messwert": rng.normal(5, 1, 50),
            "Geschlecht": np.repeat(["w", "m"], 25),
            "leer": np.nan,
        }
    )
    roles = guess_roles(data)
    assert (roles.subject, roles.time, roles.outcome) == ("Kennung", "Zeitpunkt", "Messwert")
    assert roles.covariates == ("Geschlecht",)


def test_roles_round_trip_and_restriction():
    roles = Roles("id", "site", "t", "y", ("arm",))
    assert Roles.from_dict(roles.to_dict()) == roles
    assert Roles.from_dict({"subject": "id"}).time is None
    assert roles.restricted_to(["id", "t"]) == Roles("id", None, "t", None, ())


def _long(n_subjects=6, visits=4):
    rng = np.random.default_rng(1)
    ids = np.repeat([f"S{i}" for i in range(n_subjects)], visits)
    return pd.DataFrame(
        {
            "id": ids,
            "t": np.tile(np.arange(visits), n_subjects).astype(float),
            "y": rng.normal(size=n_subjects * visits),
            "site": np.repeat(["A", "B"], n_subjects * visits // 2),
        }
    )


def test_report_counts_and_distribution():
    data = _long()
    data = data.drop(index=[1, 2, 3]).reset_index(drop=True)  # S0 keeps a single visit
    data.loc[4, "y"] = np.nan
    report = validate(data, Roles("id", "site", "t", "y"))
    assert report.ok
    assert (report.n_observations, report.n_subjects, report.n_clusters) == (21, 6, 2)
    assert report.visits_summary == {"min": 1.0, "median": 4.0, "mean": 3.5, "max": 4.0}
    assert report.visits_distribution.to_dict("list") == {"visits": [1, 4], "subjects": [1, 5]}
    assert report.single_visit_subjects == ["S0"]
    assert report.time_range == (0.0, 3.0)
    missing = report.missing.set_index("column")
    assert missing.loc["y", "missing"] == 1 and missing.loc["id", "missing"] == 0
    levels = [f.level for f in report.findings]
    assert levels == ["warning", "info"]  # single visit, missing outcome


def test_report_errors_say_what_to_do():
    data = _long()
    data["y"] = data["y"].round(2).astype(str)
    data.loc[2, "y"] = "high"
    data["empty"] = np.nan
    report = validate(data, Roles("id", None, "t", "y"))
    assert not report.ok
    text = " ".join(f.message for f in report.errors)
    assert "contains text" in text and "'high' (line 4)" in text
    assert "'empty' are empty in every row" in text
    assert sorted(f.fix for f in report.errors) == ["drop_empty", "outcome_text"]
    fixed = repair(data, Roles("id", None, "t", "y"), ["drop_empty", "outcome_text"])
    assert "empty" not in fixed and fixed["y"].isna().sum() == 1
    assert validate(fixed, Roles("id", None, "t", "y")).ok


def test_missing_roles_and_bad_time_are_errors():
    data = _long()
    report = validate(data, Roles(None, None, "site", None))
    messages = " ".join(f.message for f in report.errors)
    assert "No subject id column" in messages and "No outcome column" in messages
    assert "time 'site' is not numeric" in messages
    same = validate(data, Roles("id", None, "t", "t"))
    assert any("two roles" in f.message for f in same.errors)


def test_one_row_per_subject_is_flagged():
    data = _long(visits=1)
    report = validate(data, Roles("id", None, "t", "y"))
    assert any("exactly one row" in f.message for f in report.errors)


def test_subjects_in_two_clusters_warn():
    data = _long()
    data.loc[0, "site"] = "B"
    report = validate(data, Roles("id", "site", "t", "y"))
    assert any("more than one 'site'" in f.message for f in report.findings)


def test_wide_is_detected_and_converted():
    wide = pd.DataFrame(
        {
            "pid": ["a", "b", "c"],
            "sex": ["F", "M", "F"],
            "sbp_0": [120.0, 130.0, np.nan],
            "sbp_6": [121.0, 129.0, 140.0],
            "sbp_12": [118.0, 131.0, 141.0],
        }
    )
    spec = detect_wide(wide)
    assert spec is not None
    assert spec.columns == ("sbp_0", "sbp_6", "sbp_12") and spec.times == (0.0, 6.0, 12.0)
    assert spec.id_column == "pid" and spec.outcome_name == "sbp"
    long = wide_to_long(wide, spec)
    assert list(long.columns) == ["pid", "sex", "time", "sbp"]
    assert len(long) == 8  # the missing visit of c is left out
    assert long["pid"].tolist() == ["a"] * 3 + ["b"] * 3 + ["c"] * 2
    assert long.loc[long["pid"] == "a", "time"].tolist() == [0, 6, 12]
    assert guess_roles(long) == Roles("pid", None, "time", "sbp", ("sex",))


def test_wide_with_time_stem_and_no_id():
    wide = pd.DataFrame({"week0": [1.0, 2.0], "week4": [1.5, 2.5], "week8": [2.0, 3.0]})
    spec = detect_wide(wide)
    assert (spec.time_name, spec.outcome_name, spec.id_column) == ("week", "value", None)
    long = wide_to_long(wide, spec)
    assert list(long.columns) == ["subject", "week", "value"]
    assert long["subject"].tolist() == ["S0001"] * 3 + ["S0002"] * 3


@pytest.mark.parametrize("name", ["sleepstudy", "orthodont", "trial_small"])
def test_long_examples_are_not_taken_for_wide(name):
    assert detect_wide(load_example(name)[0]) is None


def _yes_no_table(values: list) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"id": np.repeat(["a", "b"], n // 2), "t": np.tile(range(n // 2), 2),
                         "Infection (yes/no)": values})  # fmt: skip


def test_a_yes_no_text_outcome_is_a_note_for_a_logistic_model_not_an_error():
    roles = Roles("id", None, "t", "Infection (yes/no)")
    report = validate(_yes_no_table(["yes", "no", "no", None, "yes", "no"]), roles)
    assert report.ok
    (note,) = [f for f in report.findings if "two categories" in f.message]
    assert note.level == "info"
    assert "('no' and 'yes')" in note.message and "logistic mixed model" in note.message
    assert "linear mixed model needs numbers" in note.message
    assert "contains text" not in " ".join(f.message for f in report.findings)


@pytest.mark.parametrize(
    "values",
    [["yes", "no", "maybe", "no", "yes", "no"], ["1.2", "3.4", "high", "2.2", "1.0", "0.5"]],
)
def test_free_text_or_more_categories_in_the_outcome_stay_errors(values):
    report = validate(_yes_no_table(values), Roles("id", None, "t", "Infection (yes/no)"))
    assert not report.ok
    assert "contains text" in report.errors[0].message


def test_a_yes_no_text_outcome_named_like_an_outcome_is_the_outcome():
    data, _ = load_example("infections")
    data = data.rename(
        columns={"patient": "Patient n°", "infection": "Infection (yes/no)", "week": "Semaine [w]"}
    )
    data["Infection (yes/no)"] = data["Infection (yes/no)"].map({0: "no", 1: "yes"})
    roles = guess_roles(data)
    assert (roles.subject, roles.time, roles.outcome) == (
        "Patient n°",
        "Semaine [w]",
        "Infection (yes/no)",
    )
    assert roles.covariates == ("arm", "age")
