"""Issue 13's shape of time (dashboard.analysis.time_shape; model_builder, model_label and
formula_text with curves): straight line, quadratic, natural spline for the population curve
and the subject's own curve; its knots as the engine places them; the df the data allow;
labels, keys and the reading back of formulas with spline terms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import model_summary as ms
from dashboard.analysis.formula_text import deparse_spec, model_key
from dashboard.analysis.model_builder import (
    BuilderChoices,
    GroupLevel,
    TimeScale,
    build_formula,
    model_rows,
    random_term,
)
from dashboard.analysis.model_label import formula_label, model_label
from dashboard.analysis.time_shape import (
    MAX_SPLINE_DF,
    TimeShape,
    curve_terms,
    flexibility_note,
    knots_text,
    shape_note,
    shape_options,
    spline_basis,
    spline_dfs,
    typical_visits,
)
from lmm_core import DataError, datasets, fit_lmm
from lmm_core.design.splines import learn_basis
from lmm_core.formula.basis_args import BasisCall
from lmm_core.formula.terms import parse_formula

LINE, QUAD = TimeShape.line("Time"), TimeShape.quadratic("Time")
NS2, NS3 = TimeShape.spline("Time", 2), TimeShape.spline("Time", 3)


def _chicks(shape=None, curve=None, interactions=(("Time", "Diet"),), scale=None):
    slopes = ("Time",) if curve is not None else ()
    return BuilderChoices(
        "weight",
        ("Time", "Diet"),
        interactions,
        (GroupLevel("Chick", slopes=slopes, curve=curve),),
        time_scale=scale,
        shape=shape,
    )


# --------------------------------------------------------------------------- formulas
@pytest.mark.parametrize(
    ("shape", "curve", "expected"),
    [
        (None, None, "weight ~ Time + Diet + Time:Diet + (1 | Chick)"),
        (LINE, LINE, "weight ~ Time + Diet + Time:Diet + (Time | Chick)"),
        (QUAD, LINE, "weight ~ poly(Time, 2) + Diet + poly(Time, 2):Diet + (Time | Chick)"),
        (
            NS3,
            NS2,
            "weight ~ ns(Time, 3) + Diet + ns(Time, 3):Diet + (ns(Time, 2) | Chick)",
        ),
        (NS3, QUAD, "weight ~ ns(Time, 3) + Diet + ns(Time, 3):Diet + (poly(Time, 2) | Chick)"),
        (LINE, NS2, "weight ~ Time + Diet + Time:Diet + (ns(Time, 2) | Chick)"),
        (NS3, None, "weight ~ ns(Time, 3) + Diet + ns(Time, 3):Diet + (1 | Chick)"),
    ],
)
def test_each_shape_in_the_fixed_part_its_interactions_and_the_subject_curve(
    shape, curve, expected
):
    formula = build_formula(_chicks(shape, curve))
    assert formula == expected
    # the interaction carries the shape: the same model as `shape * Diet`
    if shape is not None and shape.curved:
        typed = expected.replace(
            f"{shape.expression()} + Diet + {shape.expression()}:Diet",
            f"{shape.expression()} * Diet",
        )
        assert model_key(typed) == model_key(formula)


def test_the_time_scale_is_for_straight_lines_only():
    week = TimeScale("Time", 7.0, "week")
    assert build_formula(_chicks(LINE, LINE, scale=week)) == (
        "weight ~ I(Time/7) + Diet + I(Time/7):Diet + (I(Time/7) | Chick)"
    )
    # a curved population curve writes time as it is everywhere (a basis has no unit)
    assert build_formula(_chicks(NS3, LINE, scale=week)) == (
        "weight ~ ns(Time, 3) + Diet + ns(Time, 3):Diet + (Time | Chick)"
    )
    # a straight population line keeps its scale; the subject's curve is unit-free
    assert build_formula(_chicks(LINE, NS2, scale=week)) == (
        "weight ~ I(Time/7) + Diet + I(Time/7):Diet + (ns(Time, 2) | Chick)"
    )


def test_curves_with_awkward_names_other_levels_and_uncorrelated_terms():
    shape = TimeShape.spline("Visit day", 4)
    level = GroupLevel("Patient ID", slopes=("Visit day",), correlated=False, curve=shape)
    assert random_term(level) == "(ns(`Visit day`, 4) || `Patient ID`)"
    assert random_term(dataclasses.replace(level, intercept=False)) == (
        "(0 + ns(`Visit day`, 4) | `Patient ID`)"
    )
    choices = BuilderChoices(
        "SBP (mmHg)",
        ("Visit day", "arm"),
        (("Visit day", "arm"),),
        (level, GroupLevel("hospital", slopes=("Visit day",))),  # the cluster's slope: a line
        shape=TimeShape.quadratic("Visit day"),
    )
    formula = build_formula(choices)
    assert formula == (
        "`SBP (mmHg)` ~ poly(`Visit day`, 2) + arm + poly(`Visit day`, 2):arm + "
        "(ns(`Visit day`, 4) || `Patient ID`) + (`Visit day` | hospital)"
    )
    spec = parse_formula(formula)
    assert {r.name for r in spec.column_refs()} == {
        "SBP (mmHg)", "Visit day", "arm", "Patient ID", "hospital"
    }  # fmt: skip


def test_time_shape_checks_its_df():
    assert NS3.expression() == "ns(Time, 3)" and QUAD.expression() == "poly(Time, 2)"
    assert LINE.expression() == "Time" and not LINE.curved and NS2.curved
    assert [s.words() for s in (LINE, QUAD, NS3)] == [
        "straight line", "quadratic", "natural spline (3 df)"
    ]  # fmt: skip
    assert (LINE.df, QUAD.df, NS3.df) == (1, 2, 3)
    for bad in [("spline", 1), ("line", 2), ("quadratic", 3), ("cubic", 3)]:
        with pytest.raises(ValueError):
            TimeShape("Time", *bad)


# --------------------------------------------------------------------------- knots and bounds
def test_knots_shown_are_the_engines_knots():
    data, _ = datasets.load_example("chickweight")
    data = data.copy()
    early = data.index[(data["Time"] <= 6) & (data["Chick"].astype(int) % 2 == 0)]
    data.loc[early, "Diet"] = np.nan  # rows the engine leaves out
    data.loc[data.index[5], "Time"] = np.nan
    choices = _chicks(NS3, NS2)
    result = fit_lmm(build_formula(choices), data)
    rows = model_rows(data, choices)
    assert len(rows) == result.nobs < len(data) - 1
    for shape in (NS3, NS2):
        # learned from the whole time column (NaN ignored) before rows are left out, as R's
        # model.frame does: with these rows left out, R's lmer keeps the knots at 6 and 14
        mine = spline_basis(shape, data["Time"].to_numpy())
        engine = result.design.bases[shape.expression()]
        assert mine.knots == engine.knots and mine.boundary == engine.boundary
        reference = learn_basis(BasisCall("ns", df=shape.df), data["Time"], "x")
        assert mine.knots == reference.knots
    assert spline_basis(NS3, data["Time"]).knots == (6.0, 14.0)
    assert spline_basis(NS3, rows["Time"]).knots != (6.0, 14.0)  # not the model's rows
    assert spline_basis(QUAD, data["Time"]) is None


def test_knots_in_words():
    assert knots_text((6.0, 14.0), "Time", "day") == "knots at 6 and 14 days"
    assert knots_text((10.0,), "Time", "day") == "knot at 10 days"
    assert knots_text((1.5, 3.25, 7.0), "t") == "knots at t = 1.5, 3.25 and 7"
    assert knots_text((), "t", "day") == ""
    data, _ = datasets.load_example("chickweight")
    note = shape_note(NS3, data["Time"].to_numpy(), "day")
    assert "knots at 6 and 14 days" in note and "before 0 days and after 21 days" in note
    assert "median" in shape_note(NS2, data["Time"].to_numpy(), "day")  # one knot
    assert "parabola" in shape_note(QUAD, data["Time"].to_numpy())
    assert shape_note(LINE, data["Time"].to_numpy()) == "" == shape_note(None, np.arange(3))
    with pytest.raises(DataError):
        shape_note(NS3, np.zeros(5))


def test_spline_df_bounded_by_distinct_times_visits_and_the_cap():
    four = np.repeat([8.0, 10.0, 12.0, 14.0], 27)  # orthodont's ages
    assert [s.words() for s in shape_options("age", four)] == [
        "straight line", "quadratic", "natural spline (2 df)", "natural spline (3 df)"
    ]  # fmt: skip
    assert [s.df for s in shape_options("age", four, max_df=2)] == [1, 2, 2]
    assert [s.kind for s in shape_options("age", four, max_df=1)] == ["line"]
    assert [s.kind for s in shape_options("age", [1.0, 2.0])] == ["line"]
    many = np.linspace(0, 100, 500)
    assert max(s.df for s in shape_options("t", many)) == MAX_SPLINE_DF
    assert max(s.df for s in shape_options("t", np.append(many, np.nan), max_df=6)) == 6


def test_spline_df_whose_quantile_knots_coincide_are_not_offered():
    times = np.concatenate([np.zeros(80), np.arange(1.0, 11.0)])  # most visits at 0
    offered = {s.df for s in shape_options("t", times) if s.kind == "spline"}
    for k in range(2, 11):
        try:
            learn_basis(BasisCall("ns", df=k), times, "ns(t)")
            fits = True
        except DataError:
            fits = False
        assert (k in offered) == fits, k
    assert offered != set(range(2, 11))  # the ties do exclude some


def test_spline_dfs_is_the_rule_the_builder_offers():
    """One rule for the df of natural splines the data allow (the builder and the Compare
    page's curve comparison): below the distinct times, capped, knots that do not coincide."""
    chick = datasets.load_example("chickweight")[0]["Time"]  # 12 distinct days
    assert spline_dfs(chick) == list(range(2, MAX_SPLINE_DF + 1))
    assert spline_dfs(chick, 4) == [2, 3, 4]
    assert spline_dfs(np.repeat([8.0, 10.0, 12.0, 14.0], 27)) == [2, 3]  # 4 distinct ages
    assert spline_dfs([1.0, 2.0, np.nan]) == [] == spline_dfs([])
    tied = np.repeat([0.0, 1, 2, 3, 4, 5, 6], [50, 1, 1, 50, 1, 1, 50])
    assert spline_dfs(tied) == [2, 3]  # 7 distinct times, but ns(t, 4)'s knots coincide
    with pytest.raises(DataError):
        learn_basis(BasisCall("ns", df=4), tied, "ns(t, 4)")
    for times in (chick, tied, np.linspace(0, 1, 4)):
        offered = [s.df for s in shape_options("t", times) if s.kind == "spline"]
        assert offered == spline_dfs(times)


def test_typical_visits_counts_rows_per_subject():
    rows = pd.DataFrame({"h": list("aaaabbbb"), "p": [1, 1, 2, 2, 1, 1, 1, 2]})
    assert typical_visits(rows, ["p"]) == 4  # ids merged across h: 5 and 3 rows
    assert typical_visits(rows, ["h", "p"]) == 2  # nested: 2, 2, 3, 1 rows
    assert typical_visits(rows.iloc[:7], ["h", "p"]) == 2  # 2, 2, 3 rows
    assert typical_visits(rows.iloc[:0], ["p"]) == 0


def test_a_subject_curve_more_flexible_than_the_population_is_said_not_forbidden():
    assert flexibility_note(NS3, NS2, "Chick") == ""
    assert flexibility_note(NS3, NS3, "Chick") == ""
    assert flexibility_note(LINE, LINE, "Chick") == ""
    note = flexibility_note(QUAD, NS3, "Chick")
    assert note.startswith("Each Chick's own curve is a natural spline with 3 df, but the ")
    assert "population curve is a quadratic:" in note
    assert "population curve has no time term" in flexibility_note(None, QUAD, "p")
    assert "is a straight line" in flexibility_note(LINE, QUAD, "p")
    assert build_formula(_chicks(LINE, NS3)).endswith("(ns(Time, 3) | Chick)")


# --------------------------------------------------------------------------- labels
@pytest.mark.parametrize(
    ("formula", "label"),
    [
        (
            "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)",
            "natural spline (3 df) + random curve (2 df)",
        ),
        ("Reaction ~ poly(Days, 2) + (Days | Subject)", "quadratic + random slope"),
        ("Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)", "quadratic + random quadratic"),
        ("y ~ poly(t, 3) + (1 | id)", "cubic + random intercept"),
        ("y ~ poly(t, 4, raw = TRUE) + (1 | id)", "polynomial (degree 4) + random intercept"),
        ("y ~ bs(t, df = 5) + (t | id)", "B-spline (5 df) + random slope"),
        ("y ~ ns(t, knots = c(2, 5)) + (1 | id)", "natural spline (3 df) + random intercept"),
        ("y ~ t + (ns(t, 2) || id)", "uncorrelated random curve (2 df)"),
        ("y ~ t + (0 + ns(t, 2) | id)", "random curve (2 df) only"),
        ("y ~ t + (ns(t, 2) + age | id)", "random curve (2 df) and slope"),
        (
            "y ~ ns(`Visit day`, df = 3) + (ns(`Visit day`, 2) | p) + (ns(`Visit day`, 2) | h)",
            "natural spline (3 df) + random curve (2 df) + h intercept + curve (2 df)",
        ),
    ],
)
def test_labels_of_curved_models(formula, label):
    assert formula_label(formula) == label


def test_model_labels_of_curved_models():
    chicks = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
    assert model_label(chicks, "Chick", "Time") == (
        "natural spline (3 df) + random curve (2 df) + Diet + Time x Diet"
    )
    assert model_label(chicks) == model_label(chicks, "Chick", "Time")  # time guessed
    assert model_label("Reaction ~ poly(Days, 2) + (Days | Subject)", "Subject", "Days") == (
        "quadratic + random slope"
    )
    assert model_label("y ~ ns(t, 3) + (1 | s)", "s", "t", reml=False) == (
        "natural spline (3 df) + random intercept (ML)"
    )
    # a curve of another column is a term like any other
    assert model_label("y ~ t + ns(age, 3) + (t | s)", "s", "t") == "random slope + ns(age, 3)"
    assert model_label("y ~ 1 + (ns(t, 2) | s)", "s", "t") == "random curve (2 df) without t"
    assert model_label("`SBP (mmHg)` ~ ns(`Visit day`, 3) * arm + (1 | id)", "id",
                       "Visit day") == (
        "natural spline (3 df) + random intercept + arm + Visit day x arm"
    )  # fmt: skip


def test_curve_terms():
    spec = parse_formula("y ~ ns(t, 3) * arm + log(x) + (poly(t, 2) | id) + (1 | h)")
    assert curve_terms(spec) == ["ns(t, 3)"]
    assert curve_terms(spec, random=True) == ["poly(t, 2)"]
    assert curve_terms(parse_formula("y ~ t + (t | id)")) == []


# --------------------------------------------------------------------------- reading back
TYPED = [
    "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)",
    "weight ~ ns(Time, df = 4) + Diet + (poly(Time, 2) || Chick)",
    "weight ~ bs(Time, knots = c(5, 10), degree = 2) * Diet + (1 | Chick)",
    "weight ~ poly(Time, 2, raw = TRUE) + ns(Time, knots = c(7), Boundary.knots = c(0, 21)) "
    "+ (Time | Chick)",
]


@pytest.mark.parametrize("formula", TYPED)
@pytest.mark.parametrize("name", ["Time", "Visit day"])
def test_typed_spline_formulas_read_back_through_the_builder(formula, name):
    """Issue 13 item 3: model_key, labels and deparse_spec (used by the ladder and the
    simpler model) keep a formula with ns, bs and poly, also for names in backticks; the
    formula written back fits the same model."""
    data, _ = datasets.load_example("chickweight")
    if name != "Time":
        formula = formula.replace("Time", f"`{name}`")
        data = data.rename(columns={"Time": name})
    spec = parse_formula(formula)
    rebuilt = deparse_spec(spec, [(r, tuple(r.lhs.labels()), r.lhs.intercept) for r in spec.random])
    again = parse_formula(rebuilt)
    assert model_key(rebuilt) == model_key(formula)
    assert model_label(again, "Chick", name) == model_label(spec, "Chick", name)
    assert "without" not in model_label(spec, "Chick", name)
    assert {r.name for r in again.column_refs()} == {r.name for r in spec.column_refs()}
    fixed_only = deparse_spec(spec, [])  # the ladder's fixed part
    assert parse_formula(f"{fixed_only} + (1 | Chick)").fixed == spec.fixed
    original, written = fit_lmm(formula, data), fit_lmm(rebuilt, data)
    assert list(written.x_names) == list(original.x_names)
    np.testing.assert_allclose(written.fixef, original.fixef, rtol=1e-6)
    assert written.loglik == pytest.approx(original.loglik, abs=1e-6)


def test_model_key_ignores_the_spelling_of_spline_options_only():
    assert model_key("y ~ ns(t, 3) + (1 | g)") == model_key("y ~ ns(t, df = 3) + (1 | g)")
    assert model_key("y ~ ns(`t`, d = 3) * a + (1|g)") == model_key(
        "y~a+ns(t,df=3)+ns(t, 3):a+(1|g)"
    )
    assert model_key("y ~ poly(t, 2) + (1 | g)") == model_key("y ~ poly(t, degree = 2) + (1|g)")
    assert model_key("y ~ t + (ns(t, 2) | g)") == model_key("y ~ t + (1 + ns(t, df = 2) | g)")
    assert model_key("y ~ ns(t, 3) + (1 | g)") != model_key("y ~ ns(t, 4) + (1 | g)")
    assert model_key("y ~ poly(t, 2) + (1 | g)") != model_key(
        "y ~ poly(t, 2, raw = TRUE) + (1 | g)"
    )
    assert model_key("y ~ ns(t, 3) + (1 | g)") != model_key("y ~ bs(t, 3) + (1 | g)")


def test_the_simpler_model_of_a_singular_curve_fit_keeps_the_spline_terms():
    """simpler_formula rebuilds the formula through deparse_spec: a zero variance of a
    spline's random effects leaves the fixed curve as typed."""
    data, _ = datasets.load_example("sleepstudy")
    data = data.rename(columns={"Days": "Visit day"})
    result = fit_lmm("Reaction ~ ns(`Visit day`, 3) + (1 | Subject) + (1 | `Visit day`)", data)
    assert result.is_singular
    simpler = ms.simpler_formula(result)
    assert simpler == "Reaction ~ ns(`Visit day`, 3) + (1 | Subject)"
    assert model_key(simpler) == model_key("Reaction ~ ns(`Visit day`, df = 3) + (1 | Subject)")


def test_model_key_tells_covariance_structures_apart():
    base = "y ~ visit * arm + {}(visit | id)"
    assert model_key(base.format("ar1")) != model_key(base.format("us"))
    assert model_key(base.format("ar1")) == model_key("y~arm*visit+ar1(visit|id)")
    assert model_key(base.format("ar1")) != model_key("y ~ visit * arm + (1 | id)")
