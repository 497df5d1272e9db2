"""Outcomes that are binary or counts (issue 11 item 6): what they look like and the note."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.io.outcome_kind import binary_columns, outcome_kind, outcome_note
from dashboard.io.roles import Roles
from dashboard.io.validation import validate
from lmm_core.datasets import list_examples, load_example


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0, 1, 1, 0, np.nan], "binary"),
        ([1.0, 2.0, 2.0], "binary"),
        ([True, False, True], "binary"),  # logical: yes/no
        (["yes", "no", None, "no"], "binary"),  # two categories: yes/no
        ([0, 3, 1, 0, 7, 2], "counts"),
        ([1, 4, 12, 20, 3], "counts"),
        ([0, 5, 80, 3, 2, 1, 0], "counts"),  # zeros and a small median
        ([120, 135, 142, 128, 151], "continuous"),  # whole mmHg are a measurement
        ([0.5, 1.5, 2.0], "continuous"),
        ([-1, 0, 1, 2], "continuous"),
        ([3, 3, 3], "continuous"),
    ],
)
def test_outcome_kind(values, kind):
    found = outcome_kind(pd.Series(values))
    assert (found.kind if found else None) == kind


def test_no_values_is_no_kind():
    assert outcome_kind(pd.Series([np.nan, np.nan])) is None
    assert outcome_kind(pd.Series(["a", "b", "c"])) is None  # three categories: no kind


def test_binary_note_says_what_it_means():
    note = outcome_note(pd.Series([0, 1, 1, 0]), "Relapse (yes=1)")
    assert "The outcome 'Relapse (yes=1)' has only two values (0 and 1)" in note
    assert "yes/no (binary)" in note and "treats it as a continuous measurement" in note
    assert "proportion of 1s" in note and "outside 0 to 1" in note
    assert "logistic mixed model" in note and "Kind of outcome" in note
    other = outcome_note(pd.Series([1, 2, 2]), "arm")
    assert "two values (1 and 2)" in other and "share of 2s" in other
    assert "Recode it to 0 and 1 (1 for 2)" in other


def test_count_note_says_what_it_means():
    note = outcome_note(pd.Series([0, 2, 5, 1]), "Falls")
    assert "only whole numbers from 0 to 5" in note and "counts" in note
    assert "below 0" in note and "Poisson mixed model" in note and "exposure" in note


GLMM_EXAMPLES = {"infections": "binary", "seizures": "counts"}


def test_measurements_get_no_note_and_the_examples_are_measurements():
    assert outcome_note(pd.Series([120.5, 131.0, 128.2]), "SBP") is None
    for info in list_examples():
        data, meta = load_example(info.name)
        outcome = data[meta.roles["outcome"]]
        if info.name in GLMM_EXAMPLES:
            assert outcome_kind(outcome).kind == GLMM_EXAMPLES[info.name]
        else:
            assert outcome_note(outcome, "y") is None, info.name


def test_validation_report_warns_about_a_binary_outcome():
    frame = pd.DataFrame({"id": list("aabbcc"), "t": [0, 1] * 3, "y": [0, 1, 0, 0, 1, 1]})
    report = validate(frame, Roles("id", None, "t", "y"))
    assert report.ok  # a warning, not an error: the model can be fitted
    (warning,) = [f for f in report.findings if f.level == "warning"]
    assert "only two values (0 and 1)" in warning.message


def test_family_and_glmm_readiness():
    assert outcome_kind(pd.Series([0, 1, 1])).family == "binomial"
    assert outcome_kind(pd.Series([0, 1, 1])).glmm_ready
    assert not outcome_kind(pd.Series([1, 2, 2])).glmm_ready  # must be recoded to 0/1
    assert outcome_kind(pd.Series([0, 3, 1, 7])).family == "poisson"
    assert outcome_kind(pd.Series([120.5, 131.0, 128.2])).family == "gaussian"
    text = outcome_kind(pd.Series(["no", "yes", "no"]))
    assert text.labels == ("no", "yes") and text.glmm_ready
    note = outcome_note(pd.Series(["no", "yes"]), "Infected?")
    assert "two categories ('no' and 'yes')" in note and "probability of 'yes'" in note


def test_binary_columns_are_the_yes_no_text_and_logical_ones():
    frame = pd.DataFrame(
        {
            "Infecté [oui/non]": ["oui", "non", "oui"],
            "flag": [True, False, True],
            "arm": ["a", "b", "c"],
            "y": [0, 1, 0],
        }
    )
    assert binary_columns(frame) == ["Infecté [oui/non]", "flag"]
