"""dashboard.model_builder: builder choices -> lme4 formula, labels from any formula."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.model_builder import (
    BuilderChoices,
    GroupLevel,
    build_formula,
    formula_label,
    ids_repeat_across,
    random_term,
)
from lmm_core import FormulaError, datasets, fit_lmm
from lmm_core.formula import parse_formula, quote_name


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (GroupLevel("Subject"), "(1 | Subject)"),
        (GroupLevel("Subject", slopes=("Days",)), "(Days | Subject)"),
        (GroupLevel("Subject", slopes=("Days",), correlated=False), "(Days || Subject)"),
        (GroupLevel("Subject", intercept=False, slopes=("Days",)), "(0 + Days | Subject)"),
        (GroupLevel("g", slopes=("a", "b")), "(a + b | g)"),
        (GroupLevel(("hospital", "patient")), "(1 | hospital:patient)"),
        (GroupLevel("a:b"), "(1 | `a:b`)"),  # one column whose name has a colon
        (GroupLevel("my group"), "(1 | `my group`)"),
        (GroupLevel("Subject", intercept=False), ""),
    ],
)
def test_random_term(level, expected):
    assert random_term(level) == expected


def test_random_intercept_then_slope_formulas():
    ri = BuilderChoices("Reaction", ("Days",), levels=(GroupLevel("Subject"),))
    assert build_formula(ri) == "Reaction ~ Days + (1 | Subject)"
    rs = BuilderChoices("Reaction", ("Days",), levels=(GroupLevel("Subject", slopes=("Days",)),))
    assert build_formula(rs) == "Reaction ~ Days + (Days | Subject)"


def test_interactions_cluster_and_crossed_levels():
    choices = BuilderChoices(
        "y",
        ("time", "arm", "age"),
        (("time", "arm"), ("age", "arm")),
        (
            GroupLevel("patient", slopes=("time",)),
            GroupLevel("hospital"),
            GroupLevel("rater", intercept=False),  # no random effect: skipped
        ),
    )
    formula = build_formula(choices)
    assert formula == (
        "y ~ time + arm + age + time:arm + age:arm + (time | patient) + (1 | hospital)"
    )
    spec = parse_formula(formula)
    assert spec.fixed.labels() == ("time", "arm", "age", "time:arm", "arm:age")
    assert [r.group for r in spec.random] == ["patient", "hospital"]


def test_no_fixed_effects_keeps_the_intercept_and_odd_names_are_quoted():
    choices = BuilderChoices("blood pressure", (), levels=(GroupLevel("id"),))
    assert build_formula(choices) == "`blood pressure` ~ 1 + (1 | id)"
    assert quote_name("x.1") == "x.1" and quote_name("2x") == "`2x`"
    assert parse_formula(build_formula(choices)).response_label == "blood pressure"


def test_built_formula_fits_the_trial_example():
    data, _ = datasets.load_example("trial_small")
    choices = BuilderChoices(
        "y",
        ("time", "arm"),
        (("time", "arm"),),
        (GroupLevel("patient", slopes=("time",)), GroupLevel("hospital")),
    )
    res = fit_lmm(build_formula(choices), data)
    assert res.ngroups == {"patient": 500, "hospital": 20}
    assert "time:armtreatment" in res.x_names


def test_ids_repeat_across_clusters():
    data, _ = datasets.load_example("trial_small")
    assert not ids_repeat_across(data, "patient", "hospital")  # ids unique overall
    assert ids_repeat_across(data, "patient_in_hospital", "hospital")
    frame = pd.DataFrame({"s": ["a", "a", "b"], "c": ["x", "x", "y"]})
    assert not ids_repeat_across(frame, "s", "c")


@pytest.mark.parametrize(
    ("formula", "subject", "label"),
    [
        ("Reaction ~ Days + (1 | Subject)", "Subject", "random intercept"),
        ("Reaction ~ Days + (Days | Subject)", "Subject", "random slope"),
        ("Reaction ~ Days + (Days || Subject)", "Subject", "uncorrelated random slope"),
        ("Reaction ~ Days + (0 + Days | Subject)", "Subject", "random slope only"),
        ("y ~ time + (time + I(time^2) | patient)", "patient", "random slopes"),
        (
            "y ~ time * arm + (time | patient) + (1 | hospital)",
            "patient",
            "random slope + hospital intercept",
        ),
        (
            "y ~ time + (1 | hospital) + (time | patient)",
            "patient",
            "random slope + hospital intercept",
        ),
        ("y ~ time + (1 | hospital/p)", "p", "random intercept + hospital intercept"),
        (
            "y ~ time + (1 | hospital) + (time | patient)",
            None,
            "random intercept + patient intercept + slope",
        ),
    ],
)
def test_labels(formula, subject, label):
    assert formula_label(formula, subject) == label


def test_label_of_a_bad_formula_raises_with_a_position():
    with pytest.raises(FormulaError) as info:
        formula_label("y ~ time + (1 | )")
    assert info.value.position == 16
