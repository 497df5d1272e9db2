"""dashboard.analysis.compare: the comparison equals lmm_core's LRT; preferences; chi-bar p."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis.compare import (
    build_comparison,
    criteria_figure,
    lrt_preferred,
    steps_frame,
    verdict_sentences,
)
from dashboard.analysis.records import FitRecord
from lmm_core import fit_lmm, lrt
from tests.conftest import load_reference_dataset

INTERCEPT = "Reaction ~ Days + (1 | Subject)"
UNCORRELATED = "Reaction ~ Days + (Days || Subject)"
CORRELATED = "Reaction ~ Days + (Days | Subject)"


@cache
def fit(formula: str, reml: bool = True, rows: int | None = None, dataset: str = "sleepstudy"):
    data = load_reference_dataset(dataset)
    return fit_lmm(formula, data if rows is None else data.iloc[:rows], reml=reml)


def rec(name: str, formula: str, reml: bool = True, **kw) -> FitRecord:
    result = fit(formula, reml, **kw)
    return FitRecord(name, formula, reml, "k", "data", result, 0.0)


def test_intercept_vs_slope_table_equals_lrt():
    records = [rec("slope", CORRELATED), rec("intercept", INTERCEPT)]  # any input order
    comparison = build_comparison(records)
    expected = lrt(fit(CORRELATED), fit(INTERCEPT), names=["slope", "intercept"])
    assert comparison.comparable
    pd.testing.assert_frame_equal(comparison.lrt_table, expected)
    assert list(comparison.criteria.index) == ["intercept", "slope"]  # by npar, as lme4
    np.testing.assert_allclose(comparison.criteria["AIC"], expected["AIC"])
    np.testing.assert_allclose(comparison.criteria["BIC"], expected["BIC"])
    assert comparison.criteria.loc["slope", "delta_AIC"] == 0.0
    assert comparison.criteria.loc["intercept", "delta_AIC"] == pytest.approx(
        expected.loc["intercept", "AIC"] - expected.loc["slope", "AIC"]
    )
    assert "REML" in comparison.refit_note and "anova()" in comparison.refit_note
    assert "fits" not in comparison.lrt_table.attrs


def test_ml_fits_are_not_refitted():
    comparison = build_comparison([rec("a", INTERCEPT, False), rec("b", CORRELATED, False)])
    assert comparison.refit_note == ""
    assert comparison.criteria.loc["a", "AIC"] == pytest.approx(fit(INTERCEPT, False).aic)


def test_preferences_of_each_criterion():
    comparison = build_comparison(
        [rec("M1", INTERCEPT), rec("M2", UNCORRELATED), rec("M3", CORRELATED)]
    )
    assert comparison.preferred == {"AIC": "M2", "BIC": "M2", "LRT": "M2"}
    text = " ".join(verdict_sentences(comparison))
    assert "M3 does not significantly improve on M2" in text


def test_chibar_p_is_half_the_naive_p_for_one_added_variance():
    comparison = build_comparison([rec("M1", INTERCEPT), rec("M2", UNCORRELATED)])
    (step,) = comparison.steps
    assert step.boundary.mixture_df == 1
    assert step.p_chibar == pytest.approx(step.p_naive / 2, rel=1e-12)
    assert step.p_naive == pytest.approx(comparison.lrt_table["Pr(>Chisq)"].iloc[1])
    assert comparison.boundary_steps == (step,)
    table = steps_frame(comparison)
    assert table.loc[0, "p (chi-bar-square)"] == pytest.approx(step.p_naive / 2)


def test_lrt_preference_stays_when_larger_is_not_significant():
    fits = [fit(INTERCEPT, False), fit(UNCORRELATED, False), fit(CORRELATED, False)]
    best, path = lrt_preferred(fits, ["a", "b", "c"])
    assert best == "b"
    assert [(s.smaller, s.larger) for s in path] == [("a", "b"), ("b", "c")]
    assert [s.significant for s in path] == [True, False]
    best, _ = lrt_preferred(fits[1:], ["b", "c"])
    assert best == "b"


def test_not_nested_models_have_no_lrt_preference():
    comparison = build_comparison(
        [
            rec("slope only", "Reaction ~ Days + (0 + Days | Subject)"),
            rec("no Days", "Reaction ~ 1 + (1 | Subject)"),
        ]
    )
    assert comparison.comparable
    assert [s.nested for s in comparison.steps] == [False]
    assert "LRT" not in comparison.preferred
    assert "AIC" in comparison.preferred
    assert "no pair of these models is nested" in " ".join(verdict_sentences(comparison))


def test_different_rows_are_not_comparable():
    comparison = build_comparison([rec("all", INTERCEPT), rec("fewer", CORRELATED, rows=170)])
    assert not comparison.comparable
    assert "170 rows" in comparison.problem
    assert comparison.lrt_table is None
    assert comparison.criteria["delta_AIC"].isna().all()
    assert comparison.criteria.loc["all", "AIC"] == pytest.approx(fit(INTERCEPT).aic)
    assert verdict_sentences(comparison) == []


def test_criteria_figure_bars_are_the_deltas():
    comparison = build_comparison([rec("M1", INTERCEPT), rec("M3", CORRELATED)])
    fig = criteria_figure(comparison.criteria)
    assert [t.name for t in fig.data] == ["delta AIC", "delta BIC"]
    np.testing.assert_allclose(fig.data[0].x, comparison.criteria["delta_AIC"])
    assert list(fig.data[1].y) == ["M1", "M3"]
    assert min(fig.data[1].x) == 0.0
