"""The guided tour's steps (dashboard.analysis.tour) and sentences (tour_texts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import tour_texts as texts
from dashboard.analysis.tour import INTERCEPT, SLOPE, STEPS, TourColumns, plan_tour
from lmm_core import datasets, fit_lmm
from lmm_core.model.ols import ols_fit
from lmm_core.predict.forecast import new_subject_forecast
from lmm_core.predict.per_group import shrinkage_estimates

COLUMNS = TourColumns("Subject", "Reaction", "Days")


@pytest.fixture(scope="module")
def sleep():
    data, _ = datasets.load_example("sleepstudy")
    f = COLUMNS.formulas()
    return data, fit_lmm(f[INTERCEPT], data), fit_lmm(f[SLOPE], data)


def test_eight_steps_with_time_and_formulas_from_roles():
    plan = plan_tour(COLUMNS)
    assert [s.key for s in plan.steps] == [s.key for s in STEPS]
    assert plan.n == 8 and not plan.skipped
    assert COLUMNS.formulas() == {
        INTERCEPT: "Reaction ~ Days + (1 | Subject)",
        SLOPE: "Reaction ~ Days + (Days | Subject)",
    }
    assert plan.clamp(-3) == 0 and plan.clamp(99) == 7


def test_without_time_the_time_steps_are_skipped_with_their_reason():
    plan = plan_tour(TourColumns("id", "score"))
    assert [s.key for s in plan.steps] == ["ols", "intercept", "shrinkage", "report"]
    assert {s.key for s, _ in plan.skipped} == {"spaghetti", "slope", "forecast", "compare"}
    assert all("time" in reason for _, reason in plan.skipped)
    assert TourColumns("id", "score").formulas() == {INTERCEPT: "score ~ 1 + (1 | id)"}


def test_odd_column_names_are_quoted_in_the_formulas():
    f = TourColumns("patient id", "blood pressure", "days since").formulas()
    assert f[SLOPE] == ("`blood pressure` ~ `days since` + (`days since` | `patient id`)")


def test_ols_sentence_gives_both_standard_errors_and_their_ratio(sleep):
    data, ri, rs = sleep
    ols = ols_fit(ri.design.X, ri.design.y, list(ri.design.x_names))
    text = " ".join(texts.ols_sentences(ols, rs, "random-slope model", COLUMNS, 18))
    naive = float(ols.loc["Days", "std_error"])
    mixed = float(rs.fixef_table().loc["Days", "std_error"])
    assert naive == pytest.approx(1.2378, rel=1e-3)  # lm(Reaction ~ Days)
    assert mixed == pytest.approx(1.5458, rel=1e-3)  # lmer, random slope
    assert f"**{naive:.3g}**" in text and f"**{mixed:.3g}**" in text
    assert f"{mixed / naive:.3g} times too confident" in text
    assert "180 measurements as 180 independent" in text


def test_ratio_below_one_says_ols_is_too_unsure():
    text = texts.se_ratio_sentence(2.0, 0.5, "the x slope", "mixed model")
    assert "**4 times too unsure**" in text and "**2**" in text and "**0.5**" in text


def test_intercept_sentences_give_the_icc(sleep):
    _, ri, _ = sleep
    text = " ".join(texts.intercept_sentences(ri, COLUMNS, 1.2378))
    tau = texts.group_sd(ri, "Subject", "(Intercept)")
    icc = tau**2 / (tau**2 + ri.sigma**2)
    assert tau == pytest.approx(37.12, rel=1e-3) and ri.sigma == pytest.approx(30.99, rel=1e-3)
    assert f"**{round(100 * icc)}%**" in text
    assert "**0.804**" in text and "(OLS: 1.24)" in text


def test_slope_sentences_give_the_range_of_slopes(sleep):
    _, ri, rs = sleep
    text = " ".join(texts.slope_sentences(rs, COLUMNS, 0.804))
    beta = float(rs.fixef_table().loc["Days", "estimate"])
    sd = texts.group_sd(rs, "Subject", "Days")
    assert sd == pytest.approx(5.922, rel=1e-3)
    assert f"between {beta - texts.Z95 * sd:.3g} and {beta + texts.Z95 * sd:.3g}" in text


def test_shrinkage_sentences_name_the_subject_moved_most(sleep):
    _, _, rs = sleep
    est = shrinkage_estimates(rs, "Subject")
    text = " ".join(texts.shrinkage_sentences(est, COLUMNS))
    t = est.table
    moved = (t["mixed:Days"] - t["own:Days"]).abs().idxmax()
    assert f"Subject {moved} (" in text
    assert f"{round(100 * t['shrinkage:Days'].median())}% of its own Days slope" in text


def test_forecast_sentences_say_whether_the_later_value_is_inside(sleep):
    data, _, rs = sleep
    obs = data[data["Subject"].astype(str) == "308"].sort_values("Days").head(2)
    fc = new_subject_forecast(
        rs, obs[["Days", "Reaction"]], pd.DataFrame({"Days": [9.0]}), level=0.95, group="Subject"
    )
    row = fc.table.iloc[-1]
    inside = " ".join(texts.forecast_sentences(fc, COLUMNS, "308", 9.0, float(row["fit"])))
    outside = " ".join(
        texts.forecast_sentences(fc, COLUMNS, "308", 9.0, float(row["upper_total"]) + 1)
    )
    assert f"**{row['fit']:.3g}**" in inside and "**2 visits**" in inside
    assert "inside the interval" in inside and "outside the interval" in outside
    assert "measured" not in " ".join(texts.forecast_sentences(fc, COLUMNS, "308", 9.0, None))


def test_report_sentences_give_the_interval(sleep):
    _, _, rs = sleep
    text = " ".join(texts.report_sentences(rs, COLUMNS, "chosen by AIC.", 18))
    row = rs.fixef_table().loc["Days"]
    assert f"95% CI {row['ci_lower']:.3g} to {row['ci_upper']:.3g}" in text
    assert "REML" in text and "180 measurements of 18 Subjects" in text


def test_sentences_do_not_depend_on_the_unit_of_the_outcome(sleep):
    data, ri, _ = sleep
    scaled = data.assign(Reaction=data["Reaction"] / 1000)
    r2 = fit_lmm(COLUMNS.formulas()[INTERCEPT], scaled)
    icc = [
        texts.group_sd(r, "Subject", "(Intercept)") ** 2
        / (texts.group_sd(r, "Subject", "(Intercept)") ** 2 + r.sigma**2)
        for r in (ri, r2)
    ]
    assert icc[1] == pytest.approx(icc[0], rel=1e-4)
    a = texts.intercept_sentences(ri, COLUMNS, 1.0)[1]
    b = texts.intercept_sentences(r2, COLUMNS, 1.0)[1]
    assert a.split("**")[-2] == b.split("**")[-2]  # the ICC is the same
    assert np.isfinite(icc[0])
