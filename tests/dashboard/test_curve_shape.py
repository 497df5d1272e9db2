"""Shapes of the population curve of time (dashboard.analysis.curve_shape): the formula
rewriting, the plan, the ML fits, tests, table and verdict on chickweight and on a straight
line, failing shapes, fit records and the job work (dashboard.state.work.curve_shapes)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboard.analysis import curve_shape as cs
from dashboard.analysis.formula_text import model_key
from dashboard.state import work
from dashboard.state.jobs import Cancelled
from lmm_core import FormulaError, LMMError, ModelError, datasets, fit_lmm
from lmm_core.formula.terms import parse_formula

CHICK = "weight ~ Time * Diet + (Time | Chick)"


def shapes_of(formula: str, time: str = "t") -> tuple[str, str, str]:
    """The straight-line, quadratic and 3-df spline versions of ``formula``."""
    expr = cs.time_expression(parse_formula(formula), time)
    return tuple(
        cs.with_time_shape(formula, time, cs.shape_node(kind, expr, df))
        for kind, df in (("line", 0), ("poly", 2), ("ns", 3))
    )


# --------------------------------------------------------------------------- rewriting
@pytest.mark.parametrize(
    ("formula", "time", "expected"),
    [
        (
            CHICK,
            "Time",
            (
                CHICK,
                "weight ~ poly(Time, 2) * Diet + (Time | Chick)",
                "weight ~ ns(Time, 3) * Diet + (Time | Chick)",
            ),
        ),  # fmt: skip
        (
            "y ~ `Visit day` * arm + (`Visit day` || id)",
            "Visit day",
            (
                "y ~ `Visit day` * arm + (`Visit day` || id)",
                "y ~ poly(`Visit day`, 2) * arm + (`Visit day` || id)",
                "y ~ ns(`Visit day`, 3) * arm + (`Visit day` || id)",
            ),
        ),
        (
            "`SBP (mmHg)` ~ `Visit day` + Age + (`Visit day` | `Patient ID`)",
            "Visit day",
            (
                "`SBP (mmHg)` ~ `Visit day` + Age + (`Visit day` | `Patient ID`)",
                "`SBP (mmHg)` ~ poly(`Visit day`, 2) + Age + (`Visit day` | `Patient ID`)",
                "`SBP (mmHg)` ~ ns(`Visit day`, 3) + Age + (`Visit day` | `Patient ID`)",
            ),
        ),  # a response that needs backticks keeps them
        (
            "y ~ I(t/7) * arm + age + (I(t/7) | id)",
            "t",
            (
                "y ~ I(t/7) * arm + age + (I(t/7) | id)",
                "y ~ poly(I(t/7), 2) * arm + age + (I(t/7) | id)",
                "y ~ ns(I(t/7), 3) * arm + age + (I(t/7) | id)",
            ),
        ),
        (
            "y ~ ns(t, df = 5) * arm + (t | id)",
            "t",
            (
                "y ~ t * arm + (t | id)",
                "y ~ poly(t, 2) * arm + (t | id)",
                "y ~ ns(t, 3) * arm + (t | id)",
            ),
        ),  # fmt: skip
        (
            "y ~ t + I(t^2) + t:arm + I(t^2):arm + (1 | id)",
            "t",
            (
                "y ~ t + t:arm + (1 | id)",
                "y ~ poly(t, 2) + poly(t, 2):arm + (1 | id)",
                "y ~ ns(t, 3) + ns(t, 3):arm + (1 | id)",
            ),
        ),
        (
            "y ~ (t + I(t^2)) * arm + (1 | id)",
            "t",
            (
                "y ~ t * arm + (1 | id)",
                "y ~ poly(t, 2) * arm + (1 | id)",
                "y ~ ns(t, 3) * arm + (1 | id)",
            ),
        ),  # fmt: skip
        (
            "y ~ t * arm + I(t^2) + (1 | id)",  # curved in the main effect only
            "t",
            (
                "y ~ t * arm + (1 | id)",
                "y ~ poly(t, 2) * arm + (1 | id)",
                "y ~ ns(t, 3) * arm + (1 | id)",
            ),
        ),  # fmt: skip
        (
            "y ~ arm + (1 | id)",  # no time in the fixed part: it is added
            "t",
            (
                "y ~ arm + t + (1 | id)",
                "y ~ arm + poly(t, 2) + (1 | id)",
                "y ~ arm + ns(t, 3) + (1 | id)",
            ),
        ),  # fmt: skip
        (
            "y ~ 0 + arm + t:arm + (1 | id)",
            "t",
            (
                "y ~ 0 + arm + t:arm + (1 | id)",
                "y ~ 0 + arm + poly(t, 2):arm + (1 | id)",
                "y ~ 0 + arm + ns(t, 3):arm + (1 | id)",
            ),
        ),  # fmt: skip
        (
            "log(y) ~ t + sex + age + t:sex + (1 | id)",
            "t",
            (
                "log(y) ~ t + sex + age + t:sex + (1 | id)",
                "log(y) ~ poly(t, 2) + sex + age + poly(t, 2):sex + (1 | id)",
                "log(y) ~ ns(t, 3) + sex + age + ns(t, 3):sex + (1 | id)",
            ),
        ),
        (
            "y ~ (t + arm + sex)^2 + (1 | hospital/id)",
            "t",
            (
                "y ~ (t + arm + sex)^2 + (1 | hospital/id)",
                "y ~ (poly(t, 2) + arm + sex)^2 + (1 | hospital/id)",
                "y ~ (ns(t, 3) + arm + sex)^2 + (1 | hospital/id)",
            ),
        ),
        (
            "y ~ poly(t, 2, raw = TRUE) + scale(dose) + (ns(t, 2) | id)",
            "t",
            (
                "y ~ t + scale(dose) + (ns(t, 2) | id)",
                "y ~ poly(t, 2) + scale(dose) + (ns(t, 2) | id)",
                "y ~ ns(t, 3) + scale(dose) + (ns(t, 2) | id)",
            ),
        ),
        (
            "y ~ I(t * dose) + t + (1 | id)",  # time mixed with another column: kept
            "t",
            (
                "y ~ I(t * dose) + t + (1 | id)",
                "y ~ I(t * dose) + poly(t, 2) + (1 | id)",
                "y ~ I(t * dose) + ns(t, 3) + (1 | id)",
            ),
        ),  # fmt: skip
        (
            "y ~ tt + t + (1 | id)",  # another column whose name contains the time's
            "t",
            (
                "y ~ tt + t + (1 | id)",
                "y ~ tt + poly(t, 2) + (1 | id)",
                "y ~ tt + ns(t, 3) + (1 | id)",
            ),
        ),  # fmt: skip
    ],
)
def test_rewriting_changes_only_the_shape_of_time(formula, time, expected):
    rewritten = shapes_of(formula, time)
    assert rewritten == expected
    original = parse_formula(formula)
    for text in rewritten:
        spec = parse_formula(text)  # each one parses, with the same random part
        assert [r.group for r in spec.random] == [r.group for r in original.random]
        assert model_key(text)[2] == model_key(formula)[2]


def test_rewriting_falls_back_to_the_term_list_when_the_tree_disagrees():
    # the tree would give `ns(t, 3) - ns(t, 3)` (no time at all); R's term list keeps `t`
    assert shapes_of("y ~ t + I(t^2) - I(t^2) + (1 | id)")[2] == "y ~ ns(t, 3) + (1 | id)"


def test_time_expression_finds_the_linear_form_of_time():
    expr = cs.time_expression(parse_formula("y ~ age + I((t - 3)/7) + (1 | id)"), "t")
    assert cs.shape_node("line", expr) is expr
    assert shapes_of("y ~ I((t - 3)/7) + (1 | id)")[2] == "y ~ ns(I((t - 3)/7), 3) + (1 | id)"
    # a curved-only time term gives the bare column
    assert shapes_of("y ~ log(t) + (1 | id)")[0] == "y ~ t + (1 | id)"
    with pytest.raises(ValueError, match="unknown shape"):
        cs.shape_node("cubic", expr, 3)


def test_bad_formula_is_a_formula_error():
    expr = parse_formula("y ~ t").fixed.exprs["t"]
    with pytest.raises(FormulaError):
        cs.with_time_shape("y ~ t +", "t", cs.shape_node("poly", expr, 2))


# --------------------------------------------------------------------------- plan
@cache
def chick():
    return datasets.load_example("chickweight")[0]


def straight_data(seed: int = 11) -> pd.DataFrame:
    """60 subjects, 6 visits, a truly straight mean: y = 50 + 2 t + b0 + b1 t + e."""
    rng = np.random.default_rng(seed)
    n, times = 60, np.array([0.0, 1, 2, 4, 6, 8])
    b0, b1 = rng.normal(0, 5, n), rng.normal(0, 0.6, n)
    rows = [
        {"id": f"s{i}", "Visit day": t, "arm": "AB"[i % 2], "y": 50 + 2 * t + b0[i] + b1[i] * t}
        for i in range(n)
        for t in times
    ]
    frame = pd.DataFrame(rows)
    frame["y"] += rng.normal(0, 3, len(frame))
    return frame


def test_plan_on_chickweight_has_four_shapes_and_the_diet_panels():
    plan = cs.plan_curves(CHICK, chick(), "Time")
    assert [s.key for s in plan.shapes] == ["line", "poly2", "ns3", "ns4"]
    assert [s.active for s in plan.shapes] == [True, False, False, False]
    assert plan.by == "Diet" and plan.n_times == 12 and plan.time_expr == "Time"
    assert plan.outcome == "weight"
    assert "random part stays as it is" in plan.notes[0]


def test_plan_marks_an_already_curved_active_model():
    plan = cs.plan_curves("weight ~ ns(Time, df = 3) * Diet + (Time | Chick)", chick(), "Time")
    assert [s.key for s in plan.shapes if s.active] == ["ns3"]  # ns(Time, df = 3) is ns3
    plan = cs.plan_curves("weight ~ bs(Time, df = 5) + Diet + (Time | Chick)", chick(), "Time")
    assert plan.shapes[-1] == cs.Shape(
        "active", "active model's shape", "weight ~ bs(Time, df = 5) + Diet + (Time | Chick)", True
    )
    assert plan.by is None  # Diet does not interact with time


def test_plan_follows_the_number_of_distinct_times():
    data = straight_data()
    few = data[data["Visit day"].isin([0, 1, 2, 4])]
    plan = cs.plan_curves("y ~ `Visit day` + (1 | id)", few, "Visit day")
    assert [s.key for s in plan.shapes] == ["line", "poly2", "ns3"]  # ns(4) needs 5 times
    assert "4 distinct values" in plan.notes[0]
    three = data[data["Visit day"].isin([0, 1, 2])]
    plan = cs.plan_curves("y ~ `Visit day` + (1 | id)", three, "Visit day")
    assert [s.key for s in plan.shapes] == ["line", "poly2"]
    with pytest.raises(ModelError, match="at least 3 distinct times"):
        cs.plan_curves("y ~ `Visit day` + (1 | id)", data[data["Visit day"] < 2], "Visit day")
    with pytest.raises(ModelError, match="not a numeric column"):
        cs.plan_curves("y ~ arm + (1 | id)", data, "arm")
    with pytest.raises(ModelError, match="not a numeric column"):
        cs.plan_curves("y ~ arm + (1 | id)", data, "missing")
    plan = cs.plan_curves("y ~ arm + (1 | id)", data, "Visit day")
    assert "no fixed term in Visit day" in plan.notes[0]
    assert plan.by is None and plan.outcome == "y"
    assert cs.plan_curves("log(y) ~ `Visit day` + (1 | id)", data, "Visit day").outcome == "log(y)"
    assert plan.shapes[0].formula == "y ~ arm + `Visit day` + (1 | id)"


def tied_data(counts: list[int]) -> pd.DataFrame:
    """Visits at times 0, 1, 2, ... with ``counts`` visits each (many tied times), 10 ids."""
    times = np.repeat(np.arange(len(counts), dtype=float), counts)
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {"id": np.arange(times.size) % 10, "t": times, "y": times + rng.normal(size=times.size)}
    )


def test_plan_leaves_out_splines_whose_knots_coincide():
    """The Model page's rule (time_shape.spline_dfs): a spline the engine cannot place its
    quantile knots for is not planned (it could only fail), and the notes say why."""
    data = tied_data([50, 1, 1, 50, 1, 1, 50])  # 7 distinct times, most at 0, 3 and 6
    with pytest.raises(LMMError, match="knots"):
        fit_lmm("y ~ ns(t, 4) + (1 | id)", data)
    plan = cs.plan_curves("y ~ t + (1 | id)", data, "t")
    assert [s.key for s in plan.shapes] == ["line", "poly2", "ns3"]
    assert plan.notes == (
        "The natural spline with 4 df is left out: many visits share a few values of t, so its "
        "knots (at quantiles of t) would coincide or have no time between them.",
    )
    plan = cs.plan_curves("y ~ t + (1 | id)", tied_data([40, 2, 2, 2, 2, 40]), "t")
    assert [s.key for s in plan.shapes] == ["line", "poly2"]
    assert plan.notes[0].startswith("The natural splines with 3 and 4 df are left out: ")
    plan = cs.plan_curves("y ~ t + (1 | id)", tied_data([40, 1, 1, 40]), "t")
    assert [s.key for s in plan.shapes] == ["line", "poly2"]  # ns3 tied, ns4 too few times
    assert "4 distinct values, so splines with more than 3 df" in plan.notes[0]
    assert plan.notes[1].startswith("The natural spline with 3 df is left out: ")
    spread = tied_data([10] * 6)  # the same number of distinct times, no ties: both splines
    assert [s.key for s in cs.plan_curves("y ~ t + (1 | id)", spread, "t").shapes][2:] == [
        "ns3", "ns4"
    ]  # fmt: skip


# --------------------------------------------------------------------------- comparison
def ml(data):
    return lambda formula: fit_lmm(formula, data, reml=False)


@cache
def chick_comparison() -> cs.CurveComparison:
    plan = cs.plan_curves(CHICK, chick(), "Time")
    return cs.analyse_curves(plan, cs.fit_shapes(plan.shapes, ml(chick())))


def test_chickweight_spline_is_clearly_better_than_a_line():
    comparison = chick_comparison()
    table = cs.curve_table(comparison).set_index("shape")
    line = fit_lmm(CHICK, chick(), reml=False)
    ns3 = fit_lmm("weight ~ ns(Time, 3) * Diet + (Time | Chick)", chick(), reml=False)
    assert table.loc["straight line (active model)", "logLik"] == pytest.approx(line.loglik)
    chisq = 2 * (ns3.loglik - line.loglik)
    row = table.loc["natural spline (3 df)"]
    assert row["Chisq"] == pytest.approx(chisq) and row["Df"] == ns3.npar - line.npar == 8
    assert row["p"] == pytest.approx(stats.chi2.sf(chisq, 8), rel=1e-8)
    assert row["AIC"] == pytest.approx(-2 * ns3.loglik + 2 * ns3.npar)
    assert row["BIC"] == pytest.approx(-2 * ns3.loglik + ns3.npar * np.log(ns3.nobs))
    # numbers measured: ML logLik -2400.116 (line) and -2313.858 (ns 3 df)
    assert line.loglik == pytest.approx(-2400.1162, abs=1e-3)
    assert ns3.loglik == pytest.approx(-2313.8576, abs=1e-3)
    assert table["delta_AIC"].min() == 0 and table["delta_BIC"].min() == 0
    assert table["delta_BIC"].idxmin() == "quadratic"  # BIC leans to the simpler curve
    assert np.isnan(table.loc["straight line (active model)", "p"])
    assert comparison.recommended.key == "ns3"
    lead = comparison.verdict[0]
    assert lead.startswith("**The natural spline (3 df)** fits clearly better than a straight line")
    assert "LRT p < 0.001; AIC lower by 156.5, BIC lower by 121.6" in lead
    words = " ".join(comparison.verdict)
    assert "BIC prefers the quadratic (lower by 7.4, with 4 fewer parameters)" in words
    assert "not nested in each other" in words
    assert "shape of time to **natural spline (3 df)**" in comparison.advice
    assert not comparison.problems


def test_straight_line_data_keep_the_line():
    data = straight_data()
    plan = cs.plan_curves("y ~ `Visit day` * arm + (`Visit day` | id)", data, "Visit day")
    comparison = cs.analyse_curves(plan, cs.fit_shapes(plan.shapes, ml(data)))
    table = cs.curve_table(comparison)
    assert table.loc[table["BIC"].idxmin(), "shape"] == "straight line (active model)"
    assert comparison.recommended.key == "line"
    assert comparison.verdict[0].startswith("**A straight line is enough**")
    assert comparison.advice.startswith("Keep the straight line")
    assert all(p > 0.05 for p in table["p"].dropna())


def test_a_failing_shape_keeps_the_others():
    data = chick()
    fit = ml(data)

    def flaky(formula):
        if "ns(Time, 4)" in formula:
            raise LMMError("too many knots for this test")
        if "poly(" in formula:
            raise np.linalg.LinAlgError("singular matrix")
        return fit(formula)

    plan = cs.plan_curves(CHICK, data, "Time")
    fits = cs.fit_shapes(plan.shapes, flaky)
    comparison = cs.analyse_curves(plan, fits)
    assert [f.ok for f in fits] == [True, False, True, False]
    assert "too many knots for this test" in comparison.problems[1]
    assert "failed numerically" in comparison.problems[0]
    assert "LinAlgError: singular matrix" in comparison.problems[0]
    assert set(comparison.tests) == {"ns3"} and comparison.recommended.key == "ns3"
    table = cs.curve_table(comparison)
    assert table["AIC"].isna().tolist() == [False, True, False, True]


def test_no_line_or_no_fit_still_gives_words():
    plan = cs.plan_curves(CHICK, chick(), "Time")
    fits = cs.fit_shapes(plan.shapes, lambda f: (_ for _ in ()).throw(LMMError("nope")))
    nothing = cs.analyse_curves(plan, fits)
    assert nothing.recommended is None and "No shape could be fitted" in nothing.verdict[0]
    assert len(nothing.problems) == 4
    fit = ml(chick())

    def curves_only(formula):
        if formula == CHICK:
            raise ZeroDivisionError("the straight line broke")
        return fit(formula)

    comparison = cs.analyse_curves(plan, cs.fit_shapes(plan.shapes, curves_only))
    assert "straight line could not be fitted" in comparison.verdict[0]
    assert comparison.tests == {}


def test_records_are_ml_and_skip_existing():
    comparison = chick_comparison()
    records = cs.curve_records(comparison, data_key="k", data_name="chick", existing=[])
    assert [r.name for r in records] == [
        "curve straight line",
        "curve quadratic",
        "curve natural spline (3 df)",
        "curve natural spline (4 df)",
    ]
    assert not any(r.reml for r in records)
    again = cs.curve_records(comparison, data_key="k", data_name="chick", existing=records[:2])
    assert [r.name for r in again] == [r.name for r in records[2:]]


def test_work_reports_each_shape_and_can_be_cancelled():
    plan = cs.plan_curves(CHICK, chick(), "Time")
    calls = []
    comparison = work.curve_shapes(plan, ml(chick()), lambda f, t: calls.append((f, t)))
    assert [f for f, _ in calls] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert calls[1][1] == "Shape 2 of 4: quadratic"
    assert comparison.recommended.key == "ns3"

    def stop(fraction, text):
        if fraction and fraction > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled):
        work.curve_shapes(plan, ml(chick()), stop)


def test_a_curve_the_line_cannot_nest_is_judged_by_aic_only():
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"id": np.repeat(np.arange(40), 6), "t": np.tile(np.arange(6.0), 40)})
    person = rng.normal(0, 1, 40)[data["id"]]
    data["y"] = 2 + 0.5 * data["t"] ** 2 + person + rng.normal(0, 1, len(data))
    plan = cs.plan_curves("y ~ I(t^2) + (1 | id)", data, "t")
    assert [s.key for s in plan.shapes] == ["line", "poly2", "ns3", "ns4", "active"]
    comparison = cs.analyse_curves(plan, cs.fit_shapes(plan.shapes, ml(data)))
    assert not comparison.tests["active"].nested  # t is not in the span of t^2
    assert np.isnan(comparison.tests["active"].p)
    assert comparison.recommended.key == "active"
    assert "has the lowest AIC" in comparison.verdict[0]
    assert "no valid test" in comparison.verdict[0]
    assert comparison.advice.startswith("Keep the active model's shape of time")


def test_a_significant_but_small_curve_leaves_the_line():
    """Words only (the fits are stand-ins): the quadratic is significant at 5% but lowers AIC
    by less than 2, so the straight line stays the choice."""
    from types import SimpleNamespace as NS

    def shape_fit(key, label, loglik, npar):
        result = NS(
            loglik=loglik, npar=npar, aic=-2 * loglik + 2 * npar, bic=-2 * loglik + npar * 5
        )
        return cs.ShapeFit(cs.Shape(key, label, f"y ~ {key}"), result)

    line, quad = (
        shape_fit("line", "straight line", -100.0, 4),
        shape_fit("poly2", "quadratic", -98.04, 5),
    )
    p = stats.chi2.sf(3.92, 1)
    tests = {"poly2": cs.ShapeTest(3.92, 1.0, p, True, "")}
    assert cs._decide([line, quad], line, tests) is line
    lead = cs._verdict([line, quad], line, line, tests)[0]
    assert lead.startswith("**A straight line is enough**: the quadratic fits slightly better")
    assert "LRT p = 0.048; AIC lower by 1.9" in lead
