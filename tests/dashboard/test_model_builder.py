"""dashboard.analysis.model_builder: builder choices -> lme4 formula, labels from any formula."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from dashboard.analysis.formula_text import model_key
from dashboard.analysis.model_builder import (
    BuilderChoices,
    GroupLevel,
    build_formula,
    ids_repeat_across,
    random_term,
)
from dashboard.analysis.model_label import formula_label
from lmm_core import FormulaError, datasets, fit_lmm
from lmm_core.formula.quoting import quote_name
from lmm_core.formula.terms import parse_formula


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


AWKWARD = ["SBP (mmHg)", "Visit day", "x[1]", "Größe é", "a-b", "a+b", "a*b", "a/b", "a:b",
           "2nd", "if", "dose (mg/kg)"]  # fmt: skip


@pytest.mark.parametrize("name", AWKWARD)
def test_every_built_formula_reads_back_the_same_columns(name):
    """Issue 11 item 3: every formula the app writes from names parses to those names."""
    from dashboard.analysis.formula_text import deparse_spec
    from dashboard.analysis.model_builder import TimeScale

    y, t, arm, g, h = (f"{name} {k}" for k in ("y", "t", "arm", "g", "h"))
    choices = BuilderChoices(
        y, (t, arm), ((t, arm),),
        (GroupLevel((h, g), slopes=(t,), correlated=False), GroupLevel(h)),
    )  # fmt: skip
    for scale in (None, TimeScale(t, 7.0, "week")):
        formula = build_formula(dataclasses.replace(choices, time_scale=scale))
        spec = parse_formula(formula)
        assert {r.name for r in spec.column_refs()} == {y, t, arm, g, h}, formula
        assert spec.response.name == y
        assert [tuple(v.name for v in r.group_vars) for r in spec.random] == [
            (h, g), (h, g), (h,)
        ]  # fmt: skip
        # rebuilt from the parsed formula (the ladder, simpler models): the same model
        rebuilt = deparse_spec(spec, [(r, tuple(r.lhs.labels()), r.lhs.intercept)
                                      for r in spec.random])  # fmt: skip
        assert model_key(rebuilt) == model_key(formula)


def test_model_labels_say_what_differs():
    from dashboard.analysis.model_label import model_label

    base = "y ~ t + (t | s)"
    assert model_label(base, "s", "t") == "random slope"
    assert model_label("y ~ t + Age + (t | s)", "s", "t") == "random slope + Age"
    assert model_label("y ~ t * Sex + (t | s)", "s", "t") == "random slope + Sex + t x Sex"
    assert model_label("y ~ 1 + (t | s)", "s", "t") == "random slope without t"
    assert model_label(base, "s", "t", reml=False) == "random slope (ML)"
    assert model_label("y ~ I(t/7) + (I(t/7) | s)", "s", "t") == "random slope (t/7)"
    assert model_label("`SBP (mmHg)` ~ `Visit day` + `Age (y)` + (1 | `Patient ID`)",
                       "Patient ID", "Visit day") == "random intercept + Age (y)"  # fmt: skip
    taken = {"random slope", "random slope #2"}
    assert model_label(base, "s", "t", taken=taken) == "random slope #3"


def test_model_key_ignores_spelling_only():
    assert model_key("y ~ a * b + (t || g)") == model_key("y~b+a+a:b+(0+t|g)+(1|g)")
    assert model_key("`y` ~ t + (t | g)") == model_key("y ~ 1 + t + (1 + t | g)")
    assert model_key("y ~ t + (t | g)") != model_key("y ~ t + (t || g)")
    assert model_key("y ~ t + (1 | g)") != model_key("y ~ I(t/7) + (1 | g)")


def test_time_units_and_scales():
    from dashboard.analysis.model_builder import time_scales, time_unit

    assert time_unit("Visit day") == "day" and time_unit("t", "months since baseline") == "month"
    assert time_unit("age", "years") == "year" and time_unit("x") == ""
    assert [(s.unit, s.divisor) for s in time_scales("Days")] == [
        ("week", 7.0), ("month", 30.4375), ("year", 365.25)
    ]  # fmt: skip
    assert time_scales("x") == []
